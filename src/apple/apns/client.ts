import http2 from 'node:http2';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { CERTIFICATE_REASONS, parseApnsErrorBody } from './rules.js';

/** A tenant's push certificate, ready to open a TLS session with. */
export interface ApnsCredentials {
  tenantId: string;
  topic: string;
  certificatePem: string;
  keyPem: string;
  /** SHA-256 of the certificate DER (upper-case hex): a new one means a new session. */
  thumbprint: string;
  serialNumberHex: string;
  /** The certificate's notBefore (ms): of two certificates, the later one is the renewal. */
  notBefore: number;
}

export interface ApnsRequest {
  /** Lower-case hex device token. */
  token: string;
  topic: string;
  body: string;
  /** apns-expiration (epoch seconds). */
  expiration: string;
  priority: '5' | '10';
  /** Our canonical UUID for the notification, echoed by APNs and used in logs. */
  apnsId: string;
}

export interface ApnsResponse {
  status: number;
  apnsId: string | undefined;
  reason: string | undefined;
  /** 410: when APNs last knew the token was invalid (ms since the epoch). */
  timestamp: number | undefined;
  retryAfter: string | undefined;
}

/** The push never got an HTTP answer: connect/TLS failure, reset, GOAWAY, timeout, or the session closed. */
export class ApnsTransportError extends Error {
  constructor(
    message: string,
    /** A short code (Timeout, Connect, StreamReset, SessionClosed, Aborted) or APNs' GOAWAY reason. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  /** A GOAWAY carrying a certificate reason: the certificate is refused, not the network. */
  get certificateRefused(): boolean {
    return CERTIFICATE_REASONS.has(this.reason);
  }
}

export interface ApnsClientOptions {
  /** https://api.push.apple.com, or a simulator; a path, if any, prefixes /3/device/. */
  baseUrl: string;
  /** PEM CA(s) trusted besides Node's public roots (tests trust the simulator's CA). */
  extraCaPem?: string | undefined;
  /** Streams in flight per session; APNs advertises its own limit (commonly 1000) and the lower wins. */
  maxConcurrentStreams?: number;
  /** Per push: no answer by then cancels the stream. */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** HTTP/2 PING to keep the connection warm and find dead ones. */
  pingIntervalMs?: number;
  /** An unused connection is closed after this long (Apple: keep connections open, don't churn them). */
  idleTimeoutMs?: number;
  logger: Logger;
}

export interface ApnsSessionInfo {
  tenantId: string;
  serialNumberHex: string;
  /** Retired (certificate replaced or refused): finishing its pushes, then closing. */
  draining: boolean;
  connected: boolean;
  inFlight: number;
}

const DEFAULTS = { maxConcurrentStreams: 500, requestTimeoutMs: 15_000, connectTimeoutMs: 10_000, pingIntervalMs: 60_000, idleTimeoutMs: 15 * 60_000 };
const MAX_ERROR_BODY = 8192;

type Settings = Required<Omit<ApnsClientOptions, 'extraCaPem' | 'logger' | 'baseUrl'>> & { logger: Logger; ca: string[] | undefined; origin: string; pathPrefix: string };

/** APNs' reason from a connection's GOAWAY debug data, so the streams it fails can say why. */
const goawayReasons = new WeakMap<http2.ClientHttp2Session, string>();

/**
 * HTTP/2 connections to APNs: one session per tenant and push certificate, multiplexing pushes up
 * to a stream limit. When a renewed certificate shows up, its session becomes the tenant's current
 * one and the old session is retired: it finishes the pushes it holds, then closes. So a renewal
 * needs no restart, and a batch that started before it doesn't bounce the tenant back.
 */
export class ApnsClient {
  private readonly settings: Settings;
  /** By tenant and certificate thumbprint. */
  private readonly sessions = new Map<string, ApnsSession>();
  /** The tenant's newest certificate's session. */
  private readonly current = new Map<string, ApnsSession>();
  private closed = false;

  constructor(opts: ApnsClientOptions) {
    const url = new URL(opts.baseUrl);
    if (url.protocol !== 'https:') throw new Error(`APNs URL must be https, got ${opts.baseUrl}`);
    this.settings = {
      maxConcurrentStreams: opts.maxConcurrentStreams ?? DEFAULTS.maxConcurrentStreams,
      requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      pingIntervalMs: opts.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
      idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      logger: opts.logger,
      // Adding a CA must not drop the public roots Apple's servers chain to.
      ca: opts.extraCaPem ? [...tls.rootCertificates, opts.extraCaPem] : undefined,
      origin: url.origin,
      pathPrefix: url.pathname.replace(/\/+$/, ''),
    };
  }

