import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { invalidProperty, badRequest } from '../../graph/errors.js';
import { buildPlist, parsePlistDict, PlistError, type PlistValue } from '../../shared/plist.js';
import type { MacProfileSettings } from '../ade/profiles/index.js';

/**
 * The commands the MDM core sends (Apple's mdm/commands/*.yaml): builders for the ones the system
 * queues itself, and the shape check for what admins may queue through the API. Pure, except the
 * PBKDF2 of an admin account password.
 */

/** Request types an admin may queue through appleMdmCommands. */
export const ADMIN_REQUEST_TYPES = ['DeviceInformation', 'ProfileList', 'InstallProfile', 'Settings', 'DeviceConfigured'] as const;
export type AdminRequestType = (typeof ADMIN_REQUEST_TYPES)[number];

/** What we ask for at enrollment and on each inventory refresh. */
export const DEVICE_INFORMATION_QUERIES = [
  'UDID',
  'DeviceName',
  'OSVersion',
  'BuildVersion',
  'ModelName',
  'Model',
  'ProductName',
  'SerialNumber',
  'IMEI',
  'MEID',
  'WiFiMAC',
  'PhoneNumber',
  'IsSupervised',
  'AwaitingConfiguration',
] as const;

/** User Enrollment hides the device's hardware identifiers ("userenrollment: forbidden"). */
export const USER_ENROLLMENT_QUERIES = ['DeviceName', 'OSVersion', 'BuildVersion', 'ModelName', 'Model', 'ProductName', 'IsSupervised'] as const;

export interface CommandSpec {
  requestType: string;
  payload: Record<string, PlistValue>;
}

export const deviceInformation = (userEnrollment = false): CommandSpec => ({
  requestType: 'DeviceInformation',
  payload: { Queries: [...(userEnrollment ? USER_ENROLLMENT_QUERIES : DEVICE_INFORMATION_QUERIES)] },
});

export const settingsDeviceName = (name: string): CommandSpec => ({ requestType: 'Settings', payload: { Settings: [{ Item: 'DeviceName', DeviceName: name }] } });

export const deviceConfigured = (): CommandSpec => ({ requestType: 'DeviceConfigured', payload: {} });

export const profileList = (): CommandSpec => ({ requestType: 'ProfileList', payload: { ManagedOnly: false } });

/** The name a Settings command sets, when it is a DeviceName setting. */
export function deviceNameOf(payload: Record<string, PlistValue> | undefined): string | undefined {
  const settings = payload?.Settings;
  if (!Array.isArray(settings)) return undefined;
  for (const s of settings) {
    if (s && typeof s === 'object' && !Array.isArray(s) && !Buffer.isBuffer(s) && !(s instanceof Date)) {
      const item = s as Record<string, PlistValue>;
      if (item.Item === 'DeviceName' && typeof item.DeviceName === 'string') return item.DeviceName;
    }
  }
  return undefined;
}

// ---- AccountConfiguration (macOS Setup Assistant) --------------------------------------------

/** Apple's ShadowHashData: 128 bytes of PBKDF2-HMAC-SHA512 over a 32-byte salt. */
const HASH_BYTES = 128;
const SALT_BYTES = 32;
export const PASSWORD_HASH_ITERATIONS = 40_000;

const pbkdf2 = promisify(crypto.pbkdf2);

/** The passwordHash of AutoSetupAdminAccounts: an XML plist {SALTED-SHA512-PBKDF2: {entropy, salt, iterations}}. */
export async function macPasswordHash(password: string, opts: { salt?: Buffer; iterations?: number } = {}): Promise<Buffer> {
  const salt = opts.salt ?? crypto.randomBytes(SALT_BYTES);
  const iterations = opts.iterations ?? PASSWORD_HASH_ITERATIONS;
  const entropy = await pbkdf2(Buffer.from(password, 'utf8'), salt, iterations, HASH_BYTES, 'sha512');
  return Buffer.from(buildPlist({ 'SALTED-SHA512-PBKDF2': { entropy, salt, iterations } }), 'utf8');
}

