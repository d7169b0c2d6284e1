import crypto from 'node:crypto';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

/**
 * The device's own cryptography, independent of the product's src/pki: keys and certificates
 * (@peculiar/x509 over WebCrypto), CMS SignedData and EnvelopedData (pkijs for the structures,
 * Node's crypto for hashing, signing, ciphers and raw RSA, with PKCS#1 v1.5 decryption unpadded here
 * because Node 20 refuses it).
 */

x509.cryptoProvider.set(crypto.webcrypto as never);

export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  challengePassword: '1.2.840.113549.1.9.7',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha1WithRsa: '1.2.840.113549.1.1.5',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  aes128cbc: '2.16.840.1.101.3.4.1.2',
  aes256cbc: '2.16.840.1.101.3.4.1.42',
  desEde3cbc: '1.2.840.113549.3.7',
} as const;

const DIGESTS: Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
/** Signature algorithms that name their hash. */
const RSA_SIGNATURES: Record<string, string> = {
  [OID.sha1WithRsa]: 'sha1',
  [OID.sha256WithRsa]: 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};
const CIPHERS: Record<string, { name: string; keyLength: number; ivLength: number }> = {
  [OID.aes128cbc]: { name: 'aes-128-cbc', keyLength: 16, ivLength: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyLength: 24, ivLength: 16 },
  [OID.aes256cbc]: { name: 'aes-256-cbc', keyLength: 32, ivLength: 16 },
  [OID.desEde3cbc]: { name: 'des-ede3-cbc', keyLength: 24, ivLength: 8 },
};

/** Why a CMS message or certificate was refused. */
export class CryptoError extends Error {
  constructor(
    readonly code: 'malformed' | 'badSignature' | 'untrusted' | 'unsupported' | 'decryptionFailed',
    message: string,
  ) {
    super(message);
  }
}

export function pemToDer(pem: string | Uint8Array): Buffer {
  if (typeof pem !== 'string') return Buffer.from(pem);
  const m = /-----BEGIN [^-]+-----([\s\S]*?)-----END [^-]+-----/.exec(pem);
  return Buffer.from((m ? m[1]! : pem).replace(/\s+/g, ''), 'base64');
}

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Every PEM block of a bundle (or one DER). */
export function certificatesOf(input: string | Uint8Array): Buffer[] {
  if (typeof input !== 'string') return [Buffer.from(input)];
  const blocks = input.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => pemToDer(b));
}

const generateKeyPair = promisify(crypto.generateKeyPair);

/** An RSA key (off the event loop). */
export async function generateRsaKey(bits = 2048): Promise<crypto.KeyObject> {
  const { privateKey } = await generateKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  return privateKey;
}

