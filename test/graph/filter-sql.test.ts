import type { FastifyRequest } from 'fastify';
import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countCollection, listCollection, listInMemory } from '../../src/graph/collection.js';
import { applyQuery } from '../../src/graph/odata/compile.js';
import { evaluateFilter } from '../../src/graph/odata/evaluate.js';
import { printFilter, type ComparisonOp, type FilterNode, type Literal, type StringFunction } from '../../src/graph/odata/filter-ast.js';
import { allowedOperators, type EntityModel, type PropertyDef } from '../../src/graph/odata/model.js';
import { parseQueryOptions } from '../../src/graph/odata/query-options.js';
import type { Store } from '../../src/store/db.js';
import { createTestStore, testDialect } from '../helpers/store.js';

/*
 * Differential test: the SQL compiler (compile.ts) against the in-memory evaluator (evaluate.ts),
 * on whichever dialect this project runs. Strings are ASCII because SQLite's lower() is ASCII-only.
 */

interface ScratchRow {
  id: string;
  name: string | null;
  ci_name: string | null;
  n: number | null;
  flag: number | null;
  at: string | null;
  kind: string | null;
  gid: string | null;
}
interface ScratchDb {
  odata_scratch: ScratchRow;
}
type Entity = Record<string, unknown>;

const KINDS = ['alpha', 'Beta', 'gammaRay'] as const;
const model: EntityModel = {
  typeName: 'test.scratchThing',
  keyColumn: 'id',
  properties: {
    id: { type: 'string', column: 'id' },
    name: { type: 'string', column: 'name' },
    ciName: { type: 'string', column: 'ci_name', caseInsensitive: true },
    n: { type: 'int', column: 'n' },
    flag: { type: 'boolean', column: 'flag' },
    at: { type: 'datetime', column: 'at' },
    kind: { type: 'enum', column: 'kind', enumValues: KINDS },
    gid: { type: 'guid', column: 'gid' },
  },
};

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
// Small alphabets make equal values and prefix matches common; %, _ and \ prove LIKE escaping.
const asciiString = fc.string({ unit: fc.constantFrom('a', 'A', 'b', 'B', 'z', '%', '_', '\\', "'", ' ', '1'), maxLength: 4 });
const DATES = ['2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.001Z', '2023-06-15T12:30:00.000Z', '2024-02-29T23:59:59.999Z', '1999-12-31T23:59:59.000Z'];
const date = fc.oneof(
  fc.constantFrom(...DATES),
  fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
);
const GUIDS = ['00000000-0000-0000-0000-000000000000', '0a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d', 'ffffffff-ffff-4fff-bfff-ffffffffffff', '12345678-9abc-4def-8123-456789abcdef'];
const nullable = <T,>(a: fc.Arbitrary<T>) => fc.option(a, { freq: 5, nil: null });

const rowArb = fc.record({
  name: nullable(asciiString),
  ci_name: nullable(asciiString),
  n: nullable(fc.oneof({ weight: 8, arbitrary: fc.integer({ min: -5, max: 5 }) }, fc.constantFrom(INT32_MIN, INT32_MAX))),
  flag: nullable(fc.constantFrom(0, 1)),
  at: nullable(date),
  kind: nullable(fc.constantFrom(...KINDS)),
  gid: nullable(fc.constantFrom(...GUIDS)),
});

function toEntity(r: ScratchRow): Entity {
  return { id: r.id, name: r.name, ciName: r.ci_name, n: r.n, flag: r.flag === null ? null : r.flag === 1, at: r.at, kind: r.kind, gid: r.gid };
}

const randomCase = (s: string) =>
  fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((flags) => [...s].map((c, i) => (flags[i] ? c.toUpperCase() : c.toLowerCase())).join(''));

