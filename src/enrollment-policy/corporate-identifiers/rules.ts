import { identityValue } from '../../devices/model.js';
import type { EnrollmentMethod, RestrictionPlatform } from '../evaluation/types.js';

/*
 * Corporate device identifiers (requirements-004-A §8; Graph importedDeviceIdentity): what a valid
 * identifier is, how identifiers and devices are normalised so they match, and which platforms
 * honour which identifier type. Pure: no I/O.
 */

/** Graph importedDeviceIdentityType, without `unknown` (nothing may be imported as unknown). */
export const IDENTITY_TYPES = ['imei', 'serialNumber', 'manufacturerModelSerial'] as const;
export type IdentityType = (typeof IDENTITY_TYPES)[number];

/** Graph enrollmentState (graph §14). OpenEnroll sets notContacted, enrolled and unknown. */
export const ENROLLMENT_STATES = ['unknown', 'enrolled', 'pendingReset', 'failed', 'notContacted', 'blocked'] as const;
export type EnrollmentState = (typeof ENROLLMENT_STATES)[number];

/** Graph platform (graph §14), without the read-only sentinel. */
export const IDENTITY_PLATFORMS = ['unknown', 'ios', 'android', 'windows', 'windowsMobile', 'macOS', 'visionOS', 'tvOS'] as const;
export type IdentityPlatform = (typeof IDENTITY_PLATFORMS)[number];

export const CORPORATE_IDENTIFIER_LIMITS = {
  /** "The current limit is 5,000 rows per .csv file" (L1048); also per importDeviceIdentityList call. */
  maxRows: 5000,
  /** "5,000 devices or 5 MB per .csv file" (L1050); MiB, as the user CSV import. */
  maxBytes: 5 * 1024 * 1024,
  /** "Details are limited to 128 characters" (L1048), counted in Unicode code points. */
  maxDetails: 128,
  /** A serial number (alone or inside manufacturer,model,serial); the device record keeps 128. */
  maxSerial: 128,
  maxManufacturer: 64,
  maxModel: 64,
  /** One CSV row; far above any valid row, it stops a file that is one huge line. */
  maxRecordChars: 4096,
} as const;

/** Intune's value for a DateTimeOffset that was never set (lastContactedDateTime of a new identifier). */
export const NEVER = '0001-01-01T00:00:00Z';

export type Parsed = { ok: true; identifier: string; key: string } | { ok: false; problem: string };

const fail = (problem: string): Parsed => ({ ok: false, problem });

// ---- IMEI (3GPP TS 23.003) ----

