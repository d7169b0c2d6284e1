import { X509Certificate } from 'node:crypto';
import type { DepProfile } from '../../src/apple/ade/dep-api.js';

/** Setup Assistant panes a profile may skip (apple/device-management other/skipkeys.yaml; 52 keys). */
export const SKIP_SETUP_ITEMS: ReadonlySet<string> = new Set([
  'Accessibility', 'ActionButton', 'AdditionalPrivacySettings', 'Android', 'Appearance', 'AppleID', 'AppStore',
  'Biometric', 'CameraButton', 'DeviceToDeviceMigration', 'Diagnostics', 'DisplayTone', 'EnableLockdownMode',
  'FileVault', 'HomeButtonSensitivity', 'iCloudDiagnostics', 'iCloudStorage', 'iMessageAndFaceTime', 'Intelligence',
  'Keyboard', 'Location', 'MessagingActivationUsingPhoneNumber', 'Multitasking', 'OnBoarding', 'OSShowcase',
  'Passcode', 'Payment', 'Privacy', 'Restore', 'RestoreCompleted', 'ScreenSaver', 'Safety', 'SafetyAndHandling',
  'ScreenTime', 'SIMSetup', 'Siri', 'SoftwareUpdate', 'SpokenLanguage', 'TapToSetup', 'TermsOfAddress', 'Tips',
  'TOS', 'TVHomeScreenSync', 'TVProviderSignIn', 'TVRoom', 'UnlockWithWatch', 'UpdateCompleted', 'Wallpaper',
  'WatchMigration', 'WebContentFiltering', 'Welcome', 'Zoom',
]);

const BOOLEAN_KEYS = [
  'allow_pairing', 'is_supervised', 'is_mandatory', 'is_mdm_removable', 'is_multi_user', 'await_device_configured',
  'auto_advance_setup', 'do_not_use_profile_from_backup', 'is_return_to_service',
] as const;
const STRING_KEYS = [
  'profile_name', 'url', 'configuration_web_url', 'department', 'support_phone_number', 'support_email_address',
  'org_magic', 'language', 'region', 'profile_uuid',
] as const;
const STRING_ARRAY_KEYS = ['anchor_certs', 'supervising_host_certs', 'skip_setup_items', 'devices'] as const;
const KNOWN_KEYS: ReadonlySet<string> = new Set<string>([...BOOLEAN_KEYS, ...STRING_KEYS, ...STRING_ARRAY_KEYS]);

/** Apple's defaults, filled in on the stored profile so GET /profile returns every flag. */
const DEFAULTS = {
  allow_pairing: true,
  is_supervised: false,
  is_mandatory: false,
  is_mdm_removable: true,
  is_multi_user: false,
  await_device_configured: false,
  auto_advance_setup: false,
} as const;

export type ProfileCheck = { ok: true; profile: DepProfile; devices: string[] } | { ok: false; code: string };

const utf8Chars = (s: string) => [...s].length;

function validUrl(s: string): boolean {
  if (s.length === 0 || s.length > 2000) return false;
  try {
    const u = new URL(s);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.hostname !== '';
  } catch {
    return false;
  }
}

function isDerCertificate(b64: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  try {
    new X509Certificate(Buffer.from(b64, 'base64'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates a Define Profile body the way Apple documents its 400s (CONFIG_NAME_REQUIRED, CONFIG_URL_INVALID,
 * FLAGS_INVALID, …). Wrong JSON types, unknown keys, unknown skip_setup_items and certificates that aren't
 * base64 DER are MALFORMED_REQUEST_BODY: stricter than Apple documents, so our client's typos surface.
 */
export function checkProfile(body: unknown): ProfileCheck {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, code: 'MALFORMED_REQUEST_BODY' };
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!KNOWN_KEYS.has(k)) return { ok: false, code: 'MALFORMED_REQUEST_BODY' };
  for (const k of BOOLEAN_KEYS) if (k in b && typeof b[k] !== 'boolean') return { ok: false, code: 'MALFORMED_REQUEST_BODY' };
  for (const k of STRING_KEYS) if (k in b && typeof b[k] !== 'string') return { ok: false, code: 'MALFORMED_REQUEST_BODY' };
  for (const k of STRING_ARRAY_KEYS) {
    if (k in b && (!Array.isArray(b[k]) || !(b[k] as unknown[]).every((v) => typeof v === 'string'))) {
      return { ok: false, code: 'MALFORMED_REQUEST_BODY' };
    }
  }
  const p = b as unknown as DepProfile & Record<string, unknown>;

  if (!('profile_name' in b)) return { ok: false, code: 'CONFIG_NAME_REQUIRED' };
  if (p.profile_name.trim() === '' || utf8Chars(p.profile_name) > 125) return { ok: false, code: 'CONFIG_NAME_INVALID' };
  if (!('url' in b)) return { ok: false, code: 'CONFIG_URL_REQUIRED' };
  if (!validUrl(p.url)) return { ok: false, code: 'CONFIG_URL_INVALID' };
  if (p.configuration_web_url !== undefined && !validUrl(p.configuration_web_url)) return { ok: false, code: 'CONFIG_URL_INVALID' };
  if (p.department !== undefined && (p.department === '' || utf8Chars(p.department) > 125)) return { ok: false, code: 'DEPARTMENT_INVALID' };
  if (p.org_magic !== undefined && (p.org_magic === '' || utf8Chars(p.org_magic) > 256)) return { ok: false, code: 'MAGIC_INVALID' };
  if (p.support_email_address !== undefined && (p.support_email_address === '' || utf8Chars(p.support_email_address) > 250 || !/^[^\s@]+@[^\s@]+$/.test(p.support_email_address))) {
    return { ok: false, code: 'SUPPORT_EMAIL_INVALID' };
  }
  if (p.support_phone_number !== undefined && (p.support_phone_number === '' || utf8Chars(p.support_phone_number) > 50)) {
    return { ok: false, code: 'SUPPORT_PHONE_INVALID' };
  }
  if (p.language !== undefined && !/^[a-z]{2,3}$/i.test(p.language)) return { ok: false, code: 'LOCALE_INVALID' };
  if (p.region !== undefined && !/^[A-Z]{2}$/.test(p.region)) return { ok: false, code: 'LOCALE_INVALID' };
  // "is_mdm_removable can be set to false only if flag is_supervised is set to true."
  if (p.is_mdm_removable === false && p.is_supervised !== true) return { ok: false, code: 'FLAGS_INVALID' };
  if (p.skip_setup_items?.some((k) => !SKIP_SETUP_ITEMS.has(k))) return { ok: false, code: 'MALFORMED_REQUEST_BODY' };
  if (p.anchor_certs?.some((c) => !isDerCertificate(c))) return { ok: false, code: 'MALFORMED_REQUEST_BODY' };
  if (p.supervising_host_certs?.some((c) => !isDerCertificate(c))) return { ok: false, code: 'MALFORMED_REQUEST_BODY' };

  const { devices = [], profile_uuid: _ignored, ...rest } = p;
  return { ok: true, profile: { ...DEFAULTS, ...rest } as DepProfile, devices };
}
