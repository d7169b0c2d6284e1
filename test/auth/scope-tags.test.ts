import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor, Principal } from '../../src/auth/principal.js';
import { assertWithinScope, canSee, DEFAULT_SCOPE_TAG_ID, tagsForNewObject, visibleTo, whereVisible } from '../../src/auth/scope-tags.js';
import { GraphError } from '../../src/graph/errors.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createTag, DEVICES, deviceRecords, enroll } from '../devices/fixtures.js';

const tag: fc.Arbitrary<string> = fc.constantFrom('0', '1', '2', '3', '4', '5', '17');
const tags = fc.array(tag, { maxLength: 6 });
const scoped = (scopeTagIds: readonly string[] | null) => ({ scopeTagIds });

describe('scope tags: pure rules', () => {
  it('canSee is true iff the principal and the object share a tag', () => {
    fc.assert(
      fc.property(tags, tags, (mine, object) => {
        expect(canSee(scoped(mine), object)).toBe(object.some((t) => mine.includes(t)));
      }),
    );
  });

  it('an unscoped principal sees everything, even untagged objects', () => {
    fc.assert(
      fc.property(tags, (object) => {
        expect(canSee(scoped(null), object)).toBe(true);
      }),
    );
  });

  it('a principal limited to no tags sees nothing', () => {
    fc.assert(
      fc.property(tags, (object) => {
        expect(canSee(scoped([]), object)).toBe(false);
      }),
    );
  });

  it('assertWithinScope refuses exactly the tags the principal lacks, with a 403 naming them', () => {
    fc.assert(
      fc.property(tags, tags, (mine, requested) => {
        const outside = requested.filter((t) => !mine.includes(t));
        let error: unknown;
        try {
          assertWithinScope(scoped(mine), requested);
        } catch (err) {
          error = err;
        }
        if (outside.length === 0) {
          expect(error).toBeUndefined();
        } else {
          expect(error).toBeInstanceOf(GraphError);
          expect((error as GraphError).statusCode).toBe(403);
          for (const t of outside) expect((error as GraphError).message).toContain(`'${t}'`);
        }
      }),
    );
    fc.assert(
      fc.property(tags, (requested) => {
        expect(() => assertWithinScope(scoped(null), requested)).not.toThrow();
      }),
    );
  });

  it('tagsForNewObject: requested tags (deduplicated) when within scope, else the caller’s own, else Default', () => {
    fc.assert(
      fc.property(fc.option(tags, { nil: null }), fc.option(tags, { nil: undefined }), (mine, requested) => {
        const principal = scoped(mine);
        const allowed = mine === null || (requested ?? []).every((t) => mine.includes(t));
        if (!allowed) {
          expect(() => tagsForNewObject(principal, requested)).toThrow(GraphError);
          return;
        }
        const result = tagsForNewObject(principal, requested);
        if (requested && requested.length > 0) expect(result).toEqual([...new Set(requested)]);
        else expect(result).toEqual(mine === null ? [DEFAULT_SCOPE_TAG_ID] : [...mine]);
        // Whatever a scoped principal creates stays visible to it (when it has any tag at all).
        if (mine !== null && mine.length > 0) expect(canSee(principal, result)).toBe(true);
      }),
    );
  });

  it('boundaries: one shared tag is enough, none is not', () => {
    expect(canSee(scoped(['1']), ['1'])).toBe(true);
    expect(canSee(scoped(['1']), ['2', '1'])).toBe(true);
    expect(canSee(scoped(['1']), ['2'])).toBe(false);
    expect(canSee(scoped(['1']), [])).toBe(false);
    expect(tagsForNewObject(scoped(null), [])).toEqual(['0']);
    expect(tagsForNewObject(scoped(['3', '4']), null)).toEqual(['3', '4']);
    expect(() => tagsForNewObject(scoped(['3']), ['3', '4'])).toThrow("'4'");
  });

  it('adds no SQL condition for an unscoped principal', () => {
    expect(visibleTo({ scopeTagIds: null, tenantId: 't' }, 'managedDevice', 'managed_devices.id')).toBeUndefined();
    expect(visibleTo({ scopeTagIds: ['1'], tenantId: 't' }, 'managedDevice', 'managed_devices.id')).toBeDefined();
  });
});

