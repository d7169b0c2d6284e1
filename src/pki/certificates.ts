import crypto from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { ownedBytes, RecentCache } from '../shared/recent-cache.js';
import { guard, PkiError } from './errors.js';
import { loadPrivateKey, loadPublicKey, samePublicKey, spkiDer, webCryptoKeys } from './keys.js';
import { buildName, parseName, type DistinguishedName, type NameInput } from './names.js';
import { derToPem, toDer } from './pem.js';

x509.cryptoProvider.set(crypto.webcrypto as never);

const DAY_MS = 86_400_000;

export type KeyUsage = 'digitalSignature' | 'nonRepudiation' | 'keyEncipherment' | 'dataEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';

const KEY_USAGE_FLAGS: Record<KeyUsage, number> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  nonRepudiation: x509.KeyUsageFlags.nonRepudiation,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  dataEncipherment: x509.KeyUsageFlags.dataEncipherment,
  keyAgreement: x509.KeyUsageFlags.keyAgreement,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
};

const EKU_OIDS: Record<string, string> = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
};

export interface CertificateOptions {
  subject: NameInput;
  validityDays: number;
  /** Default now. */
  notBefore?: Date;
  /** Hex; default 16 random bytes. */
  serialNumberHex?: string;
  keyUsages?: readonly KeyUsage[];
  /** Names (serverAuth, clientAuth, codeSigning, emailProtection) or OIDs. */
  extendedKeyUsages?: readonly string[];
  /** Adds basicConstraints cA=true (critical). */
  isCa?: boolean;
  /** Further extensions, already built. */
  extensions?: readonly x509.Extension[];
}

export interface CertificateInfo {
  der: Buffer;
  pem: string;
  subject: DistinguishedName;
  issuer: DistinguishedName;
  /** Upper-case hex, even length, sign padding removed (as `openssl x509 -serial`). */
  serialNumberHex: string;
  notBefore: Date;
  notAfter: Date;
  /** Upper-case hex of the DER's hash. */
  sha256Thumbprint: string;
  sha1Thumbprint: string;
  /** SubjectPublicKeyInfo DER. */
  publicKeySpki: Buffer;
  publicKeyPem: string;
  subjectKeyIdentifierHex: string | undefined;
  isCa: boolean;
  isSelfIssued: boolean;
}

/** Certificates come as PEM, DER or base64 DER. */
export function certificateDer(input: string | Uint8Array): Buffer {
  return toDer(input, ['CERTIFICATE', 'TRUSTED CERTIFICATE'], 'certificate');
}

export function normalizeSerialHex(hex: string): string {
  let h = hex.replace(/[^0-9a-f]/gi, '').toUpperCase();
  if (h.length % 2 === 1) h = `0${h}`;
  while (h.length > 2 && h.startsWith('00')) h = h.slice(2);
  return h;
}

/**
 * Recently parsed certificates by their DER: a device's identity arrives with every check-in, and
 * @peculiar/x509 parsing costs far more than the hash. Bounded; the least recently used goes first.
 */
const parsedCertificates = new RecentCache<CertificateInfo>(10_000);

export function parseCertificate(input: string | Uint8Array): CertificateInfo {
  const der = guard('The certificate', () => certificateDer(input));
  return parsedCertificates.getOrCreate(crypto.createHash('sha256').update(der).digest('base64'), () => parseCertificateDer(ownedBytes(der)));
}

function parseCertificateDer(der: Buffer): CertificateInfo {
  return guard('The certificate', () => {
    const cert = new x509.X509Certificate(der);
    const publicKeySpki = Buffer.from(cert.publicKey.rawData);
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    const subject = parseName(cert.subjectName);
    const issuer = parseName(cert.issuerName);
    const notBefore = cert.notBefore;
    const notAfter = cert.notAfter;
    if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw new PkiError('malformed', 'The certificate has invalid validity dates.');
    return {
      der,
      pem: derToPem(der, 'CERTIFICATE'),
      subject,
      issuer,
      serialNumberHex: normalizeSerialHex(cert.serialNumber),
      notBefore,
      notAfter,
      sha256Thumbprint: crypto.createHash('sha256').update(der).digest('hex').toUpperCase(),
      sha1Thumbprint: crypto.createHash('sha1').update(der).digest('hex').toUpperCase(),
      publicKeySpki,
      publicKeyPem: derToPem(publicKeySpki, 'PUBLIC KEY'),
      subjectKeyIdentifierHex: ski?.keyId.toUpperCase(),
      isCa: bc?.ca ?? false,
      isSelfIssued: Buffer.from(cert.subjectName.toArrayBuffer()).equals(Buffer.from(cert.issuerName.toArrayBuffer())),
    };
  });
}

/** Whether the certificate holds the public half of this private key. */
export function certificateMatchesKey(certificate: string | Uint8Array, privateKeyPem: string | crypto.KeyObject): boolean {
  const cert = parseCertificate(certificate);
  return samePublicKey(loadPublicKey(cert.publicKeySpki), loadPrivateKey(privateKeyPem));
}

function randomSerialHex(): string {
  const b = crypto.randomBytes(16);
  // Positive and minimally encoded: first byte 0x01-0x7f.
  b[0] = (b[0]! & 0x7f) || 0x01;
  return b.toString('hex');
}

