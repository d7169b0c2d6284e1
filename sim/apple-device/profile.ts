import { certificatesOf, CryptoError, looksLikeSignedData, verifyCms } from './crypto.js';
import { DeviceError } from './errors.js';
import { isDict, parsePlistDict, PlistFormatError, type PlistDict, type PlistValue } from './plist.js';

/**
 * Configuration profiles as a device reads them: the CMS signature (verified, and its signer
 * chained to what the device trusts), then the plist, then every payload the device acts on.
 * Anything wrong throws a DeviceError, as Settings refuses to install such a profile.
 */

export interface ReadProfileOptions {
  trustAnchors: readonly string[];
  now: Date;
  /** Refuse profiles that aren't signed. */
  requireSignature: boolean;
  /** Refuse signed profiles whose signer doesn't chain to a trust anchor (a device would show "Not Verified"). */
  requireVerified: boolean;
}

export interface ReadProfile {
  dict: PlistDict;
  signed: boolean;
  /** The signer chains to a trust anchor. */
  verified: boolean;
  /** Signer first, as ProfileList reports them. */
  signerCertificates: Buffer[];
}

const malformed = (detail: string) => new DeviceError('malformedProfile', 'The profile is not valid.', detail);

export function readProfile(bytes: Buffer, opts: ReadProfileOptions): ReadProfile {
  let content = bytes;
  let signed = false;
  let verified = false;
  let signerCertificates: Buffer[] = [];
  if (looksLikeSignedData(bytes)) {
    signed = true;
    const anchors = opts.trustAnchors.flatMap((p) => certificatesOf(p));
    try {
      const v = verifyCms(bytes, { trustAnchors: anchors, now: opts.now, what: 'The profile' });
      content = v.content;
      verified = v.chain !== undefined;
      signerCertificates = v.chain ?? (v.signerDer ? [v.signerDer] : []);
    } catch (err) {
      if (err instanceof CryptoError) throw new DeviceError('badSignature', "The profile's signature is invalid.", err.message);
      throw err;
    }
    if (!verified && opts.requireVerified) {
      throw new DeviceError('unverifiedProfile', 'The profile is not verified.', "its signer doesn't chain to a certificate this device trusts");
    }
  } else if (opts.requireSignature) {
    throw new DeviceError('unsignedProfile', 'The profile is not signed.');
  }
  let dict: PlistDict;
  try {
    dict = parsePlistDict(content, 4 * 1024 * 1024);
  } catch (err) {
    if (err instanceof PlistFormatError) throw malformed(err.message);
    throw err;
  }
  checkConfiguration(dict);
  return { dict, signed, verified, signerCertificates };
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isNonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

function httpsUrl(v: unknown, what: string, schemes = ['https:']): string {
  if (!isNonEmpty(v)) throw malformed(`${what} is missing`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw malformed(`${what} '${v}' is not a URL`);
  }
  if (!schemes.includes(u.protocol)) throw malformed(`${what} must be ${schemes.join(' or ').replace(/:/g, '')}, not '${v}'`);
  return v;
}

function optional(p: PlistDict, key: string, check: (v: unknown) => boolean, type: string, where: string): void {
  if (p[key] !== undefined && !check(p[key])) throw malformed(`${where}: ${key} must be ${type}`);
}

/** The top level and every payload's common keys; then each payload type the device knows. */
export function checkConfiguration(dict: PlistDict): void {
  if (dict.PayloadType !== 'Configuration') throw malformed(`PayloadType must be Configuration, not ${JSON.stringify(dict.PayloadType ?? null)}`);
  if (dict.PayloadVersion !== 1) throw malformed('PayloadVersion must be 1');
  if (!isNonEmpty(dict.PayloadIdentifier)) throw malformed('PayloadIdentifier is missing');
  if (!isNonEmpty(dict.PayloadUUID)) throw malformed('PayloadUUID is missing');
  optional(dict, 'PayloadDisplayName', isString, 'a string', 'the profile');
  optional(dict, 'PayloadOrganization', isString, 'a string', 'the profile');
  optional(dict, 'PayloadRemovalDisallowed', isBool, 'a boolean', 'the profile');
  const content = dict.PayloadContent;
  if (!Array.isArray(content)) throw malformed('PayloadContent must be an array');
  const uuids = new Set<string>([dict.PayloadUUID]);
  for (const [i, p] of content.entries()) {
    if (!isDict(p)) throw malformed(`payload ${i} is not a dictionary`);
    const where = `payload ${i} (${String(p.PayloadType ?? '?')})`;
    if (!isNonEmpty(p.PayloadType)) throw malformed(`${where}: PayloadType is missing`);
    if (!isNonEmpty(p.PayloadIdentifier)) throw malformed(`${where}: PayloadIdentifier is missing`);
    if (!isNonEmpty(p.PayloadUUID)) throw malformed(`${where}: PayloadUUID is missing`);
    if (!isInt(p.PayloadVersion)) throw malformed(`${where}: PayloadVersion must be an integer`);
    if (uuids.has(p.PayloadUUID)) throw malformed(`${where}: PayloadUUID ${p.PayloadUUID} is used twice`);
    uuids.add(p.PayloadUUID);
    if (p.PayloadType === 'com.apple.security.scep') scepPayload(p);
    if (['com.apple.security.root', 'com.apple.security.pkcs1', 'com.apple.security.pem'].includes(p.PayloadType)) {
      if (!Buffer.isBuffer(p.PayloadContent) || p.PayloadContent.length === 0) throw malformed(`${where}: PayloadContent must be certificate data`);
    }
  }
  const mdm = content.filter((p) => isDict(p) && p.PayloadType === 'com.apple.mdm');
  if (mdm.length > 1) throw malformed('a profile can hold only one com.apple.mdm payload');
  if (mdm.length === 1) mdmPayload(dict);
}

export interface ScepSettings {
  url: string;
  name: string | undefined;
  subject: Array<Array<[string, string]>>;
  challenge: string | undefined;
  keysize: number;
  keyUsage: number;
  caFingerprint: Buffer | undefined;
  subjectAltName: { rfc822Name?: string; dNSName?: string; uniformResourceIdentifier?: string; ntPrincipalName?: string } | undefined;
  retries: number;
  retryDelay: number;
}

export function scepPayload(p: PlistDict): ScepSettings {
  const where = `SCEP payload ${String(p.PayloadUUID)}`;
  const c = p.PayloadContent;
  if (!isDict(c)) throw malformed(`${where}: PayloadContent must be a dictionary`);
  const url = httpsUrl(c.URL, `${where}: URL`, ['https:', 'http:']);
  optional(c, 'Name', isString, 'a string', where);
  optional(c, 'Challenge', isString, 'a string', where);
  optional(c, 'Keysize', (v) => isInt(v) && [1024, 2048, 4096].includes(v), '1024, 2048 or 4096', where);
  optional(c, 'Key Type', (v) => v === 'RSA', 'RSA', where);
  optional(c, 'Key Usage', (v) => isInt(v) && [0, 1, 4, 5].includes(v), '0, 1, 4 or 5', where);
  optional(c, 'CAFingerprint', (v) => Buffer.isBuffer(v) && [16, 20, 32].includes(v.length), 'an MD5, SHA-1 or SHA-256 digest', where);
  optional(c, 'Retries', isInt, 'an integer', where);
  optional(c, 'RetryDelay', isInt, 'an integer', where);
  optional(c, 'SubjectAltName', isDict, 'a dictionary', where);
  const subject: Array<Array<[string, string]>> = [];
  if (c.Subject !== undefined) {
    const rdns = c.Subject;
    const pair = (x: PlistValue): x is [string, string] => Array.isArray(x) && x.length === 2 && isNonEmpty(x[0]) && isString(x[1]);
    if (!Array.isArray(rdns) || !rdns.every((rdn) => Array.isArray(rdn) && rdn.length > 0 && rdn.every(pair))) {
      throw malformed(`${where}: Subject must be an array of arrays of [name, value] pairs`);
    }
    for (const rdn of rdns as PlistValue[][]) subject.push(rdn.map((x) => x as [string, string]));
  }
  return {
    url,
    name: c.Name as string | undefined,
    subject,
    challenge: c.Challenge as string | undefined,
    keysize: (c.Keysize as number | undefined) ?? 1024,
    keyUsage: (c['Key Usage'] as number | undefined) ?? 0,
    caFingerprint: c.CAFingerprint as Buffer | undefined,
    subjectAltName: c.SubjectAltName as ScepSettings['subjectAltName'],
    retries: (c.Retries as number | undefined) ?? 3,
    retryDelay: (c.RetryDelay as number | undefined) ?? 10,
  };
}

export interface MdmSettings {
  payloadUuid: string;
  serverUrl: string;
  checkInUrl: string;
  topic: string;
  identityCertificateUuid: string;
  signMessage: boolean;
  accessRights: number;
  checkOutWhenRemoved: boolean;
  serverCapabilities: string[];
  useDevelopmentApns: boolean;
  enrollmentMode: 'BYOD' | 'ADDE' | undefined;
  managedAppleId: string | undefined;
}

const IDENTITY_TYPES = ['com.apple.security.scep', 'com.apple.security.acme', 'com.apple.security.pkcs12'];
const CAPABILITIES = ['com.apple.mdm.per-user-connections', 'com.apple.mdm.bootstraptoken', 'com.apple.mdm.token'];

/** The com.apple.mdm payload of a profile, checked as Apple's schema and descriptions require; undefined when there is none. */
export function mdmPayload(profile: PlistDict): MdmSettings | undefined {
  const payloads = (profile.PayloadContent as PlistValue[]).filter(isDict);
  const p = payloads.find((x) => x.PayloadType === 'com.apple.mdm');
  if (!p) return undefined;
  const where = 'com.apple.mdm';
  const serverUrl = httpsUrl(p.ServerURL, `${where}: ServerURL`);
  const checkInUrl = p.CheckInURL === undefined ? serverUrl : httpsUrl(p.CheckInURL, `${where}: CheckInURL`);
  if (!isNonEmpty(p.Topic)) throw malformed(`${where}: Topic is missing`);
  if (!p.Topic.startsWith('com.apple.mgmt.')) throw malformed(`${where}: Topic must start with com.apple.mgmt., not '${p.Topic}'`);
  if (!isNonEmpty(p.IdentityCertificateUUID)) throw malformed(`${where}: IdentityCertificateUUID is missing`);
  const identity = payloads.find((x) => x.PayloadUUID === p.IdentityCertificateUUID);
  if (!identity) throw malformed(`${where}: IdentityCertificateUUID ${p.IdentityCertificateUUID} names no payload of this profile`);
  if (!IDENTITY_TYPES.includes(String(identity.PayloadType))) throw malformed(`${where}: IdentityCertificateUUID names a ${String(identity.PayloadType)} payload, not an identity`);
  optional(p, 'SignMessage', isBool, 'a boolean', where);
  optional(p, 'CheckOutWhenRemoved', isBool, 'a boolean', where);
  optional(p, 'UseDevelopmentAPNS', isBool, 'a boolean', where);
  optional(p, 'ManagedAppleID', isNonEmpty, 'a string', where);
  optional(p, 'AssignedManagedAppleID', isNonEmpty, 'a string', where);
  optional(p, 'EnrollmentMode', (v) => v === 'BYOD' || v === 'ADDE', 'BYOD or ADDE', where);
  optional(p, 'ServerCapabilities', (v) => Array.isArray(v) && v.every((x) => isString(x) && CAPABILITIES.includes(x)), `an array of ${CAPABILITIES.join(', ')}`, where);
  const byod = p.EnrollmentMode === 'BYOD';
  if (byod && !isNonEmpty(p.ManagedAppleID) && !isNonEmpty(p.AssignedManagedAppleID)) throw malformed(`${where}: EnrollmentMode BYOD needs a ManagedAppleID`);
  let accessRights = 0;
  if (!byod) {
    // Required for device enrollment, never 0; "install profiles" needs "inspect profiles", "install provisioning profiles" needs "inspect" them.
    if (!isInt(p.AccessRights)) throw malformed(`${where}: AccessRights is missing`);
    accessRights = p.AccessRights;
    if (accessRights < 1 || accessRights > 8191) throw malformed(`${where}: AccessRights must be between 1 and 8191, not ${accessRights}`);
    if (accessRights & 2 && !(accessRights & 1)) throw malformed(`${where}: AccessRights 2 (install profiles) needs 1 (inspect profiles)`);
    if (accessRights & 128 && !(accessRights & 64)) throw malformed(`${where}: AccessRights 128 needs 64`);
  }
  return {
    payloadUuid: p.PayloadUUID as string,
    serverUrl,
    checkInUrl,
    topic: p.Topic,
    identityCertificateUuid: p.IdentityCertificateUUID,
    signMessage: p.SignMessage === true,
    accessRights,
    checkOutWhenRemoved: p.CheckOutWhenRemoved === true,
    serverCapabilities: (p.ServerCapabilities as string[] | undefined) ?? [],
    useDevelopmentApns: p.UseDevelopmentAPNS === true,
    enrollmentMode: p.EnrollmentMode as MdmSettings['enrollmentMode'],
    managedAppleId: (p.ManagedAppleID ?? p.AssignedManagedAppleID) as string | undefined,
  };
}

/** The identity payload the MDM payload points at. */
export function identityPayload(profile: PlistDict, uuid: string): PlistDict {
  return (profile.PayloadContent as PlistValue[]).filter(isDict).find((x) => x.PayloadUUID === uuid)!;
}

/** Certificates a profile installs (root/pkcs1/pem payloads), DER. */
export function certificatePayloads(profile: PlistDict): Buffer[] {
  return (profile.PayloadContent as PlistValue[])
    .filter(isDict)
    .filter((p) => ['com.apple.security.root', 'com.apple.security.pkcs1', 'com.apple.security.pem'].includes(String(p.PayloadType)))
    .flatMap((p) => {
      const data = p.PayloadContent as Buffer;
      const text = data.toString('latin1');
      return text.includes('-----BEGIN CERTIFICATE-----') ? certificatesOf(text) : [data];
    });
}
