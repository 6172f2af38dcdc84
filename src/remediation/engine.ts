/**
 * What every operation on a connection shares: its dependencies (`EngineDeps`), settings, target
 * and result; the failure vocabulary and `classify`; the connection's lease lock
 * (`underConnectionLock`, `holdingLease`, `assertLeaseHeld`, DESIGN invariant 5); `pollUntil`, the
 * one backoff loop. Rotation, conversion, revert, retirement and repair are built on it (and on
 * reads.ts, the reads they share).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { PreconditionError, ServiceError } from '../errors';
import type { Logger } from '../telemetry';
import { errorMessage, redactor } from '../telemetry';
import type {
  ApplicationInfo,
  AzureDevOpsClient,
  Binding,
  BindingHow,
  BindingStore,
  CertificateVault,
  Clock,
  ConversionRecord,
  ConversionStateStore,
  FederatedCredentialsClient,
  GraphApplicationsClient,
  Lease,
  LockProvider,
  PasswordPolicy,
  RetirementLedger,
  RotationPhase,
  RotationRecord,
  SecretStateStore,
  TokenProbe,
} from './ports';
import type { AppUsage } from './census';
import type { TenantClients } from './tenants';

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
  /** Key Vault certificates; without it certificate connections are not rotated. */
  certificates?: CertificateVault;
  /** Graph in each other tenant (`ADDITIONAL_TENANT_IDS`), by lower-cased tenant id (tenants.ts). */
  tenants?: ReadonlyMap<string, TenantClients>;
}

export interface LockSettings {
  /** Lease length in seconds; default 60. */
  lockSeconds?: number;
}

/** The lease length when `lockSeconds` is not set. */
export const DEFAULT_LOCK_SECONDS = 60;