export function privateKeyPem(key: crypto.KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

const RSA_SHA256 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;

/** WebCrypto handles per key (a fleet shares a pool of keys; importing is most of a CSR's cost). */
const webKeyPairs = new WeakMap<crypto.KeyObject, Promise<crypto.webcrypto.CryptoKeyPair>>();

function webKeys(key: crypto.KeyObject): Promise<crypto.webcrypto.CryptoKeyPair> {
  let pair = webKeyPairs.get(key);
  if (!pair) {
    const subtle = crypto.webcrypto.subtle;
    pair = (async () => ({
      privateKey: (await subtle.importKey('pkcs8', key.export({ type: 'pkcs8', format: 'der' }), RSA_SHA256, false, ['sign'])) as crypto.webcrypto.CryptoKey,
      publicKey: (await subtle.importKey('spki', crypto.createPublicKey(key).export({ type: 'spki', format: 'der' }), RSA_SHA256, true, ['verify'])) as crypto.webcrypto.CryptoKey,
    }))();
    webKeyPairs.set(key, pair);
  }
  return pair;
}

export interface CertificateSpec {
  /** RFC 4514 string, e.g. "CN=Apple iPhone Device CA, O=Apple Inc., C=US". */
  subject: string;
  /** The key the certificate is for. */
  key: crypto.KeyObject;
  /** Signs it; absent for a self-signed certificate. */
  issuer?: { certDer: Buffer; key: crypto.KeyObject };
  notBefore: Date;
  notAfter: Date;
  isCa?: boolean;
  keyUsage?: number;
  extendedKeyUsages?: string[];
}

export async function createCertificate(spec: CertificateSpec): Promise<Buffer> {
  const subjectKeys = await webKeys(spec.key);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(spec.isCa ?? false, undefined, true),
    await x509.SubjectKeyIdentifierExtension.create(subjectKeys.publicKey),
  ];
  if (spec.keyUsage !== undefined) extensions.push(new x509.KeyUsagesExtension(spec.keyUsage, true));
  if (spec.extendedKeyUsages?.length) extensions.push(new x509.ExtendedKeyUsageExtension(spec.extendedKeyUsages));
  const serialNumber = `7${crypto.randomBytes(15).toString('hex')}`;
  const common = { serialNumber, notBefore: spec.notBefore, notAfter: spec.notAfter, signingAlgorithm: RSA_SHA256, extensions };
  if (!spec.issuer) {
    const cert = await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: spec.subject, keys: subjectKeys });
    return Buffer.from(cert.rawData);
  }
  const issuerCert = new x509.X509Certificate(spec.issuer.certDer);
  const issuerKeys = await webKeys(spec.issuer.key);
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuerKeys.publicKey));
  const cert = await x509.X509CertificateGenerator.create({
    ...common,
    subject: spec.subject,
    issuer: issuerCert.subjectName,
    publicKey: subjectKeys.publicKey,
    signingKey: issuerKeys.privateKey,
  });
  return Buffer.from(cert.rawData);
}

export interface CsrSpec {
  subject: string;
  key: crypto.KeyObject;
  challengePassword?: string;
  keyUsage?: number;
  subjectAltNames?: x509.JsonGeneralNames;
}

/** A PKCS#10 request (DER) with the SCEP challenge as its challengePassword attribute. */
export async function createCsr(spec: CsrSpec): Promise<Buffer> {
  const keys = await webKeys(spec.key);
  const extensions: x509.Extension[] = [];
  if (spec.keyUsage) extensions.push(new x509.KeyUsagesExtension(spec.keyUsage, true));
  if (spec.subjectAltNames?.length) extensions.push(new x509.SubjectAlternativeNameExtension(spec.subjectAltNames));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: spec.subject,
    keys,
    signingAlgorithm: RSA_SHA256,
    extensions,
    attributes: spec.challengePassword !== undefined ? [new x509.ChallengePasswordAttribute(spec.challengePassword)] : [],
  });
  return Buffer.from(csr.rawData);
}

