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
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { PreconditionError, ServiceError } from '../errors';
import type { Logger } from '../telemetry';
import { errorMessage, redactor } from '../telemetry';
import { bindingMatches, NOT_BOUND, recordProves } from './entitlement';
import type {
  ApplicationInfo,
  AzureDevOpsClient,
  Binding,
  BindingHow,
  BindingStore,
  Clock,
  ConversionRecord,
  ConversionStateStore,
  FederatedCredentialsClient,
  GraphApplicationsClient,
  Lease,
  LockProvider,
  RecordState,
  PasswordCredentialInfo,
  PasswordPolicy,
  RotationPhase,
  RetirementLedger,
  RotationIntent,
  RotationRecord,
  SecretStateStore,
  ServiceConnection,
  TokenProbe,
} from './ports';
import { judgeRemovals, type AppUsage } from './census';
import { addPasswordRefusal } from './diagnosis';
import { judgeMarked } from './orphans';
import { credentialMarker, isMarkedFor, parseMarker, toManualUpdateBody } from './transform';

export interface EngineDeps {
  devops: AzureDevOpsClient;
  graph: GraphApplicationsClient;
  store: SecretStateStore;
  locks: LockProvider;
  tokenProbe: TokenProbe;
  clock: Clock;
  log: Logger;
  /** Federated identity credentials through Graph (conversion to workload identity federation). */
  federation?: FederatedCredentialsClient;
  /** Conversion state in Key Vault; without it nothing is converted. */
  conversions?: ConversionStateStore;
  /** The run ledger, where retired connections are recorded; without it nothing is retired. */
  retirements?: RetirementLedger;
  /** Which connections are entitled to which app (Key Vault); without it only evidence entitles. */
  bindings?: BindingStore;
}

export interface RotationSettings {
  secretLifetimeDays: number;
  oldSecretRetentionHours: number;
  /** Lease length; the lock provider renews it while held. */
  lockSeconds?: number;
  /** Verification attempts (a new secret takes seconds to replicate) and their backoff. */
  verifyAttempts?: number;
  verifyInitialDelayMs?: number;
  verifyMaxDelayMs?: number;
  /** Polling of Azure DevOps' own conversion while it is InProgress (defaults 5 s, 15 min). */
  conversionPollInitialDelayMs?: number;
  conversionPollBudgetMs?: number;
}

export interface ConnectionTarget {
  organizationUrl: string;
  /** A project the connection is shared with (name or id): GET and TestConnection go through it. */
  project: string;
  connectionId: string;
  /**
   * Credentials the connection is known to use now, as assessment found them: removed after the
   * new one is verified and the retention period has passed. Empty when that is not known for sure.
   */
  previousKeyIds: string[];
  /** The app's password policy when assessment already read it (saves a Graph call). */
  passwordPolicy?: PasswordPolicy;
  /**
   * The rotation record the caller planned from (`null`: it found none). Read again under the lock:
   * when another run changed it meanwhile (the caller waited for the lock, or got it only after the
   * other run released it), the plan is outdated and nothing is done (`state-changed`, skipped) —
   * otherwise a run that planned before another run's rotation would rotate a second time.
   * Undefined: not checked (an explicit "rotate now").
   */
  plannedFrom?: Pick<RotationRecord, 'rotationId' | 'phase'> | null;
  /**
   * The app as the caller read it for the plan, and when (engine clock, ms). With `plannedFrom`, a
   * rotation uses it instead of reading the app again under the lock while it is younger than half
   * the lease (see `reusableApp`); otherwise the app is read again.
   */
  app?: { info: ApplicationInfo; readAtMs: number };
  /**
   * Who else names the connection's app (the run's usage census, DESIGN invariant 9). Without it,
   * superseded credentials that are still valid are kept and the rotation stays `verified` for a
   * run that has one.
   */
  usage?: AppUsage;
  /**
   * The plan's finding that the connection is entitled to this app (DESIGN invariant 8). Checked
   * again right before a credential is given: it counts only while the connection still names the
   * same app; otherwise (or when absent) the engine looks for evidence itself and refuses without.
   */
  entitlement?: { appId: string; how: BindingHow; toRecord?: Binding };
}

