import { badRequest, GraphError } from '../errors.js';
import type { FilterNode, Literal } from './filter-ast.js';
import { dateTimeFromString, FilterSyntaxError, parseFilter } from './filter-parser.js';
import { allowedOperators, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type EntityModel, type PropertyDef } from './model.js';

export interface OrderBy {
  property: string;
  direction: 'asc' | 'desc';
}

/** Validated query options, with every literal already normalised to the property's type. */
export interface ODataQuery {
  filter: FilterNode | undefined;
  orderBy: OrderBy[];
  select: string[] | undefined;
  count: boolean;
  pageSize: number;
  offset: number;
  /** True when $top was given: Graph then keeps it as the page size in @odata.nextLink. */
  topGiven: boolean;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

const SUPPORTED = new Set(['$top', '$skip', '$skiptoken', '$filter', '$select', '$orderby', '$count']);
const KNOWN_UNSUPPORTED = new Set(['$expand', '$search', '$format', '$apply', '$compute', '$levels', '$deltatoken', '$index', '$schemaversion', '$id']);

type RawQuery = Record<string, unknown>;

function single(raw: RawQuery, name: string): string | undefined {
  const v = raw[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest(`Query option '${name}' was specified more than once.`, name);
  return v;
}

function nonNegativeInt(name: string, v: string, max?: number): number {
  if (!/^\d{1,9}$/.test(v.trim())) throw badRequest(`Invalid value '${v}' for query option '${name}': expected a non-negative integer.`, name);
  const n = Number(v.trim());
  if (max !== undefined && n > max) throw badRequest(`Invalid page size specified: '${name}' must be between 0 and ${max}.`, name);
  return n;
}

export function encodeSkipToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset }), 'utf8').toString('base64url');
}

export function decodeSkipToken(token: string): number {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    const o = (parsed as { o?: unknown }).o;
    // Safe integers only: 1e300 would reach SQL OFFSET and fail there as a 500.
    if (typeof o === 'number' && Number.isSafeInteger(o) && o >= 0) return o;
  } catch {
    /* fall through */
  }
  throw badRequest(`Invalid value for query option '$skiptoken': the token is not one this service issued.`, '$skiptoken');
}

function propertyOf(model: EntityModel, name: string, option: string): PropertyDef {
  const def = model.properties[name];
  if (!def) throw badRequest(`Could not find a property named '${name}' on type '${model.typeName}' (in ${option}).`, name);
  return def;
}

/** Checks and normalises one literal against its property's type. */
function coerceLiteral(model: EntityModel, property: string, def: PropertyDef, lit: Literal): Literal {
  const fail = (expected: string) =>
    badRequest(`Invalid filter clause: property '${property}' is of type ${expected} and can't be compared with ${describe(lit)}.`, property);
  if (lit.type === 'null') return lit;
  switch (def.type) {
    case 'string':
      if (lit.type === 'string') return lit;
      if (lit.type === 'guid' || lit.type === 'datetime') return { type: 'string', value: lit.value };
      throw fail('String');
    case 'guid':
      if (lit.type === 'guid') return lit;
      if (lit.type === 'string' && /^[0-9a-f-]{36}$/i.test(lit.value)) return { type: 'guid', value: lit.value.toLowerCase() };
      if (lit.type === 'string') return lit; // ids that aren't GUIDs (e.g. "0" scope tags) compare as text
      throw fail('Guid');
    case 'int':
      // Int32 like Graph, and like the integer columns: PostgreSQL refuses a larger parameter with an error.
      if (lit.type === 'number' && Number.isInteger(lit.value) && lit.value >= INT32_MIN && lit.value <= INT32_MAX) return lit;
      if (lit.type === 'number' && Number.isInteger(lit.value)) {
        throw badRequest(`Invalid filter clause: ${lit.value} is out of range for property '${property}' of type Int32.`, property);
      }
      throw fail('Int32');
    case 'boolean':
      if (lit.type === 'boolean') return lit;
      throw fail('Boolean');
    case 'datetime': {
      if (lit.type === 'datetime') return lit;
      if (lit.type === 'string') {
        const iso = dateTimeFromString(lit.value.trim());
        if (iso !== undefined) return { type: 'datetime', value: iso };
      }
      throw fail('DateTimeOffset');
    }
    case 'enum': {
      if (lit.type !== 'string') throw fail('an enumeration');
      const members = def.enumValues ?? [];
      const match = members.find((m) => m.toLowerCase() === lit.value.toLowerCase());
      if (!match) {
        throw badRequest(
          `Invalid filter clause: '${lit.value}' is not a valid value of '${property}' (expected one of: ${members.join(', ')}).`,
          property,
        );
      }
      return { type: 'string', value: match };
    }
    default:
      throw badRequest(`Invalid filter clause: property '${property}' of type '${model.typeName}' can't be filtered.`, property);
  }
}

