import crypto from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CONTENT_TYPE_NAMES, hexOf, integerHex, octetBytes, parseBer, parseContentInfo } from './asn1.js';
import { certificateDer } from './certificates.js';
import { guard, NoMatchingRecipientError, PkiError, type RecipientId } from './errors.js';
import { loadPrivateKey, samePublicKey, loadPublicKey } from './keys.js';
import { parseName } from './names.js';
import { CIPHER_OID, CIPHERS, DIGEST_OID, DIGESTS, OID, type ContentCipher } from './oids.js';

/**
 * CMS EnvelopedData (RFC 5652 §6) with key transport recipients: what Apple's ADE server token and
 * SCEP requests are. RSA PKCS#1 v1.5 key transport is a raw (blinded) RSA operation in OpenSSL
 * and a constant-time unpadding here (Node 20's privateDecrypt refuses that padding); RSA-OAEP
 * through Node.
 */

export type KeyTransport = 'rsaes-pkcs1-v1_5' | 'rsaes-oaep-sha1' | 'rsaes-oaep-sha256';

export interface DecryptedEnvelope {
  content: Buffer;
  /** The inner content type (normally id-data). */
  contentType: string;
  cipher: ContentCipher;
  keyTransport: KeyTransport;
  /** The RecipientInfo that matched our certificate. */
  recipient: RecipientId;
}

interface OurCertificate {
  cert: pkijs.Certificate;
  ski: Buffer;
  spkiKeyHash: Buffer;
}

function ourCertificate(certificatePem: string | Uint8Array): OurCertificate {
  return guard('Our certificate', () => {
    const cert = new pkijs.Certificate({ schema: parseBer(certificateDer(certificatePem), 'Our certificate') });
    const spkiBits = cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView;
    const skiExt = cert.extensions?.find((e) => e.extnID === '2.5.29.14');
    const ski = skiExt ? octetBytes(parseBer(skiExt.extnValue.valueBlock.valueHexView, 'Subject key identifier')) : Buffer.alloc(0);
    // RFC 5280 §4.2.1.2 method 1, for senders that compute the identifier themselves.
    return { cert, ski, spkiKeyHash: crypto.createHash('sha1').update(spkiBits).digest() };
  });
}

function recipientIdOf(rid: pkijs.IssuerAndSerialNumber | asn1js.OctetString): RecipientId {
  if (rid instanceof pkijs.IssuerAndSerialNumber) {
    let issuer = '?';
    try {
      issuer = parseName(new Uint8Array(rid.issuer.toSchema().toBER())).text;
    } catch {
      // An unreadable issuer still leaves the serial to report.
    }
    return { issuer, serialNumberHex: integerHex(rid.serialNumber) };
  }
  return { subjectKeyIdentifierHex: hexOf(rid.valueBlock.valueHexView) };
}

function matches(rid: pkijs.IssuerAndSerialNumber | asn1js.OctetString, ours: OurCertificate): boolean {
  if (rid instanceof pkijs.IssuerAndSerialNumber) {
    return rid.serialNumber.isEqual(ours.cert.serialNumber) && rid.issuer.isEqual(ours.cert.issuer);
  }
  const id = Buffer.from(rid.valueBlock.valueHexView);
  return (ours.ski.length > 0 && id.equals(ours.ski)) || id.equals(ours.spkiKeyHash);
}

