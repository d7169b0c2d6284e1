import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listJobs } from '../../src/jobs/list-jobs.js';
import {
  defaultBackoff,
  JobScheduler,
  JobTimeoutError,
  LeaseLostError,
  ShutdownError,
  type JobContext,
  type RunResult,
  type SchedulerOptions,
} from '../../src/jobs/scheduler.js';
import { DAY, HOUR, MINUTE, ManualClock, SECOND } from '../../src/shared/time.js';
import type { Store } from '../../src/store/db.js';
import { createTenant } from '../../src/tenancy/service.js';
import { createTestStore } from '../helpers/store.js';
import { deferred, ISO_UTC, jobRow, untilAborted, waitUntil } from './support.js';

let store: Store;
let clock: ManualClock;
let tenantId: string;
let schedulers: JobScheduler[];
let results: { owner: string; kind: string; result: RunResult }[];

beforeEach(async () => {
  store = await createTestStore();
  clock = new ManualClock('2026-01-01T00:00:00.000Z');
  tenantId = (await createTenant(store, { displayName: 'Jobs' }, clock.now())).id;
  schedulers = [];
  results = [];
});

afterEach(async () => {
  for (const s of schedulers) await s.stop(0);
  await store.close();
});

/** A scheduler standing for one node; by default its heartbeat (a third of 30 s) never fires in a test. */
function node(owner: string, opts: SchedulerOptions = {}): JobScheduler {
  const s = new JobScheduler(store, {
    owner,
    clock,
    abortGraceMs: 200,
    onRun: (kind, result) => results.push({ owner, kind, result }),
    ...opts,
  });
  schedulers.push(s);
  return s;
}

const at = (ms: number) => new Date(clock.now().getTime() + ms).toISOString();

