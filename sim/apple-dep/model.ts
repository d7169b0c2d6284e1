import { randomBytes } from 'node:crypto';
import type { DepAccount, DepDevice, DepOAuthTokens, DepProfile } from '../../src/apple/ade/dep-api.js';
import type { Clock } from '../../src/shared/time.js';
import { CursorCodec, type CursorState } from './cursor.js';
import { checkProfile } from './profile.js';
import { buildServerTokenP7m, parseRecipientCertificate } from './token.js';
import type forge from 'node-forge';

/**
 * The in-memory state of one Apple Business/School Manager organisation and its device assignment
 * service: MDM servers ("DEP names"), devices, profiles, per-server change logs. No HTTP here: the
 * admin operations ABM's web portal offers, and the DEP API operations on already-parsed bodies.
 */

export type ProfileStatus = 'empty' | 'assigned' | 'pushed' | 'removed';

/** Immutable: every change replaces the record, so the change log can keep references, not copies. */
interface DeviceRecord {
  readonly serial_number: string;
  readonly model: string;
  readonly description: string;
  readonly color: string;
  readonly asset_tag?: string;
  readonly device_family: string;
  /** Canonical OS; iPads are iPadOS here and shown as iOS below protocol version 7. */
  readonly os: string;
  readonly orderNumber?: string;
  readonly serverUuid: string | null;
  readonly profile_status: ProfileStatus;
  readonly profile_uuid?: string;
  readonly profile_assign_time?: string;
  readonly profile_push_time?: string;
  readonly device_assigned_by?: string;
  readonly device_assigned_date?: string;
}

interface SyncOp {
  readonly op_type: 'added' | 'modified' | 'deleted';
  readonly op_date: string;
  readonly device: DeviceRecord;
}

interface Credentials extends DepOAuthTokens {
  expiresAt: number;
}

interface MdmServer {
  readonly uuid: string;
  readonly name: string;
  cert?: forge.pki.Certificate;
  credentials?: Credentials;
  /** Bumped by every token download: sessions of older tokens die with them. */
  tokenGeneration: number;
  /** Consumer keys of tokens a newer download replaced. */
  readonly retiredConsumerKeys: Set<string>;
  /** Serials assigned to this server, in assignment order. */
  readonly devices: Set<string>;
  /** Append-only; an op's sequence number is its index + 1. */
  readonly log: SyncOp[];
  readonly snapshots: Map<number, { serials: string[]; seq: number }>;
  nextSnapshot: number;
}

interface Session {
  readonly server: string;
  readonly tokenGeneration: number;
  readonly expiresAt: number;
}

export interface Reply {
  status: number;
  json?: unknown;
  /** Apple's plain-text error code. */
  error?: string;
}

export type AssignmentOutcome = 'FAILED' | 'THROTTLED';

export interface ModelOptions {
  clock: Clock;
  sessionTtlMs: number;
  cursorTtlMs: number;
  limits: { default: number; maximum: number };
  orgName: string;
  orgType: 'org' | 'edu';
}

export const OAUTH_TIMESTAMP_SKEW_S = 300;
const MAX_SNAPSHOTS_PER_SERVER = 32;
const SERIAL = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const appleUuid = () => hex(16).toUpperCase();
/** Apple's timestamps carry whole seconds. */
export const appleTime = (d: Date | number) => new Date(d).toISOString().replace(/\.\d{3}Z$/, 'Z');

const MODELS = [
  { model: 'iPhone 15', device_family: 'iPhone', os: 'iOS', color: 'BLACK' },
  { model: 'iPad Air (5th generation)', device_family: 'iPad', os: 'iPadOS', color: 'SPACE GRAY' },
  { model: 'MacBook Air (M2, 2022)', device_family: 'Mac', os: 'OSX', color: 'MIDNIGHT' },
  { model: 'iPhone 14', device_family: 'iPhone', os: 'iOS', color: 'BLUE' },
  { model: 'Apple TV 4K', device_family: 'AppleTV', os: 'tvOS', color: 'BLACK' },
].map((m) => ({ ...m, description: m.model.toUpperCase() }));

