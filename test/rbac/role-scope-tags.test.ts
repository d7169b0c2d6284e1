import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { DEVICES, enroll } from '../devices/fixtures.js';

const TAGS = '/beta/deviceManagement/roleScopeTags';

describe('roleScopeTags', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const post = (payload: unknown, key?: string) => t.request({ method: 'POST', url: TAGS, payload: payload as Record<string, unknown>, ...(key ? { key } : {}) });
  const patch = (id: string, payload: unknown, key?: string) =>
    t.request({ method: 'PATCH', url: `${TAGS}/${id}`, payload: payload as Record<string, unknown>, ...(key ? { key } : {}) });
  const del = (id: string, key?: string) => t.request({ method: 'DELETE', url: `${TAGS}/${id}`, ...(key ? { key } : {}) });
  const get = (id: string, key?: string) => t.request({ method: 'GET', url: `${TAGS}/${id}`, ...(key ? { key } : {}) });

  it('every tenant starts with the built-in Default tag "0"', async () => {
    const res = await t.request({ method: 'GET', url: TAGS });
    expect(res.json()).toMatchObject({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/roleScopeTags',
      value: [{ '@odata.type': '#microsoft.graph.roleScopeTag', id: '0', displayName: 'Default', isBuiltIn: true }],
    });
  });

  it('creates, reads, updates and deletes a tag, auditing each change', async () => {
    const created = await post({ displayName: 'Paris', description: 'Paris office' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/roleScopeTags/$entity',
      '@odata.type': '#microsoft.graph.roleScopeTag',
      id: '1',
      displayName: 'Paris',
      description: 'Paris office',
      isBuiltIn: false,
    });
    expect((await get('1')).json()).toMatchObject({ id: '1', displayName: 'Paris' });
    expect((await t.request({ method: 'GET', url: `/beta/deviceManagement/roleScopeTags('1')` })).json().displayName).toBe('Paris');

    const renamed = await patch('1', { displayName: 'Paris (FR)', description: null });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json()).toMatchObject({ id: '1', displayName: 'Paris (FR)', description: null, isBuiltIn: false });
    expect((await get('1')).json()).toMatchObject({ displayName: 'Paris (FR)', description: null });

    expect((await del('1')).statusCode).toBe(204);
    expect((await get('1')).statusCode).toBe(404);
    expect((await del('1')).statusCode).toBe(404);
    expect((await patch('1', { description: 'x' })).statusCode).toBe(404);

    const audit = await t.request({ method: 'GET', url: `/beta/deviceManagement/auditEvents?$filter=resources/resourceId eq '1'&$orderby=activityDateTime` });
    const activities = (audit.json().value as { activity: string; category: string }[]).map((e) => e.activity);
    // The test clock stands still, so the three share a timestamp: compare without order.
    expect([...activities].sort()).toEqual(['Create role scope tag', 'Delete role scope tag', 'Patch role scope tag']);
  });

  it('numbers new tags after the highest existing id', async () => {
    const a = (await post({ displayName: 'Numbered A' })).json().id as string;
    const b = (await post({ displayName: 'Numbered B' })).json().id as string;
    expect(Number(b)).toBe(Number(a) + 1);
  });

  it('never deletes or renames the built-in Default tag', async () => {
    const deleted = await del('0');
    expect(deleted.statusCode).toBe(409);
    expect(deleted.json().error.code).toBe('Conflict');
    const renamed = await patch('0', { displayName: 'Everything' });
    expect(renamed.statusCode).toBe(409);
    expect(renamed.json().error.target).toBe('displayName');
    // Its description may change, and "renaming" to the same name is no rename.
    expect((await patch('0', { displayName: 'Default', description: 'Everyone' })).statusCode).toBe(200);
    expect((await get('0')).json()).toMatchObject({ id: '0', displayName: 'Default', isBuiltIn: true, description: 'Everyone' });
  });

  it('keeps names unique within the tenant (409 on create and rename)', async () => {
    expect((await post({ displayName: 'London' })).statusCode).toBe(201);
    const dup = await post({ displayName: 'London' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error).toMatchObject({ code: 'Conflict', target: 'displayName' });
    const other = (await post({ displayName: 'Berlin' })).json().id as string;
    const clash = await patch(other, { displayName: 'London' });
    expect(clash.statusCode).toBe(409);
    expect((await get(other)).json().displayName).toBe('Berlin');
    expect((await patch(other, { displayName: 'Default' })).statusCode).toBe(409);
  });

  it('refuses to delete a tag still assigned to an object (409), and allows it once unassigned', async () => {
    const tag = (await post({ displayName: 'In use' })).json().id as string;
    const { device } = await enroll(t, { serialNumber: 'TAG-IN-USE', roleScopeTagIds: [tag] });
    const res = await del(tag);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.message).toContain('managedDevice');
    expect((await get(tag)).statusCode).toBe(200);
    expect((await t.request({ method: 'PATCH', url: `${DEVICES}/${device.id}`, payload: { roleScopeTagIds: ['0'] } })).statusCode).toBe(200);
    expect((await del(tag)).statusCode).toBe(204);
  });

  it('validates bodies, naming the property', async () => {
    for (const [payload, target] of [
      [{}, 'displayName'],
      [{ displayName: '' }, 'displayName'],
      [{ displayName: 'x'.repeat(129) }, 'displayName'],
      [{ displayName: 42 }, 'displayName'],
      [{ displayName: 'ok', description: 'd'.repeat(1025) }, 'description'],
      [{ displayName: 'ok', colour: 'red' }, 'colour'],
    ] as const) {
      const res = await post(payload);
      expect(res.statusCode, JSON.stringify(payload).slice(0, 60)).toBe(400);
      expect(res.json().error.target).toBe(target);
    }
    expect((await post({ displayName: 'x'.repeat(128), description: 'd'.repeat(1024) })).statusCode).toBe(201);
  });

  it('filters and counts', async () => {
    await post({ displayName: 'Filter Me' });
    const res = await t.request({ method: 'GET', url: `${TAGS}?$filter=displayName eq 'filter me'&$count=true` });
    expect(res.json()['@odata.count']).toBe(1);
    expect(res.json().value[0].displayName).toBe('Filter Me');
    expect((await t.request({ method: 'GET', url: `${TAGS}/$count?$filter=isBuiltIn eq true` })).body).toBe('1');
  });

  it('lets only administrators write tags (403 for others), while every role reads them', async () => {
    const tag = (await post({ displayName: 'Guarded' })).json().id as string;
    for (const role of ['readOnlyOperator', 'scopedAdministrator'] as const) {
      const key = await t.createKey(role, role === 'scopedAdministrator' ? [tag] : null);
      expect((await t.request({ method: 'GET', url: TAGS, key })).statusCode).toBe(200);
      expect((await get(tag, key)).statusCode).toBe(200);
      for (const res of [await post({ displayName: `by ${role}` }, key), await patch(tag, { displayName: 'Hijacked' }, key), await del(tag, key)]) {
        expect(res.statusCode).toBe(403);
        expect(res.json().error.code).toBe('Forbidden');
      }
    }
    expect((await get(tag)).json().displayName).toBe('Guarded');
    expect((await t.request({ method: 'GET', url: `${TAGS}?$filter=startswith(displayName,'by ')` })).json().value).toEqual([]);
    expect((await t.request({ method: 'POST', url: TAGS, payload: { displayName: 'anon' }, key: null })).statusCode).toBe(401);
  });

  it('keeps tags per tenant', async () => {
    const other = await t.createTenant('Fabrikam');
    const mine = (await post({ displayName: 'Tenant A only' })).json().id as string;
    const theirs = await t.request({ method: 'GET', url: TAGS, key: other.adminKey });
    expect(theirs.json().value.map((v: { displayName: string }) => v.displayName)).toEqual(['Default']);
    expect((await get(mine, other.adminKey)).statusCode).toBe(404);
    expect((await patch(mine, { displayName: 'x' }, other.adminKey)).statusCode).toBe(404);
    expect((await del(mine, other.adminKey)).statusCode).toBe(404);
    // Names and ids are per tenant: the same name is free there, numbered from 1.
    const created = await post({ displayName: 'Tenant A only' }, other.adminKey);
    expect(created.statusCode).toBe(201);
    expect(created.json().id).toBe('1');
    expect((await get(mine)).json().displayName).toBe('Tenant A only');
  });
});
