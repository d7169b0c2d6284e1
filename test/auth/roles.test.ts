import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRoutes, fillRoute } from '../helpers/routes.js';
import { adminAuth } from '../../src/auth/plugin.js';
import { hasPermission, PERMISSIONS, ROLE_PERMISSIONS, ROLES, type Principal, type Role } from '../../src/auth/principal.js';
import { systemClock } from '../../src/shared/time.js';
import type { Store } from '../../src/store/db.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

const TAGS = '/beta/deviceManagement/roleScopeTags';
const AUDIT = '/beta/deviceManagement/auditEvents';

type Case = 'admin' | 'readOnly' | 'scoped' | 'scopedAdmin' | 'scopedReadOnly';

describe('roles on the admin API', () => {
  let t: TestApp;
  const keys = {} as Record<Case, string>;
  let tagId: string;
  beforeAll(async () => {
    t = await createTestApp();
    keys.admin = await t.createKey('administrator');
    keys.readOnly = await t.createKey('readOnlyOperator');
    keys.scoped = await t.createKey('scopedAdministrator', ['0']);
    keys.scopedAdmin = await t.createKey('administrator', ['0']);
    keys.scopedReadOnly = await t.createKey('readOnlyOperator', ['0']);
  });
  afterAll(async () => t.close());

  // Expected status per route for each principal.
  const matrix: { name: string; run: (key: string) => Promise<number>; expect: Record<Case, number> }[] = [
    {
      name: `GET ${TAGS}`,
      run: async (key) => (await t.request({ method: 'GET', url: TAGS, key })).statusCode,
      expect: { admin: 200, readOnly: 200, scoped: 200, scopedAdmin: 200, scopedReadOnly: 200 },
    },
    {
      name: `GET ${TAGS}/$count`,
      run: async (key) => (await t.request({ method: 'GET', url: `${TAGS}/$count`, key })).statusCode,
      expect: { admin: 200, readOnly: 200, scoped: 200, scopedAdmin: 200, scopedReadOnly: 200 },
    },
    {
      name: `GET ${TAGS}/0`,
      run: async (key) => (await t.request({ method: 'GET', url: `${TAGS}/0`, key })).statusCode,
      expect: { admin: 200, readOnly: 200, scoped: 200, scopedAdmin: 200, scopedReadOnly: 200 },
    },
    {
      name: `POST ${TAGS}`,
      run: async (key) => {
        const res = await t.request({ method: 'POST', url: TAGS, key, payload: { displayName: `tag ${Math.random()}` } });
        if (res.statusCode === 201) tagId = res.json().id;
        return res.statusCode;
      },
      expect: { admin: 201, readOnly: 403, scoped: 403, scopedAdmin: 201, scopedReadOnly: 403 },
    },
    {
      name: `PATCH ${TAGS}/{id}`,
      run: async (key) => (await t.request({ method: 'PATCH', url: `${TAGS}/${tagId}`, key, payload: { description: `d ${Math.random()}` } })).statusCode,
      expect: { admin: 200, readOnly: 403, scoped: 403, scopedAdmin: 200, scopedReadOnly: 403 },
    },
    {
      name: `DELETE ${TAGS}/{id}`,
      run: async (key) => {
        const created = await t.request({ method: 'POST', url: TAGS, payload: { displayName: `to delete ${Math.random()}` } });
        return (await t.request({ method: 'DELETE', url: `${TAGS}/${created.json().id}`, key })).statusCode;
      },
      expect: { admin: 204, readOnly: 403, scoped: 403, scopedAdmin: 204, scopedReadOnly: 403 },
    },
    {
      name: `GET ${AUDIT}`,
      run: async (key) => (await t.request({ method: 'GET', url: AUDIT, key })).statusCode,
      // The whole tenant's history needs an unscoped principal.
      expect: { admin: 200, readOnly: 200, scoped: 403, scopedAdmin: 403, scopedReadOnly: 403 },
    },
    {
      name: `GET ${AUDIT}/$count`,
      run: async (key) => (await t.request({ method: 'GET', url: `${AUDIT}/$count`, key })).statusCode,
      expect: { admin: 200, readOnly: 200, scoped: 403, scopedAdmin: 403, scopedReadOnly: 403 },
    },
  ];

  for (const row of matrix) {
    it(`${row.name}: ${JSON.stringify(row.expect)}`, async () => {
      const got = {} as Record<Case, number>;
      // Sequential: POST before PATCH relies on the tag made by the admin run.
      for (const who of Object.keys(row.expect) as Case[]) got[who] = await row.run(keys[who]);
      expect(got).toEqual(row.expect);
    });
  }

  it('explains a refusal by role and permission', async () => {
    const res = await t.request({ method: 'DELETE', url: `${TAGS}/0`, key: keys.readOnly });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({ code: 'Forbidden', message: "The role 'readOnlyOperator' does not grant 'rbac.write' needed for this operation." });
    expect(res.headers['www-authenticate']).toBeUndefined();
  });

  it('checks the permission before the body: a read-only caller learns nothing from validation', async () => {
    const res = await t.request({ method: 'POST', url: TAGS, key: keys.readOnly, payload: { unknownProperty: 1 } });
    expect(res.statusCode).toBe(403);
    const bad = await t.request({ method: 'POST', url: TAGS, key: keys.readOnly, headers: { 'content-type': 'application/json' }, payload: '{not json' });
    expect(bad.statusCode).toBe(403);
    // An administrator gets the validation error.
    expect((await t.request({ method: 'POST', url: TAGS, key: keys.admin, payload: { unknownProperty: 1 } })).statusCode).toBe(400);
  });
});

