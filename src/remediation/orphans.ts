/**
 * Which credentials marked for a connection are orphans (DESIGN invariants 4 and 10). An orphan is
 * removed without asking who uses it, so it takes evidence that its value never reached Key Vault
 * (and hence that no connection can hold it, invariant 1): the rotation that added it noted its
 * intent in Key Vault before `addPassword`, and no record stores that rotation (a crash, or a
 * refused write, between Graph and Key Vault).
 *
 * Youth is not such evidence: a credential younger than the lock window whose record was purged a
 * moment after it was stored is in use (test/integration/lostRecord.test.ts does exactly that). So
 * "younger than the lock window and held by no connection" is only ever met through the intent.
 * A live marked credential that no record accounts for, without that evidence, is a lost state:
 * never healthy, never removed, reported. Expired ones are harmless either way.
 */
import type { EngineDeps } from './engine';
import type { PasswordCredentialInfo, RecordState, RotationIntent, RotationRecord } from './ports';
import { isMarkedFor, parseMarker } from './transform';

interface MarkedEvidence {
  /** The connection's live record (any app), if Key Vault has one. */
  record: RotationRecord | undefined;
  /** The intent Key Vault holds without a record (first rotation), if any. */
  intent?: RotationIntent;
  /** The connection's secret is soft-deleted and not recovered yet: nothing can be judged. */
  softDeleted?: boolean;
  now: Date;
}

interface MarkedJudgement {
  /** Marked credentials whose value provably never reached Key Vault: safe to remove. */
  orphans: PasswordCredentialInfo[];
  /** Live marked credentials with no record that accounts for them: state unknown. */
  lost: PasswordCredentialInfo[];
}

const endMs = (c: PasswordCredentialInfo) =>
  c.endDateTime === null ? Number.POSITIVE_INFINITY : Date.parse(c.endDateTime);

export function judgeMarked(
  credentials: readonly PasswordCredentialInfo[],
  connectionId: string,
  evidence: MarkedEvidence,
): MarkedJudgement {
  const result: MarkedJudgement = { orphans: [], lost: [] };
  if (evidence.softDeleted) return result;
  const now = evidence.now.getTime();
  const { record } = evidence;
  const intent = record ? record.intent : evidence.intent;
  const known = new Set(record ? [record.keyId, ...record.previousKeyIds].map((k) => k.toLowerCase()) : []);
  for (const c of credentials) {
    if (!isMarkedFor(c.displayName, connectionId) || known.has(c.keyId.toLowerCase())) continue;
    const rotationId = parseMarker(c.displayName)?.rotationId;
    const unstoredIntent =
      intent !== undefined && rotationId === intent.rotationId && rotationId !== record?.rotationId;
    if (unstoredIntent) result.orphans.push(c);
    // With a record, other marked credentials are earlier rotations' (kept by a clean-up): the
    // state is known, and clean-up decides about them. Without one they are a lost state.
    else if (!record && endMs(c) > now) result.lost.push(c);
  }
  return result;
}

/**
 * What Key Vault holds for a connection: its live record, or, when it has none, what stands in for
 * it. A soft-deleted record is recovered when `recover` (never in a dry run) and returned as the
 * record; otherwise `missing` says what there is (soft-deleted, an intent, or nothing). Requires
 * secrets/get (and secrets/recover).
 */
export async function resolveMissingRecord(
  connectionId: string,
  deps: Pick<EngineDeps, 'store' | 'log'>,
  recover: boolean,
  lookForDeleted = true,
): Promise<{ record?: RotationRecord; missing?: RecordState; recovered: boolean }> {
  const missing = await deps.store.readState(connectionId, { lookForDeleted });
  if (missing.softDeleted && recover) {
    const record = await deps.store.recoverRecord(connectionId);
    deps.log.warn('Recovered a soft-deleted rotation record from Key Vault', { connectionId });
    if (record) return { record, recovered: true };
    return { missing: await deps.store.readState(connectionId), recovered: true };
  }
  if (missing.record && !missing.softDeleted) return { record: missing.record, missing, recovered: false };
  return { missing, recovered: false };
}