describe('scope tags: devices seen through scoped keys', () => {
  let t: TestApp;
  let paris: string;
  let london: string;
  const ids: Record<string, string> = {};
  let parisAdmin: string;

  beforeAll(async () => {
    t = await createTestApp();
    paris = await createTag(t, 'Paris');
    london = await createTag(t, 'London');
    ids.paris = (await enroll(t, { serialNumber: 'P-1', deviceName: 'paris-1', roleScopeTagIds: [paris] })).device.id;
    ids.london = (await enroll(t, { serialNumber: 'L-1', deviceName: 'london-1', roleScopeTagIds: [london] })).device.id;
    ids.both = (await enroll(t, { serialNumber: 'B-1', deviceName: 'both-1', roleScopeTagIds: [paris, london] })).device.id;
    ids.default = (await enroll(t, { serialNumber: 'D-1', deviceName: 'default-1' })).device.id;
    parisAdmin = await t.createKey('scopedAdministrator', [paris]);
  });
  afterAll(async () => t.close());

  const listNames = async (key: string, query = '') => {
    const res = await t.request({ method: 'GET', url: `${DEVICES}?$count=true&$orderby=deviceName${query}`, key });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { value: { deviceName: string }[]; '@odata.count': number };
    expect(body['@odata.count']).toBe(body.value.length);
    return body.value.map((d) => d.deviceName);
  };

  it('the unscoped administrator sees every device', async () => {
    expect(await listNames(t.adminKey)).toEqual(['both-1', 'default-1', 'london-1', 'paris-1']);
  });

  it('a key limited to a tag lists only devices sharing it', async () => {
    expect(await listNames(parisAdmin)).toEqual(['both-1', 'paris-1']);
    expect(await listNames(await t.createKey('readOnlyOperator', [london]))).toEqual(['both-1', 'london-1']);
    expect(await listNames(await t.createKey('readOnlyOperator', [paris, london]))).toEqual(['both-1', 'london-1', 'paris-1']);
    expect(await listNames(await t.createKey('readOnlyOperator', ['0']))).toEqual(['default-1']);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/$count`, key: parisAdmin })).body).toBe('2');
  });

  it('a key limited to no tags sees nothing', async () => {
    const none = await t.createKey('readOnlyOperator', []);
    expect(await listNames(none)).toEqual([]);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${ids.paris}`, key: none })).statusCode).toBe(404);
  });

  it('answers 404 for out-of-scope devices on every operation, and leaves them untouched', async () => {
    for (const id of [ids.london!, ids.default!]) {
      for (const [method, url, payload] of [
        ['GET', `${DEVICES}/${id}`],
        ['GET', `${DEVICES}/${id}/users`],
        ['PATCH', `${DEVICES}/${id}`, { notes: 'mine now' }],
        ['DELETE', `${DEVICES}/${id}`],
      ] as const) {
        const res = await t.request({ method, url, key: parisAdmin, ...(payload ? { payload } : {}) });
        expect(res.statusCode, `${method} ${url}`).toBe(404);
        expect(res.json().error.code).toBe('ResourceNotFound');
      }
      const still = await t.request({ method: 'GET', url: `${DEVICES}/${id}` });
      expect(still.statusCode).toBe(200);
      expect(still.json().notes).toBeNull();
    }
    // Filters can't be used to probe hidden devices either.
    expect(await listNames(parisAdmin, "&$filter=serialNumber eq 'L-1'")).toEqual([]);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/$count?$filter=serialNumber eq 'L-1'`, key: parisAdmin })).body).toBe('0');
  });

  it('hides devices because of the scope filter, not because they are missing', async () => {
    // The hidden device exists in the same tenant and the same query without the scope filter returns it...
    const svc = deviceRecords(t);
    const principal: Principal = { kind: 'apiKey', id: 'k', displayName: 'k', tenantId: t.tenantId, role: 'scopedAdministrator', scopeTagIds: [paris] };
    const actor: Actor = { tenantId: t.tenantId, principal, requestId: 'r' };
    const unfiltered = await t.store.db.selectFrom('managed_devices').select('id').where('tenant_id', '=', t.tenantId).execute();
    expect(unfiltered.map((r) => r.id)).toContain(ids.london);
    const filtered = await whereVisible(t.store.db.selectFrom('managed_devices').select('id').where('tenant_id', '=', t.tenantId), principal, 'managedDevice', 'managed_devices.id').execute();
    expect(filtered.map((r) => r.id).sort()).toEqual([ids.paris, ids.both].sort());
    // ...and the service's base query is exactly the filtered one: dropping the filter would show London.
    const viaService = await svc.base(actor).select('managed_devices.id').execute();
    expect(viaService.map((r) => r.id).sort()).toEqual(filtered.map((r) => r.id).sort());
    expect(viaService.map((r) => r.id)).not.toContain(ids.london);
    await expect(svc.get(actor, ids.london!)).rejects.toMatchObject({ statusCode: 404 });
    await expect(svc.get({ ...actor, principal: { ...principal, scopeTagIds: null } }, ids.london!)).resolves.toMatchObject({ id: ids.london });
  });

  it('a scoped key changes in-scope devices but cannot hand out tags outside its scope', async () => {
    const ok = await t.request({ method: 'PATCH', url: `${DEVICES}/${ids.paris}`, payload: { notes: 'by Paris' }, key: parisAdmin });
    expect(ok.statusCode).toBe(200);
    for (const requested of [[london], [paris, london], ['0']]) {
      const res = await t.request({ method: 'PATCH', url: `${DEVICES}/${ids.paris}`, payload: { roleScopeTagIds: requested }, key: parisAdmin });
      expect(res.statusCode, JSON.stringify(requested)).toBe(403);
      expect(res.json().error.code).toBe('Forbidden');
    }
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${ids.paris}` })).json()).toMatchObject({ roleScopeTagIds: [paris], notes: 'by Paris' });
  });

  it("a scoped key's tag change keeps the tags it can't see", async () => {
    const res = await t.request({ method: 'PATCH', url: `${DEVICES}/${ids.both}`, payload: { roleScopeTagIds: [paris] }, key: parisAdmin });
    expect(res.statusCode).toBe(200);
    expect(res.json().roleScopeTagIds).toEqual([paris, london]);
    // An empty list gives the device the caller's own tags (as on creation), still keeping London's.
    const emptied = await t.request({ method: 'PATCH', url: `${DEVICES}/${ids.both}`, payload: { roleScopeTagIds: [] }, key: parisAdmin });
    expect(emptied.json().roleScopeTagIds).toEqual([paris, london]);
    // The unscoped administrator can move a device anywhere.
    const moved = await t.request({ method: 'PATCH', url: `${DEVICES}/${ids.both}`, payload: { roleScopeTagIds: [london] } });
    expect(moved.json().roleScopeTagIds).toEqual([london]);
    expect(await listNames(parisAdmin)).toEqual(['paris-1']);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${ids.both}`, key: parisAdmin })).statusCode).toBe(404);
  });

  it('a scoped key deletes only in-scope devices', async () => {
    const extra = (await enroll(t, { serialNumber: 'P-2', deviceName: 'paris-2', roleScopeTagIds: [paris] })).device.id;
    expect((await t.request({ method: 'DELETE', url: `${DEVICES}/${extra}`, key: parisAdmin })).statusCode).toBe(204);
    expect((await t.request({ method: 'DELETE', url: `${DEVICES}/${ids.london}`, key: parisAdmin })).statusCode).toBe(404);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${ids.london}` })).statusCode).toBe(200);
  });
});
