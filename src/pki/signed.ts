import crypto from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { ownedBytes, RecentCache } from '../shared/recent-cache.js';
import { CONTENT_TYPE_NAMES, decodeElement, derChildren, derElementAt, octetBytes, parseBer, parseContentInfo } from './asn1.js';
import { certificateDer, parseCertificate, type CertificateInfo } from './certificates.js';
import { guard, PkiError } from './errors.js';
import { loadPrivateKey, loadPublicKey, samePublicKey } from './keys.js';
import { DIGEST_OID, DIGESTS, OID, SIGNATURES } from './oids.js';

/**
 * CMS SignedData (RFC 5652 §5): signed enrollment profiles now; Mdm-Signature and SCEP messages
 * next. pkijs builds and reads the structure; Node's crypto signs, hashes and verifies.
 */

export interface SignOptions {
  certificatePem: string;
  privateKeyPem: string | crypto.KeyObject;
  /** Intermediates to ship with the signature, so verifiers can build the chain. */
  chainPems?: readonly string[];
  /** Leave the content out (a detached signature). */
  detached?: boolean;
  /** Default now. */
  signingTime?: Date;
}

const der = (o: { toSchema(): asn1js.AsnType }) => Buffer.from(o.toSchema().toBER());

function attribute(type: string, value: asn1js.AsnType): pkijs.Attribute {
  return new pkijs.Attribute({ type, values: [value] });
}

/** SignedData with one SHA-256 signer and signed attributes (contentType, signingTime, messageDigest), as DER ContentInfo. */
export function createSignedData(content: Uint8Array, opts: SignOptions): Buffer {
  const key = loadPrivateKey(opts.privateKeyPem);
  const signerDer = certificateDer(opts.certificatePem);
  const signerInfo = parseCertificate(signerDer);
  if (!samePublicKey(loadPublicKey(signerInfo.publicKeySpki), key)) throw new PkiError('keyMismatch', "The signing key doesn't match the signer certificate.");
  const signer = new pkijs.Certificate({ schema: parseBer(signerDer, 'The signer certificate') });
  const chain = (opts.chainPems ?? []).map((pem) => new pkijs.Certificate({ schema: parseBer(certificateDer(pem), 'A chain certificate') }));

  const digest = crypto.createHash('sha256').update(content).digest();
  const when = opts.signingTime ?? new Date();
  // DER orders a SET OF by encoding; verifiers hash the bytes we send, but strict ones check this.
  const attrs = [
    attribute(OID.contentType, new asn1js.ObjectIdentifier({ value: OID.data })),
    // UTCTime until 2050 (RFC 5652 §11.3).
    attribute(OID.signingTime, when.getUTCFullYear() < 2050 ? new asn1js.UTCTime({ valueDate: when }) : new asn1js.GeneralizedTime({ valueDate: when })),
    attribute(OID.messageDigest, new asn1js.OctetString({ valueHex: digest })),
  ].sort((a, b) => Buffer.compare(der(a), der(b)));
  const signedAttrs = new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: attrs });
  const toSign = Buffer.from(signedAttrs.toSchema().toBER());
  toSign[0] = 0x31; // signed as a SET, carried as [0] IMPLICIT

  const isRsa = key.asymmetricKeyType === 'rsa';
  if (!isRsa && key.asymmetricKeyType !== 'ec') throw new PkiError('unsupported', 'Only RSA and EC signers are supported.');
  const signature = crypto.sign('sha256', toSign, key);
  const sha256 = new pkijs.AlgorithmIdentifier({ algorithmId: DIGEST_OID.sha256! });
  const si = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: signer.issuer, serialNumber: signer.serialNumber }),
    digestAlgorithm: sha256,
    signedAttrs,
    signatureAlgorithm: isRsa
      ? new pkijs.AlgorithmIdentifier({ algorithmId: OID.rsaEncryption, algorithmParams: new asn1js.Null() })
      : new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.10045.4.3.2' }),
    signature: new asn1js.OctetString({ valueHex: signature }),
  });
  const sd = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [sha256],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({
      eContentType: OID.data,
      ...(opts.detached ? {} : { eContent: new asn1js.OctetString({ valueHex: content }) }),
    }),
    certificates: [signer, ...chain],
    signerInfos: [si],
  });
  return Buffer.from(new pkijs.ContentInfo({ contentType: OID.signedData, content: sd.toSchema(true) }).toSchema().toBER());
}

