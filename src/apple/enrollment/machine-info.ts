import crypto from 'node:crypto';
import fs from 'node:fs';
import { parseCertificate, pemBlocks, PkiError, verifySignedData, type CertificateInfo } from '../../pki/index.js';
import { parsePlistDict, PlistError, type PlistValue } from '../../shared/plist.js';
import { APPLE_IPHONE_DEVICE_CA_PEM, APPLE_IPHONE_DEVICE_CA_SHA256 } from './machine-info-anchors.js';

/**
 * MachineInfo (apple/device-management other/machineinfo.yaml): what an ADE device sends with its
 * request for the enrollment profile, as CMS SignedData (attached content = an XML plist) signed by
 * its device identity certificate. The device POSTs it to the profile's `url`, or sends it base64 in
 * the `x-apple-aspen-deviceinfo` header of its GET of `configuration_web_url`. Pure but for reading
 * the anchor file.
 *
 * It identifies a device Apple built; it is not attestation (the blob can be replayed), so it only
 * ever unlocks what an ADE record in our store already grants that serial.
 */

export type MachineInfoErrorCode =
  /** Bigger than the limits below. */
  | 'tooLarge'
  /** Not base64, not CMS SignedData, not a plist dictionary. */
  | 'malformed'
  /** The signature doesn't verify (tampered content, wrong key). */
  | 'badSignature'
  /** Signature fine, but the signer doesn't chain to a configured anchor. */
  | 'untrusted'
  /** A required key is missing or a value has the wrong type or form. */
  | 'invalidContent'
  /** Not an iPhone, iPad, iPod or Mac (tvOS, watchOS, visionOS aren't enrolled here). */
  | 'unsupportedProduct';

export class MachineInfoError extends Error {
  constructor(
    readonly code: MachineInfoErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MachineInfoError';
  }
}

export const MACHINE_INFO_LIMITS = {
  /** The CMS message (DER). Real ones are 3–5 KiB: the plist and a certificate chain. */
  signedBytes: 64 * 1024,
  /** The base64 header value (4/3 of the DER, plus slack for line breaks). */
  headerChars: 88 * 1024,
  /** The plist inside. */
  plistBytes: 16 * 1024,
} as const;

export type MachineInfoPlatform = 'iOS' | 'macOS';

export interface MachineInfo {
  udid: string;
  serialNumber: string;
  /** PRODUCT, e.g. iPhone14,2 or MacBookPro18,3. */
  product: string;
  /** VERSION: the build, e.g. 21A329. */
  buildVersion: string;
  /** OS_VERSION as reported (iOS 17 / macOS 14 and later), else null. */
  osVersion: string | null;
  imei: string | null;
  meid: string | null;
  language: string | null;
  mdmCanRequestSoftwareUpdate: boolean;
  softwareUpdateDeviceId: string | null;
  platform: MachineInfoPlatform;
}

export interface VerifiedMachineInfo {
  info: MachineInfo;
  /** The certificate that signed it. */
  signer: CertificateInfo;
}

// Values are short identifiers; the limits keep them out of logs and columns in full.
const UDID = /^[A-Za-z0-9-]{8,64}$/;
const SERIAL = /^[A-Za-z0-9-]{1,64}$/;
const PRODUCT = /^[A-Za-z][A-Za-z0-9]{0,39}(,[0-9]{1,4})?$/;
const BUILD = /^[0-9A-Za-z.]{1,32}$/;
const OS_VERSION = /^[0-9]{1,6}(\.[0-9]{1,6}){0,3}( ?\([a-z]\))?$/;
const SHORT_TEXT = /^[\x20-\x7E]{1,64}$/;

/** iOS/iPadOS or macOS from the PRODUCT hardware identifier. */
export function platformOfProduct(product: string): MachineInfoPlatform | null {
  if (/^(iPhone|iPad|iPod)/.test(product)) return 'iOS';
  // Mac, MacBookPro, Macmini, MacPro, iMac, iMacPro, VirtualMac (Apple silicon VMs), ADP (developer kits).
  if (/^(Mac|iMac|VirtualMac|ADP)/.test(product)) return 'macOS';
  return null;
}

/**
 * The major OS version a build belongs to, for devices that don't report OS_VERSION (before iOS 17 /
 * macOS 14). Build trains: iOS 7 = 11x … iOS 18 = 22x, then 26 = 23x; macOS 10.9 = 13x … 10.15 = 19x,
 * 11 = 20x … 15 = 24x, then 26 = 25x. Only as precise as the major version, which is what the OS
 * thresholds of ADE (iOS 13, macOS 10.15) compare.
 */
