import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BOOLEAN_PROPERTIES,
  deviceFacts,
  evaluateMembershipRule,
  MembershipRuleError,
  parseMembershipRule,
  printMembershipRule,
  RULE_LIMITS,
  STRING_OPERATORS,
  STRING_PROPERTIES,
  type DeviceFacts,
  type RuleNode,
  type StringOperator,
} from '../../src/directory/membership-rules.js';

function parseError(rule: string): MembershipRuleError {
  try {
    parseMembershipRule(rule);
  } catch (err) {
    if (err instanceof MembershipRuleError) return err;
    throw err;
  }
  throw new Error(`expected '${rule}' to be refused`);
}

const facts = (over: Partial<DeviceFacts> = {}): DeviceFacts => ({
  enrollmentProfileName: null,
  deviceCategory: null,
  deviceOSType: null,
  deviceOSVersion: null,
  deviceModel: null,
  deviceManufacturer: null,
  deviceOwnership: null,
  displayName: null,
  deviceId: null,
  managementType: null,
  isRooted: false,
  ...over,
});

const matches = (rule: string, f: Partial<DeviceFacts>) => evaluateMembershipRule(parseMembershipRule(rule), facts(f));

describe('membership rules: examples', () => {
  it('parses the rules enrollment documentation uses', () => {
    expect(parseMembershipRule('device.enrollmentProfileName -eq "Kiosk iPads"')).toEqual({
      kind: 'compare',
      property: 'enrollmentProfileName',
      op: 'eq',
      value: 'Kiosk iPads',
    });
    expect(parseMembershipRule('(device.deviceCategory -eq "HR")')).toEqual({ kind: 'compare', property: 'deviceCategory', op: 'eq', value: 'HR' });
  });

  it('accepts every supported property and operator', () => {
    for (const p of STRING_PROPERTIES) {
      for (const op of STRING_OPERATORS) {
        expect(parseMembershipRule(`device.${p} -${op} "x"`)).toEqual({ kind: 'compare', property: p, op, value: 'x' });
      }
    }
    expect(parseMembershipRule('device.isRooted -eq true')).toEqual({ kind: 'bool', property: 'isRooted', value: true });
    expect(parseMembershipRule('device.isRooted -eq False')).toEqual({ kind: 'bool', property: 'isRooted', value: false });
  });

  it('ignores case in operators, property names and values, like Entra', () => {
    expect(printMembershipRule(parseMembershipRule('DEVICE.EnrollmentProfileName -EQ "a" -AND -NOT device.devicecategory -StartsWith "b"'))).toBe(
      'device.enrollmentProfileName -eq "a" -and -not device.deviceCategory -startsWith "b"',
    );
    expect(matches('device.enrollmentProfileName -eq "KIOSK"', { enrollmentProfileName: 'kiosk' })).toBe(true);
    expect(matches('device.deviceModel -contains "PAD"', { deviceModel: 'iPad Air' })).toBe(true);
    expect(matches('device.deviceModel -startsWith "ipad"', { deviceModel: 'iPad Air' })).toBe(true);
  });

  it('evaluates each operator', () => {
    const f = { deviceCategory: 'Human Resources' };
    const cases: [StringOperator, string, boolean][] = [
      ['eq', 'human resources', true],
      ['eq', 'Human', false],
      ['ne', 'Human', true],
      ['ne', 'HUMAN RESOURCES', false],
      ['startsWith', 'human', true],
      ['startsWith', 'resources', false],
      ['notStartsWith', 'resources', true],
      ['notStartsWith', 'Human', false],
      ['contains', 'n res', true],
      ['contains', 'xyz', false],
      ['notContains', 'xyz', true],
      ['notContains', 'RES', false],
    ];
    for (const [op, v, expected] of cases) expect(matches(`device.deviceCategory -${op} "${v}"`, f)).toBe(expected);
  });

  it('treats a missing device value as an empty string', () => {
    expect(matches('device.deviceCategory -eq "HR"', {})).toBe(false);
    expect(matches('device.deviceCategory -ne "HR"', {})).toBe(true);
    expect(matches('device.deviceCategory -eq ""', {})).toBe(true);
  });

  it('combines with -and, -or, -not and parentheses', () => {
    const rule = '(device.deviceOSType -eq "iOS" -and device.deviceOwnership -eq "Company") -or -not (device.deviceCategory -ne "Kiosk")';
    expect(matches(rule, { deviceOSType: 'iOS', deviceOwnership: 'Company' })).toBe(true);
    expect(matches(rule, { deviceOSType: 'iOS', deviceOwnership: 'Personal' })).toBe(false);
    expect(matches(rule, { deviceOSType: 'Android', deviceCategory: 'kiosk' })).toBe(true);
    expect(matches('device.isRooted -eq true', { isRooted: true })).toBe(true);
    expect(matches('device.isRooted -eq true', {})).toBe(false);
    expect(matches('device.isRooted -eq false', {})).toBe(true);
  });

  it('reads double quotes written as "" or `" and a backtick written as ``', () => {
    expect(parseMembershipRule('device.displayName -eq "say ""hi"""')).toMatchObject({ value: 'say "hi"' });
    expect(parseMembershipRule('device.displayName -eq "say `"hi`""')).toMatchObject({ value: 'say "hi"' });
    expect(parseMembershipRule('device.displayName -eq "a``b"')).toMatchObject({ value: 'a`b' });
    expect(parseMembershipRule('device.displayName -eq "a`b"')).toMatchObject({ value: 'a`b' });
    expect(parseMembershipRule('device.displayName -eq ""')).toMatchObject({ value: '' });
    expect(printMembershipRule({ kind: 'compare', property: 'displayName', op: 'eq', value: 'x"y`' })).toBe('device.displayName -eq "x`"y``"');
  });

  it('accepts line breaks and tabs between tokens', () => {
    expect(parseMembershipRule('device.deviceCategory -eq "HR"\n\t-or\r\n device.deviceCategory -eq "IT"')).toMatchObject({ kind: 'or' });
  });

  it('refuses user rules, naming the position', () => {
    const e = parseError('device.deviceCategory -eq "HR" -or user.department -eq "Sales"');
    expect(e.position).toBe(35);
    expect(e.message).toMatch(/user properties are not supported/);
    expect(parseError('user.department -eq "Sales"').position).toBe(0);
  });

  it('refuses what the subset does not support, naming the position', () => {
    const cases: [string, number, RegExp][] = [
      ['', 0, /empty/],
      ['   ', 3, /empty/],
      ['device.extensionAttribute1 -eq "x"', 0, /not a supported property/],
      ['device -eq "x"', 0, /device property/],
      ['device.deviceModel -match "x.*"', 19, /'-match' is not supported/],
      ['device.deviceModel -in ["a"]', 19, /'-in' is not supported/],
      ['device.deviceModel -foo "x"', 19, /expected an operator/],
      ['device.deviceModel "x"', 19, /expected an operator/],
      ['device.deviceModel -eq x', 23, /double quotes/],
      ["device.deviceModel -eq 'x'", 23, /single quote/],
      ['device.deviceModel -eq "x', 23, /unterminated/],
      ['device.deviceModel -eq "x")', 26, /without a matching/],
      ['(device.deviceModel -eq "x"', 27, /expected '\)'/],
      ['device.deviceModel -eq "x" device.deviceModel -eq "y"', 27, /expected -and, -or/],
      ['device.deviceModel -eq "x" -and', 31, /device property/],
      ['device.deviceModel -eq "x" & device.deviceModel -eq "y"', 27, /unexpected character '&'/],
      ['device.isRooted -ne true', 16, /only be compared with -eq/],
      ['device.isRooted -eq "true"', 20, /true or false/],
      ['device.deviceModel -eq true', 23, /double quotes/],
      ['device.deviceModel -eq "x" -and device.deviceCategory -eq "y" -or device.displayName -eq "z"', 62, /can't be mixed/],
    ];
    for (const [rule, position, message] of cases) {
      const e = parseError(rule);
      expect({ rule, position: e.position }).toEqual({ rule, position });
      expect(e.message).toMatch(message);
    }
  });

  it(`accepts ${RULE_LIMITS.maxLength} characters and refuses one more`, () => {
    const prefix = 'device.displayName -eq "';
    const exact = `${prefix}${'a'.repeat(RULE_LIMITS.maxLength - prefix.length - 1)}"`;
    expect(exact).toHaveLength(RULE_LIMITS.maxLength);
    expect(parseMembershipRule(exact)).toMatchObject({ kind: 'compare' });
    const over = `${prefix}${'a'.repeat(RULE_LIMITS.maxLength - prefix.length)}"`;
    expect(parseError(over).message).toMatch(/longer than 3072 characters/);
  });

  it(`accepts ${RULE_LIMITS.maxDepth} levels of nesting and refuses one more`, () => {
    const leaf = 'device.deviceCategory -eq "HR"';
    const nest = (n: number) => `${'('.repeat(n)}${leaf}${')'.repeat(n)}`;
    expect(parseMembershipRule(nest(RULE_LIMITS.maxDepth))).toMatchObject({ kind: 'compare' });
    const e = parseError(nest(RULE_LIMITS.maxDepth + 1));
    expect(e.message).toMatch(/nested more than 32 levels/);
    expect(e.position).toBe(RULE_LIMITS.maxDepth);
    expect(parseMembershipRule(`${'-not '.repeat(RULE_LIMITS.maxDepth)}${leaf}`)).toMatchObject({ kind: 'not' });
    expect(parseError(`${'-not '.repeat(RULE_LIMITS.maxDepth + 1)}${leaf}`).message).toMatch(/nested/);
  });

  it('maps a managed-device record to rule facts', () => {
    const f = deviceFacts({
      id: 'dev-1',
      device_name: 'KIOSK-01',
      operating_system: 'iOS',
      os_version: '17.4',
      model: 'iPad Air',
      manufacturer: 'Apple',
      managed_device_owner_type: 'company',
      management_agent: 'mdm',
      enrollment_profile_name: 'Kiosk',
      device_category_display_name: 'HR',
      azure_ad_device_id: null,
    });
    expect(f).toEqual({
      enrollmentProfileName: 'Kiosk',
      deviceCategory: 'HR',
      deviceOSType: 'iOS',
      deviceOSVersion: '17.4',
      deviceModel: 'iPad Air',
      deviceManufacturer: 'Apple',
      deviceOwnership: 'Company',
      displayName: 'KIOSK-01',
      deviceId: 'dev-1',
      managementType: 'MDM',
      isRooted: false,
    });
    const personal = deviceFacts({ ...baseRow, managed_device_owner_type: 'personal', azure_ad_device_id: 'aad-1', management_agent: 'eas' });
    expect(personal).toMatchObject({ deviceOwnership: 'Personal', deviceId: 'aad-1', managementType: 'EAS' });
    expect(deviceFacts({ ...baseRow, managed_device_owner_type: 'unknown' }).deviceOwnership).toBeNull();
  });
});

const baseRow = {
  id: 'd',
  device_name: null,
  operating_system: null,
  os_version: null,
  model: null,
  manufacturer: null,
  managed_device_owner_type: 'unknown',
  management_agent: 'mdm',
  enrollment_profile_name: null,
  device_category_display_name: null,
  azure_ad_device_id: null,
};

// Values drawn from a small pool so comparisons are often true; plus arbitrary text for escaping.
const POOL = ['', 'kiosk', 'KIOSK', 'Kiosk-1', 'hr', 'HR team', 'a"b', 'x`', '`"', '""', 'é', ' '];
const valueArb = fc.oneof(fc.constantFrom(...POOL), fc.string({ maxLength: 8 }), fc.string({ unit: fc.constantFrom('a', 'A', '"', '`', ' ', '(', ')', '-', '\n'), maxLength: 8 }));
const compareArb: fc.Arbitrary<RuleNode> = fc.record({
  kind: fc.constant('compare' as const),
  property: fc.constantFrom(...STRING_PROPERTIES),
  op: fc.constantFrom(...STRING_OPERATORS),
  value: valueArb,
});
const boolArb: fc.Arbitrary<RuleNode> = fc.record({ kind: fc.constant('bool' as const), property: fc.constantFrom(...BOOLEAN_PROPERTIES), value: fc.boolean() });

const { node: ruleArb } = fc.letrec<{ node: RuleNode; and: RuleNode; or: RuleNode; not: RuleNode }>((tie) => ({
  node: fc.oneof({ maxDepth: 5, depthIdentifier: 'rule' }, compareArb, boolArb, tie('and'), tie('or'), tie('not')),
  and: fc.array(tie('node'), { minLength: 2, maxLength: 4 }).map((operands) => ({ kind: 'and' as const, operands })),
  or: fc.array(tie('node'), { minLength: 2, maxLength: 4 }).map((operands) => ({ kind: 'or' as const, operands })),
  not: tie('node').map((operand) => ({ kind: 'not' as const, operand })),
}));

const factsArb: fc.Arbitrary<DeviceFacts> = fc.record({
  enrollmentProfileName: fc.option(fc.constantFrom(...POOL)),
  deviceCategory: fc.option(fc.constantFrom(...POOL)),
  deviceOSType: fc.option(fc.constantFrom(...POOL)),
  deviceOSVersion: fc.option(fc.constantFrom(...POOL)),
  deviceModel: fc.option(fc.constantFrom(...POOL)),
  deviceManufacturer: fc.option(fc.constantFrom(...POOL)),
  deviceOwnership: fc.option(fc.constantFrom('Company', 'Personal', 'company')),
  displayName: fc.option(fc.constantFrom(...POOL)),
  deviceId: fc.option(fc.constantFrom(...POOL)),
  managementType: fc.option(fc.constantFrom('MDM', 'EAS')),
  isRooted: fc.boolean(),
});

const TOKENS = ['device.deviceCategory', 'device.isRooted', 'user.city', 'device.', '-eq', '-ne', '-startsWith', '-contains', '-and', '-or', '-not', '-match', '(', ')', '"HR"', '"a""b"', '"x`"y"', '"', '`', 'true', 'false', '&', "'x'", ''];

describe('membership rules: properties', () => {
  it('printing then parsing gives the same tree', () => {
    fc.assert(
      fc.property(ruleArb, (rule) => {
        expect(parseMembershipRule(printMembershipRule(rule))).toEqual(rule);
      }),
      { numRuns: 500 },
    );
  });

  it('-and, -or and -not mean &&, || and !', () => {
    fc.assert(
      fc.property(ruleArb, ruleArb, factsArb, (a, b, f) => {
        const ea = evaluateMembershipRule(a, f);
        const eb = evaluateMembershipRule(b, f);
        expect(evaluateMembershipRule({ kind: 'and', operands: [a, b] }, f)).toBe(ea && eb);
        expect(evaluateMembershipRule({ kind: 'or', operands: [a, b] }, f)).toBe(ea || eb);
        expect(evaluateMembershipRule({ kind: 'not', operand: a }, f)).toBe(!ea);
        // Parsing the printed combination evaluates the same.
        const printed = `(${printMembershipRule(a)}) -and (${printMembershipRule(b)})`;
        expect(evaluateMembershipRule(parseMembershipRule(printed), f)).toBe(ea && eb);
      }),
      { numRuns: 300 },
    );
  });

  it('each negated operator is the negation of its positive one', () => {
    const pairs: [StringOperator, StringOperator][] = [
      ['ne', 'eq'],
      ['notStartsWith', 'startsWith'],
      ['notContains', 'contains'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...STRING_PROPERTIES), valueArb, factsArb, fc.constantFrom(...pairs), (property, value, f, [neg, pos]) => {
        const e = (op: StringOperator) => evaluateMembershipRule({ kind: 'compare', property, op, value }, f);
        expect(e(neg)).toBe(!e(pos));
      }),
    );
  });

  it('ignores the case of values', () => {
    fc.assert(
      fc.property(fc.constantFrom(...STRING_PROPERTIES), fc.constantFrom(...STRING_OPERATORS), valueArb, factsArb, (property, op, value, f) => {
        const e = (v: string) => evaluateMembershipRule({ kind: 'compare', property, op, value: v }, f);
        expect(e(value.toUpperCase())).toBe(e(value.toLowerCase()));
      }),
    );
  });

  it('arbitrary text never crashes the parser: a tree or a positioned MembershipRuleError', () => {
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 100 }), fc.array(fc.constantFrom(...TOKENS), { maxLength: 20 }).map((t) => t.join(' ')));
    fc.assert(
      fc.property(text, (s) => {
        try {
          const rule = parseMembershipRule(s);
          // Whatever parses prints to text that parses to the same tree.
          expect(parseMembershipRule(printMembershipRule(rule))).toEqual(rule);
        } catch (err) {
          expect(err).toBeInstanceOf(MembershipRuleError);
          const pos = (err as MembershipRuleError).position;
          expect(pos).toBeGreaterThanOrEqual(0);
          expect(pos).toBeLessThanOrEqual(s.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
