import type { ManagedDevicesTable } from '../store/schema.js';
import { matchText } from '../shared/text-match.js';

/**
 * The subset of Entra's dynamic-membership rule syntax that enrollment uses: device rules such as
 * `device.enrollmentProfileName -eq "Kiosk"` joined with -and / -or / -not and parentheses.
 * Pure: parsing, printing and evaluation, no I/O.
 *
 * Semantics:
 * - string comparisons ignore case, as in Entra; a missing (null) device value compares as "";
 * - -not binds tighter than -and / -or; mixing -and and -or at one level needs parentheses
 *   (Entra's documented precedence of the two is ambiguous, so we refuse rather than guess);
 * - strings are in double quotes; a quote inside is written `" or "", a backtick as ``.
 */

export const RULE_LIMITS = { maxLength: 3072, maxDepth: 32 } as const;

export const STRING_PROPERTIES = [
  'enrollmentProfileName',
  'deviceCategory',
  'deviceOSType',
  'deviceOSVersion',
  'deviceModel',
  'deviceManufacturer',
  'deviceOwnership',
  'displayName',
  'deviceId',
  'managementType',
] as const;
export type StringProperty = (typeof STRING_PROPERTIES)[number];
export const BOOLEAN_PROPERTIES = ['isRooted'] as const;
export type BooleanProperty = (typeof BOOLEAN_PROPERTIES)[number];

export const STRING_OPERATORS = ['eq', 'ne', 'startsWith', 'notStartsWith', 'contains', 'notContains'] as const;
export type StringOperator = (typeof STRING_OPERATORS)[number];

export type RuleNode =
  | { kind: 'compare'; property: StringProperty; op: StringOperator; value: string }
  | { kind: 'bool'; property: BooleanProperty; value: boolean }
  | { kind: 'and' | 'or'; operands: RuleNode[] }
  | { kind: 'not'; operand: RuleNode };

/** What a rule can see of one device. */
export type DeviceFacts = { [K in StringProperty]: string | null } & { [K in BooleanProperty]: boolean };

export class MembershipRuleError extends Error {
  constructor(
    message: string,
    /** 0-based character offset, like $filter errors. */
    readonly position: number,
  ) {
    super(message);
    this.name = 'MembershipRuleError';
  }
}

// Operators Entra has but this subset doesn't; named so the error can say "not supported" rather than "unknown".
const UNSUPPORTED_OPERATORS = new Set(['match', 'notmatch', 'in', 'notin', 'any', 'all', 'endswith', 'notendswith', 'le', 'ge', 'lt', 'gt']);

const byLower = <T extends string>(names: readonly T[]) => new Map(names.map((n) => [n.toLowerCase(), n] as const));
const STRING_PROPERTY_BY_LOWER = byLower(STRING_PROPERTIES);
const BOOLEAN_PROPERTY_BY_LOWER = byLower(BOOLEAN_PROPERTIES);
const STRING_OPERATOR_BY_LOWER = byLower(STRING_OPERATORS);

type Token =
  | { t: 'lparen' | 'rparen'; pos: number }
  | { t: 'string'; value: string; pos: number }
  | { t: 'word'; value: string; pos: number }
  | { t: 'op'; value: string; pos: number }
  | { t: 'bad'; value: string; pos: number };

const OP = /[A-Za-z]+/y;
const WORD = /[A-Za-z_][\w.]*/y;

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ t: ch === '(' ? 'lparen' : 'rparen', pos: i++ });
    } else if (ch === '"') {
      const start = i++;
      let value = '';
      for (;;) {
        if (i >= input.length) throw new MembershipRuleError('unterminated string (a closing double quote is missing)', start);
        const c = input[i]!;
        const next = input[i + 1];
        if (c === '`' && (next === '"' || next === '`')) {
          value += next;
          i += 2;
        } else if (c === '"' && next === '"') {
          value += '"';
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
      OP.lastIndex = i + 1;
      const value = OP.exec(input)![0];
      tokens.push({ t: 'op', value, pos: i });
      i += value.length + 1;
    } else if (/[A-Za-z_]/.test(ch)) {
      WORD.lastIndex = i;
      const value = WORD.exec(input)![0];
      tokens.push({ t: 'word', value, pos: i });
      i += value.length;
    } else {
      // Reported by the parser when it gets there, so earlier problems are named first.
      tokens.push({ t: 'bad', value: ch, pos: i++ });
    }
  }
  return tokens;
}

