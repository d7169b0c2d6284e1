import { systemClock, type Clock } from '../../shared/time.js';
import {
  DepApiError,
  type DepAccount,
  type DepApi,
  type DepDevice,
  type DepDevicePage,
  type DepDeviceResult,
  type DepOAuthTokens,
  type DepProfile,
  type DepProfileResult,
} from './dep-api.js';
import { signOAuth1 } from './oauth1.js';

/**
 * HTTP client for Apple's device assignment ("DEP") service.
 *
 * - Sessions: GET /session signed with OAuth 1.0a gives an X-ADM-Auth-Session token, sent on every
 *   call; a replacement token in any response is adopted. A 401 (or a 403 whose body says FORBIDDEN,
 *   which is how Apple's simulator reports a stale session) drops the session, re-authenticates once
 *   and repeats the call.
 * - Refusals that need an admin in ABM/ASM (403 T_C_NOT_SIGNED / ACCESS_DENIED, a rejected or
 *   expired server token) throw at once: retrying can't fix them.
 * - 429, 5xx, network errors and timeouts are retried with exponential backoff and jitter, honouring
 *   Retry-After, up to `retry.maxRetries`; a Retry-After longer than `retry.maxDelayMs` fails at
 *   once with `retryAfterSeconds`, so the caller reschedules instead of sleeping for an hour.
 * - Responses are size-limited and checked; anything unexpected is MALFORMED_RESPONSE.
 * - Logs carry method, path, status, code and timings, never tokens, sessions or headers.
 */

export const DEFAULT_DEP_BASE_URL = 'https://mdmenrollment.apple.com';
/**
 * Apple refused "nanodep-godep/0" with USER_AGENT_INVALID and accepted "nanodep-g-o-dep/0"
 * (micromdm/nanodep#42, #49), so: a plain product/version token naming us and no library.
 */
export const DEFAULT_DEP_USER_AGENT = 'openenroll/0.1.0';
/**
 * Newest version Apple documents: 7 reports iPads as iPadOS, 8 adds mdm_migration_deadline,
 * 9 per-device THROTTLED on assign, 10 retry_after_seconds. Our types carry all of these.
 */
export const DEFAULT_DEP_PROTOCOL_VERSION = '10';
export const DEP_MEDIA_TYPE = 'application/json;charset=UTF8';
/** Apple asks for at most 1,000 devices per profile/device request. */
export const DEP_MAX_DEVICES_PER_REQUEST = 1000;

export interface DepRetryPolicy {
  /** Retries after the first attempt, for 429/5xx/network errors/timeouts. */
  maxRetries: number;
  /** First backoff; doubles on each retry. */
  baseDelayMs: number;
  /** Longest single wait: backoff is capped here, and a longer Retry-After fails at once. */
  maxDelayMs: number;
}

/** 5 retries from 1 s capped at 60 s: well inside the 15-minute sync run even with 60 s timeouts. */
export const DEFAULT_DEP_RETRY_POLICY: DepRetryPolicy = { maxRetries: 5, baseDelayMs: 1000, maxDelayMs: 60_000 };

/** What the client logs with; a pino logger fits. */
export interface DepLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface DepClientOptions {
  tokens: DepOAuthTokens;
  /** Default https://mdmenrollment.apple.com; the simulator's URL in tests. */
  baseUrl?: string;
  userAgent?: string;
  protocolVersion?: string;
  fetch?: typeof fetch;
  clock?: Clock;
  logger?: DepLogger;
  retry?: Partial<DepRetryPolicy>;
  /** Per HTTP attempt, including reading the body. Default 60 s. */
  requestTimeoutMs?: number;
  /** Cancels everything this client does (a sync run's abort signal). */
  signal?: AbortSignal;
  /** A session token from an earlier client (shared or persisted). */
  initialSession?: string;
  /** Called when the session token changes (undefined: dropped), so it can be shared or persisted. */
  onSession?: (session: string | undefined) => void | Promise<void>;
  /** Largest response body accepted. Default 32 MiB (a 1,000-device page is about 0.5 MiB). */
  maxResponseBytes?: number;
  /** Injectable for tests; must reject when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1). */
  random?: () => number;
}

