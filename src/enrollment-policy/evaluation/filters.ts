import type { RestrictionPlatform } from './types.js';
import { compareVersions, parseDeviceVersion } from './versions.js';
import { matchText } from '../../shared/text-match.js';

/**
 * Intune assignment filter rules: `(device.manufacturer -eq "Samsung") and (device.osVersion -startsWith "17")`.
 * Pure: parsing, printing, validation per enrollment-restriction platform, and evaluation.
 *
 * Syntax (Intune's "advanced rule editing"):
 * - a comparison is `device.<property> <operator> <value>`, optionally in parentheses, nested freely;
 * - connectives `and` / `or`, also written `-and` / `-or`; `and` binds tighter than `or` (Boolean algebra, as
 *   Intune evaluates `a or b and c`); there is no `not`;
 * - operators with or without the dash: -eq -ne -startsWith -notStartsWith -endsWith -notEndsWith -contains
 *   -notContains -in -notIn, and -gt -ge -lt -le for device.operatingSystemVersion;
 * - values: strings in double quotes (a quote inside is `" or "", a backtick ``), arrays `["a", "b"]` for -in /
 *   -notIn, `null` / `$null` with -eq / -ne, bare versions (10.0.22000.1000) for operatingSystemVersion;
 * - properties, operators and values ignore case.
 *
 * Not a reuse of directory/membership-rules.ts: that Entra grammar needs a dash on every operator, refuses mixing
 * -and with -or, has -not, and has no arrays, null or version literals; see evaluation/decisions.md.
 */

export const FILTER_RULE_LIMITS = { maxLength: 3072, maxDepth: 32 } as const;

export const FILTER_PROPERTIES = [
  'deviceName',
  'manufacturer',
  'model',
  'deviceCategory',
  'osVersion',
  'operatingSystemVersion',
  'operatingSystemSKU',
  'enrollmentProfileName',
  'deviceOwnership',
  'deviceTrustType',
  'isRooted',
  'cpuArchitecture',
] as const;
export type FilterProperty = (typeof FILTER_PROPERTIES)[number];

export const TEXT_OPERATORS = ['eq', 'ne', 'startsWith', 'notStartsWith', 'endsWith', 'notEndsWith', 'contains', 'notContains'] as const;
export const LIST_OPERATORS = ['in', 'notIn'] as const;
export const VERSION_OPERATORS = ['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const;
export type TextOperator = (typeof TEXT_OPERATORS)[number];
export type ListOperator = (typeof LIST_OPERATORS)[number];
export type VersionOperator = (typeof VERSION_OPERATORS)[number];
export type FilterOperator = TextOperator | ListOperator | VersionOperator;

type PropertyKind = 'text' | 'choice' | 'flag' | 'version';
const PROPERTY_KIND: Record<FilterProperty, PropertyKind> = {
  deviceName: 'text',
  manufacturer: 'text',
  model: 'text',
  deviceCategory: 'text',
  osVersion: 'text',
  operatingSystemSKU: 'text',
  enrollmentProfileName: 'text',
  deviceTrustType: 'choice',
  cpuArchitecture: 'choice',
  deviceOwnership: 'flag',
  isRooted: 'flag',
  operatingSystemVersion: 'version',
};
const OPERATORS_BY_KIND: Record<PropertyKind, readonly FilterOperator[]> = {
  text: [...TEXT_OPERATORS, ...LIST_OPERATORS],
  choice: ['eq', 'ne', 'in', 'notIn'],
  flag: ['eq', 'ne'],
  version: VERSION_OPERATORS,
};

/** Operators a property accepts (Intune's property reference). */
export function operatorsFor(property: FilterProperty): readonly FilterOperator[] {
  return OPERATORS_BY_KIND[PROPERTY_KIND[property]];
}

/**
 * Properties a filter may use on an enrollment restriction, per platform (-E §6.5, L7185-7223). "OS version" is
 * osVersion or its successor operatingSystemVersion. "Filters can't be used with Android enrollment restrictions."
 */
export const ENROLLMENT_FILTER_PROPERTIES: Readonly<Record<RestrictionPlatform, readonly FilterProperty[]>> = {
  windows: ['osVersion', 'operatingSystemVersion', 'operatingSystemSKU', 'enrollmentProfileName'],
  ios: ['manufacturer', 'model', 'osVersion', 'operatingSystemVersion', 'deviceOwnership', 'enrollmentProfileName'],
  mac: ['manufacturer', 'model', 'osVersion', 'operatingSystemVersion', 'deviceOwnership', 'enrollmentProfileName'],
  android: [],
  androidForWork: [],
  windowsPhone: [],
  linux: [],
};

export type FilterNode =
  | { kind: 'compare'; property: FilterProperty; op: TextOperator | VersionOperator; value: string | null }
  | { kind: 'list'; property: FilterProperty; op: ListOperator; values: string[] }
  | { kind: 'and' | 'or'; operands: FilterNode[] };

export class FilterRuleError extends Error {
  constructor(
    message: string,
    /** 0-based character offset of the problem. */
    readonly position: number,
  ) {
    super(message);
    this.name = 'FilterRuleError';
  }
}

const byLower = <T extends string>(names: readonly T[]) => new Map(names.map((n) => [n.toLowerCase(), n] as const));
const PROPERTY_BY_LOWER = byLower(FILTER_PROPERTIES);
const OPERATOR_BY_LOWER = byLower<FilterOperator>([...TEXT_OPERATORS, ...LIST_OPERATORS, 'gt', 'ge', 'lt', 'le']);

type Token =
  | { t: '(' | ')' | '[' | ']' | ','; pos: number }
  | { t: 'string'; value: string; pos: number }
  | { t: 'word'; value: string; pos: number } // identifiers, bare operators/connectives, null, versions
  | { t: 'dash'; value: string; pos: number } // -eq, -and
  | { t: 'bad'; value: string; pos: number };

const WORD = /[A-Za-z_$][\w.$]*|\d[\d.]*/y;
const DASH = /-[A-Za-z]+/y;

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')' || ch === '[' || ch === ']' || ch === ',') {
      tokens.push({ t: ch, pos: i++ });
    } else if (ch === '"') {
      const start = i++;
      let value = '';
      for (;;) {
        if (i >= input.length) throw new FilterRuleError('unterminated string (a closing double quote is missing)', start);
        const c = input[i]!;
        const next = input[i + 1];
        if ((c === '`' && (next === '"' || next === '`')) || (c === '"' && next === '"')) {
          value += next;
          i += 2;
        } else if (c === '"') {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      tokens.push({ t: 'string', value, pos: start });
    } else if (ch === '-' && /[A-Za-z]/.test(input[i + 1] ?? '')) {
      DASH.lastIndex = i;
      const value = DASH.exec(input)![0];
      tokens.push({ t: 'dash', value: value.slice(1), pos: i });
      i += value.length;
    } else {
      WORD.lastIndex = i;
      const m = WORD.exec(input);
      if (m) {
        tokens.push({ t: 'word', value: m[0], pos: i });
        i += m[0].length;
      } else {
        // Reported by the parser when it gets there, so earlier problems are named first.
        tokens.push({ t: 'bad', value: ch, pos: i++ });
      }
    }
  }
  return tokens;
}

