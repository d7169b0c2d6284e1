/**
 * Apple's device assignment ("DEP") API, as the rest of the product sees it. The HTTP client
 * (dep-client.ts) implements it against https://mdmenrollment.apple.com or the simulator.
 * Shapes follow Apple's schemas (apple-device-services dep/schemas Device.json, Profile.json).
 */

/** The OAuth 1.0a credentials inside an ABM/ASM server token (.p7m). */
export interface DepOAuthTokens {
  consumer_key: string;
  consumer_secret: string;
  access_token: string;
  access_secret: string;
  /** RFC 3339. */
  access_token_expiry: string;
}

export interface DepAccount {
  server_name: string;
  server_uuid: string;
  admin_id?: string;
  facilitator_id?: string;
  org_name: string;
  org_email?: string;
  org_phone?: string;
  org_address?: string;
  org_id?: string;
  org_id_hash?: string;
  /** 'edu' (Apple School Manager) | 'org' (Apple Business Manager) */
  org_type?: string;
  org_version?: string;
  urls?: { uri: string; http_method: string[]; limit?: { default: number; maximum: number } }[];
}

export interface DepDevice {
  serial_number: string;
  model?: string;
  description?: string;
  color?: string;
  asset_tag?: string;
  /** iPad | iPhone | iPod | Mac | AppleTV | Vision */
  device_family?: string;
  /** iOS | iPadOS | OSX | tvOS | visionOS */
  os?: string;
  /** empty | assigned | pushed | removed */
  profile_status?: string;
  profile_uuid?: string;
  profile_assign_time?: string;
  profile_push_time?: string;
  device_assigned_by?: string;
  device_assigned_date?: string;
  /** Only in /devices/sync: added | modified | deleted */
  op_type?: string;
  op_date?: string;
  /** Only in /devices (details): SUCCESS | NOT_ACCESSIBLE | FAILED. */
  response_status?: string;
  /** Protocol version 8 and later. */
  mdm_migration_deadline?: string;
}

export interface DepDevicePage {
  devices: DepDevice[];
  cursor: string;
  fetched_until?: string;
  more_to_follow: boolean;
}

/** The profile JSON Apple stores at /profile. */
export interface DepProfile {
  profile_name: string;
  url: string;
  configuration_web_url?: string;
  allow_pairing?: boolean;
  is_supervised?: boolean;
  is_mandatory?: boolean;
  is_mdm_removable: boolean;
  is_multi_user?: boolean;
  await_device_configured?: boolean;
  auto_advance_setup?: boolean;
  department?: string;
  support_phone_number?: string;
  support_email_address?: string;
  org_magic?: string;
  language?: string;
  region?: string;
  anchor_certs?: string[];
  supervising_host_certs?: string[];
  skip_setup_items?: string[];
  devices?: string[];
  profile_uuid?: string;
}

/** Per-device outcome Apple reports for assign/remove/define (THROTTLED from protocol version 9). */
export type DepDeviceResult = 'SUCCESS' | 'NOT_ACCESSIBLE' | 'FAILED' | 'THROTTLED' | string;

export interface DepProfileResult {
  profile_uuid: string;
  devices: Record<string, DepDeviceResult>;
  /** Protocol version 10 and later, when a device was THROTTLED. */
  retry_after_seconds?: number;
}

// OAuth problems (RFC 5849 problem reporting names) that a new server token fixes, not a retry.
const NEEDS_ADMIN_401 = /token_rejected|token_expired|token_revoked|consumer_key_(?:rejected|unknown|refused)|oauth_problem|signature_invalid/i;

/**
 * Errors Apple answers with; `code` is Apple's string (INVALID_CURSOR, T_C_NOT_SIGNED, …), or the
 * OAuth problem at /session (token_rejected, …). The client adds status 0 with NETWORK_ERROR or
 * TIMEOUT when Apple couldn't be reached, and MALFORMED_RESPONSE / RESPONSE_TOO_LARGE for answers
 * it refuses.
 */
export class DepApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds from Retry-After, when Apple sent one. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'DepApiError';
  }

  /** The organisation must act in ABM/ASM (terms, revoked token): don't retry in a loop. */
  get needsAdmin(): boolean {
    return this.status === 403 || (this.status === 401 && NEEDS_ADMIN_401.test(this.code));
  }
}

export interface DepApi {
  account(): Promise<DepAccount>;
  /** POST /server/devices: the full list, paged. */
  fetchDevices(cursor?: string, limit?: number): Promise<DepDevicePage>;
  /** POST /devices/sync: changes since the cursor. */
  syncDevices(cursor: string, limit?: number): Promise<DepDevicePage>;
  /** POST /devices: details of given serials. */
  deviceDetails(serials: string[]): Promise<Record<string, DepDevice>>;
  defineProfile(profile: DepProfile): Promise<DepProfileResult>;
  getProfile(profileUuid: string): Promise<DepProfile>;
  assignProfile(profileUuid: string, serials: string[]): Promise<DepProfileResult>;
  removeProfile(serials: string[]): Promise<Record<string, DepDeviceResult>>;
  disownDevices(serials: string[]): Promise<Record<string, DepDeviceResult>>;
}
