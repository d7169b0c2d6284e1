import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphError } from '../../src/graph/errors.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type EntityModel } from '../../src/graph/odata/model.js';
import { decodeSkipToken, encodeSkipToken, parseQueryOptions } from '../../src/graph/odata/query-options.js';

const model: EntityModel = {
  typeName: 'microsoft.graph.widget',
  keyColumn: 'id',
  properties: {
    id: { type: 'guid', column: 'id' },
    displayName: { type: 'string', column: 'display_name', caseInsensitive: true },
    serial: { type: 'string', column: 'serial', filterOps: ['eq'] },
    count: { type: 'int', column: 'count' },
    enabled: { type: 'boolean', column: 'enabled' },
    createdDateTime: { type: 'datetime', column: 'created_at' },
    state: { type: 'enum', column: 'state', enumValues: ['active', 'retired', 'pendingReset'] },
    tags: { type: 'collection', column: 'tags' },
    settings: { type: 'object' },
    notes: { type: 'string', column: 'notes', sortable: false },
    noColumn: { type: 'string' },
    'owner/displayName': { type: 'string', column: 'owner_name', filterOnly: true },
  },
};

function refusal(raw: Record<string, unknown>, m: EntityModel = model): GraphError {
  try {
    parseQueryOptions(m, raw);
  } catch (err) {
    expect(err).toBeInstanceOf(GraphError);
    const ge = err as GraphError;
    expect(ge.statusCode).toBe(400);
    expect(ge.code).toBe('BadRequest');
    return ge;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
}

/** Refused, with a message that names `name` (quoted, unless it is the option itself) and a target. */
function expectRefused(raw: Record<string, unknown>, name: string, also?: RegExp) {
  const err = refusal(raw);
  expect(err.message, JSON.stringify(raw)).toContain(name in raw ? name : `'${name}'`);
  expect(err.options.target, JSON.stringify(raw)).toBe(name);
  if (also) expect(err.message).toMatch(also);
  return err;
}

describe('query options: what is accepted', () => {
  it('defaults with no options, and ignores non-$ parameters (function parameters land there)', () => {
    expect(parseQueryOptions(model, { enrollmentType: 'ios' })).toEqual({
      filter: undefined,
      orderBy: [],
      select: undefined,
      count: false,
      pageSize: DEFAULT_PAGE_SIZE,
      offset: 0,
      topGiven: false,
    });
    expect(parseQueryOptions({ ...model, defaultPageSize: 25 }, {}).pageSize).toBe(25);
  });

  it('reads every supported option', () => {
    const q = parseQueryOptions(model, {
      $top: '10',
      $skip: '20',
      $filter: "displayName eq 'x' and count gt 3",
      $select: 'id, displayName',
      $orderby: 'displayName desc, count ASC,createdDateTime',
      $count: 'true',
    });
    expect(q).toMatchObject({
      pageSize: 10,
      offset: 20,
      select: ['id', 'displayName'],
      count: true,
      topGiven: true,
      orderBy: [
        { property: 'displayName', direction: 'desc' },
        { property: 'count', direction: 'asc' },
        { property: 'createdDateTime', direction: 'asc' },
      ],
    });
    expect(q.filter?.kind).toBe('and');
    expect(parseQueryOptions(model, { $select: '*' }).select).toBeUndefined();
    expect(parseQueryOptions(model, { $count: 'false' }).count).toBe(false);
  });

  it(`$top: 0 and ${MAX_PAGE_SIZE} are allowed, ${MAX_PAGE_SIZE + 1} is not; a model may lower the maximum`, () => {
    expect(parseQueryOptions(model, { $top: '0' }).pageSize).toBe(0);
    expect(parseQueryOptions(model, { $top: String(MAX_PAGE_SIZE) }).pageSize).toBe(MAX_PAGE_SIZE);
    expectRefused({ $top: String(MAX_PAGE_SIZE + 1) }, '$top', /between 0 and 999/);
    const small = { ...model, maxPageSize: 50 };
    expect(parseQueryOptions(small, { $top: '50' }).pageSize).toBe(50);
    expect(refusal({ $top: '51' }, small).message).toContain('between 0 and 50');
  });

  it('$skiptoken round-trips the offset it encodes', () => {
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), (o) => {
        expect(decodeSkipToken(encodeSkipToken(o))).toBe(o);
        expect(parseQueryOptions(model, { $skiptoken: encodeSkipToken(o) }).offset).toBe(o);
      }),
      { numRuns: 100 },
    );
  });

  it('normalises literals to the property type', () => {
    const f = (filter: string) => parseQueryOptions(model, { $filter: filter }).filter;
    expect(f("state eq 'PENDINGRESET'")).toMatchObject({ value: { type: 'string', value: 'pendingReset' } }); // enum names ignore case
    expect(f("id eq 'ABCDEF01-2345-6789-ABCD-EF0123456789'")).toMatchObject({ value: { type: 'guid', value: 'abcdef01-2345-6789-abcd-ef0123456789' } });
    expect(f("id eq '0'")).toMatchObject({ value: { type: 'string', value: '0' } });
    expect(f("createdDateTime gt '2024-01-01T10:00:00+02:00'")).toMatchObject({ value: { type: 'datetime', value: '2024-01-01T08:00:00.000Z' } });
    expect(f('createdDateTime gt 2024-01-01')).toMatchObject({ value: { type: 'datetime', value: '2024-01-01T00:00:00.000Z' } });
    expect(f('count eq 2147483647')).toMatchObject({ value: { type: 'number', value: 2147483647 } });
    expect(f('count eq -2147483648')).toMatchObject({ value: { type: 'number', value: -2147483648 } });
    expect(f('count eq null')).toMatchObject({ value: { type: 'null' } });
    expect(f("owner/displayName eq 'x'")).toMatchObject({ property: 'owner/displayName' });
    expect(f("startswith(displayName,'a') or not enabled eq true")).toMatchObject({ kind: 'or' });
  });
});