  /** Sends one push on the session of these credentials; rejects only with ApnsTransportError. */
  send(creds: ApnsCredentials, req: ApnsRequest, signal?: AbortSignal): Promise<ApnsResponse> {
    if (this.closed) return Promise.reject(new ApnsTransportError('APNs client is closed', 'SessionClosed'));
    return this.sessionFor(creds).send(req, signal);
  }

  private sessionFor(creds: ApnsCredentials): ApnsSession {
    const key = `${creds.tenantId}\n${creds.thumbprint}`;
    const existing = this.sessions.get(key);
    if (existing && !existing.closed && !existing.refused) return existing;
    const session = new ApnsSession(creds, this.settings, () => {
      if (this.sessions.get(key) === session) this.sessions.delete(key);
      if (this.current.get(creds.tenantId) === session) this.current.delete(creds.tenantId);
    });
    this.sessions.set(key, session);
    const current = this.current.get(creds.tenantId);
    if (current && current.notBefore > creds.notBefore) {
      // Credentials read before a renewal: serve the pushes that hold them, then close.
      session.draining = true;
      return session;
    }
    this.current.set(creds.tenantId, session);
    if (current) {
      this.settings.logger.info(
        { tenantId: creds.tenantId, oldSerial: current.serialNumberHex, newSerial: creds.serialNumberHex },
        'APNs push certificate changed: new session; the old one closes after its pushes finish',
      );
      current.retire();
    }
    return session;
  }

  /** Retires a tenant's sessions (certificate refused or gone); the pushes they hold finish. */
  forget(tenantId: string): void {
    for (const s of this.sessions.values()) if (s.tenantId === tenantId) s.retire();
    this.current.delete(tenantId);
  }

  /** Sessions (for health and tests). */
  sessionInfo(): ApnsSessionInfo[] {
    return [...this.sessions.values()].map((s) => ({ tenantId: s.tenantId, serialNumberHex: s.serialNumberHex, draining: s.draining, connected: s.connected, inFlight: s.inFlight }));
  }

  /** Closes every session, letting in-flight pushes finish up to `graceMs`; queued ones fail. */
  async close(graceMs = 5000): Promise<void> {
    this.closed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.current.clear();
    await Promise.all(all.map((s) => s.close(graceMs)));
  }
}

/** One tenant + certificate: a (re)connecting HTTP/2 session and its stream slots. */
class ApnsSession {
  readonly tenantId: string;
  readonly serialNumberHex: string;
  readonly notBefore: number;
  closed = false;
  draining = false;
  /** APNs refused this certificate: whatever is queued here fails with this reason instead of going out. */
  refused: string | undefined;
  private conn: http2.ClientHttp2Session | undefined;
  private connecting: Promise<http2.ClientHttp2Session> | undefined;
  private active = 0;
  /** FIFO of pushes waiting for a stream slot (a head index: shift() on thousands is quadratic). */
  private waiters: Array<() => void> = [];
  private head = 0;
  private lastUsed = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  /** Resolves close() once the last in-flight stream is done. */
  private drained: (() => void) | undefined;
  private readonly log: Logger;

  constructor(
    private readonly creds: ApnsCredentials,
    private readonly s: Settings,
    private readonly onClosed: () => void,
  ) {
    this.tenantId = creds.tenantId;
    this.serialNumberHex = creds.serialNumberHex;
    this.notBefore = creds.notBefore;
    this.log = s.logger.child({ tenantId: creds.tenantId, certificateSerial: creds.serialNumberHex });
  }

  get connected(): boolean {
    return !!this.conn && !this.conn.closed && !this.conn.destroyed;
  }

  get inFlight(): number {
    return this.active;
  }

  private get idle(): boolean {
    return this.active === 0 && this.head === this.waiters.length;
  }

