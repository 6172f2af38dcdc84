/**
 * The blob-lease LockProvider against Azurite, the part that waits out a lease (18 s): background
 * renewal keeps a 15-second lease held for longer, an unrenewed one expires. The rest is in
 * azurite.lock.test.ts.
 */
import { frozenTimers, sleep, useLockContainers } from '../helpers/lockContainers';

const { instance, freshContainer } = useLockContainers();

test('background renewal keeps a 15 s lease held for 18 s; an unrenewed one expires', async () => {
  const container = freshContainer();
  const renewed = await instance(container, { renewIntervalMs: 4000 }).tryAcquire('renewed', 15);
  const abandoned = await instance(container, { timers: frozenTimers }).tryAcquire('abandoned', 15);
  expect(renewed?.durationSeconds).toBe(15);
  expect(abandoned).toBeDefined();

  await sleep(18_000);

  const other = instance(container);
  expect(await other.tryAcquire('renewed', 15)).toBeUndefined();
  expect(renewed!.renewals).toBeGreaterThanOrEqual(3);
  expect(renewed!.lost).toBe(false);
  const taken = await other.tryAcquire('abandoned', 15);
  expect(taken).toBeDefined();

  await renewed!.release();
  expect(await other.tryAcquire('renewed', 15)).toBeDefined();
  await taken!.release();
  await abandoned!.release(); // its lease is gone: release is a quiet no-op
}, 40_000);
