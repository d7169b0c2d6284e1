import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DepApiError, type DepDevice, type DepOAuthTokens } from '../../src/apple/ade/dep-api.js';
import { DepClient, depErrorCode, parseRetryAfter, type DepClientOptions, type DepLogger } from '../../src/apple/ade/dep-client.js';
import { parseOAuthAuthorizationHeader, verifyOAuth1Signature } from '../../src/apple/ade/oauth1.js';
import { ManualClock, SECOND } from '../../src/shared/time.js';

const TOKENS: DepOAuthTokens = {
  consumer_key: 'CK_0123456789abcdef',
  consumer_secret: 'CS_secret_value_never_logged',
  access_token: 'AT_0123456789abcdef',
  access_secret: 'AS_secret_value_never_logged',
  access_token_expiry: '2027-01-01T00:00:00Z',
};

interface Recorded {
  method: string;
  path: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Reply = (req: Recorded, res: http.ServerResponse) => void;

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json;charset=UTF8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function text(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain', ...headers });
  res.end(body);
}

/**
 * A small stand-in for mdmenrollment.apple.com: /session checks the OAuth signature and hands out
 * session tokens; every other path needs a live one (401 otherwise). Tests queue one-shot replies
 * per "METHOD /path" to script Apple's behaviour.
 */
class FakeApple {
  readonly requests: Recorded[] = [];
  readonly sessions = new Set<string>();
  private readonly queued = new Map<string, Reply[]>();
  private readonly defaults = new Map<string, Reply>();
  private issued = 0;
  private server!: http.Server;
  baseUrl = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = req.url ?? '/';
        const rec: Recorded = { method: req.method ?? 'GET', path: url.split('?')[0] ?? '/', url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.requests.push(rec);
        this.handle(rec, res);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.defaults.set('GET /session', (req, res) => this.session(req, res));
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Queue one-shot replies for "METHOD /path", used in order before the default. */
  on(route: string, ...replies: Reply[]): this {
    this.queued.set(route, [...(this.queued.get(route) ?? []), ...replies]);
    return this;
  }

  /** The reply for every later request to the route. */
  always(route: string, reply: Reply): this {
    this.defaults.set(route, reply);
    return this;
  }

  calls(route: string): Recorded[] {
    return this.requests.filter((r) => `${r.method} ${r.path}` === route);
  }

  issueSession(): string {
    const token = `SESSION-${++this.issued}`;
    this.sessions.add(token);
    return token;
  }

  private session(req: Recorded, res: http.ServerResponse): void {
    const header = req.headers.authorization ?? '';
    const ok = verifyOAuth1Signature({ method: 'GET', url: `${this.baseUrl}${req.url}`, header, consumerSecret: TOKENS.consumer_secret, tokenSecret: TOKENS.access_secret });
    const params = parseOAuthAuthorizationHeader(header);
    if (!ok || params?.oauth_consumer_key !== TOKENS.consumer_key || params.oauth_token !== TOKENS.access_token) {
      return text(res, 401, 'oauth_problem=signature_invalid');
    }
    json(res, 200, { auth_session_token: this.issueSession() });
  }

  private handle(req: Recorded, res: http.ServerResponse): void {
    const route = `${req.method} ${req.path}`;
    const next = this.queued.get(route)?.shift();
    if (route !== 'GET /session' && !next) {
      const s = req.headers['x-adm-auth-session'];
      if (typeof s !== 'string' || !this.sessions.has(s)) return text(res, 401, 'UNAUTHORIZED');
    }
    const reply = next ?? this.defaults.get(route);
    if (!reply) return text(res, 404, 'NOT_FOUND');
    reply(req, res);
  }
}

const ACCOUNT = {
  server_name: 'OpenEnroll Test',
  server_uuid: '677cd1ab-6fa5-4b56-bd8f-3c3a6d0b7f5e',
  admin_id: 'admin@example.com',
  org_name: 'Example Org',
  org_type: 'org',
  urls: [{ uri: '/server/devices', http_method: ['POST'], limit: { default: 100, maximum: 1000 } }],
};

let apple: FakeApple;
afterEach(async () => {
  await apple?.stop();
});

interface Harness {
  client: DepClient;
  clock: ManualClock;
  sleeps: number[];
  sessions: (string | undefined)[];
  logs: { level: string; obj: Record<string, unknown>; msg: string }[];
}

async function setup(over: Partial<DepClientOptions> = {}): Promise<Harness> {
  apple = await new FakeApple().start();
  apple.always('GET /account', (_req, res) => json(res, 200, ACCOUNT));
  const clock = new ManualClock('2026-03-10T12:00:00.000Z');
  const sleeps: number[] = [];
  const sessions: (string | undefined)[] = [];
  const logs: Harness['logs'] = [];
  const logger: DepLogger = {
    debug: (obj, msg) => logs.push({ level: 'debug', obj, msg }),
    warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }),
  };
  const client = new DepClient({
    tokens: TOKENS,
    baseUrl: `${apple.baseUrl}/`,
    clock,
    logger,
    random: () => 0,
    retry: { maxRetries: 3, baseDelayMs: 1000, maxDelayMs: 60_000 },
    // A fake sleep that moves the clock, so no test waits for real.
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      sleeps.push(ms);
      clock.advance(ms);
    },
    onSession: (s) => {
      sessions.push(s);
    },
    ...over,
  });
  return { client, clock, sleeps, sessions, logs };
}