export interface VerifyOptions {
  /** The content of a detached signature. */
  detachedContent?: Uint8Array;
  /** When given, the signer must chain (through the message's certificates and `intermediates`) to one of these. */
  trustAnchors?: readonly (string | Uint8Array)[];
  intermediates?: readonly (string | Uint8Array)[];
  /** For certificate validity when checking trust; default now. */
  now?: Date;
}

export interface VerifiedSignedData {
  content: Buffer;
  contentType: string;
  signer: CertificateInfo;
  /** Every certificate the message carried. */
  certificates: CertificateInfo[];
  signingTime: Date | undefined;
  /** Signer first, anchor last; only when trust anchors were given. */
  chain: CertificateInfo[] | undefined;
}

/** A certificate a SignedData carries, with what a signer identifier matches, as received. */
interface MessageCertificate {
  info: CertificateInfo;
  issuerDer: Buffer;
  serialDer: Buffer;
  /** The subjectPublicKey bits (a key identifier without the extension is their SHA-1). */
  keyBits: Uint8Array;
}

/** How a SignerInfo names its certificate (RFC 5652 §5.3): issuer and serial, or subject key identifier. */
type SignerIdentifier = { issuerDer: Buffer; serialDer: Buffer } | { keyIdHex: string };

const malformed = (what: string) => new PkiError('malformed', `The signed message's ${what} is malformed.`);
const isContext = (b: asn1js.AsnType | undefined, tag: number) => b?.idBlock.tagClass === 3 && b.idBlock.tagNumber === tag;
const childrenOf = (b: asn1js.AsnType | undefined): asn1js.AsnType[] => (b?.valueBlock as { value?: asn1js.AsnType[] } | undefined)?.value ?? [];

/** A Certificate entry of `certificates` (other CertificateChoices are tagged and skipped). */
function messageCertificate(block: asn1js.AsnType): MessageCertificate | undefined {
  if (!(block instanceof asn1js.Sequence)) return undefined;
  const tbs = childrenOf(block)[0];
  if (!(tbs instanceof asn1js.Sequence)) throw malformed('certificate');
  const fields = childrenOf(tbs);
  // TBSCertificate: [0] version (optional), serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo.
  const at = isContext(fields[0], 0) ? 1 : 0;
  const [serial, issuer, spki] = [fields[at], fields[at + 2], fields[at + 5]];
  const keyBits = childrenOf(spki)[1];
  if (!(serial instanceof asn1js.Integer) || !(issuer instanceof asn1js.Sequence) || !(keyBits instanceof asn1js.BitString)) throw malformed('certificate');
  return {
    // The certificate as received (re-encoding it through pkijs cost more than the rest of a check-in).
    info: parseCertificate(Buffer.from(block.valueBeforeDecodeView)),
    // Own copies: these are kept in messageCertificates (a view would keep the whole message alive).
    issuerDer: ownedBytes(issuer.valueBeforeDecodeView),
    serialDer: ownedBytes(serial.valueBeforeDecodeView),
    keyBits: ownedBytes(keyBits.valueBlock.valueHexView),
  };
}

function signerIdentifier(signerInfo: asn1js.AsnType): SignerIdentifier {
  const sid = childrenOf(signerInfo)[1];
  if (sid instanceof asn1js.Sequence) {
    const [issuer, serial] = childrenOf(sid);
    if (!(issuer instanceof asn1js.Sequence) || !(serial instanceof asn1js.Integer)) throw malformed('signer identifier');
    return { issuerDer: Buffer.from(issuer.valueBeforeDecodeView), serialDer: Buffer.from(serial.valueBeforeDecodeView) };
  }
  if (isContext(sid, 0) && !sid!.idBlock.isConstructed) {
    // [0] IMPLICIT SubjectKeyIdentifier: the octets of a primitive block.
    const octets = (sid!.valueBlock as unknown as { valueHexView?: Uint8Array }).valueHexView;
    if (octets && octets.length > 0) return { keyIdHex: Buffer.from(octets).toString('hex').toUpperCase() };
  }
  throw malformed('signer identifier');
}

