/**
 * `limit(n)` bounds concurrency: at most n tasks run at once, the rest queue in order.
 * `singleflight()` de-duplicates work per key: concurrent callers for one key share one promise.
 */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

export function limit(concurrency: number): Limiter {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`bad concurrency ${concurrency}`);
  let active = 0;
  const queue: (() => void)[] = [];
  const next = (): void => {
    active--;
    queue.shift()?.();
  };
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= concurrency) await new Promise<void>((resolve) => queue.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      next();
    }
  };
}

export function singleflight<K, V>(): (key: K, task: () => Promise<V>) => Promise<V> {
  const inflight = new Map<K, Promise<V>>();
  return (key, task) => {
    const existing = inflight.get(key);
    if (existing) return existing;
    const p = task().finally(() => inflight.delete(key));
    inflight.set(key, p);
    return p;
  };
}
