/**
 * The `created` phase of a rotation: orphans of earlier rotations removed (invariant 4), the intent
 * noted in Key Vault, the new credential added through Graph and its value stored in Key Vault
 * before it is written anywhere else (invariant 1).
 */
import { randomBytes } from 'node:crypto';
import { ServiceError } from '../errors';
import { errorMessage, redactor } from '../telemetry';
import { addPasswordRefusal } from './diagnosis';
import { assertLeaseHeld, classify, EngineFailure } from './engine';
import { readApp } from './reads';
import { judgeMarked } from './orphans';
import { SECRET_KIND } from './credentialKind';
import type {
  ApplicationInfo,
  PasswordCredentialInfo,
  PasswordPolicy,
  RotationIntent,
  RotationRecord,
  ServiceConnection,
} from './ports';
import type { RotationContext } from './rotation';
import { credentialMarker, isMarkedFor, parseMarker } from './transform';

const DAY_MS = 24 * 3600 * 1000;

function newRotationId(): string {
  return randomBytes(4).toString('hex');
}

/**
 * Removes credentials marked for this connection whose value provably never reached Key Vault
 * (orphans.ts: the rotation that added them noted its intent and no record stores it). A live marked
 * credential with no record accounting for it is a lost state: nothing is removed or created.
 */
export async function removeOrphans(
  ctx: RotationContext,
  app: ApplicationInfo,
  existing: RotationRecord | undefined,
  intent: RotationIntent | undefined,
): Promise<void> {
  const { deps, result } = ctx;
  const kind = ctx.kind ?? SECRET_KIND;
  const judged = judgeMarked(kind.credentials(app), ctx.target.connectionId, {
    record: existing,
    intent,
    now: deps.clock.now(),
  });
  if (judged.lost.length > 0)
    throw new EngineFailure(
      'state-lost',
      `Rotation state lost: credential(s) ${judged.lost.map((c) => c.keyId).join(', ')} carry this service's marker for this connection but no Key Vault record exists; nothing was removed or added.`,
    );
  for (const credential of judged.orphans) {
    await assertLeaseHeld('removing an orphaned credential');
    await kind.remove(deps, app.id, credential.keyId).catch((err: unknown) => {
      throw classify(err, 'removing an orphaned credential');
    });
    result.removedKeyIds.push(credential.keyId);
    result.steps.push(
      `removed orphaned credential ${credential.keyId} (rotation ${parseMarker(credential.displayName)?.rotationId ?? '?'} never reached Key Vault)`,
    );
  }
}

/**
 * The rotation's id, and its intent noted in Key Vault before any credential exists (invariant 4).
 * `credentials`: the app's credentials of the kind rotated. Shared by secrets and certificates.
 */
export async function startRotation(
  ctx: RotationContext,
  credentials: readonly PasswordCredentialInfo[],
  existing: RotationRecord | undefined,
  intent: RotationIntent | undefined,
): Promise<string> {
  const { target, deps, result } = ctx;
  const now = deps.clock.now();
  // An intent noted earlier whose credential does not exist (its addPassword was refused, or its
  // orphan was just removed) is used again: the evidence stands, and no write is repeated.
  const unusedIntent =
    intent &&
    intent.rotationId !== existing?.rotationId &&
    !credentials.some(
      (c) =>
        !result.removedKeyIds.includes(c.keyId) &&
        isMarkedFor(c.displayName, target.connectionId) &&
        parseMarker(c.displayName)?.rotationId === intent.rotationId,
    );
  const rotationId = unusedIntent ? intent.rotationId : newRotationId();

  // The intent goes to Key Vault before the credential exists: should the value never get there
  // (a crash, a refused write), the marked credential is then an orphan by evidence (invariant 4).
  if (!unusedIntent) {
    await assertLeaseHeld('noting the rotation intent in Key Vault');
    await deps.store
      .recordIntent(
        target.connectionId,
        target.organizationUrl,
        { rotationId, at: now.toISOString() },
        existing,
      )
      .catch(async (err: unknown) => {
        if (err instanceof ServiceError && err.code === 'ObjectIsDeletedButRecoverable') {
          // The record was soft-deleted (not looked for: no marked credential): bring it back, and
          // let the next run decide with it.
          await deps.store.recoverRecord(target.connectionId);
          throw new EngineFailure(
            'state-changed',
            "The connection's Key Vault record was soft-deleted; it was recovered and nothing else was done: the next run decides with it.",
            true,
          );
        }
        throw new EngineFailure(
          'key-vault-write-failed',
          `Key Vault refused the rotation's intent (nothing was added): ${errorMessage(err)}`,
          true,
          err,
        );
      });
  }

  return rotationId;
}

