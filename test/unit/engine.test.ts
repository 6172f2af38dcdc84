/**
 * The engine's shared mechanics over plain fakes that record calls: `pollUntil`'s waits (the
 * figures every backoff loop had before it), and `underConnectionLock` — the lease length from the
 * settings for every operation, skipped/failed/succeeded, and the lease always released.
 */
import {
  assertLeaseHeld,
  pollUntil,
  underConnectionLock,
  EngineFailure,
  type ConnectionTarget,
  type EngineDeps,
} from '../../src/remediation/engine';
import { repairConnection } from '../../src/remediation/repair';
import { retireConnection } from '../../src/remediation/retirement';
import type { Lease } from '../../src/remediation/ports';
import { rotateConnection } from '../../src/remediation/rotation';

function recordingClock() {
  const sleeps: number[] = [];
  return { sleeps, clock: { sleep: (ms: number) => Promise.resolve(void sleeps.push(ms)) } };
}

describe('pollUntil', () => {
  test('doubles the wait up to the cap and gives up after the attempts, with the last problem', async () => {
    const { sleeps, clock } = recordingClock();
    const probes: number[] = [];
    const outcome = await pollUntil(clock, { attempts: 5, initialDelayMs: 2000, maxDelayMs: 5000 }, (n) => {
      probes.push(n);
      return Promise.resolve({ done: false, problem: `no ${n}` } as const);
    });
    expect(probes).toEqual([1, 2, 3, 4, 5]);
    expect(sleeps).toEqual([2000, 4000, 5000, 5000]);
    expect(outcome).toEqual({ done: false, problem: 'no 5', attempts: 5, waitedMs: 16000 });
  });

  test('returns the value and the attempt that got it; no wait after it', async () => {
    const { sleeps, clock } = recordingClock();
    const outcome = await pollUntil(clock, { attempts: 8, initialDelayMs: 10, maxDelayMs: 30 }, (n) =>
      Promise.resolve(
        n === 3 ? ({ done: true, value: 'ready' } as const) : ({ done: false, problem: 'not yet' } as const),
      ),
    );
    expect(outcome).toEqual({ done: true, value: 'ready', attempt: 3, waitedMs: 30 });
    expect(sleeps).toEqual([10, 20]);
  });

  test('a budget shortens the last wait to fit and stops once it is spent', async () => {
    const { sleeps, clock } = recordingClock();
    const outcome = await pollUntil(clock, { initialDelayMs: 5000, maxDelayMs: 60000, budgetMs: 12000 }, () =>
      Promise.resolve({ done: false, problem: 'in progress' } as const),
    );
    expect(sleeps).toEqual([5000, 7000]);
    expect(outcome).toEqual({ done: false, problem: 'in progress', attempts: 3, waitedMs: 12000 });
  });

  test('no attempts: nothing probed', async () => {
    const { sleeps, clock } = recordingClock();
    const probe = jest.fn();
    const outcome = await pollUntil(clock, { attempts: 0, initialDelayMs: 1, maxDelayMs: 1 }, probe);
    expect(probe).not.toHaveBeenCalled();
    expect(sleeps).toEqual([]);
    expect(outcome).toEqual({ done: false, problem: 'not tried', attempts: 0, waitedMs: 0 });
  });

  test("a probe's error ends the polling", async () => {
    const { sleeps, clock } = recordingClock();
    await expect(
      pollUntil(clock, { attempts: 3, initialDelayMs: 1, maxDelayMs: 1 }, () =>
        Promise.reject(new EngineFailure('conversion-failed', 'failed')),
      ),
    ).rejects.toMatchObject({ code: 'conversion-failed' });
    expect(sleeps).toEqual([]);
  });
});

const target: ConnectionTarget = {
  organizationUrl: 'https://dev.azure.com/org',
  project: 'p',
  connectionId: 'c1',
  previousKeyIds: [],
};

/** Deps whose lock provider records each request and answers with `lease` (undefined: held elsewhere). */
function lockingDeps(lease: Lease | undefined) {
  const acquired: { key: string; seconds: number }[] = [];
  const warnings: { message: string; fields: unknown }[] = [];
  const deps = {
    locks: {
      tryAcquire: (key: string, seconds: number) => {
        acquired.push({ key, seconds });
        return Promise.resolve(lease);
      },
    },
    log: {
      warn: (message: string, fields: unknown) => warnings.push({ message, fields }),
      info: () => undefined,
      error: () => undefined,
    },
    retirements: { recordRetired: () => Promise.resolve() },
  } as unknown as EngineDeps;
  return { deps, acquired, warnings };
}