/** The certificate a signer identifier names; DER names and serials compare byte for byte (as pkijs does). */
function findSigner(sid: SignerIdentifier, certs: readonly MessageCertificate[]): MessageCertificate | undefined {
  if ('issuerDer' in sid) return certs.find((c) => c.serialDer.equals(sid.serialDer) && c.issuerDer.equals(sid.issuerDer));
  // Without the extension, the identifier is the SHA-1 of the key (RFC 5280 §4.2.1.2 method 1).
  const keyHash = (c: MessageCertificate) => crypto.createHash('sha1').update(c.keyBits).digest('hex').toUpperCase();
  return certs.find((c) => (c.info.subjectKeyIdentifierHex ?? keyHash(c)) === sid.keyIdHex);
}

function attributeValue(attrs: pkijs.SignedAndUnsignedAttributes | undefined, type: string): asn1js.AsnType | undefined {
  const a = attrs?.attributes.find((x) => x.type === type);
  if (a && a.values.length !== 1) throw new PkiError('malformed', `Signed attribute ${type} must have one value.`);
  return a?.values[0] as asn1js.AsnType | undefined;
}

function verifySigner(si: pkijs.SignerInfo, content: Buffer, eContentType: string, signer: CertificateInfo): Date | undefined {
  const hash = DIGESTS[si.digestAlgorithm.algorithmId];
  if (!hash) throw new PkiError('unsupported', `Digest algorithm ${si.digestAlgorithm.algorithmId} is not supported.`);
  let data = content;
  let signingTime: Date | undefined;
  if (si.signedAttrs) {
    const ct = attributeValue(si.signedAttrs, OID.contentType);
    const md = attributeValue(si.signedAttrs, OID.messageDigest);
    if (!(ct instanceof asn1js.ObjectIdentifier) || ct.valueBlock.toString() !== eContentType) throw new PkiError('badSignature', 'The signed content type attribute is missing or differs.');
    if (!(md instanceof asn1js.OctetString)) throw new PkiError('badSignature', 'The message digest attribute is missing.');
    const digest = crypto.createHash(hash).update(content).digest();
    const expected = octetBytes(md);
    if (expected.length !== digest.length || !crypto.timingSafeEqual(expected, digest)) throw new PkiError('badSignature', "The content doesn't match the signed digest.");
    const st = attributeValue(si.signedAttrs, OID.signingTime);
    if (st instanceof asn1js.UTCTime || st instanceof asn1js.GeneralizedTime) signingTime = st.toDate();
    data = Buffer.from(si.signedAttrs.encodedValue);
  }
  const sigAlg = si.signatureAlgorithm.algorithmId;
  const implied = SIGNATURES[sigAlg];
  const keyType = implied?.[0] ?? (sigAlg === OID.rsaEncryption ? 'rsa' : sigAlg === OID.ecPublicKey ? 'ec' : undefined);
  if (!keyType) throw new PkiError('unsupported', `Signature algorithm ${sigAlg} is not supported.`);
  const publicKey = loadPublicKey(signer.publicKeySpki);
  if (publicKey.asymmetricKeyType !== keyType) throw new PkiError('badSignature', "The signature algorithm doesn't fit the signer's key.");
  const ok = crypto.verify(implied?.[1] ?? hash, data, publicKey, Buffer.from(si.signature.valueBlock.valueHexView));
  if (!ok) throw new PkiError('badSignature', "The signature doesn't verify with the signer's certificate.");
  return signingTime;
}

/** Signer first, anchor last: walks issuers by name and signature; every certificate must be valid at `now`. */
export function buildChain(leaf: CertificateInfo, pool: readonly CertificateInfo[], anchors: readonly CertificateInfo[], now: Date): CertificateInfo[] {
  const x = new Map<CertificateInfo, crypto.X509Certificate>();
  const x509Of = (c: CertificateInfo) => x.get(c) ?? x.set(c, new crypto.X509Certificate(c.der)).get(c)!;
  const issuedBy = (child: CertificateInfo, parent: CertificateInfo) => x509Of(child).checkIssued(x509Of(parent)) && x509Of(child).verify(x509Of(parent).publicKey);
  const chain = [leaf];
  let current = leaf;
  for (let depth = 0; depth < 10; depth++) {
    const anchored = anchors.find((a) => a.der.equals(current.der)) ?? anchors.find((a) => issuedBy(current, a));
    if (anchored) {
      if (!anchored.der.equals(current.der)) chain.push(anchored);
      for (const c of chain) {
        if (now < c.notBefore || now > c.notAfter) throw new PkiError('untrusted', `Certificate "${c.subject.text}" is not valid at ${now.toISOString()}.`);
      }
      return chain;
    }
    const next = pool.find((c) => c.isCa && !chain.includes(c) && issuedBy(current, c));
    if (!next) break;
    chain.push(next);
    current = next;
  }
  throw new PkiError('untrusted', `The signer "${leaf.subject.text}" doesn't chain to a trusted certificate.`);
}