/** Pure: the Luhn check digit for a string of digits (3GPP TS 23.003 Annex B). */
export function luhnCheckDigit(digits: string): number {
  let sum = 0;
  // Doubling starts with the rightmost digit of the payload (the check digit goes after it).
  for (let i = digits.length - 1, double = true; i >= 0; i--, double = !double) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/** Pure: a full number (payload + check digit) passes the Luhn check. */
export function luhnValid(digits: string): boolean {
  if (!/^\d{2,}$/.test(digits)) return false;
  return luhnCheckDigit(digits.slice(0, -1)) === Number(digits[digits.length - 1]);
}

/**
 * An IMEI is accepted as the seed writes it, 14 digits (TAC + serial, L1024, L1048 and the example
 * rows), or as devices report it, 15 digits whose last is the Luhn check digit. Spaces (Apple shows
 * "35 209900 176148 1") are dropped. Both forms match the same device: the key is the first 14 digits.
 */
export function parseImei(raw: string): Parsed {
  const v = raw.trim().replace(/ /g, '');
  if (v === '') return fail('the IMEI is empty');
  if (!/^\d+$/.test(v)) return fail(`'${raw.trim()}' is not an IMEI: an IMEI has 14 or 15 digits and nothing else`);
  if (v.length !== 14 && v.length !== 15) return fail(`'${v}' is not an IMEI: it has ${v.length} digits, not 14 or 15`);
  if (/^0+$/.test(v)) return fail(`'${v}' is a placeholder devices report when they have no IMEI`);
  if (v.length === 15 && !luhnValid(v)) {
    return fail(`'${v}' is not a valid IMEI: its last digit should be the check digit ${luhnCheckDigit(v.slice(0, 14))} (Luhn, 3GPP TS 23.003)`);
  }
  return { ok: true, identifier: v, key: v.slice(0, 14) };
}

/** Pure: the 14-digit key of an IMEI a device reports, or undefined when it has none usable. */
export function deviceImeiKey(imei: string | null | undefined): string | undefined {
  const digits = (imei ?? '').replace(/[\s-]/g, '');
  if (!/^\d{14,16}$/.test(digits) || /^0+$/.test(digits)) return undefined;
  return digits.slice(0, 14);
}

/** Pure: the forms a device may have stored for a 14-digit key (for an indexed lookup). */
export function imeiCandidates(key: string): string[] {
  const full = key + String(luhnCheckDigit(key));
  // Apple's grouping: 2 6 6 1.
  const spaced = `${full.slice(0, 2)} ${full.slice(2, 8)} ${full.slice(8, 14)} ${full.slice(14)}`;
  return [key, full, spaced];
}

// ---- serial numbers ----

/**
 * A serial number: letters, digits and hyphens (Windows VM serials use hyphens), at most 128
 * characters. A period is refused ("Serial numbers with dots are not supported", L1063), and so are
 * placeholders like "0" or "To be filled by O.E.M." that devices report when they have no serial.
 * Serials compare without regard to case.
 */
export function parseSerial(raw: string): Parsed {
  const v = raw.trim();
  if (v === '') return fail('the serial number is empty');
  if (v.includes('.')) return fail(`serial number '${v}' contains a period (.); serial numbers with periods aren't supported`);
  if (identityValue(v) === undefined) return fail(`'${v}' is a placeholder devices report when they have no serial number`);
  if (!/^[A-Za-z0-9-]+$/.test(v)) return fail(`serial number '${v}' may contain only letters, digits and hyphens`);
  if (!/[A-Za-z0-9]/.test(v)) return fail(`serial number '${v}' has no letter or digit`);
  if (v.length > CORPORATE_IDENTIFIER_LIMITS.maxSerial) return fail(`serial number is ${v.length} characters; at most ${CORPORATE_IDENTIFIER_LIMITS.maxSerial} are allowed`);
  return { ok: true, identifier: v, key: v.toUpperCase() };
}

/** True when the serial part of a value contains a period: the seed fails the whole upload for it. */
export function serialHasPeriod(type: IdentityType, raw: string): boolean {
  if (type === 'serialNumber') return raw.includes('.');
  if (type === 'manufacturerModelSerial') {
    const parts = splitTuple(raw);
    return parts !== undefined && parts.length === 3 && parts[2]!.includes('.');
  }
  return false;
}

// ---- manufacturer, model, serial (Windows) ----

/**
 * Graph's enum text says a "semi-colon delimited tuple with enforced order", every public client
 * sends commas ("Dell,XPS,ABC123"; graph §6 and §16 item 6). Both are accepted, not mixed; the stored
 * form uses commas.
 */
function splitTuple(raw: string): string[] | undefined {
  const hasComma = raw.includes(',');
  const hasSemicolon = raw.includes(';');
  if (hasComma && hasSemicolon) return undefined;
  return raw.split(hasSemicolon ? ';' : ',');
}

const squeeze = (s: string) => s.trim().replace(/\s+/g, ' ');

function textPart(name: string, v: string, max: number): string | undefined {
  if (v === '') return `the ${name} is empty`;
  if (v.length > max) return `the ${name} is ${v.length} characters; at most ${max} are allowed`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) return `the ${name} contains control characters`;
  return undefined;
}

