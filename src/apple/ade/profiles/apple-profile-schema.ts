/**
 * Apple's DEP Profile JSON Schema (draft 2020-12), structure only: micromdm/apple-device-services
 * dep/schemas/Profile.json (MIT), as in shared/spec/fixtures/apple/schema-dep-Profile.json.
 * Descriptions are left out; test/apple/profile-apple.test.ts checks this copy against the fixture.
 */
export const APPLE_PROFILE_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Profile',
  type: 'object',
  required: ['is_mdm_removable', 'org_magic'],
  properties: {
    allow_pairing: { default: true, type: 'boolean' },
    anchor_certs: { type: 'array', items: { type: 'string' } },
    auto_advance_setup: { type: 'boolean' },
    await_device_configured: { type: 'boolean' },
    configuration_web_url: { type: 'string', format: 'uri' },
    department: { type: 'string' },
    devices: { type: 'array', items: { type: 'string' } },
    do_not_use_profile_from_backup: { type: 'boolean' },
    is_mandatory: { type: 'boolean' },
    is_mdm_removable: { default: true, type: 'boolean' },
    is_multi_user: { type: 'boolean' },
    is_return_to_service: { type: 'boolean' },
    is_supervised: { type: 'boolean' },
    language: { type: 'string', maxLength: 3, minLength: 2 },
    org_magic: { type: 'string' },
    profile_name: { type: 'string' },
    profile_uuid: { type: 'string' },
    region: { type: 'string', maxLength: 2, minLength: 2 },
    skip_setup_items: { type: 'array', items: { type: 'string' } },
    supervising_host_certs: { type: 'array', items: { type: 'string' } },
    support_email_address: { type: 'string', format: 'email' },
    support_phone_number: { type: 'string' },
    url: { type: 'string', format: 'uri' },
  },
} as const;
