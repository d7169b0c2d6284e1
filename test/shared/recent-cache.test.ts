import { describe, expect, it } from 'vitest';
import { ownedBytes, RecentCache } from '../../src/shared/recent-cache.js';

describe('RecentCache', () => {
  it('keeps at most its bound, the least recently used going first; a hit is not made again', () => {
    const cache = new RecentCache<number>(3);
    let made = 0;
    const get = (k: string) => cache.getOrCreate(k, () => ++made);
    expect([get('a'), get('b'), get('c'), get('a')]).toEqual([1, 2, 3, 1]);
    expect(made).toBe(3);
    get('d'); // 'a' was used last but one read ago; 'b' is the least recently used
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([1, 3, 4]);
    // Setting a held key replaces it without evicting anything.
    cache.set('c', 30);
    expect([cache.size, cache.get('c'), cache.get('a')]).toEqual([3, 30, 1]);
  });

  it('keeps what is used over what was used once, whatever the order they came in', () => {
    // Room for 20 entries; 10 enrollments bring 30 (two one-off signers and an identity each), and
    // every identity so far checks in after each one. Oldest-first eviction would lose identity-0.
    const cache = new RecentCache<string>(20);
    for (let device = 0; device < 10; device++) {
      cache.set(`once-${device}-a`, 'x');
      cache.set(`once-${device}-b`, 'x');
      cache.set(`identity-${device}`, 'x');
      for (let d = 0; d <= device; d++) expect(cache.get(`identity-${d}`)).toBe('x');
    }
    expect(cache.get('once-0-a')).toBeUndefined();
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
