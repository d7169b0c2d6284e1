import { PkiError } from './errors.js';

/** PEM ⇄ DER. PEM bodies are strict base64; encrypted PEM (Proc-Type headers) isn't supported. */

export interface PemBlock {
  label: string;
  der: Buffer;
}

const END = /^-----END ([A-Z0-9 #]{1,40})-----/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function derToPem(der: Uint8Array, label: string): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

export function isPem(text: string): boolean {
  return text.includes('-----BEGIN ');
}

/** Strict base64 (whitespace ignored); undefined when the text isn't base64. */
export function decodeBase64(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

/** Every PEM block in the text, in order. Linear: each block is found with indexOf, never backtracking. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const begin = /-----BEGIN ([A-Z0-9 #]{1,40})-----/g;
  for (let m = begin.exec(text); m; m = begin.exec(text)) {
    const label = m[1]!;
    const bodyStart = m.index + m[0].length;
    const endAt = text.indexOf('-----END ', bodyStart);
    if (endAt < 0) throw new PkiError('malformed', `PEM block "${label}" has no END line.`);
    const endLabel = END.exec(text.slice(endAt, endAt + 60))?.[1];
    if (endLabel !== label) throw new PkiError('malformed', `PEM block "${label}" ends with "${endLabel ?? '?'}".`);
    const body = text.slice(bodyStart, endAt);
    if (body.includes(':')) throw new PkiError('unsupported', `PEM block "${label}" has headers (an encrypted key?); give it unencrypted.`);
    const der = decodeBase64(body);
    if (!der) throw new PkiError('malformed', `PEM block "${label}" isn't valid base64.`);
    out.push({ label, der });
    begin.lastIndex = endAt + 9 + label.length + 5;
  }
  return out;
}

/** The DER of the first PEM block with one of the labels. */
export function pemToDer(text: string, labels: string | readonly string[]): Buffer {
  const wanted = typeof labels === 'string' ? [labels] : labels;
  const block = pemBlocks(text).find((b) => wanted.includes(b.label));
  if (!block) throw new PkiError('malformed', `No PEM block labelled ${wanted.map((l) => `"${l}"`).join(' or ')} was found.`);
  return block.der;
}

/**
 * DER from whatever a user may hand over: DER bytes, PEM (first block with one of the labels), or
 * bare base64 of the DER. The result starts with a SEQUENCE tag; parsing it is the caller's job.
 */
export function toDer(input: string | Uint8Array, labels: readonly string[], what: string): Buffer {
  if (typeof input !== 'string') {
    const bytes = Buffer.from(input);
    if (bytes[0] === 0x30) return bytes;
    input = bytes.toString('latin1');
  }
  const der = isPem(input) ? pemToDer(input, labels) : decodeBase64(input);
  if (!der || der[0] !== 0x30) throw new PkiError('malformed', `The ${what} is neither PEM, DER nor base64 DER.`);
  return der;
}
