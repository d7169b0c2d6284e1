import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mirrorOp, printFilter, printLiteral, type ComparisonOp, type FilterNode, type Literal, type StringFunction } from '../../src/graph/odata/filter-ast.js';
import { FILTER_LIMITS, FilterSyntaxError, parseFilter } from '../../src/graph/odata/filter-parser.js';

/* Property-based tests of the $filter parser: print → parse round trips, fuzzing, and limits. */

const RUNS = { numRuns: 300 };

// Words the grammar reads as operators or literals can't name a property.
const RESERVED = new Set(['and', 'or', 'not', 'true', 'false', 'null']);
const propertyName = fc
  .stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}(\/[A-Za-z_][A-Za-z0-9_]{0,6})?$/)
  .filter((s) => !RESERVED.has(s.toLowerCase()));

const tricky = fc.constantFrom("'", "''", '"', '\\', '%', '_', ' ', '(', ')', ',', 'é', '日本', '🚀', '\u0000', '\n', 'eq', ' or ', 'null');
const stringValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.string({ unit: tricky, maxLength: 8 }),
);
const stringLit = stringValue.map((value): Literal => ({ type: 'string', value }));
const literal: fc.Arbitrary<Literal> = fc.oneof(
  stringLit,
  fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })).map((value): Literal => ({ type: 'number', value })),
  fc.boolean().map((value): Literal => ({ type: 'boolean', value })),
  fc.constant<Literal>({ type: 'null' }),
  fc
    .date({ min: new Date('0001-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true })
    .map((d): Literal => ({ type: 'datetime', value: d.toISOString() })),
  fc.tuple(fc.uuid(), fc.boolean()).map(([u, upper]): Literal => ({ type: 'guid', value: upper ? u.toUpperCase() : u })),
);

const comparison = fc.record({
  kind: fc.constant('compare' as const),
  op: fc.constantFrom<ComparisonOp>('eq', 'ne', 'lt', 'gt', 'le', 'ge'),
  property: propertyName,
  value: literal,
});
const stringFunction = fc.record({
  kind: fc.constant('function' as const),
  name: fc.constantFrom<StringFunction>('startswith', 'endswith', 'contains'),
  property: propertyName,
  value: stringLit,
});

const filterTree: fc.Arbitrary<FilterNode> = fc.letrec<{ node: FilterNode }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 6, depthIdentifier: 'filter' },
    comparison,
    stringFunction,
    fc.record({ kind: fc.constantFrom('and' as const, 'or' as const), left: tie('node'), right: tie('node') }),
    fc.record({ kind: fc.constant('not' as const), expr: tie('node') }),
  ),
})).node;

/** What the parser hands back for a tree: GUIDs lower-cased, -0 as 0. */
function normalise(node: FilterNode): FilterNode {
  switch (node.kind) {
    case 'and':
    case 'or':
      return { kind: node.kind, left: normalise(node.left), right: normalise(node.right) };
    case 'not':
      return { kind: 'not', expr: normalise(node.expr) };
    default: {
      const v = node.value;
      const value: Literal =
        v.type === 'guid' ? { type: 'guid', value: v.value.toLowerCase() } : v.type === 'number' && Object.is(v.value, -0) ? { type: 'number', value: 0 } : v;
      return { ...node, value } as FilterNode;
    }
  }
}

function countNodes(node: FilterNode): number {
  if (node.kind === 'and' || node.kind === 'or') return 1 + countNodes(node.left) + countNodes(node.right);
  if (node.kind === 'not') return 1 + countNodes(node.expr);
  return 1;
}

/** Parses, and fails the test on anything thrown that isn't a FilterSyntaxError with a sane position. */
function parseOrSyntaxError(input: string): FilterNode | FilterSyntaxError {
  try {
    return parseFilter(input);
  } catch (err) {
    if (!(err instanceof FilterSyntaxError)) throw new Error(`parseFilter(${JSON.stringify(input)}) threw ${String(err)}`);
    expect(err.message.length).toBeGreaterThan(0);
    expect(err.position).toBeGreaterThanOrEqual(0);
    expect(err.position).toBeLessThanOrEqual(input.length);
    return err;
  }
}

