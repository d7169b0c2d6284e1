import { sql } from 'kysely';
import type { Store } from '../store/db.js';
import type { Clock } from '../shared/time.js';

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/**
 * What @fastify/rate-limit asks of a store: count one request for `key`, say how many fell in its
 * window and how long the window has left. The plugin passes the window (its types don't say so).
 */
export interface RateLimitCounterStore {
  incr(key: string, callback: Callback, timeWindow?: number): void;
  child(): RateLimitCounterStore;
}

/**
 * Rate-limit counters in the store, so nodes sharing a PostgreSQL store count one budget per
 * credential. A window starts at a key's first request and lasts `timeWindow` (as the plugin's own
 * in-memory store does); each request is one atomic upsert that either counts into the live window
 * or starts a new one, so concurrent requests on any node never lose a count. Old rows are swept
 * at most once per window by each node.
 */
export class StoreRateLimitCounters implements RateLimitCounterStore {
  private lastSweep = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly defaultWindowMs: number,
  ) {}

  incr(key: string, callback: Callback, timeWindow?: number): void {
    this.count(key, timeWindow ?? this.defaultWindowMs).then(
      (result) => callback(null, result),
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  }

  child(): RateLimitCounterStore {
    return this;
  }

  async count(key: string, timeWindow: number): Promise<{ current: number; ttl: number }> {
    const now = this.clock.now().getTime();
    const nowIso = new Date(now).toISOString();
    // A window that started at or before this instant is over (the plugin's in-memory rule).
    const expiredAtOrBefore = new Date(now - timeWindow).toISOString();
    const live = sql<boolean>`rate_limit_counters.window_started_at > ${expiredAtOrBefore}`;
    const row = await this.store.db
      .insertInto('rate_limit_counters')
      .values({ key, window_started_at: nowIso, count: 1 })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          count: sql<number>`case when ${live} then rate_limit_counters.count + 1 else 1 end`,
          window_started_at: sql<string>`case when ${live} then rate_limit_counters.window_started_at else excluded.window_started_at end`,
        }),
      )
      .returning(['count', 'window_started_at'])
      .executeTakeFirstOrThrow();
    if (now - this.lastSweep >= timeWindow) {
      this.lastSweep = now;
      // Best effort: a failed sweep only leaves finished rows for the next one.
      void this.store.db
        .deleteFrom('rate_limit_counters')
        .where('window_started_at', '<=', expiredAtOrBefore)
        .execute()
        .catch(() => undefined);
    }
    const ttl = Math.max(0, Date.parse(row.window_started_at) + timeWindow - now);
    return { current: Number(row.count), ttl };
  }
}

/** The store as the class @fastify/rate-limit instantiates (it passes its options, which counting in the store doesn't need). */
export function storeRateLimitClass(store: Store, clock: Clock, windowMs: number): new () => RateLimitCounterStore {
  const counters = new StoreRateLimitCounters(store, clock, windowMs);
  return class SharedRateLimitCounters implements RateLimitCounterStore {
    incr(...args: Parameters<RateLimitCounterStore['incr']>): void {
      counters.incr(...args);
    }
    child(): RateLimitCounterStore {
      return this;
    }
  };
}
