/** `fn` over `items` with at most `limit` in flight; results in input order. The first failure rejects (the others still finish). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * How many units of some work are in progress right now (device requests being served), and a way
 * to wait until that falls below a level: the back-pressure a producer of that work (the push job)
 * paces itself by.
 */
export class InFlight {
  private active = 0;
  private readonly waiters: Array<{ limit: number; resolve: () => void }> = [];

  get count(): number {
    return this.active;
  }

  /** One more in progress; the returned function ends it (a second call does nothing). */
  enter(): () => void {
    this.active++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.active--;
      this.wake();
    };
  }

  /** Resolves once fewer than `limit` are in progress (at once when they already are), or when `signal` aborts. */
  below(limit: number, signal?: AbortSignal): Promise<void> {
    if (this.active < limit || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        limit,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private wake(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i]!;
      if (this.active < w.limit) {
        this.waiters.splice(i, 1);
        w.resolve();
      } else i++;
    }
  }
}