describe('query options: every refusal names the option or property', () => {
  it('unknown, unsupported, upper-case and repeated options', () => {
    expectRefused({ $bogus: '1' }, '$bogus', /not supported/);
    for (const o of ['$expand', '$search', '$format', '$apply', '$compute', '$levels', '$deltatoken']) {
      expectRefused({ [o]: 'x' }, o, /not supported on this resource/);
    }
    expectRefused({ $Expand: 'x' }, '$Expand', /not supported/);
    expectRefused({ $TOP: '5' }, '$TOP', /lower case \('\$top'\)/);
    expectRefused({ $Filter: "id eq '0'" }, '$Filter', /lower case/);
    expectRefused({ $orderBy: 'id' }, '$orderBy', /lower case \('\$orderby'\)/);
    expectRefused({ $skipToken: 'x' }, '$skipToken', /lower case/);
    for (const o of ['$top', '$skip', '$filter', '$select', '$orderby', '$count', '$skiptoken']) {
      expectRefused({ [o]: ['1', '2'] }, o, /more than once/);
    }
  });

  it('bad $top and $skip', () => {
    for (const v of ['-1', '1.5', 'abc', '', '1e2', '+5', '0x10', '9999999999']) {
      expectRefused({ $top: v }, '$top');
      expectRefused({ $skip: v }, '$skip', /non-negative integer/);
    }
    expectRefused({ $top: '1000' }, '$top');
  });

  it('bad $skiptoken, and $skip with $skiptoken', () => {
    const token = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const t of ['garbage', '', '%%%', token({ o: -1 }), token({ o: 1.5 }), token({ o: '5' }), token({ o: 1e300 }), token(null), token([1]), token({})]) {
      expectRefused({ $skiptoken: t }, '$skiptoken', /not one this service issued/);
    }
    expectRefused({ $skip: '1', $skiptoken: encodeSkipToken(5) }, '$skiptoken', /'\$skip'/);
  });

  it('unknown properties in $filter, $select and $orderby', () => {
    expectRefused({ $filter: "colour eq 'red'" }, 'colour', /\$filter/);
    expectRefused({ $filter: "id eq '0' or colour eq 'red'" }, 'colour');
    expectRefused({ $select: 'id,colour' }, 'colour', /\$select/);
    expectRefused({ $orderby: 'colour desc' }, 'colour', /\$orderby/);
    expectRefused({ $filter: "DisplayName eq 'x'" }, 'DisplayName'); // property names are case-sensitive
  });

  it('operators a property does not allow', () => {
    const op = /operator '(\w+)' is not supported on property/;
    expectRefused({ $filter: 'enabled gt true' }, 'enabled', op);
    expectRefused({ $filter: "id lt 'abc'" }, 'id', op);
    expectRefused({ $filter: "startswith(state,'act')" }, 'state', op);
    expectRefused({ $filter: "serial ne 'x'" }, 'serial', op);
    expectRefused({ $filter: "contains(serial,'x')" }, 'serial', op);
    expectRefused({ $filter: "tags eq 'x'" }, 'tags', op);
    expectRefused({ $filter: "settings eq 'x'" }, 'settings', op);
    expectRefused({ $filter: "noColumn eq 'x'" }, 'noColumn', op);
    expectRefused({ $filter: "startswith(count,'1')" }, 'count', op);
    expectRefused({ $filter: 'count lt null' }, 'count', /null can only be compared with 'eq' or 'ne'/);
  });

  it('literals of the wrong type', () => {
    expectRefused({ $filter: 'displayName eq 5' }, 'displayName', /type String/);
    expectRefused({ $filter: 'displayName eq true' }, 'displayName', /type String/);
    expectRefused({ $filter: "count eq '5'" }, 'count', /type Int32/);
    expectRefused({ $filter: 'count eq 1.5' }, 'count', /type Int32/);
    expectRefused({ $filter: 'count eq 2147483648' }, 'count', /out of range.*Int32/);
    expectRefused({ $filter: 'count eq -2147483649' }, 'count', /out of range/);
    expectRefused({ $filter: 'count eq 1e20' }, 'count', /out of range/);
    expectRefused({ $filter: "enabled eq 'true'" }, 'enabled', /type Boolean/);
    expectRefused({ $filter: 'enabled eq 1' }, 'enabled', /type Boolean/);
    expectRefused({ $filter: 'createdDateTime gt 5' }, 'createdDateTime', /DateTimeOffset/);
    expectRefused({ $filter: "createdDateTime gt 'yesterday'" }, 'createdDateTime', /DateTimeOffset/);
    expectRefused({ $filter: "createdDateTime gt '2024-02-30'" }, 'createdDateTime', /DateTimeOffset/);
    expectRefused({ $filter: "createdDateTime gt '2024-01-01T10:00:00'" }, 'createdDateTime', /DateTimeOffset/); // no zone: which one?
    expectRefused({ $filter: 'id eq 5' }, 'id', /Guid/);
    expectRefused({ $filter: 'state eq 5' }, 'state', /enumeration/);
  });

  it('enum members outside the declared set, listing the allowed ones', () => {
    const err = expectRefused({ $filter: "state eq 'broken'" }, 'state');
    expect(err.message).toContain("'broken'");
    expect(err.message).toContain('active, retired, pendingReset');
  });

  it('bad $filter syntax names $filter and the position', () => {
    const err = expectRefused({ $filter: "displayName eq 'x' and" }, '$filter');
    expect(err.message).toMatch(/at position \d+/);
    expectRefused({ $filter: '' }, '$filter', /empty/);
    expectRefused({ $filter: `${'('.repeat(40)}id eq '0'${')'.repeat(40)}` }, '$filter', /nested deeper than 32/);
  });

  it('bad $select, $orderby and $count', () => {
    expectRefused({ $select: 'id,,displayName' }, '$select', /empty property name/);
    expectRefused({ $select: '' }, '$select');
    expectRefused({ $select: 'owner/displayName' }, 'owner/displayName', /\$select/);
    expectRefused({ $orderby: 'displayName up' }, '$orderby', /asc\|desc/);
    expectRefused({ $orderby: '' }, '$orderby');
    expectRefused({ $orderby: 'notes' }, 'notes', /\$orderby/);
    expectRefused({ $orderby: 'tags' }, 'tags', /\$orderby/);
    expectRefused({ $orderby: 'noColumn' }, 'noColumn', /\$orderby/);
    expectRefused({ $count: 'yes' }, '$count', /true or false/);
    expectRefused({ $count: 'TRUE' }, '$count');
  });

  it('never throws anything but a 400 GraphError on arbitrary option values', () => {
    const options = fc.constantFrom('$top', '$skip', '$skiptoken', '$filter', '$select', '$orderby', '$count', '$expand', '$x', 'plain');
    fc.assert(
      fc.property(fc.dictionary(options, fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.string(), { minLength: 2, maxLength: 2 }))), (raw) => {
        try {
          parseQueryOptions(model, raw);
        } catch (err) {
          expect(err).toBeInstanceOf(GraphError);
          expect((err as GraphError).statusCode).toBe(400);
        }
      }),
      { numRuns: 300 },
    );
  });
});
