/**
 * Which of an app's credentials a connection uses, and where that credential stands (pure): the
 * credential picks of the assessment (earliest-ending valid, latest-ending) and its valid, expiring
 * or expired state.
 */
import type { PasswordCredentialInfo } from './ports';
import type { CredentialSource } from './report';
import type { PendingRotation } from './assess';
import type { RotationRecord } from './ports';

const DAY_MS = 24 * 3600 * 1000;

/** How the credential in use was identified. */
export type CredentialBasis =
  /** The Key Vault record's key id (this service rotated it). */
  | 'record'
  /** A credential marked for this connection by this service (record lost). */
  | 'marker'
  /** The only credential of the app the connection could use. */
  | 'only-credential'
  /**
   * Several could be in use: the earliest-ending one still valid (a pessimistic guess: judging a
   * connection healthy on another consumer's longer-lived password would let it expire unnoticed,
   * while an unneeded rotation costs nothing). All ended: the latest-ending.
   */
  | 'earliest-unexpired';

export type CredentialState = 'valid' | 'expiring' | 'expired';

export interface CredentialInUse {
  keyId: string;
  displayName: string | null;
  hint: string | null;
  endDateTime: string | null;
  source: Exclude<CredentialSource, 'unknown'>;
  basis: CredentialBasis;
  /** Why this credential, in words. */
  reason: string;
  state: CredentialState;
  /** Whole days until it ends (negative when it has ended); undefined when it never ends. */
  daysLeft?: number;
}

function endMs(c: PasswordCredentialInfo): number {
  if (c.endDateTime === null) return Number.POSITIVE_INFINITY;
  const t = Date.parse(c.endDateTime);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/** Ties: the latest start first, then by key id (a stable order). */
function latestStartFirst(a: PasswordCredentialInfo, b: PasswordCredentialInfo): number {
  return (
    Date.parse(b.startDateTime ?? '') - Date.parse(a.startDateTime ?? '') || a.keyId.localeCompare(b.keyId)
  );
}

/** The earliest-ending credential still valid at `now`, else the latest-ending (ties: latest start). */
export function earliestUnexpired(
  creds: readonly PasswordCredentialInfo[],
  now: Date,
): PasswordCredentialInfo | undefined {
  const alive = creds.filter((c) => endMs(c) > now.getTime());
  if (alive.length === 0) return latestEnding(creds);
  return [...alive].sort((a, b) => endMs(a) - endMs(b) || latestStartFirst(a, b))[0];
}

/** The latest-ending credential (no end counts as latest; ties: latest start). */
export function latestEnding(creds: readonly PasswordCredentialInfo[]): PasswordCredentialInfo | undefined {
  return [...creds].sort((a, b) => endMs(b) - endMs(a) || latestStartFirst(a, b))[0];
}

/**
 * Where a credential stands: `expired` when its end is at or before `now`; `expiring` when it ends
 * within `rotateDays` days (the boundary itself included); `valid` otherwise, or when it never ends.
 */
export function credentialState(
  endDateTime: string | null,
  now: Date,
  rotateDays: number,
): { state: CredentialState; daysLeft?: number } {
  if (endDateTime === null) return { state: 'valid' };
  const end = Date.parse(endDateTime);
  if (Number.isNaN(end)) return { state: 'expired' };
  const left = end - now.getTime();
  const daysLeft = Math.floor(left / DAY_MS);
  if (left <= 0) return { state: 'expired', daysLeft };
  if (left <= rotateDays * DAY_MS) return { state: 'expiring', daysLeft };
  return { state: 'valid', daysLeft };
}

/** `c` as the credential in use, with why it was picked and where it stands. */
export function inUse(
  c: PasswordCredentialInfo,
  source: 'recorded' | 'inferred',
  basis: CredentialBasis,
  reason: string,
  now: Date,
  rotateDays: number,
): CredentialInUse {
  return {
    keyId: c.keyId,
    displayName: c.displayName,
    hint: c.hint,
    endDateTime: c.endDateTime,
    source,
    basis,
    reason,
    ...credentialState(c.endDateTime, now, rotateDays),
  };
}

/** Ids (key, connection, app, tenant) compare case-insensitively; an absent id matches nothing. */
export const sameId = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();

/**
 * A rotation of this service not yet completed, as the plan resumes it: when its superseded
 * credentials may go (the retention period after verification, or after the latest phase it reached).
 */
export function pendingRotation(record: RotationRecord, retentionHours: number, now: Date): PendingRotation {
  const phase = record.phase;
  if (phase === 'completed')
    throw new Error(`Rotation ${record.rotationId} is completed: nothing to resume.`);
  const dueMs =
    Date.parse(record.verifiedAt ?? record.appliedAt ?? record.createdAt) + retentionHours * 3600 * 1000;
  return {
    phase,
    rotationId: record.rotationId,
    keyId: record.keyId,
    expiresAt: record.expiresAt,
    cleanupDue: phase === 'verified' && !(now.getTime() < dueMs),
    ...(phase === 'verified' && !Number.isNaN(dueMs) ? { cleanupDueAt: new Date(dueMs).toISOString() } : {}),
  };
}