export type EngineErrorCode =
  | 'lock-held'
  | 'lock-lost'
  | 'state-changed'
  | 'connection-not-found'
  | 'not-a-secret-connection'
  | 'app-missing'
  | 'blocked-by-policy'
  | 'permission-denied'
  | 'key-vault-write-failed'
  | 'update-rejected'
  | 'verification-failed'
  | 'not-configured'
  | 'not-convertible'
  | 'conversion-failed'
  | 'not-converted'
  | 'revert-window-closed'
  | 'not-retirable'
  | 'state-lost'
  | 'not-entitled'
  | 'service-error';

export interface EngineResult {
  outcome: 'succeeded' | 'failed' | 'skipped';
  action: 'rotate-secret' | 'repair' | 'convert-to-wif' | 'delete';
  /** Phase reached (Key Vault record), when a rotation ran. */
  phase?: RotationPhase;
  rotationId?: string;
  keyId?: string;
  secretExpiresAt?: string;
  removedKeyIds: string[];
  /** When the superseded credentials may be removed (retention), if still pending. */
  cleanupDueAt?: string;
  /** Superseded credentials kept because another connection may still use them (invariant 9). */
  keptKeyIds?: string[];
  /** Why they were kept, for the report's `cleanup`. */
  cleanup?: string;
  /** What was done, in order, for the report. */
  steps: string[];
  error?: EngineError;
  /** A conversion (or revert): its record as it stands. */
  conversion?: ConversionRecord;
  /** A retirement: when the definition was recorded and the connection deleted. */
  retired?: { recordedAt: string; deletedAt?: string };
  /** The connection's binding to its app was recorded in Key Vault (proved by TestConnection). */
  bindingRecorded?: boolean;
}

export interface EngineError {
  code: EngineErrorCode;
  message: string;
  transient: boolean;
  /** The service, HTTP status and service error code behind it, for diagnosis. */
  service?: string;
  status?: number;
  serviceCode?: string;
}

export class EngineFailure extends Error {
  override cause?: ServiceError;

  constructor(
    readonly code: EngineErrorCode,
    message: string,
    readonly transient = false,
    cause?: unknown,
  ) {
    super(message);
    if (cause instanceof ServiceError) this.cause = cause;
  }

  toError(): EngineError {
    const error: EngineError = {
      code: this.code,
      message: redactor.redact(this.message),
      transient: this.transient,
    };
    if (this.cause) {
      error.service = this.cause.service;
      if (this.cause.status !== undefined) error.status = this.cause.status;
      if (this.cause.code !== undefined) error.serviceCode = this.cause.code;
    }
    return error;
  }
}

const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;

function newRotationId(): string {
  return randomBytes(4).toString('hex');
}

function isExpired(credential: PasswordCredentialInfo, now: Date): boolean {
  return credential.endDateTime !== null && Date.parse(credential.endDateTime) <= now.getTime();
}

function appIdOf(connection: ServiceConnection): string | undefined {
  return connection.authorization.parameters['serviceprincipalid'] ?? undefined;
}

/**
 * Defence in depth for DESIGN invariant 8, right before a connection is given a new credential of
 * `appId`: the plan's entitlement when it is for that same app; else a verified rotation record of
 * that app (`record`, read under the lock); else a recorded binding for it. Refuses otherwise: a
 * stale plan (the connection was edited to name another app since) or a caller that skipped the
 * plan's gate gets nothing. A binding that cannot be read counts as none.
 */
export async function assertEntitled(
  target: ConnectionTarget,
  connection: ServiceConnection,
  appId: string,
  record: RotationRecord | undefined,
  deps: EngineDeps,
): Promise<void> {
  if (target.entitlement && target.entitlement.appId.toLowerCase() === appId.toLowerCase()) return;
  if (recordProves(record, target.connectionId, appId)) return;
  const binding = await deps.bindings?.getBinding(target.connectionId).catch(() => undefined);
  const tenantId = connection.authorization.parameters['tenantid'] ?? undefined;
  if (
    bindingMatches(binding, {
      organizationUrl: target.organizationUrl,
      connectionId: target.connectionId,
      appId,
      ...(tenantId ? { tenantId } : {}),
    })
  )
    return;
  throw new EngineFailure(
    'not-entitled',
    `The connection is ${NOT_BOUND} (app ${appId}); nothing was given to it.`,
  );
}