export function parseManufacturerModelSerial(raw: string): Parsed {
  const parts = splitTuple(raw.trim());
  if (!parts) return fail(`'${raw.trim()}' mixes commas and semicolons; write manufacturer,model,serial`);
  if (parts.length !== 3) return fail(`'${raw.trim()}' has ${parts.length} part${parts.length === 1 ? '' : 's'}; write manufacturer,model,serial`);
  const manufacturer = squeeze(parts[0]!);
  const model = squeeze(parts[1]!);
  const problem = textPart('manufacturer', manufacturer, CORPORATE_IDENTIFIER_LIMITS.maxManufacturer) ?? textPart('model', model, CORPORATE_IDENTIFIER_LIMITS.maxModel);
  if (problem) return fail(problem);
  const serial = parseSerial(parts[2]!);
  if (!serial.ok) return serial;
  const identifier = `${manufacturer},${model},${serial.identifier}`;
  return { ok: true, identifier, key: mmsKey(manufacturer, model, serial.identifier) };
}

const mmsKey = (manufacturer: string, model: string, serial: string) => [squeeze(manufacturer), squeeze(model), serial.trim()].map((p) => p.toUpperCase()).join(',');

/** Pure: validates and normalises an identifier of the given type. */
export function parseIdentifier(type: IdentityType, raw: string): Parsed {
  switch (type) {
    case 'imei':
      return parseImei(raw);
    case 'serialNumber':
      return parseSerial(raw);
    case 'manufacturerModelSerial':
      return parseManufacturerModelSerial(raw);
  }
}

/** Pure: details are optional, at most 128 characters; empty means none. */
export function parseDetails(raw: string | null | undefined): { ok: true; details: string | null } | { ok: false; problem: string } {
  if (raw === null || raw === undefined) return { ok: true, details: null };
  const v = raw.trim();
  if (v === '') return { ok: true, details: null };
  const length = [...v].length;
  if (length > CORPORATE_IDENTIFIER_LIMITS.maxDetails) {
    return { ok: false, problem: `details are ${length} characters; at most ${CORPORATE_IDENTIFIER_LIMITS.maxDetails} are allowed` };
  }
  return { ok: true, details: v };
}

/**
 * Pure: the type a lone value looks like, to catch a file of one type uploaded as another.
 * A 15-digit value passing the Luhn check is an IMEI; 14 digits stay ambiguous (the seed calls its
 * 14-digit example "IMEI or serial numbers"), so they are never called an IMEI in a serial file.
 */
export function looksLikeImei(raw: string): boolean {
  const v = raw.trim().replace(/ /g, '');
  return /^\d{15}$/.test(v) && luhnValid(v);
}

// ---- platform support (L1028–1042; -E §5.3; Windows takes manufacturer+model+serial only) ----

export interface IdentifierContext {
  platform?: RestrictionPlatform | null;
  method?: EnrollmentMethod | null;
  osVersion?: string | null;
}

const ALL: readonly IdentityType[] = IDENTITY_TYPES;
const IMEI_AND_SERIAL: readonly IdentityType[] = ['imei', 'serialNumber'];
const NONE: readonly IdentityType[] = [];