function fakeLease(held = true) {
  const calls: string[] = [];
  const lease: Lease = {
    release: () => Promise.resolve(void calls.push('release')),
    stillHeld: () => {
      calls.push('stillHeld');
      return Promise.resolve(held);
    },
  };
  return { lease, calls };
}

describe('underConnectionLock', () => {
  test.each([
    ['rotation', () => rotateConnection],
    ['repair', () => repairConnection],
    ['retirement', () => retireConnection],
  ] as const)('%s takes the lease for settings.lockSeconds (60 when unset)', async (_name, entry) => {
    const run = entry() as (t: ConnectionTarget, d: EngineDeps, s: object) => Promise<unknown>;
    const retiring = { ...target, organization: 'org', projects: [], reason: 'gone' };
    for (const [settings, seconds] of [
      [{ lockSeconds: 150 }, 150],
      [{}, 60],
    ] as const) {
      const { deps, acquired } = lockingDeps(undefined);
      const result = await run(retiring, deps, {
        secretLifetimeDays: 90,
        oldSecretRetentionHours: 0,
        ...settings,
      });
      expect(acquired).toEqual([{ key: 'connection-c1', seconds }]);
      expect(result).toMatchObject({ outcome: 'skipped', error: { code: 'lock-held', transient: true } });
    }
  });

  test('lock held: skipped, the body never runs, the wording kept per operation', async () => {
    const body = jest.fn();
    const { deps } = lockingDeps(undefined);
    const rotating = await underConnectionLock(
      target,
      deps,
      {},
      { action: 'rotate-secret', during: 'rotation' },
      body,
    );
    const deleting = await underConnectionLock(
      target,
      deps,
      {},
      { action: 'delete', during: 'retirement' },
      body,
    );
    expect(body).not.toHaveBeenCalled();
    expect(rotating.error?.message).toBe('Another rotation of this connection is in progress.');
    expect(deleting.error?.message).toBe('Another operation on this connection is in progress.');
  });

  test('the body returns: succeeded, with the steps it wrote; the lease released', async () => {
    const { lease, calls } = fakeLease();
    const { deps } = lockingDeps(lease);
    const result = await underConnectionLock(
      target,
      deps,
      {},
      { action: 'repair', during: 'repair' },
      async (ctx) => {
        await assertLeaseHeld('writing');
        ctx.result.steps.push('did it');
      },
    );
    expect(result).toEqual({ outcome: 'succeeded', action: 'repair', removedKeyIds: [], steps: ['did it'] });
    expect(calls).toEqual(['stillHeld', 'release']);
  });

  test('the body throws: failed with the classified error, logged; state-changed is skipped; the lease released', async () => {
    const { lease, calls } = fakeLease();
    const { deps, warnings } = lockingDeps(lease);
    const failed = await underConnectionLock(target, deps, {}, { action: 'repair', during: 'repair' }, () =>
      Promise.reject(new Error('boom')),
    );
    expect(failed).toMatchObject({
      outcome: 'failed',
      error: { code: 'service-error', message: 'repair: boom' },
    });
    expect(warnings).toEqual([
      {
        message: 'Repair failed',
        fields: { connectionId: 'c1', code: 'service-error', message: 'repair: boom' },
      },
    ]);
    const changed = await underConnectionLock(
      target,
      deps,
      {},
      { action: 'rotate-secret', during: 'rotation' },
      () => Promise.reject(new EngineFailure('state-changed', 'another run', true)),
    );
    expect(changed).toMatchObject({ outcome: 'skipped', error: { code: 'state-changed' } });
    expect(warnings).toHaveLength(1);
    expect(calls).toEqual(['release', 'release']);
  });

  test('a lease no longer held stops the body at its next write with lock-lost', async () => {
    const { lease } = fakeLease(false);
    const { deps } = lockingDeps(lease);
    const wrote = jest.fn();
    const result = await underConnectionLock(
      target,
      deps,
      {},
      { action: 'repair', during: 'repair' },
      async () => {
        await assertLeaseHeld('writing');
        wrote();
      },
    );
    expect(wrote).not.toHaveBeenCalled();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'lock-lost', transient: true } });
    await expect(assertLeaseHeld('outside any lock')).rejects.toMatchObject({ code: 'lock-lost' });
  });
});
