import { createServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/db.js';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { createDeployment, ensureBuilt, startServe, TOKEN, type Deployment, type Server } from '../cli/helpers.js';
import { openDeploymentStore, until } from '../faults/support.js';
import { httpCall, uploadPushCertificate, uploadTokenThroughApi } from './ade-sync-support.js';

/**
 * The real server, killed with SIGKILL in the middle of a first sync of 20,000 devices, then
 * started again: it resumes from the cursor it saved with the last page it stored, and ends with
 * every device exactly once.
 */

interface Recorded {
  method: string;
  path: string;
  body: string;
  status: number;
}

/** A pass-through in front of the simulator that keeps request bodies (the cursors sent). */
async function recordingProxy(target: string): Promise<{ url: string; log: Recorded[]; inFlight(): number; close(): Promise<void> }> {
  const log: Recorded[] = [];
  let inFlight = 0;
  const to = new URL(target);
  const server: HttpServer = createServer((req, res) => {
    inFlight++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const entry: Recorded = { method: req.method ?? 'GET', path: req.url ?? '/', body: body.toString('utf8'), status: 0 };
      // The Host header goes through as sent: the OAuth signature covers it.
      const out = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        entry.status = answer.statusCode ?? 0;
        log.push(entry);
        inFlight--;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      out.on('error', () => {
        inFlight--;
        res.destroy();
      });
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    inFlight: () => inFlight,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('ADE sync survives SIGKILL', () => {
  let sim: AbmSimulator;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let deployment: Deployment;
  let server: Server | undefined;
  let store: Store | undefined;

  beforeAll(async () => {
    await ensureBuilt();
    sim = await startAbmSimulator({ limits: { default: 100, maximum: 100 } });
    proxy = await recordingProxy(sim.url);
    deployment = await createDeployment();
  }, 180_000);

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await store?.close();
    await proxy?.close();
    await sim?.close();
    await deployment?.cleanup();
  });

  it('resumes from the saved cursor and stores every device exactly once', { timeout: 90_000 }, async () => {
    const env = { ...deployment.env, OPENENROLL_APPLE_DEP_URL: proxy.url, OPENENROLL_JOBS_LEASE_MS: '1500', OPENENROLL_PUBLIC_URL: 'https://openenroll.test' };
    server = await startServe(env);
    const key = server.stdout().match(TOKEN)?.[0];
    expect(key).toBeTruthy();
    const call = httpCall(server.url, key!);
    await uploadPushCertificate(call);
    let serials: string[] = [];
    // Devices are assigned before the upload, and every page is slowed, so the first sync takes a while.
    const { tokenId } = await uploadTokenThroughApi(call, sim, 'OpenEnroll', (serverUuid) => {
      serials = sim.generateDevices(20_000, { serverUuid });
      sim.injectFault({ path: '/server/devices', delayMs: 25, times: Infinity });
    });

    // Kill it once some pages are stored.
    const fetched = () => proxy.log.filter((r) => r.path === '/server/devices' && r.status === 200).length;
    await until('40 pages fetched', async () => fetched() >= 40);
    server.proc.kill('SIGKILL');
    await server.exited;
    server = undefined;
    // The dead process's last request may still be answered; it doesn't count as the new one's.
    await until('requests of the killed process to settle', async () => proxy.inFlight() === 0);
    const killedAfter = fetched();

    store = openDeploymentStore(deployment);
    const saved = await store.db.selectFrom('dep_tokens').selectAll().where('id', '=', tokenId).executeTakeFirstOrThrow();
    const stored = await store.db.selectFrom('dep_devices').select('serial_number').where('token_id', '=', tokenId).execute();
    expect(saved.sync_status).toBe('running');
    expect(saved.sync_phase).toBe('fetch');
    expect(saved.cursor).toBeTruthy();
    // Pages are stored whole with their cursor: a multiple of the page size, all of them devices Apple listed.
    expect(stored.length % 100).toBe(0);
    expect(stored.length).toBeGreaterThanOrEqual((killedAfter - 1) * 100);
    expect(stored.length).toBeLessThan(20_000);
    const known = new Set(serials);
    expect(stored.every((r) => known.has(r.serial_number))).toBe(true);

    // Restart: the job's lease runs out and the new process takes it over.
    const before = proxy.log.length;
    const started = Date.now();
    server = await startServe(env);
    const call2 = httpCall(server.url, key!);
    const entity = await until(
      'the sync to finish',
      async () => {
        const res = await call2('GET', `/beta/deviceManagement/depOnboardingSettings/${tokenId}`);
        const e = res.json();
        return e.syncStatus === 'succeeded' ? e : undefined;
      },
      60_000,
    );
    console.log(`[ade-sync-kill] ${deployment.dialect}: killed after ${stored.length} of 20,000 devices stored; resumed and finished in ${Date.now() - started} ms`);

    const after = proxy.log.slice(before).filter((r) => r.path === '/server/devices');
    expect(after.length).toBeGreaterThan(0);
    // The first fetch after the restart carried the saved cursor: no fresh start.
    expect(JSON.parse(after[0]!.body)).toEqual({ cursor: saved.cursor, limit: 100 });
    expect(after.every((r) => (JSON.parse(r.body) as { cursor?: string }).cursor)).toBe(true);
    expect(after.filter((r) => r.status === 200)).toHaveLength(200 - stored.length / 100);

    const rows = await store.db.selectFrom('dep_devices').select(['serial_number', 'model', 'seen_at_apple', 'removed_from_apple_at']).where('token_id', '=', tokenId).execute();
    expect(rows).toHaveLength(20_000);
    expect(new Set(rows.map((r) => r.serial_number))).toEqual(known);
    expect(rows.every((r) => r.model !== null && Number(r.seen_at_apple) === 1 && r.removed_from_apple_at === null)).toBe(true);
    expect(entity).toMatchObject({ syncStatus: 'succeeded', syncedDeviceCount: 20_000, lastSyncErrorCode: 0 });
  });
});
