/**
 * Row types of every table, shared by both dialects.
 * Conventions (so one set of migrations serves SQLite and PostgreSQL):
 * - ids and timestamps are TEXT (timestamps are ISO-8601 UTC with milliseconds, so they sort as text);
 * - booleans are INTEGER 0/1;
 * - structured values are JSON in TEXT columns.
 */

export interface InstanceTable {
  id: number;
  default_tenant_id: string;
  created_at: string;
}

export interface TenantsTable {
  id: string;
  display_name: string;
  is_default: number;
  /** Value of the OIDC tenant claim that maps tokens to this tenant. */
  oidc_tenant_key: string | null;
  next_scope_tag_id: number;
  created_at: string;
}

export interface SecretsTable {
  id: string;
  tenant_id: string;
  /** What the secret is (for rotation reports and audits); never the value. */
  kind: string;
  key_id: string;
  ciphertext: string;
  created_at: string;
  updated_at: string;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  display_name: string;
  role: string;
  /** JSON array of scope tag ids, or NULL for every scope. */
  scope_tag_ids: string | null;
  secret_hash: string;
  created_at: string;
  created_by: string | null;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface RoleScopeTagsTable {
  tenant_id: string;
  id: string;
  display_name: string;
  /** Names are unique regardless of case. */
  display_name_lower: string;
  description: string | null;
  is_built_in: number;
  created_at: string;
  updated_at: string;
}

export interface ObjectScopeTagsTable {
  tenant_id: string;
  object_type: string;
  object_id: string;
  tag_id: string;
}

export interface UsersTable {
  id: string;
  tenant_id: string;
  user_principal_name: string;
  upn_lower: string;
  display_name: string;
  given_name: string | null;
  surname: string | null;
  mail: string | null;
  mail_nickname: string | null;
  account_enabled: number;
  job_title: string | null;
  department: string | null;
  office_location: string | null;
  mobile_phone: string | null;
  usage_location: string | null;
  user_type: string;
  employee_id: string | null;
  password_hash: string | null;
  force_change_password: number;
  device_enrollment_limit: number | null;
  created_at: string;
  updated_at: string;
}

export interface GroupsTable {
  id: string;
  tenant_id: string;
  display_name: string;
  description: string | null;
  mail_nickname: string | null;
  mail_enabled: number;
  security_enabled: number;
  /** JSON array, e.g. ["DynamicMembership"]. */
  group_types: string;
  membership_rule: string | null;
  membership_rule_processing_state: string | null;
  created_at: string;
  updated_at: string;
}

export interface GroupMembersTable {
  tenant_id: string;
  group_id: string;
  member_id: string;
  /** 'user' | 'device' | 'group' */
  member_type: string;
  /** 'assigned' | 'dynamic' */
  source: string;
  created_at: string;
}

export interface ManagedDevicesTable {
  id: string;
  tenant_id: string;
  device_name: string | null;
  managed_device_name: string | null;
  serial_number: string | null;
  imei: string | null;
  meid: string | null;
  udid: string | null;
  enrollment_id: string | null;
  azure_ad_device_id: string | null;
  operating_system: string | null;
  os_version: string | null;
  model: string | null;
  manufacturer: string | null;
  device_type: string;
  managed_device_owner_type: string;
  device_enrollment_type: string;
  device_registration_state: string;
  management_state: string;
  management_agent: string;
  compliance_state: string;
  join_type: string;
  enrollment_profile_name: string | null;
  device_category_id: string | null;
  device_category_display_name: string | null;
  user_id: string | null;
  user_principal_name: string | null;
  user_display_name: string | null;
  email_address: string | null;
  enrolled_by_user_principal_name: string | null;
  is_supervised: number;
  is_encrypted: number;
  autopilot_enrolled: number;
  wifi_mac_address: string | null;
  phone_number: string | null;
  notes: string | null;
  enrolled_date_time: string;
  last_sync_date_time: string;
  management_certificate_expiration_date: string | null;
  created_at: string;
  updated_at: string;
}

export interface AuditEventsTable {
  id: string;
  tenant_id: string;
  activity_date_time: string;
  display_name: string;
  component_name: string;
  category: string;
  activity: string;
  activity_type: string;
  activity_operation_type: string;
  activity_result: string;
  /** JSON of the Graph auditActor shape. */
  actor: string;
  actor_id: string;
  /** JSON array of Graph auditResource shapes (with modifiedProperties). */
  resources: string;
  resource_type: string;
  resource_id: string;
  correlation_id: string;
  client_request_id: string | null;
}

export interface JobsTable {
  id: string;
  tenant_id: string;
  kind: string;
  /** Unique per tenant when set: at most one live job per key (e.g. one sync per token). */
  dedupe_key: string | null;
  payload: string;
  /** 'pending' | 'running' | 'succeeded' | 'dead' (JobStatus in jobs/scheduler.ts) */
  status: string;
  run_at: string;
  interval_ms: number | null;
  attempts: number;
  max_attempts: number;
  lease_owner: string | null;
  lease_expires_at: string | null;
  /** Incremented on every claim: a fencing token so a stale holder can't commit. */
  lease_version: number;
  last_error: string | null;
  last_started_at: string | null;
  last_finished_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface ApplePushCertificatesTable {
  tenant_id: string;
  id: string;
  apple_identifier: string | null;
  topic: string | null;
  certificate_pem: string | null;
  serial_number: string | null;
  not_before: string | null;
  expiration: string | null;
  key_secret_id: string | null;
  pending_csr_pem: string | null;
  pending_key_secret_id: string | null;
  pending_csr_created_at: string | null;
  upload_status: string | null;
  upload_failure_reason: string | null;
  last_modified: string;
  created_at: string;
}

export interface DepTokensTable {
  id: string;
  tenant_id: string;
  token_name: string | null;
  apple_identifier: string | null;
  token_type: string;
  data_sharing_consent: number;
  token_expiration: string | null;
  oauth_secret_id: string | null;
  consumer_key: string | null;
  encryption_cert_pem: string | null;
  encryption_key_secret_id: string | null;
  encryption_key_created_at: string | null;
  encryption_key_history: string;
  server_uuid: string | null;
  server_name: string | null;
  org_name: string | null;
  org_id: string | null;
  org_type: string | null;
  admin_id: string | null;
  fetch_limit: number | null;
  sync_limit: number | null;
  share_sds: number;
  cursor: string | null;
  sync_phase: string;
  sync_status: string;
  next_sync_full: number;
  last_sync_triggered_at: string | null;
  last_manual_sync_at: string | null;
  last_sync_started_at: string | null;
  last_successful_sync_at: string | null;
  last_full_sync_at: string | null;
  last_sync_error_code: number;
  last_sync_error: string | null;
  apple_status: string | null;
  synced_device_count: number;
  default_ios_profile_id: string | null;
  default_macos_profile_id: string | null;
  created_at: string;
  updated_at: string;
  /** The full fetch the cursor belongs to (0007; optional so rows built before it still type-check). */
  fetch_id?: string | null;
}

export interface DepProfilesTable {
  id: string;
  tenant_id: string;
  token_id: string;
  platform: string;
  display_name: string;
  description: string | null;
  settings: string;
  apple_profile_uuid: string | null;
  apple_defined_at: string | null;
  apple_sync_error: string | null;
  revision: number;
  created_at: string;
  updated_at: string;
  /** macOS: the admin account password (secrets table). */
  admin_password_secret_id: string | null;
  /** SHA-256 of the Apple profile JSON last defined (apple_profile_uuid). */
  apple_profile_hash: string | null;
}

export interface DepDevicesTable {
  id: string;
  tenant_id: string;
  token_id: string;
  serial_number: string;
  description: string | null;
  model: string | null;
  color: string | null;
  asset_tag: string | null;
  device_family: string | null;
  os: string | null;
  platform: string;
  discovery_source: string;
  apple_profile_status: string | null;
  apple_profile_uuid: string | null;
  apple_profile_assign_time: string | null;
  apple_profile_push_time: string | null;
  device_assigned_by: string | null;
  device_assigned_date: string | null;
  last_op_type: string | null;
  last_op_date: string | null;
  seen_at_apple: number;
  requested_profile_id: string | null;
  requested_profile_assigned_at: string | null;
  assignment_result: string | null;
  assignment_result_at: string | null;
  assigned_profile_id: string | null;
  assigned_profile_revision: number | null;
  removed_from_apple_at: string | null;
  deleted_at: string | null;
  enrollment_state: string;
  managed_device_id: string | null;
  enrolled_profile_id: string | null;
  enrolled_profile_revision: number | null;
  is_supervised: number;
  last_contacted_at: string | null;
  created_at: string;
  updated_at: string;
  /** The last full fetch that listed the device (0007; optional so rows built before it still type-check). */
  fetch_id?: string | null;
}

export interface EnrollmentConfigurationsTable {
  tenant_id: string;
  id: string;
  configuration_type: string;
  is_default: number;
  priority_list: string;
  platform_type: string | null;
  display_name: string;
  description: string | null;
  priority: number;
  version: number;
  device_limit: number | null;
  /** JSON: platformRestriction, or the default's per-platform restrictions. */
  settings: string;
  created_at: string;
  updated_at: string;
}

export interface EnrollmentConfigurationAssignmentsTable {
  tenant_id: string;
  id: string;
  configuration_id: string;
  target_type: string;
  group_id: string | null;
  filter_id: string | null;
  filter_type: string;
  source: string;
  source_id: string | null;
  position: number;
  created_at: string;
}

export interface AssignmentFiltersTable {
  tenant_id: string;
  id: string;
  display_name: string;
  description: string | null;
  platform: string;
  rule: string;
  created_at: string;
  updated_at: string;
}

export interface ImportedDeviceIdentitiesTable {
  id: string;
  tenant_id: string;
  identity_type: string;
  identifier: string;
  /** Normalised for matching and uniqueness (corporate-identifiers/rules.ts). */
  identifier_key: string;
  description: string | null;
  enrollment_state: string;
  platform: string;
  matched_device_id: string | null;
  last_contacted_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface DeviceEnrollmentManagersTable {
  tenant_id: string;
  user_id: string;
  created_at: string;
}

export interface DeviceCategoriesTable {
  id: string;
  tenant_id: string;
  display_name: string;
  display_name_lower: string;
  description: string | null;
  created_at: string;
  updated_at: string;
}

export interface TermsAndConditionsTable {
  id: string;
  tenant_id: string;
  display_name: string;
  description: string | null;
  title: string | null;
  body_text: string | null;
  acceptance_statement: string | null;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface TermsAcceptancesTable {
  id: string;
  tenant_id: string;
  terms_id: string;
  user_id: string;
  user_principal_name: string | null;
  user_display_name: string | null;
  accepted_version: number;
  accepted_at: string;
}

export interface AppleEnrollmentTypeProfilesTable {
  id: string;
  tenant_id: string;
  display_name: string;
  description: string | null;
  platform: string;
  default_enrollment_type: string;
  /** JSON array of {ownerType, enrollmentType}. */
  available_options: string;
  priority: number;
  created_at: string;
  updated_at: string;
}

export interface EnrollmentUserAssignmentsTable {
  id: string;
  tenant_id: string;
  /** 'termsAndConditions' | 'appleUserInitiatedEnrollmentProfile' */
  object_type: string;
  object_id: string;
  /** 'allLicensedUsers' | 'group' | 'exclusionGroup' */
  target_type: string;
  group_id: string | null;
  target_key: string;
  created_at: string;
}

export interface EnrollmentAttemptsTable {
  id: string;
  tenant_id: string;
  occurred_at: string;
  /** 'succeeded' | 'failed' */
  outcome: string;
  reason: string | null;
  failure_category: string | null;
  message: string | null;
  os_platform: string;
  os_version: string | null;
  user_id: string | null;
  user_principal_name: string | null;
  method: string;
  activity_id: string;
  device_id: string | null;
  /** JSON array of AppliedPolicy. */
  applied: string;
}

export interface EnrollmentDeviceSnapshotsTable {
  tenant_id: string;
  device_id: string;
  attempt_id: string;
  user_principal_name: string | null;
  enrolled_at: string;
  applied: string;
}

export interface EnrollmentSessionsTable {
  id: string;
  tenant_id: string;
  user_id: string | null;
  user_principal_name: string | null;
  platform: string;
  started_at: string;
  last_activity_at: string;
  action_name: string;
  /** 'inProgress' | 'completed' | 'incomplete' */
  status: string;
  ended_at: string | null;
  end_action_name: string | null;
  end_user_action: string | null;
  device_id: string | null;
}

export interface ReportExportJobsTable {
  id: string;
  tenant_id: string;
  report_name: string;
  filter: string | null;
  /** JSON array of column names, or null for every column. */
  select_columns: string | null;
  search: string | null;
  format: string;
  localization_type: string;
  /** Graph deviceManagementReportStatus */
  status: string;
  request_date_time: string;
  expiration_date_time: string | null;
  row_count: number | null;
  content: string | null;
  content_bytes: number | null;
  error: string | null;
  requested_by: string;
  /** JSON array of scope tag ids, or null for every scope. */
  requester_scope: string | null;
  updated_at: string;
}

export interface TenantCasTable {
  tenant_id: string;
  ca_cert_pem: string;
  ca_key_secret_id: string;
  signer_cert_pem: string;
  signer_key_secret_id: string;
  ca_not_after: string;
  created_at: string;
}

export interface EnrollmentIntentsTable {
  id: string;
  tenant_id: string;
  source: string;
  enrollment_type: string;
  platform: string;
  serial_number: string | null;
  udid: string | null;
  imei: string | null;
  os_version: string | null;
  product: string | null;
  dep_device_id: string | null;
  profile_id: string | null;
  profile_name: string | null;
  profile_revision: number | null;
  user_id: string | null;
  ownership: string;
  device_enrollment_type: string;
  scope_tag_ids: string;
  gate_request: string | null;
  gate_decision: string | null;
  reusable: number;
  created_at: string;
  expires_at: string;
  consumed_at: string | null;
  // 0011_apple_enrollment (optional so rows built before it still type-check)
  user_affinity?: string | null;
  authentication_method?: string | null;
}

export interface ScepChallengesTable {
  id: string;
  tenant_id: string;
  intent_id: string;
  challenge_hash: string;
  reusable: number;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface IssuedCertificatesTable {
  thumbprint_sha256: string;
  tenant_id: string;
  serial_hex: string;
  subject: string;
  not_before: string;
  not_after: string;
  cert_pem: string;
  purpose: string;
  intent_id: string | null;
  enrollment_id: string | null;
  renewed_from: string | null;
  revoked_at: string | null;
  created_at: string;
}

export interface MdmEnrollmentsTable {
  id: string;
  tenant_id: string;
  type: string;
  device_enrollment_id: string | null;
  udid: string | null;
  apple_enrollment_id: string | null;
  apple_user_id: string | null;
  user_short_name: string | null;
  user_long_name: string | null;
  serial_number: string | null;
  managed_device_id: string | null;
  intent_id: string | null;
  cert_thumbprint: string | null;
  topic: string | null;
  push_token: string | null;
  push_magic: string | null;
  unlock_token_secret_id: string | null;
  bootstrap_token_secret_id: string | null;
  enabled: number;
  token_update_tally: number;
  awaiting_configuration: number;
  device_configured_at: string | null;
  apns_status: string | null;
  apns_status_at: string | null;
  authenticated_at: string | null;
  checked_out_at: string | null;
  last_seen_at: string | null;
  created_at: string;
  updated_at: string;
  // 0010_mdm_core
  channel_key: string | null;
  platform: string | null;
  device_info: string | null;
  enrolled_at: string | null;
  bootstrap_token_at: string | null;
  profile_list: string | null;
  profile_list_at: string | null;
  inventory_at: string | null;
}

export interface MdmCommandsTable {
  uuid: string;
  tenant_id: string;
  request_type: string;
  command_plist: string;
  source: string;
  created_by: string | null;
  created_at: string;
}

export interface MdmCommandQueueTable {
  tenant_id: string;
  enrollment_id: string;
  command_uuid: string;
  status: string;
  priority: number;
  result_plist: string | null;
  error_chain: string | null;
  not_now_count: number;
  queued_at: string;
  sent_at: string | null;
  completed_at: string | null;
  push_sent_at: string | null;
  // 0010_mdm_core
  seq: number;
  after_prior: number;
  dedupe_key: string | null;
}

export interface ConfiguratorProfilesTable {
  id: string;
  tenant_id: string;
  display_name: string;
  description: string | null;
  requires_user_authentication: number;
  enable_authentication_via_company_portal: number;
  require_company_portal_on_setup_assistant: number;
  created_at: string;
  updated_at: string;
}

export interface ConfiguratorDevicesTable {
  id: string;
  tenant_id: string;
  serial_number: string;
  details: string | null;
  profile_id: string | null;
  enrollment_state: string;
  managed_device_id: string | null;
  created_at: string;
  updated_at: string;
  // 0012_apple_configurator
  profile_assigned_at: string | null;
  last_contacted_at: string | null;
  platform: string;
}

export interface WebEnrollmentSessionsTable {
  id_hash: string;
  tenant_id: string;
  user_id: string | null;
  purpose: string;
  context: string;
  csrf_token: string;
  created_at: string;
  expires_at: string;
}

export interface EnrollmentSigninThrottleTable {
  tenant_id: string;
  key_hash: string;
  failures: number;
  window_started_at: string;
  locked_until: string | null;
  updated_at: string;
}

/** Fixed-window request counters of the admin API's rate limit (PostgreSQL deployments: shared by every node). */
export interface RateLimitCountersTable {
  key: string;
  window_started_at: string;
  count: number;
}

export interface Database {
  tenant_cas: TenantCasTable;
  enrollment_intents: EnrollmentIntentsTable;
  scep_challenges: ScepChallengesTable;
  issued_certificates: IssuedCertificatesTable;
  mdm_enrollments: MdmEnrollmentsTable;
  mdm_commands: MdmCommandsTable;
  mdm_command_queue: MdmCommandQueueTable;
  configurator_profiles: ConfiguratorProfilesTable;
  configurator_devices: ConfiguratorDevicesTable;
  web_enrollment_sessions: WebEnrollmentSessionsTable;
  enrollment_signin_throttle: EnrollmentSigninThrottleTable;
  rate_limit_counters: RateLimitCountersTable;
  instance: InstanceTable;
  tenants: TenantsTable;
  secrets: SecretsTable;
  api_keys: ApiKeysTable;
  role_scope_tags: RoleScopeTagsTable;
  object_scope_tags: ObjectScopeTagsTable;
  users: UsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  managed_devices: ManagedDevicesTable;
  audit_events: AuditEventsTable;
  jobs: JobsTable;
  apple_push_certificates: ApplePushCertificatesTable;
  dep_tokens: DepTokensTable;
  dep_profiles: DepProfilesTable;
  dep_devices: DepDevicesTable;
  enrollment_configurations: EnrollmentConfigurationsTable;
  enrollment_configuration_assignments: EnrollmentConfigurationAssignmentsTable;
  assignment_filters: AssignmentFiltersTable;
  imported_device_identities: ImportedDeviceIdentitiesTable;
  device_enrollment_managers: DeviceEnrollmentManagersTable;
  device_categories: DeviceCategoriesTable;
  terms_and_conditions: TermsAndConditionsTable;
  terms_acceptances: TermsAcceptancesTable;
  apple_enrollment_type_profiles: AppleEnrollmentTypeProfilesTable;
  enrollment_user_assignments: EnrollmentUserAssignmentsTable;
  enrollment_attempts: EnrollmentAttemptsTable;
  enrollment_device_snapshots: EnrollmentDeviceSnapshotsTable;
  enrollment_sessions: EnrollmentSessionsTable;
  report_export_jobs: ReportExportJobsTable;
}
