import { createSelfSignedCertificate } from '../../pki/certificates.js';
import { NoMatchingRecipientError, PkiError, describeRecipient, type RecipientId } from '../../pki/errors.js';
import { decryptEnvelopedData, encryptEnvelopedData, type EncryptOptions } from '../../pki/enveloped.js';
import { generateRsaKeyPair } from '../../pki/keys.js';
import { decodeMimeBody, parseMimeEntity, readCmsInput } from '../../pki/smime.js';
import type { DepOAuthTokens } from './dep-api.js';

/**
 * The ADE (DEP) server token exchange (apple-protocol-and-anchors §3.3): we give Apple Business /
 * School Manager a certificate, it gives back a `.p7m` — S/MIME EnvelopedData to that certificate,
 * holding a MIME entity whose body is the OAuth JSON between BEGIN/END MESSAGE markers.
 */

export interface TokenEncryptionKeyPair {
  /** What the admin uploads to ABM/ASM (the Graph `getEncryptionPublicKey` value). */
  certificatePem: string;
  /** PKCS#8 PEM; store it with core.secrets. */
  privateKeyPem: string;
  serialNumberHex: string;
  notAfter: Date;
}

/**
 * A self-signed RSA-2048 certificate for ABM/ASM to encrypt the token to. ABM wants a PEM X.509
 * certificate, nothing more. nanodep uses CN=depserver and 1 day; we name the token in the subject
 * (so an admin can tell files apart) and keep it a year, because ABM reuses the uploaded key when
 * the token is renewed each year, and the key is only ever used to decrypt tokens.
 */
export async function generateTokenEncryptionKeyPair(opts: { tokenId?: string; now?: Date; validityDays?: number } = {}): Promise<TokenEncryptionKeyPair> {
  const { privateKeyPem } = await generateRsaKeyPair(2048);
  const cert = await createSelfSignedCertificate({
    privateKeyPem,
    subject: { CN: opts.tokenId ? `OpenEnroll ADE ${opts.tokenId}` : 'OpenEnroll ADE' },
    validityDays: opts.validityDays ?? 365,
    notBefore: opts.now ?? new Date(),
    keyUsages: ['keyEncipherment', 'digitalSignature'],
  });
  return { certificatePem: cert.pem, privateKeyPem, serialNumberHex: cert.serialNumberHex, notAfter: cert.notAfter };
}

export type ServerTokenErrorReason =
  /** Not an S/MIME / CMS EnvelopedData file at all (wrong file, damaged, too large). */
  | 'notAToken'
  /** A token, but encrypted to another certificate: an older or another server's public key. */
  | 'encryptedForAnotherKey'
  /** access_token_expiry has passed. */
  | 'expired'
  /** Decrypted, but the content isn't the token JSON Apple sends. */
  | 'malformedContent';

export class ServerTokenError extends Error {
  constructor(
    readonly reason: ServerTokenErrorReason,
    message: string,
    readonly details: { recipients?: RecipientId[]; expiredAt?: Date; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = 'ServerTokenError';
  }
}

const FIELDS = ['consumer_key', 'consumer_secret', 'access_token', 'access_secret', 'access_token_expiry'] as const;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const BEGIN = '-----BEGIN MESSAGE-----';
const END = '-----END MESSAGE-----';

/** The JSON text inside decrypted token content: a MIME entity with a BEGIN/END MESSAGE body, or bare JSON. */
export function unwrapTokenJson(content: Buffer): string {
  let body = content;
  const entity = parseMimeEntity(content);
  if (entity) {
    try {
      body = decodeMimeBody(entity);
    } catch (err) {
      throw new ServerTokenError('malformedContent', 'The server token content has an unreadable MIME body.', { cause: err });
    }
  }
  let text = body.toString('utf8').replace(/^\uFEFF/, '');
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin >= 0 || end >= 0) {
    if (begin < 0 || end < begin) throw new ServerTokenError('malformedContent', 'The server token content has unbalanced BEGIN/END MESSAGE markers.');
    text = text.slice(begin + BEGIN.length, end);
  }
  return text.trim();
}

