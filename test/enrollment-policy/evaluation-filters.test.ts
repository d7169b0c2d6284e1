import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ENROLLMENT_FILTER_PROPERTIES,
  evaluateFilterRule,
  FILTER_PROPERTIES,
  FILTER_RULE_LIMITS,
  FilterRuleError,
  operatorsFor,
  parseEnrollmentFilterRule,
  parseFilterRule,
  printFilterRule,
  type FilterDeviceProperties,
  type FilterNode,
  type FilterProperty,
} from '../../src/enrollment-policy/evaluation/filters.js';

function parseError(rule: string, parse: (r: string) => unknown = parseFilterRule): FilterRuleError {
  try {
    parse(rule);
  } catch (err) {
    if (err instanceof FilterRuleError) return err;
    throw err;
  }
  throw new Error(`expected '${rule}' to be refused`);
}

const matches = (rule: string, props: FilterDeviceProperties) => evaluateFilterRule(parseFilterRule(rule), props);

describe('filter rules: syntax (Intune advanced rule editing)', () => {
  it('parses the documented examples', () => {
    expect(parseFilterRule('(device.manufacturer -eq "Samsung") and (device.osVersion -startsWith "17")')).toEqual({
      kind: 'and',
      operands: [
        { kind: 'compare', property: 'manufacturer', op: 'eq', value: 'Samsung' },
        { kind: 'compare', property: 'osVersion', op: 'startsWith', value: '17' },
      ],
    });
    expect(parseFilterRule('(device.deviceName -in ["Scott\'s device", "Sara\'s device"])')).toEqual({
      kind: 'list',
      property: 'deviceName',
      op: 'in',
      values: ["Scott's device", "Sara's device"],
    });
    expect(parseFilterRule('(device.enrollmentProfileName -ne $null)')).toEqual({ kind: 'compare', property: 'enrollmentProfileName', op: 'ne', value: null });
    expect(parseFilterRule('(device.operatingSystemVersion -gt 10.0.22000.1000)')).toEqual({
      kind: 'compare',
      property: 'operatingSystemVersion',
      op: 'gt',
      value: '10.0.22000.1000',
    });
    expect(parseFilterRule('(device.operatingSystemVersion -eq "10.0.22000.1000")')).toMatchObject({ value: '10.0.22000.1000' });
    expect(parseFilterRule('(device.isRooted -eq "True")')).toMatchObject({ property: 'isRooted', value: 'True' });
    expect(parseFilterRule('device.operatingSystemSKU -notIn ["Core", "CoreN"]')).toMatchObject({ kind: 'list', op: 'notIn' });
  });

  it('takes operators and connectives with or without the dash, in any case', () => {
    const expected = parseFilterRule('(device.model -eq "a") -or (device.model -contains "b")');
    expect(parseFilterRule('(DEVICE.MODEL eq "a") OR (device.Model CONTAINS "b")')).toEqual(expected);
    expect(parseFilterRule('device.model -EQ "a" or device.model -contains "b"')).toEqual(expected);
  });

  it('and binds tighter than or; parentheses nest', () => {
    const a = '(device.model -eq "a")';
    const b = '(device.model -eq "b")';
    const c = '(device.model -eq "c")';
    const d = '(device.model -eq "d")';
    const n = (v: string): FilterNode => ({ kind: 'compare', property: 'model', op: 'eq', value: v });
    expect(parseFilterRule(`${a} or ${b} and ${c} or ${d}`)).toEqual({ kind: 'or', operands: [n('a'), { kind: 'and', operands: [n('b'), n('c')] }, n('d')] });
    expect(parseFilterRule(`(${a} or ${b}) and (${c} or ${d})`)).toEqual({
      kind: 'and',
      operands: [
        { kind: 'or', operands: [n('a'), n('b')] },
        { kind: 'or', operands: [n('c'), n('d')] },
      ],
    });
    expect(parseFilterRule(`((((${a}))))`)).toEqual(n('a'));
  });

  it('string escapes: a backtick or a doubled quote', () => {
    expect(parseFilterRule('device.model -eq "say `"hi`" ``"')).toMatchObject({ value: 'say "hi" `' });
    expect(parseFilterRule('device.model -eq "a""b"')).toMatchObject({ value: 'a"b' });
  });

  it.each([
    ['', 'the rule is empty', 0],
    ['device.model -eq', 'expected a string in double quotes', 16],
    ["device.model -eq 'x'", 'single quote', 17],
    ['device.model -eq "x', 'unterminated string', 17],
    ['device.color -eq "x"', "'device.color' is not a filter property", 0],
    ['user.department -eq "x"', 'expected a device property', 0],
    ['app.appVersion -eq "1"', 'managed app filters', 0],
    ['device.model -like "x"', 'expected an operator', 13],
    ['device.model -gt "x"', "'-gt' can't be used with device.model", 13],
    ['device.deviceOwnership -startsWith "P"', "'-startsWith' can't be used with device.deviceOwnership", 23],
    ['device.model -in "x"', 'takes a list', 17],
    ['device.model -in []', 'expected a string in double quotes in the list', 18],
    ['device.model -in ["a" "b"]', "expected ',' or ']'", 22],
    ['device.model -contains null', 'null can only be compared with -eq or -ne', 23],
    ['device.operatingSystemVersion -gt "ten"', 'expected a version', 34],
    ['device.operatingSystemVersion -gt 1.2.3.4.5', 'expected a version', 34],
    ['not (device.model -eq "x")', "'not' is not supported", 0],
    ['-not (device.model -eq "x")', "'not' is not supported", 0],
    ['(device.model -eq "x"', "expected ')' to close the '(' at position 0", 21],
    ['device.model -eq "x")', "unexpected ')'", 20],
    ['device.model -eq "x" device.model -eq "y"', 'expected and, or or the end of the rule', 21],
    ['device.model -eq "x" and', 'expected a device property', 24],
  ])('refuses %j: %s at %i', (rule, message, position) => {
    const err = parseError(rule);
    expect(err.message).toContain(message);
    expect(err.position).toBe(position);
  });

  it('limits length and nesting', () => {
    const long = `device.model -eq "${'x'.repeat(FILTER_RULE_LIMITS.maxLength)}"`;
    expect(parseError(long).message).toContain('longer than');
    const deep = `${'('.repeat(FILTER_RULE_LIMITS.maxDepth + 1)}device.model -eq "x"${')'.repeat(FILTER_RULE_LIMITS.maxDepth + 1)}`;
    expect(parseError(deep).message).toContain('nested more than');
    const ok = `${'('.repeat(FILTER_RULE_LIMITS.maxDepth)}device.model -eq "x"${')'.repeat(FILTER_RULE_LIMITS.maxDepth)}`;
    expect(parseFilterRule(ok)).toMatchObject({ kind: 'compare' });
  });
});