function describe(tok: Token | undefined): string {
  if (!tok) return 'the end of the rule';
  switch (tok.t) {
    case 'lparen':
      return "'('";
    case 'rparen':
      return "')'";
    case 'string':
      return 'a string';
    case 'op':
      return `'-${tok.value}'`;
    case 'word':
      return `'${tok.value}'`;
    case 'bad':
      return tok.value === "'" ? "a single quote (strings must be in double quotes)" : `the unexpected character '${tok.value}'`;
  }
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly length: number,
  ) {}

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }
  private posOf(tok: Token | undefined): number {
    return tok ? tok.pos : this.length;
  }
  private fail(message: string, tok = this.peek()): never {
    throw new MembershipRuleError(message, this.posOf(tok));
  }

  parseRule(): RuleNode {
    if (this.tokens.length === 0) this.fail('the rule is empty');
    const node = this.parseExpr(0);
    const rest = this.peek();
    if (rest) this.fail(rest.t === 'rparen' ? "unexpected ')' without a matching '('" : `expected -and, -or or the end of the rule, found ${describe(rest)}`);
    return node;
  }

  private connective(tok: Token | undefined): 'and' | 'or' | undefined {
    if (tok?.t !== 'op') return undefined;
    const v = tok.value.toLowerCase();
    return v === 'and' || v === 'or' ? v : undefined;
  }

  private parseExpr(depth: number): RuleNode {
    const first = this.parseUnary(depth);
    const kind = this.connective(this.peek());
    if (!kind) return first;
    const operands = [first];
    for (let tok = this.peek(), k = this.connective(tok); k; tok = this.peek(), k = this.connective(tok)) {
      if (k !== kind) this.fail(`-and and -or can't be mixed without parentheses; group the conditions, e.g. (a -and b) -or c`, tok);
      this.i++;
      operands.push(this.parseUnary(depth));
    }
    return { kind, operands };
  }

  private parseUnary(depth: number): RuleNode {
    const tok = this.peek();
    const nests = (tok?.t === 'op' && tok.value.toLowerCase() === 'not') || tok?.t === 'lparen';
    if (nests && depth >= RULE_LIMITS.maxDepth) this.fail(`the rule is nested more than ${RULE_LIMITS.maxDepth} levels deep`, tok);
    if (tok?.t === 'op' && tok.value.toLowerCase() === 'not') {
      this.i++;
      return { kind: 'not', operand: this.parseUnary(depth + 1) };
    }
    if (tok?.t === 'lparen') {
      this.i++;
      const inner = this.parseExpr(depth + 1);
      const close = this.peek();
      if (close?.t !== 'rparen') this.fail(`expected ')' to close the '(' at position ${tok.pos}, found ${describe(close)}`, close);
      this.i++;
      return inner;
    }
    return this.parseComparison();
  }

  private parseComparison(): RuleNode {
    const tok = this.peek();
    if (tok?.t !== 'word') this.fail(`expected a device property such as device.enrollmentProfileName, found ${describe(tok)}`, tok);
    this.i++;
    const dot = tok.value.indexOf('.');
    const object = dot === -1 ? tok.value : tok.value.slice(0, dot);
    const name = dot === -1 ? '' : tok.value.slice(dot + 1);
    if (object.toLowerCase() === 'user') {
      this.fail(`'${tok.value}': rules on user properties are not supported; OpenEnroll dynamic groups hold devices, so use device.* properties`, tok);
    }
    if (object.toLowerCase() !== 'device' || name === '') {
      this.fail(`expected a device property such as device.enrollmentProfileName, found '${tok.value}'`, tok);
    }
    const stringProperty = STRING_PROPERTY_BY_LOWER.get(name.toLowerCase());
    const booleanProperty = BOOLEAN_PROPERTY_BY_LOWER.get(name.toLowerCase());
    if (!stringProperty && !booleanProperty) {
      this.fail(
        `'device.${name}' is not a supported property; use one of ${[...STRING_PROPERTIES, ...BOOLEAN_PROPERTIES].map((p) => `device.${p}`).join(', ')}`,
        tok,
      );
    }

    const opTok = this.peek();
    if (opTok?.t !== 'op') this.fail(`expected an operator such as -eq after '${tok.value}', found ${describe(opTok)}`, opTok);
    const opLower = opTok.value.toLowerCase();
    const op = STRING_OPERATOR_BY_LOWER.get(opLower);
    if (!op) {
      if (UNSUPPORTED_OPERATORS.has(opLower)) this.fail(`the operator '-${opTok.value}' is not supported; use -eq, -ne, -startsWith, -notStartsWith, -contains or -notContains`, opTok);
      this.fail(`expected an operator such as -eq after '${tok.value}', found '-${opTok.value}'`, opTok);
    }
    this.i++;

    const valueTok = this.peek();
    if (booleanProperty) {
      if (op !== 'eq') this.fail(`'device.${booleanProperty}' can only be compared with -eq`, opTok);
      const v = valueTok?.t === 'word' ? valueTok.value.toLowerCase() : undefined;
      if (v !== 'true' && v !== 'false') this.fail(`'device.${booleanProperty}' is compared with true or false (without quotes), found ${describe(valueTok)}`, valueTok);
      this.i++;
      return { kind: 'bool', property: booleanProperty, value: v === 'true' };
    }
    if (valueTok?.t !== 'string') this.fail(`expected a string in double quotes after '-${opTok.value}', found ${describe(valueTok)}`, valueTok);
    this.i++;
    return { kind: 'compare', property: stringProperty!, op, value: valueTok.value };
  }
}

