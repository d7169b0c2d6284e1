/**
 * Every failure of the PKI helpers is a PkiError with a code, so callers (Graph routes, device
 * endpoints) can map it to a clear answer; parsers never let a library's own exception escape.
 */

export type PkiErrorCode =
  /** The bytes aren't what they claim to be (not DER, not PEM, wrong structure). */
  | 'malformed'
  | 'tooLarge'
  /** Well formed, but uses an algorithm or form we don't implement. */
  | 'unsupported'
  /** EnvelopedData addressed to someone else (see NoMatchingRecipientError). */
  | 'noMatchingRecipient'
  /** Key transport or content decryption failed (wrong key or tampered data). */
  | 'decryptionFailed'
  | 'badSignature'
  /** Signature fine, but the signer doesn't chain to a trust anchor (or a certificate isn't valid now). */
  | 'untrusted'
  | 'keyMismatch';

export class PkiError extends Error {
  constructor(
    readonly code: PkiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PkiError';
  }
}

/** Who an EnvelopedData was encrypted to, as its RecipientInfo names it. */
export interface RecipientId {
  /** RFC 4514-style issuer name, when identified by issuerAndSerialNumber. */
  issuer?: string;
  /** Upper-case hex without leading zero bytes, as `openssl x509 -serial` prints it. */
  serialNumberHex?: string;
  subjectKeyIdentifierHex?: string;
}

/** The data was encrypted to other certificates than ours: say which, so callers can name a stale key. */
export class NoMatchingRecipientError extends PkiError {
  constructor(
    readonly recipients: RecipientId[],
    readonly ours: { issuer: string; serialNumberHex: string },
  ) {
    super(
      'noMatchingRecipient',
      `The data is encrypted to ${recipients.map(describeRecipient).join('; ') || 'no recipient'}, not to our certificate (${describeRecipient(ours)}).`,
    );
    this.name = 'NoMatchingRecipientError';
  }
}

export function describeRecipient(r: RecipientId): string {
  if (r.subjectKeyIdentifierHex) return `subject key identifier ${r.subjectKeyIdentifierHex}`;
  return `serial ${r.serialNumberHex ?? '?'} issued by "${r.issuer ?? '?'}"`;
}

/** Runs a parser, turning anything but a PkiError into a 'malformed' PkiError. */
export function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw asPkiError(what, err);
  }
}

export async function guardAsync<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asPkiError(what, err);
  }
}

function asPkiError(what: string, err: unknown): PkiError {
  if (err instanceof PkiError) return err;
  return new PkiError('malformed', `${what} is malformed.`, { cause: err });
}