export function sha256Hex(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function parseBer(bytes: Uint8Array, what: string): asn1js.AsnType {
  const parsed = asn1js.fromBER(new Uint8Array(bytes));
  if (parsed.offset === -1) throw new CryptoError('malformed', `${what} is not valid DER/BER.`);
  return parsed.result;
}

/** The device signs every message with the same certificate: decoded once per buffer it holds. */
const signerCerts = new WeakMap<Uint8Array, pkijs.Certificate>();

function pkijsCert(der: Uint8Array): pkijs.Certificate {
  try {
    return new pkijs.Certificate({ schema: parseBer(der, 'A certificate') });
  } catch (err) {
    if (err instanceof CryptoError) throw err;
    throw new CryptoError('malformed', 'A certificate is malformed.');
  }
}

function signerCert(der: Uint8Array): pkijs.Certificate {
  let cert = signerCerts.get(der);
  if (!cert) signerCerts.set(der, (cert = pkijsCert(der)));
  return cert;
}

/** The bytes of an OCTET STRING, constructed (BER) or not. */
function octets(os: asn1js.OctetString): Buffer {
  if (os.idBlock.isConstructed) return Buffer.concat(((os.valueBlock.value ?? []) as asn1js.OctetString[]).map(octets));
  return Buffer.from(os.valueBlock.valueHexView);
}

/** An attribute value for SignedData: a PrintableString or an OCTET STRING (SCEP uses both). */
export type AttributeValue = { printable: string } | { octets: Uint8Array };

function toAsn1(v: AttributeValue): asn1js.AsnType {
  return 'printable' in v ? new asn1js.PrintableString({ value: v.printable }) : new asn1js.OctetString({ valueHex: new Uint8Array(v.octets) });
}

export interface SignOptions {
  certDer: Buffer;
  key: crypto.KeyObject;
  chainDer?: Buffer[];
  detached?: boolean;
  digest?: 'sha1' | 'sha256';
  signingTime?: Date;
  /** Extra signed attributes (OID → value), e.g. SCEP's messageType and nonces. */
  attributes?: Record<string, AttributeValue>;
}

/** CMS SignedData (DER ContentInfo) with one RSA signer and signed attributes. */
export function signCms(content: Uint8Array, opts: SignOptions): Buffer {
  const digest = opts.digest ?? 'sha256';
  const digestOid = digest === 'sha1' ? OID.sha1 : OID.sha256;
  const signer = signerCert(opts.certDer);
  const attr = (type: string, value: asn1js.AsnType) => new pkijs.Attribute({ type, values: [value] });
  const attrs = [
    attr(OID.contentType, new asn1js.ObjectIdentifier({ value: OID.data })),
    attr(OID.messageDigest, new asn1js.OctetString({ valueHex: new Uint8Array(crypto.createHash(digest).update(content).digest()) })),
    ...(opts.signingTime ? [attr(OID.signingTime, new asn1js.UTCTime({ valueDate: opts.signingTime }))] : []),
    ...Object.entries(opts.attributes ?? {}).map(([oid, v]) => attr(oid, toAsn1(v))),
  ];
  const der = (a: pkijs.Attribute) => Buffer.from(a.toSchema().toBER());
  attrs.sort((a, b) => Buffer.compare(der(a), der(b))); // DER SET OF order
  const signedAttrs = new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: attrs });
  const toSign = Buffer.from(signedAttrs.toSchema().toBER());
  toSign[0] = 0x31; // signed as a SET OF, carried [0] IMPLICIT
  const signature = crypto.sign(digest, toSign, opts.key);
  const digestAlg = new pkijs.AlgorithmIdentifier({ algorithmId: digestOid, algorithmParams: new asn1js.Null() });
  const si = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: signer.issuer, serialNumber: signer.serialNumber }),
    digestAlgorithm: digestAlg,
    signedAttrs,
    signatureAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.rsaEncryption, algorithmParams: new asn1js.Null() }),
    signature: new asn1js.OctetString({ valueHex: new Uint8Array(signature) }),
  });
  const sd = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [digestAlg],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({
      eContentType: OID.data,
      ...(opts.detached ? {} : { eContent: new asn1js.OctetString({ valueHex: new Uint8Array(content) }) }),
    }),
    certificates: [signer, ...(opts.chainDer ?? []).map(signerCert)],
    signerInfos: [si],
  });
  return Buffer.from(new pkijs.ContentInfo({ contentType: OID.signedData, content: sd.toSchema(true) }).toSchema().toBER());
}

/** A certs-only ("degenerate") SignedData, as SCEP's GetCACert and CertRep carry certificates. */
export function certsOnlyCms(certs: Buffer[]): Buffer {
  const sd = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data }),
    certificates: certs.map(pkijsCert),
    signerInfos: [],
  });
  return Buffer.from(new pkijs.ContentInfo({ contentType: OID.signedData, content: sd.toSchema(true) }).toSchema().toBER());
}

export interface VerifiedCms {
  content: Buffer;
  /** DER of every certificate the message carried. */
  certificates: Buffer[];
  /** Undefined for a certs-only message. */
  signerDer: Buffer | undefined;
  /** Signed attributes of the first signer (OID → the value's DER-decoded string or bytes). */
  attributes: Map<string, string | Buffer>;
  /** Signer first; set when trust anchors were given and the signer chains to one. */
  chain: Buffer[] | undefined;
}