  async send(req: ApnsRequest, signal?: AbortSignal): Promise<ApnsResponse> {
    await this.acquire(signal);
    try {
      if (this.refused) throw new ApnsTransportError(`APNs refused the certificate (${this.refused})`, this.refused);
      if (this.closed) throw new ApnsTransportError('APNs session closed (shutting down)', 'SessionClosed');
      this.lastUsed = Date.now();
      const conn = await this.connection();
      const res = await this.request(conn, req);
      // Before the slot passes on: the next push in the queue must not go out with a refused certificate.
      if (res.status === 403 || (res.reason !== undefined && CERTIFICATE_REASONS.has(res.reason))) this.refuse(res.reason ?? 'Forbidden');
      return res;
    } catch (err) {
      if (err instanceof ApnsTransportError && err.certificateRefused) this.refuse(err.reason);
      throw err;
    } finally {
      this.release();
    }
  }

  private refuse(reason: string): void {
    this.refused ??= reason;
    this.retire();
  }

  /** No new work comes here; what it holds finishes, then it closes. */
  retire(): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    if (this.idle) void this.close();
  }

  /** The lower of our limit and what APNs advertises (it may start low and raise it). */
  private limit(): number {
    const remote = this.conn?.remoteSettings?.maxConcurrentStreams;
    return Math.max(1, Math.min(this.s.maxConcurrentStreams, remote ?? this.s.maxConcurrentStreams));
  }

