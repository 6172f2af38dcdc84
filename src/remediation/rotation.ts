/**
 * The rotation state machine for one connection:
 *
 *   lock → created (new credential through Graph, its value in Key Vault first)
 *        → applied (once the new secret gets a token: connection PUT with creationMode Manual and it)
 *        → verified (the secret gets a token, TestConnection succeeds, isReady reads back true)
 *        → completed (superseded credentials removed once the retention period has passed)
 *
 * The phase lives in Key Vault tags, so a run that dies anywhere resumes where it stopped. Each
 * invariant of DESIGN is kept here: value in Key Vault before anywhere else (1); nothing removed
 * before verification (2); only marked, recorded-previous or expired credentials removed (3);
 * orphans from a crash between Graph and Key Vault found by marker and removed (4); a lease lock per
 * connection (5); no secret value in anything this returns or logs (6, values go through `redactor`).
 */
import { redactor } from '../telemetry';
import {
  classify,
  underConnectionLock,
  DEFAULT_LOCK_SECONDS,
  EngineFailure,
  type ConnectionTarget,
  type EngineContext,
  type EngineResult,
  type RotationSettings,
} from './engine';
import { appIdOf, readApp, readSecretConnection } from './reads';
import { recordBinding, assertEntitled } from './entitlementCheck';
import { resolveMissingRecord } from './orphans';
import type { ApplicationInfo, RotationRecord } from './ports';
import { createCredential, removeOrphans } from './rotationCreate';
import { applyToConnection, awaitToken, verify } from './rotationApply';
import { cleanUp } from './rotationCleanup';
import { createCertificateCredential, readCertificatePem } from './rotationCertificate';
import { CERTIFICATE_KIND, credentialKindOf, type CredentialKind } from './credentialKind';
import { isMarkedFor } from './transform';

/**
 * One rotation: its connection, dependencies, settings and result, passed through every phase, and
 * the kind of credential it rotates (credentialKind.ts; a client secret when not said).
 */
export type RotationContext = EngineContext<RotationSettings> & { kind?: CredentialKind };

/**
 * Runs (or resumes) one rotation of a connection's client secret — or of its certificate, for a
 * certificate connection (`authenticationType: spnCertificate`, see rotationCertificate.ts).
 *
 * Fixes: an expired or expiring secret or certificate, or a connection failed because its secret
 * no longer works.
 * Needs: Azure DevOps service connection Administrator (organization level) for the PUT; Graph
 * `Application.ReadWrite.OwnedBy` with the identity an owner of the app; Key Vault Secrets Officer
 * (and Key Vault Certificates Officer for certificates).
 */
export async function rotateConnection(
  target: ConnectionTarget,
  deps: EngineContext['deps'],
  settings: RotationSettings,
): Promise<EngineResult> {
  return underConnectionLock(
    target,
    deps,
    settings,
    { action: 'rotate-secret', during: 'rotation' },
    runRotation,
  );
}

