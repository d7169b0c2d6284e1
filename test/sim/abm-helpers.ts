import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import { decryptServerToken, oauth1AuthorizationHeader, type AbmSimulator, type OAuth1Credentials } from '../../sim/apple-dep/index.js';

/** Test-side pieces for the ABM simulator: the MDM's token keypair and a minimal DEP caller. */

export const UA = 'openenroll-sim-tests/1.0';
export const JSON_TYPE = 'application/json;charset=UTF8';

export interface Recipient {
  certPem: string;
  keyPem: string;
}

let cached: Recipient | undefined;

/** An RSA-2048 key and a self-signed certificate, like the one an MDM gives the admin to upload. */
export function tokenRecipient(fresh = false): Recipient {
  if (cached && !fresh) return cached;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const name = [{ name: 'commonName', value: 'openenroll-dep' }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([{ name: 'keyUsage', keyEncipherment: true, digitalSignature: true }]);
  cert.sign(key, forge.md.sha256.create());
  const r = { certPem: forge.pki.certificateToPem(cert), keyPem };
  if (!fresh) cached = r;
  return r;
}

export function credentialsFromP7m(p7m: string, keyPem: string): OAuth1Credentials {
  const t = decryptServerToken(p7m, keyPem);
  return { consumerKey: t.consumer_key, consumerSecret: t.consumer_secret, accessToken: t.access_token, accessSecret: t.access_secret };
}

/** Creates an MDM server with our key uploaded and returns its uuid and decrypted OAuth credentials. */
export function connectServer(sim: AbmSimulator, name: string, opts: { expiresAt?: Date } = {}): { serverUuid: string; creds: OAuth1Credentials } {
  const r = tokenRecipient();
  const { serverUuid } = sim.createMdmServer(name);
  sim.uploadPublicKey(serverUuid, r.certPem);
  return { serverUuid, creds: credentialsFromP7m(sim.downloadServerToken(serverUuid, opts), r.keyPem) };
}

export interface Res {
  status: number;
  text: string;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export async function http(url: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Res> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, headers: res.headers, json };
}

/** A deliberately small DEP caller: one session, adopts refreshed session tokens, no retries. */
export class Dep {
  session: string | undefined;
  constructor(
    readonly sim: AbmSimulator,
    public creds: OAuth1Credentials,
    readonly opts: { version?: string | null; now?: () => Date; userAgent?: string; relogin?: boolean } = {},
  ) {}

  signedSession(extra: { nonce?: string; timestamp?: Date; headers?: Record<string, string>; creds?: OAuth1Credentials; url?: string } = {}): Promise<Res> {
    const url = extra.url ?? `${this.sim.url}/session`;
    const authorization = oauth1AuthorizationHeader('GET', url, extra.creds ?? this.creds, {
      nonce: extra.nonce,
      timestamp: extra.timestamp ?? this.opts.now?.() ?? new Date(),
    });
    return http(url, { headers: { 'User-Agent': this.opts.userAgent ?? UA, 'Content-Type': JSON_TYPE, Authorization: authorization, ...extra.headers } });
  }

  async login(): Promise<string> {
    const r = await this.signedSession();
    if (r.status !== 200) throw new Error(`session: ${r.status} ${r.text}`);
    this.session = r.json.auth_session_token as string;
    return this.session;
  }

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
    if (!this.session) await this.login();
    const h: Record<string, string> = { 'User-Agent': this.opts.userAgent ?? UA, 'X-ADM-Auth-Session': this.session!, Accept: JSON_TYPE };
    if (this.opts.version !== null) h['X-Server-Protocol-Version'] = this.opts.version ?? '7';
    if (body !== undefined) h['Content-Type'] = JSON_TYPE;
    const r = await http(`${this.sim.url}${path}`, { method, headers: { ...h, ...headers }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const refreshed = r.headers.get('x-adm-auth-session');
    if (refreshed) this.session = refreshed;
    if (r.status === 401 && this.opts.relogin) {
      this.session = undefined;
      return this.call(method, path, body, headers);
    }
    return r;
  }

  /** Every device of a full fetch, and the cursor to sync from. */
  async fetchAll(limit?: number): Promise<{ serials: string[]; cursor: string; pages: number }> {
    const serials: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const r = await this.call('POST', '/server/devices', { ...(cursor ? { cursor } : {}), ...(limit ? { limit } : {}) });
      if (r.status !== 200) throw new Error(`fetch: ${r.status} ${r.text}`);
      pages++;
      for (const d of r.json.devices) serials.push(d.serial_number);
      cursor = r.json.cursor;
      if (!r.json.more_to_follow) return { serials, cursor: cursor!, pages };
    }
  }

  /** Every change since the cursor, and the cursor after them. */
  async syncAll(cursor: string, limit?: number): Promise<{ ops: Array<{ serial: string; op: string; profile_uuid?: string }>; cursor: string }> {
    const ops: Array<{ serial: string; op: string; profile_uuid?: string }> = [];
    for (;;) {
      const r = await this.call('POST', '/devices/sync', { cursor, ...(limit ? { limit } : {}) });
      if (r.status !== 200) throw new Error(`sync: ${r.status} ${r.text}`);
      for (const d of r.json.devices) ops.push({ serial: d.serial_number, op: d.op_type, ...(d.profile_uuid ? { profile_uuid: d.profile_uuid } : {}) });
      cursor = r.json.cursor;
      if (!r.json.more_to_follow) return { ops, cursor };
    }
  }
}
