import { afterEach, describe, expect, it } from 'vitest';
import { listJobs } from '../../src/jobs/list-jobs.js';
import { JobScheduler } from '../../src/jobs/scheduler.js';
import { HOUR, ManualClock } from '../../src/shared/time.js';
import type { Store } from '../../src/store/db.js';
import { createTenant } from '../../src/tenancy/service.js';
import { persistentStore, untilAborted, waitUntil } from './support.js';

describe('jobs survive a restart', () => {
  let persistent: ReturnType<typeof persistentStore> | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await persistent?.cleanup();
  });

  it('jobs enqueued, or interrupted by shutdown, run after the node comes back', async () => {
    const clock = new ManualClock();
    persistent = persistentStore();
    store = await persistent.open();
    const tenantId = (await createTenant(store, { displayName: 'Jobs' }, clock.now())).id;

    const before = new JobScheduler(store, { owner: 'before', clock, abortGraceMs: 1000 });
    let started = false;
    before.register('work', async (_p, ctx) => {
      started = true;
      await untilAborted(ctx.signal);
    });
    const interrupted = await before.enqueue(store.db, { tenantId, kind: 'work', payload: { step: 'interrupted' } });
    expect(await before.pollOnce()).toBe(1);
    await waitUntil(() => started, 'the first run to start');
    const waiting = await before.enqueue(store.db, { tenantId, kind: 'work', payload: { step: 'waiting' } });
    const periodic = await before.enqueue(store.db, { tenantId, kind: 'work', dedupeKey: 'periodic', intervalMs: HOUR, payload: { step: 'periodic' } });
    await before.stop(0);
    await store.close();
    store = undefined;

    store = await persistent.open();
    const after = new JobScheduler(store, { owner: 'after', clock });
    const seen: unknown[] = [];
    after.register('work', async (payload) => void seen.push(payload));
    await after.drain();
    expect(seen).toHaveLength(3);
    expect(seen).toEqual(expect.arrayContaining([{ step: 'interrupted' }, { step: 'waiting' }, { step: 'periodic' }]));
    const jobs = Object.fromEntries((await listJobs(store.db, { tenantId })).map((j) => [j.id, j]));
    // The run cut short by the shutdown did not count as an attempt.
    expect(jobs[interrupted]).toMatchObject({ status: 'succeeded', attempts: 1, leaseOwner: null });
    expect(jobs[waiting]).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(jobs[periodic]).toMatchObject({ status: 'pending', runAt: new Date(clock.now().getTime() + HOUR).toISOString() });
    await after.stop();
  });
});
