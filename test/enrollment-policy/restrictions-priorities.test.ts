import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';

const BETA = '/beta/deviceManagement/deviceEnrollmentConfigurations';
const LIMIT = '#microsoft.graph.deviceEnrollmentLimitConfiguration';
const SINGLE = '#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration';

type Entity = Record<string, unknown> & { id: string; priority: number; displayName: string };
type List = 'limit' | 'ios' | 'windows';

const bodyFor = (list: List, displayName: string) =>
  list === 'limit' ? { '@odata.type': LIMIT, displayName, limit: 5 } : { '@odata.type': SINGLE, displayName, platformType: list, platformRestriction: {} };

describe('restriction priorities', () => {
  let t: TestApp;
  const req = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown, key?: string) =>
    t.request({ method, url, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }), ...(key ? { key } : {}) });

  /** Every policy by list, in priority order: 'limit', 'platform:<type>'; the platform default is listed under 'platform:*'. */
  async function lists(key?: string): Promise<Map<string, Entity[]>> {
    const res = await req('GET', `${BETA}?$top=999&$orderby=priority`, undefined, key);
    expect(res.statusCode, res.body).toBe(200);
    const out = new Map<string, Entity[]>();
    for (const c of (res.json() as { value: Entity[] }).value) {
      const list = c['@odata.type'] === LIMIT ? 'limit' : `platform:${(c.platformType as string | undefined) ?? '*'}`;
      out.set(list, [...(out.get(list) ?? []), c]);
    }
    return out;
  }

  const create = async (list: List, name: string, key?: string) => {
    const res = await req('POST', BETA, bodyFor(list, name), key);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Entity;
  };

  beforeAll(async () => {
    // The property test below sends several hundred requests with one key.
    t = await createTestApp({ env: { OPENENROLL_RATE_LIMIT_MAX: '100000' } });
  });
  afterAll(async () => t.close());

  it('puts each new policy just above the default, at the end of its list', async () => {
    const tenant = await t.createTenant('Order');
    const a = await create('limit', 'A', tenant.adminKey);
    const b = await create('limit', 'B', tenant.adminKey);
    const c = await create('limit', 'C', tenant.adminKey);
    expect([a.priority, b.priority, c.priority]).toEqual([1, 2, 3]);
    const limit = (await lists(tenant.adminKey)).get('limit')!;
    expect(limit.map((p) => [p.displayName, p.priority])).toEqual([
      ['All users and all devices', 0],
      ['A', 1],
      ['B', 2],
      ['C', 3],
    ]);
  });

  it('setPriority moves a policy and keeps 1..n contiguous; past the end lands last; below 1 is refused', async () => {
    const tenant = await t.createTenant('Move');
    const key = tenant.adminKey;
    const [a, b, c, d] = [await create('ios', 'A', key), await create('ios', 'B', key), await create('ios', 'C', key), await create('ios', 'D', key)];
    const order = async () => (await lists(key)).get('platform:ios')!.map((p) => `${p.displayName}${p.priority}`);
    expect((await req('POST', `${BETA}/${d!.id}/setPriority`, { priority: 1 }, key)).statusCode).toBe(204);
    expect(await order()).toEqual(['D1', 'A2', 'B3', 'C4']);
    expect((await req('POST', `${BETA}/${d!.id}/microsoft.graph.setPriority`, { priority: 3 }, key)).statusCode).toBe(204);
    expect(await order()).toEqual(['A1', 'B2', 'D3', 'C4']);
    expect((await req('POST', `${BETA}/${a!.id}/setPriority`, { priority: 99 }, key)).statusCode).toBe(204);
    expect(await order()).toEqual(['B1', 'D2', 'C3', 'A4']);
    for (const priority of [0, -1]) {
      const res = await req('POST', `${BETA}/${b!.id}/setPriority`, { priority }, key);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.target).toBe('priority');
    }
    for (const payload of [{ priority: 1.5 }, { priority: '1' }, {}]) expect((await req('POST', `${BETA}/${b!.id}/setPriority`, payload, key)).statusCode).toBe(400);
    expect(await order()).toEqual(['B1', 'D2', 'C3', 'A4']);
    // Other lists are untouched, and the default stays at 0.
    const all = await lists(key);
    expect(all.get('platform:*')!.map((p) => p.priority)).toEqual([0]);
    expect(all.get('limit')!.map((p) => p.priority)).toEqual([0]);
    expect(c).toBeDefined();
  });

  it('allows 25 policies per list besides the default, refuses the 26th naming the limit, and counts platforms apart', async () => {
    const tenant = await t.createTenant('Quota');
    const key = tenant.adminKey;
    for (let i = 1; i <= 25; i++) expect((await create('limit', `L${i}`, key)).priority).toBe(i);
    const refused = await req('POST', BETA, bodyFor('limit', 'L26'), key);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toContain('at most 25 device limit restriction policies');
    for (let i = 1; i <= 25; i++) await create('windows', `W${i}`, key);
    const w26 = await req('POST', BETA, bodyFor('windows', 'W26'), key);
    expect(w26.statusCode).toBe(409);
    expect(w26.json().error.message).toContain('at most 25 windows platform restriction policies');
    // Another platform has its own 25.
    expect((await create('ios', 'I1', key)).priority).toBe(1);
    const all = await lists(key);
    expect(all.get('limit')!.map((p) => p.priority)).toEqual([...Array(26).keys()]);
    // Deleting one makes room again, at the end of the list.
    const first = all.get('limit')![1]!;
    expect((await req('DELETE', `${BETA}/${first.id}`, undefined, key)).statusCode).toBe(204);
    expect((await create('limit', 'L26', key)).priority).toBe(25);
  });

  it('numbers concurrent creations contiguously', async () => {
    const tenant = await t.createTenant('Concurrent');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => req('POST', BETA, bodyFor('limit', `P${i}`), tenant.adminKey)));
    for (const r of results) expect(r.statusCode, r.body).toBe(201);
    expect(results.map((r) => (r.json() as Entity).priority).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const moves = await Promise.all(results.slice(0, 5).map((r, i) => req('POST', `${BETA}/${(r.json() as Entity).id}/setPriority`, { priority: 10 - i }, tenant.adminKey)));
    for (const m of moves) expect(m.statusCode).toBe(204);
    expect((await lists(tenant.adminKey)).get('limit')!.map((p) => p.priority)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('any sequence of create, delete and setPriority keeps every list 1..n with the default at 0 (property, through the API)', async () => {
    const listArb = fc.constantFrom<List>('limit', 'ios', 'windows');
    const op = fc.oneof(
      fc.record({ kind: fc.constant('create' as const), list: listArb }),
      fc.record({ kind: fc.constant('delete' as const), list: listArb, pick: fc.nat(30) }),
      fc.record({ kind: fc.constant('move' as const), list: listArb, pick: fc.nat(30), priority: fc.integer({ min: -1, max: 8 }) }),
      fc.record({ kind: fc.constant('deleteDefault' as const), list: listArb }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        const tenant = await t.createTenant('Property');
        const key = tenant.adminKey;
        // The model: each list's custom policy ids in priority order.
        const model: Record<List, string[]> = { limit: [], ios: [], windows: [] };
        let n = 0;
        for (const o of ops) {
          const ids = model[o.list];
          if (o.kind === 'create') {
            const c = await create(o.list, `p${n++}`, key);
            ids.push(c.id);
            expect(c.priority).toBe(ids.length);
          } else if (o.kind === 'deleteDefault') {
            const id = o.list === 'limit' ? `${tenant.tenantId}_DefaultLimit` : `${tenant.tenantId}_DefaultPlatformRestrictions`;
            expect((await req('DELETE', `${BETA}/${id}`, undefined, key)).statusCode).toBe(409);
          } else if (ids.length > 0) {
            const id = ids[o.pick % ids.length]!;
            if (o.kind === 'delete') {
              expect((await req('DELETE', `${BETA}/${id}`, undefined, key)).statusCode).toBe(204);
              ids.splice(ids.indexOf(id), 1);
            } else {
              const res = await req('POST', `${BETA}/${id}/setPriority`, { priority: o.priority }, key);
              if (o.priority < 1) {
                expect(res.statusCode).toBe(400);
              } else {
                expect(res.statusCode).toBe(204);
                ids.splice(ids.indexOf(id), 1);
                ids.splice(Math.min(o.priority, ids.length + 1) - 1, 0, id);
              }
            }
          }
          const actual = await lists(key);
          for (const list of ['limit', 'ios', 'windows'] as const) {
            const key2 = list === 'limit' ? 'limit' : `platform:${list}`;
            const rows = (actual.get(key2) ?? []).filter((p) => p.priority > 0);
            expect(rows.map((p) => p.priority)).toEqual(rows.map((_, i) => i + 1));
            expect(rows.map((p) => p.id)).toEqual(model[list]);
          }
          expect(actual.get('limit')![0]).toMatchObject({ id: `${tenant.tenantId}_DefaultLimit`, priority: 0 });
          expect(actual.get('platform:*')).toEqual([expect.objectContaining({ id: `${tenant.tenantId}_DefaultPlatformRestrictions`, priority: 0 })]);
        }
      }),
      { numRuns: 25 },
    );
  });
});