async function rejection(p: Promise<unknown>): Promise<DepApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DepApiError) return err;
    throw err;
  }
  throw new Error('expected a DepApiError');
}

describe('DepClient: sessions and headers', () => {
  it('authenticates lazily with a verifiable OAuth header, then sends the session, protocol version and User-Agent on every call', async () => {
    const { client, clock } = await setup();
    expect(apple.requests).toHaveLength(0);
    expect(await client.account()).toMatchObject({ server_uuid: ACCOUNT.server_uuid, org_name: 'Example Org' });
    await client.account();

    expect(apple.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /session', 'GET /account', 'GET /account']);
    const [session, ...calls] = apple.requests;
    const oauth = parseOAuthAuthorizationHeader(session!.headers.authorization ?? '');
    expect(oauth).toMatchObject({ realm: 'ADM', oauth_signature_method: 'HMAC-SHA1', oauth_version: '1.0', oauth_consumer_key: TOKENS.consumer_key, oauth_token: TOKENS.access_token });
    expect(oauth?.oauth_timestamp).toBe(String(clock.now().getTime() / 1000));
    for (const r of apple.requests) {
      expect(r.headers['user-agent']).toBe('openenroll/0.1.0');
      expect(r.headers['x-server-protocol-version']).toBe('10');
      expect(r.headers['content-type']).toBe('application/json;charset=UTF8');
      expect(r.headers.accept).toBe('application/json;charset=UTF8');
    }
    for (const r of calls) {
      expect(r.headers['x-adm-auth-session']).toBe('SESSION-1');
      expect(r.headers.authorization).toBeUndefined();
    }
  });

  it('takes the User-Agent, protocol version and base URL from the options', async () => {
    const { client } = await setup({ userAgent: 'custom/1', protocolVersion: '7' });
    await client.account();
    expect(apple.requests.every((r) => r.headers['user-agent'] === 'custom/1' && r.headers['x-server-protocol-version'] === '7')).toBe(true);
  });

  it('adopts a replacement session token from any response and reports it', async () => {
    const { client, sessions } = await setup();
    apple.on('GET /account', (_req, res) => {
      const fresh = apple.issueSession();
      json(res, 200, ACCOUNT, { 'X-ADM-Auth-Session': fresh });
    });
    await client.account();
    await client.account();
    expect(apple.calls('GET /account').map((r) => r.headers['x-adm-auth-session'])).toEqual(['SESSION-1', 'SESSION-2']);
    expect(sessions).toEqual(['SESSION-1', 'SESSION-2']);
    expect(client.sessionToken).toBe('SESSION-2');
    expect(apple.calls('GET /session')).toHaveLength(1);
  });

  it('adopts a session token sent with an error too', async () => {
    const { client } = await setup();
    apple.on('POST /devices/sync', (_req, res) => text(res, 400, 'EXPIRED_CURSOR', { 'X-ADM-Auth-Session': apple.issueSession() }));
    await rejection(client.syncDevices('C'));
    expect(client.sessionToken).toBe('SESSION-2');
  });

  it('starts from a shared session without calling /session', async () => {
    apple = await new FakeApple().start();
    const shared = apple.issueSession();
    apple.always('GET /account', (_req, res) => json(res, 200, ACCOUNT));
    const client = new DepClient({ tokens: TOKENS, baseUrl: apple.baseUrl, initialSession: shared });
    await client.account();
    expect(apple.requests.map((r) => r.path)).toEqual(['/account']);
    expect(apple.requests[0]?.headers['x-adm-auth-session']).toBe(shared);
  });

  it('a 401 drops the session, re-authenticates once and repeats the call', async () => {
    apple = await new FakeApple().start();
    apple.always('GET /account', (_req, res) => json(res, 200, ACCOUNT));
    const sessions: (string | undefined)[] = [];
    const client = new DepClient({ tokens: TOKENS, baseUrl: apple.baseUrl, initialSession: 'EXPIRED-SESSION', onSession: (s) => void sessions.push(s) });
    expect(await client.account()).toMatchObject({ server_name: 'OpenEnroll Test' });
    expect(apple.requests.map((r) => `${r.method} ${r.path} ${r.headers['x-adm-auth-session'] ?? '-'}`)).toEqual(['GET /account EXPIRED-SESSION', 'GET /session -', 'GET /account SESSION-1']);
    expect(sessions).toEqual([undefined, 'SESSION-1']);
  });

  it('re-authenticates only once: a second 401 fails the call', async () => {
    const { client, sleeps } = await setup();
    apple.on('GET /account', (_req, res) => text(res, 401, 'UNAUTHORIZED'), (_req, res) => text(res, 401, 'UNAUTHORIZED'));
    const err = await rejection(client.account());
    expect(err).toMatchObject({ status: 401, code: 'UNAUTHORIZED', needsAdmin: false });
    expect(apple.calls('GET /session')).toHaveLength(2);
    expect(apple.calls('GET /account')).toHaveLength(2);
    expect(sleeps).toEqual([]);
  });

  it('a 403 whose body says FORBIDDEN is a stale session: re-authenticate and repeat', async () => {
    const { client } = await setup();
    apple.on('GET /account', (_req, res) => text(res, 403, '"FORBIDDEN"'));
    await client.account();
    expect(apple.calls('GET /session')).toHaveLength(2);
    expect(apple.calls('GET /account')).toHaveLength(2);
  });

  it('one /session call however many requests wait for it', async () => {
    const { client } = await setup();
    await Promise.all([client.account(), client.account(), client.account(), client.account()]);
    expect(apple.calls('GET /session')).toHaveLength(1);
    expect(apple.calls('GET /account')).toHaveLength(4);
  });
});

describe('DepClient: refusals that need an admin are not retried', () => {
  it('403 T_C_NOT_SIGNED on a call throws at once', async () => {
    const { client, sleeps } = await setup();
    apple.always('POST /server/devices', (_req, res) => text(res, 403, 'T_C_NOT_SIGNED'));
    const err = await rejection(client.fetchDevices());
    expect(err).toMatchObject({ status: 403, code: 'T_C_NOT_SIGNED', needsAdmin: true });
    expect(apple.calls('POST /server/devices')).toHaveLength(1);
    expect(apple.calls('GET /session')).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('403 T_C_NOT_SIGNED or ACCESS_DENIED at /session throws at once', async () => {
    const { client } = await setup();
    apple.always('GET /session', (_req, res) => text(res, 403, '"T_C_NOT_SIGNED"'));
    expect(await rejection(client.account())).toMatchObject({ status: 403, code: 'T_C_NOT_SIGNED', needsAdmin: true });
    apple.always('GET /session', (_req, res) => json(res, 403, { code: 'ACCESS_DENIED' }));
    expect(await rejection(client.account())).toMatchObject({ status: 403, code: 'ACCESS_DENIED', needsAdmin: true });
    expect(apple.calls('GET /session')).toHaveLength(2);
    expect(apple.calls('GET /account')).toHaveLength(0);
  });

  it('a rejected server token (401 at /session) throws at once and names the problem', async () => {
    const { client, sleeps } = await setup();
    apple.always('GET /session', (_req, res) => text(res, 401, 'oauth_problem=token_rejected'));
    const err = await rejection(client.account());
    expect(err).toMatchObject({ status: 401, code: 'token_rejected', needsAdmin: true });
    apple.always('GET /session', (_req, res) => text(res, 401, 'Unauthorized'));
    expect(await rejection(client.account())).toMatchObject({ status: 401, code: 'oauth_problem', needsAdmin: true });
    expect(apple.calls('GET /session')).toHaveLength(2);
    expect(sleeps).toEqual([]);
  });

  it('a wrong secret is refused by the OAuth check (signature_invalid)', async () => {
    const { client: _unused } = await setup();
    const client = new DepClient({ tokens: { ...TOKENS, access_secret: 'wrong' }, baseUrl: apple.baseUrl });
    expect(await rejection(client.account())).toMatchObject({ status: 401, code: 'signature_invalid', needsAdmin: true });
  });

  it('an expired server token is refused before calling Apple', async () => {
    const { client } = await setup({ tokens: { ...TOKENS, access_token_expiry: '2026-03-10T11:59:59Z' } });
    expect(await rejection(client.account())).toMatchObject({ status: 401, code: 'token_expired', needsAdmin: true });
    expect(apple.requests).toHaveLength(0);
  });
});

describe('DepClient: throttling and transient failures', () => {
  it('429 with Retry-After in seconds waits that long, then succeeds', async () => {
    const { client, sleeps } = await setup();
    apple.on('GET /account', (_req, res) => text(res, 429, 'TOO_MANY_REQUESTS', { 'Retry-After': '7' }));
    await client.account();
    expect(sleeps).toEqual([7000]);
    expect(apple.calls('GET /account')).toHaveLength(2);
  });

  it('429 with Retry-After as an HTTP-date waits until then', async () => {
    const { client, sleeps, clock } = await setup();
    apple.on('GET /account', (_req, res) => text(res, 429, '', { 'Retry-After': new Date(clock.now().getTime() + 30 * SECOND).toUTCString() }));
    await client.account();
    expect(sleeps).toEqual([30_000]);
  });

  it('a Retry-After longer than the longest wait fails at once with retryAfterSeconds', async () => {
    const { client, sleeps } = await setup();
    apple.always('POST /devices/sync', (_req, res) => text(res, 429, 'TOO_MANY_REQUESTS', { 'Retry-After': '3600' }));
    const err = await rejection(client.syncDevices('CURSOR'));
    expect(err).toMatchObject({ status: 429, code: 'TOO_MANY_REQUESTS', retryAfterSeconds: 3600, needsAdmin: false });
    expect(sleeps).toEqual([]);
    expect(apple.calls('POST /devices/sync')).toHaveLength(1);
  });

  it('Retry-After is honoured at /session too', async () => {
    const { client, sleeps } = await setup();
    apple.on('GET /session', (_req, res) => text(res, 503, '', { 'Retry-After': '2' }));
    await client.account();
    expect(sleeps).toEqual([2000]);
  });

  it('503 without Retry-After backs off exponentially, bounded by maxRetries', async () => {
    const { client, sleeps } = await setup({ random: () => 0.999 });
    apple.always('GET /account', (_req, res) => text(res, 503, 'Service Unavailable'));
    const err = await rejection(client.account());
    expect(err).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(apple.calls('GET /account')).toHaveLength(4);
    expect(sleeps).toHaveLength(3);
    // Equal jitter: between half and all of 1 s, 2 s, 4 s.
    [1000, 2000, 4000].forEach((exp, i) => {
      expect(sleeps[i]).toBeGreaterThanOrEqual(exp / 2);
      expect(sleeps[i]).toBeLessThanOrEqual(exp);
    });
  });

  it('backoff never waits longer than maxDelayMs', async () => {
    const { client, sleeps } = await setup({ random: () => 0.999, retry: { maxRetries: 8, baseDelayMs: 1000, maxDelayMs: 5000 } });
    apple.always('GET /account', (_req, res) => text(res, 502, 'Bad Gateway'));
    await rejection(client.account());
    expect(sleeps).toHaveLength(8);
    expect(Math.max(...sleeps)).toBeLessThanOrEqual(5000);
  });

  it('500 once, then success', async () => {
    const { client, sleeps } = await setup();
    apple.on('GET /account', (_req, res) => text(res, 500, 'oops'));
    await client.account();
    expect(sleeps).toEqual([500]);
  });

  it('a dropped connection is retried', async () => {
    const { client, sleeps } = await setup();
    apple.on('GET /account', (_req, res) => res.socket?.destroy());
    await client.account();
    expect(sleeps).toHaveLength(1);
    expect(apple.calls('GET /account')).toHaveLength(2);
  });

  it('a hung request times out, is retried, and fails with TIMEOUT', async () => {
    const { client } = await setup({ requestTimeoutMs: 100, retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 10 } });
    apple.always('GET /account', () => {
      // never answers
    });
    const err = await rejection(client.account());
    expect(err).toMatchObject({ status: 0, code: 'TIMEOUT' });
    expect(apple.calls('GET /account')).toHaveLength(2);
  });

  it('a body that stops halfway times out too', async () => {
    const { client } = await setup({ requestTimeoutMs: 100, retry: { maxRetries: 0 } });
    apple.always('GET /account', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '1000' });
      res.write('{"server_name":');
    });
    expect(await rejection(client.account())).toMatchObject({ status: 0, code: 'TIMEOUT' });
  });

  it("the caller's signal cancels a hung request and any further retries", async () => {
    const abort = new AbortController();
    const { client } = await setup({ signal: abort.signal, requestTimeoutMs: 60_000 });
    apple.always('GET /account', () => {
      setTimeout(() => abort.abort(new Error('run cancelled')), 20);
    });
    await expect(client.account()).rejects.toThrow('run cancelled');
    expect(apple.calls('GET /account')).toHaveLength(1);
    await expect(client.account()).rejects.toThrow('run cancelled');
    expect(apple.calls('GET /account')).toHaveLength(1);
  });

  it('the real sleep is cut short by the signal', async () => {
    const abort = new AbortController();
    apple = await new FakeApple().start();
    apple.always('GET /account', (_req, res) => text(res, 503, '', { 'Retry-After': '50' }));
    const client = new DepClient({ tokens: TOKENS, baseUrl: apple.baseUrl, signal: abort.signal });
    const started = Date.now();
    setTimeout(() => abort.abort(new Error('stop')), 50);
    await expect(client.account()).rejects.toThrow('stop');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('DepClient: Apple error bodies', () => {
  it.each([
    ['plain', 'INVALID_CURSOR', 'INVALID_CURSOR'],
    ['quoted (depsim)', '"EXHAUSTED_CURSOR"', 'EXHAUSTED_CURSOR'],
    ['JSON', '{"code":"EXPIRED_CURSOR","message":"cursor older than 7 days"}', 'EXPIRED_CURSOR'],
    ['new JSON code', '{"error":"SOMETHING_NEW"}', 'SOMETHING_NEW'],
    ['bare new code', 'NEW_CODE_X', 'NEW_CODE_X'],
    ['HTML', '<html>Bad</html>', 'BAD_REQUEST'],
    ['empty', '', 'BAD_REQUEST'],
  ])('400 %s body → %s', async (_name, body, code) => {
    const { client, sleeps } = await setup();
    apple.always('POST /devices/sync', (_req, res) => text(res, 400, body));
    const err = await rejection(client.syncDevices('C1'));
    expect(err).toMatchObject({ status: 400, code, needsAdmin: false });
    expect(err.message).toContain('HTTP 400');
    expect(sleeps).toEqual([]);
  });

  it('USER_AGENT_INVALID is reported as such', async () => {
    const { client } = await setup();
    apple.always('GET /account', (_req, res) => text(res, 400, 'USER_AGENT_INVALID'));
    expect(await rejection(client.account())).toMatchObject({ code: 'USER_AGENT_INVALID' });
  });

  it('depErrorCode and parseRetryAfter', () => {
    expect(depErrorCode(403, 'T_C_NOT_SIGNED')).toBe('T_C_NOT_SIGNED');
    expect(depErrorCode(401, 'oauth_problem=nonce_used&x=1')).toBe('nonce_used');
    expect(depErrorCode(401, 'oauth_problem=something_else')).toBe('something_else');
    expect(depErrorCode(503, '<html/>')).toBe('SERVICE_UNAVAILABLE');
    expect(depErrorCode(507, '')).toBe('SERVER_ERROR');
    expect(depErrorCode(418, '')).toBe('HTTP_418');
    const now = new Date('2026-03-10T12:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Tue, 10 Mar 2026 12:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Tue, 10 Mar 2026 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('DepClient: answers are checked', () => {
  it.each([
    ['not JSON', (res: http.ServerResponse) => text(res, 200, '<html>')],
    ['no cursor', (res: http.ServerResponse) => json(res, 200, { devices: [], more_to_follow: false })],
    ['no more_to_follow', (res: http.ServerResponse) => json(res, 200, { devices: [], cursor: 'C' })],
    ['devices not a list', (res: http.ServerResponse) => json(res, 200, { devices: {}, cursor: 'C', more_to_follow: false })],
    ['device without serial', (res: http.ServerResponse) => json(res, 200, { devices: [{ model: 'iPad' }], cursor: 'C', more_to_follow: false })],
    ['device field of the wrong type', (res: http.ServerResponse) => json(res, 200, { devices: [{ serial_number: 'A', os: 5 }], cursor: 'C', more_to_follow: false })],
  ])('a device page with %s is MALFORMED_RESPONSE', async (_name, reply) => {
    const { client, sleeps } = await setup();
    apple.always('POST /server/devices', (_req, res) => reply(res));
    expect(await rejection(client.fetchDevices())).toMatchObject({ code: 'MALFORMED_RESPONSE' });
    expect(sleeps).toEqual([]);
  });

  it('a session answer without a token is MALFORMED_RESPONSE', async () => {
    const { client } = await setup();
    apple.always('GET /session', (_req, res) => json(res, 200, { something: 'else' }));
    expect(await rejection(client.account())).toMatchObject({ code: 'MALFORMED_RESPONSE' });
  });

  it('an account answer without server_uuid is MALFORMED_RESPONSE', async () => {
    const { client } = await setup();
    apple.always('GET /account', (_req, res) => json(res, 200, { server_name: 'x', org_name: 'y' }));
    expect(await rejection(client.account())).toMatchObject({ code: 'MALFORMED_RESPONSE' });
  });

  it('an empty sync page without a devices key is fine', async () => {
    const { client } = await setup();
    apple.always('POST /devices/sync', (_req, res) => json(res, 200, { cursor: 'C2', more_to_follow: false, fetched_until: '2026-03-10T12:00:00Z' }));
    expect(await client.syncDevices('C1')).toEqual({ devices: [], cursor: 'C2', more_to_follow: false, fetched_until: '2026-03-10T12:00:00Z' });
  });

  it('refuses answers over the size limit, declared or streamed', async () => {
    const { client } = await setup({ maxResponseBytes: 1000 });
    const big = { ...ACCOUNT, org_address: 'x'.repeat(5000) };
    apple.on('GET /account', (_req, res) => json(res, 200, big));
    expect(await rejection(client.account())).toMatchObject({ code: 'RESPONSE_TOO_LARGE' });
    apple.on('GET /account', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(big));
    });
    expect(await rejection(client.account())).toMatchObject({ code: 'RESPONSE_TOO_LARGE' });
  });
});

describe('DepClient: endpoints', () => {
  const device = (serial: string, extra: Partial<DepDevice> = {}): DepDevice => ({ serial_number: serial, model: 'iPad Air', os: 'iPadOS', device_family: 'iPad', ...extra });

  it('fetch and sync send the cursor and limit; sync needs a cursor', async () => {
    const { client } = await setup();
    apple.always('POST /server/devices', (_req, res) => json(res, 200, { devices: [device('A')], cursor: 'C1', more_to_follow: false }));
    apple.always('POST /devices/sync', (_req, res) => json(res, 200, { devices: [device('A', { op_type: 'modified', op_date: '2026-03-10T00:00:00Z' })], cursor: 'C2', more_to_follow: false }));
    expect((await client.fetchDevices()).devices[0]?.serial_number).toBe('A');
    await client.fetchDevices('C0', 500);
    expect((await client.syncDevices('C1', 200)).cursor).toBe('C2');
    expect(apple.calls('POST /server/devices').map((r) => JSON.parse(r.body))).toEqual([{}, { cursor: 'C0', limit: 500 }]);
    expect(JSON.parse(apple.calls('POST /devices/sync')[0]!.body)).toEqual({ cursor: 'C1', limit: 200 });
    expect(() => client.syncDevices('')).toThrow(/cursor/);
    expect(() => client.fetchDevices(undefined, 0)).toThrow(/limit/);
  });

  it('a first fetch of 80,000 devices pages through to the end, following each cursor', async () => {
    const { client } = await setup();
    const total = 80_000;
    apple.always('POST /server/devices', (req, res) => {
      const { cursor, limit } = JSON.parse(req.body) as { cursor?: string; limit: number };
      const start = cursor ? Number(cursor.slice(1)) : 0;
      if (start >= total) return text(res, 400, 'EXHAUSTED_CURSOR');
      const end = Math.min(total, start + limit);
      const devices = Array.from({ length: end - start }, (_, i) => device(`SN${String(start + i).padStart(8, '0')}`));
      json(res, 200, { devices, cursor: `P${end}`, more_to_follow: end < total });
    });
    const seen = new Set<string>();
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await client.fetchDevices(cursor, 1000);
      pages++;
      page.devices.forEach((d) => seen.add(d.serial_number));
      cursor = page.cursor;
      if (!page.more_to_follow) break;
    }
    expect(pages).toBe(80);
    expect(seen.size).toBe(total);
    expect(await rejection(client.fetchDevices(cursor, 1000))).toMatchObject({ code: 'EXHAUSTED_CURSOR' });
  });

  it('device details keep NOT_ACCESSIBLE serials that Apple sends without a serial_number', async () => {
    const { client } = await setup();
    apple.always('POST /devices', (_req, res) => json(res, 200, { devices: { A: { ...device('A'), response_status: 'SUCCESS' }, B: { response_status: 'NOT_ACCESSIBLE' } } }));
    const details = await client.deviceDetails(['A', 'B', 'A']);
    expect(details.B).toEqual({ serial_number: 'B', response_status: 'NOT_ACCESSIBLE' });
    expect(details.A?.response_status).toBe('SUCCESS');
    expect(JSON.parse(apple.calls('POST /devices')[0]!.body)).toEqual({ devices: ['A', 'B'] });
    expect(await client.deviceDetails([])).toEqual({});
    expect(apple.calls('POST /devices')).toHaveLength(1);
  });

  it('defines and gets a profile', async () => {
    const { client } = await setup();
    apple.always('POST /profile', (req, res) => {
      const p = JSON.parse(req.body) as { devices?: string[] };
      json(res, 200, { profile_uuid: 'P-UUID-1', devices: Object.fromEntries((p.devices ?? []).map((s) => [s, 'SUCCESS'])) });
    });
    apple.always('GET /profile', (req, res) => json(res, 200, { profile_name: 'Corp', url: 'https://mdm.example.com/enroll', profile_uuid: new URL(req.url, 'http://x').searchParams.get('profile_uuid') }));
    const defined = await client.defineProfile({ profile_name: 'Corp', url: 'https://mdm.example.com/enroll', is_mdm_removable: false, is_supervised: true, devices: ['A'] });
    expect(defined).toEqual({ profile_uuid: 'P-UUID-1', devices: { A: 'SUCCESS' } });
    const got = await client.getProfile('P UUID/1');
    expect(got).toMatchObject({ profile_name: 'Corp', profile_uuid: 'P UUID/1', is_mdm_removable: true });
    expect(apple.calls('GET /profile')[0]?.url).toBe('/profile?profile_uuid=P%20UUID%2F1');
  });

  it('assigns a profile with POST in batches of 1,000 and merges the results', async () => {
    const { client } = await setup();
    apple.always('POST /profile/devices', (req, res) => {
      const { profile_uuid, devices } = JSON.parse(req.body) as { profile_uuid: string; devices: string[] };
      const throttled = devices.includes('SN2100');
      json(res, 200, { profile_uuid, devices: Object.fromEntries(devices.map((s) => [s, s === 'SN2100' ? 'THROTTLED' : 'SUCCESS'])), ...(throttled ? { retry_after_seconds: 90 } : {}) });
    });
    const serials = Array.from({ length: 2500 }, (_, i) => `SN${i}`);
    const result = await client.assignProfile('P-1', serials);
    expect(apple.calls('POST /profile/devices').map((r) => (JSON.parse(r.body) as { devices: string[] }).devices.length)).toEqual([1000, 1000, 500]);
    expect(Object.keys(result.devices)).toHaveLength(2500);
    expect(result.devices.SN2100).toBe('THROTTLED');
    expect(result.retry_after_seconds).toBe(90);
    expect(result.profile_uuid).toBe('P-1');
  });

  it('a profile Apple does not know is a 404 error', async () => {
    const { client } = await setup();
    apple.always('POST /profile/devices', (_req, res) => text(res, 404, 'PROFILE_NOT_FOUND'));
    expect(await rejection(client.assignProfile('nope', ['A']))).toMatchObject({ status: 404, code: 'PROFILE_NOT_FOUND' });
  });

  it('removes profiles with DELETE /profile/devices and disowns with POST /devices/disown', async () => {
    const { client } = await setup();
    apple.always('DELETE /profile/devices', (req, res) => json(res, 200, { devices: Object.fromEntries((JSON.parse(req.body) as { devices: string[] }).devices.map((s) => [s, 'SUCCESS'])) }));
    apple.always('POST /devices/disown', (_req, res) => json(res, 200, { devices: { A: 'SUCCESS', B: 'NOT_ACCESSIBLE' } }));
    expect(await client.removeProfile(['A', 'B'])).toEqual({ A: 'SUCCESS', B: 'SUCCESS' });
    expect(await client.disownDevices(['A', 'B'])).toEqual({ A: 'SUCCESS', B: 'NOT_ACCESSIBLE' });
    expect(JSON.parse(apple.calls('DELETE /profile/devices')[0]!.body)).toEqual({ devices: ['A', 'B'] });
  });
});

describe('DepClient: logging', () => {
  it('logs requests and retries without tokens, secrets, sessions or OAuth headers', async () => {
    const { client, logs } = await setup();
    apple.on('GET /account', (_req, res) => text(res, 401, 'UNAUTHORIZED'), (_req, res) => text(res, 503, '', { 'Retry-After': '1' }));
    await client.account();
    apple.always('POST /server/devices', (_req, res) => text(res, 403, 'T_C_NOT_SIGNED'));
    await rejection(client.fetchDevices());
    const all = JSON.stringify(logs);
    expect(logs.length).toBeGreaterThan(3);
    for (const secret of [TOKENS.consumer_secret, TOKENS.access_secret, TOKENS.access_token, TOKENS.consumer_key, 'SESSION-1', 'SESSION-2', 'OAuth ', 'oauth_signature']) {
      expect(all).not.toContain(secret);
    }
    expect(logs.some((l) => l.msg === 'DEP request will be retried' && l.obj.status === 503)).toBe(true);
  });

  it('accepts a pino logger', async () => {
    const { client } = await setup({ logger: pino({ level: 'silent' }) });
    await client.account();
  });
});
