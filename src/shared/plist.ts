import { XMLParser, XMLValidator } from 'fast-xml-parser';
import plist from 'plist';

/**
 * Property lists from devices, parsed defensively: a size limit, XML only, no document type
 * declaration other than Apple's standard one (so no entity can be declared, let alone expanded),
 * a nesting limit, and a converter that walks the document without recursion and reads each node
 * once, so the work is linear in the input.
 */

export class PlistError extends Error {}

const APPLE_DOCTYPE = /<!DOCTYPE\s+plist\s+PUBLIC\s+"-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN"\s+"http:\/\/www\.apple\.com\/DTDs\/PropertyList-1\.0\.dtd"\s*>/;

/** Elements nested inside `<plist>`, the innermost value or key included. Real device messages stay under 15. */
export const MAX_PLIST_DEPTH = 100;

export type PlistValue = string | number | boolean | Date | Buffer | PlistValue[] | { [key: string]: PlistValue };

// Entities are left as written (decodeText reads the five XML ones and character references).
const xmlParser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: true,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: '#cdata',
  commentPropName: false,
  maxNestedTags: MAX_PLIST_DEPTH,
});

/** One node of fast-xml-parser's ordered output: `{ tag: children }`, `{ '#text': s }` or `{ '#cdata': [{ '#text': s }] }`. */
type XmlNode = Record<string, unknown>;
type XmlPart = { element: string; children: XmlNode[] } | { text: string } | { cdata: string };

function partOf(node: XmlNode): XmlPart {
  const name = Object.keys(node).find((k) => k !== ':@');
  if (name === '#text') return { text: String(node[name]) };
  if (name === '#cdata') {
    const inner = node[name];
    return { cdata: Array.isArray(inner) ? inner.map((n: XmlNode) => String(n['#text'] ?? '')).join('') : '' };
  }
  if (name === undefined) return { text: '' };
  const children = node[name];
  return { element: name, children: Array.isArray(children) ? (children as XmlNode[]) : [] };
}

