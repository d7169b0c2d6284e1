import { afterEach, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/auth/principal.js';
import { DAY } from '../../src/shared/time.js';
import { testDialect } from '../helpers/store.js';
import { syncHarness, type SyncHarness } from './ade-sync-support.js';

let h: SyncHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('ADE sync at scale', () => {
  // "The limit on the first sync is 75,000-80,000 devices": ours pages through to the end.
  it('a first sync of 100,000 devices pages through to the end', { timeout: 120_000 }, async () => {
    h = await syncHarness();
    const serials = h.sim.generateDevices(100_000, { serverUuid: h.serverUuid });
    const started = performance.now();
    await h.drain();
    const ms = Math.round(performance.now() - started);
    console.log(`[ade-sync] first sync of 100,000 devices on ${testDialect()}: ${ms} ms`);

    const count = await h.t.store.db
      .selectFrom('dep_devices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('token_id', '=', h.tokenId)
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(100_000);
    const token = await h.token();
    expect(token).toMatchObject({ sync_status: 'succeeded', synced_device_count: 100_000, sync_phase: 'sync' });
    expect(h.sim.requests.filter((r) => r.path === '/server/devices')).toHaveLength(100);
    const some = await h.t.store.db.selectFrom('dep_devices').select('serial_number').where('serial_number', 'in', [serials[0]!, serials[99_999]!]).execute();
    expect(some).toHaveLength(2);

    // A week on, the weekly full sync walks all of them again; a few were released meanwhile.
    h.sim.releaseDevices(serials.slice(0, 10));
    h.clock.advance(7 * DAY);
    await h.sync.scheduler.requestManualSync(systemActor(h.t.tenantId, 'scale'), h.tokenId);
    const again = performance.now();
    await h.drain();
    console.log(`[ade-sync] weekly full sync of 100,000 devices on ${testDialect()}: ${Math.round(performance.now() - again)} ms`);
    expect(await h.token()).toMatchObject({ sync_status: 'succeeded', synced_device_count: 99_990, last_full_sync_at: h.clock.now().toISOString() });
  });
});
