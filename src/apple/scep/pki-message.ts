import crypto from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { octetBytes, parseBer, parseContentInfo } from '../../pki/asn1.js';
import { certificateDer } from '../../pki/certificates.js';
import { PkiError } from '../../pki/errors.js';
import { DIGEST_OID, DIGESTS, OID } from '../../pki/oids.js';

/**
 * SCEP pkiMessages (RFC 8894 §3): reading a request's SignedData envelope and its attributes, and
 * building CertRep responses and degenerate certificates-only SignedData. Pure: no I/O.
 */

export const SCEP_OID = {
  messageType: '2.16.840.1.113733.1.9.2',
  pkiStatus: '2.16.840.1.113733.1.9.3',
  failInfo: '2.16.840.1.113733.1.9.4',
  senderNonce: '2.16.840.1.113733.1.9.5',
  recipientNonce: '2.16.840.1.113733.1.9.6',
  transactionID: '2.16.840.1.113733.1.9.7',
  challengePassword: '1.2.840.113549.1.9.7',
} as const;

/** messageType values (RFC 8894 §3.2.1.2). */
export const MESSAGE_TYPES = { CertRep: '3', RenewalReq: '17', PKCSReq: '19', CertPoll: '20', GetCert: '21', GetCRL: '22' } as const;
export type MessageTypeName = keyof typeof MESSAGE_TYPES;
const MESSAGE_TYPE_NAMES = new Map<string, MessageTypeName>(Object.entries(MESSAGE_TYPES).map(([k, v]) => [v, k as MessageTypeName]));

export type PkiStatus = 'SUCCESS' | 'FAILURE' | 'PENDING';
const PKI_STATUS: Record<PkiStatus, string> = { SUCCESS: '0', FAILURE: '2', PENDING: '3' };
export type FailInfo = 'badAlg' | 'badMessageCheck' | 'badRequest' | 'badTime' | 'badCertId';
const FAIL_INFO: Record<FailInfo, string> = { badAlg: '0', badMessageCheck: '1', badRequest: '2', badTime: '3', badCertId: '4' };

/** Nonces are 16 bytes in every client we know; anything from 8 to 64 is accepted. */
const NONCE_BYTES = { min: 8, max: 64 };
const MAX_TRANSACTION_ID = 256;

/** A request that can't be read as a pkiMessage: no CertRep can be addressed, so the answer is HTTP 400. */
export class MalformedPkiMessage extends Error {}

export interface PkiMessageEnvelope {
  messageType: MessageTypeName;
  transactionId: string;
  senderNonce: Buffer;
  /** Digest the requester signed with (node hash name); the CertRep uses the same. */
  digest: string;
  /** The encapsulated pkcsPKIEnvelope (EnvelopedData DER). */
  envelope: Buffer;
}

function attrString(value: unknown, what: string): string {
  if (value instanceof asn1js.PrintableString || value instanceof asn1js.Utf8String || value instanceof asn1js.IA5String) return value.valueBlock.value;
  throw new MalformedPkiMessage(`${what} must be a PrintableString.`);
}

function singleAttribute(attrs: pkijs.Attribute[], type: string, what: string): unknown {
  const found = attrs.filter((a) => a.type === type);
  if (found.length === 0) return undefined;
  if (found.length > 1 || found[0]!.values.length !== 1) throw new MalformedPkiMessage(`${what} must appear once with one value.`);
  return found[0]!.values[0];
}

/**
 * Reads the outer SignedData of a request: one signer with signed attributes, its SCEP attributes
 * and the encapsulated envelope. Signatures are checked separately (verifySignedData).
 */
