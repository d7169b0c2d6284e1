import * as x509 from '@peculiar/x509';
import { PkiError } from './errors.js';

/** Distinguished names: the attributes Apple, SCEP and our own certificates use, by short name. */

const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'street',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber',
  '2.5.4.4': 'SN',
  '2.5.4.42': 'GN',
  '2.5.4.12': 'title',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC',
};
const OIDS: Record<string, string> = Object.fromEntries(Object.entries(SHORT_NAMES).map(([oid, name]) => [name.toLowerCase(), oid]));
// Aliases @peculiar/x509 uses when it prints names.
Object.assign(OIDS, { e: '1.2.840.113549.1.9.1', email: '1.2.840.113549.1.9.1', g: '2.5.4.42', i: '2.5.4.43', t: '2.5.4.12' });

/** RFC 5280: country and serialNumber are PrintableString, emailAddress and DC IA5String, the rest UTF8String. */
const PRINTABLE = new Set(['2.5.4.6', '2.5.4.5']);
const IA5 = new Set(['1.2.840.113549.1.9.1', '0.9.2342.19200300.100.1.25']);

export interface NameAttribute {
  oid: string;
  /** Short name (CN, UID, emailAddress…) when known. */
  name: string | undefined;
  value: string;
}

export interface DistinguishedName {
  /** In encoded order. */
  attributes: NameAttribute[];
  /** `UID=…, CN=…, C=US`, in encoded order. */
  text: string;
}

/** Attributes in order: [['C','US'], ['CN','x']] or {C:'US', CN:'x'}; types are short names or OIDs. */
export type NameInput = readonly (readonly [string, string])[] | Readonly<Record<string, string>>;

export function oidOf(type: string): string {
  if (/^\d+(\.\d+)+$/.test(type)) return type;
  const oid = OIDS[type.toLowerCase()];
  if (!oid) throw new PkiError('unsupported', `Unknown name attribute type '${type}'.`);
  return oid;
}

export function buildName(input: NameInput): x509.Name {
  const pairs = Array.isArray(input) ? (input as readonly (readonly [string, string])[]) : Object.entries(input as Record<string, string>);
  const json = pairs.map(([type, value]) => {
    const oid = oidOf(type);
    if (typeof value !== 'string' || value.length === 0) throw new PkiError('malformed', `Name attribute ${type} needs a value.`);
    if (PRINTABLE.has(oid) && !/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value)) throw new PkiError('malformed', `${type} must be printable ASCII.`);
    // eslint-disable-next-line no-control-regex
    if (IA5.has(oid) && !/^[\x00-\x7f]*$/.test(value)) throw new PkiError('malformed', `${type} must be ASCII.`);
    const typed = PRINTABLE.has(oid) ? { printableString: value } : IA5.has(oid) ? { ia5String: value } : { utf8String: value };
    return { [oid]: [typed] };
  });
  return new x509.Name(json as unknown as x509.JsonName);
}

const escapeValue = (v: string) => v.replace(/([,+"\\<>;=])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ');

export function parseName(name: x509.Name | Uint8Array): DistinguishedName {
  const n = name instanceof x509.Name ? name : new x509.Name(name);
  const attributes: NameAttribute[] = [];
  for (const rdn of n.toJSON()) {
    for (const [type, values] of Object.entries(rdn)) {
      // toJSON names the attributes it knows (CN, E…) and leaves others as OIDs.
      const oid = /^\d+(\.\d+)+$/.test(type) ? type : (OIDS[type.toLowerCase()] ?? type);
      for (const value of values) attributes.push({ oid, name: SHORT_NAMES[oid], value });
    }
  }
  return { attributes, text: attributes.map((a) => `${a.name ?? a.oid}=${escapeValue(a.value)}`).join(', ') };
}

/** The first value of an attribute, by short name or OID. */
export function nameField(name: DistinguishedName, type: string): string | undefined {
  const oid = oidOf(type);
  return name.attributes.find((a) => a.oid === oid)?.value;
}