/** SignedData's fields: version, digestAlgorithms, encapContentInfo and signerInfos decoded, the certificates read. */
export interface SignedDataFields {
  version: asn1js.AsnType | undefined;
  digestAlgorithms: asn1js.AsnType | undefined;
  encap: asn1js.AsnType | undefined;
  signerInfos: asn1js.AsnType | undefined;
  fieldCount: number;
  certs: MessageCertificate[];
}

// SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo, [0] certificates?, [1] crls?, signerInfos SET }
function fieldsOf(fields: readonly asn1js.AsnType[], certs: MessageCertificate[]): SignedDataFields {
  return { version: fields[0], digestAlgorithms: fields[1], encap: fields[2], signerInfos: fields[fields.length - 1], fieldCount: fields.length, certs };
}

/** The whole message decoded by asn1js (BER included). */
export function signedDataFields(input: Uint8Array): SignedDataFields {
  const info = parseContentInfo(input, 'The signed message');
  if (info.contentType !== OID.signedData) throw new PkiError('malformed', `The message is CMS ${CONTENT_TYPE_NAMES[info.contentType] ?? info.contentType}, not SignedData.`);
  if (!(info.content instanceof asn1js.Sequence)) throw malformed('structure');
  const fields = childrenOf(info.content);
  const certificateSet = fields.slice(3, -1).find((f) => isContext(f, 0));
  return fieldsOf(fields, childrenOf(certificateSet).flatMap((c) => messageCertificate(c) ?? []));
}

const SIGNED_DATA_OID_DER = Buffer.from('06092a864886f70d010702', 'hex');
const SEQUENCE = 0x30;
const CONTEXT_0 = 0xa0; // [0], constructed: ContentInfo's content and SignedData's certificates

/**
 * The same from plain DER (every Mdm-Signature), without decoding the certificates: a device sends
 * the same certificate with every message, and asn1js decoding it was the largest cost of an idle
 * check-in. Each certificate's bytes are looked up by their hash (decoded once); the other fields
 * are decoded by asn1js one by one. Undefined for anything else (BER, another content type, damage),
 * which then takes the whole-message path and its errors.
 */
export function signedDataFieldsFromDer(input: Uint8Array): SignedDataFields | undefined {
  const outer = derElementAt(input, 0);
  if (!outer || outer.tag !== SEQUENCE || input.subarray(outer.end).some((b) => b !== 0)) return undefined;
  const info = derChildren(input, outer);
  if (info?.length !== 2 || info[1]!.tag !== CONTEXT_0 || !SIGNED_DATA_OID_DER.equals(input.subarray(info[0]!.start, info[0]!.end))) return undefined;
  const inner = derChildren(input, info[1]!);
  if (inner?.length !== 1 || inner[0]!.tag !== SEQUENCE) return undefined;
  const elements = derChildren(input, inner[0]!);
  if (!elements || elements.length < 4) return undefined;
  const certificateSet = elements.slice(3, -1).find((e) => e.tag === CONTEXT_0);
  const certificates = certificateSet ? derChildren(input, certificateSet) : [];
  if (!certificates) return undefined;
  try {
    const fields = elements.map((e) => (e === certificateSet ? new asn1js.Null() : decodeElement(input, e, 'The signed message')));
    return fieldsOf(fields, certificates.flatMap((c) => (c.tag === SEQUENCE ? knownMessageCertificate(input.subarray(c.start, c.end)) : [])));
  } catch {
    // Not plain DER after all (asn1js also throws RangeErrors): the whole-message decoder decides and words the refusal.
    return undefined;
  }
}

/** Message certificates by their DER's SHA-256 (decoded once). */
const messageCertificates = new RecentCache<MessageCertificate>(10_000);

