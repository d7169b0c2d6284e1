import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/db.js';
import { mdmHarness, plistBody, type Identity, type MdmHarness } from '../apple/mdm-support.js';
import { startPgCluster, type PgCluster } from '../helpers/pg-cluster.js';
import { testDialect } from '../helpers/store.js';
import { sleep, until } from './support.js';

/**
 * PostgreSQL stopped and started again under load (a restart, a failover): the requests that
 * arrive meanwhile get 503 with Retry-After and the Graph error envelope (the device's own shape on
 * the MDM channel), never a 500 or a stack trace; /readyz says not ready; and once PostgreSQL is
 * back the same process serves again, and its job scheduler runs jobs, with no manual step.
 * The cluster is this file's own: restarting the suite's shared one would disturb other files.
 */

type Phase = 'before' | 'outage' | 'after';
interface Outcome {
  kind: 'admin' | 'device';
  phase: Phase;
  status: number;
  body: string;
  retryAfter: string | undefined;
}

describe.skipIf(testDialect() !== 'postgres')('PostgreSQL restarted under load', () => {
  let cluster: PgCluster;
  let h: MdmHarness;
  let device: Identity;
  const UDID = '00008101-000A1B2C3D4E5FAA';

  beforeAll(async () => {
    cluster = await startPgCluster();
    const store = createStore({ databaseUrl: cluster.url, poolSize: 5 });
    await store.migrate();
    h = await mdmHarness({ store, env: { OPENENROLL_JOBS_POLL_MS: '100' } });
    device = await h.identity(await h.intent({ udid: UDID }));
    const checkin = (msg: Record<string, unknown>) => h.send('checkin', { UDID, Topic: h.topic, ...msg } as never, device);
    expect((await checkin({ MessageType: 'Authenticate', ProductName: 'iPhone13,2', OSVersion: '17.0', SerialNumber: 'SNFAULT01' })).statusCode).toBe(200);
    expect((await checkin({ MessageType: 'TokenUpdate', Token: crypto.randomBytes(32), PushMagic: 'PM-FAULT' })).statusCode).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await h?.close();
    await cluster?.stop();
  });

  it('answers 503 during the outage and serves again afterwards, in the same process', { timeout: 60_000 }, async () => {
    const jobs = h.t.app.core.jobs;
    const ran: string[] = [];
    jobs.register('faults.afterOutage', async (payload) => void ran.push((payload as { n: string }).n));
    jobs.start();

    let phase: Phase = 'before';
    let stop = false;
    const outcomes: Outcome[] = [];
    const admin = async (): Promise<Outcome> => {
      const p = phase;
      const res = await h.t.request({ method: 'GET', url: '/v1.0/deviceManagement/managedDevices?$top=5' });
      return { kind: 'admin', phase: p, status: res.statusCode, body: res.body, retryAfter: res.headers['retry-after']?.toString() };
    };
    const idle = async (): Promise<Outcome> => {
      const p = phase;
      const res = await h.send('server', plistBody({ UDID, Status: 'Idle' }), device);
      return { kind: 'device', phase: p, status: res.statusCode, body: res.body, retryAfter: res.headers['retry-after']?.toString() };
    };
    // Four clients, each alternating an admin read and a device check-in, as fast as answered.
    const load = Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let i = w; !stop; i++) {
          outcomes.push(await (i % 2 === 0 ? admin() : idle()));
          await sleep(5);
        }
      }),
    );
    const count = (p: Phase, kind: Outcome['kind'], ok: boolean) => outcomes.filter((o) => o.phase === p && o.kind === kind && (o.status === 200) === ok).length;

    try {
      await until('requests served before the outage', () => count('before', 'admin', true) >= 10 && count('before', 'device', true) >= 10);

      await cluster.stopServer();
      phase = 'outage';
      await until('requests refused during the outage', () => count('outage', 'admin', false) >= 10 && count('outage', 'device', false) >= 10, 20_000);
      const notReady = await h.t.request({ method: 'GET', url: '/readyz', key: null });
      expect([notReady.statusCode, notReady.headers['retry-after']]).toEqual([503, '5']);

      await cluster.startServer();
      phase = 'after';
      // No restart, no call to reconnect: the pool makes new connections as requests come.
      await until('requests served after the outage', () => count('after', 'admin', true) >= 10 && count('after', 'device', true) >= 10, 20_000);
    } finally {
      stop = true;
      await load;
    }

    // Every answer was a success or a clean 503: no 500, no stack, nothing else.
    const failures = outcomes.filter((o) => o.status !== 200);
    expect(new Set(failures.map((o) => o.status))).toEqual(new Set([503]));
    for (const o of failures) {
      expect(o.retryAfter).toBe('5');
      expect(o.body).not.toMatch(/\bat .+\.(ts|js):\d+|node_modules|ECONNREFUSED|57P01|terminat/i);
      if (o.kind === 'admin') {
        expect(JSON.parse(o.body)).toMatchObject({ error: { code: 'ServiceUnavailable', message: expect.any(String), innerError: { 'request-id': expect.any(String) } } });
      } else {
        expect(JSON.parse(o.body)).toEqual({ code: 'com.openenroll.mdm.unavailable', description: expect.any(String) });
      }
    }
    // Only the outage (and requests already on their way when it began or ended) failed.
    expect(failures.filter((o) => o.phase === 'before').length).toBeLessThanOrEqual(4);
    const settled = outcomes.filter((o) => o.phase === 'after').slice(-8);
    expect(settled.every((o) => o.status === 200)).toBe(true);

    const ready = await h.t.request({ method: 'GET', url: '/readyz', key: null });
    expect(ready.statusCode).toBe(200);
    // The scheduler kept polling through the outage and runs new work by itself.
    await jobs.enqueue(h.t.store.db, { tenantId: h.tenantId, kind: 'faults.afterOutage', payload: { n: 'one' } });
    await until('the job to run', () => ran.includes('one'), 10_000);
    console.log(
      `[faults] postgres restart: ${outcomes.length} requests, ${failures.length} answered 503 (admin ${failures.filter((o) => o.kind === 'admin').length}, device ${failures.filter((o) => o.kind === 'device').length}), none 500`,
    );
  });
});
