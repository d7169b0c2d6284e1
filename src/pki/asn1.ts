import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { PkiError } from './errors.js';

/** BER/DER decoding shared by the CMS code; every failure is a 'malformed' PkiError. */

export function parseBer(der: Uint8Array, what: string): asn1js.AsnType {
  const bytes = new Uint8Array(der);
  const parsed = asn1js.fromBER(bytes);
  if (parsed.offset === -1 || parsed.result.error) throw new PkiError('malformed', `${what} isn't valid DER/BER.`);
  // Trailing zero bytes happen (padded transports); anything else means we read the wrong thing.
  if (bytes.subarray(parsed.offset).some((b) => b !== 0)) throw new PkiError('malformed', `${what} has data after its end.`);
  return parsed.result;
}

/** Where one DER element lies in a buffer: its first tag byte, and its value's start and end. */
export interface DerElement {
  tag: number;
  start: number;
  valueStart: number;
  end: number;
}

/**
 * The element at `at`, read from its header only (nothing inside is decoded), when it is plain DER
 * within `limit`: a one-byte tag and a definite length. Undefined otherwise (BER's indefinite
 * lengths, high tag numbers, lengths past the limit); callers then decode the whole thing with asn1js.
 */
export function derElementAt(bytes: Uint8Array, at: number, limit = bytes.length): DerElement | undefined {
  if (at + 2 > limit) return undefined;
  const tag = bytes[at]!;
  if ((tag & 0x1f) === 0x1f) return undefined;
  let length = bytes[at + 1]!;
  let valueStart = at + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4 || valueStart + octets > limit) return undefined;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + bytes[valueStart + i]!;
    valueStart += octets;
  }
  const end = valueStart + length;
  return end <= limit ? { tag, start: at, valueStart, end } : undefined;
}

/** The elements inside a constructed one, when they are plain DER and fill it exactly. */
export function derChildren(bytes: Uint8Array, parent: DerElement): DerElement[] | undefined {
  const out: DerElement[] = [];
  for (let at = parent.valueStart; at < parent.end; ) {
    const child = derElementAt(bytes, at, parent.end);
    if (!child) return undefined;
    out.push(child);
    at = child.end;
  }
  return out;
}

/** One element decoded by asn1js, which must read exactly its bytes. */
export function decodeElement(bytes: Uint8Array, element: DerElement, what: string): asn1js.AsnType {
  const slice = bytes.slice(element.start, element.end);
  const parsed = asn1js.fromBER(slice);
  if (parsed.offset !== slice.length || parsed.result.error) throw new PkiError('malformed', `${what} isn't valid DER/BER.`);
  return parsed.result;
}

export function parseContentInfo(der: Uint8Array, what: string): pkijs.ContentInfo {
  const asn = parseBer(der, what);
  try {
    return new pkijs.ContentInfo({ schema: asn });
  } catch (err) {
    throw new PkiError('malformed', `${what} isn't a CMS ContentInfo.`, { cause: err });
  }
}

/** The bytes of an OCTET STRING, joining the pieces of a constructed (BER streamed) one. */
export function octetBytes(block: asn1js.BaseBlock): Buffer {
  if (block.idBlock.isConstructed) {
    const parts = (block.valueBlock as unknown as { value: asn1js.BaseBlock[] }).value ?? [];
    return Buffer.concat(parts.map((p) => octetBytes(p)));
  }
  return Buffer.from((block.valueBlock as unknown as { valueHexView: Uint8Array }).valueHexView ?? new Uint8Array());
}

export const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex').toUpperCase();

/** An INTEGER's magnitude as upper-case hex, sign padding removed. */
export function integerHex(i: asn1js.Integer): string {
  let h = hexOf(i.valueBlock.valueHexView);
  while (h.length > 2 && h.startsWith('00')) h = h.slice(2);
  return h;
}

export const CONTENT_TYPE_NAMES: Record<string, string> = {
  '1.2.840.113549.1.7.1': 'data',
  '1.2.840.113549.1.7.2': 'SignedData',
  '1.2.840.113549.1.7.3': 'EnvelopedData',
  '1.2.840.113549.1.7.6': 'EncryptedData',
  '1.2.840.113549.1.9.16.1.2': 'AuthenticatedData',
};