const ERROR_BODY_LIMIT = 64 * 1024;

/** Apple's error strings, matched anywhere in a body because they come plain, quoted or in JSON. */
const KNOWN_CODES = [
  'T_C_NOT_SIGNED',
  'ACCESS_DENIED',
  'EXHAUSTED_CURSOR',
  'EXPIRED_CURSOR',
  'INVALID_CURSOR',
  'CURSOR_REQUIRED',
  'MALFORMED_REQUEST_BODY',
  'USER_AGENT_INVALID',
  'USER_AGENT_MISSING',
  'DEVICE_ID_REQUIRED',
  'PROFILE_UUID_REQUIRED',
  'PROFILE_NOT_FOUND',
  'CONFIG_NAME_INVALID',
  'CONFIG_NAME_REQUIRED',
  'CONFIG_URL_INVALID',
  'CONFIG_URL_REQUIRED',
  'DEPARTMENT_INVALID',
  'DEPARTMENT_REQUIRED',
  'FLAGS_INVALID',
  'LOCALE_INVALID',
  'MAGIC_INVALID',
  'SUPPORT_EMAIL_INVALID',
  'SUPPORT_PHONE_INVALID',
  'SUPPORT_PHONE_REQUIRED',
  'APPLE_SEED_FOR_IT_TURNED_OFF',
  'TOO_MANY_REQUESTS',
  'token_rejected',
  'token_expired',
  'token_revoked',
  'signature_invalid',
  'consumer_key_rejected',
  'consumer_key_unknown',
  'consumer_key_refused',
  'timestamp_refused',
  'nonce_used',
  // Last: a generic word other bodies may contain.
  'FORBIDDEN',
];

const STATUS_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_SERVER_ERROR',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
  504: 'GATEWAY_TIMEOUT',
};

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

/** Apple's code in an error body: a known code anywhere, an OAuth problem, a bare or quoted code, else the status. */
export function depErrorCode(status: number, body: string): string {
  for (const code of KNOWN_CODES) if (body.includes(code)) return code;
  const problem = /oauth_problem=([A-Za-z_]+)/.exec(body);
  if (problem?.[1]) return problem[1];
  const bare = body.trim().replace(/^"(.*)"$/s, '$1').trim();
  if (/^[A-Z][A-Z0-9_]{2,63}$/.test(bare)) return bare;
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed)) {
      for (const key of ['code', 'error_code', 'error']) {
        const v = parsed[key];
        if (typeof v === 'string' && /^[A-Za-z][A-Za-z0-9_]{2,63}$/.test(v)) return v;
      }
    }
  } catch {
    // not JSON
  }
  return STATUS_CODES[status] ?? (status >= 500 ? 'SERVER_ERROR' : `HTTP_${status}`);
}

/**
 * Retry-After as milliseconds from now: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable; a date in the past is 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A retryable failure of one attempt; the loop decides whether to wait and try again. */
class TransientFailure {
  constructor(
    readonly error: DepApiError,
    readonly retryAfterMs?: number,
  ) {}
}

interface CallSpec<T> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: unknown;
  parse: (json: unknown) => T;
}

export class DepClient implements DepApi {
  private readonly baseUrl: string;
  private readonly tokens: DepOAuthTokens;
  private readonly userAgent: string;
  private readonly protocolVersion: string;
  private readonly fetchImpl: typeof fetch;
  private readonly clock: Clock;
  private readonly logger: DepLogger | undefined;
  private readonly retry: DepRetryPolicy;
  private readonly requestTimeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  private readonly onSession: DepClientOptions['onSession'];
  private readonly maxResponseBytes: number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private session: string | undefined;
  private authenticating: Promise<string> | undefined;