function contentInfo(der: Uint8Array, what: string): pkijs.ContentInfo {
  try {
    return new pkijs.ContentInfo({ schema: parseBer(der, what) });
  } catch (err) {
    if (err instanceof CryptoError) throw err;
    throw new CryptoError('malformed', `${what} is not a CMS ContentInfo.`);
  }
}

function attributeText(v: asn1js.AsnType): string | Buffer {
  if (v instanceof asn1js.OctetString) return octets(v);
  if (v instanceof asn1js.ObjectIdentifier) return v.valueBlock.toString();
  if (v instanceof asn1js.UTCTime || v instanceof asn1js.GeneralizedTime) return v.toDate().toISOString();
  const s = v as unknown as { valueBlock: { value?: unknown } };
  return typeof s.valueBlock.value === 'string' ? s.valueBlock.value : Buffer.from(v.toBER());
}

/** Whether `der` is a CMS SignedData at all (vs. a bare plist). */
export function looksLikeSignedData(der: Uint8Array): boolean {
  try {
    return contentInfo(der, 'The message').contentType === OID.signedData;
  } catch {
    return false;
  }
}

/**
 * Verifies a SignedData: every signer's signature, the message digest and content type; with
 * `trustAnchors`, the signer's chain (through the message's certificates) to one of them, each
 * certificate valid at `now`. A signer that doesn't chain leaves `chain` undefined; a bad
 * signature throws.
 */
export function verifyCms(der: Uint8Array, opts: { detachedContent?: Uint8Array; trustAnchors?: Buffer[]; now?: Date; what?: string } = {}): VerifiedCms {
  const what = opts.what ?? 'The signed message';
  const info = contentInfo(der, what);
  if (info.contentType !== OID.signedData) throw new CryptoError('malformed', `${what} is not CMS SignedData.`);
  let sd: pkijs.SignedData;
  try {
    sd = new pkijs.SignedData({ schema: info.content });
  } catch {
    throw new CryptoError('malformed', `${what} is a malformed SignedData.`);
  }
  const certificates = (sd.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate).map((c) => Buffer.from(c.toSchema().toBER()));
  const attached = sd.encapContentInfo.eContent ? octets(sd.encapContentInfo.eContent) : undefined;
  const content = attached ?? (opts.detachedContent ? Buffer.from(opts.detachedContent) : undefined);
  if (sd.signerInfos.length === 0) return { content: content ?? Buffer.alloc(0), certificates, signerDer: undefined, attributes: new Map(), chain: undefined };
  if (!content) throw new CryptoError('malformed', `${what} is detached and no content was given.`);
  let signerDer: Buffer | undefined;
  let attributes = new Map<string, string | Buffer>();
  for (const si of sd.signerInfos) {
    const sid = si.sid as pkijs.IssuerAndSerialNumber;
    if (!(sid instanceof pkijs.IssuerAndSerialNumber)) throw new CryptoError('unsupported', `${what} names its signer by key identifier.`);
    const found = certificates.map((d) => ({ d, c: pkijsCert(d) })).find(({ c }) => c.serialNumber.isEqual(sid.serialNumber) && c.issuer.isEqual(sid.issuer));
    if (!found) throw new CryptoError('badSignature', `${what} doesn't carry its signer's certificate.`);
    const hash = DIGESTS[si.digestAlgorithm.algorithmId];
    if (!hash) throw new CryptoError('unsupported', `${what} uses digest ${si.digestAlgorithm.algorithmId}.`);
    let signed: Buffer = content;
    const attrs = new Map<string, string | Buffer>();
    if (si.signedAttrs) {
      for (const a of si.signedAttrs.attributes) if (a.values[0]) attrs.set(a.type, attributeText(a.values[0] as asn1js.AsnType));
      const md = attrs.get(OID.messageDigest);
      const expected = crypto.createHash(hash).update(content).digest();
      if (!Buffer.isBuffer(md) || md.length !== expected.length || !crypto.timingSafeEqual(md, expected)) throw new CryptoError('badSignature', `${what}'s content doesn't match its signed digest.`);
      if (attrs.get(OID.contentType) !== sd.encapContentInfo.eContentType) throw new CryptoError('badSignature', `${what}'s signed content type differs.`);
      signed = Buffer.from(si.signedAttrs.encodedValue);
    }
    const sigAlg = si.signatureAlgorithm.algorithmId;
    const sigHash = sigAlg === OID.rsaEncryption ? hash : RSA_SIGNATURES[sigAlg];
    if (!sigHash) throw new CryptoError('unsupported', `${what} uses signature algorithm ${sigAlg}.`);
    const publicKey = new crypto.X509Certificate(found.d).publicKey;
    if (!crypto.verify(sigHash, signed, publicKey, Buffer.from(si.signature.valueBlock.valueHexView))) throw new CryptoError('badSignature', `${what}'s signature doesn't verify.`);
    if (!signerDer) {
      signerDer = found.d;
      attributes = attrs;
    }
  }
  const chain = opts.trustAnchors ? chainTo(signerDer!, certificates, opts.trustAnchors, opts.now ?? new Date()) : undefined;
  return { content, certificates, signerDer, attributes, chain };
}