function literalFor(def: PropertyDef, rows: ScratchRow[], column: keyof ScratchRow): fc.Arbitrary<Literal> {
  const present = [...new Set(rows.map((r) => r[column]).filter((v) => v !== null))];
  switch (def.type) {
    case 'string': {
      const fromRows = present.length ? fc.constantFrom(...(present as string[])) : asciiString;
      const s = def.caseInsensitive ? fc.oneof(fromRows, fromRows.chain(randomCase), asciiString) : fc.oneof(fromRows, asciiString);
      return s.map((value) => ({ type: 'string', value }));
    }
    case 'int':
      return fc.oneof(fc.integer({ min: -6, max: 6 }), fc.constantFrom(INT32_MIN, INT32_MAX, INT32_MIN + 1, INT32_MAX - 1)).map((value) => ({ type: 'number', value }));
    case 'boolean':
      return fc.boolean().map((value) => ({ type: 'boolean', value }));
    case 'datetime':
      return fc.tuple(date, fc.boolean()).map(([value, quoted]) => (quoted ? { type: 'string', value } : { type: 'datetime', value }));
    case 'enum':
      return fc.constantFrom(...KINDS).chain(randomCase).map((value) => ({ type: 'string', value }));
    case 'guid':
      return fc.tuple(fc.constantFrom(...GUIDS, '99999999-9999-4999-8999-999999999999'), fc.boolean(), fc.boolean()).map(([g, upper, quoted]) => {
        const value = upper ? g.toUpperCase() : g;
        return quoted ? { type: 'string', value } : { type: 'guid', value };
      });
    default:
      throw new Error(`no literal for ${def.type}`);
  }
}

const COLUMN_OF: Record<string, keyof ScratchRow> = { id: 'id', name: 'name', ciName: 'ci_name', n: 'n', flag: 'flag', at: 'at', kind: 'kind', gid: 'gid' };

function filterArb(rows: ScratchRow[], orderedStrings: boolean): fc.Arbitrary<FilterNode> {
  const leaves: fc.Arbitrary<FilterNode>[] = [];
  for (const [property, def] of Object.entries(model.properties)) {
    const ops = allowedOperators(def);
    let compareOps = ops.filter((o): o is ComparisonOp => ['eq', 'ne', 'lt', 'gt', 'le', 'ge'].includes(o));
    // Without a bytewise collation, PostgreSQL orders strings differently from JavaScript.
    if (def.type === 'string' && !orderedStrings) compareOps = compareOps.filter((o) => o === 'eq' || o === 'ne');
    const functions = ops.filter((o): o is StringFunction => ['startswith', 'endswith', 'contains'].includes(o));
    const value = literalFor(def, rows, COLUMN_OF[property]!);
    leaves.push(fc.record({ kind: fc.constant('compare' as const), op: fc.constantFrom(...compareOps), property: fc.constant(property), value }));
    leaves.push(fc.record({ kind: fc.constant('compare' as const), op: fc.constantFrom<ComparisonOp>('eq', 'ne'), property: fc.constant(property), value: fc.constant<Literal>({ type: 'null' }) }));
    if (functions.length) {
      leaves.push(
        fc.record({
          kind: fc.constant('function' as const),
          name: fc.constantFrom(...functions),
          property: fc.constant(property),
          value: literalFor(def, rows, COLUMN_OF[property]!).map((l) => (l.type === 'string' ? l : { type: 'string' as const, value: '' })),
        }),
      );
    }
  }
  const leaf = fc.oneof(...leaves);
  return fc.letrec<{ node: FilterNode }>((tie) => ({
    node: fc.oneof(
      { maxDepth: 4, depthIdentifier: 'diff' },
      leaf,
      fc.record({ kind: fc.constantFrom('and' as const, 'or' as const), left: tie('node'), right: tie('node') }),
      fc.record({ kind: fc.constant('not' as const), expr: tie('node') }),
    ),
  })).node;
}

function fakeRequest(query: Record<string, string>): FastifyRequest {
  const qs = new URLSearchParams(query).toString();
  return { query, url: `/beta/scratch${qs ? `?${qs}` : ''}`, server: { publicUrl: 'http://openenroll.test' } } as unknown as FastifyRequest;
}