function major(osVersion: string | null | undefined): number | undefined {
  const m = /^\s*(\d+)/.exec(osVersion ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Below `limit`, or version unknown (the device didn't say, so it isn't ruled out). */
const before = (osVersion: string | null | undefined, limit: number) => {
  const v = major(osVersion);
  return v === undefined || v < limit;
};

/**
 * Pure: which identifier types make a device corporate on this platform and enrollment method.
 * Windows: manufacturer+model+serial; iOS/iPadOS: IMEI and serial; macOS: serial only; Android
 * device administrator before 10 and personally-owned work profile before 12: IMEI and serial;
 * Android corporate-owned work profile, fully managed, dedicated and AOSP: none (they are
 * corporate by their method). Unknown platform: every type.
 */
export function supportedIdentityTypes(ctx: IdentifierContext): readonly IdentityType[] {
  const method = ctx.method ?? undefined;
  if (method) {
    if (['androidCorporateWorkProfile', 'androidFullyManaged', 'androidDedicated', 'androidAospUser', 'androidAospUserless'].includes(method)) return NONE;
    if (method === 'androidWorkProfile') return before(ctx.osVersion, 12) ? IMEI_AND_SERIAL : NONE;
    if (method.startsWith('windows')) return ['manufacturerModelSerial'];
  }
  switch (ctx.platform ?? undefined) {
    case undefined:
      return ALL;
    case 'ios':
      return IMEI_AND_SERIAL;
    case 'mac':
      return ['serialNumber'];
    case 'windows':
      return ['manufacturerModelSerial'];
    case 'androidForWork':
      return before(ctx.osVersion, 12) ? IMEI_AND_SERIAL : NONE;
    case 'android':
      return before(ctx.osVersion, 10) ? IMEI_AND_SERIAL : NONE;
    default:
      return NONE; // windowsPhone, linux: not in the seed's table
  }
}

/** What a device reports that identifiers are compared with. */
export interface DeviceIdentity {
  imei?: string | null;
  serialNumber?: string | null;
  manufacturer?: string | null;
  model?: string | null;
}

export interface MatchKey {
  type: IdentityType;
  key: string;
}

/** Pure: the (type, key) pairs a device could match, limited to the types its context honours. */
export function deviceMatchKeys(device: DeviceIdentity, types: readonly IdentityType[] = ALL): MatchKey[] {
  const out: MatchKey[] = [];
  const serial = identityValue(device.serialNumber);
  for (const type of types) {
    if (type === 'imei') {
      const key = deviceImeiKey(device.imei);
      if (key) out.push({ type, key });
    } else if (type === 'serialNumber') {
      if (serial) out.push({ type, key: serial.toUpperCase() });
    } else {
      const manufacturer = device.manufacturer?.trim();
      const model = device.model?.trim();
      if (serial && manufacturer && model) out.push({ type, key: mmsKey(manufacturer, model, serial) });
    }
  }
  return out;
}

/** The columns of a managed device that decide its identifier context. */
export interface DeviceContextRow {
  operating_system: string | null;
  device_type: string;
  device_enrollment_type: string;
  os_version: string | null;
}

const ENROLLMENT_TYPE_METHODS: Partial<Record<string, EnrollmentMethod>> = {
  androidEnterpriseCorporateWorkProfile: 'androidCorporateWorkProfile',
  androidEnterpriseFullyManaged: 'androidFullyManaged',
  androidEnterpriseDedicatedDevice: 'androidDedicated',
  androidAOSPUserOwnedDeviceEnrollment: 'androidAospUser',
  androidAOSPUserlessDeviceEnrollment: 'androidAospUserless',
};

/** Pure: the identifier context of an enrolled device record. */
export function deviceContext(row: DeviceContextRow): IdentifierContext {
  const method = ENROLLMENT_TYPE_METHODS[row.device_enrollment_type];
  const os = (row.operating_system ?? '').toLowerCase();
  const type = row.device_type;
  let platform: RestrictionPlatform | undefined;
  if (type === 'androidEnterprise') return { method: method ?? 'androidFullyManaged', osVersion: row.os_version };
  if (type === 'androidForWork') platform = 'androidForWork';
  else if (type === 'android' || os.startsWith('android')) platform = 'android';
  else if (['iPhone', 'iPad', 'iPod'].includes(type) || os.startsWith('ios') || os.startsWith('ipados')) platform = 'ios';
  else if (type === 'mac' || type === 'macMDM' || os.startsWith('mac')) platform = 'mac';
  else if (['desktop', 'windowsRT', 'surfaceHub', 'holoLens', 'windows10x', 'cloudPC'].includes(type) || os.startsWith('windows')) platform = 'windows';
  return { platform, method, osVersion: row.os_version };
}

/** Pure: the Graph platform an identifier shows once a device of this context matched it. */
export function identityPlatformOf(ctx: IdentifierContext): IdentityPlatform {
  switch (ctx.platform) {
    case 'ios':
      return 'ios';
    case 'mac':
      return 'macOS';
    case 'windows':
      return 'windows';
    case 'android':
    case 'androidForWork':
      return 'android';
    default:
      return ctx.method?.startsWith('android') ? 'android' : 'unknown';
  }
}