/** Signer first, anchor last, or undefined when it doesn't chain to an anchor (or a certificate isn't current). */
export function chainTo(leafDer: Buffer, pool: Buffer[], anchors: Buffer[], now: Date): Buffer[] | undefined {
  const x = (d: Buffer) => new crypto.X509Certificate(d);
  const issued = (child: Buffer, parent: Buffer) => {
    const c = x(child);
    const p = x(parent);
    return c.checkIssued(p) && c.verify(p.publicKey);
  };
  const current = (d: Buffer) => {
    const c = x(d);
    return now >= new Date(c.validFrom) && now <= new Date(c.validTo);
  };
  const chain = [leafDer];
  let at = leafDer;
  for (let depth = 0; depth < 8; depth++) {
    const anchor = anchors.find((a) => a.equals(at)) ?? anchors.find((a) => issued(at, a));
    if (anchor) {
      if (!anchor.equals(at)) chain.push(anchor);
      return chain.every(current) ? chain : undefined;
    }
    const next = pool.find((c) => !chain.some((k) => k.equals(c)) && x(c).ca && issued(at, c));
    if (!next) return undefined;
    chain.push(next);
    at = next;
  }
  return undefined;
}

/** EnvelopedData (DER ContentInfo) for one RSA recipient, PKCS#1 v1.5 key transport. */
export function envelope(content: Uint8Array, recipientDer: Buffer, cipherOid: string = OID.aes128cbc): Buffer {
  const cipher = CIPHERS[cipherOid];
  if (!cipher) throw new CryptoError('unsupported', `Cipher ${cipherOid} is not supported.`);
  const recipient = pkijsCert(recipientDer);
  const cek = crypto.randomBytes(cipher.keyLength);
  const iv = crypto.randomBytes(cipher.ivLength);
  const c = crypto.createCipheriv(cipher.name, cek, iv);
  const encrypted = Buffer.concat([c.update(content), c.final()]);
  const publicKey = new crypto.X509Certificate(recipientDer).publicKey;
  const encryptedKey = crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_PADDING }, cek);
  const env = new pkijs.EnvelopedData({
    version: 0,
    recipientInfos: [
      new pkijs.RecipientInfo({
        variant: 1,
        value: new pkijs.KeyTransRecipientInfo({
          version: 0,
          rid: new pkijs.IssuerAndSerialNumber({ issuer: recipient.issuer, serialNumber: recipient.serialNumber }),
          keyEncryptionAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.rsaEncryption, algorithmParams: new asn1js.Null() }),
          encryptedKey: new asn1js.OctetString({ valueHex: new Uint8Array(encryptedKey) }),
        }),
      }),
    ],
    encryptedContentInfo: new pkijs.EncryptedContentInfo({
      contentType: OID.data,
      contentEncryptionAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: cipherOid, algorithmParams: new asn1js.OctetString({ valueHex: new Uint8Array(iv) }) }),
      encryptedContent: new asn1js.OctetString({ valueHex: new Uint8Array(encrypted) }),
    }),
  });
  return Buffer.from(new pkijs.ContentInfo({ contentType: OID.envelopedData, content: env.toSchema() }).toSchema().toBER());
}