describe(`SQL compiler agrees with the in-memory evaluator (${testDialect()})`, () => {
  let store: Store;
  let db: Kysely<ScratchDb>;
  let rows: ScratchRow[];
  let entities: Entity[];
  let orderedStrings = true;
  const seed = Number(process.env.ODATA_DIFF_SEED ?? Date.now() % 2 ** 31);
  const runs = { numRuns: 100, seed };

  beforeAll(async () => {
    store = await createTestStore();
    db = store.db as unknown as Kysely<ScratchDb>;
    await db.schema
      .createTable('odata_scratch')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text')
      .addColumn('ci_name', 'text')
      .addColumn('n', 'integer')
      .addColumn('flag', 'integer')
      .addColumn('at', 'text')
      .addColumn('kind', 'text')
      .addColumn('gid', 'text')
      .execute();
    rows = fc.sample(rowArb, { numRuns: 200, seed }).map((r, i) => ({ id: `r${String(i).padStart(3, '0')}`, ...r }));
    // A few rows that only differ in case or in LIKE metacharacters.
    rows.push(
      { id: 'x001', name: 'a%b', ci_name: 'A%B', n: 0, flag: 1, at: DATES[0]!, kind: 'alpha', gid: GUIDS[0]! },
      { id: 'x002', name: 'axb', ci_name: 'axb', n: 0, flag: 0, at: DATES[0]!, kind: 'Beta', gid: GUIDS[1]! },
      { id: 'x003', name: 'a_b', ci_name: 'a_B', n: null, flag: null, at: null, kind: null, gid: null },
      { id: 'x004', name: 'a\\b', ci_name: 'A\\b', n: 1, flag: 1, at: DATES[1]!, kind: 'gammaRay', gid: GUIDS[2]! },
      { id: 'x005', name: "it's", ci_name: "IT'S", n: -1, flag: 0, at: DATES[2]!, kind: 'alpha', gid: GUIDS[3]! },
    );
    for (let i = 0; i < rows.length; i += 50) await db.insertInto('odata_scratch').values(rows.slice(i, i + 50)).execute();
    entities = rows.map(toEntity).sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
    if (store.dialect === 'postgres') {
      const { rows: coll } = await sql<{ c: string }>`select datcollate as c from pg_database where datname = current_database()`.execute(store.db);
      orderedStrings = ['C', 'POSIX'].includes(coll[0]?.c ?? '') || /^C\./.test(coll[0]?.c ?? '');
    }
  });
  afterAll(async () => store?.close());

  const oracle = (filter: FilterNode | undefined) => entities.filter((e) => !filter || evaluateFilter(model, filter, e)).map((e) => e.id);

  it('selects the same rows for random filters, and counts them the same', async () => {
    await fc.assert(
      fc.asyncProperty(filterArb(rows, orderedStrings), async (tree) => {
        const text = printFilter(tree);
        const query = parseQueryOptions(model, { $filter: text });
        const got = (await applyQuery(db.selectFrom('odata_scratch').select('id'), model, query).execute()).map((r) => r.id);
        const expected = oracle(query.filter);
        expect(got, `seed ${seed}: $filter=${text}`).toEqual(expected);
        expect(await countCollection(db.selectFrom('odata_scratch').selectAll(), model, query), text).toBe(expected.length);
      }),
      runs,
    );
  });

  it('selects what the hand-written cases say (LIKE metacharacters are literal, nulls)', async () => {
    const ids = async (filter: string) => {
      const query = parseQueryOptions(model, { $filter: filter });
      const got = (await applyQuery(db.selectFrom('odata_scratch').select('id'), model, query).execute()).map((r) => r.id);
      expect(got, filter).toEqual(oracle(query.filter));
      return got.filter((id) => id.startsWith('x'));
    };
    expect(await ids("name eq 'a%b'")).toEqual(['x001']);
    expect(await ids("startswith(name,'a%')")).toEqual(['x001']);
    expect(await ids("contains(name,'_')")).toEqual(['x003']);
    expect(await ids("endswith(name,'\\b')")).toEqual(['x004']);
    expect(await ids("contains(name,'''')")).toEqual(['x005']);
    expect(await ids("startswith(name,'A')")).toEqual(['x001', 'x002', 'x003', 'x004']); // functions ignore case
    expect(await ids("ciName eq 'a%b'")).toEqual(['x001']);
    expect(await ids("name eq 'A%B'")).toEqual([]);
    expect(await ids("ciName eq 'it''s'")).toEqual(['x005']);
    expect(await ids("ciName ne 'axb' and startswith(ciName,'a')")).toEqual(['x001', 'x003', 'x004']);
    expect(await ids('n eq null and startswith(name,\'a\')')).toEqual(['x003']);
    expect(await ids("n ne 0 and startswith(name,'a')")).toEqual(['x003', 'x004']); // ne keeps nulls
    expect(await ids("not (n eq 0) and startswith(name,'a')")).toEqual(['x003', 'x004']);
    expect(await ids("not (flag eq true) and startswith(name,'a')")).toEqual(['x002', 'x003']);
    expect(await ids(`at lt ${DATES[1]} and startswith(name,'a')`)).toEqual(['x001', 'x002']);
    expect(await ids(`gid eq ${GUIDS[1]!.toUpperCase()} and startswith(name,'a')`)).toEqual(['x002']);
    expect(await ids("kind eq 'GAMMARAY' and startswith(name,'a')")).toEqual(['x004']);
  });

  it('orders and pages the same as listInMemory, nulls first ascending', async () => {
    const sortable = Object.keys(model.properties).filter((p) => orderedStrings || model.properties[p]!.type !== 'string');
    const options = fc.record(
      {
        $orderby: fc.uniqueArray(fc.tuple(fc.constantFrom(...sortable), fc.constantFrom('', ' asc', ' desc')), { minLength: 1, maxLength: 3, selector: ([p]) => p }).map((parts) => parts.map(([p, d]) => p + d).join(',')),
        $top: fc.integer({ min: 0, max: 60 }).map(String),
        $skip: fc.integer({ min: 0, max: 220 }).map(String),
        $count: fc.constantFrom('true', 'false'),
        $filter: filterArb(rows, orderedStrings).map(printFilter),
        $select: fc.constantFrom('id', 'id,n,name', 'at,kind'),
      },
      { requiredKeys: ['$orderby'] },
    );
    await fc.assert(
      fc.asyncProperty(options, async (raw) => {
        const req = fakeRequest(raw);
        const fromSql = await listCollection(req, {
          model,
          base: db.selectFrom('odata_scratch').selectAll(),
          toEntity: (r) => r.map(toEntity),
          contextFragment: 'scratch',
        });
        const inMemory = listInMemory(req, { model, items: entities, contextFragment: 'scratch' });
        expect(fromSql, `seed ${seed}: ${JSON.stringify(raw)}`).toEqual(inMemory);
      }),
      runs,
    );
  });

  it('puts nulls first ascending and last descending', async () => {
    for (const dir of ['asc', 'desc'] as const) {
      const query = parseQueryOptions(model, { $orderby: `n ${dir}` });
      const got = (await applyQuery(db.selectFrom('odata_scratch').select(['id', 'n']), model, query).execute()).map((r) => r.n);
      const firstNull = got.indexOf(null);
      const nulls = got.filter((v) => v === null).length;
      expect(nulls).toBeGreaterThan(0);
      if (dir === 'asc') expect(firstNull).toBe(0);
      else expect(firstNull).toBe(got.length - nulls);
      const values = got.filter((v): v is number => v !== null);
      expect(values).toEqual([...values].sort((a, b) => (dir === 'asc' ? a - b : b - a)));
    }
  });
});