describe('$filter parser: printed trees parse back to themselves', () => {
  it('parse(print(tree)) equals the tree', () => {
    fc.assert(
      fc.property(filterTree, (tree) => {
        expect(parseFilter(printFilter(tree))).toEqual(normalise(tree));
      }),
      RUNS,
    );
  });

  it('a literal on the left mirrors the operator', () => {
    fc.assert(
      fc.property(comparison, (c) => {
        const parsed = parseFilter(`${printLiteral(c.value)} ${c.op} ${c.property}`);
        expect(parsed).toEqual(normalise({ ...c, op: mirrorOp(c.op) }));
      }),
      RUNS,
    );
  });

  it('ignores whitespace and the case of keywords, operators, functions and literals', () => {
    fc.assert(
      fc.property(filterTree, fc.gen(), (tree, g) => {
        const ws = () => g(fc.constantFrom, '', ' ', '  ', '\t', '\r\n');
        const sp = () => g(fc.constantFrom, ' ', '  ', '\t', '\n ');
        const kw = (w: string) => (g(fc.boolean) ? w.toUpperCase() : w);
        const lit = (l: Literal) => (l.type === 'boolean' || l.type === 'null' ? kw(printLiteral(l)) : printLiteral(l));
        const noisy = (n: FilterNode): string => {
          switch (n.kind) {
            case 'and':
            case 'or':
              return `(${ws()}${noisy(n.left)}${sp()}${kw(n.kind)}${sp()}${noisy(n.right)}${ws()})`;
            case 'not':
              return `${kw('not')}${sp()}${ws()}(${noisy(n.expr)})`;
            case 'compare':
              return `${n.property}${sp()}${kw(n.op)}${sp()}${lit(n.value)}`;
            case 'function':
              return `${kw(n.name)}(${ws()}${n.property}${ws()},${ws()}${lit(n.value)}${ws()})`;
          }
        };
        expect(parseFilter(`${ws()}${noisy(tree)}${ws()}`)).toEqual(normalise(tree));
      }),
      RUNS,
    );
  });

  it('normalises date/time literals with offsets to UTC', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: -12 * 60, max: 14 * 60 }),
        (d, offsetMinutes) => {
          const local = new Date(d.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 23);
          const sign = offsetMinutes < 0 ? '-' : '+';
          const abs = Math.abs(offsetMinutes);
          const text = `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
          expect(parseFilter(`at ge ${text}`)).toEqual({ kind: 'compare', op: 'ge', property: 'at', value: { type: 'datetime', value: d.toISOString() } });
        },
      ),
      RUNS,
    );
  });

  it('reads the literal forms Graph clients send', () => {
    expect(parseFilter("displayName eq 'O''Brien'")).toEqual({ kind: 'compare', op: 'eq', property: 'displayName', value: { type: 'string', value: "O'Brien" } });
    expect(parseFilter('enrolledDateTime gt 2024-01-01')).toMatchObject({ value: { type: 'datetime', value: '2024-01-01T00:00:00.000Z' } });
    expect(parseFilter('t lt 2024-05-06T07:08Z')).toMatchObject({ value: { type: 'datetime', value: '2024-05-06T07:08:00.000Z' } });
    expect(parseFilter('t lt 2024-05-06T07:08:09.123456789Z')).toMatchObject({ value: { type: 'datetime', value: '2024-05-06T07:08:09.123Z' } });
    expect(parseFilter('id eq 0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D')).toMatchObject({ value: { type: 'guid', value: '0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d' } });
    expect(parseFilter('n ge -12.5e1')).toMatchObject({ value: { type: 'number', value: -125 } });
    expect(parseFilter("contains(deviceName,'ipad')")).toEqual({ kind: 'function', name: 'contains', property: 'deviceName', value: { type: 'string', value: 'ipad' } });
    expect(parseFilter('deviceCategory/displayName eq null')).toEqual({ kind: 'compare', op: 'eq', property: 'deviceCategory/displayName', value: { type: 'null' } });
    // and binds tighter than or; chains are left-associative
    expect(printFilter(parseFilter('a eq 1 or b eq 2 and c eq 3 or d eq 4'))).toBe('((a eq 1 or (b eq 2 and c eq 3)) or d eq 4)');
    expect(printFilter(parseFilter('not a eq 1 and b eq 2'))).toBe('(not (a eq 1) and b eq 2)');
  });
});

describe('$filter parser: bad input', () => {
  const refuse = (input: string, message: RegExp) => {
    const r = parseOrSyntaxError(input);
    expect(r, input).toBeInstanceOf(FilterSyntaxError);
    expect((r as FilterSyntaxError).message).toMatch(message);
  };

  it('refuses malformed expressions with a position', () => {
    refuse('', /empty/);
    refuse('   ', /empty/);
    refuse("a eq 'open", /unterminated string/);
    refuse('a eq', /expected a value/);
    refuse('a 1', /comparison operator/);
    refuse('a has 1', /comparison operator/);
    refuse('a eq b', /one property and one literal/);
    refuse('1 eq 2', /one property and one literal/);
    refuse('(a eq 1', /expected '\)'/);
    refuse('a eq 1)', /unexpected text/);
    refuse('a eq 1 b eq 2', /unexpected text/);
    refuse('a eq 1 and', /unexpected end/);
    refuse('substringof(a,\'x\')', /unsupported function 'substringof'/);
    refuse("startswith(a, 1)", /needs a string literal/);
    refuse("startswith('x', a)", /property name/);
    refuse("startswith(a 'x')", /expected ','/);
    refuse('a eq #', /unexpected character '#'/);
    refuse('a eq 1e400', /out of range/);
    refuse('a eq 2023-02-29', /invalid date\/time/);
    refuse('a eq 2024-04-31', /invalid date\/time/);
    refuse('a eq 2024-13-01', /invalid date\/time/);
    refuse('a eq 2024-01-01T24:00Z', /invalid date\/time/);
    refuse('a eq 2024-01-01T10:60Z', /invalid date\/time/);
    expect((parseOrSyntaxError('a eq 1 and b eq') as FilterSyntaxError).position).toBe('a eq 1 and b eq'.length);
    expect((parseOrSyntaxError('a eq 1 ) ') as FilterSyntaxError).position).toBe(7);
  });

  it('random strings give a tree or a FilterSyntaxError, nothing else', () => {
    const filterChars = fc.constantFrom(...'abxyz019 ()\',-.:/eqntlgrdsoTZ_%\\"@$#'.split(''), ' eq ', ' and ', ' or ', 'not ', 'startswith(', 'null', 'true', '2024-01-01', "''");
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: filterChars, maxLength: 40 })), (input) => {
        const r = parseOrSyntaxError(input);
        if (!(r instanceof FilterSyntaxError)) expect(parseFilter(printFilter(r))).toEqual(r);
      }),
      { numRuns: 1000 },
    );
  });

  it('mutated valid filters give a tree or a FilterSyntaxError, and whatever parses prints back the same', () => {
    const edit = fc.record({ at: fc.nat(), len: fc.nat({ max: 6 }), insert: fc.string({ unit: fc.constantFrom("'", '(', ')', ' ', ',', 'a', '1', '-', 'not ', ' or ', 'Z'), maxLength: 3 }) });
    fc.assert(
      fc.property(filterTree, fc.array(edit, { minLength: 1, maxLength: 4 }), (tree, edits) => {
        let s = printFilter(tree);
        for (const e of edits) {
          const at = s.length === 0 ? 0 : e.at % (s.length + 1);
          s = s.slice(0, at) + e.insert + s.slice(at + e.len);
        }
        const r = parseOrSyntaxError(s);
        if (!(r instanceof FilterSyntaxError)) expect(parseFilter(printFilter(r))).toEqual(r);
      }),
      RUNS,
    );
  });

  it('finishes on pathological input (each refused by a limit or a syntax error)', () => {
    const max = FILTER_LIMITS.maxLength;
    for (const input of [
      '('.repeat(max),
      ')'.repeat(max),
      'not '.repeat(Math.floor(max / 4)),
      "'".repeat(max - 1),
      '1'.repeat(max),
      'a'.repeat(max),
      '2024-01-01'.repeat(Math.floor(max / 10)),
      'a eq 1 or '.repeat(Math.floor(max / 10)),
      `${'('.repeat(2000)}a eq 1${')'.repeat(2000)}`,
    ]) {
      expect(parseOrSyntaxError(input)).toBeInstanceOf(FilterSyntaxError);
    }
  });
});

describe('$filter parser limits, at the boundary on both sides', () => {
  it(`length: ${FILTER_LIMITS.maxLength} characters parse, one more is refused`, () => {
    const padded = (len: number) => `a eq '${'x'.repeat(len - "a eq ''".length)}'`;
    expect(padded(FILTER_LIMITS.maxLength)).toHaveLength(FILTER_LIMITS.maxLength);
    expect(parseFilter(padded(FILTER_LIMITS.maxLength)).kind).toBe('compare');
    const err = parseOrSyntaxError(padded(FILTER_LIMITS.maxLength + 1));
    expect(err).toBeInstanceOf(FilterSyntaxError);
    expect((err as Error).message).toBe(`the expression is longer than ${FILTER_LIMITS.maxLength} characters`);
  });

  it(`depth: ${FILTER_LIMITS.maxDepth} nested groups or nots parse, one more is refused`, () => {
    const groups = (n: number) => `${'('.repeat(n)}a eq 1${')'.repeat(n)}`;
    const nots = (n: number) => `${'not '.repeat(n)}a eq 1`;
    const mixed = (n: number) => `${'not ('.repeat(n / 2)}a eq 1${')'.repeat(n / 2)}`;
    for (const make of [groups, nots, mixed]) {
      expect(() => parseFilter(make(FILTER_LIMITS.maxDepth))).not.toThrow();
      const err = parseOrSyntaxError(make(FILTER_LIMITS.maxDepth + 2 - (make === mixed ? 0 : 1)));
      expect(err).toBeInstanceOf(FilterSyntaxError);
      expect((err as Error).message).toBe(`the expression is nested deeper than ${FILTER_LIMITS.maxDepth} levels`);
    }
    // a long flat chain is not deep
    expect(() => parseFilter(Array.from({ length: 90 }, (_, i) => `a eq ${i}`).join(' and '))).not.toThrow();
  });

  it(`node count: ${FILTER_LIMITS.maxNodes} nodes parse, one more is refused`, () => {
    const chain = (comparisons: number) => Array.from({ length: comparisons }, (_, i) => `a eq ${i}`).join(' or ');
    const atLimit = `not (${chain(FILTER_LIMITS.maxNodes / 2)})`; // 100 comparisons + 99 or + 1 not
    expect(countNodes(parseFilter(atLimit))).toBe(FILTER_LIMITS.maxNodes);
    const err = parseOrSyntaxError(chain(FILTER_LIMITS.maxNodes / 2 + 1)); // 101 + 100
    expect(err).toBeInstanceOf(FilterSyntaxError);
    expect((err as Error).message).toBe(`the expression has more than ${FILTER_LIMITS.maxNodes} terms and operators`);
    expect(countNodes(parseFilter(chain(FILTER_LIMITS.maxNodes / 2)))).toBe(FILTER_LIMITS.maxNodes - 1);
  });

  it('generated trees within the limits always parse', () => {
    fc.assert(
      fc.property(filterTree, (tree) => {
        fc.pre(printFilter(tree).length <= FILTER_LIMITS.maxLength);
        expect(countNodes(parseFilter(printFilter(tree)))).toBe(countNodes(tree));
      }),
      { numRuns: 100 },
    );
  });
});