  constructor(opts: DepClientOptions) {
    this.baseUrl = (opts.baseUrl ?? DEFAULT_DEP_BASE_URL).replace(/\/+$/, '');
    const parsed = new URL(this.baseUrl);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('DEP base URL must be http(s)');
    this.tokens = opts.tokens;
    this.userAgent = opts.userAgent ?? DEFAULT_DEP_USER_AGENT;
    this.protocolVersion = opts.protocolVersion ?? DEFAULT_DEP_PROTOCOL_VERSION;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger;
    this.retry = { ...DEFAULT_DEP_RETRY_POLICY, ...opts.retry };
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.signal = opts.signal;
    this.onSession = opts.onSession;
    this.maxResponseBytes = opts.maxResponseBytes ?? 32 * 1024 * 1024;
    this.sleep = opts.sleep ?? abortableSleep;
    this.random = opts.random ?? Math.random;
    this.session = opts.initialSession || undefined;
  }

  /** The current session token, if any (for callers that persist it themselves). */
  get sessionToken(): string | undefined {
    return this.session;
  }

  // ---- endpoints -------------------------------------------------------------------------

  account(): Promise<DepAccount> {
    return this.call({ method: 'GET', path: '/account', parse: parseAccount });
  }

  fetchDevices(cursor?: string, limit?: number): Promise<DepDevicePage> {
    return this.call({ method: 'POST', path: '/server/devices', body: pageRequest(cursor, limit), parse: parseDevicePage });
  }

  syncDevices(cursor: string, limit?: number): Promise<DepDevicePage> {
    if (!cursor) throw new Error('syncDevices needs the cursor of an earlier fetch or sync');
    return this.call({ method: 'POST', path: '/devices/sync', body: pageRequest(cursor, limit), parse: parseDevicePage });
  }

  async deviceDetails(serials: string[]): Promise<Record<string, DepDevice>> {
    const out: Record<string, DepDevice> = {};
    for (const chunk of chunks(serials)) {
      Object.assign(out, await this.call({ method: 'POST', path: '/devices', body: { devices: chunk }, parse: parseDeviceDetails }));
    }
    return out;
  }

  defineProfile(profile: DepProfile): Promise<DepProfileResult> {
    return this.call({ method: 'POST', path: '/profile', body: profile, parse: parseProfileResult });
  }

  getProfile(profileUuid: string): Promise<DepProfile> {
    if (!profileUuid) throw new Error('getProfile needs a profile UUID');
    return this.call({ method: 'GET', path: `/profile?profile_uuid=${encodeURIComponent(profileUuid)}`, parse: parseProfile });
  }

  /** POST /profile/devices (Apple's current docs; nanodep's PUT was for an old simulator), 1,000 serials a request. */
  async assignProfile(profileUuid: string, serials: string[]): Promise<DepProfileResult> {
    if (!profileUuid) throw new Error('assignProfile needs a profile UUID');
    const out: DepProfileResult = { profile_uuid: profileUuid, devices: {} };
    for (const chunk of chunks(serials)) {
      const r = await this.call({ method: 'POST', path: '/profile/devices', body: { profile_uuid: profileUuid, devices: chunk }, parse: parseProfileResult });
      Object.assign(out.devices, r.devices);
      if (r.profile_uuid) out.profile_uuid = r.profile_uuid;
      if (r.retry_after_seconds !== undefined) out.retry_after_seconds = Math.max(out.retry_after_seconds ?? 0, r.retry_after_seconds);
    }
    return out;
  }

  async removeProfile(serials: string[]): Promise<Record<string, DepDeviceResult>> {
    const out: Record<string, DepDeviceResult> = {};
    for (const chunk of chunks(serials)) {
      Object.assign(out, await this.call({ method: 'DELETE', path: '/profile/devices', body: { devices: chunk }, parse: parseDeviceResults }));
    }
    return out;
  }

