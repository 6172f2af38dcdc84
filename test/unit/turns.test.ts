import { takeTurns, type TurnGate } from '../../src/remediation/turns';

/** A gate whose keys become ready when the test says so. */
function manualGate(initiallyReady: string[] = []): TurnGate & { list(key?: string): void } {
  const ready = new Set(initiallyReady);
  let settled = false;
  const listeners: ((key: string | undefined) => void)[] = [];
  return {
    isReady: (key) => settled || ready.has(key),
    onReady: (listener) => {
      listeners.push(listener);
    },
    list(key?: string) {
      if (key === undefined) settled = true;
      else ready.add(key);
      for (const l of listeners) l(key);
    },
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('takeTurns', () => {
  it('never has more than `width` items in flight, and works every item once, results in order', async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    const results = await takeTurns(keys, 7, async (index) => {
      started.push(index);
      inFlight += 1;
      most = Math.max(most, inFlight);
      await tick();
      inFlight -= 1;
      return index * 2;
    });
    expect(most).toBe(7);
    expect(started).toHaveLength(1000);
    expect(new Set(started).size).toBe(1000);
    expect(results).toEqual(keys.map((_, i) => i * 2));
  });

  it('starts an item only once its key is ready, in the order keys become ready', async () => {
    const gate = manualGate(['c']);
    const started: string[] = [];
    const keys = ['a', 'b', 'c', 'd'];
    const run = takeTurns(
      keys,
      2,
      async (index) => {
        started.push(keys[index]!);
        await tick();
        return keys[index]!;
      },
      gate,
    );
    await tick();
    expect(started).toEqual(['c']);
    gate.list('d');
    gate.list('b');
    await tick();
    expect(started).toEqual(['c', 'd', 'b']);
    gate.list(); // the listing is over: the rest may start
    await expect(run).resolves.toEqual(['a', 'b', 'c', 'd']);
    expect(started).toEqual(['c', 'd', 'b', 'a']);
  });

  it('keeps no waiting work per item: nothing starts beyond the width while keys wait', async () => {
    const gate = manualGate();
    let calls = 0;
    const keys = Array.from({ length: 500 }, (_, i) => `k${i}`);
    const run = takeTurns(
      keys,
      3,
      async () => {
        calls += 1;
        await tick();
        return calls;
      },
      gate,
    );
    await tick();
    expect(calls).toBe(0);
    gate.list();
    await run;
    expect(calls).toBe(500);
  });

  it('rejects with the first failure, and resolves at once for no items', async () => {
    await expect(takeTurns([], 4, () => Promise.resolve(1))).resolves.toEqual([]);
    await expect(
      takeTurns(['a', 'b', 'c'], 1, (index) =>
        index === 1 ? Promise.reject(new Error('boom')) : Promise.resolve(index),
      ),
    ).rejects.toThrow('boom');
  });
});