const FAMILY_OS: Record<string, string> = { iPhone: 'iOS', iPod: 'iOS', iPad: 'iPadOS', Mac: 'OSX', AppleTV: 'tvOS', Vision: 'visionOS' };
const OSES = ['iOS', 'iPadOS', 'OSX', 'tvOS', 'visionOS'];

function familyOf(model: string): string {
  if (/ipad/i.test(model)) return 'iPad';
  if (/ipod/i.test(model)) return 'iPod';
  if (/mac|imac/i.test(model)) return 'Mac';
  if (/tv/i.test(model)) return 'AppleTV';
  if (/vision/i.test(model)) return 'Vision';
  return 'iPhone';
}

export class AbmModel {
  readonly servers = new Map<string, MdmServer>();
  readonly devices = new Map<string, DeviceRecord>();
  readonly profiles = new Map<string, { server: string; profile: DepProfile }>();
  termsSigned = true;
  private readonly sessions = new Map<string, Session>();
  private readonly nonces = new Map<string, number>();
  private readonly consumerKeys = new Map<string, string>();
  private readonly cursors = new CursorCodec(randomBytes(32));
  private cursorGeneration = 0;
  private readonly outcomes = new Map<string, { outcome: AssignmentOutcome; retryAfterSeconds: number }>();
  private readonly serialCounters = new Map<string, number>();
  private readonly org: { email: string; phone: string; address: string; id: string; idHash: string };

  constructor(private readonly o: ModelOptions) {
    const slug = o.orgName.toLowerCase().replace(/[^a-z0-9]+/g, '') || 'org';
    this.org = { email: `deploy@${slug}.example`, phone: '+1 408 555 0100', address: '1 Infinite Loop, Cupertino, CA 95014', id: String(7_000_000 + Math.floor(Math.random() * 999_999)), idHash: hex(26) };
  }

  private now(): number {
    return this.o.clock.now().getTime();
  }

  // ───────────────────────── ABM portal ─────────────────────────

  createMdmServer(name: string): { serverUuid: string } {
    if (typeof name !== 'string' || !name.trim()) throw new Error('the MDM server needs a name');
    for (const s of this.servers.values()) if (s.name === name.trim()) throw new Error(`an MDM server named "${name.trim()}" already exists`);
    const uuid = appleUuid();
    this.servers.set(uuid, {
      uuid, name: name.trim(), tokenGeneration: 0, retiredConsumerKeys: new Set(), devices: new Set(), log: [], snapshots: new Map(), nextSnapshot: 1,
    });
    return { serverUuid: uuid };
  }

  private server(uuid: string): MdmServer {
    const s = this.servers.get(uuid);
    if (!s) throw new Error(`no MDM server ${uuid}`);
    return s;
  }

  uploadPublicKey(serverUuid: string, certPem: string): void {
    this.server(serverUuid).cert = parseRecipientCertificate(certPem);
  }

  downloadServerToken(serverUuid: string, opts: { expiresAt?: Date } = {}): string {
    const s = this.server(serverUuid);
    if (!s.cert) throw new Error(`upload the MDM server's public key before downloading its token`);
    const expiresAt = opts.expiresAt ? opts.expiresAt.getTime() : this.now() + 365 * 86_400_000;
    if (!Number.isFinite(expiresAt)) throw new Error('expiresAt is not a valid date');
    if (s.credentials) {
      s.retiredConsumerKeys.add(s.credentials.consumer_key);
      this.consumerKeys.delete(s.credentials.consumer_key);
    }
    const credentials: Credentials = {
      consumer_key: `CK_${hex(64)}`,
      consumer_secret: `CS_${hex(64)}`,
      access_token: `AT_O${hex(63)}`,
      access_secret: `AS_${hex(64)}`,
      access_token_expiry: appleTime(expiresAt),
      expiresAt,
    };
    s.credentials = credentials;
    s.tokenGeneration++;
    this.consumerKeys.set(credentials.consumer_key, s.uuid);
    const { expiresAt: _e, ...tokens } = credentials;
    return buildServerTokenP7m(tokens, s.cert);
  }