  /** Permanent at Apple (and deprecated there); callers confirm first. */
  async disownDevices(serials: string[]): Promise<Record<string, DepDeviceResult>> {
    const out: Record<string, DepDeviceResult> = {};
    for (const chunk of chunks(serials)) {
      Object.assign(out, await this.call({ method: 'POST', path: '/devices/disown', body: { devices: chunk }, parse: parseDeviceResults }));
    }
    return out;
  }

  // ---- transport -------------------------------------------------------------------------

  private async call<T>(spec: CallSpec<T>): Promise<T> {
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      this.throwIfAborted();
      try {
        const session = await this.ensureSession();
        const res = await this.send(spec.method, spec.path, spec.body, { 'X-ADM-Auth-Session': session });
        await this.adoptSession(res.headers.get('x-adm-auth-session'));
        if (res.ok) return spec.parse(await this.readJson(res, spec));

        const body = await this.readErrorBody(res);
        const code = depErrorCode(res.status, body);
        const staleSession = res.status === 401 || (res.status === 403 && body.includes('FORBIDDEN'));
        if (staleSession && !reauthenticated) {
          reauthenticated = true;
          this.logger?.debug({ method: spec.method, path: spec.path, status: res.status, code }, 'DEP session refused; authenticating again');
          await this.dropSession(session);
          attempt--; // a re-authentication isn't a retry
          continue;
        }
        throw this.failure(spec.method, spec.path, res, code, body);
      } catch (err) {
        if (!(err instanceof TransientFailure)) throw err;
        await this.backoff(spec.method, spec.path, attempt, err);
      }
    }
  }

  /** Waits before the next attempt, or throws when the budget or the longest wait is exceeded. */
  private async backoff(method: string, path: string, attempt: number, failure: TransientFailure): Promise<void> {
    const { error, retryAfterMs } = failure;
    if (retryAfterMs !== undefined && retryAfterMs > this.retry.maxDelayMs) {
      this.logger?.warn({ method, path, status: error.status, code: error.code, retryAfterSeconds: error.retryAfterSeconds }, 'DEP asked to wait longer than we wait in one run');
      throw error;
    }
    if (attempt >= this.retry.maxRetries) {
      this.logger?.warn({ method, path, status: error.status, code: error.code, attempts: attempt + 1 }, 'DEP request failed after retries');
      throw error;
    }
    const delay = retryAfterMs !== undefined ? retryAfterMs + Math.floor(this.random() * Math.min(1000, this.retry.baseDelayMs)) : this.backoffDelay(attempt);
    this.logger?.debug({ method, path, status: error.status, code: error.code, attempt: attempt + 1, delayMs: delay }, 'DEP request will be retried');
    await this.sleep(delay, this.signal);
  }

  /** Exponential with "equal jitter": half fixed, half random, capped at maxDelayMs. */
  private backoffDelay(attempt: number): number {
    const exp = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** attempt);
    return Math.floor(exp / 2 + this.random() * (exp / 2));
  }

  private failure(method: string, path: string, res: Response, code: string, body: string): DepApiError | TransientFailure {
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), this.clock.now());
    const retryAfterSeconds = retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000);
    const snippet = body.trim().slice(0, 200).replace(/\s+/g, ' ');
    const message = `Apple DEP ${method} ${path.split('?')[0]}: HTTP ${res.status} ${code}${snippet && snippet.replace(/"/g, '') !== code ? ` (${snippet})` : ''}`;
    const error = new DepApiError(res.status, code, message, retryAfterSeconds);
    return RETRYABLE_STATUS.has(res.status) ? new TransientFailure(error, retryAfterMs) : error;
  }

  private async ensureSession(): Promise<string> {
    if (this.session) return this.session;
    // One /session call however many requests are waiting for it.
    this.authenticating ??= this.authenticate().finally(() => {
      this.authenticating = undefined;
    });
    return this.authenticating;
  }

  private async authenticate(): Promise<string> {
    const expiry = Date.parse(this.tokens.access_token_expiry);
    if (!Number.isNaN(expiry) && expiry <= this.clock.now().getTime()) {
      throw new DepApiError(401, 'token_expired', `The ABM/ASM server token expired at ${new Date(expiry).toISOString()}; download a new token from Apple and renew it`);
    }
    for (let attempt = 0; ; attempt++) {
      this.throwIfAborted();
      try {
        const url = `${this.baseUrl}/session`;
        const { header } = signOAuth1({
          method: 'GET',
          url,
          realm: 'ADM',
          timestamp: Math.floor(this.clock.now().getTime() / 1000),
          credentials: {
            consumerKey: this.tokens.consumer_key,
            consumerSecret: this.tokens.consumer_secret,
            token: this.tokens.access_token,
            tokenSecret: this.tokens.access_secret,
          },
        });
        const res = await this.send('GET', '/session', undefined, { Authorization: header });
        if (res.ok) {
          const token = parseSession(await this.readJson(res, { method: 'GET', path: '/session' }));
          this.logger?.debug({ path: '/session' }, 'DEP session opened');
          await this.adoptSession(token);
          return token;
        }
        const body = await this.readErrorBody(res);
        let code = depErrorCode(res.status, body);
        // Apple's 401s here are all about the OAuth credentials; name them so they show on the token.
        if (res.status === 401 && code === 'UNAUTHORIZED') code = 'oauth_problem';
        throw this.failure('GET', '/session', res, code, body);
      } catch (err) {
        if (!(err instanceof TransientFailure)) throw err;
        await this.backoff('GET', '/session', attempt, err);
      }
    }
  }

  private async adoptSession(token: string | null | undefined): Promise<void> {
    if (!token || token === this.session) return;
    this.session = token;
    await this.notifySession(token);
  }

  private async dropSession(used: string): Promise<void> {
    // Another request may already have replaced it.
    if (this.session !== used) return;
    this.session = undefined;
    await this.notifySession(undefined);
  }

  private async notifySession(token: string | undefined): Promise<void> {
    if (!this.onSession) return;
    try {
      await this.onSession(token);
    } catch (err) {
      // Persisting the session is an optimisation; the call itself goes on.
      this.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'storing the DEP session failed');
    }
  }

  /** One HTTP attempt. Network errors and timeouts become TransientFailure; the caller's abort is rethrown. */
  private async send(method: string, path: string, body: unknown, extraHeaders: Record<string, string>): Promise<Response> {
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    const signal = this.signal ? AbortSignal.any([this.signal, timeout]) : timeout;
    const started = Date.now();
    try {
      const res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers: {
          'User-Agent': this.userAgent,
          'X-Server-Protocol-Version': this.protocolVersion,
          'Content-Type': DEP_MEDIA_TYPE,
          Accept: DEP_MEDIA_TYPE,
          ...extraHeaders,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        redirect: 'error',
      });
      this.logger?.debug({ method, path: path.split('?')[0], status: res.status, ms: Date.now() - started }, 'DEP request');
      // The body is read later under the same signal, so the timeout covers it too.
      return res;
    } catch (err) {
      throw this.transportFailure(method, path, err, timeout);
    }
  }

  private transportFailure(method: string, path: string, err: unknown, timeout: AbortSignal): unknown {
    this.throwIfAborted();
    const cleanPath = path.split('?')[0];
    if (timeout.aborted) {
      return new TransientFailure(new DepApiError(0, 'TIMEOUT', `Apple DEP ${method} ${cleanPath}: no answer within ${this.requestTimeoutMs} ms`));
    }
    if (err instanceof DepApiError || err instanceof TransientFailure) return err;
    const cause = err instanceof Error ? ((err.cause as { code?: string } | undefined)?.code ?? err.message) : String(err);
    return new TransientFailure(new DepApiError(0, 'NETWORK_ERROR', `Apple DEP ${method} ${cleanPath}: ${cause}`));
  }

  private throwIfAborted(): void {
    if (this.signal?.aborted) throw this.signal.reason;
  }

  private async readJson(res: Response, spec: { method: string; path: string }): Promise<unknown> {
    let text: string;
    try {
      text = await readLimited(res, this.maxResponseBytes);
    } catch (err) {
      if (err instanceof DepApiError) throw err;
      throw this.transportFailureFromBody(spec, err);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new DepApiError(res.status, 'MALFORMED_RESPONSE', `Apple DEP ${spec.method} ${spec.path.split('?')[0]}: the answer isn't JSON`);
    }
  }

  private transportFailureFromBody(spec: { method: string; path: string }, err: unknown): unknown {
    this.throwIfAborted();
    const name = err instanceof Error ? err.name : '';
    const code = name === 'TimeoutError' || name === 'AbortError' ? 'TIMEOUT' : 'NETWORK_ERROR';
    return new TransientFailure(new DepApiError(0, code, `Apple DEP ${spec.method} ${spec.path.split('?')[0]}: the answer broke off (${code})`));
  }

  private async readErrorBody(res: Response): Promise<string> {
    try {
      return await readLimited(res, ERROR_BODY_LIMIT, true);
    } catch {
      this.throwIfAborted();
      return '';
    }
  }
}