function describe(lit: Literal): string {
  return lit.type === 'null' ? 'null' : `a ${lit.type} literal`;
}

/** Validates a tree against the model and returns it with literals normalised. */
export function validateFilter(model: EntityModel, node: FilterNode): FilterNode {
  switch (node.kind) {
    case 'and':
    case 'or':
      return { kind: node.kind, left: validateFilter(model, node.left), right: validateFilter(model, node.right) };
    case 'not':
      return { kind: 'not', expr: validateFilter(model, node.expr) };
    case 'compare':
    case 'function': {
      const def = propertyOf(model, node.property, '$filter');
      const op = node.kind === 'compare' ? node.op : node.name;
      if (!def.column || !allowedOperators(def).includes(op)) {
        throw badRequest(`Invalid filter clause: the operator '${op}' is not supported on property '${node.property}'.`, node.property);
      }
      const value = coerceLiteral(model, node.property, def, node.value);
      if (value.type === 'null' && (node.kind === 'function' || (node.op !== 'eq' && node.op !== 'ne'))) {
        throw badRequest(`Invalid filter clause: null can only be compared with 'eq' or 'ne' (property '${node.property}').`, node.property);
      }
      return { ...node, value } as FilterNode;
    }
  }
}

export function parseQueryOptions(model: EntityModel, raw: RawQuery): ODataQuery {
  for (const key of Object.keys(raw)) {
    if (!key.startsWith('$')) continue; // Graph ignores custom (non-$) query parameters
    const lower = key.toLowerCase();
    if (KNOWN_UNSUPPORTED.has(lower)) throw badRequest(`Query option '${key}' is not supported on this resource.`, key);
    if (!SUPPORTED.has(key)) {
      if (SUPPORTED.has(lower)) throw badRequest(`Query option '${key}' must be written in lower case ('${lower}').`, key);
      throw badRequest(`Query option '${key}' is not supported.`, key);
    }
  }

  const maxPage = model.maxPageSize ?? MAX_PAGE_SIZE;
  const topRaw = single(raw, '$top');
  const skipRaw = single(raw, '$skip');
  const tokenRaw = single(raw, '$skiptoken');
  const filterRaw = single(raw, '$filter');
  const selectRaw = single(raw, '$select');
  const orderRaw = single(raw, '$orderby');
  const countRaw = single(raw, '$count');

  const top = topRaw === undefined ? undefined : nonNegativeInt('$top', topRaw, maxPage);
  let offset = skipRaw === undefined ? 0 : nonNegativeInt('$skip', skipRaw);
  if (tokenRaw !== undefined) {
    if (skipRaw !== undefined) throw badRequest(`'$skip' and '$skiptoken' can't be combined.`, '$skiptoken');
    offset = decodeSkipToken(tokenRaw);
  }

  let filter: FilterNode | undefined;
  if (filterRaw !== undefined) {
    try {
      filter = validateFilter(model, parseFilter(filterRaw));
    } catch (err) {
      if (err instanceof FilterSyntaxError) {
        throw badRequest(`Invalid filter clause in $filter: ${err.message} (at position ${err.position}).`, '$filter');
      }
      throw err;
    }
  }

  let select: string[] | undefined;
  if (selectRaw !== undefined && selectRaw.trim() !== '*') {
    select = selectRaw.split(',').map((s) => s.trim());
    if (select.some((s) => s === '')) throw badRequest(`Invalid $select: empty property name.`, '$select');
    for (const s of select) {
      if (propertyOf(model, s, '$select').filterOnly) throw badRequest(`Property '${s}' can't be used in $select.`, s);
    }
  }

  const orderBy: OrderBy[] = [];
  if (orderRaw !== undefined) {
    for (const part of orderRaw.split(',')) {
      const m = /^\s*([A-Za-z_][\w]*)(?:\s+(asc|desc))?\s*$/i.exec(part);
      if (!m) throw badRequest(`Invalid $orderby clause '${part.trim()}': expected 'property [asc|desc]'.`, '$orderby');
      const property = m[1]!;
      const def = propertyOf(model, property, '$orderby');
      if (!def.column || def.sortable === false || def.type === 'collection' || def.type === 'object') {
        throw badRequest(`Property '${property}' can't be used in $orderby.`, property);
      }
      orderBy.push({ property, direction: (m[2]?.toLowerCase() as 'asc' | 'desc' | undefined) ?? 'asc' });
    }
  }

  let count = false;
  if (countRaw !== undefined) {
    if (countRaw !== 'true' && countRaw !== 'false') throw badRequest(`Invalid value '${countRaw}' for '$count': expected true or false.`, '$count');
    count = countRaw === 'true';
  }

  return {
    filter,
    orderBy,
    select,
    count,
    pageSize: top ?? model.defaultPageSize ?? DEFAULT_PAGE_SIZE,
    offset,
    topGiven: top !== undefined,
  };
}

export { GraphError };