describe('one-off jobs', () => {
  it('run once, are marked succeeded, and get their payload back intact', async () => {
    const s = node('a');
    const seen: { payload: unknown; job: JobContext['job'] }[] = [];
    s.register('echo', async (payload, ctx) => {
      seen.push({ payload, job: ctx.job });
    });
    const payload = { text: 'héllo "quoted"', n: 42, list: [1, null, true], nested: { deep: { x: 1.5 } } };
    const id = await s.enqueue(store.db, { tenantId, kind: 'echo', payload });

    await s.drain();
    await s.drain();
    expect(await s.pollOnce()).toBe(0);

    expect(seen).toHaveLength(1);
    expect(seen[0]!.payload).toEqual(payload);
    expect(seen[0]!.job).toMatchObject({ id, tenantId, kind: 'echo', dedupeKey: null, attempts: 1, maxAttempts: 5, intervalMs: null, leaseVersion: 1 });
    const row = (await jobRow(store, id))!;
    expect(row).toMatchObject({ status: 'succeeded', attempts: 1, lease_owner: null, lease_expires_at: null, last_error: null });
    expect(row.last_finished_at).toBe(clock.now().toISOString());
    for (const t of [row.run_at, row.created_at, row.updated_at, row.last_started_at, row.last_finished_at]) expect(t).toMatch(ISO_UTC);
    expect(results).toEqual([{ owner: 'a', kind: 'echo', result: 'succeeded' }]);
  });

  it('an omitted payload arrives as null', async () => {
    const s = node('a');
    const seen: unknown[] = [];
    s.register('bare', async (payload) => void seen.push(payload));
    await s.enqueue(store.db, { tenantId, kind: 'bare' });
    await s.drain();
    expect(seen).toEqual([null]);
  });

  it('are not claimed by a node without a handler for their kind', async () => {
    const s = node('a');
    s.register('known', async () => undefined);
    const unknown = await s.enqueue(store.db, { tenantId, kind: 'unknown' });
    const known = await s.enqueue(store.db, { tenantId, kind: 'known' });

    expect(await s.pollOnce()).toBe(1);
    await s.drain();
    expect((await jobRow(store, known))!.status).toBe('succeeded');
    expect(await jobRow(store, unknown)).toMatchObject({ status: 'pending', attempts: 0, lease_owner: null, lease_version: 0 });

    const idle = node('idle');
    expect(await idle.pollOnce()).toBe(0);
  });

  it('wait until run_at: not due a millisecond before, due at it', async () => {
    const s = node('a');
    let ran = 0;
    s.register('later', async () => void ran++);
    await s.enqueue(store.db, { tenantId, kind: 'later', runAt: new Date(clock.now().getTime() + MINUTE) });
    clock.advance(MINUTE - 1);
    expect(await s.pollOnce()).toBe(0);
    clock.advance(1);
    expect(await s.pollOnce()).toBe(1);
    await s.drain();
    expect(ran).toBe(1);
  });

  it('enqueued in a transaction that rolls back never exist', async () => {
    const s = node('a');
    await expect(
      store.transaction(async (trx) => {
        await s.enqueue(trx, { tenantId, kind: 'x' });
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    expect(await listJobs(store.db, { tenantId })).toEqual([]);
  });

  it('may be rescheduled by their handler', async () => {
    const s = node('a');
    let calls = 0;
    s.register('again', async () => (++calls === 1 ? { rescheduleAt: new Date(clock.now().getTime() + 5 * MINUTE) } : undefined));
    const id = await s.enqueue(store.db, { tenantId, kind: 'again' });
    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', run_at: at(5 * MINUTE), attempts: 0 });
    clock.advance(5 * MINUTE);
    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });
});

describe('failures', () => {
  it('retry with exponential backoff, keep the last error, and die after maxAttempts', async () => {
    const s = node('a');
    let calls = 0;
    s.register(
      'flaky',
      async () => {
        throw new Error(`boom ${++calls}`);
      },
      { maxAttempts: 3, backoffMs: (n) => SECOND * 2 ** (n - 1) },
    );
    const id = await s.enqueue(store.db, { tenantId, kind: 'flaky' });

    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 1, max_attempts: 3, last_error: 'boom 1', run_at: at(SECOND), lease_owner: null });
    clock.advance(SECOND - 1);
    expect(await s.pollOnce()).toBe(0);
    clock.advance(1);
    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 2, last_error: 'boom 2', run_at: at(2 * SECOND) });
    clock.advance(2 * SECOND);
    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'dead', attempts: 3, last_error: 'boom 3', lease_owner: null, lease_expires_at: null });

    clock.advance(DAY);
    expect(await s.pollOnce()).toBe(0);
    expect(calls).toBe(3);
    expect(results.map((r) => r.result)).toEqual(['failed', 'failed', 'dead']);
  });

  it('default backoff doubles from one second, with ±20% jitter, capped at an hour', async () => {
    for (let attempt = 1; attempt <= 20; attempt++) {
      const base = Math.min(HOUR, SECOND * 2 ** (attempt - 1));
      for (let i = 0; i < 20; i++) {
        const ms = defaultBackoff(attempt);
        expect(ms).toBeGreaterThanOrEqual(base * 0.8);
        expect(ms).toBeLessThanOrEqual(base * 1.2);
      }
    }
    const s = node('a');
    s.register('fails', async () => {
      throw new Error('no');
    });
    const id = await s.enqueue(store.db, { tenantId, kind: 'fails' });
    await s.drain();
    const delay = Date.parse((await jobRow(store, id))!.run_at) - clock.now().getTime();
    expect(delay).toBeGreaterThanOrEqual(800);
    expect(delay).toBeLessThanOrEqual(1200);
  });

  it('a run over its timeout is aborted and counts as a failed attempt', async () => {
    const s = node('a');
    let reason: unknown;
    s.register(
      'slow',
      async (_p, ctx) => {
        try {
          await untilAborted(ctx.signal);
        } finally {
          reason = ctx.signal.reason;
        }
      },
      { timeoutMs: 30, backoffMs: () => MINUTE },
    );
    const id = await s.enqueue(store.db, { tenantId, kind: 'slow' });
    await s.drain();
    expect(reason).toBeInstanceOf(JobTimeoutError);
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 1, last_error: 'job timed out after 30 ms', run_at: at(MINUTE), lease_owner: null, lease_expires_at: null });
  });

  it('a corrupt payload or an invalid rescheduleAt fails that job, not the poll', async () => {
    const s = node('a');
    s.register('any', async (payload) => (payload === 'bad-date' ? { rescheduleAt: new Date('nope') } : undefined), { maxAttempts: 1 });
    const corrupt = await s.enqueue(store.db, { tenantId, kind: 'any' });
    await store.db.updateTable('jobs').set({ payload: '{not json' }).where('id', '=', corrupt).execute();
    const badDate = await s.enqueue(store.db, { tenantId, kind: 'any', payload: 'bad-date' });
    const fine = await s.enqueue(store.db, { tenantId, kind: 'any', payload: 'ok' });
    await s.drain();
    expect((await jobRow(store, corrupt))!.status).toBe('dead');
    expect((await jobRow(store, corrupt))!.last_error).toMatch(/JSON/);
    expect(await jobRow(store, badDate)).toMatchObject({ status: 'dead', last_error: 'job handler returned an invalid rescheduleAt' });
    expect((await jobRow(store, fine))!.status).toBe('succeeded');
  });
});

