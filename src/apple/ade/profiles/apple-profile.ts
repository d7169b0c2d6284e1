/**
 * A profile as Apple's device assignment service takes it (POST /profile), and a check of any
 * such JSON against Apple's Profile schema plus the constraints its descriptions state.
 */
import { createHash } from 'node:crypto';
import type { DepProfile } from '../dep-api.js';
import { APPLE_PROFILE_SCHEMA } from './apple-profile-schema.js';
import { isBase64DerCertificate } from './certificates.js';
import type { DepProfileContent } from './model.js';
import { profileAuthenticationMethod } from './resolve.js';
import { APPLE_SKIP_KEYS, enabledSkipKeys, panesFor } from './setup-panes.js';

export interface AppleProfileOptions {
  /** Our public base URL; relative URLs below resolve against it. */
  serverUrl: string;
  /** The ADE enrollment endpoint devices POST their MachineInfo to (Apple's `url`). */
  enrollmentUrl: string;
  /** Our Setup Assistant sign-in page (Apple's `configuration_web_url`), for modern authentication. */
  configurationWebUrl: string;
  /** Apple's `org_magic` (required by its schema): one value per organization; pass the tenant id. */
  orgMagic?: string;
  /** Trust anchors for the MDM server's TLS certificate, when it doesn't chain to a public root. */
  anchorCertsDer?: readonly Uint8Array[];
  /** Hosts (e.g. the organization's own Apple Configurator) that may always pair, unless pairing is denied. */
  supervisingHostCertsDer?: readonly Uint8Array[];
  /** Setup Assistant language and region for Macs (ISO 639-1/2 and ISO 3166-1 alpha-2). */
  language?: string;
  region?: string;
}

function absoluteHttps(what: string, value: string, base: string): string {
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    throw new Error(`${what} '${value}' is not a URL`);
  }
  // Devices only enroll over https.
  if (url.protocol !== 'https:') throw new Error(`${what} must be an https URL, not '${url.href}'`);
  return url.href;
}

const base64 = (der: Uint8Array) => Buffer.from(der).toString('base64');

/**
 * The Apple profile for `profile`.
 * - url: our enrollment endpoint. Setup Assistant (legacy) authenticates there: the server
 *   answers the MachineInfo POST with 401 and Setup Assistant asks for a user name and password.
 * - configuration_web_url: only for "Setup Assistant with modern authentication", which runs in
 *   Setup Assistant's web view. Company Portal authenticates after enrollment, Platform SSO
 *   through `url`, and profiles without user affinity don't authenticate.
 * - skip_setup_items: every hidden pane; Shared iPad skips them all. Keys Apple no longer lists
 *   (ExpressLanguage, PreferredLanguage, Registration) stay in enabledSkipKeys but aren't sent.
 * - allow_pairing / supervising_host_certs: Sync with computers (iOS). Deny all sends neither.
 */
export function toAppleProfile(profile: DepProfileContent, options: AppleProfileOptions): DepProfile {
  const s = profile.settings;
  const ios = profile.platform === 'iOS' ? profile.settings : null;
  const mac = profile.platform === 'macOS' ? profile.settings : null;

  const hidden = ios?.enableSharedIPad ? panesFor('iOS').map((p) => p.skipKey) : enabledSkipKeys(profile.platform, s as unknown as Record<string, unknown>);
  const skip = [...new Set(hidden)].filter((k) => APPLE_SKIP_KEYS.has(k));

  const hostCerts: string[] = [];
  if (ios && ios.iTunesPairingMode !== 'disallow') {
    if (ios.iTunesPairingMode === 'requiresCertificate') hostCerts.push(...ios.managementCertificates.map((c) => c.certificate));
    hostCerts.push(...(options.supervisingHostCertsDer ?? []).map(base64));
  }

  const out: DepProfile = {
    profile_name: profile.displayName,
    url: absoluteHttps('enrollmentUrl', options.enrollmentUrl, options.serverUrl),
    ...(profileAuthenticationMethod(profile) === 'setupAssistantModern'
      ? { configuration_web_url: absoluteHttps('configurationWebUrl', options.configurationWebUrl, options.serverUrl) }
      : {}),
    ...(ios ? { allow_pairing: ios.iTunesPairingMode === 'allow' } : {}),
    is_supervised: s.supervisedModeEnabled,
    is_mandatory: s.isMandatory,
    is_mdm_removable: !s.profileRemovalDisabled,
    ...(ios ? { is_multi_user: ios.enableSharedIPad } : {}),
    await_device_configured: s.waitForDeviceConfiguredConfirmation || (ios?.awaitDeviceConfiguredConfirmation ?? false),
    ...(mac ? { auto_advance_setup: mac.autoAdvanceSetupEnabled } : {}),
    ...(s.supportDepartment !== null ? { department: s.supportDepartment } : {}),
    ...(s.supportPhoneNumber !== null ? { support_phone_number: s.supportPhoneNumber } : {}),
    org_magic: options.orgMagic ?? defaultOrgMagic(options.serverUrl),
    ...(mac && options.language ? { language: options.language } : {}),
    ...(mac && options.region ? { region: options.region } : {}),
    ...(options.anchorCertsDer?.length ? { anchor_certs: options.anchorCertsDer.map(base64) } : {}),
    ...(hostCerts.length ? { supervising_host_certs: [...new Set(hostCerts)] } : {}),
    skip_setup_items: skip,
  };
  const problems = checkAppleProfile(out);
  if (problems.length > 0) throw new Error(`The Apple profile for '${profile.displayName}' is invalid: ${problems.join('; ')}`);
  return out;
}

