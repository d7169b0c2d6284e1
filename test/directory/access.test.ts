import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { api, insertDevice } from './helpers.js';

describe('directory access', () => {
  let t: TestApp;
  let beta: ReturnType<typeof api>;
  let userId: string;
  let groupId: string;
  let deviceId: string;
  let other: { tenantId: string; adminKey: string };
  beforeAll(async () => {
    t = await createTestApp();
    beta = api(t, 'beta');
    userId = (await beta.post('/users', { userPrincipalName: 'mine@contoso.com', displayName: 'Mine' })).json().id as string;
    groupId = (await beta.post('/groups', { displayName: 'Mine' })).json().id as string;
    deviceId = (await insertDevice(t.store.db, t.tenantId)).id;
    await beta.post(`/groups/${groupId}/members/$ref`, beta.ref(userId));
    await beta.post(`/groups/${groupId}/members/$ref`, beta.ref(deviceId));
    other = await t.createTenant('Fabrikam');
  });
  afterAll(async () => t.close());

  it("hides one tenant's users, groups and members from another's admin (404)", async () => {
    const k = other.adminKey;
    for (const version of ['beta', 'v1.0'] as const) {
      const o = api(t, version);
      expect((await o.get('/users', k)).json().value).toEqual([]);
      expect((await o.get('/users/$count', k)).body).toBe('0');
      expect((await o.get('/groups', k)).json().value).toEqual([]);
      expect((await o.get('/groups/$count', k)).body).toBe('0');
      for (const path of [`/users/${userId}`, '/users/mine@contoso.com', `/users/${userId}/memberOf`, `/groups/${groupId}`, `/groups/${groupId}/members`, `/groups/${groupId}/members/$count`]) {
        expect({ version, path, status: (await o.get(path, k)).statusCode }).toEqual({ version, path, status: 404 });
      }
      expect((await o.patch(`/users/${userId}`, { displayName: 'Hijacked' }, k)).statusCode).toBe(404);
      expect((await o.patch(`/groups/${groupId}`, { displayName: 'Hijacked' }, k)).statusCode).toBe(404);
      expect((await o.del(`/users/${userId}`, k)).statusCode).toBe(404);
      expect((await o.del(`/groups/${groupId}`, k)).statusCode).toBe(404);
      expect((await o.post(`/groups/${groupId}/members/$ref`, o.ref(userId), k)).statusCode).toBe(404);
      expect((await o.del(`/groups/${groupId}/members/${userId}/$ref`, k)).statusCode).toBe(404);
    }
    // Their own group can't take our user or device either.
    const theirs = (await beta.post('/groups', { displayName: 'Theirs' }, k)).json().id as string;
    expect((await beta.post(`/groups/${theirs}/members/$ref`, beta.ref(userId), k)).statusCode).toBe(404);
    expect((await beta.post(`/groups/${theirs}/members/$ref`, beta.ref(deviceId, 'devices'), k)).statusCode).toBe(404);
    // Nothing changed on our side.
    expect((await beta.get(`/users/${userId}`)).json().displayName).toBe('Mine');
    expect((await beta.get(`/groups/${groupId}/members/$count`)).body).toBe('2');
  });

  it('lets readOnlyOperator and scopedAdministrator read but not write (403)', async () => {
    for (const role of ['readOnlyOperator', 'scopedAdministrator'] as const) {
      const k = await t.createKey(role, role === 'scopedAdministrator' ? ['0'] : null);
      expect((await beta.get('/users', k)).statusCode).toBe(200);
      expect((await beta.get(`/users/${userId}`, k)).statusCode).toBe(200);
      expect((await beta.get(`/users/${userId}/memberOf`, k)).statusCode).toBe(200);
      expect((await beta.get('/users/$count', k)).statusCode).toBe(200);
      expect((await beta.get('/groups', k)).statusCode).toBe(200);
      expect((await beta.get(`/groups/${groupId}/members`, k)).statusCode).toBe(200);
      expect((await beta.get(`/groups/${groupId}/members/$count`, k)).statusCode).toBe(200);
      const writes = [
        await beta.post('/users', { userPrincipalName: 'new@contoso.com', displayName: 'New' }, k),
        await beta.patch(`/users/${userId}`, { displayName: 'x' }, k),
        await beta.del(`/users/${userId}`, k),
        await beta.post('/groups', { displayName: 'New' }, k),
        await beta.patch(`/groups/${groupId}`, { displayName: 'x' }, k),
        await beta.del(`/groups/${groupId}`, k),
        await beta.post(`/groups/${groupId}/members/$ref`, beta.ref(deviceId), k),
        await beta.del(`/groups/${groupId}/members/${userId}/$ref`, k),
        await t.request({ method: 'POST', url: '/beta/users/importCsv', key: k, headers: { 'content-type': 'text/csv' }, payload: 'userPrincipalName,displayName\nro@contoso.com,RO\n' }),
      ];
      for (const res of writes) {
        expect({ role, status: res.statusCode }).toEqual({ role, status: 403 });
        expect(res.json().error.message).toMatch(/directory.write/);
      }
    }
    expect((await beta.get('/users/$count')).body).toBe('1');
  });

  it('needs a bearer token', async () => {
    expect((await t.request({ method: 'GET', url: '/beta/users', key: null })).statusCode).toBe(401);
    expect((await t.request({ method: 'POST', url: '/v1.0/users/importCsv', key: null, headers: { 'content-type': 'text/csv' }, payload: 'a' })).statusCode).toBe(401);
  });
});
