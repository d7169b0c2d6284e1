import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { DeviceError } from './errors.js';

/**
 * The device's HTTP client: https only (Apple devices refuse plain http for enrollment and MDM),
 * server certificates checked against the system roots plus the device's trust anchors, an
 * optional TLS client identity (MDM without SignMessage), and no redirects followed unless the
 * caller does it (the web flow does; the MDM channel never).
 */

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** TLS client certificate (PEM) for MDM servers that authenticate by the connection. */
  clientIdentity?: { certPem: string; keyPem: string };
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", " (set-cookie with "\n"). */
  headers: Record<string, string>;
  body: Buffer;
  url: string;
}

export type Transport = (req: HttpRequest) => Promise<HttpResponse>;

const MAX_BODY = 16 * 1024 * 1024;

export interface HttpsTransportOptions {
  trustAnchors: readonly string[];
  timeoutMs?: number;
  /** Only for development against a plain-http server; devices never allow it. */
  allowHttp?: boolean;
}

/**
 * One TLS trust store per set of anchors, shared by every device that trusts the same ones (a
 * phone's root store is built once too). Passing `ca` per connection instead re-parses ~140 roots
 * for every handshake and makes the agent hash their text into every request's pool key.
 */
const trustStores = new Map<string, tls.SecureContext>();

function trustStore(anchors: readonly string[]): tls.SecureContext {
  const key = anchors.join('\n');
  let context = trustStores.get(key);
  if (!context) {
    context = tls.createSecureContext({ ca: [...tls.rootCertificates, ...anchors] });
    trustStores.set(key, context);
  }
  return context;
}

export function httpsTransport(opts: HttpsTransportOptions): Transport & { close(): void } {
  const ca = [...tls.rootCertificates, ...opts.trustAnchors];
  const agent = new https.Agent({ keepAlive: true, secureContext: trustStore(opts.trustAnchors), maxSockets: 8 });
  const plainAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const send: Transport = (req) =>
    new Promise<HttpResponse>((resolve, reject) => {
      let url: URL;
      try {
        url = new URL(req.url);
      } catch {
        reject(new DeviceError('network', `'${req.url}' is not a URL`));
        return;
      }
      if (url.protocol !== 'https:' && !(opts.allowHttp && url.protocol === 'http:')) {
        reject(new DeviceError('network', `The device only connects to https URLs, not '${req.url}'`));
        return;
      }
      const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body);
      const headers: Record<string, string> = { 'user-agent': 'MDM/1.0', ...req.headers };
      if (body) headers['content-length'] = String(body.length);
      const options: https.RequestOptions = {
        method: req.method,
        headers,
        timeout: opts.timeoutMs ?? 30_000,
        agent: url.protocol === 'http:' ? plainAgent : agent,
        ...(req.clientIdentity ? { cert: req.clientIdentity.certPem, key: req.clientIdentity.keyPem, ca } : {}),
      };
      const r = (url.protocol === 'http:' ? http : https).request(url, options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) {
            res.destroy();
            reject(new DeviceError('network', `The response from ${url.host} is larger than ${MAX_BODY} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            out[k] = Array.isArray(v) ? v.join(k === 'set-cookie' ? '\n' : ', ') : v;
          }
          resolve({ status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks), url: url.href });
        });
        res.on('error', (err) => reject(new DeviceError('network', `Reading the answer of ${url.host} failed`, err.message)));
      });
      r.on('timeout', () => r.destroy(new Error('timed out')));
      r.on('error', (err) => reject(new DeviceError('network', `Could not connect to ${url.host}`, err.message)));
      r.end(body);
    });
  return Object.assign(send, {
    close() {
      agent.destroy();
      plainAgent.destroy();
    },
  });
}

/** A transport over a WHATWG fetch (the caller owns TLS trust then; no client certificates). */
export function fetchTransport(fetchFn: typeof fetch): Transport {
  return async (req) => {
    if (req.clientIdentity) throw new DeviceError('network', 'A fetch transport cannot present a TLS client certificate');
    let res: Response;
    try {
      res = await fetchFn(req.url, { method: req.method, headers: req.headers, body: req.body, redirect: 'manual' } as RequestInit);
    } catch (err) {
      throw new DeviceError('network', `Could not connect to ${req.url}`, err instanceof Error ? err.message : String(err));
    }
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      headers[k] = v;
    });
    const setCookies = (res.headers as Headers & { getSetCookie?: () => string[] }).getSetCookie?.();
    if (setCookies?.length) headers['set-cookie'] = setCookies.join('\n');
    return { status: res.status, headers, body: Buffer.from(await res.arrayBuffer()), url: req.url };
  };
}

/** The media type of a Content-Type header, lower-case, without parameters. */
export function mediaType(headers: Record<string, string>): string {
  return (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** A cookie jar for the web flow: name=value per host, no attributes honoured but Path-less scoping. */
export class CookieJar {
  private readonly byHost = new Map<string, Map<string, string>>();

  store(url: string, headers: Record<string, string>): void {
    const raw = headers['set-cookie'];
    if (!raw) return;
    const host = new URL(url).host;
    const jar = this.byHost.get(host) ?? new Map<string, string>();
    for (const line of raw.split('\n')) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      if (eq <= 0) continue;
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a) || (/^\s*expires\s*=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now()));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    this.byHost.set(host, jar);
  }

  header(url: string): string | undefined {
    const jar = this.byHost.get(new URL(url).host);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}
