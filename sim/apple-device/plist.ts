import plist from 'plist';

/**
 * Property lists as a device reads them: XML only, a size limit, and no document type but Apple's
 * (so no entity can be declared or expanded).
 */

export type PlistValue = string | number | boolean | Date | Buffer | PlistValue[] | { [key: string]: PlistValue };
export type PlistDict = Record<string, PlistValue>;

const APPLE_DOCTYPE = /<!DOCTYPE\s+plist\s+PUBLIC\s+"-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN"\s+"http:\/\/www\.apple\.com\/DTDs\/PropertyList-1\.0\.dtd"\s*>/;

export class PlistFormatError extends Error {}

export function parsePlistDict(input: Buffer | string, maxBytes = 1024 * 1024): PlistDict {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes) throw new PlistFormatError(`the property list is larger than ${maxBytes} bytes`);
  const text = typeof input === 'string' ? input : input.toString('utf8');
  if (text.startsWith('bplist')) throw new PlistFormatError('binary property lists are not read');
  if (/<!ENTITY/i.test(text)) throw new PlistFormatError('the property list declares entities');
  const doctypes = text.match(/<!DOCTYPE/gi) ?? [];
  if (doctypes.length > 1 || (doctypes.length === 1 && !APPLE_DOCTYPE.test(text))) throw new PlistFormatError('the property list has a foreign document type');
  if (!/<plist[\s>]/.test(text)) throw new PlistFormatError('not an XML property list');
  let value: unknown;
  try {
    value = plist.parse(text);
  } catch (err) {
    throw new PlistFormatError(`malformed property list: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  if (!isDict(value)) throw new PlistFormatError('the property list is not a dictionary');
  return value;
}

export function isDict(v: unknown): v is PlistDict {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Date);
}

/** XML plist text; undefined values are left out (plist would write them as empty strings). */
export function buildPlist(value: PlistDict): string {
  return plist.build(stripUndefined(value) as Parameters<typeof plist.build>[0]);
}

function stripUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripUndefined);
  if (isDict(v)) return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, stripUndefined(x)]));
  return v;
}
