import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialect } from '../helpers/store.js';
import { apnsHarness, type ApnsHarness } from './apns-support.js';

const COUNT = Number(process.env.OPENENROLL_APNS_FANOUT ?? 2000);

describe('APNs fan-out', () => {
  let h: ApnsHarness;
  beforeAll(async () => {
    h = await apnsHarness();
  });
  afterAll(async () => h.close());

  // Performance is measured, not asserted: the time is printed for the record.
  it(`pushes one command to ${COUNT} enrollments once each, over one connection`, { timeout: 120_000 }, async () => {
    const enrolled = await h.enroll(COUNT);
    const ids = enrolled.map((e) => e.id);
    const command = await h.queueCommand(ids);
    h.sim.reset();
    const connections = h.sim.stats.totalConnections;

    const started = performance.now();
    const summary = await h.apple.apns.notify(h.t.tenantId, ids, { commandUuid: command });
    const ms = Math.round(performance.now() - started);
    console.log(`[apns] fan-out of one command to ${COUNT} enrollments on ${testDialect()}: ${ms} ms (max ${h.sim.stats.maxInFlight} streams in flight)`);

    expect(summary).toMatchObject({ sent: COUNT, failed: 0, notSent: 0, unregistered: 0 });
    const delivered = h.sim.delivered();
    expect(delivered).toHaveLength(COUNT);
    expect(new Set(delivered.map((p) => p.token)).size).toBe(COUNT);
    expect(h.sim.stats.totalConnections - connections).toBeLessThanOrEqual(1);
    expect((await h.queueRows(command)).every((r) => r.push_sent_at !== null)).toBe(true);

    const wake = performance.now();
    const all = await h.apple.apns.pushAll(h.t.tenantId);
    console.log(`[apns] pushAll of ${COUNT} enrollments on ${testDialect()}: ${Math.round(performance.now() - wake)} ms`);
    expect(all.sent).toBe(COUNT);
  });
});