  addDevices(devices: Array<Partial<DepDevice> & { serial_number: string }>, opts: { orderNumber?: string } = {}): void {
    const seen = new Set<string>();
    for (const d of devices) {
      if (typeof d?.serial_number !== 'string' || !SERIAL.test(d.serial_number)) throw new Error(`invalid serial number ${JSON.stringify(d?.serial_number)}`);
      if (this.devices.has(d.serial_number) || seen.has(d.serial_number)) throw new Error(`device ${d.serial_number} is already in the organisation`);
      if (d.device_family !== undefined && !Object.hasOwn(FAMILY_OS, d.device_family)) throw new Error(`device_family must be one of ${Object.keys(FAMILY_OS).join(', ')}`);
      if (d.os !== undefined && !OSES.includes(d.os)) throw new Error(`os must be one of ${OSES.join(', ')}`);
      seen.add(d.serial_number);
    }
    for (const d of devices) {
      const model = d.model ?? 'iPhone 15';
      const device_family = d.device_family ?? familyOf(model);
      this.devices.set(d.serial_number, {
        serial_number: d.serial_number,
        model,
        description: d.description ?? model.toUpperCase(),
        color: d.color ?? 'BLACK',
        ...(d.asset_tag ? { asset_tag: d.asset_tag } : {}),
        device_family,
        os: d.os ?? FAMILY_OS[device_family] ?? 'iOS',
        ...(opts.orderNumber ? { orderNumber: opts.orderNumber } : {}),
        serverUuid: null,
        profile_status: 'empty',
      });
    }
  }

  generateDevices(count: number, opts: { prefix?: string; orderNumber?: string; serverUuid?: string } = {}): string[] {
    if (!Number.isSafeInteger(count) || count < 0) throw new Error('count must be a non-negative integer');
    const prefix = (opts.prefix ?? 'SIM').toUpperCase();
    if (!/^[A-Z0-9]{0,20}$/.test(prefix)) throw new Error('prefix must be up to 20 letters and digits');
    const server = opts.serverUuid ? this.server(opts.serverUuid) : undefined;
    const at = appleTime(this.now());
    const serials: string[] = [];
    let n = this.serialCounters.get(prefix) ?? 0;
    while (serials.length < count) {
      n++;
      const serial = `${prefix}${n.toString(36).toUpperCase().padStart(8, '0')}`;
      if (this.devices.has(serial)) continue;
      const m = MODELS[n % MODELS.length]!;
      // One literal per device, no spreads: this loop runs 100,000 times in scale tests.
      const record: DeviceRecord = {
        serial_number: serial,
        model: m.model,
        description: m.description,
        color: m.color,
        device_family: m.device_family,
        os: m.os,
        orderNumber: opts.orderNumber,
        serverUuid: server ? server.uuid : null,
        profile_status: 'empty',
        device_assigned_by: server ? this.org.email : undefined,
        device_assigned_date: server ? at : undefined,
      };
      this.devices.set(serial, record);
      if (server) {
        server.devices.add(serial);
        server.log.push({ op_type: 'added', op_date: at, device: record });
      }
      serials.push(serial);
    }
    this.serialCounters.set(prefix, n);
    return serials;
  }

  private serialsFromCsv(csv: string): string[] {
    const out: string[] = [];
    const lines = csv.split(/\r?\n/);
    lines.forEach((line, i) => {
      const cell = (line.split(/[,;\t]/)[0] ?? '').trim().replace(/^"(.*)"$/, '$1').trim();
      if (!cell) return;
      // A header row ("Serial Number") is allowed, as in ABM's CSV template.
      if (i === 0 && (/serial/i.test(cell) || !SERIAL.test(cell))) return;
      out.push(cell);
    });
    return out;
  }