function describe(tok: Token | undefined): string {
  if (!tok) return 'the end of the rule';
  switch (tok.t) {
    case 'string':
      return 'a string';
    case 'word':
      return `'${tok.value}'`;
    case 'dash':
      return `'-${tok.value}'`;
    case 'bad':
      return tok.value === "'" ? 'a single quote (strings must be in double quotes)' : `the unexpected character '${tok.value}'`;
    default:
      return `'${tok.t}'`;
  }
}

/** A keyword written bare or with a dash (`and`, `-and`), lower-cased, else undefined. */
function keyword(tok: Token | undefined): string | undefined {
  return tok?.t === 'word' || tok?.t === 'dash' ? tok.value.toLowerCase() : undefined;
}

const VERSION_LITERAL = /^\d{1,9}(\.\d{1,9}){0,3}$/;

export interface FilterParseOptions {
  /** Only these properties are allowed (enrollment restrictions narrow the list per platform). */
  properties?: readonly FilterProperty[];
  /** Names the context in the error, e.g. "a filter on a Windows enrollment restriction". */
  context?: string;
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly length: number,
    private readonly options: FilterParseOptions,
  ) {}

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }
  private fail(message: string, tok = this.peek()): never {
    throw new FilterRuleError(message, tok ? tok.pos : this.length);
  }

  parseRule(): FilterNode {
    if (this.tokens.length === 0) this.fail('the rule is empty');
    const node = this.parseOr(0);
    const rest = this.peek();
    if (rest) this.fail(rest.t === ')' ? "unexpected ')' without a matching '('" : `expected and, or or the end of the rule, found ${describe(rest)}`);
    return node;
  }

  private parseOr(depth: number): FilterNode {
    const operands = [this.parseAnd(depth)];
    while (keyword(this.peek()) === 'or') {
      this.i++;
      operands.push(this.parseAnd(depth));
    }
    return operands.length === 1 ? operands[0]! : { kind: 'or', operands };
  }

  private parseAnd(depth: number): FilterNode {
    const operands = [this.parsePrimary(depth)];
    while (keyword(this.peek()) === 'and') {
      this.i++;
      operands.push(this.parsePrimary(depth));
    }
    return operands.length === 1 ? operands[0]! : { kind: 'and', operands };
  }

  private parsePrimary(depth: number): FilterNode {
    const tok = this.peek();
    if (tok?.t === '(') {
      if (depth >= FILTER_RULE_LIMITS.maxDepth) this.fail(`the rule is nested more than ${FILTER_RULE_LIMITS.maxDepth} levels deep`, tok);
      this.i++;
      const inner = this.parseOr(depth + 1);
      const close = this.peek();
      if (close?.t !== ')') this.fail(`expected ')' to close the '(' at position ${tok.pos}, found ${describe(close)}`, close);
      this.i++;
      return inner;
    }
    if (keyword(tok) === 'not') this.fail("'not' is not supported in filter rules; use -ne, -notIn, -notContains, -notStartsWith or -notEndsWith", tok);
    return this.parseComparison();
  }

  private parseProperty(): FilterProperty {
    const tok = this.peek();
    if (tok?.t !== 'word' || !/^[A-Za-z]/.test(tok.value)) this.fail(`expected a device property such as device.model, found ${describe(tok)}`, tok);
    const dot = tok.value.indexOf('.');
    const entity = dot === -1 ? '' : tok.value.slice(0, dot).toLowerCase();
    const name = dot === -1 ? tok.value : tok.value.slice(dot + 1);
    if (entity === 'app') this.fail(`'${tok.value}': app properties are for managed app filters; enrollment uses device.* properties`, tok);
    if (entity !== 'device') this.fail(`expected a device property such as device.model, found '${tok.value}'`, tok);
    const property = PROPERTY_BY_LOWER.get(name.toLowerCase());
    if (!property) this.fail(`'device.${name}' is not a filter property; use one of ${FILTER_PROPERTIES.map((p) => `device.${p}`).join(', ')}`, tok);
    const allowed = this.options.properties;
    if (allowed && !allowed.includes(property)) {
      const where = this.options.context ?? 'this filter';
      this.fail(
        allowed.length === 0
          ? `'device.${property}' can't be used: ${where} can't use filters`
          : `'device.${property}' can't be used in ${where}; use ${allowed.map((p) => `device.${p}`).join(', ')}`,
        tok,
      );
    }
    this.i++;
    return property;
  }

  private parseComparison(): FilterNode {
    const property = this.parseProperty();
    const opTok = this.peek();
    const opName = keyword(opTok);
    const op = opName === undefined ? undefined : OPERATOR_BY_LOWER.get(opName);
    if (!op) this.fail(`expected an operator such as -eq after 'device.${property}', found ${describe(opTok)}`, opTok);
    const allowed = operatorsFor(property);
    if (!allowed.includes(op)) this.fail(`'-${op}' can't be used with device.${property}; use ${allowed.map((o) => `-${o}`).join(', ')}`, opTok);
    this.i++;

    if (op === 'in' || op === 'notIn') return { kind: 'list', property, op, values: this.parseList(op) };

    const valueTok = this.peek();
    const word = keyword(valueTok);
    if ((word === 'null' || word === '$null') && valueTok?.t === 'word') {
      if (op !== 'eq' && op !== 'ne') this.fail(`null can only be compared with -eq or -ne`, valueTok);
      this.i++;
      return { kind: 'compare', property, op, value: null };
    }
    if (PROPERTY_KIND[property] === 'version') {
      const text = valueTok?.t === 'string' || valueTok?.t === 'word' ? valueTok.value.trim() : undefined;
      if (text === undefined || !VERSION_LITERAL.test(text)) this.fail(`expected a version such as 10.0.22000.1000 after '-${op}', found ${describe(valueTok)}`, valueTok);
      this.i++;
      return { kind: 'compare', property, op, value: text };
    }
    if (PROPERTY_KIND[property] === 'flag' && valueTok?.t === 'word' && (word === 'true' || word === 'false')) {
      this.i++;
      return { kind: 'compare', property, op, value: valueTok.value };
    }
    if (valueTok?.t !== 'string') this.fail(`expected a string in double quotes after '-${op}', found ${describe(valueTok)}`, valueTok);
    this.i++;
    return { kind: 'compare', property, op, value: valueTok.value };
  }

  private parseList(op: ListOperator): string[] {
    const open = this.peek();
    if (open?.t !== '[') this.fail(`'-${op}' takes a list such as ["a", "b"], found ${describe(open)}`, open);
    this.i++;
    const values: string[] = [];
    for (;;) {
      const item = this.peek();
      if (item?.t !== 'string') this.fail(`expected a string in double quotes in the list, found ${describe(item)}`, item);
      values.push(item.value);
      this.i++;
      const sep = this.peek();
      if (sep?.t === ']') {
        this.i++;
        return values;
      }
      if (sep?.t !== ',') this.fail(`expected ',' or ']' in the list that starts at position ${open.pos}, found ${describe(sep)}`, sep);
      this.i++;
    }
  }
}

