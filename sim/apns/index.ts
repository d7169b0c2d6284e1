import crypto from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { systemClock, type Clock } from '../../src/shared/time.js';
import { simulatorServerCertificate } from './tls.js';

/**
 * A strict simulator of the APNs provider API for MDM pushes (HTTP/2 over TLS with certificate
 * authentication). It imports nothing from `src/` but the Clock. See README.md for the behaviour and
 * the choices made where Apple is silent.
 */

export interface ApnsSimulatorOptions {
  /** PEM of the CA(s) standing in for Apple's push certificate issuer: client certificates must chain to one. */
  caCertPem: string | readonly string[];
  /** The server's TLS certificate and key (PEM); generated (with its own CA) when absent. */
  serverCertPem?: string;
  serverKeyPem?: string;
  /** The CA of a given server certificate, handed back as `caPem`. */
  serverCaPem?: string;
  host?: string;
  port?: number;
  clock?: Clock;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients; APNs uses 1000. */
  maxConcurrentStreams?: number;
  /** Apple's limit for notification payloads: 4096 bytes. */
  maxPayloadBytes?: number;
  /** Log each push to the console. */
  logger?: boolean;
}

/** Every request the simulator answered, accepted or not. */
export interface RecordedPush {
  apnsId: string;
  /** The hex token from the path, lower-cased. */
  token: string;
  /** apns-topic as sent; null when absent (APNs then uses the certificate's topic). */
  topic: string | null;
  /** UID of the client certificate: the topic it may push to. */
  certificateTopic: string | null;
  /** Upper-case hex serial of the client certificate. */
  certificateSerial: string;
  certificateFingerprint256: string;
  pushType: string | null;
  priority: string | null;
  expiration: string | null;
  /** Request headers (pseudo-headers excluded), last value wins. */
  headers: Record<string, string>;
  body: string;
  /** The body's `mdm` value when it was a valid MDM payload. */
  pushMagic: string | null;
  status: number;
  reason: string | null;
  /** Which TLS connection carried it (1, 2, …). */
  connectionId: number;
  at: Date;
}

/** What a subscribed device receives. */
export interface DeliveredNotification {
  token: string;
  topic: string;
  pushMagic: string;
  apnsId: string;
  at: Date;
}

/** An injected answer for the next matching request(s). */
export interface ApnsFault {
  /** Answer with this status; absent: only delay, then answer normally. */
  status?: number;
  /** The JSON body's reason; defaults by status (429 TooManyRequests, 500 InternalServerError, 503 ServiceUnavailable, 403 BadCertificate, 410 Unregistered, 400 BadDeviceToken). */
  reason?: string;
  /** How many requests it applies to; default 1, Infinity for all. */
  times?: number;
  /** Only requests for this token. */
  token?: string;
  /** Adds a Retry-After header (seconds). */
  retryAfterSeconds?: number;
  /** Waits this long before answering. */
  delayMs?: number;
  /** Never answers (until the client gives up and resets the stream). */
  hang?: boolean;
}

export interface ApnsSimulatorStats {
  /** Open TLS connections. */
  connections: number;
  /** Connections ever accepted. */
  totalConnections: number;
  /** Streams being answered now, and the most seen at once. */
  inFlight: number;
  maxInFlight: number;
}