/** Whether a macOS profile sets up accounts, so Setup Assistant needs AccountConfiguration. */
export function configuresAccounts(s: MacProfileSettings): boolean {
  return (
    s.adminAccountUserName !== null ||
    s.primaryAccountUserName !== null ||
    s.primaryAccountFullName !== null ||
    s.skipPrimarySetupAccountCreation ||
    s.setPrimarySetupAccountAsRegularUser ||
    s.dontAutoPopulatePrimaryAccountInfo ||
    s.enableRestrictEditing
  );
}

const VARIABLE = /\{\{([^{}]*)\}\}/g;

/** {{partialupn}} / {{username}} from the enrolling user; undefined when a variable can't be filled. */
export function fillAccountVariables(value: string, user: { userPrincipalName: string; displayName: string } | undefined): string | undefined {
  let missing = false;
  const out = value.replace(VARIABLE, (whole, name: string) => {
    const v = name.trim().toLowerCase();
    if (v === 'partialupn' && user) return user.userPrincipalName.split('@')[0] ?? '';
    if (v === 'username' && user) return user.displayName;
    missing = true;
    return whole;
  });
  return missing ? undefined : out;
}

/** AccountConfiguration from a macOS ADE profile (admin account password already hashed). */
export function accountConfiguration(
  s: MacProfileSettings,
  opts: { adminPasswordHash?: Buffer; user?: { userPrincipalName: string; displayName: string } },
): CommandSpec {
  const payload: Record<string, PlistValue> = {
    SkipPrimarySetupAccountCreation: s.skipPrimarySetupAccountCreation,
    SetPrimarySetupAccountAsRegularUser: s.setPrimarySetupAccountAsRegularUser,
    DontAutoPopulatePrimaryAccountInfo: s.dontAutoPopulatePrimaryAccountInfo,
    LockPrimaryAccountInfo: s.enableRestrictEditing,
  };
  if (s.primaryAccountFullName !== null) {
    const v = fillAccountVariables(s.primaryAccountFullName, opts.user);
    if (v !== undefined) payload.PrimaryAccountFullName = v;
  }
  if (s.primaryAccountUserName !== null) {
    const v = fillAccountVariables(s.primaryAccountUserName, opts.user);
    if (v !== undefined) payload.PrimaryAccountUserName = v;
  }
  if (s.adminAccountUserName !== null) {
    const admin: Record<string, PlistValue> = { shortName: s.adminAccountUserName, hidden: s.hideAdminAccount };
    if (s.adminAccountFullName !== null) admin.fullName = s.adminAccountFullName;
    if (opts.adminPasswordHash) admin.passwordHash = opts.adminPasswordHash;
    payload.AutoSetupAdminAccounts = [admin];
  }
  return { requestType: 'AccountConfiguration', payload };
}

// ---- admin-queued commands -------------------------------------------------------------------

/** The largest profile an admin may install (Apple sets no limit; this keeps the command under the report limit). */
export const MAX_INSTALL_PROFILE_BYTES = 1024 * 1024;
const QUERY_NAME = /^[A-Za-z][A-Za-z0-9]{0,63}$/;
const BASE64 = /^[A-Za-z0-9+/\r\n ]*={0,2}[\r\n ]*$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function onlyKeys(o: Record<string, unknown>, allowed: readonly string[], path: string): void {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length > 0) {
    throw badRequest(`Property '${path}.${extra[0]}' is not a key of this command; allowed: ${allowed.length ? allowed.join(', ') : 'none'}.`, `${path}.${extra[0]}`);
  }
}

/**
 * Checks an admin's {requestType, payload} and turns it into the command's plist keys (Apple's
 * key names; `data` values arrive as base64). Throws a 400 naming the property.
 */