export function osVersionFromBuild(platform: MachineInfoPlatform, build: string): string | null {
  const m = /^(\d{2})[A-Z]/.exec(build);
  if (!m) return null;
  const train = Number(m[1]);
  if (platform === 'iOS') {
    if (train < 11) return null;
    return train <= 22 ? String(train - 4) : String(train + 3);
  }
  if (train < 13) return null;
  if (train <= 19) return `10.${train - 4}`;
  return train <= 24 ? String(train - 9) : String(train + 1);
}

/** OS_VERSION, else what the build says. */
export function effectiveOsVersion(info: Pick<MachineInfo, 'osVersion' | 'platform' | 'buildVersion'>): string | null {
  return info.osVersion ?? osVersionFromBuild(info.platform, info.buildVersion);
}

// ---- trust anchors ------------------------------------------------------------------------

export interface MachineInfoAnchors {
  anchors: CertificateInfo[];
  /** Where they came from, for start-up logs and errors. */
  source: string;
}

let appleDefault: MachineInfoAnchors | undefined;

/** Apple's iPhone Device CA (the production default). */
export function appleDeviceCaAnchors(): MachineInfoAnchors {
  if (!appleDefault) {
    const cert = parseCertificate(APPLE_IPHONE_DEVICE_CA_PEM);
    if (cert.sha256Thumbprint !== APPLE_IPHONE_DEVICE_CA_SHA256) throw new Error('the embedded Apple iPhone Device CA certificate has been altered');
    appleDefault = { anchors: [cert], source: 'Apple iPhone Device CA (built in)' };
  }
  return appleDefault;
}