export async function createCredential(
  ctx: RotationContext,
  connection: ServiceConnection,
  app: ApplicationInfo,
  existing: RotationRecord | undefined,
  intent: RotationIntent | undefined,
): Promise<{ record: RotationRecord; value: string }> {
  const { target, deps, settings, result } = ctx;
  const policy: PasswordPolicy =
    target.passwordPolicy ??
    (await deps.graph.getPasswordPolicy(app.id).catch((): PasswordPolicy => ({ additionBlocked: false })));
  if (policy.additionBlocked)
    throw new EngineFailure(
      'blocked-by-policy',
      'An app management policy forbids adding passwords to this app.',
    );
  const now = deps.clock.now();
  // Stay a minute inside a policy cap: the directory compares against its own clock.
  const endFor = (maxLifetimeDays: number | undefined): number =>
    now.getTime() +
    Math.min(settings.secretLifetimeDays, maxLifetimeDays ?? Infinity) * DAY_MS -
    (maxLifetimeDays !== undefined ? 60_000 : 0);
  const endMs = endFor(policy.maxLifetimeDays);
  const rotationId = await startRotation(ctx, app.passwordCredentials, existing, intent);

  // What the connection uses now: the credential we recorded last time, else what assessment knew.
  const previousKeyIds = new Set<string>(target.previousKeyIds);
  if (existing && existing.appId === app.appId) previousKeyIds.add(existing.keyId);

  const marker = credentialMarker(target.connectionId, rotationId);
  const add = async (end: number) => {
    await assertLeaseHeld('adding a password');
    return deps.graph.addPassword(app.id, {
      displayName: marker,
      endDateTime: new Date(end).toISOString(),
    });
  };
  const created = await add(endMs)
    .catch(async (err: unknown) => {
      // No answer, or a 5xx: the password may have been added anyway, its value never seen. Remove
      // whatever carries this rotation's marker, then ask once more. (A read that misses a password
      // added a moment ago leaves it to the next run, which removes it by its marker: invariant 4.)
      if (!(err instanceof ServiceError) || !(err.status === undefined || err.status >= 500)) throw err;
      const now = await readApp(app.appId, deps);
      for (const c of now.passwordCredentials.filter((p) => p.displayName === marker)) {
        await assertLeaseHeld('removing a credential whose value was lost');
        await deps.graph.removePassword(app.id, c.keyId).catch((removeErr: unknown) => {
          throw classify(removeErr, 'removing a credential whose value was lost');
        });
        result.steps.push(`removed credential ${c.keyId}: addPassword's answer was lost, so was its value`);
      }
      result.steps.push('addPassword got no answer; asked again');
      return add(endMs);
    })
    .catch(async (err: unknown) => {
      // A lifetime cap the plan did not know (no Policy.Read.All, or a policy changed since): read
      // the policy again and, when it names a shorter cap, ask once more within it.
      if (!(err instanceof ServiceError) || addPasswordRefusal(err) !== 'password-lifetime') throw err;
      const fresh = await deps.graph.getPasswordPolicy(app.id).catch((): PasswordPolicy => policy);
      const clamped = endFor(fresh.maxLifetimeDays);
      if (fresh.maxLifetimeDays === undefined || clamped >= endMs) throw err;
      result.steps.push(
        `the directory refused ${Math.round((endMs - now.getTime()) / DAY_MS)} days: asked again within the policy's cap of ${fresh.maxLifetimeDays} days`,
      );
      return add(clamped);
    })
    .catch((err: unknown) => {
      const refusal = err instanceof ServiceError ? addPasswordRefusal(err) : undefined;
      if (refusal)
        throw new EngineFailure(
          'blocked-by-policy',
          `The directory refused a new password (${refusal}): ${errorMessage(err)}`,
          false,
          err,
        );
      // Any other 400 is not a policy: an error, with Graph's code.
      throw classify(err, 'adding a password');
    });
  redactor.register(created.secretText);
  result.steps.push(`added credential ${created.keyId} ending ${created.endDateTime}`);

  const record: RotationRecord = {
    connectionId: target.connectionId,
    organization: target.organizationUrl,
    phase: 'created',
    appId: app.appId,
    keyId: created.keyId,
    rotationId,
    previousKeyIds: [...previousKeyIds].filter((k) => k !== created.keyId),
    originalCreationMode: existing?.originalCreationMode ?? connection.data['creationMode'] ?? 'Manual',
    expiresAt: created.endDateTime,
    createdAt: now.toISOString(),
  };
  try {
    await assertLeaseHeld('storing the new secret in Key Vault');
    // Invariant 1: the value is in Key Vault before it is written anywhere else.
    const stored = await deps.store.putSecret(record, created.secretText);
    result.steps.push('stored the new secret and rotation state in Key Vault');
    return { record: stored, value: created.secretText };
  } catch (err) {
    return abandonUnrecorded(ctx, err, {
      keyId: created.keyId,
      remove: () => deps.graph.removePassword(app.id, created.keyId),
      noun: 'credential',
      kept: 'its value',
      refused: 'the write',
      failure: 'the new secret',
    });
  }
}

/**
 * Key Vault did not take what names a credential just added to the app: the credential is removed
 * again (no record would name it; if the removal fails too, the next run removes it by its marker,
 * invariant 4), then the rotation fails. A lost lock (`lock-lost`) is rethrown as is: nothing was
 * written over another holder's record.
 */
export async function abandonUnrecorded(
  { deps, result }: RotationContext,
  err: unknown,
  undo: {
    keyId: string;
    remove: () => Promise<void>;
    noun: string;
    kept: string;
    refused: string;
    failure: string;
  },
): Promise<never> {
  const lockLost = err instanceof EngineFailure && err.code === 'lock-lost';
  await undo.remove().then(
    () =>
      result.steps.push(
        `removed ${undo.noun} ${undo.keyId} again: ${lockLost ? `the lock was lost before Key Vault got ${undo.kept}` : `Key Vault refused ${undo.refused}`}`,
      ),
    (removeErr: unknown) =>
      deps.log.error(
        `Could not remove a ${undo.noun} after Key Vault refused ${undo.kept}; the next run removes it by marker`,
        { keyId: undo.keyId, error: errorMessage(removeErr) },
      ),
  );
  if (lockLost) throw err;
  throw new EngineFailure(
    'key-vault-write-failed',
    `Key Vault refused ${undo.failure}: ${errorMessage(err)}`,
    true,
    err,
  );
}