  assignDevicesToServer(serverUuid: string, by: { serials?: string[]; orderNumber?: string; csv?: string }): string[] {
    const server = this.server(serverUuid);
    const wanted: string[] = [];
    if (by.serials) wanted.push(...by.serials);
    if (by.csv !== undefined) wanted.push(...this.serialsFromCsv(by.csv));
    if (by.orderNumber !== undefined) {
      const matched = [...this.devices.values()].filter((d) => d.orderNumber === by.orderNumber).map((d) => d.serial_number);
      if (matched.length === 0) throw new Error(`no devices with order number ${by.orderNumber}`);
      wanted.push(...matched);
    }
    if (wanted.length === 0) throw new Error('choose devices by serial number, order number or CSV file');
    const unknown = wanted.filter((s) => !this.devices.has(s));
    if (unknown.length) throw new Error(`not in the organisation: ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', …' : ''}`);
    const at = appleTime(this.now());
    const assigned: string[] = [];
    for (const serial of new Set(wanted)) {
      const d = this.devices.get(serial)!;
      if (d.serverUuid === server.uuid) continue;
      if (d.serverUuid) this.detach(d, at);
      const moved = this.replace(d, {
        serverUuid: server.uuid, device_assigned_by: this.org.email, device_assigned_date: at,
        profile_status: 'empty', profile_uuid: undefined, profile_assign_time: undefined, profile_push_time: undefined,
      });
      server.devices.add(serial);
      server.log.push({ op_type: 'added', op_date: at, device: moved });
      assigned.push(serial);
    }
    return assigned;
  }

  /** Takes a device off its server: a deleted op there; its profile assignment goes with it. */
  private detach(d: DeviceRecord, at: string): DeviceRecord {
    const server = d.serverUuid ? this.servers.get(d.serverUuid) : undefined;
    const next = this.replace(d, {
      serverUuid: null, device_assigned_by: undefined, device_assigned_date: undefined,
      profile_status: 'empty', profile_uuid: undefined, profile_assign_time: undefined, profile_push_time: undefined,
    });
    if (server) {
      server.devices.delete(d.serial_number);
      server.log.push({ op_type: 'deleted', op_date: at, device: d });
    }
    return next;
  }

  private replace(d: DeviceRecord, changes: Partial<{ -readonly [K in keyof DeviceRecord]: DeviceRecord[K] | undefined }>): DeviceRecord {
    const next = { ...d, ...changes } as Record<string, unknown>;
    for (const k of Object.keys(next)) if (next[k] === undefined) delete next[k];
    this.devices.set(d.serial_number, next as unknown as DeviceRecord);
    return next as unknown as DeviceRecord;
  }

  private known(serials: string[]): DeviceRecord[] {
    const unknown = serials.filter((s) => !this.devices.has(s));
    if (unknown.length) throw new Error(`not in the organisation: ${unknown.slice(0, 10).join(', ')}`);
    return serials.map((s) => this.devices.get(s)!);
  }

  unassignDevices(serials: string[]): void {
    const at = appleTime(this.now());
    for (const d of this.known(serials)) if (d.serverUuid) this.detach(d, at);
  }

  releaseDevices(serials: string[]): void {
    const at = appleTime(this.now());
    for (const d of this.known(serials)) {
      if (d.serverUuid) this.detach(d, at);
      this.devices.delete(d.serial_number);
      this.outcomes.delete(d.serial_number);
    }
  }

  /** The device fetched its profile during Setup Assistant (for device simulators). */
  pushProfile(serial: string): void {
    const [d] = this.known([serial]);
    if (!d!.serverUuid || !d!.profile_uuid) throw new Error(`device ${serial} has no profile assigned`);
    const at = appleTime(this.now());
    const next = this.replace(d!, { profile_status: 'pushed', profile_push_time: at });
    this.servers.get(d!.serverUuid)!.log.push({ op_type: 'modified', op_date: at, device: next });
  }

  /** Make profile assignment answer FAILED or THROTTLED for these devices until cleared with null. */
  setAssignmentOutcome(serials: string[], outcome: AssignmentOutcome | null, retryAfterSeconds = 60): void {
    for (const s of serials) {
      if (outcome) this.outcomes.set(s, { outcome, retryAfterSeconds });
      else this.outcomes.delete(s);
    }
  }

  device(serial: string): (DepDevice & { serverUuid: string | null }) | undefined {
    const d = this.devices.get(serial);
    if (!d) return undefined;
    return { ...renderDevice(d, Number.MAX_SAFE_INTEGER), serverUuid: d.serverUuid };
  }

  profile(uuid: string): DepProfile | undefined {
    const p = this.profiles.get(uuid);
    return p ? structuredClone(p.profile) : undefined;
  }