/** Checks the five OAuth fields (non-empty strings, RFC 3339 expiry in the future). Extra fields are ignored. */
export function parseDepOAuthTokens(json: string, now: Date): DepOAuthTokens {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new ServerTokenError('malformedContent', 'The server token content is not JSON.', { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ServerTokenError('malformedContent', 'The server token content is not a JSON object.');
  const obj = value as Record<string, unknown>;
  for (const f of FIELDS) {
    const v = obj[f];
    if (typeof v !== 'string' || v.trim() === '') throw new ServerTokenError('malformedContent', `The server token has no ${f} (a non-empty string is required).`);
  }
  const expiry = obj.access_token_expiry as string;
  const at = new Date(expiry.replace(' ', 'T'));
  if (!RFC3339.test(expiry) || Number.isNaN(at.getTime())) throw new ServerTokenError('malformedContent', `The server token's access_token_expiry '${expiry.slice(0, 64)}' is not an RFC 3339 time.`);
  if (at.getTime() <= now.getTime()) {
    throw new ServerTokenError('expired', `The server token expired on ${at.toISOString()}; download a new token from Apple Business Manager or Apple School Manager.`, { expiredAt: at });
  }
  return Object.fromEntries(FIELDS.map((f) => [f, obj[f] as string])) as unknown as DepOAuthTokens;
}

/**
 * Decrypts an ABM/ASM server token (.p7m as S/MIME text, PEM or DER) with our token key and returns
 * the OAuth credentials. Throws ServerTokenError naming why a file is refused.
 */
export function decryptServerToken(p7m: string | Uint8Array, keys: { certPem: string; keyPem: string }, now: Date = new Date()): DepOAuthTokens {
  let der: Buffer;
  try {
    const input = readCmsInput(p7m, { what: 'The server token' });
    if (input.smimeType && input.smimeType !== 'enveloped-data') throw new PkiError('malformed', `The file is S/MIME ${input.smimeType}, not an encrypted server token.`);
    der = input.der;
  } catch (err) {
    throw new ServerTokenError('notAToken', `This is not an Apple server token (.p7m): ${err instanceof Error ? err.message : 'unreadable'}`, { cause: err });
  }
  let content: Buffer;
  try {
    content = decryptEnvelopedData(der, { certificatePem: keys.certPem, privateKeyPem: keys.keyPem }).content;
  } catch (err) {
    if (err instanceof NoMatchingRecipientError) {
      throw new ServerTokenError(
        'encryptedForAnotherKey',
        `The server token is encrypted to another public key (${err.recipients.map(describeRecipient).join('; ')}), not to this token's current key (serial ${err.ours.serialNumberHex}). ` +
          'Download the public key again, upload it to the MDM server in Apple Business Manager, then download a new token.',
        { recipients: err.recipients, cause: err },
      );
    }
    if (err instanceof PkiError && err.code === 'keyMismatch') throw err; // our own stored pair is broken: a server fault
    if (err instanceof PkiError && err.code === 'decryptionFailed') {
      throw new ServerTokenError('malformedContent', 'The server token could not be decrypted (the file is damaged).', { cause: err });
    }
    throw new ServerTokenError('notAToken', `This is not an Apple server token (.p7m): ${err instanceof Error ? err.message : 'unreadable'}`, { cause: err });
  }
  return parseDepOAuthTokens(unwrapTokenJson(content), now);
}

/**
 * A `.p7m` as ABM produces it (S/MIME headers, base64 EnvelopedData, inner MIME entity with the JSON
 * between BEGIN/END MESSAGE): for tests and the DEP simulator.
 */
export function encryptServerToken(tokens: DepOAuthTokens, certificatePem: string, opts: EncryptOptions = {}): string {
  const inner = `Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${BEGIN}\r\n${JSON.stringify(tokens)}\r\n${END}\r\n`;
  const der = encryptEnvelopedData(Buffer.from(inner, 'utf8'), [certificatePem], opts);
  const body = der.toString('base64').replace(/(.{76})/g, '$1\r\n');
  return [
    'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="smime.p7m"',
    'Content-Description: S/MIME Encrypted Message',
    '',
    body,
    '',
  ].join('\r\n');
}