const REFERENCE = /&(?:#x([0-9A-Fa-f]{1,6})|#([0-9]{1,7})|(lt|gt|amp|quot|apos));/g;
const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Character data with the XML references resolved; any other `&` is refused (no entity is ever looked up). */
function decodeText(raw: string): string {
  if (!raw.includes('&')) return raw;
  if (raw.replace(REFERENCE, '').includes('&')) throw new PlistError('malformed property list: unknown entity reference or bare "&"');
  return raw.replace(REFERENCE, (_m, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
    if (name) return NAMED[name]!;
    const cp = hex ? parseInt(hex, 16) : Number(dec);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new PlistError('malformed property list: invalid character reference');
    return String.fromCodePoint(cp);
  });
}

/** The text of a leaf element (`<string>`, `<integer>`…): character data and CDATA, no child elements. */
function leafText(name: string, children: XmlNode[]): string {
  let out = '';
  for (const child of children) {
    const p = partOf(child);
    if ('element' in p) throw new PlistError(`malformed property list: <${name}> can't contain <${p.element}>`);
    out += 'text' in p ? decodeText(p.text) : p.cdata;
  }
  return out;
}

const INTEGER = /^[+-]?[0-9]+$/;
const REAL = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function leafValue(name: string, children: XmlNode[]): PlistValue {
  const text = leafText(name, children);
  const t = text.trim();
  switch (name) {
    case 'string':
      return text;
    case 'integer':
      if (!INTEGER.test(t)) throw new PlistError(`malformed property list: "${t.slice(0, 32)}" is not an integer`);
      return Number(t);
    case 'real': {
      const special = { nan: NaN, inf: Infinity, '+inf': Infinity, '-inf': -Infinity }[t.toLowerCase()];
      if (special !== undefined) return special;
      if (!REAL.test(t)) throw new PlistError(`malformed property list: "${t.slice(0, 32)}" is not a real number`);
      return Number(t);
    }
    case 'date': {
      const d = new Date(t);
      if (t === '' || Number.isNaN(d.getTime())) throw new PlistError(`malformed property list: "${t.slice(0, 32)}" is not a date`);
      return d;
    }
    case 'data': {
      const b64 = t.replace(/\s+/g, '');
      if (!BASE64.test(b64)) throw new PlistError('malformed property list: <data> is not base64');
      return Buffer.from(b64, 'base64');
    }
    case 'true':
    case 'false':
      if (t !== '') throw new PlistError(`malformed property list: <${name}> must be empty`);
      return name === 'true';
    default:
      throw new PlistError(`malformed property list: unknown element <${name.slice(0, 32)}>`);
  }
}

/** Element children of a container; whitespace between them is ignored, other text is refused. */
function elementsOf(name: string, children: XmlNode[]): { element: string; children: XmlNode[] }[] {
  const out: { element: string; children: XmlNode[] }[] = [];
  for (const child of children) {
    const p = partOf(child);
    if ('element' in p) out.push(p);
    else if ('cdata' in p || p.text.trim() !== '') throw new PlistError(`malformed property list: text directly inside <${name}>`);
  }
  return out;
}

type Frame =
  | { kind: 'array'; out: PlistValue[]; items: { element: string; children: XmlNode[] }[]; next: number }
  | { kind: 'dict'; out: Record<string, PlistValue>; items: { element: string; children: XmlNode[] }[]; next: number; key: string | undefined };

/** The value of the `<plist>` element, built with an explicit stack. */
function convert(root: { element: string; children: XmlNode[] }): PlistValue {
  const top = elementsOf('plist', root.children);
  if (top.length !== 1) throw new PlistError('malformed property list: <plist> must hold exactly one value');
  let result: PlistValue | undefined;
  const stack: Frame[] = [];
  const place = (value: PlistValue) => {
    const parent = stack[stack.length - 1];
    if (!parent) result = value;
    else if (parent.kind === 'array') parent.out.push(value);
    else {
      parent.out[parent.key!] = value;
      parent.key = undefined;
    }
  };
  const open = (el: { element: string; children: XmlNode[] }) => {
    if (el.element === 'array') {
      const out: PlistValue[] = [];
      place(out);
      stack.push({ kind: 'array', out, items: elementsOf('array', el.children), next: 0 });
    } else if (el.element === 'dict') {
      const out: Record<string, PlistValue> = {};
      place(out);
      stack.push({ kind: 'dict', out, items: elementsOf('dict', el.children), next: 0, key: undefined });
    } else if (el.element === 'key') {
      throw new PlistError('malformed property list: <key> outside a dictionary');
    } else {
      place(leafValue(el.element, el.children));
    }
  };
  open(top[0]!);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const item = frame.items[frame.next++];
    if (!item) {
      if (frame.kind === 'dict' && frame.key !== undefined) throw new PlistError(`malformed property list: key "${frame.key.slice(0, 64)}" has no value`);
      stack.pop();
      continue;
    }
    if (frame.kind === 'dict' && frame.key === undefined) {
      if (item.element !== 'key') throw new PlistError(`malformed property list: <${item.element.slice(0, 32)}> where a <key> was expected`);
      const key = leafText('key', item.children);
      // Assigning to __proto__ would replace the object's prototype instead of adding a key.
      if (key === '__proto__') throw new PlistError('malformed property list: "__proto__" is not an acceptable key');
      frame.key = key;
      continue;
    }
    open(item);
  }
  return result!;
}

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
  let nodes: XmlNode[];
  try {
    const valid = XMLValidator.validate(text);
    if (valid !== true) throw new PlistError(`malformed property list: ${valid.err.msg}`);
    nodes = xmlParser.parse(text) as XmlNode[];
  } catch (err) {
    if (err instanceof PlistError) throw err;
    if (err instanceof Error && /Maximum nested tags/.test(err.message)) throw new PlistError(`the property list is nested more than ${MAX_PLIST_DEPTH} elements deep`);
    throw new PlistError(`malformed property list: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  const roots = elementsOf('the document', nodes);
  if (roots.length !== 1 || roots[0]!.element !== 'plist') throw new PlistError('malformed property list: the document must be one <plist> element');
  return convert(roots[0]!);
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
