/**
 * Checks a body against a TypeBox schema and turns the first failure into a Graph 400 that names
 * the property and says what it must be (from the schema itself, so messages follow the limits).
 */
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { badRequest, invalidProperty, type GraphError } from '../../../graph/errors.js';

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
}

type Validator = { Check(v: unknown): boolean; Errors(v: unknown): Iterable<SchemaError> };

const compiled = new WeakMap<TSchema, Validator>();

function validator(schema: TSchema): Validator {
  let v = compiled.get(schema);
  if (!v) {
    v = Compile(schema) as unknown as Validator;
    compiled.set(schema, v);
  }
  return v;
}

type JsonSchema = {
  type?: string;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  pattern?: string;
};

const segments = (path: string) => (path === '' ? [] : path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')));

/** Graph-style property path: managementCertificates[0].thumbprint */
function propertyName(segs: string[]): string {
  return segs.reduce((out, s) => (/^\d+$/.test(s) ? `${out}[${s}]` : out ? `${out}.${s}` : s), '');
}

function subSchema(schema: JsonSchema, segs: string[]): JsonSchema | undefined {
  let cur: JsonSchema | undefined = schema;
  for (const s of segs) {
    if (!cur) return undefined;
    const nonNull: JsonSchema = cur.anyOf?.find((b) => b.type !== 'null') ?? cur;
    cur = /^\d+$/.test(s) && nonNull.items ? nonNull.items : nonNull.properties?.[s];
  }
  return cur;
}

/** What a value must be, in words, from its schema. */
export function describeSchema(s: JsonSchema): string {
  if (s.anyOf) {
    const nullable = s.anyOf.some((b) => b.type === 'null');
    const rest = s.anyOf.filter((b) => b.type !== 'null');
    const words = rest.map(describeSchema).join(' or ');
    return nullable ? `${words}, or null` : words;
  }
  if (s.enum) return `one of ${s.enum.map((v) => `'${String(v)}'`).join(', ')}`;
  switch (s.type) {
    case 'boolean':
      return 'true or false';
    case 'integer':
      return s.minimum !== undefined && s.maximum !== undefined ? `an integer from ${s.minimum} to ${s.maximum}` : 'an integer';
    case 'string': {
      if (s.pattern?.includes('[0-9a-fA-F]{8}-')) return 'a GUID';
      const min = s.minLength ?? 0;
      if (s.maxLength === undefined) return min > 0 ? 'a non-empty string' : 'a string';
      return min > 0 ? `a string of ${min} to ${s.maxLength} characters` : `a string of at most ${s.maxLength} characters`;
    }
    case 'array': {
      const max = s.maxItems !== undefined ? ` of at most ${s.maxItems} item${s.maxItems === 1 ? '' : 's'}` : '';
      return s.items ? `an array${max}, each ${describeSchema(s.items)}` : `an array${max}`;
    }
    case 'object':
      return 'an object';
    default:
      return 'valid';
  }
}

/** Throws a 400 GraphError unless `body` matches `schema`. `typeName` names the resource in messages. */
export function checkBody(schema: TSchema, body: unknown, typeName: string): asserts body is Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object.');
  const v = validator(schema);
  if (v.Check(body)) return;
  throw bodyError([...v.Errors(body)], schema as JsonSchema, typeName);
}

function bodyError(errors: SchemaError[], schema: JsonSchema, typeName: string): GraphError {
  // Prefer the error TypeBox reports for the property itself over its anyOf branch errors.
  const e = errors.find((x) => x.keyword !== 'anyOf') ?? errors[0];
  if (!e) return badRequest(`The request body is not a valid '#${typeName}'.`);
  const segs = segments(e.instancePath);
  if (e.keyword === 'required') {
    const missing = (e.params.requiredProperties as string[] | undefined)?.[0] ?? String(e.params.missingProperty ?? '');
    const prop = propertyName([...segs, missing]);
    return badRequest(`Property '${prop}' is required.`, prop);
  }
  if (e.keyword === 'additionalProperties' || e.keyword === 'boolean') {
    const extra = e.keyword === 'boolean' ? segs : [...segs, String((e.params.additionalProperties as string[] | undefined)?.[0] ?? '')];
    const prop = propertyName(extra);
    return badRequest(`Property '${prop}' is not a known property of '#${typeName}'.`, prop);
  }
  // Report the top-level property unless the problem is inside one of its items.
  const prop = propertyName(segs);
  if (!prop) return badRequest('The request body must be a JSON object.');
  const sub = subSchema(schema, segs);
  if (segs[0] === '@odata.type') return invalidProperty(prop, `must be '#${typeName}'.`);
  return invalidProperty(prop, `must be ${sub ? describeSchema(sub) : 'valid'}.`);
}