export function readPkiMessage(der: Uint8Array): PkiMessageEnvelope {
  let sd: pkijs.SignedData;
  try {
    const info = parseContentInfo(der, 'The pkiMessage');
    if (info.contentType !== OID.signedData) throw new MalformedPkiMessage('The pkiMessage is not CMS SignedData.');
    sd = new pkijs.SignedData({ schema: info.content });
  } catch (err) {
    if (err instanceof MalformedPkiMessage) throw err;
    throw new MalformedPkiMessage(err instanceof PkiError ? err.message : 'The pkiMessage is not CMS SignedData.');
  }
  if (sd.signerInfos.length !== 1) throw new MalformedPkiMessage('The pkiMessage must have exactly one signer.');
  const si = sd.signerInfos[0]!;
  const attrs = si.signedAttrs?.attributes;
  if (!attrs) throw new MalformedPkiMessage('The pkiMessage has no signed attributes.');
  const digest = DIGESTS[si.digestAlgorithm.algorithmId];
  if (!digest) throw new MalformedPkiMessage(`Digest algorithm ${si.digestAlgorithm.algorithmId} is not supported.`);

  const rawType = singleAttribute(attrs, SCEP_OID.messageType, 'messageType');
  if (rawType === undefined) throw new MalformedPkiMessage('The pkiMessage has no messageType.');
  const typeValue = attrString(rawType, 'messageType');
  const messageType = MESSAGE_TYPE_NAMES.get(typeValue);
  if (!messageType || messageType === 'CertRep') throw new MalformedPkiMessage(`messageType '${typeValue.slice(0, 8)}' is not a request.`);

  const rawTid = singleAttribute(attrs, SCEP_OID.transactionID, 'transactionID');
  if (rawTid === undefined) throw new MalformedPkiMessage('The pkiMessage has no transactionID.');
  const transactionId = attrString(rawTid, 'transactionID');
  if (transactionId.length === 0 || transactionId.length > MAX_TRANSACTION_ID || !/^[\x20-\x7e]+$/.test(transactionId)) {
    throw new MalformedPkiMessage(`transactionID must be 1–${MAX_TRANSACTION_ID} printable characters.`);
  }

  const rawNonce = singleAttribute(attrs, SCEP_OID.senderNonce, 'senderNonce');
  if (!(rawNonce instanceof asn1js.OctetString)) throw new MalformedPkiMessage('The pkiMessage has no senderNonce OCTET STRING.');
  const senderNonce = octetBytes(rawNonce);
  if (senderNonce.length < NONCE_BYTES.min || senderNonce.length > NONCE_BYTES.max) throw new MalformedPkiMessage('senderNonce has an unusual length.');

  if (sd.encapContentInfo.eContentType !== OID.data || !sd.encapContentInfo.eContent) throw new MalformedPkiMessage('The pkiMessage carries no data content.');
  const envelope = octetBytes(sd.encapContentInfo.eContent);
  if (envelope.length === 0) throw new MalformedPkiMessage('The pkiMessage content is empty.');
  return { messageType, transactionId, senderNonce, digest, envelope };
}

/** The challengePassword attribute of a PKCS#10 request (DirectoryString); undefined when absent. */
export function csrChallengePassword(csrDer: Uint8Array): string | undefined {
  let csr: pkijs.CertificationRequest;
  try {
    csr = new pkijs.CertificationRequest({ schema: parseBer(csrDer, 'The certificate signing request') });
  } catch {
    throw new MalformedPkiMessage('The certificate signing request is malformed.');
  }
  const found = (csr.attributes ?? []).filter((a) => a.type === SCEP_OID.challengePassword);
  if (found.length === 0) return undefined;
  if (found.length > 1 || found[0]!.values.length !== 1) throw new MalformedPkiMessage('challengePassword must appear once with one value.');
  const v = found[0]!.values[0] as unknown;
  if (v instanceof asn1js.PrintableString || v instanceof asn1js.Utf8String || v instanceof asn1js.IA5String || v instanceof asn1js.BmpString || v instanceof asn1js.TeletexString) {
    return v.valueBlock.value;
  }
  throw new MalformedPkiMessage('challengePassword is not a string.');
}

const toDer = (o: { toSchema(): asn1js.AsnType }) => Buffer.from(o.toSchema().toBER());
const attribute = (type: string, value: asn1js.AsnType) => new pkijs.Attribute({ type, values: [value] });

export interface CertRepOptions {
  /** The CA (or RA) that signs the response. */
  signerCertificatePem: string;
  signerKey: crypto.KeyObject;
  transactionId: string;
  /** The request's senderNonce, returned as recipientNonce. */
  recipientNonce: Buffer;
  status: PkiStatus;
  failInfo?: FailInfo;
  /** SUCCESS: EnvelopedData (to the requester) of a degenerate SignedData holding the certificate. */
  envelopedContent?: Buffer;
  /** Node hash name: the request's digest when supported, else sha256. */
  digest?: string;
  signingTime?: Date;
}

