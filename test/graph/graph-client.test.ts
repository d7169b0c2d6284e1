import { Client, GraphError, PageIterator, type PageCollection } from '@microsoft/microsoft-graph-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { selfSignedTlsFiles } from '../helpers/tls.js';

/**
 * The acceptance check of the foundation: an unmodified @microsoft/microsoft-graph-client,
 * pointed at the server with a bearer API key, drives the admin API. The client only sends its
 * Authorization header to https hosts it knows (customHosts), so the server runs with TLS here,
 * as a deployment would.
 */
describe('Microsoft Graph JS client against OpenEnroll', () => {
  let t: TestApp;
  let client: Client;
  let previousTlsSetting: string | undefined;

  beforeAll(async () => {
    const tls = await selfSignedTlsFiles();
    t = await createTestApp({
      env: { OPENENROLL_PUBLIC_URL: '', OPENENROLL_TLS_CERT_FILE: tls.certFile, OPENENROLL_TLS_KEY_FILE: tls.keyFile },
    });
    await t.app.server.listen({ port: 0, host: '127.0.0.1' });
    const port = (t.app.server.server.address() as { port: number }).port;
    // The test's self-signed certificate isn't in Node's trust store.
    previousTlsSetting = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    client = Client.init({
      baseUrl: `https://localhost:${port}/`,
      defaultVersion: 'v1.0',
      customHosts: new Set(['localhost']),
      authProvider: (done) => done(null, t.adminKey),
    });
  });

  afterAll(async () => {
    if (previousTlsSetting === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previousTlsSetting;
    await t.close();
  });

  it('creates users and a group, adds members, and reads them back', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const u = await client.api('/users').post({
        accountEnabled: true,
        displayName: `User ${String(i).padStart(2, '0')}`,
        mailNickname: `user${i}`,
        userPrincipalName: `user${i}@contoso.test`,
        passwordProfile: { forceChangePasswordNextSignIn: true, password: 'Str0ng!Passw0rd' },
      });
      expect(u.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(u.passwordProfile).toBeUndefined();
      ids.push(u.id as string);
    }
    const group = await client.api('/groups').post({ displayName: 'Enrollment pilots', mailEnabled: false, mailNickname: 'pilots', securityEnabled: true });
    expect(group['@odata.context']).toContain('$metadata#groups');
    for (const id of ids.slice(0, 3)) {
      await client.api(`/groups/${group.id}/members/$ref`).post({ '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${id}` });
    }
    const members = await client.api(`/groups/${group.id}/members`).get();
    expect(members.value.map((m: { id: string }) => m.id).sort()).toEqual(ids.slice(0, 3).sort());
    expect(members.value[0]['@odata.type']).toBe('#microsoft.graph.user');
  });

  it('pages through users with $top by following @odata.nextLink, and reads $count', async () => {
    const first = (await client.api('/users').top(4).count(true).orderby('displayName').get()) as PageCollection;
    expect(first['@odata.count']).toBe(25);
    expect(first['@odata.nextLink']).toMatch(/^https:\/\/localhost:\d+\/v1\.0\/users\?/);
    const seen: string[] = [];
    const iterator = new PageIterator(client, first, (u: { displayName: string }) => {
      seen.push(u.displayName);
      return true;
    });
    await iterator.iterate();
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    expect(seen).toEqual([...seen].sort());
    const filtered = await client.api('/users').filter("startswith(displayName,'User 1')").count(true).get();
    expect(filtered['@odata.count']).toBe(10);
  });

  it('gets a Graph-shaped error for a bad $filter', async () => {
    const err = await client.api('/users').filter("displayName eq 'unterminated").get().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GraphError);
    const ge = err as GraphError;
    expect(ge.statusCode).toBe(400);
    expect(ge.code).toBe('BadRequest');
    expect(ge.message).toMatch(/filter/i);
    expect(ge.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('gets 401 with a wrong key', async () => {
    const bad = Client.init({
      baseUrl: client['config'].baseUrl as string,
      defaultVersion: 'v1.0',
      customHosts: new Set(['localhost']),
      authProvider: (done) => done(null, 'oe_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'),
    });
    const err = (await bad.api('/users').get().catch((e: unknown) => e)) as GraphError;
    expect(err.statusCode).toBe(401);
    expect(err.code).toBe('Unauthorized');
  });
});
