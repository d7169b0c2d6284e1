import { Writable } from 'node:stream';
import type { InjectOptions } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_REDACT_PATHS } from '../../src/audit/redact.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config.js';
import { SecretStore } from '../../src/secrets/secret-store.js';
import { buildApp, type App } from '../../src/server/app.js';
import type { Store } from '../../src/store/db.js';
import { ensureDefaultTenant } from '../../src/tenancy/service.js';
import { testKeyring } from '../helpers/app.js';
import { createTestStore } from '../helpers/store.js';

const TAGS = '/beta/deviceManagement/roleScopeTags';

/**
 * Runs the real app with its logger at trace level into memory (same redaction as createLogger),
 * sends requests carrying credentials and secret-looking fields, and looks for them everywhere.
 */
describe('secrets never reach the logs, the audit log or responses', () => {
  let store: Store;
  let app: App;
  let log = '';
  const responses: string[] = [];
  let token: string;
  const secrets: string[] = [];

  beforeAll(async () => {
    store = await createTestStore();
    const { tenantId, bootstrapKey } = await ensureDefaultTenant(store);
    token = bootstrapKey!.token;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        log += chunk.toString('utf8');
        done();
      },
    });
    const logger = pino({ level: 'trace', redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' } }, sink);
    const config = loadConfig({ OPENENROLL_JOBS: 'false', LOG_LEVEL: 'trace' });
    const keyring = testKeyring();
    app = await buildApp({ config, store, keyring, logger });
    const secretStore = new SecretStore(keyring);
    secrets.push('PRIVATE-KEY-abc123-do-not-log');
    await secretStore.put(store.db, tenantId, 'privateKey', secrets[0]!);
    const other = await createApiKey(store.db, { tenantId, displayName: 'other', role: 'readOnlyOperator', scopeTagIds: null });
    secrets.push(token, other.token, 'hunter2-Password!', 'client-secret-value-xyz');
  });
  afterAll(async () => app.close());

  async function send(opts: InjectOptions) {
    const res = await app.server.inject(opts);
    responses.push(JSON.stringify(res.headers) + res.body);
    return res;
  }

  it('makes the requests', async () => {
    const [, , otherToken] = secrets;
    const wrong = `${token.slice(0, -4)}AAAA`;
    secrets.push(wrong);
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    expect((await send({ method: 'GET', url: TAGS, headers: auth(token) })).statusCode).toBe(200);
    expect((await send({ method: 'GET', url: TAGS, headers: auth(wrong) })).statusCode).toBe(401);
    expect((await send({ method: 'GET', url: TAGS, headers: { authorization: `Basic ${Buffer.from(`admin:${secrets[3]}`).toString('base64')}` } })).statusCode).toBe(401);
    expect((await send({ method: 'POST', url: TAGS, headers: auth(otherToken!), payload: { displayName: 'x', password: secrets[3] } })).statusCode).toBe(403);
    // A body with secret-named fields the schema refuses, and one it accepts.
    expect((await send({ method: 'POST', url: TAGS, headers: auth(token), payload: { displayName: 'x', password: secrets[3], clientSecret: secrets[4] } })).statusCode).toBe(400);
    expect((await send({ method: 'POST', url: TAGS, headers: { ...auth(token), 'content-type': 'application/json' }, payload: `{"password":"${secrets[3]}"` })).statusCode).toBe(400);
    expect((await send({ method: 'POST', url: TAGS, headers: auth(token), payload: { displayName: 'Tag with a description', description: 'plain' } })).statusCode).toBe(201);
    expect((await send({ method: 'GET', url: '/beta/deviceManagement/nowhere', headers: auth(token) })).statusCode).toBe(404);
    expect((await send({ method: 'GET', url: '/healthz', headers: auth(token) })).statusCode).toBe(200);
    const jwtLike = `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ secret: secrets[4] })).toString('base64url')}.c2ln`;
    secrets.push(jwtLike);
    expect((await send({ method: 'GET', url: TAGS, headers: auth(jwtLike) })).statusCode).toBe(401);
  });

  it('captured the request logs', () => {
    expect(log).toContain('incoming request');
    expect(log).toContain('request refused');
  });

  it('logs no credential or secret, in any encoding', () => {
    for (const s of secrets) {
      for (const form of [s, s.split('_').pop()!, Buffer.from(s).toString('base64')]) expect(log).not.toContain(form);
    }
  });

  it('answers with no credential or secret', () => {
    const all = responses.join('\n');
    for (const s of secrets) expect(all).not.toContain(s);
  });

  it('keeps no credential or secret in the audit log, and no secret in clear in the store', async () => {
    const audit = JSON.stringify(await store.db.selectFrom('audit_events').selectAll().execute());
    expect(audit).toContain('Tag with a description');
    for (const s of secrets) expect(audit).not.toContain(s);
    const stored = JSON.stringify([
      await store.db.selectFrom('secrets').selectAll().execute(),
      await store.db.selectFrom('api_keys').selectAll().execute(),
    ]);
    for (const s of secrets) expect(stored).not.toContain(s.split('_').pop()!);
  });
});