export interface RotationSettings extends LockSettings {
  secretLifetimeDays: number;
  oldSecretRetentionHours: number;
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

type EngineErrorCode =
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
 * One operation on one connection: what it works on, with what, and what it reports. Rotation and
 * conversion pass it through their steps instead of the five values one by one.
 */
export interface EngineContext<S extends LockSettings = RotationSettings> {
  target: ConnectionTarget;
  deps: EngineDeps;
  settings: S;
  result: EngineResult;
}

/** What an operation reports before it has done anything: `failed` until it says otherwise. */
function newResult(action: EngineResult['action']): EngineResult {
  return { outcome: 'failed', action, removedKeyIds: [], steps: [] };
}

/** The operation cannot run without a dependency that is not configured: `failed`, nothing done. */
export function notConfigured(action: EngineResult['action'], message: string): EngineResult {
  return { ...newResult(action), error: { code: 'not-configured', message, transient: false } };
}

/** What a caller that finds the lock taken is told (wording kept per operation: reports show it). */
const LOCK_HELD_MESSAGE: Record<EngineResult['action'], string> = {
  'rotate-secret': 'Another rotation of this connection is in progress.',
  repair: 'Another rotation of this connection is in progress.',
  'convert-to-wif': 'Another operation on this connection is in progress.',
  delete: 'Another operation on this connection is in progress.',
};

/**
 * An update of the connection that failed: `update-rejected` when Azure DevOps refused it (400,
 * with its reason), otherwise classified.
 */
export function rejectedUpdate(err: unknown): EngineFailure {
  if (err instanceof ServiceError && err.status === 400)
    return new EngineFailure(
      'update-rejected',
      `Azure DevOps rejected the update: ${errorMessage(err)}`,
      false,
      err,
    );
  return classify(err, 'updating the connection');
}

/**
 * Runs `body` (with the operation's context and a fresh result) under the connection's lease lock
 * (DESIGN invariant 5), for `settings.lockSeconds`
 * (default 60; the lock provider renews it while held): skipped with `lock-held` when another
 * holder has it; `succeeded` when `body` returns; when it throws, `failed` with the classified
 * (redacted) error, logged — or `skipped` for `state-changed` (another run did, or is doing, the
 * work: the next run sees its result). The lease is released in every case.
 */
export async function underConnectionLock<S extends LockSettings>(
  target: ConnectionTarget,
  deps: EngineDeps,
  settings: S,
  operation: { action: EngineResult['action']; during: string },
  body: (ctx: EngineContext<S>) => Promise<void>,
): Promise<EngineResult> {
  const { during } = operation;
  const result = newResult(operation.action);
  const lease = await deps.locks.tryAcquire(
    `connection-${target.connectionId}`,
    settings.lockSeconds ?? DEFAULT_LOCK_SECONDS,
  );
  if (!lease) {
    result.outcome = 'skipped';
    result.error = { code: 'lock-held', message: LOCK_HELD_MESSAGE[result.action], transient: true };
    return result;
  }
  try {
    await holdingLease(lease, () => body({ target, deps, settings, result }));
    result.outcome = 'succeeded';
  } catch (err) {
    const failure = classify(err, during);
    result.error = failure.toError();
    if (failure.code === 'state-changed') {
      result.outcome = 'skipped';
      return result;
    }
    result.outcome = 'failed';
    deps.log.warn(`${during.charAt(0).toUpperCase()}${during.slice(1)} failed`, {
      connectionId: target.connectionId,
      ...(result.phase ? { phase: result.phase } : {}),
      code: failure.code,
      message: result.error.message,
    });
  } finally {
    await lease.release().catch(() => undefined);
  }
  return result;
}

const heldLease = new AsyncLocalStorage<Lease>();

/** Runs `body` as the holder of the connection's `lease`, which `assertLeaseHeld` checks. */
function holdingLease<T>(lease: Lease, body: () => Promise<T>): Promise<T> {
  return heldLease.run(lease, body);
}

/**
 * Called before each write phase (a credential added or removed, a Key Vault write, a PUT or
 * DELETE of the connection): stops with `lock-lost` when the connection's lease is no longer this
 * operation's (broken, or expired during a stall and maybe taken by another run). Nothing more is
 * written, so two holders never write one connection; what was written stays in Key Vault and the
 * next run resumes from it. The lease is the one `holdingLease` runs under.
 */
export async function assertLeaseHeld(before: string): Promise<void> {
  const lease = heldLease.getStore();
  if (!lease) throw new EngineFailure('lock-lost', `Not holding the connection's lock before ${before}.`);
  if (!(await lease.stillHeld()))
    throw new EngineFailure(
      'lock-lost',
      `The lock on this connection was lost before ${before} (broken, or expired and maybe taken by another run): nothing more was written; the next run resumes from the state kept in Key Vault.`,
      true,
    );
}

/** How `pollUntil` waits between probes: doubling from `initialDelayMs` up to `maxDelayMs`. */
interface Backoff {
  initialDelayMs: number;
  maxDelayMs: number;
  /** At most this many probes (none when below 1). */
  attempts?: number;
  /** At most this long waited in all; the last wait is shortened to fit. */
  budgetMs?: number;
}

/** A probe's answer: done with a value, or not yet and why. */
type PollAnswer<T> = { done: true; value: T } | { done: false; problem: string };

type PollOutcome<T> =
  | { done: true; value: T; attempt: number; waitedMs: number }
  | { done: false; problem: string; attempts: number; waitedMs: number };

/**
 * Calls `probe` (with its 1-based attempt number) until it is done, sleeping on the engine's clock
 * between probes (tests use fake clocks, which is why no retry library's timers are used). Gives up
 * after `attempts` probes or once `budgetMs` has been waited, with the last problem. A probe that
 * throws ends the polling with its error.
 */
export async function pollUntil<T>(
  clock: Pick<Clock, 'sleep'>,
  backoff: Backoff,
  probe: (attempt: number) => Promise<PollAnswer<T>>,
): Promise<PollOutcome<T>> {
  let delay = backoff.initialDelayMs;
  let waitedMs = 0;
  let problem = 'not tried';
  if (backoff.attempts !== undefined && backoff.attempts < 1)
    return { done: false, problem, attempts: 0, waitedMs };
  for (let attempt = 1; ; attempt += 1) {
    const answer = await probe(attempt);
    if (answer.done) return { done: true, value: answer.value, attempt, waitedMs };
    problem = answer.problem;
    const left = backoff.budgetMs === undefined ? Infinity : backoff.budgetMs - waitedMs;
    if ((backoff.attempts !== undefined && attempt >= backoff.attempts) || left <= 0)
      return { done: false, problem, attempts: attempt, waitedMs };
    const wait = Math.min(delay, left);
    await clock.sleep(wait);
    waitedMs += wait;
    delay = Math.min(delay * 2, backoff.maxDelayMs);
  }
}

/** The verification backoff (a new secret or federated credential takes seconds to be honoured). */
export function verificationBackoff(settings: RotationSettings): Backoff {
  return {
    attempts: settings.verifyAttempts ?? 8,
    initialDelayMs: settings.verifyInitialDelayMs ?? 2000,
    maxDelayMs: settings.verifyMaxDelayMs ?? 30_000,
  };
}