describe('filter rules on enrollment restrictions (-E §6.5)', () => {
  it('Windows: OS version, Operating System SKU, Enrollment profile name', () => {
    expect(parseEnrollmentFilterRule('(device.operatingSystemSKU -eq "Core") or (device.osVersion -startsWith "10.0.19")', 'windows')).toMatchObject({ kind: 'or' });
    expect(parseEnrollmentFilterRule('device.enrollmentProfileName -eq "Autopilot" and device.operatingSystemVersion -ge 10.0.22000', 'windows')).toMatchObject({
      kind: 'and',
    });
    const err = parseError('device.osVersion -eq "1" and device.model -eq "Surface"', (r) => parseEnrollmentFilterRule(r, 'windows'));
    expect(err.message).toBe(
      "'device.model' can't be used in a filter on a Windows enrollment restriction; use device.osVersion, device.operatingSystemVersion, device.operatingSystemSKU, device.enrollmentProfileName",
    );
    expect(err.position).toBe(29);
  });

  it('iOS/iPadOS and macOS: Manufacturer, Model, OS version, Ownership, Enrollment profile name', () => {
    for (const platform of ['ios', 'mac'] as const) {
      expect(
        parseEnrollmentFilterRule(
          'device.manufacturer -eq "Apple" and device.model -startsWith "iPad" and device.osVersion -eq "17.1" and device.deviceOwnership -eq "Corporate" and device.enrollmentProfileName -ne null',
          platform,
        ),
      ).toMatchObject({ kind: 'and' });
      expect(parseError('device.operatingSystemSKU -eq "Core"', (r) => parseEnrollmentFilterRule(r, platform)).message).toContain("'device.operatingSystemSKU' can't be used");
      expect(parseError('device.deviceName -eq "x"', (r) => parseEnrollmentFilterRule(r, platform)).message).toContain("'device.deviceName' can't be used");
    }
  });

  it('Android: filters can\'t be used with enrollment restrictions', () => {
    for (const platform of ['android', 'androidForWork'] as const) {
      expect(parseError('device.model -eq "x"', (r) => parseEnrollmentFilterRule(r, platform)).message).toBe("Filters can't be used with Android enrollment restrictions.");
    }
  });

  it('every enrollment property is a filter property', () => {
    for (const list of Object.values(ENROLLMENT_FILTER_PROPERTIES)) for (const p of list) expect(FILTER_PROPERTIES).toContain(p);
  });
});

