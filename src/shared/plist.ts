import plist from 'plist';

/**
 * Property lists from devices, parsed defensively: a size limit, XML only, and no document type
 * declaration other than Apple's standard one (so no entity can be declared, let alone expanded).
 */

export class PlistError extends Error {}

const APPLE_DOCTYPE = /<!DOCTYPE\s+plist\s+PUBLIC\s+"-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN"\s+"http:\/\/www\.apple\.com\/DTDs\/PropertyList-1\.0\.dtd"\s*>/;

export type PlistValue = string | number | boolean | Date | Buffer | PlistValue[] | { [key: string]: PlistValue };

export function parsePlist(input: Buffer | string, opts: { maxBytes?: number } = {}): PlistValue {
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes) throw new PlistError(`the property list is larger than ${maxBytes} bytes`);
  if (Buffer.isBuffer(input) && input.subarray(0, 6).toString('latin1') === 'bplist') throw new PlistError('binary property lists are not accepted');
  const text = typeof input === 'string' ? input : input.toString('utf8');
  if (/<!ENTITY/i.test(text)) throw new PlistError('entity declarations are not allowed');
  const doctypes = text.match(/<!DOCTYPE/gi) ?? [];
  if (doctypes.length > 1 || (doctypes.length === 1 && !APPLE_DOCTYPE.test(text))) {
    throw new PlistError('only the standard Apple plist document type is allowed');
  }
  if (!/<plist[\s>]/.test(text)) throw new PlistError('not an XML property list');
  let value: unknown;
  try {
    value = plist.parse(text);
  } catch (err) {
    throw new PlistError(`malformed property list: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  return value as PlistValue;
}

/** A dictionary at the top level, or a PlistError. */
export function parsePlistDict(input: Buffer | string, opts: { maxBytes?: number } = {}): Record<string, PlistValue> {
  const v = parsePlist(input, opts);
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v) || v instanceof Date) {
    throw new PlistError('the property list is not a dictionary');
  }
  return v as Record<string, PlistValue>;
}

export function buildPlist(value: unknown): string {
  return plist.build(value as Parameters<typeof plist.build>[0]);
}
