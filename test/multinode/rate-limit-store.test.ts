import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreRateLimitCounters } from '../../src/server/rate-limit-store.js';
import { ManualClock } from '../../src/shared/time.js';
import type { Store } from '../../src/store/db.js';
import { createTestStore } from '../helpers/store.js';

/** The store-backed counters behind the admin API's rate limit (PostgreSQL deployments), on both dialects. */
describe('rate-limit counters in the store', () => {
  const WINDOW = 60_000;
  let store: Store;
  let clock: ManualClock;
  let counters: StoreRateLimitCounters;
  beforeEach(async () => {
    store = await createTestStore();
    clock = new ManualClock('2026-03-02T08:00:00.000Z');
    counters = new StoreRateLimitCounters(store, clock, WINDOW);
  });
  afterEach(async () => store.close());

  it('counts into the window the first request opened until it ends, then starts a new one', async () => {
    expect(await counters.count('k', WINDOW)).toEqual({ current: 1, ttl: WINDOW });
    clock.advance(WINDOW - 1);
    expect(await counters.count('k', WINDOW)).toEqual({ current: 2, ttl: 1 });
    clock.advance(1);
    // At exactly one window after its start the window is over (as in the plugin's in-memory store).
    expect(await counters.count('k', WINDOW)).toEqual({ current: 1, ttl: WINDOW });
  });

  it('keeps one count per key', async () => {
    await counters.count('a', WINDOW);
    await counters.count('a', WINDOW);
    expect((await counters.count('b', WINDOW)).current).toBe(1);
    expect((await counters.count('a', WINDOW)).current).toBe(3);
  });

  it('loses no count when many requests arrive at once', async () => {
    const results = await Promise.all(Array.from({ length: 60 }, () => counters.count('k', WINDOW)));
    expect(results.map((r) => r.current).sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  });

  it('sweeps the rows of finished windows', async () => {
    await counters.count('old', WINDOW);
    clock.advance(2 * WINDOW);
    await counters.count('new', WINDOW);
    const keys = async () => (await store.db.selectFrom('rate_limit_counters').select('key').execute()).map((r) => r.key);
    for (let i = 0; i < 100 && (await keys()).includes('old'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await keys()).toEqual(['new']);
  });

  it('answers the plugin through its callback, errors included', async () => {
    const ok = await new Promise((resolve, reject) => counters.incr('cb', (err, res) => (err ? reject(err) : resolve(res)), WINDOW));
    expect(ok).toEqual({ current: 1, ttl: WINDOW });
    await store.close();
    const err = await new Promise((resolve) => counters.incr('cb', (e) => resolve(e), WINDOW));
    expect(err).toBeInstanceOf(Error);
    store = await createTestStore();
  });
});