/** RSAES-OAEP-params, read by hand: pkijs fills in a wrong default for an absent pSourceAlgorithm. */
function oaepHash(alg: pkijs.AlgorithmIdentifier): 'sha1' | 'sha256' | 'sha384' | 'sha512' {
  let hash: string | undefined = 'sha1';
  let mgfHash: string | undefined = 'sha1';
  const params = alg.algorithmParams as asn1js.AsnType | undefined;
  if (params instanceof asn1js.Sequence) {
    for (const el of params.valueBlock.value) {
      const inner = (el as asn1js.Constructed).valueBlock.value?.[0];
      if (el.idBlock.tagClass !== 3 || !inner) throw new PkiError('malformed', 'RSA-OAEP parameters are malformed.');
      const ai = new pkijs.AlgorithmIdentifier({ schema: inner });
      if (el.idBlock.tagNumber === 0) hash = DIGESTS[ai.algorithmId];
      else if (el.idBlock.tagNumber === 1) {
        if (ai.algorithmId !== OID.mgf1 || !ai.algorithmParams) throw new PkiError('unsupported', 'Only MGF1 is supported for RSA-OAEP.');
        mgfHash = DIGESTS[new pkijs.AlgorithmIdentifier({ schema: ai.algorithmParams }).algorithmId];
      } else if (el.idBlock.tagNumber === 2) {
        const label = ai.algorithmParams as asn1js.AsnType | undefined;
        if (ai.algorithmId !== OID.pSpecified || (label instanceof asn1js.OctetString && label.valueBlock.valueHexView.length > 0)) {
          throw new PkiError('unsupported', 'RSA-OAEP labels are not supported.');
        }
      }
    }
  } else if (params !== undefined && !(params instanceof asn1js.Null)) {
    throw new PkiError('malformed', 'RSA-OAEP parameters are malformed.');
  }
  // Node uses one hash for OAEP and MGF1.
  if (!hash || hash !== mgfHash || hash === 'sha224') throw new PkiError('unsupported', 'RSA-OAEP with this hash/mask combination is not supported.');
  return hash as 'sha1' | 'sha256' | 'sha384' | 'sha512';
}

/**
 * The message of an RSAES-PKCS1-v1_5 encryption block (RFC 8017 §7.2.2) of `length` bytes:
 * 00 02 <at least 8 non-zero bytes> 00 <message>. Every byte is looked at whatever it holds, with no
 * early exit, so the time taken says nothing about where the block went wrong (the caller then
 * substitutes a random key). This replaced node-forge's pure-JS RSA, which took ~60 ms a request.
 */
export function unpadPkcs1v15(block: Buffer, length: number): Buffer | undefined {
  const separator = block.length - length - 1;
  // Only lengths (public) decide this branch.
  if (separator < 10) return undefined;
  let bad = block[0]! | (block[1]! ^ 0x02) | block[separator]!;
  // (b - 1) >>> 31 is 1 exactly when b is 0: padding bytes must all be non-zero.
  for (let i = 2; i < separator; i++) bad |= (block[i]! - 1) >>> 31;
  return bad === 0 ? Buffer.from(block.subarray(separator + 1)) : undefined;
}

/**
 * Unwraps the content-encryption key. A failure yields a random key instead of an error (RFC 3218
 * §2.3), so a padding error can't be told apart from a bad content decryption: no Bleichenbacher oracle.
 */
function unwrapKey(ktri: pkijs.KeyTransRecipientInfo, key: crypto.KeyObject, keyLength: number): { cek: Buffer; keyTransport: KeyTransport } {
  const encryptedKey = Buffer.from(ktri.encryptedKey.valueBlock.valueHexView);
  const alg = ktri.keyEncryptionAlgorithm;
  let keyTransport: KeyTransport;
  let cek: Buffer | undefined;
  if (alg.algorithmId === OID.rsaEncryption) {
    keyTransport = 'rsaes-pkcs1-v1_5';
    try {
      cek = unpadPkcs1v15(crypto.privateDecrypt({ key, padding: crypto.constants.RSA_NO_PADDING }, encryptedKey), keyLength);
    } catch {
      cek = undefined;
    }
  } else if (alg.algorithmId === OID.rsaesOaep) {
    const hash = oaepHash(alg);
    keyTransport = hash === 'sha256' ? 'rsaes-oaep-sha256' : 'rsaes-oaep-sha1';
    try {
      cek = crypto.privateDecrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, encryptedKey);
    } catch {
      cek = undefined;
    }
  } else {
    throw new PkiError('unsupported', `Key transport algorithm ${alg.algorithmId} is not supported (RSA PKCS#1 v1.5 and RSA-OAEP are).`);
  }
  if (!cek || cek.length !== keyLength) cek = crypto.randomBytes(keyLength);
  return { cek, keyTransport };
}