export function adminCommand(requestType: unknown, payload: unknown): CommandSpec {
  if (typeof requestType !== 'string' || !(ADMIN_REQUEST_TYPES as readonly string[]).includes(requestType)) {
    throw invalidProperty('requestType', `must be one of ${ADMIN_REQUEST_TYPES.map((t) => `'${t}'`).join(', ')}.`);
  }
  const p = payload === undefined || payload === null ? {} : payload;
  if (!isObject(p)) throw invalidProperty('payload', 'must be an object with the command keys.');
  switch (requestType as AdminRequestType) {
    case 'DeviceInformation': {
      onlyKeys(p, ['Queries'], 'payload');
      if (p.Queries === undefined) return deviceInformation();
      if (!Array.isArray(p.Queries) || p.Queries.length === 0 || p.Queries.length > 100 || p.Queries.some((q) => typeof q !== 'string' || !QUERY_NAME.test(q))) {
        throw invalidProperty('payload.Queries', 'must be 1 to 100 query names such as "OSVersion".');
      }
      return { requestType, payload: { Queries: [...new Set(p.Queries as string[])] } };
    }
    case 'ProfileList': {
      onlyKeys(p, ['ManagedOnly'], 'payload');
      if (p.ManagedOnly !== undefined && typeof p.ManagedOnly !== 'boolean') throw invalidProperty('payload.ManagedOnly', 'must be true or false.');
      return { requestType, payload: p.ManagedOnly === undefined ? {} : { ManagedOnly: p.ManagedOnly } };
    }
    case 'InstallProfile': {
      onlyKeys(p, ['Payload'], 'payload');
      if (typeof p.Payload !== 'string' || p.Payload.trim() === '' || !BASE64.test(p.Payload)) {
        throw invalidProperty('payload.Payload', 'must be the profile (.mobileconfig, signed or not) in base64.');
      }
      const bytes = Buffer.from(p.Payload, 'base64');
      if (bytes.length > MAX_INSTALL_PROFILE_BYTES) throw invalidProperty('payload.Payload', `must be at most ${MAX_INSTALL_PROFILE_BYTES} bytes.`);
      checkProfileBytes(bytes);
      return { requestType, payload: { Payload: bytes } };
    }
    case 'Settings': {
      onlyKeys(p, ['Settings'], 'payload');
      const settings = p.Settings;
      if (!Array.isArray(settings) || settings.length !== 1) throw invalidProperty('payload.Settings', 'must hold one setting: {"Item": "DeviceName", "DeviceName": "…"}.');
      const item: unknown = settings[0];
      if (!isObject(item) || item.Item !== 'DeviceName') throw invalidProperty('payload.Settings[0].Item', "must be 'DeviceName' (the only setting supported).");
      onlyKeys(item, ['Item', 'DeviceName'], 'payload.Settings[0]');
      return settingsDeviceName(checkDeviceName('payload.Settings[0].DeviceName', item.DeviceName));
    }
    case 'DeviceConfigured':
      onlyKeys(p, [], 'payload');
      return deviceConfigured();
  }
}

/** Device names: 1–255 characters, no control characters (Apple's own limit on a device name). */
export function checkDeviceName(property: string, v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '') throw invalidProperty(property, 'must be a non-empty string.');
  const name = v.trim();
  if ([...name].length > 255) throw invalidProperty(property, 'must be at most 255 characters.');
  for (const ch of name) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || c === 0x7f) throw invalidProperty(property, 'must not contain control characters.');
  }
  return name;
}

/** A profile is an XML plist of PayloadType Configuration, or CMS (signed / encrypted) DER. */
function checkProfileBytes(bytes: Buffer): void {
  if (bytes[0] === 0x30) return;
  try {
    const dict = parsePlistDict(bytes, { maxBytes: MAX_INSTALL_PROFILE_BYTES });
    if (dict.PayloadType !== 'Configuration') throw invalidProperty('payload.Payload', "must be a configuration profile (PayloadType 'Configuration').");
  } catch (err) {
    if (err instanceof PlistError) throw invalidProperty('payload.Payload', `is not a readable profile: ${err.message}.`);
    throw err;
  }
}