async function runRotation(engineCtx: RotationContext): Promise<void> {
  const { target, deps, result } = engineCtx;
  const connection = await readSecretConnection(engineCtx);
  const kind = credentialKindOf(connection);
  const ctx: RotationContext = { ...engineCtx, kind };
  if (kind === CERTIFICATE_KIND && !deps.certificates)
    throw new EngineFailure(
      'not-configured',
      'Key Vault certificates are not configured: certificate connections are not rotated.',
    );
  const appId = appIdOf(connection);
  if (!appId)
    throw new EngineFailure('not-a-secret-connection', 'The connection names no service principal.');
  const app = reusableApp(ctx, appId) ?? (await readApp(appId, deps));
  // Missing state is unknown state: a soft-deleted record comes back before anything is decided,
  // and an intent noted before an earlier addPassword is the evidence about orphans.
  // Without a credential marked for the connection a soft-deleted record matters only to the intent
  // write, which Key Vault then refuses (409): that case is handled there, saving a read here.
  const marked = kind.credentials(app).some((c) => isMarkedFor(c.displayName, target.connectionId));
  const state = await resolveMissingRecord(target.connectionId, deps, true, marked).catch((err: unknown) => {
    throw classify(err, 'reading the rotation state from Key Vault');
  });
  const existing = state.record;
  const intent = state.missing?.intent ?? existing?.intent;
  if (state.recovered) result.steps.push('recovered the soft-deleted rotation record from Key Vault');
  if (
    target.plannedFrom !== undefined &&
    (existing?.rotationId !== target.plannedFrom?.rotationId || existing?.phase !== target.plannedFrom?.phase)
  )
    throw new EngineFailure(
      'state-changed',
      'The rotation state changed while this run waited for the lock (another run worked on this connection); nothing was done, the next run sees the new state.',
      true,
    );

  let record: RotationRecord;
  let value: string;
  const resumable =
    existing &&
    existing.phase !== 'completed' &&
    existing.appId === appId &&
    (existing.certificate !== undefined) === (kind === CERTIFICATE_KIND) &&
    kind.credentials(app).some((c) => c.keyId === existing.keyId);
  if (resumable) {
    record = existing;
    const stored = existing.certificate
      ? await readCertificatePem(ctx, existing.certificate)
      : await deps.store.getSecretValue(target.connectionId);
    if (!stored)
      throw new EngineFailure('service-error', 'Key Vault holds the rotation record but no value.');
    value = stored;
    redactor.register(value);
    result.steps.push(`resumed rotation ${record.rotationId} at phase ${record.phase}`);
  } else {
    // Invariant 8: a new credential only for a connection entitled to this app.
    await assertEntitled(target, connection, app.appId, existing, deps);
    await removeOrphans(ctx, app, existing, intent);
    ({ record, value } =
      kind === CERTIFICATE_KIND
        ? await createCertificateCredential(ctx, connection, app, existing, intent)
        : await createCredential(ctx, connection, app, existing, intent));
    await recordBinding(target, app.appId, deps, result);
  }
  result.rotationId = record.rotationId;
  result.keyId = record.keyId;
  result.secretExpiresAt = record.expiresAt;
  result.phase = record.phase;

  let tokenConfirmed = false;
  if (record.phase === 'created') {
    // A new secret takes seconds to replicate. Written into the connection before it works, Azure
    // DevOps marks the connection failed on save (and pipelines fail meanwhile): wait for it first.
    await awaitToken(ctx, connection, record, value);
    tokenConfirmed = true;
    record = await applyToConnection(ctx, connection, record, value);
  }
  if (record.phase === 'applied') {
    record = await verify(ctx, connection, record, value, tokenConfirmed);
  }
  if (record.phase === 'verified') {
    record = await cleanUp(ctx, record, app);
  }
  result.phase = record.phase;
}

/**
 * The app the caller read for the plan, when a rotation may use it instead of reading it again under
 * the lock. Safe because:
 * - `plannedFrom` was checked under the lock: no run of this service has rotated the connection
 *   since the plan (every phase of a rotation changes the record);
 * - the read is younger than half the lease. A run that died holding the lock, maybe after adding a
 *   credential Key Vault never got (an orphan), keeps its lease for at least two thirds of its length
 *   after its last request (a lease is renewed every third), so had such a credential been added
 *   after the read, this run could not hold the lock yet;
 * - what a read misses is handled conservatively anyway: a credential added by anyone after it is
 *   never removed (invariant 3 holds for what the read saw), an orphan it missed keeps its marker
 *   and is removed by the next run (invariant 4).
 */
function reusableApp(ctx: RotationContext, appId: string): ApplicationInfo | undefined {
  const { target, deps, settings } = ctx;
  const read = target.app;
  if (!read || target.plannedFrom === undefined || read.info.appId.toLowerCase() !== appId.toLowerCase())
    return undefined;
  const age = deps.clock.now().getTime() - read.readAtMs;
  return age >= 0 && age <= (settings.lockSeconds ?? DEFAULT_LOCK_SECONDS) * 500 ? read.info : undefined;
}
