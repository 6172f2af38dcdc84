/**
 * The removal of the credentials a rotation or conversion superseded (DESIGN invariants 3 and 9).
 * A candidate is marked for the connection by this service, recorded as the connection's before,
 * or expired; anything else on the app is never touched. An expired candidate works for no one and
 * goes; a live one goes only when the usage census shows no other connection that may hold it.
 */
import { judgeRemovals } from './census';
import { SECRET_KIND, type CredentialKind } from './credentialKind';
import { assertLeaseHeld, classify, type EngineContext, type LockSettings } from './engine';
import type { ApplicationInfo } from './ports';
import { isExpired } from './reads';
import { isMarkedFor } from './transform';

/** Why a credential is a candidate. */
interface Supersession {
  ours: boolean;
  previous: boolean;
  expired: boolean;
}

/**
 * Removes `app`'s superseded credentials (the lease checked before each removal) and says in the
 * result what it removed and kept. Returns `done: false` when a credential is kept for want of a
 * census: the record then stays where it is, so a full run (which has one) finishes the clean-up.
 */
export async function removeSuperseded(
  ctx: EngineContext<LockSettings>,
  app: ApplicationInfo,
  record: { appId: string; previousKeyIds: string[] },
  how: {
    /** The clock reading the clean-up started with (what has expired by then). */
    now: Date;
    /** The credential the connection uses now (never a candidate). */
    current?: string;
    /** The removal, as the lease check and errors name it. */
    during: string;
    /** Why a removed credential went, for the steps. */
    why: (candidate: Supersession) => string;
    /** Which of the app's credentials: its client secrets unless said (credentialKind.ts). */
    kind?: CredentialKind;
  },
): Promise<{ done: boolean }> {
  const { deps, result, target } = ctx;
  const judge = await judgeRemovals(target.usage, record.appId, deps.store);
  const kept: string[] = [];
  const reasons = new Set<string>();
  const kind = how.kind ?? SECRET_KIND;
  for (const credential of kind.credentials(app)) {
    if (credential.keyId === how.current || result.removedKeyIds.includes(credential.keyId)) continue;
    const candidate: Supersession = {
      ours: isMarkedFor(credential.displayName, target.connectionId),
      previous: record.previousKeyIds.includes(credential.keyId),
      expired: isExpired(credential, how.now),
    };
    if (!candidate.ours && !candidate.previous && !candidate.expired) continue;
    const keep = candidate.expired ? undefined : judge.keepReason(credential.keyId);
    if (keep) {
      kept.push(credential.keyId);
      reasons.add(keep);
      result.steps.push(`kept credential ${credential.keyId}: ${keep}`);
      continue;
    }
    await assertLeaseHeld(how.during);
    await kind.remove(deps, app.id, credential.keyId).catch((err: unknown) => {
      throw classify(err, how.during);
    });
    result.removedKeyIds.push(credential.keyId);
    result.steps.push(`removed credential ${credential.keyId} (${how.why(candidate)})`);
  }
  if (kept.length === 0) return { done: true };
  result.keptKeyIds = kept;
  result.cleanup = `kept ${kept.join(', ')} until ${judge.noCensus ? 'a run with a usage census' : 'it expires'}: ${[...reasons].join('; ')}`;
  return { done: !judge.noCensus };
}