  /**
   * A stream slot. An aborted batch is checked when its turn comes rather than by a listener per
   * waiter (thousands of listeners make every removal linear); the freed slot passes straight on.
   */
  private async acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw abortError(signal);
    if (this.active < this.limit() && this.idleQueue()) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => {
      this.waiters.push(() => {
        this.active++;
        resolve();
      });
    });
    if (signal?.aborted) {
      this.release();
      throw abortError(signal);
    }
  }

  private idleQueue(): boolean {
    return this.head === this.waiters.length;
  }

  private release(): void {
    this.active--;
    this.wake();
    if (this.active === 0) this.drained?.();
    if (this.draining && this.idle) void this.close();
  }

  private wake(): void {
    while (this.head < this.waiters.length && (this.closed || this.active < this.limit())) {
      const grant = this.waiters[this.head]!;
      this.waiters[this.head++] = noop;
      grant();
    }
    if (this.head > 0 && this.idleQueue()) {
      this.waiters = [];
      this.head = 0;
    }
  }

  private connection(): Promise<http2.ClientHttp2Session> {
    if (this.connected) return Promise.resolve(this.conn!);
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private open(): Promise<http2.ClientHttp2Session> {
    return new Promise((resolve, reject) => {
      const conn = http2.connect(this.s.origin, {
        cert: this.creds.certificatePem,
        key: this.creds.keyPem,
        ...(this.s.ca ? { ca: this.s.ca } : {}),
        minVersion: 'TLSv1.2',
        settings: { enablePush: false },
      });
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        conn.destroy();
        const message = err instanceof Error ? err.message : String(err);
        this.log.warn({ err: message }, 'APNs connection failed');
        reject(new ApnsTransportError(`APNs connection failed: ${message}`, 'Connect', { cause: err }));
      };
      const connectTimer = setTimeout(() => fail(new Error(`no connection within ${this.s.connectTimeoutMs} ms`)), this.s.connectTimeoutMs);
      conn.once('error', fail);
      conn.once('connect', () => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        conn.off('error', fail);
        this.attach(conn);
        resolve(conn);
      });
    });
  }

  private attach(conn: http2.ClientHttp2Session): void {
    this.conn = conn;
    const detach = (): void => {
      if (this.conn === conn) this.conn = undefined;
    };
    conn.on('error', (err: Error) => {
      this.log.warn({ err: err.message }, 'APNs connection error; the next push reconnects');
      detach();
    });
    conn.on('goaway', (code: number, _lastStreamId: number, opaque?: Buffer) => {
      // APNs may say why in the GOAWAY's debug data ({"reason": …}); streams it didn't take fail and are retried.
      const { reason } = parseApnsErrorBody(opaque?.toString('utf8') ?? '');
      if (reason) goawayReasons.set(conn, reason);
      this.log.info({ code, reason }, 'APNs sent GOAWAY; the next push reconnects');
      detach();
    });
    conn.on('close', detach);
    // More slots may open when APNs raises its stream limit after the handshake.
    conn.on('remoteSettings', () => this.wake());
    this.schedulePing(conn);
  }

  /** Keep-alive PING; an unanswered one or a long-idle connection closes it (the session reconnects on demand). */
  private schedulePing(conn: http2.ClientHttp2Session): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (conn.closed || conn.destroyed) return clearInterval(this.timer);
      if (this.idle && Date.now() - this.lastUsed >= this.s.idleTimeoutMs) {
        this.log.debug('closing idle APNs connection');
        clearInterval(this.timer);
        if (this.conn === conn) this.conn = undefined;
        conn.close();
        return;
      }
      const deadline = setTimeout(() => {
        this.log.warn('APNs PING unanswered; dropping the connection');
        conn.destroy();
      }, this.s.requestTimeoutMs);
      deadline.unref();
      const sent = conn.ping((err) => {
        clearTimeout(deadline);
        if (err && !conn.destroyed) conn.destroy();
      });
      if (!sent) clearTimeout(deadline);
    }, Math.max(1000, Math.min(this.s.pingIntervalMs, this.s.idleTimeoutMs)));
    this.timer.unref();
  }

  private request(conn: http2.ClientHttp2Session, req: ApnsRequest): Promise<ApnsResponse> {
    return new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = conn.request({
          ':method': 'POST',
          ':path': `${this.s.pathPrefix}/3/device/${req.token}`,
          'apns-push-type': 'mdm',
          'apns-topic': req.topic,
          'apns-priority': req.priority,
          'apns-expiration': req.expiration,
          'apns-id': req.apnsId,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(req.body),
        });
      } catch (err) {
        // GOAWAY received, session closing, or stream ids used up: the next attempt reconnects.
        if (this.conn === conn) this.conn = undefined;
        conn.close();
        reject(new ApnsTransportError(`APNs session unusable: ${(err as Error).message}`, goawayReasons.get(conn) ?? 'SessionClosed', { cause: err }));
        return;
      }
      let settled = false;
      let response: { status: number; apnsId: string | undefined; retryAfter: string | undefined } | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      const fail = (message: string, reason: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        reject(new ApnsTransportError(message, reason, { cause }));
      };
      stream.setTimeout(this.s.requestTimeoutMs, () => {
        fail(`APNs didn't answer within ${this.s.requestTimeoutMs} ms`, 'Timeout');
        stream.close(http2.constants.NGHTTP2_CANCEL);
      });
      stream.on('response', (headers) => {
        response = { status: Number(headers[':status']), apnsId: header(headers['apns-id']), retryAfter: header(headers['retry-after']) };
      });
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_ERROR_BODY) chunks.push(chunk);
      });
      stream.on('end', () => {
        if (settled) return;
        if (!response) return fail('APNs stream ended without a response', 'StreamReset');
        settled = true;
        const { reason, timestamp } = response.status === 200 ? {} : parseApnsErrorBody(Buffer.concat(chunks).toString('utf8'));
        resolve({ ...response, reason, timestamp });
      });
      stream.on('error', (err: Error) => fail(`APNs stream failed: ${err.message}`, goawayReasons.get(conn) ?? 'StreamReset', err));
      stream.on('close', () => {
        if (!settled) fail(`APNs stream closed (code ${stream.rstCode ?? 'none'})`, goawayReasons.get(conn) ?? 'StreamReset');
      });
      stream.end(req.body);
    });
  }

  /**
   * Closes the session: queued pushes fail with SessionClosed, pushes in flight get up to `graceMs`
   * to finish, then the connection closes. We wait for our streams ourselves before sending GOAWAY,
   * because a peer may refuse streams it hasn't answered once it sees one.
   */
  close(graceMs = 5000): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      clearInterval(this.timer);
      this.onClosed();
      this.wake();
      const deadline = Date.now() + graceMs;
      if (this.active > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, graceMs);
          t.unref();
          this.drained = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      const conn = this.conn ?? (await this.connecting?.catch(() => undefined));
      this.conn = undefined;
      if (!conn || conn.destroyed) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(
          () => {
            conn.destroy();
            resolve();
          },
          Math.max(0, deadline - Date.now()),
        );
        t.unref();
        conn.close(() => {
          clearTimeout(t);
          resolve();
        });
      });
    })();
    return this.closing;
  }
}

function header(v: string | string[] | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v[0] : String(v);
}

function noop(): void {}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new ApnsTransportError(String(r ?? 'aborted'), 'Aborted');
}
