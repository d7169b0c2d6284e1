import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { adminRoutes, fillRoute } from '../helpers/routes.js';
import { enroll, serial } from '../devices/fixtures.js';

/**
 * Tenant isolation for every route family, found at run time from the route tree so routes that
 * later modules add are covered too. Tenant A owns objects whose names carry a marker; tenant B's
 * administrator tries every route with A's ids. Nothing of A may appear in any response, and no
 * write may change anything of A.
 */
describe('tenant isolation across every admin route', () => {
  let t: TestApp;
  let otherKey: string;
  const MARKER = 'TENANTAMARKER';
  const ids: Record<string, string> = {};

  /** A's objects, as read by A: compared before and after B's attempts. */
  async function snapshotOfA(): Promise<string> {
    const parts: string[] = [];
    for (const url of [
      '/v1.0/users?$orderby=userPrincipalName',
      '/v1.0/groups?$orderby=displayName',
      `/v1.0/groups/${ids.group}/members`,
      '/beta/deviceManagement/managedDevices',
      '/beta/deviceManagement/roleScopeTags',
    ]) {
      const res = await t.request({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      parts.push(JSON.stringify(res.json().value));
    }
    return parts.join('\n');
  }

  beforeAll(async () => {
    t = await createTestApp();
    const user = await t.request({ method: 'POST', url: '/v1.0/users', payload: { displayName: `${MARKER} user`, userPrincipalName: 'a.user@tenant-a.test' } });
    ids.user = user.json().id;
    const group = await t.request({ method: 'POST', url: '/v1.0/groups', payload: { displayName: `${MARKER} group`, mailEnabled: false, mailNickname: 'agroup', securityEnabled: true } });
    ids.group = group.json().id;
    await t.request({ method: 'POST', url: `/v1.0/groups/${ids.group}/members/$ref`, payload: { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${ids.user}` } });
    const tag = await t.request({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName: `${MARKER} tag` } });
    ids.tag = tag.json().id;
    const device = await enroll(t, { serialNumber: serial(), deviceName: `${MARKER} device`, operatingSystem: 'iOS', udid: `udid-${MARKER}` });
    ids.device = device.device.id as string;
    const audit = await t.request({ method: 'GET', url: '/beta/deviceManagement/auditEvents?$top=1' });
    ids.audit = audit.json().value[0].id;
    expect(Object.values(ids).every(Boolean)).toBe(true);

    const other = await t.createTenant('Tenant B');
    otherKey = other.adminKey;
    // B has objects of its own with the same shapes, so "not found" can't come from an empty tenant.
    await t.request({ method: 'POST', url: '/v1.0/users', key: otherKey, payload: { displayName: 'B user', userPrincipalName: 'b.user@tenant-b.test' } });
  });
  afterAll(async () => t.close());

  const idFor = (segment: string): string => {
    switch (segment) {
      case 'groups':
        return ids.group!;
      case 'managedDevices':
        return ids.device!;
      case 'roleScopeTags':
        return ids.tag!;
      case 'auditEvents':
        return ids.audit!;
      default:
        return ids.user!; // users, members and anything new
    }
  };

  it('never shows tenant A objects to tenant B, on any GET route', async () => {
    const leaks: string[] = [];
    const routes = adminRoutes(t.app).filter((r) => r.method === 'GET');
    expect(routes.length).toBeGreaterThan(15);
    for (const r of routes) {
      const url = fillRoute(r.url, (segment) => idFor(segment));
      const res = await t.request({ method: 'GET', url, key: otherKey });
      if (res.body.includes(MARKER)) leaks.push(`${url} → ${res.statusCode}`);
      if (res.statusCode === 200 && url.includes(ids.user!) && url.endsWith(ids.user!)) leaks.push(`${url} answered 200`);
    }
    expect(leaks).toEqual([]);
  });

  it('never lets tenant B change tenant A objects, on any write route', async () => {
    const before = await snapshotOfA();
    const auditBefore = (await t.request({ method: 'GET', url: '/beta/deviceManagement/auditEvents/$count' })).body;
    const accepted: string[] = [];
    for (const r of adminRoutes(t.app).filter((x) => ['POST', 'PATCH', 'PUT', 'DELETE'].includes(x.method))) {
      if (!r.url.includes(':')) continue; // creating in B's own tenant is allowed; only A's addressed objects matter here
      const url = fillRoute(r.url, (segment) => idFor(segment));
      const payload =
        r.method === 'DELETE' ? undefined : url.endsWith('$ref') ? { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${ids.user}` } : { displayName: 'hijacked' };
      const res = await t.request({ method: r.method as 'POST', url, key: otherKey, ...(payload ? { payload } : {}) });
      if (res.statusCode < 400) accepted.push(`${r.method} ${url} → ${res.statusCode}`);
    }
    expect(accepted).toEqual([]);
    expect(await snapshotOfA()).toBe(before);
    expect((await t.request({ method: 'GET', url: '/beta/deviceManagement/auditEvents/$count' })).body).toBe(auditBefore);
  });

  it('keeps tenant B able to use its own objects (the checks above are not vacuous)', async () => {
    const res = await t.request({ method: 'GET', url: '/v1.0/users', key: otherKey });
    expect(res.statusCode).toBe(200);
    expect(res.json().value.map((u: { userPrincipalName: string }) => u.userPrincipalName)).toEqual(['b.user@tenant-b.test']);
    const mine = await t.request({ method: 'GET', url: `/v1.0/users/${ids.user}` });
    expect(mine.json().displayName).toContain(MARKER);
  });
});
