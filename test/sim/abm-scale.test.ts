import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { connectServer, Dep } from './abm-helpers.js';

// Times are reported, not asserted (performance is measured with `npm run bench`).
describe('ABM simulator: 100,000 devices', () => {
  let sim: AbmSimulator;
  let dep: Dep;
  let serverUuid: string;

  beforeAll(async () => {
    sim = await startAbmSimulator();
    const s = connectServer(sim, 'Big');
    serverUuid = s.serverUuid;
    dep = new Dep(sim, s.creds);
  });
  afterAll(() => sim.close());

  it('generates them and pages through them at limit 1000, then syncs 10,000 changes', async () => {
    let t = performance.now();
    const serials = sim.generateDevices(100_000, { serverUuid });
    const generateMs = performance.now() - t;
    expect(new Set(serials).size).toBe(100_000);

    t = performance.now();
    const { serials: fetched, cursor, pages } = await dep.fetchAll(1000);
    const fetchMs = performance.now() - t;
    expect(pages).toBe(100);
    expect(fetched).toEqual(serials);

    sim.unassignDevices(serials.slice(0, 5000));
    sim.generateDevices(5000, { serverUuid, prefix: 'MORE' });
    t = performance.now();
    const { ops } = await dep.syncAll(cursor, 1000);
    const syncMs = performance.now() - t;
    expect(ops).toHaveLength(10_000);
    expect(ops.filter((o) => o.op === 'deleted')).toHaveLength(5000);

    console.log(
      `[abm-sim scale] generateDevices(100000): ${generateMs.toFixed(0)} ms; full fetch, 100 pages of 1000: ${fetchMs.toFixed(0)} ms; sync of 10000 changes: ${syncMs.toFixed(0)} ms`,
    );
  }, 60_000);
});
