import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../src/shared/time.js';
import type { AbmModel, AssignmentOutcome, Reply } from './model.js';
import { hmacSha1Signature, parseOAuthHeader, signatureBaseString, signaturesEqual } from './oauth1.js';

/** The HTTP face of the simulator: Apple's DEP API, plus the `/_sim/` control surface. */

export interface Fault {
  method?: string;
  /** Exact path, or a prefix ending in `*` (`*` alone matches every DEP path). */
  path: string;
  /** Answer with this status; without one, a delay or hang is followed by the normal answer. */
  status?: number;
  body?: string;
  /** Seconds, or an HTTP-date. */
  retryAfter?: number | string;
  /** How many matching requests it affects (default 1; Infinity, or null over HTTP, for all). */
  times?: number;
  delayMs?: number;
  /** Never answer (until close()). */
  hang?: boolean;
}

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  at: Date;
  /** The MDM server (token) the request authenticated as, once known. */
  server: string | null;
  /** Wall-clock milliseconds when the request arrived and when it was answered (null while hanging): which requests overlapped, whatever the simulated clock. */
  receivedMs: number;
  answeredMs: number | null;
}

export interface HttpContext {
  model: AbmModel;
  clock: Clock;
  faults: Fault[];
  requests: RequestRecord[];
  quotedErrors: boolean;
  logger: boolean;
  timers: Set<NodeJS.Timeout>;
  hanging: Set<ServerResponse>;
}

const JSON_TYPE = 'application/json;charset=UTF8';
const MAX_BODY = 5 * 1024 * 1024;

type Handler = (m: AbmModel, server: string, body: Record<string, unknown>, version: number, url: URL) => Reply;

/** Methods per path; `/session` is handled on its own (OAuth, no session). */
const ROUTES: Record<string, Record<string, Handler | null>> = {
  '/session': { GET: null },
  '/account': { GET: (m, s) => ({ status: 200, json: m.account(s) }) },
  '/server/devices': { POST: (m, s, b, v) => m.fetchDevices(s, b, v) },
  '/devices/sync': { POST: (m, s, b, v) => m.syncDevices(s, b, v) },
  '/devices': { POST: (m, s, b, v) => m.deviceDetails(s, b, v) },
  '/devices/disown': { POST: (m, s, b) => m.disownDevices(s, b) },
  '/profile': {
    POST: (m, s, b, v) => m.defineProfile(s, b, v),
    GET: (m, s, _b, _v, url) => m.getProfile(s, url.searchParams.get('profile_uuid')),
  },
  '/profile/devices': {
    POST: (m, s, b, v) => m.assignProfile(s, b, v),
    // nanodep uses PUT "for compatibility" with depsim; Apple documents POST. Both assign.
    PUT: (m, s, b, v) => m.assignProfile(s, b, v),
    DELETE: (m, s, b) => m.removeProfile(s, b),
  },
};

/**
 * Apple answers 400 USER_AGENT_INVALID to some agents: it refused nanodep's "nanodep-godep/0" while
 * "nanodep-g-o-dep/0" and curl passed (micromdm/nanodep#42, #49). We refuse that, plus the bare
 * defaults of HTTP libraries, which identify no product.
 */
const REFUSED_AGENTS = [
  /godep/i, /^go-http-client\//i, /^node$/i, /^undici\b/i, /^node-fetch\b/i, /^axios\//i, /^got\b/i,
  /^python-requests\//i, /^python-urllib\//i, /^aiohttp\//i, /^okhttp\//i, /^java\//i, /^apache-httpclient\//i, /^libwww-perl\//i,
];

export function userAgentProblem(ua: string | undefined): string | undefined {
  if (ua === undefined || ua.trim() === '') return 'USER_AGENT_MISSING';
  if (ua.length > 256 || /[^\x20-\x7e]/.test(ua) || REFUSED_AGENTS.some((re) => re.test(ua.trim()))) return 'USER_AGENT_INVALID';
  return undefined;
}

/** `application/json`, with no charset or a UTF-8 one (`UTF8`, as Apple writes it, or `UTF-8`). */
export function isJsonContentType(ct: string | undefined): boolean {
  if (!ct) return false;
  const [type, ...params] = ct.split(';');
  if (type!.trim().toLowerCase() !== 'application/json') return false;
  return params.every((p) => {
    const [k, v = ''] = p.split('=');
    return k!.trim().toLowerCase() !== 'charset' || /^"?utf-?8"?$/i.test(v.trim());
  });
}