/** Parses a rule; throws MembershipRuleError naming the position of the first problem. */
export function parseMembershipRule(input: string): RuleNode {
  if (input.length > RULE_LIMITS.maxLength) {
    throw new MembershipRuleError(`the rule is longer than ${RULE_LIMITS.maxLength} characters`, RULE_LIMITS.maxLength);
  }
  return new Parser(tokenize(input), input.length).parseRule();
}

function quote(value: string): string {
  return `"${value.replace(/[`"]/g, (c) => `\`${c}`)}"`;
}

/** Canonical text of a rule; parsing it gives the same tree back. */
export function printMembershipRule(node: RuleNode): string {
  const operand = (n: RuleNode) => (n.kind === 'and' || n.kind === 'or' ? `(${printMembershipRule(n)})` : printMembershipRule(n));
  switch (node.kind) {
    case 'compare':
      return `device.${node.property} -${node.op} ${quote(node.value)}`;
    case 'bool':
      return `device.${node.property} -eq ${String(node.value)}`;
    case 'not':
      return `-not ${operand(node.operand)}`;
    case 'and':
    case 'or':
      return node.operands.map(operand).join(` -${node.kind} `);
  }
}


export function evaluateMembershipRule(node: RuleNode, facts: DeviceFacts): boolean {
  switch (node.kind) {
    case 'compare':
      return matchText(node.op, facts[node.property], node.value);
    case 'bool':
      return facts[node.property] === node.value;
    case 'not':
      return !evaluateMembershipRule(node.operand, facts);
    case 'and':
      return node.operands.every((o) => evaluateMembershipRule(o, facts));
    case 'or':
      return node.operands.some((o) => evaluateMembershipRule(o, facts));
  }
}

/** The managed-device columns a rule can see. */
export const DEVICE_FACT_COLUMNS = [
  'id',
  'device_name',
  'operating_system',
  'os_version',
  'model',
  'manufacturer',
  'managed_device_owner_type',
  'management_agent',
  'enrollment_profile_name',
  'device_category_display_name',
  'azure_ad_device_id',
] as const;
export type DeviceFactsRow = Pick<ManagedDevicesTable, (typeof DEVICE_FACT_COLUMNS)[number]>;

/** Entra's deviceOwnership values for Intune's managedDeviceOwnerType. */
function ownership(ownerType: string): string | null {
  switch (ownerType.toLowerCase()) {
    case 'company':
      return 'Company';
    case 'personal':
      return 'Personal';
    default:
      return null;
  }
}

/** Entra's managementType for Intune's managementAgent (mdm -> MDM, eas -> EAS). */
function managementType(agent: string): string | null {
  if (!agent) return null;
  const lower = agent.toLowerCase();
  if (lower === 'mdm' || lower === 'eas') return agent.toUpperCase();
  return agent;
}

/** Maps a managed-device record to what a rule sees. */
export function deviceFacts(d: DeviceFactsRow): DeviceFacts {
  return {
    enrollmentProfileName: d.enrollment_profile_name,
    deviceCategory: d.device_category_display_name,
    deviceOSType: d.operating_system,
    deviceOSVersion: d.os_version,
    deviceModel: d.model,
    deviceManufacturer: d.manufacturer,
    deviceOwnership: ownership(d.managed_device_owner_type),
    displayName: d.device_name,
    deviceId: d.azure_ad_device_id ?? d.id,
    managementType: managementType(d.management_agent),
    // The device record carries no jailbreak/root state yet, so no device matches isRooted -eq true.
    isRooted: false,
  };
}