/**
 * The message inside an RSAES-PKCS1-v1_5 block (00 02 <8+ non-zero bytes> 00 <message>), done by hand
 * around a raw RSA operation: Node 20 refuses that padding for decryption, and pure-JS RSA costs a
 * device ~60 ms. A device only decrypts what its server sent it, so it needs no oracle hardening.
 */
function pkcs1v15Message(block: Buffer): Buffer {
  const separator = block.indexOf(0, 2);
  if (block[0] !== 0 || block[1] !== 2 || separator < 10) throw new CryptoError('decryptionFailed', 'bad PKCS#1 v1.5 padding');
  return block.subarray(separator + 1);
}

/** Decrypts EnvelopedData addressed to our certificate. */
export function openEnvelope(der: Uint8Array, ours: { certDer: Buffer; key: crypto.KeyObject }, what = 'The encrypted message'): Buffer {
  const info = contentInfo(der, what);
  if (info.contentType !== OID.envelopedData) throw new CryptoError('malformed', `${what} is not CMS EnvelopedData.`);
  let env: pkijs.EnvelopedData;
  try {
    env = new pkijs.EnvelopedData({ schema: info.content });
  } catch {
    throw new CryptoError('malformed', `${what} is a malformed EnvelopedData.`);
  }
  const me = pkijsCert(ours.certDer);
  const ktri = env.recipientInfos
    .filter((r) => r.variant === 1)
    .map((r) => r.value as pkijs.KeyTransRecipientInfo)
    .find((k) => k.rid instanceof pkijs.IssuerAndSerialNumber && k.rid.serialNumber.isEqual(me.serialNumber) && k.rid.issuer.isEqual(me.issuer));
  if (!ktri) throw new CryptoError('decryptionFailed', `${what} isn't addressed to our certificate.`);
  const eci = env.encryptedContentInfo;
  const cipher = CIPHERS[eci.contentEncryptionAlgorithm.algorithmId];
  if (!cipher) throw new CryptoError('unsupported', `${what} uses cipher ${eci.contentEncryptionAlgorithm.algorithmId}.`);
  const ivParam = eci.contentEncryptionAlgorithm.algorithmParams as asn1js.AsnType;
  if (!(ivParam instanceof asn1js.OctetString) || !eci.encryptedContent) throw new CryptoError('malformed', `${what} has no IV or no content.`);
  const encryptedKey = Buffer.from(ktri.encryptedKey.valueBlock.valueHexView);
  let cek: Buffer;
  try {
    if (ktri.keyEncryptionAlgorithm.algorithmId === OID.rsaEncryption) {
      cek = pkcs1v15Message(crypto.privateDecrypt({ key: ours.key, padding: crypto.constants.RSA_NO_PADDING }, encryptedKey));
    } else {
      cek = crypto.privateDecrypt({ key: ours.key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, encryptedKey);
    }
    const d = crypto.createDecipheriv(cipher.name, cek, octets(ivParam));
    return Buffer.concat([d.update(octets(eci.encryptedContent)), d.final()]);
  } catch {
    throw new CryptoError('decryptionFailed', `${what} could not be decrypted with our key.`);
  }
}

export interface CertificateFacts {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  sha1: string;
  sha256: string;
  md5: string;
}

export function certificateFacts(der: Buffer): CertificateFacts {
  const c = new crypto.X509Certificate(der);
  return {
    subject: c.subject.replace(/\n/g, ', '),
    issuer: c.issuer.replace(/\n/g, ', '),
    serialNumber: c.serialNumber,
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    isCa: c.ca,
    sha1: crypto.createHash('sha1').update(der).digest('hex'),
    sha256: crypto.createHash('sha256').update(der).digest('hex'),
    md5: crypto.createHash('md5').update(der).digest('hex'),
  };
}

export function keyMatchesCertificate(key: crypto.KeyObject, certDer: Buffer): boolean {
  const a = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
  const b = new crypto.X509Certificate(certDer).publicKey.export({ type: 'spki', format: 'der' });
  return a.equals(b);
}
