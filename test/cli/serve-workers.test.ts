import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartDelayMs } from '../../src/server/cluster.js';
import { testDialect } from '../helpers/store.js';
import { api, createDeployment, ensureBuilt, runCli, slowPost, startServe, TOKEN, type Deployment, type Server } from './helpers.js';

/**
 * `openenroll serve` with OPENENROLL_WORKERS=2 on embedded SQLite: a cluster primary and two worker
 * processes on one database file. (On PostgreSQL the same processes are what test/multinode runs as
 * nodes; what only a cluster adds is the primary, which doesn't depend on the store.)
 */

const TAGS = '/beta/deviceManagement/roleScopeTags';
const RATE_LIMIT = 100;

/** The pids whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) found.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return found.sort((a, b) => a - b);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request on a connection of its own, so that the primary hands each to the next worker in turn. */
function onNewConnection(server: Server, method: string, urlPath: string, opts: { token?: string; body?: unknown } = {}): Promise<Answer> {
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const headers = { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(payload ? { 'content-type': 'application/json' } : {}) };
    const req = http.request(`${server.url}${urlPath}`, { method, agent: false, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Which workers answered: the `worker` label of the /metrics scrapes each served. */
async function workersAnsweringMetrics(server: Server, scrapes: number): Promise<Set<string>> {
  const workers = new Set<string>();
  for (let i = 0; i < scrapes; i++) {
    const res = await onNewConnection(server, 'GET', '/metrics');
    expect(res.status).toBe(200);
    const labels = new Set([...res.body.matchAll(/worker="([^"]+)"/g)].map((m) => m[1]!));
    // A scrape is one process's registry: every series carries that one worker's label.
    expect(labels.size).toBe(1);
    workers.add([...labels][0]!);
  }
  return workers;
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


describe.runIf(testDialect() === 'sqlite')('openenroll serve with OPENENROLL_WORKERS=2 on SQLite', () => {
  let dep: Deployment;
  let server: Server | undefined;
  let bootstrapKey: string;

  beforeAll(async () => {
    await ensureBuilt();
    dep = await createDeployment();
    server = await startServe(
      { ...dep.env, OPENENROLL_WORKERS: '2', OPENENROLL_RATE_LIMIT_MAX: String(RATE_LIMIT), OPENENROLL_RATE_LIMIT_WINDOW_MS: '600000' },
      40_000,
    );
  }, 120_000);
  afterAll(async () => {
    await server?.stop('SIGKILL');
    await dep.cleanup();
  });

  it('prints the bootstrap key once, from the primary, and forks two workers', async () => {
    const tokens = server!.stdout().match(TOKEN) ?? [];
    expect(tokens).toHaveLength(1);
    bootstrapKey = tokens[0]!;
    expect(server!.stdout().split('OpenEnroll first start: bootstrap administrator key')).toHaveLength(2);
    expect(server!.stdout().match(/"OpenEnroll listening"/g)).toHaveLength(1);
    // Each worker's line may reach the shared stdout after the primary's summary.
    await until('both workers to log', () => server!.stdout().match(/"worker listening"/g)?.length === 2);
    expect(server!.stderr()).toBe('');
    expect(childrenOf(server!.proc.pid!)).toHaveLength(2);
  });

  it('serves the admin API and /healthz, from both workers', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, () => api(server!, bootstrapKey, 'GET', TAGS)));
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(answers[0]!.json().value).toEqual([expect.objectContaining({ id: '0', displayName: 'Default' })]);
    expect((await api(server!, null, 'GET', '/healthz')).status).toBe(200);
    expect((await api(server!, null, 'GET', '/readyz')).status).toBe(200);
    expect(await workersAnsweringMetrics(server!, 6)).toEqual(new Set(['1', '2']));
  });

  it('writes from both workers at once into the one database file', async () => {
    const writes = 40;
    const created = await Promise.all(
      Array.from({ length: writes }, (_, i) => onNewConnection(server!, 'POST', TAGS, { token: bootstrapKey, body: { displayName: `Tag ${i}` } })),
    );
    expect(created.map((c) => c.status)).toEqual(Array(writes).fill(201));
    const listed = await api(server!, bootstrapKey, 'GET', `${TAGS}?$count=true`);
    expect(listed.json()['@odata.count']).toBe(writes + 1);
  });

  it('counts the admin rate limit once for all workers (in the store, not per process)', async () => {
    const first = await onNewConnection(server!, 'GET', TAGS, { token: bootstrapKey });
    expect(first.status).toBe(200);
    const remaining = Number(first.headers['x-ratelimit-remaining']);
    expect(remaining).toBeLessThan(RATE_LIMIT - 70);
    // Fresh connections alternate between the workers: in-memory counters would allow each its own budget.
    let allowed = 0;
    for (;;) {
      const res = await onNewConnection(server!, 'GET', TAGS, { token: bootstrapKey });
      if (res.status === 429) break;
      expect(res.status).toBe(200);
      expect(Number(res.headers['x-ratelimit-remaining'])).toBe(remaining - allowed - 1);
      allowed++;
      expect(allowed).toBeLessThanOrEqual(remaining);
    }
    expect(allowed).toBe(remaining);
  });

  it('restarts a worker killed with SIGKILL, and keeps serving meanwhile', async () => {
    const primary = server!.proc.pid!;
    const [victim, survivor] = childrenOf(primary);
    process.kill(victim!, 'SIGKILL');
    await until('the primary to notice the exit', () => server!.stdout().includes('"worker exited unexpectedly; restarting it"'));
    const whileOneIsDown = await Promise.all(Array.from({ length: 10 }, () => onNewConnection(server!, 'GET', '/healthz')));
    expect(whileOneIsDown.map((r) => r.status)).toEqual(Array(10).fill(200));

    await until('the replacement to listen', () => server!.stdout().includes('"replacement worker listening"'));
    const workers = childrenOf(primary);
    expect(workers).toHaveLength(2);
    expect(workers).toContain(survivor);
    expect(workers).not.toContain(victim);
    // The replacement keeps the dead worker's slot, and serves.
    expect(await workersAnsweringMetrics(server!, 6)).toEqual(new Set(['1', '2']));
  });

  it('on SIGTERM to the primary lets every worker finish its requests and stop, then exits 0 with nothing left behind', async () => {
    // The bootstrap key is over its rate limit by now: a named key, created by the CLI next to the running workers.
    const created = await runCli(['keys', 'create', '--role', 'administrator', '--name', 'shutdown'], dep.env);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    const primary = server!.proc.pid!;
    const workers = childrenOf(primary);
    expect(workers).toHaveLength(2);

    const inFlight = slowPost(server!, key, { displayName: 'Finished during shutdown' }, () => void server!.proc.kill('SIGTERM'), 300);
    const res = await inFlight;
    expect(res.status).toBe(201);
    expect(await server!.exited).toBe(0);
    const out = server!.stdout();
    server = undefined;
    expect(out.match(/"msg":"stopped"/g)).toHaveLength(3);
    expect(out).not.toContain('"forced exit"');
    for (const pid of workers) expect(alive(pid)).toBe(false);
    // The last connection to close checkpoints and removes the WAL: every worker closed the store.
    expect(fs.existsSync(path.join(dep.env.OPENENROLL_DATA_DIR!, 'openenroll.db-wal'))).toBe(false);
  });
});

describe.runIf(testDialect() === 'sqlite')('openenroll serve with workers that cannot start', () => {
  beforeAll(ensureBuilt, 120_000);

  it('exits 1 with the reason when the port is taken, instead of restarting workers forever', async () => {
    const dep = await createDeployment();
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const res = await runCli(['serve'], { ...dep.env, OPENENROLL_WORKERS: '2', PORT: String(port), HOST: '127.0.0.1' });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^openenroll: .*EADDRINUSE/m);
      expect(res.stdout).toContain('"a worker failed to start; stopping the others"');
      expect(res.stdout).not.toContain('"OpenEnroll listening"');
    } finally {
      taken.close();
      await dep.cleanup();
    }
  });
});

describe('restart delay of a crashing worker', () => {
  it('doubles from half a second and stops growing at 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map(restartDelayMs)).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });
});