/**
 * Records the binding the plan proved by TestConnection, once a credential for the connection exists
 * (so a rotation refused by Graph or Key Vault writes nothing), at most once per result. A failed write is logged: the proof holds for this run, and
 * the next run proves it again.
 */
export async function recordBinding(
  target: ConnectionTarget,
  appId: string,
  deps: EngineDeps,
  result: EngineResult,
): Promise<void> {
  const binding = target.entitlement?.toRecord;
  if (
    !binding ||
    binding.appId.toLowerCase() !== appId.toLowerCase() ||
    !deps.bindings ||
    result.bindingRecorded
  )
    return;
  try {
    await deps.bindings.putBinding(binding);
    result.bindingRecorded = true;
    result.steps.push(`recorded the connection's binding to app ${binding.appId} (${binding.how})`);
  } catch (err) {
    deps.log.warn('Could not record the connection binding in Key Vault', {
      connectionId: binding.connectionId,
      error: errorMessage(err),
    });
  }
}

/** Turns an adapter error into the engine's vocabulary; everything it says is redacted. */
export function classify(err: unknown, during: string): EngineFailure {
  if (err instanceof EngineFailure) return err;
  const message = `${during}: ${errorMessage(err)}`;
  if (err instanceof PreconditionError) return new EngineFailure('service-error', message);
  if (err instanceof ServiceError) {
    if (err.status === 403) return new EngineFailure('permission-denied', message, false, err);
    return new EngineFailure('service-error', message, err.transient, err);
  }
  return new EngineFailure('service-error', message);
}

/**
 * Runs (or resumes) one rotation of a connection's client secret.
 *
 * Fixes: an expired or expiring secret, or a connection failed because its secret no longer works.
 * Needs: Azure DevOps service connection Administrator (organization level) for the PUT; Graph
 * `Application.ReadWrite.OwnedBy` with the identity an owner of the app; Key Vault Secrets Officer.
 */
export async function rotateConnection(
  target: ConnectionTarget,
  deps: EngineDeps,
  settings: RotationSettings,
): Promise<EngineResult> {
  const result: EngineResult = { outcome: 'failed', action: 'rotate-secret', removedKeyIds: [], steps: [] };
  const lease = await deps.locks.tryAcquire(`connection-${target.connectionId}`, settings.lockSeconds ?? 60);
  if (!lease) {
    result.outcome = 'skipped';
    result.error = {
      code: 'lock-held',
      message: 'Another rotation of this connection is in progress.',
      transient: true,
    };
    return result;
  }
  try {
    await holdingLease(lease, () => runRotation(target, deps, settings, result));
    result.outcome = 'succeeded';
  } catch (err) {
    const failure = classify(err, 'rotation');
    result.error = failure.toError();
    if (failure.code === 'state-changed') {
      // Not a failure: another run did (or is doing) the work; the next run sees its result.
      result.outcome = 'skipped';
      return result;
    }
    result.outcome = 'failed';
    deps.log.warn('Rotation failed', {
      connectionId: target.connectionId,
      phase: result.phase,
      code: failure.code,
      message: result.error.message,
    });
  } finally {
    await lease.release().catch(() => undefined);
  }
  return result;
}

async function readConnection(target: ConnectionTarget, deps: EngineDeps): Promise<ServiceConnection> {
  const connection = await deps.devops
    .getConnection(target.organizationUrl, target.project, target.connectionId)
    .catch((err: unknown) => {
      throw classify(err, 'reading the connection');
    });
  if (!connection) throw new EngineFailure('connection-not-found', 'The connection no longer exists.');
  if (connection.authorization.scheme !== 'ServicePrincipal')
    throw new EngineFailure(
      'not-a-secret-connection',
      `The connection authenticates with ${connection.authorization.scheme}, not a client secret.`,
    );
  return connection;
}

async function readApp(appId: string, deps: EngineDeps): Promise<ApplicationInfo> {
  const app = await deps.graph.getApplicationByAppId(appId).catch((err: unknown) => {
    throw classify(err, 'reading the app registration');
  });
  if (!app) throw new EngineFailure('app-missing', `No app registration with client id ${appId} exists.`);
  return app;
}

