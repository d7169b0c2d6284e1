/**
 * A bounded map of recent results of pure work (parsing, key loading, chain checks, preparing SQL)
 * keyed by its input or a hash of it: the same input always gives the same answer, so a hit is as
 * good as redoing it. When full, the least recently used entry goes first, so what every check-in
 * needs (a device's identity) outlives what one enrollment needed once (its MachineInfo and SCEP
 * request signers).
 */
export class RecentCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      // Map keeps insertion order: re-inserting makes it the most recent.
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): V {
    this.entries.delete(key);
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, value);
    return value;
  }

  /** The cached value, or `make()`'s (kept; a throw keeps nothing). */
  getOrCreate(key: string, make: () => V): V {
    const known = this.get(key);
    return known !== undefined ? known : this.set(key, make());
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * A copy of `bytes` in memory of its own, for values a cache keeps: small Buffers share Node's
 * 8 KiB pool slabs, so keeping a 300-byte Buffer can keep 8 KiB alive (measured: ~34 KB of slabs
 * per enrolled device with the certificate caches full).
 */
export function ownedBytes(bytes: Uint8Array): Buffer {
  return Buffer.from(new Uint8Array(bytes).buffer);
}