  expireSessions(): void {
    this.sessions.clear();
  }

  expireCursors(): void {
    this.cursorGeneration++;
  }

  summary() {
    return {
      org_name: this.o.orgName,
      org_type: this.o.orgType,
      terms_signed: this.termsSigned,
      devices: this.devices.size,
      unassigned: [...this.devices.values()].filter((d) => !d.serverUuid).length,
      servers: [...this.servers.values()].map((s) => ({
        server_uuid: s.uuid, server_name: s.name, public_key: Boolean(s.cert), token: Boolean(s.credentials),
        token_expiry: s.credentials?.access_token_expiry ?? null, devices: s.devices.size, changes: s.log.length,
      })),
      profiles: this.profiles.size,
    };
  }

  // ───────────────────────── authentication ─────────────────────────

  /** Verifies the OAuth parameters of a /session request; the caller has checked their presence and form. */
  authenticate(p: Record<string, string>, verifySignature: (consumerSecret: string, accessSecret: string) => boolean): { ok: true; server: string } | { ok: false; status: number; problem: string } {
    const ts = Number(p.oauth_timestamp);
    if (Math.abs(ts - Math.floor(this.now() / 1000)) > OAUTH_TIMESTAMP_SKEW_S) return { ok: false, status: 401, problem: 'timestamp_refused' };
    const ck = p.oauth_consumer_key!;
    const serverUuid = this.consumerKeys.get(ck);
    const server = serverUuid ? this.servers.get(serverUuid) : undefined;
    if (!server?.credentials) {
      const retired = [...this.servers.values()].some((s) => s.retiredConsumerKeys.has(ck));
      return { ok: false, status: 401, problem: retired ? 'token_rejected' : 'consumer_key_unknown' };
    }
    const c = server.credentials;
    if (p.oauth_token !== c.access_token) return { ok: false, status: 401, problem: 'token_rejected' };
    if (!verifySignature(c.consumer_secret, c.access_secret)) return { ok: false, status: 401, problem: 'signature_invalid' };
    if (c.expiresAt <= this.now()) return { ok: false, status: 401, problem: 'token_expired' };
    const nonceKey = `${ck}\n${p.oauth_nonce}`;
    this.pruneNonces();
    if (this.nonces.has(nonceKey)) return { ok: false, status: 401, problem: 'nonce_used' };
    // A nonce only needs remembering while its timestamp is still acceptable.
    this.nonces.set(nonceKey, (ts + OAUTH_TIMESTAMP_SKEW_S * 2) * 1000);
    return { ok: true, server: server.uuid };
  }

  private pruneNonces(): void {
    if (this.nonces.size < 10_000) return;
    const now = this.now();
    for (const [k, exp] of this.nonces) if (exp < now) this.nonces.delete(k);
  }