/** Reads a body up to `limit` bytes: beyond it, truncates (error bodies) or refuses. */
async function readLimited(res: Response, limit: number, truncate = false): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (!truncate && Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw new DepApiError(res.status, 'RESPONSE_TOO_LARGE', `Apple DEP answered ${declared} bytes; the limit is ${limit}`);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      if (truncate) {
        parts.push(value.subarray(0, value.byteLength - (size - limit)));
        break;
      }
      throw new DepApiError(res.status, 'RESPONSE_TOO_LARGE', `Apple DEP answered more than ${limit} bytes`);
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString('utf8');
}

function pageRequest(cursor: string | undefined, limit: number | undefined): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (cursor) body.cursor = cursor;
  if (limit !== undefined) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error('DEP page limit must be a positive integer');
    body.limit = limit;
  }
  return body;
}

function chunks(serials: readonly string[]): string[][] {
  const unique = [...new Set(serials)];
  const out: string[][] = [];
  for (let i = 0; i < unique.length; i += DEP_MAX_DEVICES_PER_REQUEST) out.push(unique.slice(i, i + DEP_MAX_DEVICES_PER_REQUEST));
  return out;
}

// ---- response checks ---------------------------------------------------------------------

function malformed(what: string): DepApiError {
  return new DepApiError(200, 'MALFORMED_RESPONSE', `Apple DEP answer not understood: ${what}`);
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (!isRecord(v)) throw malformed(`${what} is not an object`);
  return v;
}

