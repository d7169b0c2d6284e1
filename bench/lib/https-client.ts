import https from 'node:https';

/**
 * A keep-alive https client for the load generator and the admin API: one agent, a fixed number of
 * sockets, the server's self-signed certificate trusted. Lighter than fetch, which matters when the
 * generator shares two cores with the server.
 */

export interface HttpAnswer {
  status: number;
  body: Buffer;
  /** Milliseconds from sending the request to the end of the answer. */
  ms: number;
}

export class HttpsClient {
  private readonly agent: https.Agent;

  constructor(
    private readonly baseUrl: string,
    opts: { ca: string; maxSockets: number },
  ) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: opts.maxSockets, ca: opts.ca });
  }

  request(method: string, pathOrUrl: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<HttpAnswer> {
    const url = new URL(pathOrUrl, this.baseUrl);
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, agent: this.agent, headers: { ...headers, ...(payload ? { 'content-length': String(payload.length) } : {}) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - started }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The admin API (Graph JSON) with a bearer key; throws unless the status is one of `expect`. */
export class AdminApi {
  constructor(
    private readonly http: HttpsClient,
    private readonly key: string,
  ) {}

  async call(method: string, path: string, body?: unknown, expect: readonly number[] = [200, 201, 204]): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.http.request(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
    const text = res.body.toString('utf8');
    if (!expect.includes(res.status)) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 500)}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  }
}