describe('filter rules: evaluation', () => {
  it('compares text ignoring case', () => {
    const props = { manufacturer: 'Samsung', model: 'Galaxy Note 20' };
    expect(matches('device.manufacturer -eq "SAMSUNG"', props)).toBe(true);
    expect(matches('device.manufacturer -ne "samsung"', props)).toBe(false);
    expect(matches('device.model -startsWith "galaxy"', props)).toBe(true);
    expect(matches('device.model -notStartsWith "galaxy"', props)).toBe(false);
    expect(matches('device.model -endsWith "NOTE 20"', props)).toBe(true);
    expect(matches('device.model -notEndsWith "20"', props)).toBe(false);
    expect(matches('device.model -contains "note"', props)).toBe(true);
    expect(matches('device.model -notContains "note"', props)).toBe(false);
    expect(matches('device.manufacturer -in ["lenovo", "SAMSUNG"]', props)).toBe(true);
    expect(matches('device.manufacturer -notIn ["lenovo", "SAMSUNG"]', props)).toBe(false);
  });

  it('null means no value; a missing value compares as empty text', () => {
    expect(matches('device.enrollmentProfileName -eq null', {})).toBe(true);
    expect(matches('device.enrollmentProfileName -eq $Null', { enrollmentProfileName: '' })).toBe(true);
    expect(matches('device.enrollmentProfileName -ne null', { enrollmentProfileName: 'Kiosk' })).toBe(true);
    expect(matches('device.model -eq "x"', {})).toBe(false);
    expect(matches('device.model -ne "x"', {})).toBe(true);
    expect(matches('device.model -notContains "x"', { model: null })).toBe(true);
    expect(matches('device.model -in ["x"]', {})).toBe(false);
  });

  it('reads properties with any key case, and booleans as True/False', () => {
    expect(matches('device.operatingSystemSKU -eq "Core"', { OperatingSystemSku: 'core' })).toBe(true);
    expect(matches('device.isRooted -eq "True"', { isRooted: true })).toBe(true);
    expect(matches('device.isRooted -eq false', { isRooted: false })).toBe(true);
  });

  it('compares operatingSystemVersion as a version', () => {
    const v = (rule: string, osv: string | null) => matches(rule, { operatingSystemVersion: osv });
    expect(v('device.operatingSystemVersion -gt 10.0.22000.1000', '10.0.22000.1001')).toBe(true);
    expect(v('device.operatingSystemVersion -gt 10.0.22000.1000', '10.0.22000.1000')).toBe(false);
    expect(v('device.operatingSystemVersion -ge 10.0.22000.1000', '10.0.22000.1000')).toBe(true);
    expect(v('device.operatingSystemVersion -lt 10.0.22000', '10.0.9999.9999')).toBe(true);
    expect(v('device.operatingSystemVersion -le 14.2', '14.2.0')).toBe(true);
    expect(v('device.operatingSystemVersion -eq 14.2.1', '14.2.1')).toBe(true);
    expect(v('device.operatingSystemVersion -ne 14.2.1', '14.2.1')).toBe(false);
    expect(v('device.operatingSystemVersion -gt 1', 'garbage')).toBe(false);
    expect(v('device.operatingSystemVersion -lt 1', null)).toBe(false);
    expect(v('device.operatingSystemVersion -ne 1', null)).toBe(true);
  });
});

// Generators for the properties.
const textProperties = FILTER_PROPERTIES.filter((p) => operatorsFor(p).includes('startsWith'));
const shortText = fc.string({ maxLength: 6, unit: fc.constantFrom('a', 'B', 'c', '"', '`', ' ', 'é', '1') });
const comparison: fc.Arbitrary<FilterNode> = fc.oneof(
  fc.record({
    kind: fc.constant('compare' as const),
    property: fc.constantFrom(...textProperties),
    op: fc.constantFrom('eq', 'ne', 'startsWith', 'notStartsWith', 'endsWith', 'notEndsWith', 'contains', 'notContains') as fc.Arbitrary<'eq'>,
    value: shortText,
  }),
  fc.record({ kind: fc.constant('compare' as const), property: fc.constantFrom(...textProperties), op: fc.constantFrom('eq', 'ne') as fc.Arbitrary<'eq'>, value: fc.constant(null) }),
  fc.record({
    kind: fc.constant('list' as const),
    property: fc.constantFrom(...textProperties),
    op: fc.constantFrom('in', 'notIn') as fc.Arbitrary<'in'>,
    values: fc.array(shortText, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('compare' as const),
    property: fc.constant('operatingSystemVersion' as FilterProperty),
    op: fc.constantFrom('eq', 'ne', 'gt', 'ge', 'lt', 'le') as fc.Arbitrary<'eq'>,
    value: fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 4 }).map((a) => a.join('.')),
  }),
);
const { node: ruleTree } = fc.letrec<{ node: FilterNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    comparison,
    fc.record({ kind: fc.constantFrom('and' as const, 'or' as const), operands: fc.array(tie('node'), { minLength: 2, maxLength: 3 }) }),
  ),
}));
const deviceProps: fc.Arbitrary<FilterDeviceProperties> = fc.record(
  Object.fromEntries(FILTER_PROPERTIES.map((p) => [p, fc.option(p === 'operatingSystemVersion' ? fc.constantFrom('10.0.1', '3', '14.2.1', 'x') : shortText)])),
  { requiredKeys: [] },
);