/** Every certificate of a PEM bundle is an anchor (OPENENROLL_APPLE_DEVICE_CA_FILE: a simulator's CA, a lab). */
export function anchorsFromPem(text: string, source: string): MachineInfoAnchors {
  let blocks;
  try {
    blocks = pemBlocks(text).filter((b) => b.label === 'CERTIFICATE');
  } catch (err) {
    throw new Error(`${source}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (blocks.length === 0) throw new Error(`${source}: no PEM CERTIFICATE block`);
  return { anchors: blocks.map((b) => parseCertificate(b.der)), source };
}

/** The configured anchors, or Apple's. Read once at start-up so a bad file stops the server with a clear message. */
export function loadMachineInfoAnchors(file: string | undefined): MachineInfoAnchors {
  if (!file) return appleDeviceCaAnchors();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`OPENENROLL_APPLE_DEVICE_CA_FILE (${file}) can't be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return anchorsFromPem(text, `OPENENROLL_APPLE_DEVICE_CA_FILE (${file})`);
}

// ---- verification ---------------------------------------------------------------------------

const MAX_CHAIN = 5;

/** OpenSSL's view of a parsed certificate, made once per (cached) CertificateInfo: the anchors come with every MachineInfo. */
const x509s = new WeakMap<CertificateInfo, crypto.X509Certificate>();
function x509Of(c: CertificateInfo): crypto.X509Certificate {
  let x = x509s.get(c);
  if (!x) x509s.set(c, (x = new crypto.X509Certificate(c.der)));
  return x;
}

/**
 * Signer first, anchor last. Walks issuers by name and signature through the message's own CA
 * certificates. Validity dates are deliberately not checked: Apple's device CA and the device
 * certificates it issued are long expired and still in use (fleet and micromdm do the same).
 */
function chainToAnchor(signer: CertificateInfo, pool: readonly CertificateInfo[], anchors: readonly CertificateInfo[]): CertificateInfo[] | undefined {
  const issuedBy = (child: CertificateInfo, parent: CertificateInfo) => {
    try {
      return x509Of(child).checkIssued(x509Of(parent)) && x509Of(child).verify(x509Of(parent).publicKey);
    } catch {
      return false;
    }
  };
  const chain = [signer];
  let current = signer;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const anchor = anchors.find((a) => a.der.equals(current.der)) ?? anchors.find((a) => issuedBy(current, a));
    if (anchor) return anchor.der.equals(current.der) ? chain : [...chain, anchor];
    const next = pool.find((c) => c.isCa && !chain.includes(c) && issuedBy(current, c));
    if (!next) return undefined;
    chain.push(next);
    current = next;
  }
  return undefined;
}

function str(dict: Record<string, PlistValue>, key: string, pattern: RegExp, required: true): string;
function str(dict: Record<string, PlistValue>, key: string, pattern: RegExp, required: false): string | null;
function str(dict: Record<string, PlistValue>, key: string, pattern: RegExp, required: boolean): string | null {
  const v = dict[key];
  if (v === undefined || (v === '' && !required)) {
    if (required) throw new MachineInfoError('invalidContent', `MachineInfo has no ${key}.`);
    return null;
  }
  if (typeof v !== 'string') throw new MachineInfoError('invalidContent', `MachineInfo ${key} must be a string.`);
  const t = v.trim();
  if (!pattern.test(t)) throw new MachineInfoError('invalidContent', `MachineInfo ${key} is not in the expected form.`);
  return t;
}

/** The MachineInfo dictionary of an already verified message. */
export function parseMachineInfoPlist(content: Buffer): MachineInfo {
  let dict: Record<string, PlistValue>;
  try {
    dict = parsePlistDict(content, { maxBytes: MACHINE_INFO_LIMITS.plistBytes });
  } catch (err) {
    if (err instanceof PlistError) {
      const tooLarge = /larger than/.test(err.message);
      throw new MachineInfoError(tooLarge ? 'tooLarge' : 'malformed', `MachineInfo: ${err.message}.`, { cause: err });
    }
    throw err;
  }
  const product = str(dict, 'PRODUCT', PRODUCT, true);
  const platform = platformOfProduct(product);
  if (!platform) throw new MachineInfoError('unsupportedProduct', `${product} devices can't enroll through Automated Device Enrollment here (iPhone, iPad and Mac only).`);
  const canUpdate = dict.MDM_CAN_REQUEST_SOFTWARE_UPDATE;
  if (canUpdate !== undefined && typeof canUpdate !== 'boolean') throw new MachineInfoError('invalidContent', 'MachineInfo MDM_CAN_REQUEST_SOFTWARE_UPDATE must be a Boolean.');
  return {
    udid: str(dict, 'UDID', UDID, true),
    serialNumber: str(dict, 'SERIAL', SERIAL, true),
    product,
    buildVersion: str(dict, 'VERSION', BUILD, true),
    osVersion: str(dict, 'OS_VERSION', OS_VERSION, false),
    imei: str(dict, 'IMEI', SHORT_TEXT, false),
    meid: str(dict, 'MEID', SHORT_TEXT, false),
    language: str(dict, 'LANGUAGE', SHORT_TEXT, false),
    mdmCanRequestSoftwareUpdate: canUpdate === true,
    softwareUpdateDeviceId: str(dict, 'SOFTWARE_UPDATE_DEVICE_ID', SHORT_TEXT, false),
    platform,
  };
}

/**
 * Verifies a MachineInfo message (DER CMS SignedData): size, structure, every signer's signature,
 * the signer's chain to one of the anchors, then the plist. Throws MachineInfoError.
 */
export function verifyMachineInfo(signed: Uint8Array, anchors: MachineInfoAnchors): VerifiedMachineInfo {
  if (signed.length === 0) throw new MachineInfoError('malformed', 'The MachineInfo message is empty.');
  if (signed.length > MACHINE_INFO_LIMITS.signedBytes) throw new MachineInfoError('tooLarge', `The MachineInfo message is larger than ${MACHINE_INFO_LIMITS.signedBytes} bytes.`);
  let verified;
  try {
    verified = verifySignedData(signed);
  } catch (err) {
    if (err instanceof PkiError) {
      const code: MachineInfoErrorCode = err.code === 'badSignature' ? 'badSignature' : 'malformed';
      throw new MachineInfoError(code, code === 'badSignature' ? `The MachineInfo signature is invalid: ${err.message}` : `The MachineInfo message is not valid CMS SignedData: ${err.message}`, { cause: err });
    }
    throw err;
  }
  if (verified.contentType !== '1.2.840.113549.1.7.1') throw new MachineInfoError('malformed', 'The MachineInfo message does not carry data content.');
  if (!chainToAnchor(verified.signer, verified.certificates, anchors.anchors)) {
    throw new MachineInfoError('untrusted', `The MachineInfo signer "${verified.signer.subject.text}" is not a device certificate issued by a trusted device CA (${anchors.source}).`);
  }
  return { info: parseMachineInfoPlist(verified.content), signer: verified.signer };
}

/** The `x-apple-aspen-deviceinfo` header: base64 of the same CMS message. */
export function verifyMachineInfoHeader(header: string | string[] | undefined, anchors: MachineInfoAnchors): VerifiedMachineInfo {
  if (header === undefined || header === '') throw new MachineInfoError('malformed', 'The x-apple-aspen-deviceinfo header is missing.');
  if (Array.isArray(header)) throw new MachineInfoError('malformed', 'The x-apple-aspen-deviceinfo header was sent more than once.');
  if (header.length > MACHINE_INFO_LIMITS.headerChars) throw new MachineInfoError('tooLarge', 'The x-apple-aspen-deviceinfo header is too large.');
  const compact = header.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new MachineInfoError('malformed', 'The x-apple-aspen-deviceinfo header is not base64.');
  return verifyMachineInfo(Buffer.from(compact, 'base64'), anchors);
}
