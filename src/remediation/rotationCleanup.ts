/**
 * The `completed` phase of a rotation: superseded credentials removed once the retention period
 * has passed (invariants 3 and 9).
 */
import { assertLeaseHeld } from './engine';
import { readApp } from './reads';
import type { ApplicationInfo, RotationRecord } from './ports';
import type { RotationContext } from './rotation';
import { removeSuperseded } from './superseded';

const HOUR_MS = 3600 * 1000;

/**
 * Removes superseded credentials once the retention period has passed (invariant 3 decides which,
 * invariant 9 whether): an expired one always; a live one only when the usage census shows no other
 * connection naming the app that may still hold it. What is kept is said in `result.cleanup`.
 * Without a census (`target.usage`) the record stays `verified`, so a run that has one finishes the clean-up.
 * `current`: the app as this rotation found it under the lock (seconds ago), less what it removed
 * since; read again when not given.
 */
export async function cleanUp(
  ctx: RotationContext,
  record: RotationRecord,
  current?: ApplicationInfo,
): Promise<RotationRecord> {
  const { deps, settings, result } = ctx;
  const now = deps.clock.now();
  const dueAt =
    Date.parse(record.verifiedAt ?? record.createdAt) + settings.oldSecretRetentionHours * HOUR_MS;
  if (now.getTime() < dueAt) {
    result.cleanupDueAt = new Date(dueAt).toISOString();
    result.steps.push(`old credentials kept until ${result.cleanupDueAt} (retention)`);
    return record;
  }
  const app = current ?? (await readApp(record.appId, deps));
  const cleared = await removeSuperseded(ctx, app, record, {
    now,
    kind: ctx.kind,
    current: record.keyId,
    during: 'removing a superseded credential',
    why: ({ expired, ours }) =>
      expired ? 'expired' : ours ? 'superseded by this service' : 'previously used by the connection',
  });
  // No census: stay verified, so the next full run (which has one) finishes the clean-up.
  if (!cleared.done) return record;
  await assertLeaseHeld('recording the completed rotation in Key Vault');
  const completed = await deps.store.updateRecord({
    ...record,
    phase: 'completed',
    completedAt: now.toISOString(),
  });
  result.phase = 'completed';
  return completed;
}
