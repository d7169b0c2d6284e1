import { describe, expect, it } from 'vitest';
import { ownedBytes, RecentCache } from '../../src/shared/recent-cache.js';

describe('RecentCache', () => {
  it('keeps at most its bound, the oldest going first; a hit is not made again', () => {
    const cache = new RecentCache<number>(3);
    let made = 0;
    const get = (k: string) => cache.getOrCreate(k, () => ++made);
    expect([get('a'), get('b'), get('c'), get('a')]).toEqual([1, 2, 3, 1]);
    expect(made).toBe(3);
    get('d'); // 'a' was inserted first, so it goes
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeUndefined();
    expect([cache.get('b'), cache.get('c'), cache.get('d')]).toEqual([2, 3, 4]);
    // Setting a held key replaces it without evicting anything.
    cache.set('b', 20);
    expect([cache.size, cache.get('b'), cache.get('c')]).toEqual([3, 20, 3]);
  });

  it('keeps nothing when making the value throws', () => {
    const cache = new RecentCache<number>(2);
    expect(() =>
      cache.getOrCreate('x', () => {
        throw new Error('malformed');
      }),
    ).toThrow('malformed');
    expect(cache.size).toBe(0);
  });
});

describe('ownedBytes', () => {
  it('copies into memory of its own, not a shared pool slab', () => {
    const pooled = Buffer.from('a small buffer from the pool');
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length);
    const owned = ownedBytes(pooled);
    expect(owned.equals(pooled)).toBe(true);
    expect(owned.buffer.byteLength).toBe(pooled.length);
    pooled[0] = 0x41;
    expect(owned[0]).toBe(0x61);
  });
});