// An independent reading of the rule: the tree's meaning, with and/or as JavaScript's.
function oracle(node: FilterNode, props: FilterDeviceProperties): boolean {
  if (node.kind === 'and') return node.operands.every((o) => oracle(o, props));
  if (node.kind === 'or') return node.operands.some((o) => oracle(o, props));
  return evaluateFilterRule(node, props);
}

describe('filter rules: properties', () => {
  it('printing then parsing gives the same tree', () => {
    fc.assert(
      fc.property(ruleTree, (tree) => {
        expect(parseFilterRule(printFilterRule(tree))).toEqual(tree);
      }),
    );
  });

  it('and / or combine as Boolean algebra with and before or, whatever the spelling', () => {
    const atom = fc.record({ value: fc.constantFrom('a', 'b'), negate: fc.boolean() });
    fc.assert(
      fc.property(fc.array(atom, { minLength: 1, maxLength: 6 }), fc.array(fc.constantFrom('and', 'or', '-and', '-OR'), { minLength: 5, maxLength: 5 }), fc.constantFrom('a', 'b'), (atoms, joins, model) => {
        const rule = atoms.map((a, i) => `${i > 0 ? ` ${joins[i - 1]} ` : ''}(device.model ${a.negate ? '-ne' : 'eq'} "${a.value}")`).join('');
        // Reference: split on or, each part is an and of atoms.
        const truth = atoms.map((a) => (a.value === model) !== a.negate);
        let expected = false;
        let group = truth[0]!;
        for (let i = 1; i < atoms.length; i++) {
          if (joins[i - 1]!.toLowerCase().endsWith('or')) {
            expected ||= group;
            group = truth[i]!;
          } else {
            group &&= truth[i]!;
          }
        }
        expected ||= group;
        expect(matches(rule, { model })).toBe(expected);
      }),
    );
  });

  it('evaluation is total and -ne, -notIn, -notContains negate their positives', () => {
    fc.assert(
      fc.property(ruleTree, deviceProps, (tree, props) => {
        expect(evaluateFilterRule(tree, props)).toBe(oracle(tree, props));
        if (tree.kind === 'list') {
          const flipped: FilterNode = { ...tree, op: tree.op === 'in' ? 'notIn' : 'in' };
          expect(evaluateFilterRule(flipped, props)).toBe(!evaluateFilterRule(tree, props));
        }
        if (tree.kind === 'compare' && tree.property !== 'operatingSystemVersion') {
          const pairs: Record<string, string> = { eq: 'ne', ne: 'eq', contains: 'notContains', notContains: 'contains', startsWith: 'notStartsWith', notStartsWith: 'startsWith', endsWith: 'notEndsWith', notEndsWith: 'endsWith' };
          const flipped = { ...tree, op: pairs[tree.op] } as FilterNode;
          expect(evaluateFilterRule(flipped, props)).toBe(!evaluateFilterRule(tree, props));
        }
      }),
    );
  });

  it('-in is an or of -eq', () => {
    fc.assert(
      fc.property(fc.array(shortText, { minLength: 1, maxLength: 4 }), fc.option(shortText), (values, model) => {
        const list: FilterNode = { kind: 'list', property: 'model', op: 'in', values };
        const ors = values.some((v) => evaluateFilterRule({ kind: 'compare', property: 'model', op: 'eq', value: v }, { model }));
        expect(evaluateFilterRule(list, { model })).toBe(ors);
      }),
    );
  });

  it('any input is parsed or refused with a FilterRuleError, never anything else', () => {
    const pieces = fc.constantFrom('device.model', 'device.osVersion', '-eq', 'eq', 'and', 'or', '-in', '[', ']', ',', '(', ')', '"x"', '"', 'null', '$null', '10.0.1', '-gt', 'not', ' ', "'", '`', 'app.x');
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.array(pieces, { maxLength: 12 }).map((p) => p.join(' '))), (input) => {
        try {
          const tree = parseFilterRule(input);
          expect(parseFilterRule(printFilterRule(tree))).toEqual(tree);
        } catch (err) {
          expect(err).toBeInstanceOf(FilterRuleError);
          expect((err as FilterRuleError).position).toBeGreaterThanOrEqual(0);
          expect((err as FilterRuleError).position).toBeLessThanOrEqual(input.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