/** A CertRep pkiMessage (RFC 8894 §3.3.2): SignedData by the CA with the SCEP attributes. */
export function buildCertRep(opts: CertRepOptions): Buffer {
  if (opts.status === 'FAILURE' && !opts.failInfo) throw new Error('A FAILURE CertRep needs a failInfo.');
  if (opts.status === 'SUCCESS' && !opts.envelopedContent) throw new Error('A SUCCESS CertRep needs the enveloped certificate.');
  const hash = opts.digest && ['sha1', 'sha256', 'sha384', 'sha512'].includes(opts.digest) ? opts.digest : 'sha256';
  // FAILURE and PENDING carry no pkcsPKIEnvelope: an empty data content, as other SCEP servers send.
  const content = opts.status === 'SUCCESS' ? opts.envelopedContent! : Buffer.alloc(0);
  const signerDer = certificateDer(opts.signerCertificatePem);
  const signer = new pkijs.Certificate({ schema: parseBer(signerDer, 'The CA certificate') });
  const when = opts.signingTime ?? new Date();
  const attrs = [
    attribute(OID.contentType, new asn1js.ObjectIdentifier({ value: OID.data })),
    attribute(OID.signingTime, new asn1js.UTCTime({ valueDate: when })),
    attribute(OID.messageDigest, new asn1js.OctetString({ valueHex: crypto.createHash(hash).update(content).digest() })),
    attribute(SCEP_OID.messageType, new asn1js.PrintableString({ value: MESSAGE_TYPES.CertRep })),
    attribute(SCEP_OID.pkiStatus, new asn1js.PrintableString({ value: PKI_STATUS[opts.status] })),
    attribute(SCEP_OID.transactionID, new asn1js.PrintableString({ value: opts.transactionId })),
    attribute(SCEP_OID.senderNonce, new asn1js.OctetString({ valueHex: crypto.randomBytes(16) })),
    attribute(SCEP_OID.recipientNonce, new asn1js.OctetString({ valueHex: opts.recipientNonce })),
    ...(opts.status === 'FAILURE' ? [attribute(SCEP_OID.failInfo, new asn1js.PrintableString({ value: FAIL_INFO[opts.failInfo!] }))] : []),
  ].sort((a, b) => Buffer.compare(toDer(a), toDer(b)));
  const signedAttrs = new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: attrs });
  const toSign = Buffer.from(signedAttrs.toSchema().toBER());
  toSign[0] = 0x31; // signed as a SET, carried as [0] IMPLICIT
  const digestAlg = new pkijs.AlgorithmIdentifier({ algorithmId: DIGEST_OID[hash]!, algorithmParams: new asn1js.Null() });
  const si = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: signer.issuer, serialNumber: signer.serialNumber }),
    digestAlgorithm: digestAlg,
    signedAttrs,
    signatureAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.rsaEncryption, algorithmParams: new asn1js.Null() }),
    signature: new asn1js.OctetString({ valueHex: crypto.sign(hash, toSign, opts.signerKey) }),
  });
  const sd = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [digestAlg],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data, eContent: new asn1js.OctetString({ valueHex: content }) }),
    certificates: [signer],
    signerInfos: [si],
  });
  return Buffer.from(new pkijs.ContentInfo({ contentType: OID.signedData, content: sd.toSchema(true) }).toSchema().toBER());
}

/** A degenerate (certificates-only) SignedData: how SCEP carries issued certificates (RFC 8894 §3.4). */
export function certificatesOnly(certificatePems: readonly (string | Uint8Array)[]): Buffer {
  const sd = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data }),
    certificates: certificatePems.map((c) => new pkijs.Certificate({ schema: parseBer(certificateDer(c), 'A certificate') })),
    signerInfos: [],
  });
  return Buffer.from(new pkijs.ContentInfo({ contentType: OID.signedData, content: sd.toSchema(true) }).toSchema().toBER());
}