/** Parses a rule; throws FilterRuleError naming the position of the first problem. */
export function parseFilterRule(input: string, options: FilterParseOptions = {}): FilterNode {
  if (input.length > FILTER_RULE_LIMITS.maxLength) {
    throw new FilterRuleError(`the rule is longer than ${FILTER_RULE_LIMITS.maxLength} characters`, FILTER_RULE_LIMITS.maxLength);
  }
  return new Parser(tokenize(input), input.length, options).parseRule();
}

const PLATFORM_NAMES: Record<RestrictionPlatform, string> = {
  ios: 'iOS/iPadOS',
  mac: 'macOS',
  windows: 'Windows',
  windowsPhone: 'Windows Phone',
  android: 'Android',
  androidForWork: 'Android',
  linux: 'Linux',
};

/**
 * Parses a rule for a filter on an enrollment restriction of `platform`, refusing properties the platform can't
 * use at enrollment. Android (and platforms the seed doesn't list) can't use filters at all.
 */
export function parseEnrollmentFilterRule(input: string, platform: RestrictionPlatform): FilterNode {
  const properties = ENROLLMENT_FILTER_PROPERTIES[platform];
  if (properties.length === 0) throw new FilterRuleError(`Filters can't be used with ${PLATFORM_NAMES[platform]} enrollment restrictions.`, 0);
  return parseFilterRule(input, { properties, context: `a filter on a ${PLATFORM_NAMES[platform]} enrollment restriction` });
}

