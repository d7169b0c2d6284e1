import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MdmCommandQueue } from '../../src/apple/mdm/queue.js';
import type { ApnsPushNotifier } from '../../src/apple/apns/index.js';
import { InFlight } from '../../src/shared/concurrency.js';
import { waitUntil } from '../jobs/support.js';
import { apnsHarness, settle, type ApnsHarness } from './apns-support.js';

/** The first wave of a paced push: pushes claimed and sent before the notifier looks at the device load. */
const WAVE = 64;

describe('APNs pushes paced by the device requests the node is serving', () => {
  let h: ApnsHarness;
  beforeAll(async () => {
    h = await apnsHarness();
  });
  afterAll(async () => h.close());

  async function fanOut(count: number) {
    const ids = (await h.enroll(count)).map((e) => e.id);
    const command = await h.queueCommand(ids);
    h.sim.reset();
    return { ids, command, claimed: async () => (await h.queueRows(command)).filter((r) => r.push_sent_at !== null).length };
  }

  it('sends one wave, waits while pushBacklog device requests are in progress, and goes on when one ends', async () => {
    const load = new InFlight();
    const node = h.node({ notifier: { deviceLoad: load, pushBacklog: 3 } });
    const { ids, command, claimed } = await fanOut(200);
    const busy = [load.enter(), load.enter(), load.enter()];

    const run = node.notify(h.t.tenantId, ids, { commandUuid: command });
    await waitUntil(() => h.sim.delivered().length === WAVE, 'the first wave');
    await settle(150);
    // Only the first wave went out, and only its rows are claimed: the rest can still go to any node.
    expect(h.sim.delivered()).toHaveLength(WAVE);
    expect(await claimed()).toBe(WAVE);

    busy[0]!();
    expect(await run).toMatchObject({ sent: 200, notSent: 0, failed: 0 });
    expect(new Set(h.sim.delivered().map((p) => p.token)).size).toBe(200);
    expect(await claimed()).toBe(200);
    busy.forEach((leave) => leave());
  });

  it('does not wait below the backlog, nor with pacing off (pushBacklog 0)', async () => {
    const load = new InFlight();
    const busy = [load.enter(), load.enter()];
    const below = await fanOut(150);
    expect(await h.node({ notifier: { deviceLoad: load, pushBacklog: 3 } }).notify(h.t.tenantId, below.ids, { commandUuid: below.command })).toMatchObject({ sent: 150 });
    busy.push(load.enter(), load.enter());
    const off = await fanOut(150);
    expect(await h.node({ notifier: { deviceLoad: load, pushBacklog: 0 } }).notify(h.t.tenantId, off.ids, { commandUuid: off.command })).toMatchObject({ sent: 150 });
    busy.forEach((leave) => leave());
  });

  it('stops between waves when aborted, leaving what it had not claimed to the next push', async () => {
    const load = new InFlight();
    const node = h.node({ notifier: { deviceLoad: load, pushBacklog: 1 } });
    const { ids, command, claimed } = await fanOut(150);
    const leave = load.enter();
    const stop = new AbortController();

    const run = node.notify(h.t.tenantId, ids, { commandUuid: command, signal: stop.signal });
    await waitUntil(() => h.sim.delivered().length === WAVE, 'the first wave');
    stop.abort();
    expect(await run).toMatchObject({ sent: WAVE, notSent: 150 - WAVE });
    expect(await claimed()).toBe(WAVE);

    leave();
    expect(await node.notify(h.t.tenantId, ids, { commandUuid: command })).toMatchObject({ sent: 150 - WAVE, skipped: { alreadyPushed: WAVE } });
    expect(h.sim.delivered()).toHaveLength(150);
    expect(new Set(h.sim.delivered().map((p) => p.token)).size).toBe(150);
  });
});

describe('the push job', () => {
  let h: ApnsHarness;
  beforeAll(async () => {
    h = await apnsHarness();
  });
  afterAll(async () => h.close());

  const queueWith = (node: ApnsPushNotifier, pushBatch: number) =>
    new MdmCommandQueue({ store: h.t.store, clock: h.clock, jobs: h.t.app.core.jobs, logger: pino({ level: 'silent' }), push: () => node, pushBatch });

  it('reads the queue in batches and pushes every row once in one run, past the first batch, unreachable rows set aside', async () => {
    const queue = queueWith(h.node(), 40);
    const a = (await h.enroll(70)).map((e) => e.id);
    const b = (await h.enroll(25)).map((e) => e.id);
    const unreachable = (await h.enroll(10, { enabled: 0 })).map((e) => e.id);
    const first = await h.queueCommand([...a, ...unreachable]);
    const second = await h.queueCommand(b);
    h.sim.reset();

    expect(await queue.pushPending(h.t.tenantId)).toBeUndefined();
    const delivered = h.sim.delivered();
    expect(delivered).toHaveLength(95);
    expect(new Set(delivered.map((p) => p.token)).size).toBe(95);
    const rows = [...(await h.queueRows(first)), ...(await h.queueRows(second))];
    expect(rows.every((r) => r.push_sent_at !== null)).toBe(true);

    // Nothing is left: another run pushes nothing.
    await queue.pushPending(h.t.tenantId);
    expect(h.sim.delivered()).toHaveLength(95);
  });

  it('hands over to a next run when its time is up, leaving unclaimed what it did not reach', async () => {
    const load = new InFlight();
    const queue = queueWith(h.node({ notifier: { deviceLoad: load, pushBacklog: 1 } }), 10_000);
    const ids = (await h.enroll(150)).map((e) => e.id);
    const command = await h.queueCommand(ids);
    h.sim.reset();
    const leave = load.enter();

    expect(await queue.pushPending(h.t.tenantId, undefined, 300)).toEqual({ rescheduleAt: h.clock.now() });
    expect(h.sim.delivered()).toHaveLength(WAVE);
    expect((await h.queueRows(command)).filter((r) => r.push_sent_at === null)).toHaveLength(150 - WAVE);

    leave();
    expect(await queue.pushPending(h.t.tenantId)).toBeUndefined();
    expect(new Set(h.sim.delivered().map((p) => p.token)).size).toBe(150);
  });

  it('stops when the job is stopped (lease lost, shutdown) without asking to run again', async () => {
    const load = new InFlight();
    const queue = queueWith(h.node({ notifier: { deviceLoad: load, pushBacklog: 1 } }), 10_000);
    const ids = (await h.enroll(100)).map((e) => e.id);
    await h.queueCommand(ids);
    h.sim.reset();
    const leave = load.enter();
    const stop = new AbortController();

    const run = queue.pushPending(h.t.tenantId, stop.signal);
    await waitUntil(() => h.sim.delivered().length === WAVE, 'the first wave');
    stop.abort();
    expect(await run).toBeUndefined();
    expect(h.sim.delivered()).toHaveLength(WAVE);
    leave();
  });
});