function requiredString(o: Record<string, unknown>, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw malformed(`${what}.${key} is missing`);
  return v;
}

function optionalStrings(o: Record<string, unknown>, keys: readonly string[], what: string): void {
  for (const k of keys) {
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'string') throw malformed(`${what}.${k} is not a string`);
  }
}

function parseSession(json: unknown): string {
  return requiredString(record(json, 'session'), 'auth_session_token', 'session');
}

function parseAccount(json: unknown): DepAccount {
  const o = record(json, 'account');
  requiredString(o, 'server_uuid', 'account');
  if (typeof o.server_name !== 'string') throw malformed('account.server_name is missing');
  if (typeof o.org_name !== 'string') throw malformed('account.org_name is missing');
  optionalStrings(o, ['admin_id', 'facilitator_id', 'org_email', 'org_phone', 'org_address', 'org_id', 'org_id_hash', 'org_type', 'org_version'], 'account');
  if (o.urls !== undefined) {
    if (!Array.isArray(o.urls)) throw malformed('account.urls is not a list');
    for (const u of o.urls) {
      const url = record(u, 'account.urls[]');
      requiredString(url, 'uri', 'account.urls[]');
      if (!Array.isArray(url.http_method) || url.http_method.some((m) => typeof m !== 'string')) throw malformed('account.urls[].http_method');
      if (url.limit !== undefined) {
        const l = record(url.limit, 'account.urls[].limit');
        if (typeof l.default !== 'number' || typeof l.maximum !== 'number') throw malformed('account.urls[].limit');
      }
    }
  }
  return o as unknown as DepAccount;
}