/** Decrypts a DER/BER ContentInfo holding EnvelopedData for our certificate and its private key. */
export function decryptEnvelopedData(der: Uint8Array, opts: { certificatePem: string | Uint8Array; privateKeyPem: string | crypto.KeyObject }): DecryptedEnvelope {
  return guard('The encrypted message', () => decrypt(der, opts));
}

function decrypt(der: Uint8Array, opts: { certificatePem: string | Uint8Array; privateKeyPem: string | crypto.KeyObject }): DecryptedEnvelope {
  const key = loadPrivateKey(opts.privateKeyPem);
  if (key.asymmetricKeyType !== 'rsa') throw new PkiError('unsupported', 'Only RSA recipient keys are supported.');
  const ours = ourCertificate(opts.certificatePem);
  const ourSpki = Buffer.from(ours.cert.subjectPublicKeyInfo.toSchema().toBER());
  if (!samePublicKey(loadPublicKey(ourSpki), key)) throw new PkiError('keyMismatch', "The private key doesn't match the recipient certificate.");

  const info = parseContentInfo(der, 'The encrypted message');
  if (info.contentType !== OID.envelopedData) {
    throw new PkiError('malformed', `The message is CMS ${CONTENT_TYPE_NAMES[info.contentType] ?? info.contentType}, not EnvelopedData.`);
  }
  const env = guard('The EnvelopedData', () => new pkijs.EnvelopedData({ schema: info.content }));
  const recipients: RecipientId[] = [];
  let match: pkijs.KeyTransRecipientInfo | undefined;
  let keyTransportCount = 0;
  for (const ri of env.recipientInfos) {
    if (ri.variant !== 1) continue; // key agreement / KEK / password recipients aren't ours
    keyTransportCount++;
    const ktri = ri.value as pkijs.KeyTransRecipientInfo;
    recipients.push(recipientIdOf(ktri.rid));
    if (!match && matches(ktri.rid, ours)) match = ktri;
  }
  if (keyTransportCount === 0) throw new PkiError('unsupported', 'The message has no key transport (RSA) recipient.');
  const oursId = { issuer: recipientIdOf(new pkijs.IssuerAndSerialNumber({ issuer: ours.cert.issuer, serialNumber: ours.cert.serialNumber })).issuer!, serialNumberHex: integerHex(ours.cert.serialNumber) };
  if (!match) throw new NoMatchingRecipientError(recipients, oursId);

  const eci = env.encryptedContentInfo;
  const cipher = CIPHERS[eci.contentEncryptionAlgorithm.algorithmId];
  if (!cipher) throw new PkiError('unsupported', `Content cipher ${eci.contentEncryptionAlgorithm.algorithmId} is not supported (AES-CBC and 3DES-CBC are).`);
  const ivBlock = eci.contentEncryptionAlgorithm.algorithmParams as asn1js.AsnType | undefined;
  const iv = ivBlock instanceof asn1js.OctetString ? octetBytes(ivBlock) : undefined;
  if (!iv || iv.length !== cipher.ivLength) throw new PkiError('malformed', 'The content cipher has no valid IV.');
  if (!eci.encryptedContent) throw new PkiError('malformed', 'The EnvelopedData has no encrypted content (detached content is not supported).');
  const ciphertext = octetBytes(eci.encryptedContent);

  const { cek, keyTransport } = unwrapKey(match, key, cipher.keyLength);
  let content: Buffer;
  try {
    const decipher = crypto.createDecipheriv(cipher.name, cek, iv);
    content = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (err) {
    throw new PkiError('decryptionFailed', 'The message could not be decrypted with our key (wrong key or damaged data).', { cause: err });
  }
  return { content, contentType: eci.contentType, cipher: cipher.name, keyTransport, recipient: recipientIdOf(match.rid) };
}

export interface EncryptOptions {
  /** Default aes-256-cbc. */
  cipher?: ContentCipher;
  /** Default rsaes-pkcs1-v1_5 (what Apple and SCEP clients use). */
  keyTransport?: KeyTransport;
  /** Default issuerAndSerialNumber. */
  recipientIdentifier?: 'issuerAndSerialNumber' | 'subjectKeyIdentifier';
}

/** EnvelopedData (DER ContentInfo) for RSA recipients: for tests, the simulators and SCEP responses. */
export function encryptEnvelopedData(content: Uint8Array, recipientCertificates: readonly (string | Uint8Array)[], opts: EncryptOptions = {}): Buffer {
  const cipherName = opts.cipher ?? 'aes-256-cbc';
  const cipherOid = CIPHER_OID[cipherName];
  const cipher = CIPHERS[cipherOid]!;
  const keyTransport = opts.keyTransport ?? 'rsaes-pkcs1-v1_5';
  if (recipientCertificates.length === 0) throw new PkiError('malformed', 'At least one recipient is needed.');
  const cek = crypto.randomBytes(cipher.keyLength);
  const iv = crypto.randomBytes(cipher.ivLength);
  const c = crypto.createCipheriv(cipherName, cek, iv);
  const ciphertext = Buffer.concat([c.update(content), c.final()]);

  const recipientInfos = recipientCertificates.map((pem) => {
    const ours = ourCertificate(pem);
    const publicKey = loadPublicKey(Buffer.from(ours.cert.subjectPublicKeyInfo.toSchema().toBER()));
    if (publicKey.asymmetricKeyType !== 'rsa') throw new PkiError('unsupported', 'Only RSA recipients are supported.');
    let alg: pkijs.AlgorithmIdentifier;
    let encryptedKey: Buffer;
    if (keyTransport === 'rsaes-pkcs1-v1_5') {
      alg = new pkijs.AlgorithmIdentifier({ algorithmId: OID.rsaEncryption, algorithmParams: new asn1js.Null() });
      encryptedKey = crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_PADDING }, cek);
    } else {
      const hash = keyTransport === 'rsaes-oaep-sha256' ? 'sha256' : 'sha1';
      const hashAlg = new pkijs.AlgorithmIdentifier({ algorithmId: DIGEST_OID[hash]!, algorithmParams: new asn1js.Null() });
      const params =
        hash === 'sha1'
          ? undefined // all defaults: an empty SEQUENCE
          : new pkijs.RSAESOAEPParams({ hashAlgorithm: hashAlg, maskGenAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.mgf1, algorithmParams: hashAlg.toSchema() }) });
      alg = new pkijs.AlgorithmIdentifier({ algorithmId: OID.rsaesOaep, algorithmParams: params ? params.toSchema() : new asn1js.Sequence() });
      encryptedKey = crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, cek);
    }
    const rid =
      opts.recipientIdentifier === 'subjectKeyIdentifier'
        ? new asn1js.OctetString({ valueHex: ours.ski.length > 0 ? ours.ski : ours.spkiKeyHash })
        : new pkijs.IssuerAndSerialNumber({ issuer: ours.cert.issuer, serialNumber: ours.cert.serialNumber });
    return new pkijs.RecipientInfo({
      variant: 1,
      value: new pkijs.KeyTransRecipientInfo({ rid, keyEncryptionAlgorithm: alg, encryptedKey: new asn1js.OctetString({ valueHex: encryptedKey }) }),
    });
  });

  const env = new pkijs.EnvelopedData({
    version: opts.recipientIdentifier === 'subjectKeyIdentifier' ? 2 : 0,
    recipientInfos,
    encryptedContentInfo: new pkijs.EncryptedContentInfo({
      contentType: OID.data,
      contentEncryptionAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: cipherOid, algorithmParams: new asn1js.OctetString({ valueHex: iv }) }),
      encryptedContent: new asn1js.OctetString({ valueHex: ciphertext }),
    }),
  });
  const info = new pkijs.ContentInfo({ contentType: OID.envelopedData, content: env.toSchema() });
  return Buffer.from(info.toSchema().toBER());
}