  newSession(serverUuid: string): string {
    const server = this.server(serverUuid);
    const now = this.now();
    if (this.sessions.size > 1000) for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k);
    const token = hex(16);
    this.sessions.set(token, { server: serverUuid, tokenGeneration: server.tokenGeneration, expiresAt: now + this.o.sessionTtlMs });
    return token;
  }

  /** The server a live session belongs to. */
  session(token: string | undefined): string | undefined {
    if (!token) return undefined;
    const s = this.sessions.get(token);
    if (!s) return undefined;
    const server = this.servers.get(s.server);
    if (s.expiresAt <= this.now() || !server || server.tokenGeneration !== s.tokenGeneration) {
      this.sessions.delete(token);
      return undefined;
    }
    return s.server;
  }

  // ───────────────────────── DEP API ─────────────────────────

  account(serverUuid: string): DepAccount {
    const s = this.server(serverUuid);
    const limit = { default: this.o.limits.default, maximum: this.o.limits.maximum };
    const url = (uri: string, http_method: string[], paged = false) => ({ uri, http_method, ...(paged ? { limit: { ...limit } } : {}) });
    return {
      server_name: s.name,
      server_uuid: s.uuid,
      admin_id: this.org.email,
      org_name: this.o.orgName,
      org_email: this.org.email,
      org_phone: this.org.phone,
      org_address: this.org.address,
      org_id: this.org.id,
      org_id_hash: this.org.idHash,
      org_type: this.o.orgType,
      org_version: 'v2',
      urls: [
        url('/session', ['GET']),
        url('/account', ['GET']),
        url('/server/devices', ['POST'], true),
        url('/devices/sync', ['POST'], true),
        url('/devices', ['POST']),
        url('/devices/disown', ['POST']),
        url('/profile', ['POST', 'GET']),
        url('/profile/devices', ['DELETE', 'POST', 'PUT']),
      ],
    };
  }

  private pageLimit(body: Record<string, unknown>): number | undefined {
    if (body.limit === undefined) return this.o.limits.default;
    const l = body.limit;
    if (typeof l !== 'number' || !Number.isSafeInteger(l) || l < 1) return undefined;
    // Apple documents a maximum, not an error above it: larger requests get the maximum.
    return Math.min(l, this.o.limits.maximum);
  }

  private readCursor(serverUuid: string, cursor: string): { ok: true; c: CursorState } | { ok: false; error: string } {
    const c = this.cursors.decode(cursor);
    if (!c || c.server !== serverUuid) return { ok: false, error: 'INVALID_CURSOR' };
    if (c.generation !== this.cursorGeneration || c.issuedAt + this.o.cursorTtlMs < this.now()) return { ok: false, error: 'EXPIRED_CURSOR' };
    return { ok: true, c };
  }

  fetchDevices(serverUuid: string, body: Record<string, unknown>, version: number): Reply {
    if (!onlyKeys(body, ['cursor', 'limit']) || (body.cursor !== undefined && typeof body.cursor !== 'string')) return bad('MALFORMED_REQUEST_BODY');
    const limit = this.pageLimit(body);
    if (limit === undefined) return bad('MALFORMED_REQUEST_BODY');
    const server = this.server(serverUuid);
    const now = this.now();
    let snapshotId: number;
    let offset = 0;
    if (body.cursor) {
      const r = this.readCursor(serverUuid, body.cursor as string);
      if (!r.ok) return bad(r.error);
      // A completed fetch (or any sync position): the full list was already delivered.
      if (r.c.kind === 'sync') return bad('EXHAUSTED_CURSOR');
      if (!server.snapshots.has(r.c.snapshot)) return bad('EXPIRED_CURSOR');
      snapshotId = r.c.snapshot;
      offset = r.c.offset;
    } else {
      snapshotId = server.nextSnapshot++;
      server.snapshots.set(snapshotId, { serials: [...server.devices], seq: server.log.length });
      for (const id of server.snapshots.keys()) {
        if (server.snapshots.size <= MAX_SNAPSHOTS_PER_SERVER) break;
        server.snapshots.delete(id);
      }
    }
    const snap = server.snapshots.get(snapshotId)!;
    const end = Math.min(offset + limit, snap.serials.length);
    const devices: DepDevice[] = [];
    for (let i = offset; i < end; i++) {
      const d = this.devices.get(snap.serials[i]!);
      // Devices that left since the fetch began show up as deleted in the following sync instead.
      if (d && d.serverUuid === serverUuid) devices.push(renderDevice(d, version));
    }
    const more = end < snap.serials.length;
    const cursor = more
      ? this.cursors.encode({ kind: 'fetch', server: serverUuid, snapshot: snapshotId, offset: end, seq: snap.seq, issuedAt: now, generation: this.cursorGeneration })
      : this.cursors.encode({ kind: 'sync', server: serverUuid, seq: snap.seq, issuedAt: now, generation: this.cursorGeneration });
    return { status: 200, json: { devices, cursor, fetched_until: appleTime(now), more_to_follow: more } };
  }

  syncDevices(serverUuid: string, body: Record<string, unknown>, version: number): Reply {
    if (!onlyKeys(body, ['cursor', 'limit']) || (body.cursor !== undefined && typeof body.cursor !== 'string')) return bad('MALFORMED_REQUEST_BODY');
    if (!body.cursor) return bad('CURSOR_REQUIRED');
    const limit = this.pageLimit(body);
    if (limit === undefined) return bad('MALFORMED_REQUEST_BODY');
    const r = this.readCursor(serverUuid, body.cursor as string);
    if (!r.ok) return bad(r.error);
    // Sync continues from a finished fetch; a cursor from the middle of one would skip devices.
    if (r.c.kind === 'fetch') return bad('INVALID_CURSOR');
    const server = this.server(serverUuid);
    const from = r.c.seq;
    const to = Math.min(from + limit, server.log.length);
    const devices: DepDevice[] = [];
    for (let i = from; i < to; i++) {
      const op = server.log[i]!;
      devices.push({ ...renderDevice(op.device, version), op_type: op.op_type, op_date: op.op_date });
    }
    const now = this.now();
    const more = to < server.log.length;
    const cursor = this.cursors.encode({ kind: 'sync', server: serverUuid, seq: to, issuedAt: now, generation: this.cursorGeneration });
    return { status: 200, json: { devices, cursor, fetched_until: more ? server.log[to - 1]!.op_date : appleTime(now), more_to_follow: more } };
  }

  deviceDetails(serverUuid: string, body: Record<string, unknown>, version: number): Reply {
    const serials = serialList(body, ['devices']);
    if (serials === 'malformed') return bad('MALFORMED_REQUEST_BODY');
    if (serials.length === 0) return bad('DEVICE_ID_REQUIRED');
    const out: Record<string, DepDevice | { response_status: string }> = {};
    for (const s of serials) {
      const d = this.devices.get(s);
      out[s] = d && d.serverUuid === serverUuid ? { ...renderDevice(d, version), response_status: 'SUCCESS' } : { response_status: 'NOT_ACCESSIBLE' };
    }
    return { status: 200, json: { devices: out } };
  }

  disownDevices(serverUuid: string, body: Record<string, unknown>): Reply {
    const serials = serialList(body, ['devices']);
    if (serials === 'malformed') return bad('MALFORMED_REQUEST_BODY');
    if (serials.length === 0) return bad('DEVICE_ID_REQUIRED');
    const at = appleTime(this.now());
    const out: Record<string, string> = {};
    for (const s of serials) {
      const d = this.devices.get(s);
      if (!d || d.serverUuid !== serverUuid) {
        out[s] = 'NOT_ACCESSIBLE';
        continue;
      }
      this.detach(d, at);
      this.devices.delete(s);
      out[s] = 'SUCCESS';
    }
    return { status: 200, json: { devices: out } };
  }

  defineProfile(serverUuid: string, body: unknown, version: number): Reply {
    const check = checkProfile(body);
    if (!check.ok) return bad(check.code);
    const uuid = appleUuid();
    this.profiles.set(uuid, { server: serverUuid, profile: { ...check.profile, profile_uuid: uuid } });
    const devices = check.devices.length ? this.applyProfile(serverUuid, uuid, check.devices, version).devices : {};
    return { status: 200, json: { profile_uuid: uuid, devices } };
  }

  getProfile(serverUuid: string, profileUuid: string | null): Reply {
    if (!profileUuid) return bad('PROFILE_UUID_REQUIRED');
    const p = this.profiles.get(profileUuid);
    // Profiles belong to the MDM server whose token defined them.
    if (!p || p.server !== serverUuid) return { status: 404, error: 'PROFILE_NOT_FOUND' };
    return { status: 200, json: p.profile };
  }

  assignProfile(serverUuid: string, body: Record<string, unknown>, version: number): Reply {
    const serials = serialList(body, ['profile_uuid', 'devices']);
    if (serials === 'malformed' || (body.profile_uuid !== undefined && typeof body.profile_uuid !== 'string')) return bad('MALFORMED_REQUEST_BODY');
    if (!body.profile_uuid) return bad('PROFILE_UUID_REQUIRED');
    if (serials.length === 0) return bad('DEVICE_ID_REQUIRED');
    const p = this.profiles.get(body.profile_uuid as string);
    if (!p || p.server !== serverUuid) return { status: 404, error: 'PROFILE_NOT_FOUND' };
    const r = this.applyProfile(serverUuid, body.profile_uuid as string, serials, version);
    return { status: 200, json: { profile_uuid: body.profile_uuid, devices: r.devices, ...(r.retryAfter !== undefined ? { retry_after_seconds: r.retryAfter } : {}) } };
  }

  private applyProfile(serverUuid: string, profileUuid: string, serials: string[], version: number): { devices: Record<string, string>; retryAfter?: number } {
    const server = this.server(serverUuid);
    const at = appleTime(this.now());
    const devices: Record<string, string> = {};
    let retryAfter: number | undefined;
    for (const s of serials) {
      const d = this.devices.get(s);
      if (!d || d.serverUuid !== serverUuid) {
        devices[s] = 'NOT_ACCESSIBLE';
        continue;
      }
      const forced = this.outcomes.get(s);
      if (forced) {
        // Per-device throttling exists from protocol version 9, retry_after_seconds from 10.
        const throttled = forced.outcome === 'THROTTLED' && version >= 9;
        devices[s] = throttled ? 'THROTTLED' : 'FAILED';
        if (throttled && version >= 10) retryAfter = Math.max(retryAfter ?? 0, forced.retryAfterSeconds);
        continue;
      }
      const next = this.replace(d, { profile_uuid: profileUuid, profile_status: 'assigned', profile_assign_time: at, profile_push_time: undefined });
      server.log.push({ op_type: 'modified', op_date: at, device: next });
      devices[s] = 'SUCCESS';
    }
    return { devices, ...(retryAfter !== undefined ? { retryAfter } : {}) };
  }

  removeProfile(serverUuid: string, body: Record<string, unknown>): Reply {
    const serials = serialList(body, ['profile_uuid', 'devices']);
    if (serials === 'malformed' || (body.profile_uuid !== undefined && typeof body.profile_uuid !== 'string')) return bad('MALFORMED_REQUEST_BODY');
    if (serials.length === 0) return bad('DEVICE_ID_REQUIRED');
    const server = this.server(serverUuid);
    const at = appleTime(this.now());
    const devices: Record<string, string> = {};
    for (const s of serials) {
      const d = this.devices.get(s);
      if (!d || d.serverUuid !== serverUuid) {
        devices[s] = 'NOT_ACCESSIBLE';
      } else if (body.profile_uuid && d.profile_uuid !== body.profile_uuid) {
        // Asked to remove a profile the device doesn't have.
        devices[s] = 'FAILED';
      } else {
        if (d.profile_uuid) {
          const next = this.replace(d, { profile_uuid: undefined, profile_status: 'removed', profile_assign_time: undefined, profile_push_time: undefined });
          server.log.push({ op_type: 'modified', op_date: at, device: next });
        }
        devices[s] = 'SUCCESS';
      }
    }
    return { status: 200, json: { devices } };
  }
}

