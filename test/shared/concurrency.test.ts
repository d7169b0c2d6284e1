import { describe, expect, it } from 'vitest';
import { InFlight } from '../../src/shared/concurrency.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('InFlight', () => {
  it('counts what entered and has not left; leaving twice counts once', () => {
    const load = new InFlight();
    const a = load.enter();
    const b = load.enter();
    expect(load.count).toBe(2);
    a();
    a();
    expect(load.count).toBe(1);
    b();
    expect(load.count).toBe(0);
  });

  it('below(limit) resolves at once under the limit, and otherwise when the count falls below it', async () => {
    const load = new InFlight();
    await load.below(1);
    const leaves = [load.enter(), load.enter(), load.enter()];
    let low = false;
    let lower = false;
    void load.below(3).then(() => (low = true));
    void load.below(2).then(() => (lower = true));
    await tick();
    expect([low, lower]).toEqual([false, false]);
    leaves[0]!();
    await tick();
    // 2 in progress: below 3, not below 2.
    expect([low, lower]).toEqual([true, false]);
    leaves[1]!();
    await tick();
    expect(lower).toBe(true);
    leaves[2]!();
  });

  it('below() gives up waiting when its signal aborts, and forgets the waiter', async () => {
    const load = new InFlight();
    const leave = load.enter();
    const stop = new AbortController();
    let done = false;
    void load.below(1, stop.signal).then(() => (done = true));
    await tick();
    expect(done).toBe(false);
    stop.abort();
    await tick();
    expect(done).toBe(true);
    await load.below(1, stop.signal);
    leave();
    expect(load.count).toBe(0);
  });
});