function matchFault(faults: Fault[], method: string, path: string): Fault | undefined {
  const i = faults.findIndex((f) => {
    if (f.method && f.method.toUpperCase() !== method) return false;
    return f.path.endsWith('*') ? path.startsWith(f.path.slice(0, -1)) : f.path === path;
  });
  if (i < 0) return undefined;
  const f = faults[i]!;
  const left = (f.times ?? 1) - 1;
  if (left <= 0) faults.splice(i, 1);
  else faults[i] = { ...f, times: left };
  return f;
}

const DEFAULT_FAULT_BODY: Record<number, string> = {
  429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_SERVER_ERROR',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
  504: 'GATEWAY_TIMEOUT',
};

function readBody(req: IncomingMessage): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        chunks.length = 0;
        req.removeAllListeners('data');
        req.resume();
        resolve('too_large');
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sleep(ctx: HttpContext, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      ctx.timers.delete(t);
      resolve();
    }, ms);
    ctx.timers.add(t);
  });
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Serves one DEP API request. */
export async function handleDep(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  const path = url.pathname;
  const record: RequestRecord = { method, path, status: 0, at: ctx.clock.now(), server: null, receivedMs: Date.now(), answeredMs: null };
  const finish = (status: number, body: string, headers: Record<string, string> = {}) => {
    record.status = status;
    record.answeredMs = Date.now();
    ctx.requests.push(record);
    if (ctx.logger) console.log(`[abm-sim] ${method} ${path}${url.search} -> ${status}`);
    if (res.destroyed) return;
    res.writeHead(status, { 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };
  const fail = (status: number, code: string, headers: Record<string, string> = {}) =>
    finish(status, ctx.quotedErrors ? JSON.stringify(code) : code, { 'Content-Type': ctx.quotedErrors ? JSON_TYPE : 'text/plain;charset=UTF-8', ...headers });
  const oauthFail = (status: number, problem: string) =>
    finish(status, `oauth_problem=${problem}`, { 'Content-Type': 'text/plain;charset=UTF-8', 'WWW-Authenticate': `OAuth realm="ADM", oauth_problem="${problem}"` });

  const fault = matchFault(ctx.faults, method, path);
  if (fault) {
    if (fault.delayMs) await sleep(ctx, fault.delayMs);
    if (fault.hang) {
      ctx.requests.push(record);
      ctx.hanging.add(res);
      res.on('close', () => ctx.hanging.delete(res));
      req.resume();
      return;
    }
    if (fault.status) {
      req.resume();
      const headers: Record<string, string> = { 'Content-Type': 'text/plain;charset=UTF-8' };
      if (fault.retryAfter !== undefined) headers['Retry-After'] = String(fault.retryAfter);
      finish(fault.status, fault.body ?? DEFAULT_FAULT_BODY[fault.status] ?? '', headers);
      return;
    }
  }

  const route = ROUTES[path];
  if (!route) {
    req.resume();
    return fail(404, 'NOT_FOUND');
  }
  if (!Object.hasOwn(route, method)) {
    req.resume();
    return fail(405, 'METHOD_NOT_ALLOWED', { Allow: Object.keys(route).join(', ') });
  }
  const uaProblem = userAgentProblem(headerValue(req.headers['user-agent']));
  if (uaProblem) {
    req.resume();
    return fail(400, uaProblem);
  }

  if (path === '/session') {
    req.resume();
    // depsim, Apple's own simulator, requires this media type on /session too.
    if (!isJsonContentType(req.headers['content-type'])) return fail(415, 'UNSUPPORTED_MEDIA_TYPE');
    const parsed = parseOAuthHeader(req.headers.authorization);
    if (!parsed.ok) return oauthFail(400, parsed.problem);
    const p = parsed.params;
    for (const k of Object.keys(p)) {
      if (k !== 'realm' && !['oauth_consumer_key', 'oauth_token', 'oauth_signature_method', 'oauth_signature', 'oauth_timestamp', 'oauth_nonce', 'oauth_version'].includes(k)) {
        return oauthFail(400, 'parameter_rejected');
      }
    }
    for (const k of ['oauth_consumer_key', 'oauth_token', 'oauth_signature_method', 'oauth_signature', 'oauth_timestamp', 'oauth_nonce']) {
      if (!p[k]) return oauthFail(400, 'parameter_absent');
    }
    if (p.oauth_signature_method !== 'HMAC-SHA1') return oauthFail(400, 'signature_method_rejected');
    if (p.oauth_version !== undefined && p.oauth_version !== '1.0') return oauthFail(400, 'version_rejected');
    if (!/^\d{1,12}$/.test(p.oauth_timestamp!)) return oauthFail(400, 'parameter_rejected');
    // The URL the client signed: the host it called and the path and query it sent.
    const signedUrl = new URL(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`);
    const base = signatureBaseString(method, signedUrl, p);
    const auth = ctx.model.authenticate(p, (cs, as) => signaturesEqual(hmacSha1Signature(base, cs, as), p.oauth_signature!));
    if (!auth.ok) return oauthFail(auth.status, auth.problem);
    record.server = auth.server;
    if (!ctx.model.termsSigned) return fail(403, 'T_C_NOT_SIGNED');
    return finish(200, JSON.stringify({ auth_session_token: ctx.model.newSession(auth.server) }), { 'Content-Type': JSON_TYPE });
  }

  const server = ctx.model.session(headerValue(req.headers['x-adm-auth-session']));
  if (!server) {
    req.resume();
    return fail(401, 'UNAUTHORIZED');
  }
  record.server = server;
  // Apple may hand out a replacement session token on any response; clients must keep the newest.
  const refreshed = { 'X-ADM-Auth-Session': ctx.model.newSession(server) };
  if (!ctx.model.termsSigned) {
    req.resume();
    return fail(403, 'T_C_NOT_SIGNED', refreshed);
  }
  const rawVersion = headerValue(req.headers['x-server-protocol-version']);
  // Without the header Apple answers as protocol version 1 (no device_family/os).
  let version = 1;
  if (rawVersion !== undefined) {
    if (!/^\s*\d{1,3}\s*$/.test(rawVersion) || Number(rawVersion) < 1) {
      req.resume();
      return fail(400, 'INVALID_PROTOCOL_VERSION', refreshed);
    }
    version = Number(rawVersion);
  }

  let body: Record<string, unknown> = {};
  if (method !== 'GET') {
    if (!isJsonContentType(req.headers['content-type'])) {
      req.resume();
      return fail(415, 'UNSUPPORTED_MEDIA_TYPE', refreshed);
    }
    const raw = await readBody(req);
    if (raw === 'too_large') return fail(413, 'REQUEST_ENTITY_TOO_LARGE', refreshed);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return fail(400, 'MALFORMED_REQUEST_BODY', refreshed);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail(400, 'MALFORMED_REQUEST_BODY', refreshed);
    body = parsed as Record<string, unknown>;
  } else {
    req.resume();
  }

  const reply = route[method]!(ctx.model, server, body, version, url);
  if (reply.error !== undefined) return fail(reply.status, reply.error, refreshed);
  return finish(reply.status, JSON.stringify(reply.json), { 'Content-Type': JSON_TYPE, ...refreshed });
}

// ───────────────────────── control surface ─────────────────────────

class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const asRecord = (v: unknown): Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ControlError(400, 'the body must be a JSON object');
  return v as Record<string, unknown>;
};
const str = (v: unknown, name: string, optional = false): string | undefined => {
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string') throw new ControlError(400, `${name} must be a string`);
  return v;
};
const strings = (v: unknown, name: string, optional = false): string[] | undefined => {
  if (v === undefined && optional) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new ControlError(400, `${name} must be an array of strings`);
  return v as string[];
};

export const CONTROL_HELP = [
  'GET    /_sim/state                          organisation, MDM servers, counts',
  'POST   /_sim/servers {name}                 add an MDM server -> {serverUuid}',
  'PUT    /_sim/servers/:uuid/public-key       upload the MDM public key (PEM certificate as the body)',
  'POST   /_sim/servers/:uuid/token {expiresAt?}  download the server token (.p7m); invalidates the previous one',
  'POST   /_sim/servers/:uuid/devices {serials?|orderNumber?|csv?}  assign devices to the server',
  'POST   /_sim/devices {devices:[{serial_number,model?,...}], orderNumber?}  add devices to the organisation',
  'POST   /_sim/devices/generate {count, prefix?, orderNumber?, serverUuid?}  add many devices',
  'POST   /_sim/devices/unassign {serials}     back to the organisation pool',
  'POST   /_sim/devices/release {serials}      release devices from the organisation',
  'GET    /_sim/devices/:serial                current device state',
  'POST   /_sim/devices/:serial/push           the device fetched its profile (profile_status pushed)',
  'GET    /_sim/profiles/:uuid                 a defined profile',
  'PUT    /_sim/terms {signed}                 false: every DEP call answers 403 T_C_NOT_SIGNED',
  'POST   /_sim/faults {path, method?, status?, body?, retryAfter?, times?, delayMs?, hang?}  inject a fault; DELETE clears',
  'POST   /_sim/assignment-outcomes {serials, outcome: FAILED|THROTTLED|null, retryAfterSeconds?}',
  'POST   /_sim/sessions/expire | /_sim/cursors/expire',
  'GET    /_sim/requests                       DEP requests served so far',
];

export function validateFault(f: Record<string, unknown>): Fault {
  const path = str(f.path, 'path')!;
  if (!path.startsWith('/') && path !== '*') throw new ControlError(400, 'path must start with / (or be *)');
  const out: Fault = { path };
  if (f.method !== undefined) out.method = str(f.method, 'method')!.toUpperCase();
  if (f.status !== undefined) {
    if (typeof f.status !== 'number' || !Number.isInteger(f.status) || f.status < 100 || f.status > 599) throw new ControlError(400, 'status must be an HTTP status code');
    out.status = f.status;
  }
  if (f.body !== undefined) out.body = str(f.body, 'body');
  if (f.retryAfter !== undefined) {
    if (typeof f.retryAfter !== 'number' && typeof f.retryAfter !== 'string') throw new ControlError(400, 'retryAfter must be seconds or an HTTP-date');
    out.retryAfter = f.retryAfter;
  }
  if (f.times === null) out.times = Infinity;
  else if (f.times !== undefined) {
    if (typeof f.times !== 'number' || !(f.times >= 1)) throw new ControlError(400, 'times must be at least 1');
    out.times = f.times;
  }
  if (f.delayMs !== undefined) {
    if (typeof f.delayMs !== 'number' || !(f.delayMs >= 0)) throw new ControlError(400, 'delayMs must be a non-negative number');
    out.delayMs = f.delayMs;
  }
  if (f.hang !== undefined) out.hang = f.hang === true;
  if (!out.status && !out.hang && !out.delayMs) throw new ControlError(400, 'a fault needs a status, delayMs or hang');
  return out;
}

export async function handleControl(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  const send = (status: number, json?: unknown) => {
    const body = json === undefined ? '' : JSON.stringify(json, null, 2);
    res.writeHead(status, json === undefined ? {} : { 'Content-Type': 'application/json' });
    res.end(body);
  };
  try {
    const raw = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readBody(req);
    if (raw === 'too_large') throw new ControlError(413, 'body too large');
    const text = raw.toString('utf8');
    const json = (): Record<string, unknown> => {
      if (!text.trim()) return {};
      try {
        return asRecord(JSON.parse(text));
      } catch (err) {
        if (err instanceof ControlError) throw err;
        throw new ControlError(400, 'the body is not valid JSON');
      }
    };
    const m = ctx.model;
    const p = url.pathname.replace(/^\/_sim/, '').replace(/\/$/, '');
    const is = (verb: string, re: RegExp): string[] | undefined => {
      if (method !== verb) return undefined;
      const r = re.exec(p);
      return r ? r.slice(1).map((x) => decodeURIComponent(x)) : undefined;
    };
    let a: string[] | undefined;
    if (is('GET', /^$/)) return send(200, { ...m.summary(), endpoints: CONTROL_HELP });
    if (is('GET', /^\/state$/)) return send(200, m.summary());
    if (is('POST', /^\/servers$/)) return send(201, m.createMdmServer(str(json().name, 'name')!));
    if ((a = is('PUT', /^\/servers\/([^/]+)\/public-key$/))) {
      // The .pem as the body, or {"pem": "..."}.
      m.uploadPublicKey(a[0]!, text.trim().startsWith('{') ? str(json().pem, 'pem')! : text);
      return send(204);
    }
    if ((a = is('POST', /^\/servers\/([^/]+)\/token$/))) {
      const expiresAt = str(json().expiresAt, 'expiresAt', true);
      const p7m = m.downloadServerToken(a[0]!, expiresAt ? { expiresAt: new Date(expiresAt) } : {});
      res.writeHead(200, { 'Content-Type': 'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"', 'Content-Disposition': 'attachment; filename="smime.p7m"' });
      res.end(p7m);
      return;
    }
    if ((a = is('POST', /^\/servers\/([^/]+)\/devices$/))) {
      const b = json();
      const by = { serials: strings(b.serials, 'serials', true), orderNumber: str(b.orderNumber, 'orderNumber', true), csv: str(b.csv, 'csv', true) };
      return send(200, { assigned: m.assignDevicesToServer(a[0]!, by) });
    }
    if (is('POST', /^\/devices$/)) {
      const b = json();
      if (!Array.isArray(b.devices)) throw new ControlError(400, 'devices must be an array');
      m.addDevices(b.devices as never, { orderNumber: str(b.orderNumber, 'orderNumber', true) });
      return send(201, { added: b.devices.length });
    }
    if (is('POST', /^\/devices\/generate$/)) {
      const b = json();
      if (typeof b.count !== 'number') throw new ControlError(400, 'count must be a number');
      const serials = m.generateDevices(b.count, { prefix: str(b.prefix, 'prefix', true), orderNumber: str(b.orderNumber, 'orderNumber', true), serverUuid: str(b.serverUuid, 'serverUuid', true) });
      return send(201, { count: serials.length, serials });
    }
    if (is('POST', /^\/devices\/unassign$/)) {
      m.unassignDevices(strings(json().serials, 'serials')!);
      return send(204);
    }
    if (is('POST', /^\/devices\/release$/)) {
      m.releaseDevices(strings(json().serials, 'serials')!);
      return send(204);
    }
    if ((a = is('GET', /^\/devices\/([^/]+)$/))) {
      const d = m.device(a[0]!);
      if (!d) throw new ControlError(404, `no device ${a[0]}`);
      return send(200, d);
    }
    if ((a = is('POST', /^\/devices\/([^/]+)\/push$/))) {
      m.pushProfile(a[0]!);
      return send(204);
    }
    if ((a = is('GET', /^\/profiles\/([^/]+)$/))) {
      const prof = m.profile(a[0]!);
      if (!prof) throw new ControlError(404, `no profile ${a[0]}`);
      return send(200, prof);
    }
    if (is('PUT', /^\/terms$/)) {
      const b = json();
      if (typeof b.signed !== 'boolean') throw new ControlError(400, 'signed must be true or false');
      m.termsSigned = b.signed;
      return send(204);
    }
    if (is('POST', /^\/faults$/)) {
      ctx.faults.push(validateFault(json()));
      return send(204);
    }
    if (is('DELETE', /^\/faults$/)) {
      ctx.faults.length = 0;
      return send(204);
    }
    if (is('POST', /^\/assignment-outcomes$/)) {
      const b = json();
      const outcome = b.outcome === null ? null : str(b.outcome, 'outcome');
      if (outcome !== null && outcome !== 'FAILED' && outcome !== 'THROTTLED') throw new ControlError(400, 'outcome must be FAILED, THROTTLED or null');
      const retry = b.retryAfterSeconds;
      if (retry !== undefined && (typeof retry !== 'number' || !(retry >= 0))) throw new ControlError(400, 'retryAfterSeconds must be a non-negative number');
      m.setAssignmentOutcome(strings(b.serials, 'serials')!, outcome as AssignmentOutcome | null, retry as number | undefined);
      return send(204);
    }
    if (is('POST', /^\/sessions\/expire$/)) {
      m.expireSessions();
      return send(204);
    }
    if (is('POST', /^\/cursors\/expire$/)) {
      m.expireCursors();
      return send(204);
    }
    if (is('GET', /^\/requests$/)) return send(200, ctx.requests);
    throw new ControlError(404, `no control endpoint ${method} ${url.pathname}; GET /_sim/ lists them`);
  } catch (err) {
    const status = err instanceof ControlError ? err.status : /^no MDM server/.test((err as Error)?.message ?? '') ? 404 : 400;
    send(status, { error: err instanceof Error ? err.message : String(err) });
  }
}