describe('periodic jobs', () => {
  it('reschedule at their interval after each run and never die', async () => {
    const s = node('a');
    let fail = false;
    let calls = 0;
    s.register(
      'tick',
      async () => {
        calls++;
        if (fail) throw new Error('upstream down');
      },
      { maxAttempts: 2, backoffMs: () => 10 * MINUTE },
    );
    const interval = 15 * MINUTE;
    const id = await s.enqueue(store.db, { tenantId, kind: 'tick', intervalMs: interval });

    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 0, run_at: at(interval), interval_ms: interval });
    clock.advance(interval - 1);
    expect(await s.pollOnce()).toBe(0);
    clock.advance(1);
    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', run_at: at(interval) });

    fail = true;
    clock.advance(interval);
    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 1, last_error: 'upstream down', run_at: at(10 * MINUTE) });
    clock.advance(10 * MINUTE);
    await s.drain();
    // Out of attempts: back to its period with fresh attempts instead of dead.
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 0, last_error: 'upstream down', run_at: at(interval) });
    for (let i = 0; i < 3; i++) {
      clock.advance(interval);
      await s.drain();
      clock.advance(10 * MINUTE);
      await s.drain();
    }
    expect((await jobRow(store, id))!.status).toBe('pending');

    fail = false;
    clock.advance(interval);
    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 0, last_error: null, run_at: at(interval) });
    // 2 good runs, 2 failures, 3 × 2 failures, 1 good run.
    expect(calls).toBe(11);
    expect(results.some((r) => r.result === 'dead')).toBe(false);
  });

  it('retry no later than their next period', async () => {
    const s = node('a');
    s.register(
      'often',
      async () => {
        throw new Error('x');
      },
      { backoffMs: () => HOUR },
    );
    const id = await s.enqueue(store.db, { tenantId, kind: 'often', intervalMs: 5 * MINUTE });
    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ attempts: 1, run_at: at(5 * MINUTE) });
  });
});