const DEVICE_STRING_FIELDS = [
  'model',
  'description',
  'color',
  'asset_tag',
  'device_family',
  'os',
  'profile_status',
  'profile_uuid',
  'profile_assign_time',
  'profile_push_time',
  'device_assigned_by',
  'device_assigned_date',
  'op_type',
  'op_date',
  'response_status',
  'mdm_migration_deadline',
];

function parseDevice(v: unknown, what: string): DepDevice {
  const d = record(v, what);
  requiredString(d, 'serial_number', what);
  optionalStrings(d, DEVICE_STRING_FIELDS, what);
  return d as unknown as DepDevice;
}

function parseDevicePage(json: unknown): DepDevicePage {
  const o = record(json, 'device page');
  const cursor = requiredString(o, 'cursor', 'device page');
  if (typeof o.more_to_follow !== 'boolean') throw malformed('device page.more_to_follow is missing');
  if (o.devices !== undefined && o.devices !== null && !Array.isArray(o.devices)) throw malformed('device page.devices is not a list');
  optionalStrings(o, ['fetched_until'], 'device page');
  const devices = ((o.devices as unknown[] | null | undefined) ?? []).map((d, i) => parseDevice(d, `devices[${i}]`));
  const page: DepDevicePage = { devices, cursor, more_to_follow: o.more_to_follow };
  if (typeof o.fetched_until === 'string') page.fetched_until = o.fetched_until;
  return page;
}

function parseDeviceDetails(json: unknown): Record<string, DepDevice> {
  const devices = record(record(json, 'device details').devices ?? {}, 'device details.devices');
  const out: Record<string, DepDevice> = {};
  for (const [serial, v] of Object.entries(devices)) {
    // Apple leaves serial_number out of NOT_ACCESSIBLE entries; the key is the serial.
    const d = record(v, `devices.${serial}`);
    out[serial] = parseDevice({ ...d, serial_number: typeof d.serial_number === 'string' && d.serial_number ? d.serial_number : serial }, `devices.${serial}`);
  }
  return out;
}

function parseResults(v: unknown, what: string): Record<string, DepDeviceResult> {
  const o = record(v ?? {}, what);
  for (const [serial, status] of Object.entries(o)) if (typeof status !== 'string') throw malformed(`${what}.${serial} is not a status`);
  return o as Record<string, DepDeviceResult>;
}

function parseDeviceResults(json: unknown): Record<string, DepDeviceResult> {
  return parseResults(record(json, 'result').devices, 'devices');
}

function parseProfileResult(json: unknown): DepProfileResult {
  const o = record(json, 'profile result');
  const result: DepProfileResult = { profile_uuid: requiredString(o, 'profile_uuid', 'profile result'), devices: parseResults(o.devices, 'devices') };
  if (o.retry_after_seconds !== undefined) {
    if (typeof o.retry_after_seconds !== 'number' || !(o.retry_after_seconds >= 0)) throw malformed('retry_after_seconds is not a number');
    result.retry_after_seconds = o.retry_after_seconds;
  }
  return result;
}

function parseProfile(json: unknown): DepProfile {
  const o = record(json, 'profile');
  requiredString(o, 'profile_name', 'profile');
  requiredString(o, 'url', 'profile');
  optionalStrings(o, ['configuration_web_url', 'department', 'support_phone_number', 'support_email_address', 'org_magic', 'language', 'region', 'profile_uuid'], 'profile');
  // Apple's default; the schema requires it but GET answers may leave it out.
  if (o.is_mdm_removable === undefined) o.is_mdm_removable = true;
  return o as unknown as DepProfile;
}