async function runRotation(
  target: ConnectionTarget,
  deps: EngineDeps,
  settings: RotationSettings,
  result: EngineResult,
): Promise<void> {
  const connection = await readConnection(target, deps);
  const appId = appIdOf(connection);
  if (!appId)
    throw new EngineFailure('not-a-secret-connection', 'The connection names no service principal.');
  const app = reusableApp(target, appId, deps, settings) ?? (await readApp(appId, deps));
  // Missing state is unknown state: a soft-deleted record comes back before anything is decided,
  // and an intent noted before an earlier addPassword is the evidence about orphans.
  // Without a credential marked for the connection a soft-deleted record matters only to the intent
  // write, which Key Vault then refuses (409): that case is handled there, saving a read here.
  const marked = app.passwordCredentials.some((c) => isMarkedFor(c.displayName, target.connectionId));
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
    app.passwordCredentials.some((c) => c.keyId === existing.keyId);
  if (resumable) {
    record = existing;
    const stored = await deps.store.getSecretValue(target.connectionId);
    if (!stored)
      throw new EngineFailure('service-error', 'Key Vault holds the rotation record but no value.');
    value = stored;
    redactor.register(value);
    result.steps.push(`resumed rotation ${record.rotationId} at phase ${record.phase}`);
  } else {
    // Invariant 8: a new credential only for a connection entitled to this app.
    await assertEntitled(target, connection, app.appId, existing, deps);
    await removeOrphans(target.connectionId, app, existing, intent, deps, settings, result);
    ({ record, value } = await createCredential(
      target,
      connection,
      app,
      existing,
      intent,
      deps,
      settings,
      result,
    ));
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
    await awaitToken(connection, record, value, deps, settings, result);
    tokenConfirmed = true;
    record = await applyToConnection(target, connection, record, value, deps, result);
  }
  if (record.phase === 'applied') {
    record = await verify(target, connection, record, value, deps, settings, result, tokenConfirmed);
  }
  if (record.phase === 'verified') {
    record = await cleanUp(target.connectionId, record, deps, settings, result, app, target.usage);
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
function reusableApp(
  target: ConnectionTarget,
  appId: string,
  deps: EngineDeps,
  settings: RotationSettings,
): ApplicationInfo | undefined {
  const read = target.app;
  if (!read || target.plannedFrom === undefined || read.info.appId.toLowerCase() !== appId.toLowerCase())
    return undefined;
  const age = deps.clock.now().getTime() - read.readAtMs;
  return age >= 0 && age <= (settings.lockSeconds ?? 60) * 500 ? read.info : undefined;
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

/**
 * Removes credentials marked for this connection whose value provably never reached Key Vault
 * (orphans.ts: the rotation that added them noted its intent and no record stores it). A live marked
 * credential with no record accounting for it is a lost state: nothing is removed or created.
 */
async function removeOrphans(
  connectionId: string,
  app: ApplicationInfo,
  existing: RotationRecord | undefined,
  intent: RotationIntent | undefined,
  deps: EngineDeps,
  settings: RotationSettings,
  result: EngineResult,
): Promise<void> {
  const judged = judgeMarked(app.passwordCredentials, connectionId, {
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
    await deps.graph.removePassword(app.id, credential.keyId).catch((err: unknown) => {
      throw classify(err, 'removing an orphaned credential');
    });
    result.removedKeyIds.push(credential.keyId);
    result.steps.push(
      `removed orphaned credential ${credential.keyId} (rotation ${parseMarker(credential.displayName)?.rotationId ?? '?'} never reached Key Vault)`,
    );
  }
}

async function createCredential(
  target: ConnectionTarget,
  connection: ServiceConnection,
  app: ApplicationInfo,
  existing: RotationRecord | undefined,
  intent: RotationIntent | undefined,
  deps: EngineDeps,
  settings: RotationSettings,
  result: EngineResult,
): Promise<{ record: RotationRecord; value: string }> {
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
  // An intent noted earlier whose credential does not exist (its addPassword was refused, or its
  // orphan was just removed) is used again: the evidence stands, and no write is repeated.
  const unusedIntent =
    intent &&
    intent.rotationId !== existing?.rotationId &&
    !app.passwordCredentials.some(
      (c) =>
        !result.removedKeyIds.includes(c.keyId) &&
        isMarkedFor(c.displayName, target.connectionId) &&
        parseMarker(c.displayName)?.rotationId === intent.rotationId,
    );
  const rotationId = unusedIntent ? intent.rotationId : newRotationId();

  // What the connection uses now: the credential we recorded last time, else what assessment knew.
  const previousKeyIds = new Set<string>(target.previousKeyIds);
  if (existing && existing.appId === app.appId) previousKeyIds.add(existing.keyId);

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
    // The lock lost before Key Vault got the value (`lock-lost`): not written over another holder's record.
    const lockLost = err instanceof EngineFailure && err.code === 'lock-lost';
    // Compensate: a credential whose value we could not keep must not stay on the app.
    await deps.graph.removePassword(app.id, created.keyId).then(
      () =>
        result.steps.push(
          `removed credential ${created.keyId} again: ${lockLost ? 'the lock was lost before Key Vault got its value' : 'Key Vault refused the write'}`,
        ),
      (removeErr: unknown) =>
        deps.log.error(
          'Could not remove a credential after Key Vault refused its value; the next run removes it by marker',
          {
            keyId: created.keyId,
            error: errorMessage(removeErr),
          },
        ),
    );
    if (lockLost) throw err;
    throw new EngineFailure(
      'key-vault-write-failed',
      `Key Vault refused the new secret: ${errorMessage(err)}`,
      true,
      err,
    );
  }
}

async function applyToConnection(
  target: ConnectionTarget,
  connection: ServiceConnection,
  record: RotationRecord,
  value: string,
  deps: EngineDeps,
  result: EngineResult,
): Promise<RotationRecord> {
  const body = toManualUpdateBody(connection, value);
  await assertLeaseHeld('updating the connection');
  await deps.devops.updateConnection(target.organizationUrl, body).catch((err: unknown) => {
    if (err instanceof ServiceError && err.status === 400)
      throw new EngineFailure(
        'update-rejected',
        `Azure DevOps rejected the update: ${errorMessage(err)}`,
        false,
        err,
      );
    throw classify(err, 'updating the connection');
  });
  result.steps.push(
    connection.data['creationMode'] === 'Automatic'
      ? 'updated the connection with the new secret (creationMode Automatic → Manual)'
      : 'updated the connection with the new secret',
  );
  const applied = await deps.store.updateRecord({
    ...record,
    phase: 'applied',
    appliedAt: deps.clock.now().toISOString(),
  });
  result.phase = 'applied';
  return applied;
}

/**
 * Waits (with the verification backoff) until the new secret obtains a token from Entra ID, so no
 * connection is given a secret that does not work yet. The connection is left untouched when it
 * never does; the next run resumes from phase `created`.
 */
async function awaitToken(
  connection: ServiceConnection,
  record: RotationRecord,
  value: string,
  deps: EngineDeps,
  settings: RotationSettings,
  result: EngineResult,
): Promise<void> {
  const tenantId = connection.authorization.parameters['tenantid'] ?? '';
  const attempts = settings.verifyAttempts ?? 8;
  let delay = settings.verifyInitialDelayMs ?? 2000;
  let lastProblem = 'not tried';
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    const token = await deps.tokenProbe.tryClientSecret(tenantId, record.appId, value);
    if (token.ok) {
      if (attempt > 1) result.steps.push(`the new secret gets a token (attempt ${attempt})`);
      return;
    }
    lastProblem = token.aadsts ? `AADSTS${token.aadsts}` : token.message;
    if (attempt < attempts) {
      await deps.clock.sleep(delay);
      delay = Math.min(delay * 2, settings.verifyMaxDelayMs ?? 30_000);
    }
  }
  throw new EngineFailure(
    'verification-failed',
    `The new secret gets no token after ${attempts} attempts (${redactor.redact(lastProblem)}); the connection was left unchanged.`,
    true,
  );
}

/**
 * Verification: the secret gets a token, TestConnection succeeds, the connection reads back ready.
 * `tokenConfirmed`: this run already saw the secret get a token (no need to ask again).
 */
async function verify(
  target: ConnectionTarget,
  connection: ServiceConnection,
  record: RotationRecord,
  value: string,
  deps: EngineDeps,
  settings: RotationSettings,
  result: EngineResult,
  tokenConfirmed = false,
): Promise<RotationRecord> {
  const tenantId = connection.authorization.parameters['tenantid'] ?? '';
  const attempts = settings.verifyAttempts ?? 8;
  let delay = settings.verifyInitialDelayMs ?? 2000;
  let lastProblem = 'not tried';
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    const token = tokenConfirmed
      ? ({ ok: true } as const)
      : await deps.tokenProbe.tryClientSecret(tenantId, record.appId, value);
    if (!token.ok) {
      lastProblem = `the new secret gets no token yet (${token.aadsts ? `AADSTS${token.aadsts}` : token.message})`;
    } else {
      // Read back first and test that: TestConnection sends the parameters as read, so it must be
      // the connection as it is now (an `accesstoken` the update removed must not be sent).
      const reread = await deps.devops.getConnection(
        target.organizationUrl,
        target.project,
        target.connectionId,
      );
      const test = await deps.devops.testConnection(
        target.organizationUrl,
        target.project,
        reread ?? connection,
      );
      if (!test.ok) {
        lastProblem = `TestConnection answered ${test.statusCode}: ${test.errorMessage}`;
      } else {
        if (reread?.isReady) {
          result.steps.push(`verified: token, TestConnection and isReady (attempt ${attempt})`);
          await assertLeaseHeld('recording the verification in Key Vault');
          const verified = await deps.store.updateRecord({
            ...record,
            phase: 'verified',
            verifiedAt: deps.clock.now().toISOString(),
          });
          result.phase = 'verified';
          return verified;
        }
        lastProblem = `the connection still reads isReady=${String(reread?.isReady)}`;
      }
    }
    if (attempt < attempts) {
      await deps.clock.sleep(delay);
      delay = Math.min(delay * 2, settings.verifyMaxDelayMs ?? 30_000);
    }
  }
  // Invariant 2: nothing is removed; the next run resumes verification from the `applied` phase.
  throw new EngineFailure(
    'verification-failed',
    `Verification failed after ${attempts} attempts: ${redactor.redact(lastProblem)}`,
    true,
  );
}

/**
 * Removes superseded credentials once the retention period has passed (invariant 3 decides which,
 * invariant 9 whether): an expired one always; a live one only when the usage census shows no other
 * connection naming the app that may still hold it. What is kept is said in `result.cleanup`.
 * Without a census the record stays `verified`, so a run that has one finishes the clean-up.
 * `current`: the app as this rotation found it under the lock (seconds ago), less what it removed
 * since; read again when not given.
 */
async function cleanUp(
  connectionId: string,
  record: RotationRecord,
  deps: EngineDeps,
  settings: RotationSettings,
  result: EngineResult,
  current?: ApplicationInfo,
  usage?: AppUsage,
): Promise<RotationRecord> {
  const now = deps.clock.now();
  const dueAt =
    Date.parse(record.verifiedAt ?? record.createdAt) + settings.oldSecretRetentionHours * HOUR_MS;
  if (now.getTime() < dueAt) {
    result.cleanupDueAt = new Date(dueAt).toISOString();
    result.steps.push(`old credentials kept until ${result.cleanupDueAt} (retention)`);
    return record;
  }
  const app = current ?? (await readApp(record.appId, deps));
  const judge = await judgeRemovals(usage, record.appId, deps.store);
  const kept: string[] = [];
  const reasons = new Set<string>();
  for (const credential of app.passwordCredentials) {
    if (credential.keyId === record.keyId || result.removedKeyIds.includes(credential.keyId)) continue;
    const marker = parseMarker(credential.displayName);
    const ours = marker?.connectionId === connectionId;
    const recordedPrevious = record.previousKeyIds.includes(credential.keyId);
    const expired = isExpired(credential, now);
    if (!ours && !recordedPrevious && !expired) continue;
    // An expired credential works for no one; a live one only goes when no one else may hold it.
    const keep = expired ? undefined : judge.keepReason(credential.keyId);
    if (keep) {
      kept.push(credential.keyId);
      reasons.add(keep);
      result.steps.push(`kept credential ${credential.keyId}: ${keep}`);
      continue;
    }
    await assertLeaseHeld('removing a superseded credential');
    await deps.graph.removePassword(app.id, credential.keyId).catch((err: unknown) => {
      throw classify(err, 'removing a superseded credential');
    });
    result.removedKeyIds.push(credential.keyId);
    const why = expired
      ? 'expired'
      : ours
        ? 'superseded by this service'
        : 'previously used by the connection';
    result.steps.push(`removed credential ${credential.keyId} (${why})`);
  }
  if (kept.length > 0) {
    result.keptKeyIds = kept;
    result.cleanup = `kept ${kept.join(', ')} until ${judge.noCensus ? 'a run with a usage census' : 'it expires'}: ${[...reasons].join('; ')}`;
    // No census: stay verified, so the next full run (which has one) finishes the clean-up.
    if (judge.noCensus) return record;
  }
  await assertLeaseHeld('recording the completed rotation in Key Vault');
  const completed = await deps.store.updateRecord({
    ...record,
    phase: 'completed',
    completedAt: now.toISOString(),
  });
  result.phase = 'completed';
  return completed;
}

/** Exposed for the run loop: the phase a record leaves a connection in. */
export function pendingPhase(record: RotationRecord | undefined): RotationPhase | undefined {
  return record && record.phase !== 'completed' ? record.phase : undefined;
}

/**
 * Repairs a connection without a new secret: drops a null/empty `accesstoken` (the UI bug that
 * breaks connections) and, when Key Vault holds a verified secret this service set and the app
 * still has it, writes that secret back into a connection that lost it.
 *
 * Fixes: "Failed to get Azure DevOps Service access token, cache value is invalid"; a connection
 * edited into a broken state after a rotation. Needs: service connection Administrator; Key Vault
 * Secrets User (read) when re-applying.
 */
export async function repairConnection(target: ConnectionTarget, deps: EngineDeps): Promise<EngineResult> {
  const result: EngineResult = { outcome: 'failed', action: 'repair', removedKeyIds: [], steps: [] };
  return underConnectionLock(target, deps, result, 'repair', async () => {
    const connection = await readConnection(target, deps);
    const appId = appIdOf(connection);
    const record = await deps.store.getRecord(target.connectionId);
    let value: string | undefined;
    // Invariant 8: the secret goes back only into the connection it was verified in, and only while
    // that connection still names the same app (the record is its proof of entitlement).
    if (
      record &&
      appId &&
      record.appId === appId &&
      (record.phase === 'verified' || record.phase === 'completed')
    ) {
      const app = await readApp(appId, deps);
      const credential = app.passwordCredentials.find((c) => c.keyId === record.keyId);
      if (credential && !isExpired(credential, deps.clock.now())) {
        value = await deps.store.getSecretValue(target.connectionId);
        redactor.register(value);
      }
    }
    const hadAccessToken = 'accesstoken' in connection.authorization.parameters;
    await assertLeaseHeld('updating the connection');
    await deps.devops
      .updateConnection(target.organizationUrl, toManualUpdateBody(connection, value))
      .catch((err: unknown) => {
        if (err instanceof ServiceError && err.status === 400)
          throw new EngineFailure(
            'update-rejected',
            `Azure DevOps rejected the update: ${errorMessage(err)}`,
          );
        throw classify(err, 'updating the connection');
      });
    if (hadAccessToken) result.steps.push('removed the invalid accesstoken parameter');
    if (value) {
      result.keyId = record?.keyId;
      result.secretExpiresAt = record?.expiresAt;
      result.steps.push('re-applied the verified secret kept in Key Vault');
    }
    // The connection as it is now (TestConnection sends the parameters as read).
    const reread = await deps.devops.getConnection(
      target.organizationUrl,
      target.project,
      target.connectionId,
    );
    const test = await deps.devops.testConnection(
      target.organizationUrl,
      target.project,
      reread ?? connection,
    );
    if (!test.ok || !reread?.isReady)
      throw new EngineFailure(
        'verification-failed',
        `After the repair the connection is still not working: ${test.ok ? `isReady=${String(reread?.isReady)}` : `TestConnection ${test.statusCode}: ${test.errorMessage}`}`,
      );
    result.steps.push('verified: TestConnection and isReady');
  });
}

/**
 * Removes credentials marked for this connection that no rotation record accounts for: what a crash
 * between Graph and Key Vault leaves behind (invariant 4). Their values were never stored anywhere,
 * so nothing can be using them. Needs: Graph Application.ReadWrite.OwnedBy (owner of the app).
 */
export async function removeOrphanCredentials(
  target: ConnectionTarget,
  orphanKeyIds: string[],
  deps: EngineDeps,
): Promise<EngineResult> {
  const result: EngineResult = { outcome: 'failed', action: 'repair', removedKeyIds: [], steps: [] };
  return underConnectionLock(target, deps, result, 'removing orphaned credentials', async () => {
    const connection = await readConnection(target, deps);
    const appId = appIdOf(connection);
    if (!appId)
      throw new EngineFailure('not-a-secret-connection', 'The connection names no service principal.');
    const app = await readApp(appId, deps);
    let record = await deps.store.getRecord(target.connectionId);
    let intent = record?.intent;
    if (!record) {
      const found = await resolveMissingRecord(target.connectionId, deps, true);
      record = found.record;
      intent = found.missing?.intent ?? record?.intent;
    }
    // Judged again under the lock: only credentials still proven orphans are removed.
    const { orphans } = judgeMarked(app.passwordCredentials, target.connectionId, {
      record,
      intent,
      now: deps.clock.now(),
    });
    for (const credential of orphans) {
      if (!orphanKeyIds.includes(credential.keyId)) continue;
      // Re-checked under the lock above (judgeMarked); the lease is checked before each removal.
      await assertLeaseHeld('removing an orphaned credential');
      await deps.graph.removePassword(app.id, credential.keyId);
      result.removedKeyIds.push(credential.keyId);
      result.steps.push(`removed orphaned credential ${credential.keyId}`);
    }
  });
}

/**
 * Recovers a connection's soft-deleted rotation record (DESIGN invariant 10): the next assessment
 * decides with it. Needs: Key Vault secrets/recover (Key Vault Secrets Officer).
 */
export async function recoverRotationRecord(
  target: ConnectionTarget,
  deps: EngineDeps,
): Promise<EngineResult> {
  const result: EngineResult = { outcome: 'failed', action: 'repair', removedKeyIds: [], steps: [] };
  return underConnectionLock(target, deps, result, 'recovering the rotation record', async () => {
    const record = await deps.store.recoverRecord(target.connectionId);
    result.steps.push(
      record
        ? `recovered the soft-deleted rotation record (rotation ${record.rotationId}, phase ${record.phase})`
        : 'recovered the soft-deleted rotation intent',
    );
  });
}

/**
 * Runs `body` under the connection's lease lock: skipped with `lock-held` when another holder has
 * it, `succeeded` when `body` returns, `failed` with the classified (redacted) error when it throws.
 */
async function underConnectionLock(
  target: ConnectionTarget,
  deps: EngineDeps,
  result: EngineResult,
  during: string,
  body: () => Promise<void>,
): Promise<EngineResult> {
  const lease = await deps.locks.tryAcquire(`connection-${target.connectionId}`, 60);
  if (!lease) {
    result.outcome = 'skipped';
    result.error = {
      code: 'lock-held',
      message: 'Another rotation of this connection is in progress.',
      transient: true,
    };
    return result;
  }
  try {
    await holdingLease(lease, body);
    result.outcome = 'succeeded';
  } catch (err) {
    result.error = classify(err, during).toError();
  } finally {
    await lease.release().catch(() => undefined);
  }
  return result;
}

const heldLease = new AsyncLocalStorage<Lease>();

/** Runs `body` as the holder of the connection's `lease`, which `assertLeaseHeld` checks. */
export function holdingLease<T>(lease: Lease, body: () => Promise<T>): Promise<T> {
  return heldLease.run(lease, body);
}

/**
 * Called before each write phase (a credential added or removed, a Key Vault write, a PUT or
 * DELETE of the connection): stops with `lock-lost` when the connection's lease is no longer this
 * operation's (broken, or expired during a stall and maybe taken by another run). Nothing more is
 * written, so two holders never write one connection; what was written stays in Key Vault and the
 * next run resumes from it. `lease`: the one `holdingLease` runs under, unless given.
 */
export async function assertLeaseHeld(before: string, lease = heldLease.getStore()): Promise<void> {
  if (!lease) throw new EngineFailure('lock-lost', `Not holding the connection's lock before ${before}.`);
  if (!(await lease.stillHeld()))
    throw new EngineFailure(
      'lock-lost',
      `The lock on this connection was lost before ${before} (broken, or expired and maybe taken by another run): nothing more was written; the next run resumes from the state kept in Key Vault.`,
      true,
    );
}