describe('dedupe keys', () => {
  it('keep one job per tenant and key; the earlier run time wins', async () => {
    const s = node('a');
    const first = await s.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'token-1', payload: { v: 1 }, runAt: new Date(clock.now().getTime() + 10 * MINUTE) });
    const second = await s.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'token-1', payload: { v: 2 }, runAt: new Date(clock.now().getTime() + 5 * MINUTE) });
    const third = await s.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'token-1', runAt: new Date(clock.now().getTime() + 20 * MINUTE) });
    expect(second).toBe(first);
    expect(third).toBe(first);
    const jobs = await listJobs(store.db, { tenantId });
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ id: first, runAt: at(5 * MINUTE), status: 'pending' });
    // The third enqueue gave no payload: the second's stays.
    expect(JSON.parse((await jobRow(store, first))!.payload)).toEqual({ v: 2 });

    const other = (await createTenant(store, { displayName: 'Other' }, clock.now())).id;
    expect(await s.enqueue(store.db, { tenantId: other, kind: 'sync', dedupeKey: 'token-1' })).not.toBe(first);
    await s.enqueue(store.db, { tenantId, kind: 'plain' });
    await s.enqueue(store.db, { tenantId, kind: 'plain' });
    expect(await listJobs(store.db, { tenantId, kind: 'plain' })).toHaveLength(2);
  });

  it('hold under concurrent enqueues', async () => {
    const s = node('a');
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => s.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'race', payload: { i } })));
    expect(new Set(ids).size).toBe(1);
    expect(await listJobs(store.db, { tenantId })).toHaveLength(1);
  });

  it('keep the interval unless told otherwise, and revive a finished job', async () => {
    const s = node('a');
    let ran = 0;
    s.register('sync', async () => void ran++, { maxAttempts: 2 });
    const id = await s.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'k', intervalMs: HOUR });
    await s.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'k' });
    expect((await jobRow(store, id))!.interval_ms).toBe(HOUR);
    await s.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'k', intervalMs: null });
    expect((await jobRow(store, id))!.interval_ms).toBeNull();

    await s.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    await store.db.updateTable('jobs').set({ status: 'dead', attempts: 2, last_error: 'old' }).where('id', '=', id).execute();
    expect(await s.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'k' })).toBe(id);
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 0, last_error: null, run_at: at(0) });
    await s.drain();
    expect(ran).toBe(2);
  });

  it('enqueueing while the job runs makes it run again afterwards, never alongside', async () => {
    const a = node('a');
    const b = node('b');
    const gate = deferred();
    let calls = 0;
    const sync = async () => {
      if (++calls === 1) await gate.promise;
    };
    a.register('sync', sync);
    b.register('sync', sync);
    const id = await a.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'ade:token-1', intervalMs: 15 * MINUTE, payload: { tokenId: 't1' } });
    expect(await a.pollOnce()).toBe(1);
    await waitUntil(() => calls === 1, 'the first run');
    expect(await jobRow(store, id)).toMatchObject({ status: 'running', lease_owner: 'a' });

    // "Sync now" while the periodic sync is running.
    clock.advance(SECOND);
    expect(await b.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'ade:token-1', payload: { tokenId: 't1' } })).toBe(id);
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', run_at: at(0), interval_ms: 15 * MINUTE, lease_owner: 'a' });
    expect(await b.pollOnce()).toBe(0);

    gate.resolve();
    await a.drain();
    expect(calls).toBe(2);
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 0, run_at: at(15 * MINUTE), lease_owner: null });
  });

  it('cancel deletes the job and a running one is aborted at its next heartbeat', async () => {
    const s = node('a', { leaseMs: MINUTE, heartbeatMs: 20 });
    let reason: unknown;
    s.register('sync', async (_p, ctx) => {
      await untilAborted(ctx.signal).catch((err: unknown) => (reason = err));
    });
    const id = await s.enqueue(store.db, { tenantId, kind: 'sync', dedupeKey: 'k' });
    await s.pollOnce();
    expect(await s.cancel(store.db, tenantId, 'k')).toBe(true);
    await waitUntil(() => results.length === 1, 'the run to end');
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect(results[0]!.result).toBe('lease_lost');
    expect(await jobRow(store, id)).toBeUndefined();
    expect(await s.cancel(store.db, tenantId, 'k')).toBe(false);
  });
});