function bad(code: string): Reply {
  return { status: 400, error: code };
}

function onlyKeys(body: Record<string, unknown>, keys: string[]): boolean {
  return Object.keys(body).every((k) => keys.includes(k));
}

/** `devices` as a list of serial strings; absent or empty gives []. */
function serialList(body: Record<string, unknown>, allowed: string[]): string[] | 'malformed' {
  if (!onlyKeys(body, allowed)) return 'malformed';
  const v = body.devices;
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) return 'malformed';
  return [...new Set((v as string[]).filter((s) => s !== ''))];
}

/** A device as the API shows it at a protocol version (device_family/os from 2, iPadOS from 7). */
export function renderDevice(d: DeviceRecord, version: number): DepDevice {
  const out: DepDevice = { serial_number: d.serial_number, model: d.model, description: d.description, color: d.color };
  if (d.asset_tag) out.asset_tag = d.asset_tag;
  if (version >= 2) {
    out.device_family = d.device_family;
    out.os = d.os === 'iPadOS' && version < 7 ? 'iOS' : d.os;
  }
  out.profile_status = d.profile_status;
  if (d.profile_uuid) out.profile_uuid = d.profile_uuid;
  if (d.profile_assign_time) out.profile_assign_time = d.profile_assign_time;
  if (d.profile_push_time) out.profile_push_time = d.profile_push_time;
  if (d.device_assigned_by) out.device_assigned_by = d.device_assigned_by;
  if (d.device_assigned_date) out.device_assigned_date = d.device_assigned_date;
  return out;
}
