import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listJobs } from '../../src/jobs/list-jobs.js';
import { JobScheduler } from '../../src/jobs/scheduler.js';
import type { Store } from '../../src/store/db.js';
import { createTenant } from '../../src/tenancy/service.js';
import { createTestStore, pgUrl } from '../helpers/store.js';
import { waitUntil } from './support.js';

/**
 * Two real processes, each running the real scheduler against one PostgreSQL schema, prove that a
 * job runs exactly once at a time across nodes. Every run is recorded with the database's clock.
 */

const RUNNER = fileURLToPath(new URL('./fixtures/job-runner.ts', import.meta.url));
const ROOT = path.resolve(path.dirname(RUNNER), '../../..');
const LEASE_MS = 1500;
const HEARTBEAT_MS = 300;

interface Runner {
  child: ChildProcess;
  pid: number;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

interface Run {
  job_id: string;
  pid: number;
  attempt: number;
  lease_version: number;
  started_ms: number;
  ended_ms: number | null;
}

describe.skipIf(process.env.OPENENROLL_TEST_STORE !== 'postgres')('two processes on one PostgreSQL cluster', () => {
  let store: Store & { pgSchema?: string | undefined };
  let tenantId: string;
  let runners: Runner[];

  beforeEach(async () => {
    store = await createTestStore();
    tenantId = (await createTenant(store, { displayName: 'Jobs' })).id;
    runners = [];
    await sql`create table job_runs (
      id serial primary key,
      job_id text not null,
      pid integer not null,
      attempt integer not null,
      lease_version integer not null,
      started_ms double precision not null,
      ended_ms double precision)`.execute(store.db);
  });

  afterEach(async () => {
    for (const r of runners) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await Promise.all(runners.map((r) => r.exited));
    await store.close();
  });

  function startRunner(): Runner {
    const child = spawn(process.execPath, ['--import', 'tsx', RUNNER], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: pgUrl(),
        OPENENROLL_PG_SCHEMA: store.pgSchema,
        JOB_LEASE_MS: String(LEASE_MS),
        JOB_HEARTBEAT_MS: String(HEARTBEAT_MS),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', () => out.includes('ready\n') && resolve());
      void exited.then(() => reject(new Error(`runner exited before it was ready:\n${out}`)));
    });
    const runner = { child, pid: child.pid!, ready, exited, output: () => out };
    runners.push(runner);
    return runner;
  }

  async function dbNow(): Promise<number> {
    const { rows } = await sql<{ t: number }>`select extract(epoch from clock_timestamp()) * 1000 as t`.execute(store.db);
    return Number(rows[0]!.t);
  }

  async function loadRuns(): Promise<Run[]> {
    const { rows } = await sql<Run>`select job_id, pid, attempt, lease_version, started_ms, ended_ms from job_runs order by started_ms`.execute(store.db);
    return rows;
  }

  /** No two runs of one job overlap; a run that never ended (its process was killed) ends at `killedAt`. */
  function expectNoOverlap(runs: Run[], killedAt = Infinity): void {
    const byJob = new Map<string, Run[]>();
    for (const r of runs) byJob.set(r.job_id, [...(byJob.get(r.job_id) ?? []), r]);
    for (const [jobId, list] of byJob) {
      for (let i = 1; i < list.length; i++) {
        const prev = list[i - 1]!;
        const cur = list[i]!;
        expect(cur.started_ms, `job ${jobId}: a run started before the previous one ended`).toBeGreaterThanOrEqual(prev.ended_ms ?? killedAt);
        // The fencing token only grows.
        expect(cur.lease_version).toBeGreaterThan(prev.lease_version);
      }
    }
  }

  async function stopGracefully(r: Runner): Promise<void> {
    r.child.kill('SIGTERM');
    expect(await r.exited, r.output()).toEqual({ code: 0, signal: null });
  }

  it('runs every job exactly once at a time, with both processes sharing the work', async () => {
    const a = startRunner();
    const b = startRunner();
    await Promise.all([a.ready, b.ready]);

    const enqueuer = new JobScheduler(store);
    const periodic = await enqueuer.enqueue(store.db, { tenantId, kind: 'record', dedupeKey: 'periodic', intervalMs: 30, payload: { sleepMs: 60 } });
    // Committed at once, so both processes race to claim the same rows.
    const oneOffs = await store.transaction(async (trx) => {
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push(await enqueuer.enqueue(trx, { tenantId, kind: 'record', payload: { sleepMs: 50 } }));
      return ids;
    });

    const since = Date.now();
    await waitUntil(
      async () => Date.now() - since > 2500 && (await listJobs(store.db, { tenantId, status: 'succeeded' })).length === oneOffs.length,
      'the one-off jobs to finish and the periodic job to run a while',
    );
    await Promise.all([stopGracefully(a), stopGracefully(b)]);

    const runs = await loadRuns();
    expect(runs.every((r) => r.ended_ms !== null)).toBe(true);
    expectNoOverlap(runs);
    for (const id of oneOffs) expect(runs.filter((r) => r.job_id === id)).toHaveLength(1);
    expect(runs.filter((r) => r.job_id === periodic).length).toBeGreaterThanOrEqual(5);
    expect(new Set(runs.map((r) => r.pid))).toEqual(new Set([a.pid, b.pid]));

    // Both stopped gracefully: nothing is left leased or running.
    const jobs = await listJobs(store.db, { tenantId });
    expect(jobs.every((j) => j.leaseOwner === null && j.leaseExpiresAt === null)).toBe(true);
    expect(jobs.find((j) => j.id === periodic)!.status).toBe('pending');
  });

  it('when a process is killed mid-run, the other takes its job over only after the lease expires', async () => {
    const a = startRunner();
    const b = startRunner();
    await Promise.all([a.ready, b.ready]);

    const enqueuer = new JobScheduler(store);
    const periodic = await enqueuer.enqueue(store.db, { tenantId, kind: 'record', dedupeKey: 'periodic', intervalMs: 30, payload: { sleepMs: 60 } });
    const victim = await enqueuer.enqueue(store.db, { tenantId, kind: 'record', payload: { sleepMs: 2000 } });
    let holderPid = 0;
    await waitUntil(async () => {
      holderPid = (await loadRuns()).find((r) => r.job_id === victim)?.pid ?? 0;
      return holderPid !== 0;
    }, 'a process to start the long job');
    const [holder, survivor] = holderPid === a.pid ? [a, b] : [b, a];

    const beforeKill = await dbNow();
    holder.child.kill('SIGKILL');
    expect((await holder.exited).signal).toBe('SIGKILL');
    const killedAt = await dbNow();

    await waitUntil(async () => (await listJobs(store.db, { tenantId, status: 'succeeded' })).some((j) => j.id === victim), 'the survivor to finish the long job');
    await waitUntil(
      async () => (await loadRuns()).filter((r) => r.job_id === periodic && r.pid === survivor.pid && r.started_ms > killedAt).length >= 3,
      'the survivor to keep running the periodic job',
    );
    await stopGracefully(survivor);

    const runs = await loadRuns();
    expectNoOverlap(runs, killedAt);
    expect(runs.filter((r) => r.ended_ms === null).every((r) => r.pid === holder.pid)).toBe(true);

    const victimRuns = runs.filter((r) => r.job_id === victim);
    expect(victimRuns).toHaveLength(2);
    expect(victimRuns[0]).toMatchObject({ pid: holder.pid, attempt: 1, ended_ms: null });
    expect(victimRuns[1]).toMatchObject({ pid: survivor.pid, attempt: 2 });
    expect(victimRuns[1]!.ended_ms).not.toBeNull();
    // The holder renewed its lease at most a heartbeat before it died; the takeover waited for it to run out.
    expect(victimRuns[1]!.started_ms).toBeGreaterThanOrEqual(beforeKill + LEASE_MS - HEARTBEAT_MS - 100);

    const job = (await listJobs(store.db, { tenantId })).find((j) => j.id === victim)!;
    expect(job).toMatchObject({ status: 'succeeded', attempts: 2, leaseOwner: null });
  });
});