describe('the role table', () => {
  const principal = (role: Role): Principal => ({ kind: 'apiKey', id: 'x', displayName: 'x', tenantId: 't', role, scopeTagIds: null });

  it('gives the administrator everything', () => {
    for (const p of PERMISSIONS) expect(hasPermission(principal('administrator'), p)).toBe(true);
  });

  it('gives the read-only operator every read and no write', () => {
    for (const p of PERMISSIONS) expect(hasPermission(principal('readOnlyOperator'), p)).toBe(p.endsWith('.read'));
  });

  it("lets a scoped administrator manage devices and enrollment, not the directory, role scope tags or the audit log", () => {
    expect([...ROLE_PERMISSIONS.scopedAdministrator].sort()).toEqual(['devices.read', 'devices.write', 'directory.read', 'enrollment.read', 'enrollment.write', 'rbac.read']);
  });

  it('has the three roles', () => {
    expect([...ROLES]).toEqual(['administrator', 'readOnlyOperator', 'scopedAdministrator']);
  });
});

/** A concrete URL for a route pattern: every path parameter (and wildcard) gets a dummy value. */
const fill = (pattern: string) => fillRoute(pattern);

describe('every admin route is authorized', () => {
  let t: TestApp;
  let routes: { method: string; url: string }[];
  beforeAll(async () => {
    // An extra module proves the check is generic: it covers routes modules add later, under /v1.0 too.
    t = await createTestApp({
      extraModules: () => [
        {
          name: 'late-module',
          adminRoutes: [
            {
              versions: ['beta', 'v1.0'],
              plugin: async (app) => {
                app.get('/lateModule/things/:thingId/parts/:partId', { config: { permission: 'devices.read' } }, async () => ({ ok: true }));
                app.post('/lateModule/things/:thingId/act', { config: { permission: 'devices.write' } }, async () => ({ ok: true }));
              },
            },
          ],
        },
      ],
    });
    routes = adminRoutes(t.app);
  });
  afterAll(async () => t.close());

  it('finds the admin routes in the route tree, each one known to the router', () => {
    const seen = new Set(routes.map((r) => `${r.method} ${r.url}`));
    for (const expected of [`GET ${TAGS}`, `POST ${TAGS}`, `PATCH ${TAGS}/:id`, `DELETE ${TAGS}/:id`, `GET ${AUDIT}`, 'GET /v1.0/lateModule/things/:thingId/parts/:partId', 'POST /beta/lateModule/things/:thingId/act']) {
      expect(seen).toContain(expected);
    }
    for (const r of routes) expect(t.app.server.hasRoute({ method: r.method as 'GET', url: r.url }), `${r.method} ${r.url}`).toBe(true);
  });

  it('answers 401 with a Graph error and WWW-Authenticate to every method of every /beta and /v1.0 route without a bearer', async () => {
    const failures: string[] = [];
    for (const r of routes) {
      for (const headers of [{}, { authorization: 'Bearer nonsense' }]) {
        const res = await t.request({ method: r.method as 'GET', url: fill(r.url), key: null, headers, ...(['POST', 'PATCH', 'PUT'].includes(r.method) ? { payload: {} } : {}) });
        const ok = res.statusCode === 401 && /^Bearer realm="OpenEnroll"/.test(String(res.headers['www-authenticate'])) && (r.method === 'HEAD' || res.json().error?.code === 'Unauthorized');
        if (!ok) failures.push(`${r.method} ${fill(r.url)} → ${res.statusCode}`);
      }
    }
    expect(failures).toEqual([]);
    expect(routes.length).toBeGreaterThanOrEqual(10);
  });

  it('refuses to mount an admin route that declares no permission', async () => {
    const app = Fastify();
    await app.register(adminAuth, { store: {} as Store, clock: systemClock });
    await expect(
      app.register(async (scope) => {
        scope.get('/beta/forgotten', async () => ({}));
      }),
    ).rejects.toThrow('admin route GET /beta/forgotten declares no permission');
    await app.close();
  });
});