function knownMessageCertificate(certDer: Uint8Array): MessageCertificate {
  return messageCertificates.getOrCreate(crypto.createHash('sha256').update(certDer).digest('base64'), () => {
    const block = decodeElement(certDer, { tag: SEQUENCE, start: 0, valueStart: 0, end: certDer.length }, 'A certificate of the signed message');
    return messageCertificate(block)!;
  });
}

/**
 * A SignedData read but not yet verified: its first signer's certificate is known (for refusing a
 * stranger before a detached content has even arrived), and `verify` checks it over the content
 * without parsing the message again.
 */
export interface ReadSignedData {
  /** The certificate the first signer names; nothing about it is verified yet. */
  claimedSigner: CertificateInfo;
  verify(opts?: VerifyOptions): VerifiedSignedData;
}

/**
 * Reads a SignedData (DER/BER ContentInfo) whose first signer's certificate is in the message. The
 * structure is walked directly on the decoded ASN.1 (pkijs building a SignedData was ~70 % of an idle
 * check-in); each SignerInfo, small, is still read by pkijs.
 */
export function readSignedData(input: Uint8Array): ReadSignedData {
  return guard('The signed message', () => {
    const { version, digestAlgorithms, encap, signerInfos, fieldCount, certs } = signedDataFieldsFromDer(input) ?? signedDataFields(input);
    if (!(version instanceof asn1js.Integer) || !(digestAlgorithms instanceof asn1js.Set) || !(encap instanceof asn1js.Sequence) || !(signerInfos instanceof asn1js.Set) || fieldCount < 4) {
      throw malformed('structure');
    }
    const [eContentTypeBlock, eContentBlock] = childrenOf(encap);
    if (!(eContentTypeBlock instanceof asn1js.ObjectIdentifier)) throw malformed('content type');
    let attached: Buffer | undefined;
    if (eContentBlock !== undefined) {
      const octets = childrenOf(eContentBlock)[0];
      if (!isContext(eContentBlock, 0) || !(octets instanceof asn1js.OctetString)) throw malformed('content');
      attached = octetBytes(octets);
    }
    const signerBlocks = childrenOf(signerInfos);
    if (signerBlocks.length === 0) throw new PkiError('malformed', 'The message has no signer.');
    const signers = signerBlocks.map((block) => {
      const found = findSigner(signerIdentifier(block), certs);
      if (!found) throw new PkiError('badSignature', "The signer's certificate is not in the message.");
      return { si: new pkijs.SignerInfo({ schema: block }), signer: found.info };
    });
    const parsed: ParsedSignedData = { eContentType: eContentTypeBlock.valueBlock.toString(), attached, signers, certificates: certs.map((c) => c.info) };
    return {
      claimedSigner: signers[0]!.signer,
      verify: (opts = {}) => guard('The signed message', () => verifyRead(parsed, opts)),
    };
  });
}

interface ParsedSignedData {
  eContentType: string;
  attached: Buffer | undefined;
  signers: { si: pkijs.SignerInfo; signer: CertificateInfo }[];
  certificates: CertificateInfo[];
}

function verifyRead(sd: ParsedSignedData, opts: VerifyOptions): VerifiedSignedData {
  const { attached, eContentType, certificates } = sd;
  if (attached && opts.detachedContent && !attached.equals(Buffer.from(opts.detachedContent))) {
    throw new PkiError('badSignature', 'The message carries content that differs from the content given.');
  }
  const content = attached ?? (opts.detachedContent ? Buffer.from(opts.detachedContent) : undefined);
  if (!content) throw new PkiError('malformed', 'The signature is detached; the signed content is needed to verify it.');
  const signingTimes = sd.signers.map(({ si, signer }) => verifySigner(si, content, eContentType, signer));
  const signer = sd.signers[0]!.signer;
  let chain: CertificateInfo[] | undefined;
  if (opts.trustAnchors) {
    const anchors = opts.trustAnchors.map(parseCertificate);
    const pool = [...certificates, ...(opts.intermediates ?? []).map(parseCertificate)];
    chain = buildChain(signer, pool, anchors, opts.now ?? new Date());
  }
  return { content, contentType: eContentType, signer, certificates, signingTime: signingTimes[0], chain };
}

/** Verifies every signer of a SignedData (DER/BER ContentInfo); returns the content and the first signer. */
export function verifySignedData(input: Uint8Array, opts: VerifyOptions = {}): VerifiedSignedData {
  return readSignedData(input).verify(opts);
}