describe('leases', () => {
  it('a node that dies mid-run loses the job once its lease expires, and is fenced out', async () => {
    // Node a's heartbeat never fires during the test: it behaves like a node that died.
    const a = node('node-a', { leaseMs: DAY, heartbeatMs: HOUR });
    const b = node('node-b', { leaseMs: DAY, heartbeatMs: HOUR });
    let ctxA: JobContext | undefined;
    const releaseA = deferred();
    a.register('work', async (_p, ctx) => {
      ctxA = ctx;
      await releaseA.promise;
    });
    const gateB = deferred();
    b.register('work', () => gateB.promise);
    const id = await a.enqueue(store.db, { tenantId, kind: 'work' });

    expect(await a.pollOnce()).toBe(1);
    await waitUntil(() => ctxA !== undefined, 'node a to start');
    await ctxA!.assertLease();
    expect(await b.pollOnce()).toBe(0);
    clock.advance(DAY);
    // Expiring exactly now: nobody holds it, nobody may take it yet.
    expect(await b.pollOnce()).toBe(0);
    await expect(ctxA!.assertLease()).rejects.toBeInstanceOf(LeaseLostError);

    clock.advance(1);
    expect(await b.pollOnce()).toBe(1);
    const row = (await jobRow(store, id))!;
    expect(row).toMatchObject({ status: 'running', lease_owner: 'node-b', lease_version: 2, attempts: 2 });
    expect(row.last_error).toMatch(/lease of node-a expired/);
    await expect(ctxA!.assertLease()).rejects.toBeInstanceOf(LeaseLostError);
    await expect(store.transaction((trx) => ctxA!.assertLease(trx))).rejects.toBeInstanceOf(LeaseLostError);

    // The stale holder finishes its handler, but can't record anything.
    releaseA.resolve();
    await waitUntil(() => results.some((r) => r.owner === 'node-a'), 'node a to give up');
    expect(results.find((r) => r.owner === 'node-a')!.result).toBe('lease_lost');
    expect(await jobRow(store, id)).toMatchObject({ status: 'running', lease_owner: 'node-b', lease_version: 2 });

    gateB.resolve();
    await b.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'succeeded', attempts: 2, lease_owner: null, last_error: null });
  });

  it('a live lease is renewed, so a long run is not taken over', async () => {
    const a = node('a', { leaseMs: MINUTE, heartbeatMs: 20 });
    const b = node('b', { leaseMs: MINUTE });
    const gate = deferred();
    a.register('long', () => gate.promise);
    b.register('long', async () => undefined);
    const id = await a.enqueue(store.db, { tenantId, kind: 'long' });
    await a.pollOnce();
    clock.advance(MINUTE - 1);
    const before = (await jobRow(store, id))!.lease_expires_at;
    await waitUntil(async () => (await jobRow(store, id))!.lease_expires_at !== before, 'a renewal');
    expect((await jobRow(store, id))!.lease_expires_at).toBe(at(MINUTE));
    clock.advance(2);
    expect(await b.pollOnce()).toBe(0);
    gate.resolve();
    await a.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('a one-off job whose node died during its last attempt is marked dead; a periodic one is taken over', async () => {
    const a = node('a', { leaseMs: MINUTE, heartbeatMs: 30 * SECOND });
    const b = node('b', { leaseMs: MINUTE });
    const gate = deferred();
    a.register('once', () => gate.promise, { maxAttempts: 1 });
    b.register('once', async () => undefined);
    const oneOff = await a.enqueue(store.db, { tenantId, kind: 'once' });
    const periodic = await a.enqueue(store.db, { tenantId, kind: 'once', intervalMs: HOUR, maxAttempts: 1 });
    expect(await a.pollOnce()).toBe(2);
    clock.advance(MINUTE + 1);
    await b.drain();
    expect(await jobRow(store, oneOff)).toMatchObject({ status: 'dead', attempts: 1, lease_owner: null, last_error: 'lease of a expired during the last attempt' });
    expect(await jobRow(store, periodic)).toMatchObject({ status: 'pending', attempts: 0, run_at: at(HOUR) });
    gate.resolve();
    await waitUntil(() => results.filter((r) => r.owner === 'a').length === 2, 'node a to give up');
    expect(results.filter((r) => r.owner === 'a').map((r) => r.result)).toEqual(['lease_lost', 'lease_lost']);
    expect((await jobRow(store, oneOff))!.status).toBe('dead');
  });

  it('a handler that ignores its abort keeps the job blocked until its lease runs out, and is fenced', async () => {
    const a = node('a', { leaseMs: MINUTE, heartbeatMs: 20, abortGraceMs: 100 });
    const b = node('b', { leaseMs: MINUTE });
    let ctxA: JobContext | undefined;
    const never = deferred();
    a.register(
      'deaf',
      async (_p, ctx) => {
        ctxA = ctx;
        await never.promise;
      },
      { timeoutMs: 30, backoffMs: () => 0 },
    );
    b.register('deaf', async () => undefined);
    const id = await a.enqueue(store.db, { tenantId, kind: 'deaf' });
    await a.pollOnce();
    await waitUntil(() => results.length === 1, 'the run to be abandoned');
    expect(results[0]!.result).toBe('failed');
    expect(ctxA!.signal.reason).toBeInstanceOf(JobTimeoutError);
    expect(await jobRow(store, id)).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'job timed out after 30 ms',
      run_at: at(0),
      lease_owner: null,
      lease_expires_at: at(MINUTE),
    });
    await expect(ctxA!.assertLease()).rejects.toBeInstanceOf(LeaseLostError);
    expect(await a.pollOnce()).toBe(0);
    expect(await b.pollOnce()).toBe(0);

    clock.advance(MINUTE + 1);
    await b.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'succeeded', attempts: 2, lease_owner: null });
    never.resolve();
  });

  it('one node never runs more jobs than its concurrency, however often it is polled', async () => {
    const a = node('a', { concurrency: 2 });
    const gate = deferred();
    let active = 0;
    let peak = 0;
    a.register('block', async () => {
      peak = Math.max(peak, ++active);
      await gate.promise;
      active--;
    });
    for (let i = 0; i < 5; i++) await a.enqueue(store.db, { tenantId, kind: 'block' });
    const started = await Promise.all([a.pollOnce(), a.pollOnce(), a.pollOnce()]);
    expect(started.reduce((x, y) => x + y, 0)).toBe(2);
    gate.resolve();
    await a.drain();
    expect(peak).toBe(2);
    expect(await listJobs(store.db, { tenantId, status: 'succeeded' })).toHaveLength(5);
  });

  it('nodes claiming at once take each job exactly once, and none gives up while jobs are due', async () => {
    // All due at the same instant, so concurrent claimers all go for the same first row; capacity
    // matches the work exactly, so a node that stops claiming early leaves a job behind.
    const owners = ['a', 'b', 'c', 'd', 'e'];
    const perNode = 10;
    const total = owners.length * perNode;
    const gate = deferred();
    const claimed: Record<string, string[]> = {};
    const nodes = owners.map((owner) => {
      const s = node(owner, { concurrency: perNode });
      s.register('race', async (_p, ctx) => {
        (claimed[ctx.job.id] ??= []).push(owner);
        await gate.promise;
      });
      return s;
    });
    const ids: string[] = [];
    for (let i = 0; i < total; i++) ids.push(await nodes[0]!.enqueue(store.db, { tenantId, kind: 'race' }));
    const started = await Promise.all(nodes.map((s) => s.pollOnce()));
    // A poll stops only when nothing is left to claim: a claim that collided must not come back empty.
    expect(started.reduce((x, y) => x + y, 0)).toBe(total);
    await waitUntil(() => Object.keys(claimed).length === total, 'every handler to start');
    for (const id of ids) expect(claimed[id]).toHaveLength(1);
    gate.resolve();
    await Promise.all(nodes.map((s) => s.drain()));
    const rows = await store.db.selectFrom('jobs').select(['status', 'lease_version', 'attempts']).execute();
    expect(rows.every((r) => r.status === 'succeeded' && r.lease_version === 1 && r.attempts === 1)).toBe(true);
  });
});