export interface ApnsSimulator {
  /** https://127.0.0.1:<port> */
  url: string;
  /** The CA of the server's TLS certificate: what a client must trust (OPENENROLL_APNS_CA_FILE). */
  caPem: string;
  readonly pushes: readonly RecordedPush[];
  /** Accepted pushes (200), optionally for one token. */
  delivered(token?: string): RecordedPush[];
  failNext(fault: ApnsFault): void;
  clearFaults(): void;
  /** The token is gone: 410 Unregistered (with this timestamp) from now on, until registered again. */
  unregister(token: string, at?: Date): void;
  /** A (new) token: clears an unregistration; with a topic, pushes on another topic get 400 DeviceTokenNotForTopic. */
  register(token: string, topic?: string): void;
  /** Pushes made with this client certificate (serial, hex) get 403 BadCertificate. */
  revokeCertificate(serialHex: string): void;
  /** A device listening on its token; the last undelivered push (unless expired) arrives at once. Returns unsubscribe. */
  subscribe(token: string, listener: (n: DeliveredNotification) => void): () => void;
  /** Sends GOAWAY (with `{"reason": …}` debug data) on every open connection, then closes them gracefully. */
  goAway(reason?: string): void;
  /** Distinct client certificate serials seen, in order. */
  clientCertificateSerials(): string[];
  readonly stats: ApnsSimulatorStats;
  /** Forgets recorded pushes, faults and counters (not registrations or revocations). */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_REASON: Record<number, string> = {
  400: 'BadDeviceToken',
  403: 'BadCertificate',
  404: 'BadPath',
  405: 'MethodNotAllowed',
  410: 'Unregistered',
  413: 'PayloadTooLarge',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
};
const PUSH_TYPES = new Set(['alert', 'background', 'location', 'voip', 'complication', 'fileprovider', 'mdm', 'liveactivity', 'pushtotalk', 'controls', 'widgets']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TOKEN = /^[0-9a-fA-F]{64,200}$/;
const MDM_TOPIC = /^com\.apple\.mgmt\./;

class Refusal {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly timestamp?: number,
  ) {}
}

interface ConnectionInfo {
  id: number;
  serial: string;
  fingerprint256: string;
  uid: string | null;
}

export async function startApnsSimulator(opts: ApnsSimulatorOptions): Promise<ApnsSimulator> {
  const clock = opts.clock ?? systemClock;
  const maxPayload = opts.maxPayloadBytes ?? 4096;
  let tlsMaterial: { caPem: string; certPem: string; keyPem: string };
  if (opts.serverCertPem || opts.serverKeyPem) {
    if (!opts.serverCertPem || !opts.serverKeyPem) throw new Error('serverCertPem and serverKeyPem go together');
    tlsMaterial = { caPem: opts.serverCaPem ?? opts.serverCertPem, certPem: opts.serverCertPem, keyPem: opts.serverKeyPem };
  } else {
    tlsMaterial = await simulatorServerCertificate(opts.host && opts.host !== '127.0.0.1' ? [opts.host] : []);
  }

  const pushes: RecordedPush[] = [];
  let faults: Array<ApnsFault & { left: number }> = [];
  const unregistered = new Map<string, number>();
  const tokenTopics = new Map<string, string>();
  const revoked = new Set<string>();
  const listeners = new Map<string, Set<(n: DeliveredNotification) => void>>();
  const stored = new Map<string, { n: DeliveredNotification; expiresAt: number | null }>();
  const serials: string[] = [];
  const sessions = new Map<http2.Http2Session, ConnectionInfo>();
  const stats: ApnsSimulatorStats = { connections: 0, totalConnections: 0, inFlight: 0, maxInFlight: 0 };
  const hanging = new Set<http2.ServerHttp2Stream>();

  const server = http2.createSecureServer({
    key: tlsMaterial.keyPem,
    cert: tlsMaterial.certPem,
    ca: typeof opts.caCertPem === 'string' ? [opts.caCertPem] : [...opts.caCertPem],
    // APNs authenticates the provider by its certificate: no certificate, no connection.
    requestCert: true,
    rejectUnauthorized: true,
    allowHTTP1: false,
    minVersion: 'TLSv1.2',
    settings: { maxConcurrentStreams: opts.maxConcurrentStreams ?? 1000 },
  });

  server.on('session', (session) => {
    const socket = session.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    const info: ConnectionInfo = {
      id: ++stats.totalConnections,
      serial: (peer.serialNumber ?? '').toUpperCase(),
      fingerprint256: peer.fingerprint256 ?? '',
      uid: typeof peer.subject?.UID === 'string' ? peer.subject.UID : null,
    };
    if (info.serial && !serials.includes(info.serial)) serials.push(info.serial);
    sessions.set(session, info);
    stats.connections++;
    session.on('close', () => {
      sessions.delete(session);
      stats.connections--;
    });
    session.on('error', () => undefined);
  });
  server.on('sessionError', () => undefined);

  // Node passes the raw header list as a 4th argument (untyped): needed to see duplicated headers.
  server.on('stream', ((stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    const session = stream.session!;
    const conn = sessions.get(session);
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    stream.on('close', () => {
      stats.inFlight--;
      hanging.delete(stream);
    });
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= maxPayload + 1) chunks.push(c);
    });
    stream.on('end', () => {
      void handle(stream, headers, rawHeaders ?? [], conn, Buffer.concat(chunks).toString('utf8'), size).catch(() => {
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
    });
  }) as (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => void);

  async function handle(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[], conn: ConnectionInfo | undefined, body: string, size: number): Promise<void> {
    const apnsIdHeader = str(headers['apns-id']);
    const apnsId = apnsIdHeader && UUID.test(apnsIdHeader) ? apnsIdHeader : crypto.randomUUID();
    const path = str(headers[':path']) ?? '';
    const tokenMatch = /^\/3\/device\/([^/?#]*)$/.exec(path);
    const token = (tokenMatch?.[1] ?? '').toLowerCase();
    const record: RecordedPush = {
      apnsId,
      token,
      topic: str(headers['apns-topic']) ?? null,
      certificateTopic: conn?.uid ?? null,
      certificateSerial: conn?.serial ?? '',
      certificateFingerprint256: conn?.fingerprint256 ?? '',
      pushType: str(headers['apns-push-type']) ?? null,
      priority: str(headers['apns-priority']) ?? null,
      expiration: str(headers['apns-expiration']) ?? null,
      headers: plainHeaders(headers),
      body,
      pushMagic: null,
      status: 0,
      reason: null,
      connectionId: conn?.id ?? 0,
      at: clock.now(),
    };

    const fault = takeFault(token);
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (fault?.hang) {
      hanging.add(stream);
      return;
    }
    let outcome: Refusal | null;
    if (fault?.status !== undefined) {
      outcome = new Refusal(fault.status, fault.reason ?? DEFAULT_REASON[fault.status] ?? 'InternalServerError', fault.status === 410 ? clock.now().getTime() : undefined);
    } else {
      outcome = check(headers, rawHeaders, conn, tokenMatch ? token : null, body, size, record);
    }
    if (stream.destroyed || stream.closed) return;
    record.status = outcome?.status ?? 200;
    record.reason = outcome?.reason ?? null;
    pushes.push(record);
    if (opts.logger) console.log(`[apns-sim] ${record.status} ${record.reason ?? ''} token=${token.slice(0, 12)}… conn=${record.connectionId}`);
    const responseHeaders: http2.OutgoingHttpHeaders = { ':status': record.status, 'apns-id': apnsId };
    if (fault?.retryAfterSeconds !== undefined) responseHeaders['retry-after'] = String(fault.retryAfterSeconds);
    if (!outcome) {
      stream.respond(responseHeaders, { endStream: true });
      deliver(record);
      return;
    }
    responseHeaders['content-type'] = 'application/json; charset=utf-8';
    stream.respond(responseHeaders);
    stream.end(JSON.stringify(outcome.timestamp !== undefined ? { reason: outcome.reason, timestamp: outcome.timestamp } : { reason: outcome.reason }));
  }

  /** Apple's checks, in the order the README gives. Null: accepted. */
  function check(headers: http2.IncomingHttpHeaders, rawHeaders: string[], conn: ConnectionInfo | undefined, token: string | null, body: string, size: number, record: RecordedPush): Refusal | null {
    if (!conn?.uid || revoked.has(conn.serial)) return new Refusal(403, 'BadCertificate');
    if (headers[':method'] !== 'POST') return new Refusal(405, 'MethodNotAllowed');
    if (token === null) return new Refusal(404, 'BadPath');
    if (token === '') return new Refusal(400, 'MissingDeviceToken');
    if (!TOKEN.test(token) || token.length % 2 !== 0) return new Refusal(400, 'BadDeviceToken');
    const names = new Set<string>();
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toLowerCase();
      if (names.has(name)) return new Refusal(400, 'DuplicateHeaders');
      names.add(name);
    }
    const apnsId = str(headers['apns-id']);
    if (apnsId !== undefined && !UUID.test(apnsId)) return new Refusal(400, 'BadMessageId');
    const topic = str(headers['apns-topic']) ?? conn.uid;
    if (topic !== conn.uid) return new Refusal(400, 'TopicDisallowed');
    const pushType = str(headers['apns-push-type']);
    if (pushType !== undefined && (!PUSH_TYPES.has(pushType) || (MDM_TOPIC.test(topic) && pushType !== 'mdm'))) return new Refusal(400, 'InvalidPushType');
    const priority = str(headers['apns-priority']);
    if (priority !== undefined && !['1', '5', '10'].includes(priority)) return new Refusal(400, 'BadPriority');
    const expiration = str(headers['apns-expiration']);
    if (expiration !== undefined && !/^\d{1,10}$/.test(expiration)) return new Refusal(400, 'BadExpirationDate');
    const collapse = str(headers['apns-collapse-id']);
    if (collapse !== undefined && Buffer.byteLength(collapse) > 64) return new Refusal(400, 'BadCollapseId');
    if (size > maxPayload) return new Refusal(413, 'PayloadTooLarge');
    if (size === 0) return new Refusal(400, 'PayloadEmpty');
    const pushMagic = mdmPushMagic(body);
    // Apple's guidance for MDM: {"mdm": PushMagic} and nothing else.
    if (MDM_TOPIC.test(topic) && pushMagic === null) return new Refusal(400, 'BadPayload');
    record.pushMagic = pushMagic;
    const gone = unregistered.get(token);
    if (gone !== undefined) return new Refusal(410, 'Unregistered', gone);
    const bound = tokenTopics.get(token);
    if (bound !== undefined && bound !== topic) return new Refusal(400, 'DeviceTokenNotForTopic');
    return null;
  }

  function takeFault(token: string): ApnsFault | undefined {
    const i = faults.findIndex((f) => f.left > 0 && (f.token === undefined || f.token.toLowerCase() === token));
    if (i < 0) return undefined;
    const f = faults[i]!;
    f.left--;
    if (f.left <= 0) faults.splice(i, 1);
    return f;
  }

  function deliver(record: RecordedPush): void {
    const n: DeliveredNotification = { token: record.token, topic: record.certificateTopic ?? '', pushMagic: record.pushMagic ?? '', apnsId: record.apnsId, at: record.at };
    const subs = listeners.get(record.token);
    if (!subs || subs.size === 0) {
      // APNs keeps the last notification for an offline device until it expires (0: don't store).
      if (record.expiration === '0') return;
      stored.set(record.token, { n, expiresAt: record.expiration ? Number(record.expiration) * 1000 : null });
      return;
    }
    for (const l of subs) notify(l, n);
  }

  function notify(listener: (n: DeliveredNotification) => void, n: DeliveredNotification): void {
    setImmediate(() => {
      try {
        listener(n);
      } catch (err) {
        console.error('[apns-sim] subscriber threw', err);
      }
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  return {
    url: `https://${host}:${addr.port}`,
    caPem: tlsMaterial.caPem,
    pushes,
    delivered: (token) => pushes.filter((p) => p.status === 200 && (token === undefined || p.token === token.toLowerCase())),
    failNext(fault) {
      const times = fault.times ?? 1;
      if (!(times > 0)) throw new Error('times must be positive');
      faults.push({ ...fault, left: times });
    },
    clearFaults() {
      faults = [];
      for (const s of hanging) s.close(http2.constants.NGHTTP2_CANCEL);
    },
    unregister(token, at = clock.now()) {
      unregistered.set(token.toLowerCase(), at.getTime());
      stored.delete(token.toLowerCase());
    },
    register(token, topic) {
      unregistered.delete(token.toLowerCase());
      if (topic) tokenTopics.set(token.toLowerCase(), topic);
    },
    revokeCertificate(serialHex) {
      revoked.add(serialHex.toUpperCase());
    },
    subscribe(token, listener) {
      const key = token.toLowerCase();
      let subs = listeners.get(key);
      if (!subs) listeners.set(key, (subs = new Set()));
      subs.add(listener);
      const waiting = stored.get(key);
      if (waiting) {
        stored.delete(key);
        if (waiting.expiresAt === null || waiting.expiresAt > clock.now().getTime()) notify(listener, waiting.n);
      }
      return () => {
        subs.delete(listener);
      };
    },
    goAway(reason = 'Shutdown') {
      for (const s of sessions.keys()) {
        if (s.closed || s.destroyed) continue;
        s.goaway(http2.constants.NGHTTP2_NO_ERROR, undefined, Buffer.from(JSON.stringify({ reason })));
        s.close();
      }
    },
    clientCertificateSerials: () => [...serials],
    get stats() {
      return { ...stats };
    },
    reset() {
      pushes.length = 0;
      faults = [];
      serials.length = 0;
      stats.maxInFlight = stats.inFlight;
      stored.clear();
    },
    async close() {
      for (const s of hanging) s.close(http2.constants.NGHTTP2_CANCEL);
      for (const s of sessions.keys()) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function str(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[v.length - 1] : v;
}

function plainHeaders(headers: http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : String(v);
  return out;
}

/** The PushMagic of a body that is exactly {"mdm": "<non-empty string>"}; null otherwise. */
function mdmPushMagic(body: string): string | null {
  try {
    const v: unknown = JSON.parse(body);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
    const keys = Object.keys(v);
    const magic = (v as { mdm?: unknown }).mdm;
    return keys.length === 1 && keys[0] === 'mdm' && typeof magic === 'string' && magic.length > 0 ? magic : null;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
