/**
 * The payload keys of the enrollment profile as Apple's schemas state them (apple/device-management,
 * mdm/profiles: TopLevel.yaml, CommonPayloadKeys.yaml, com.apple.security.scep.yaml,
 * com.apple.security.root.yaml, com.apple.mdm.yaml): type, presence, allowed values and formats.
 * Written out by hand from the YAML so the check doesn't share code with what it checks.
 */

type PlistType = 'string' | 'integer' | 'boolean' | 'data' | 'array' | 'dictionary' | 'date' | 'real';

interface KeySpec {
  type: PlistType;
  required?: boolean;
  rangelist?: readonly (string | number)[];
  format?: RegExp;
  /** Array items / dictionary sub-keys. */
  items?: KeySpec;
  subkeys?: Record<string, KeySpec>;
  /** An arbitrary check for what the YAML says in prose. */
  check?: (v: unknown) => string | undefined;
}

const UUID = /^[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}$/;
const HTTPS = /^https:\/\/.*$/;

const COMMON: Record<string, KeySpec> = {
  PayloadIdentifier: { type: 'string', required: true },
  PayloadUUID: { type: 'string', required: true },
  PayloadType: { type: 'string', required: true },
  PayloadVersion: { type: 'integer', required: true, rangelist: [1] },
  PayloadDescription: { type: 'string' },
  PayloadDisplayName: { type: 'string' },
  PayloadOrganization: { type: 'string' },
};

export const TOP_LEVEL: Record<string, KeySpec> = {
  PayloadIdentifier: { type: 'string', required: true },
  PayloadUUID: { type: 'string', required: true },
  PayloadType: { type: 'string', required: true, rangelist: ['Configuration'] },
  PayloadVersion: { type: 'integer', required: true, rangelist: [1] },
  IsEncrypted: { type: 'boolean' },
  PayloadContent: { type: 'array', required: true, items: { type: 'dictionary' } },
  EncryptedPayloadContent: { type: 'data' },
  PayloadDescription: { type: 'string' },
  PayloadDisplayName: { type: 'string' },
  HasRemovalPasscode: { type: 'boolean' },
  PayloadOrganization: { type: 'string' },
  PayloadRemovalDisallowed: { type: 'boolean' },
  PayloadScope: { type: 'string', rangelist: ['System', 'User'] },
  RemovalDate: { type: 'date' },
  DurationUntilRemoval: { type: 'real' },
  PayloadExpirationDate: { type: 'date' },
  TargetDeviceType: { type: 'integer', rangelist: [0, 1, 2, 3, 4, 5, 6] },
  ConsentText: { type: 'dictionary' },
};

const SCEP_CONTENT: Record<string, KeySpec> = {
  URL: { type: 'string', required: true },
  Name: { type: 'string' },
  Subject: {
    type: 'array',
    items: { type: 'array', items: { type: 'array', items: { type: 'string' }, check: (v) => (Array.isArray(v) && v.length === 2 ? undefined : 'a subject pair has two strings') } },
  },
  Challenge: { type: 'string' },
  Keysize: { type: 'integer', rangelist: [1024, 2048, 4096] },
  'Key Type': { type: 'string', check: (v) => (v === 'RSA' ? undefined : 'Key Type is always RSA') },
  'Key Usage': { type: 'integer', check: (v) => (typeof v === 'number' && (v & ~5) === 0 ? undefined : 'Key Usage is a mask of 1 and 4') },
  CAFingerprint: { type: 'data' },
  Retries: { type: 'integer' },
  RetryDelay: { type: 'integer' },
  SubjectAltName: { type: 'dictionary' },
  KeyIsExtractable: { type: 'boolean' },
  AllowAllAppsAccess: { type: 'boolean' },
};

const ACCESS_RIGHTS_CHECK = (v: unknown): string | undefined => {
  if (typeof v !== 'number' || v <= 0 || v > 8191) return 'AccessRights is a non-zero mask of the 13 rights';
  if (v & 2 && !(v & 1)) return 'AccessRights 2 needs 1';
  if (v & 128 && !(v & 64)) return 'AccessRights 128 needs 64';
  return undefined;
};