function quote(value: string): string {
  return `"${value.replace(/[`"]/g, (c) => `\`${c}`)}"`;
}

/** Canonical text of a rule; parsing it gives the same tree back. */
export function printFilterRule(node: FilterNode): string {
  switch (node.kind) {
    case 'compare': {
      const value = node.value === null ? 'null' : quote(node.value);
      return `(device.${node.property} -${node.op} ${value})`;
    }
    case 'list':
      return `(device.${node.property} -${node.op} [${node.values.map(quote).join(', ')}])`;
    case 'and':
    case 'or':
      return node.operands.map((o) => (o.kind === 'and' || o.kind === 'or' ? `(${printFilterRule(o)})` : printFilterRule(o))).join(` ${node.kind} `);
  }
}

/** What a filter sees of a device, by property name (case-insensitive keys); missing means null. */
export type FilterDeviceProperties = Readonly<Record<string, string | boolean | null | undefined>>;

function lookup(props: FilterDeviceProperties, property: FilterProperty): string | null {
  let raw = props[property];
  if (raw === undefined) {
    const lower = property.toLowerCase();
    for (const [k, v] of Object.entries(props)) {
      if (k.toLowerCase() === lower) {
        raw = v;
        break;
      }
    }
  }
  if (raw === undefined || raw === null) return null;
  return typeof raw === 'boolean' ? (raw ? 'True' : 'False') : raw;
}

function compareText(op: TextOperator, actual: string | null, expected: string | null): boolean {
  // null literal: "has no value"; a missing value compares as "" for the text operators.
  if (expected === null) return op === 'eq' ? !actual : !!actual;
  return matchText(op, actual, expected);
}

function compareVersion(op: VersionOperator, actual: string | null, expected: string | null): boolean {
  if (expected === null) return op === 'eq' ? !actual : !!actual;
  const a = parseDeviceVersion(actual);
  const e = parseDeviceVersion(expected);
  // An unreadable device version satisfies no comparison but -ne.
  if (!a || !e) return op === 'ne';
  const c = compareVersions(a, e);
  switch (op) {
    case 'eq':
      return c === 0;
    case 'ne':
      return c !== 0;
    case 'gt':
      return c > 0;
    case 'ge':
      return c >= 0;
    case 'lt':
      return c < 0;
    case 'le':
      return c <= 0;
  }
}

export function evaluateFilterRule(node: FilterNode, props: FilterDeviceProperties): boolean {
  switch (node.kind) {
    case 'compare': {
      const actual = lookup(props, node.property);
      return PROPERTY_KIND[node.property] === 'version'
        ? compareVersion(node.op as VersionOperator, actual, node.value)
        : compareText(node.op as TextOperator, actual, node.value);
    }
    case 'list': {
      const a = (lookup(props, node.property) ?? '').toLowerCase();
      const found = node.values.some((v) => v.toLowerCase() === a);
      return node.op === 'in' ? found : !found;
    }
    case 'and':
      return node.operands.every((o) => evaluateFilterRule(o, props));
    case 'or':
      return node.operands.some((o) => evaluateFilterRule(o, props));
  }
}