async function extensionsFor(opts: CertificateOptions, subjectSpki: Buffer, authorityKeyId: string | undefined): Promise<x509.Extension[]> {
  const out: x509.Extension[] = [];
  if (opts.isCa) out.push(new x509.BasicConstraintsExtension(true, undefined, true));
  if (opts.keyUsages?.length) out.push(new x509.KeyUsagesExtension(opts.keyUsages.reduce<number>((f, u) => f | KEY_USAGE_FLAGS[u], 0), true));
  if (opts.extendedKeyUsages?.length) out.push(new x509.ExtendedKeyUsageExtension(opts.extendedKeyUsages.map((e) => EKU_OIDS[e] ?? e)));
  out.push(await x509.SubjectKeyIdentifierExtension.create(subjectSpki));
  if (authorityKeyId) out.push(new x509.AuthorityKeyIdentifierExtension(authorityKeyId));
  out.push(...(opts.extensions ?? []));
  return out;
}

function validity(opts: CertificateOptions): { notBefore: Date; notAfter: Date } {
  if (!(Number.isFinite(opts.validityDays) && opts.validityDays > 0)) throw new PkiError('malformed', 'validityDays must be positive.');
  const notBefore = opts.notBefore ?? new Date();
  // X.509 times have second precision.
  const nb = new Date(Math.floor(notBefore.getTime() / 1000) * 1000);
  return { notBefore: nb, notAfter: new Date(nb.getTime() + opts.validityDays * DAY_MS) };
}

/** A self-signed certificate for the key. */
export async function createSelfSignedCertificate(opts: CertificateOptions & { privateKeyPem: string }): Promise<CertificateInfo> {
  const privateKey = loadPrivateKey(opts.privateKeyPem);
  const { keys, signingAlgorithm } = await webCryptoKeys(privateKey);
  const spki = spkiDer(privateKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: opts.serialNumberHex ?? randomSerialHex(),
    name: buildName(opts.subject),
    ...validity(opts),
    keys,
    signingAlgorithm,
    extensions: await extensionsFor(opts, spki, undefined),
  });
  return parseCertificate(Buffer.from(cert.rawData));
}

/** Issuer names as encoded in their certificates, per (cached) parsed certificate. */
const issuerNames = new WeakMap<CertificateInfo, x509.Name>();

function encodedSubjectOf(issuer: CertificateInfo): x509.Name {
  let name = issuerNames.get(issuer);
  if (!name) issuerNames.set(issuer, (name = new x509.Name(new x509.X509Certificate(issuer.der).subjectName.toArrayBuffer())));
  return name;
}

/**
 * A certificate for someone else's public key, signed by an issuer (a test CA, the tenant CA). Pass
 * the issuer's key as a KeyObject when issuing many: its WebCrypto import is then made once.
 */
export async function issueCertificate(
  opts: CertificateOptions & { publicKey: string | Uint8Array | crypto.KeyObject; issuerCertificatePem: string; issuerPrivateKeyPem: string | crypto.KeyObject },
): Promise<CertificateInfo> {
  const issuer = parseCertificate(opts.issuerCertificatePem);
  const issuerKey = loadPrivateKey(opts.issuerPrivateKeyPem);
  if (!samePublicKey(loadPublicKey(issuer.publicKeySpki), issuerKey)) throw new PkiError('keyMismatch', "The issuer's private key doesn't match its certificate.");
  const { keys, signingAlgorithm } = await webCryptoKeys(issuerKey);
  const spki = spkiDer(opts.publicKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serialNumberHex ?? randomSerialHex(),
    subject: buildName(opts.subject),
    // The issuer's name exactly as encoded in its certificate, so chains match byte for byte.
    issuer: encodedSubjectOf(issuer),
    ...validity(opts),
    publicKey: spki,
    signingKey: keys.privateKey,
    signingAlgorithm,
    extensions: await extensionsFor(opts, spki, issuer.subjectKeyIdentifierHex),
  });
  return parseCertificate(Buffer.from(cert.rawData));
}

// ---- certificate signing requests (PKCS#10) ----

export interface CsrInfo {
  der: Buffer;
  pem: string;
  subject: DistinguishedName;
  publicKeySpki: Buffer;
  publicKeyPem: string;
}

export async function createCsr(opts: { subject: NameInput; privateKeyPem: string; extensions?: readonly x509.Extension[] }): Promise<CsrInfo> {
  const { keys, signingAlgorithm } = await webCryptoKeys(loadPrivateKey(opts.privateKeyPem));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: buildName(opts.subject),
    keys,
    signingAlgorithm,
    extensions: [...(opts.extensions ?? [])],
  });
  return parseCsr(Buffer.from(csr.rawData));
}

/** Parses a CSR (PEM, DER or base64 DER) and checks its self-signature. */
export async function parseCsr(input: string | Uint8Array): Promise<CsrInfo> {
  const der = guard('The certificate signing request', () => toDer(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 'certificate signing request'));
  const csr = guard('The certificate signing request', () => new x509.Pkcs10CertificateRequest(der));
  let valid = false;
  try {
    valid = await csr.verify();
  } catch (err) {
    throw new PkiError('unsupported', "The certificate signing request's signature algorithm isn't supported.", { cause: err });
  }
  if (!valid) throw new PkiError('badSignature', "The certificate signing request's signature doesn't verify.");
  return guard('The certificate signing request', () => {
    const publicKeySpki = Buffer.from(csr.publicKey.rawData);
    return { der, pem: derToPem(der, 'CERTIFICATE REQUEST'), subject: parseName(csr.subjectName), publicKeySpki, publicKeyPem: derToPem(publicKeySpki, 'PUBLIC KEY') };
  });
}