export const PAYLOADS: Record<string, Record<string, KeySpec>> = {
  'com.apple.security.scep': { ...COMMON, PayloadContent: { type: 'dictionary', required: true, subkeys: SCEP_CONTENT } },
  'com.apple.security.root': { ...COMMON, PayloadCertificateFileName: { type: 'string' }, PayloadContent: { type: 'data', required: true } },
  'com.apple.mdm': {
    ...COMMON,
    IdentityCertificateUUID: { type: 'string', required: true, format: UUID },
    Topic: { type: 'string', required: true, check: (v) => (typeof v === 'string' && v.startsWith('com.apple.mgmt.') ? undefined : "Topic must begin with 'com.apple.mgmt.'") },
    ServerURL: { type: 'string', required: true, format: HTTPS },
    CheckInURL: { type: 'string', format: HTTPS },
    SignMessage: { type: 'boolean' },
    AccessRights: { type: 'integer', check: ACCESS_RIGHTS_CHECK },
    UseDevelopmentAPNS: { type: 'boolean' },
    ManagedAppleID: { type: 'string' },
    AssignedManagedAppleID: { type: 'string' },
    EnrollmentMode: { type: 'string', rangelist: ['BYOD', 'ADDE'] },
    ServerURLPinningCertificateUUIDs: { type: 'array', items: { type: 'string' } },
    CheckInURLPinningCertificateUUIDs: { type: 'array', items: { type: 'string' } },
    PinningRevocationCheckRequired: { type: 'boolean' },
    ServerCapabilities: {
      type: 'array',
      items: { type: 'string', rangelist: ['com.apple.mdm.per-user-connections', 'com.apple.mdm.bootstraptoken', 'com.apple.mdm.token'] },
      check: (v) => (Array.isArray(v) && new Set(v).size === v.length ? undefined : 'ServerCapabilities is a unique array'),
    },
    CheckOutWhenRemoved: { type: 'boolean' },
    RequiredAppIDForMDM: { type: 'integer' },
    PromptUserToAllowBootstrapTokenForAuthentication: { type: 'boolean' },
  },
};

function typeOf(v: unknown): PlistType | 'unknown' {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'real';
  if (v instanceof Date) return 'date';
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return 'data';
  if (Array.isArray(v)) return 'array';
  if (v && typeof v === 'object') return 'dictionary';
  return 'unknown';
}

function checkValue(path: string, v: unknown, spec: KeySpec, problems: string[]): void {
  const t = typeOf(v);
  if (t !== spec.type) {
    problems.push(`${path}: is ${t}, Apple's schema says ${spec.type}`);
    return;
  }
  if (spec.rangelist && !spec.rangelist.includes(v as string | number)) problems.push(`${path}: ${String(v)} is not one of ${spec.rangelist.join(', ')}`);
  if (spec.format && !spec.format.test(String(v))) problems.push(`${path}: '${String(v)}' doesn't match ${String(spec.format)}`);
  const extra = spec.check?.(v);
  if (extra) problems.push(`${path}: ${extra}`);
  if (spec.items && Array.isArray(v)) v.forEach((item, i) => checkValue(`${path}[${i}]`, item, spec.items!, problems));
  if (spec.subkeys) checkDict(path, v as Record<string, unknown>, spec.subkeys, problems);
}

function checkDict(path: string, dict: Record<string, unknown>, keys: Record<string, KeySpec>, problems: string[]): void {
  for (const [k, spec] of Object.entries(keys)) if (spec.required && !(k in dict)) problems.push(`${path}.${k}: required by Apple's schema, missing`);
  for (const [k, v] of Object.entries(dict)) {
    const spec = keys[k];
    if (!spec) problems.push(`${path}.${k}: not a key of Apple's schema`);
    else checkValue(`${path}.${k}`, v, spec, problems);
  }
}

/** Every way the profile departs from Apple's schemas (empty when it conforms). */
export function profileProblems(profile: Record<string, unknown>): string[] {
  const problems: string[] = [];
  checkDict('profile', profile, TOP_LEVEL, problems);
  const uuids = new Set<string>();
  const identifiers = new Set<string>();
  for (const [i, payload] of ((profile.PayloadContent as Record<string, unknown>[] | undefined) ?? []).entries()) {
    const type = String(payload.PayloadType);
    const keys = PAYLOADS[type];
    if (!keys) {
      problems.push(`PayloadContent[${i}]: unexpected payload type ${type}`);
      continue;
    }
    checkDict(`${type}`, payload, keys, problems);
    // CommonPayloadKeys: identifiers unique within the profile; UUIDs globally unique.
    if (identifiers.has(String(payload.PayloadIdentifier))) problems.push(`${type}: PayloadIdentifier repeated`);
    if (uuids.has(String(payload.PayloadUUID))) problems.push(`${type}: PayloadUUID repeated`);
    identifiers.add(String(payload.PayloadIdentifier));
    uuids.add(String(payload.PayloadUUID));
  }
  return problems;
}