/** A stable org_magic when the caller gives none: derived from the server's origin. */
function defaultOrgMagic(serverUrl: string): string {
  let origin = serverUrl;
  try {
    origin = new URL(serverUrl).origin;
  } catch {
    // keep the string as given
  }
  const h = createHash('sha256').update(origin).digest('hex').toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Limits Apple's define-profile service enforces beyond its schema. */
export const APPLE_LIMITS = { profileName: 125, department: 125, supportPhoneNumber: 50, orgMagic: 256 } as const;

type PropSchema = { type: string; items?: { type: string }; minLength?: number; maxLength?: number; format?: string };

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function typeOk(v: unknown, type: string): boolean {
  return type === 'array' ? Array.isArray(v) : type === 'object' ? v !== null && typeof v === 'object' && !Array.isArray(v) : typeof v === type;
}

function formatOk(v: string, format: string | undefined): boolean {
  if (format === 'email') return EMAIL.test(v);
  if (format === 'uri') {
    try {
      return /^[a-z][a-z0-9+.-]*:/i.test(v) && new URL(v).href.length > 0;
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Problems with an Apple profile: Apple's JSON Schema (required keys, types, lengths, formats;
 * keys it doesn't define), then what its descriptions add: is_mdm_removable can be false only when
 * is_supervised is true; skip keys from Apple's list; base64 DER certificates; https URLs;
 * ISO language and region codes. Empty when valid.
 */
export function checkAppleProfile(profile: unknown): string[] {
  const problems: string[] = [];
  if (!typeOk(profile, 'object')) return ['must be a JSON object'];
  const p = profile as Record<string, unknown>;
  const props = APPLE_PROFILE_SCHEMA.properties as Record<string, PropSchema>;
  for (const k of APPLE_PROFILE_SCHEMA.required) if (!(k in p)) problems.push(`${k} is required`);
  for (const [k, v] of Object.entries(p)) {
    const schema = props[k];
    if (!schema) {
      problems.push(`${k} is not a Profile key`);
      continue;
    }
    if (!typeOk(v, schema.type)) {
      problems.push(`${k} must be ${schema.type}`);
      continue;
    }
    if (typeof v === 'string') {
      const n = [...v].length;
      if (schema.minLength !== undefined && n < schema.minLength) problems.push(`${k} must have at least ${schema.minLength} characters`);
      if (schema.maxLength !== undefined && n > schema.maxLength) problems.push(`${k} must have at most ${schema.maxLength} characters`);
      if (!formatOk(v, schema.format)) problems.push(`${k} must be a ${schema.format}`);
    }
    if (Array.isArray(v) && schema.items && v.some((x) => !typeOk(x, schema.items!.type))) problems.push(`${k} must hold only ${schema.items.type}s`);
  }
  if (problems.length > 0) return problems;

  if (p.is_mdm_removable === false && p.is_supervised !== true) problems.push('is_mdm_removable can be false only when is_supervised is true');
  // Apple's define-profile errors: CONFIG_NAME_REQUIRED/INVALID, CONFIG_URL_REQUIRED, DEPARTMENT_INVALID, SUPPORT_PHONE_INVALID, MAGIC_INVALID.
  const text = (k: string, max: number) => {
    const v = p[k];
    if (typeof v === 'string' && (v.trim() === '' || [...v].length > max)) problems.push(`${k} must be 1 to ${max} characters`);
  };
  if (!('profile_name' in p)) problems.push('profile_name is required');
  if (!('url' in p)) problems.push('url is required');
  text('profile_name', APPLE_LIMITS.profileName);
  text('department', APPLE_LIMITS.department);
  text('support_phone_number', APPLE_LIMITS.supportPhoneNumber);
  text('org_magic', APPLE_LIMITS.orgMagic);
  for (const k of ['url', 'configuration_web_url'] as const) {
    if (typeof p[k] === 'string' && !(p[k] as string).startsWith('https://')) problems.push(`${k} must be an https URL`);
  }
  const skip = (p.skip_setup_items as string[] | undefined) ?? [];
  const unknownKeys = skip.filter((k) => !APPLE_SKIP_KEYS.has(k));
  if (unknownKeys.length) problems.push(`skip_setup_items has unknown keys: ${unknownKeys.join(', ')}`);
  if (new Set(skip).size !== skip.length) problems.push('skip_setup_items has duplicates');
  for (const k of ['anchor_certs', 'supervising_host_certs'] as const) {
    const certs = (p[k] as string[] | undefined) ?? [];
    certs.forEach((c, i) => {
      if (!isBase64DerCertificate(c)) problems.push(`${k}[${i}] must be a base64 DER certificate`);
    });
  }
  if (typeof p.language === 'string' && !/^[a-z]{2,3}$/i.test(p.language)) problems.push('language must be an ISO 639 code such as en');
  if (typeof p.region === 'string' && !/^[A-Z]{2}$/.test(p.region)) problems.push('region must be an ISO 3166-1 code such as US');
  return problems;
}
