/**
 * The judgement of a client-secret connection (pure; steps 4–6 of `assess`, which has found its
 * app): the rotation record and a rotation under way, orphans and a lost state, the credential the
 * connection uses, the finding, and the app's password policy.
 */
import { diagnosisOf } from './diagnosis';
import { judgeMarked } from './orphans';
import type { PasswordCredentialInfo } from './ports';
import type { DiagnosisKind, Finding } from './report';
import type { AppFound, Assessment, PendingRotation } from './assess';
import {
  credentialState,
  earliestUnexpired,
  inUse,
  latestEnding,
  pendingRotation,
  sameId,
  type CredentialInUse,
} from './credentialInUse';
import { isMarkedFor, parseMarker } from './transform';

const SECRET_PROBLEMS: readonly DiagnosisKind[] = ['invalid-secret', 'expired-secret', 'missing-secret'];

/**
 * Which credential of `app` the connection uses and what that means: steps 4–6 of `assess` (see
 * there).
 */
export function assessSecret(found: AppFound): Assessment {
  const { input, base, done, app, diagnosis } = found;
  const { connection, settings, now } = input;
  const { notes, accessTokenBroken } = base;

  // 4. The rotation record, if it is about this connection and app.
  let record = input.record;
  if (record && (!sameId(record.connectionId, connection.id) || !sameId(record.appId, app.appId))) {
    notes.push(
      `Ignored the Key Vault record of rotation ${record.rotationId}: it is for app ${record.appId}, the connection now uses app ${app.appId}.`,
    );
    record = undefined;
  }
  const creds = app.passwordCredentials;
  const byKey = (keyId: string) => creds.find((c) => sameId(c.keyId, keyId));
  const rotateDays = settings.rotateDaysBeforeExpiry;

  let pending: PendingRotation | undefined;
  if (record && record.phase !== 'completed') {
    if (byKey(record.keyId)) {
      pending = pendingRotation(record, settings.oldSecretRetentionHours, now);
    } else {
      notes.push(
        `Rotation ${record.rotationId} stopped in phase '${record.phase}', but its credential ${record.keyId} no longer exists on the app: it cannot be resumed.`,
      );
    }
  }

  // Orphans: marked for this connection, and provably never stored in Key Vault (see orphans.ts);
  // other marked credentials with no record are a lost state, never orphans.
  const marked = creds.filter((c) => isMarkedFor(c.displayName, connection.id));
  const foreign = creds.filter(
    (c) => parseMarker(c.displayName) !== undefined && !isMarkedFor(c.displayName, connection.id),
  );
  const judged = judgeMarked(creds, connection.id, {
    record: input.record,
    intent: input.missingRecord?.intent,
    softDeleted: input.missingRecord?.softDeleted,
    now,
  });
  const orphans = judged.orphans;
  if (orphans.length > 0)
    notes.push(
      `Credential(s) ${orphans.map((c) => c.keyId).join(', ')} carry this connection's marker but no rotation record accounts for them (an interrupted rotation).`,
    );

  // 5. The credential in use.
  let credential: CredentialInUse | undefined;
  if (record) {
    if (record.phase === 'created') {
      const previous = latestEnding(
        record.previousKeyIds.map(byKey).filter((c): c is PasswordCredentialInfo => c !== undefined),
      );
      if (previous)
        credential = inUse(
          previous,
          'recorded',
          'record',
          `recorded as in use before rotation ${record.rotationId}, which is not applied yet`,
          now,
          rotateDays,
        );
    } else {
      const current = byKey(record.keyId);
      if (current)
        credential = inUse(
          current,
          'recorded',
          'record',
          `written by rotation ${record.rotationId}`,
          now,
          rotateDays,
        );
      else notes.push(`The recorded credential ${record.keyId} no longer exists on the app.`);
    }
  }
  if (!credential) {
    const orphanKeys = new Set(orphans.map((c) => c.keyId));
    const pendingKey = pending?.phase === 'created' ? pending.keyId.toLowerCase() : undefined;
    const candidates = creds.filter(
      (c) => !foreign.includes(c) && !orphanKeys.has(c.keyId) && c.keyId.toLowerCase() !== pendingKey,
    );
    const ours = candidates.filter((c) => marked.includes(c));
    const pick =
      ours.length > 0
        ? {
            c: latestEnding(ours),
            basis: 'marker' as const,
            reason: 'created by this service for this connection',
          }
        : candidates.length === 1
          ? { c: candidates[0], basis: 'only-credential' as const, reason: 'the only credential of the app' }
          : {
              c: earliestUnexpired(candidates, now),
              basis: 'earliest-unexpired' as const,
              reason: `the earliest-ending valid one of ${candidates.length} credentials (a pessimistic guess)`,
            };
    if (pick.c) credential = inUse(pick.c, 'inferred', pick.basis, pick.reason, now, rotateDays);
  }

  // What the connection is known to use (a rotation supersedes these).
  const previousKeyIds =
    credential &&
    (credential.source === 'recorded' ||
      credential.basis === 'marker' ||
      (credential.basis === 'only-credential' && connection.isReady && !accessTokenBroken))
      ? [credential.keyId]
      : [];

  // A verified Key Vault secret whose credential is alive and not due for rotation.
  let verifiedSecret: Assessment['verifiedSecret'];
  if (record && (record.phase === 'verified' || record.phase === 'completed')) {
    const c = byKey(record.keyId);
    if (c && credentialState(c.endDateTime, now, rotateDays).state === 'valid')
      verifiedSecret = { rotationId: record.rotationId, keyId: record.keyId, expiresAt: record.expiresAt };
  }

  const secretRejected = diagnosis !== undefined && SECRET_PROBLEMS.includes(diagnosis.kind);
  const noCredential = credential === undefined;
  const testFailed = input.test !== undefined && !input.test.ok;
  const expired = credential?.state === 'expired' || diagnosis?.kind === 'expired-secret';
  const notReady = !connection.isReady || testFailed || accessTokenBroken || secretRejected || noCredential;

  let finding: Finding = expired
    ? 'expired'
    : notReady
      ? 'not-ready'
      : credential?.state === 'expiring'
        ? 'expiring'
        : 'healthy';
  let findingDiagnosis = diagnosis;
  if (noCredential && !findingDiagnosis) {
    findingDiagnosis = {
      ...diagnosisOf('missing-secret'),
      cause: 'The app has no client secret this connection could be using.',
    };
  }

  const needsNewSecret =
    expired ||
    noCredential ||
    credential?.state === 'expiring' ||
    (secretRejected && verifiedSecret === undefined);
  const creationPending = pending !== undefined && pending.phase !== 'verified';

  // 6. Policy.
  const policy = input.passwordPolicy;
  if (needsNewSecret && !creationPending && policy?.additionBlocked) {
    finding = 'blocked-by-policy';
    findingDiagnosis = diagnosisOf('password-policy');
  }
  if (policy?.maxLifetimeDays !== undefined && policy.maxLifetimeDays <= rotateDays)
    notes.push(
      `The app's policy caps new secrets at ${policy.maxLifetimeDays} days, not more than ROTATE_DAYS_BEFORE_EXPIRY (${rotateDays}): every new secret will be due for rotation at once.`,
    );
  if (credential?.source === 'inferred')
    notes.push(`Credential in use inferred: ${credential.keyId}, ${credential.reason}.`);

  // Missing state is unknown state (invariant 10): neither healthy nor a reason to act on inference.
  let recordState: Assessment['recordState'];
  if (input.missingRecord?.softDeleted) {
    recordState = 'soft-deleted';
    finding = 'error';
    findingDiagnosis = diagnosisOf('rotation-state-deleted');
    notes.push("The connection's Key Vault record is soft-deleted; it is recovered before anything else.");
  } else if (judged.lost.length > 0) {
    recordState = 'lost';
    finding = 'error';
    const ids = judged.lost.map((c) => c.keyId).join(', ');
    const rotations = judged.lost.map((c) => parseMarker(c.displayName)?.rotationId ?? '?').join(', ');
    const d = diagnosisOf('rotation-state-lost');
    findingDiagnosis = {
      ...d,
      cause: `Rotation state lost: credential(s) ${ids} carry this service's marker for this connection (rotation ${rotations}) but no Key Vault record exists (deleted and purged, or another vault). Whether the connection uses them cannot be told, so nothing is removed or rotated.`,
      nextStep: d.nextStep
        .replace('<connectionId>', connection.id)
        .replace('<appId>', app.appId)
        .replace('<keyId>', judged.lost[0]?.keyId ?? ''),
    };
  }

  return done({
    ...(recordState ? { recordState } : {}),
    ...(recordState === 'lost' ? { lostKeyIds: judged.lost.map((c) => c.keyId) } : {}),
    finding,
    credentialSource: credential?.source ?? 'unknown',
    credential,
    secretExpiresAt: credential?.endDateTime ?? undefined,
    diagnosis: findingDiagnosis,
    needsNewSecret,
    secretRejected,
    pending,
    verifiedSecret,
    orphanKeyIds: orphans.map((c) => c.keyId),
    previousKeyIds,
    record,
  });
}
