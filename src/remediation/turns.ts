/**
 * The run's turns (memory, docs/performance.md): every connection is worked on once, at most `width`
 * at once, each as soon as its inputs are in (its rotation record listed), in the order they come
 * in. A bounded set of workers pulls from a queue of indices: no promise, closure or queue entry per
 * waiting connection (10,000 of them held that much more memory at the start of remediation).
 */

/** Tells which items may start: a key is ready once listed, every key once the listing has ended. */
export interface TurnGate {
  /** Whether the item with this key may start now. */
  isReady(key: string): boolean;
  /** `listener(key)` once a key becomes ready, `listener(undefined)` once every key is. */
  onReady(listener: (key: string | undefined) => void): void;
}

/**
 * Runs `work(index)` for each of `keys` (results in the order of `keys`), at most `width` at once,
 * an item starting once `gate` says its key is ready (without a gate, at once). Rejects with the
 * first rejection of `work`, as `Promise.all` does (items already started still run to their end).
 */
export function takeTurns<T>(
  keys: readonly string[],
  width: number,
  work: (index: number) => Promise<T>,
  gate?: TurnGate,
): Promise<T[]> {
  const results: T[] = new Array<T>(keys.length);
  if (keys.length === 0) return Promise.resolve(results);
  const limit = Math.max(1, width);
  const ready: number[] = [];
  let next = 0;
  const waiting = new Map<string, number[]>();
  keys.forEach((key, index) => {
    if (!gate || gate.isReady(key)) ready.push(index);
    else waiting.set(key, [...(waiting.get(key) ?? []), index]);
  });
  let running = 0;
  let finished = 0;
  let failed = false;
  return new Promise<T[]>((resolve, reject) => {
    const pump = (): void => {
      while (!failed && running < limit && next < ready.length) {
        const index = ready[next]!;
        next += 1;
        // The consumed front of the queue is dropped now and then, so it does not keep growing.
        if (next >= 1024) {
          ready.splice(0, next);
          next = 0;
        }
        running += 1;
        work(index).then(
          (result) => {
            results[index] = result;
            running -= 1;
            finished += 1;
            if (finished === keys.length) resolve(results);
            else pump();
          },
          (err: unknown) => {
            running -= 1;
            failed = true;
            reject(err instanceof Error ? err : new Error(String(err)));
          },
        );
      }
    };
    gate?.onReady((key) => {
      if (key === undefined) {
        for (const indices of waiting.values()) ready.push(...indices);
        waiting.clear();
      } else {
        const indices = waiting.get(key);
        if (!indices) return;
        waiting.delete(key);
        ready.push(...indices);
      }
      pump();
    });
    pump();
  });
}