describe('graceful stop', () => {
  it('waits for running jobs within the grace period, aborts the rest and frees their jobs at once', async () => {
    const a = node('a', { concurrency: 3, abortGraceMs: 2000 });
    const quickGate = deferred();
    let slowReason: unknown;
    let started = 0;
    a.register('quick', async () => {
      started++;
      await quickGate.promise;
    });
    a.register('slow', async (_p, ctx) => {
      started++;
      await untilAborted(ctx.signal).catch((err: unknown) => {
        slowReason = err;
        throw err;
      });
    });
    const quick = await a.enqueue(store.db, { tenantId, kind: 'quick' });
    const slow = await a.enqueue(store.db, { tenantId, kind: 'slow' });
    expect(await a.pollOnce()).toBe(2);
    await waitUntil(() => started === 2, 'both jobs to start');

    const stopping = a.stop(1000);
    setTimeout(() => quickGate.resolve(), 50);
    await stopping;

    expect(await jobRow(store, quick)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(slowReason).toBeInstanceOf(ShutdownError);
    // The aborted run gave its lease back and doesn't count as an attempt.
    expect(await jobRow(store, slow)).toMatchObject({ status: 'pending', attempts: 0, lease_owner: null, lease_expires_at: null, last_error: null });
    expect(results.map((r) => [r.kind, r.result])).toEqual([
      ['quick', 'succeeded'],
      ['slow', 'interrupted'],
    ]);
    expect(await a.pollOnce()).toBe(0);

    const b = node('b');
    b.register('slow', async () => undefined);
    expect(await b.pollOnce()).toBe(1);
    await b.drain();
    expect(await jobRow(store, slow)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('a handler that ignores the shutdown keeps its job until the lease runs out', async () => {
    const a = node('a', { leaseMs: MINUTE, heartbeatMs: 20, abortGraceMs: 50 });
    const b = node('b', { leaseMs: MINUTE });
    const never = deferred();
    let started = false;
    a.register('deaf', async () => {
      started = true;
      await never.promise;
    });
    b.register('deaf', async () => undefined);
    const id = await a.enqueue(store.db, { tenantId, kind: 'deaf' });
    await a.pollOnce();
    await waitUntil(() => started, 'the run to start');
    await a.stop(0);
    expect(results[0]!.result).toBe('interrupted');
    expect(await jobRow(store, id)).toMatchObject({ status: 'pending', attempts: 0, lease_owner: null, lease_expires_at: at(MINUTE) });
    expect(await b.pollOnce()).toBe(0);
    clock.advance(MINUTE + 1);
    await b.drain();
    expect(await jobRow(store, id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    never.resolve();
  });

  it('start and stop drive polling on their own', async () => {
    const a = node('a', { pollIntervalMs: 10 });
    let ran = 0;
    a.register('auto', async () => void ran++);
    await a.enqueue(store.db, { tenantId, kind: 'auto' });
    a.start();
    await waitUntil(() => ran === 1, 'the poller to run the job');
    await Promise.all([a.stop(), a.stop()]);
    await a.enqueue(store.db, { tenantId, kind: 'auto' });
    expect(await a.pollOnce()).toBe(0);
    expect(ran).toBe(1);
  });
});

describe('listing and input checks', () => {
  it('listJobs shows status, kind, attempts, last error and run time', async () => {
    const s = node('a');
    s.register('ok', async () => undefined);
    s.register(
      'bad',
      async () => {
        throw new Error('Apple said 503');
      },
      { maxAttempts: 1 },
    );
    const ok = await s.enqueue(store.db, { tenantId, kind: 'ok' });
    const bad = await s.enqueue(store.db, { tenantId, kind: 'bad' });
    const later = await s.enqueue(store.db, { tenantId, kind: 'ok', dedupeKey: 'later', runAt: new Date(clock.now().getTime() + HOUR), intervalMs: HOUR });
    const other = (await createTenant(store, { displayName: 'Other' }, clock.now())).id;
    await s.enqueue(store.db, { tenantId: other, kind: 'ok', runAt: new Date(clock.now().getTime() + DAY) });
    await s.drain();

    const jobs = await listJobs(store.db, { tenantId });
    // Ordered by run time (ties by id): the two finished ones first.
    expect(jobs.map((j) => j.id)).toEqual([...[ok, bad].sort(), later]);
    expect(jobs.find((j) => j.id === bad)).toMatchObject({ kind: 'bad', status: 'dead', attempts: 1, maxAttempts: 1, lastError: 'Apple said 503', runAt: at(0) });
    expect(jobs[2]).toMatchObject({ kind: 'ok', status: 'pending', dedupeKey: 'later', intervalMs: HOUR, attempts: 0, lastError: null, runAt: at(HOUR) });
    expect((await listJobs(store.db, { status: ['dead', 'succeeded'], tenantId })).map((j) => j.id)).toEqual([ok, bad].sort());
    expect(await listJobs(store.db, { status: [] })).toEqual([]);
    expect(await listJobs(store.db, {})).toHaveLength(4);
    expect(await listJobs(store.db, { limit: 1 })).toHaveLength(1);
  });

  it('refuses bad options', async () => {
    const s = node('a');
    await expect(s.enqueue(store.db, { tenantId, kind: 'x', intervalMs: 0 })).rejects.toThrow(/intervalMs/);
    await expect(s.enqueue(store.db, { tenantId, kind: 'x', intervalMs: 1.5 })).rejects.toThrow(/intervalMs/);
    await expect(s.enqueue(store.db, { tenantId, kind: 'x', maxAttempts: 0 })).rejects.toThrow(/maxAttempts/);
    await expect(s.enqueue(store.db, { tenantId, kind: 'x', runAt: new Date('nope') })).rejects.toThrow(/runAt/);
    await expect(s.enqueue(store.db, { tenantId, kind: '' })).rejects.toThrow(/kind/);
    await expect(s.enqueue(store.db, { tenantId, kind: 'x', intervalMs: 1, maxAttempts: 1 })).resolves.toBeTypeOf('string');
    s.register('dup', async () => undefined);
    expect(() => s.register('dup', async () => undefined)).toThrow(/already registered/);
    expect(() => s.register('y', async () => undefined, { maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => new JobScheduler(store, { leaseMs: 1000, heartbeatMs: 1000 })).toThrow(/heartbeatMs/);
    expect(() => new JobScheduler(store, { concurrency: 0 })).toThrow(/concurrency/);
  });
});
