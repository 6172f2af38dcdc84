/**
 * Conversion of a client-secret connection to workload identity federation, its revert, and the
 * removal of the secret it left behind. Phases live in Key Vault (`ConversionStateStore`), so a
 * run that dies anywhere resumes where it stopped:
 *
 *   started   recorded before the connection is changed
 *   converted the connection uses workload identity federation (issuer and subject from Azure DevOps)
 *   verified  TestConnection succeeded with the federated credential; the old secret is kept
 *   completed the old secret removed from the app after the retention period (and, for Azure
 *             DevOps' own conversion, after its revert window)
 *   failed / reverted  the connection is back on its secret
 *
 * Two paths:
 * - `azure-devops`: Azure DevOps' own conversion (`PUT …?operation=ConvertAuthenticationScheme` with
 *   scheme `WorkloadIdentityFederation`, as Microsoft's conversion script does) for connections it
 *   created (Automatic) that one project uses; Azure DevOps adds the federated credential to its
 *   app and keeps the secret for seven days. "The conversion might take a few minutes" (Learn): the
 *   answer may still show the secret with `operationStatus` InProgress, so the connection is read
 *   again (bounded, with backoff) until it uses workload identity federation or reports Failed,
 *   and only then verified. The revert deadline is recorded (Azure DevOps' own, and never less
 *   than seven days from the moment the conversion was seen done) and the old secret is never
 *   removed before it. A failed verification is undone with Azure DevOps' revert (the same
 *   operation with scheme `ServicePrincipal`). If Azure DevOps refuses its conversion to a
 *   service principal or managed identity (whether it does is not settled by a public source), the
 *   connection is left as it is and the report says how to convert it.
 * - `federated-credential`: every other connection whose app this service owns. The connection is
 *   updated to `WorkloadIdentityFederation` (Manual, no secret); Azure DevOps answers with the
 *   issuer and subject it expects, and the federated credential with exactly those is added to the
 *   app through Graph. The old secret stays in Key Vault and on the app: a failed verification puts
 *   it back into the connection and removes the federated credential.
 *
 * Invariants kept: a failed conversion leaves the connection working on its secret; no old
 * credential is removed before the conversion is verified, and only credentials this service
 * created, recorded as in use, or expired are removed; one operation per connection at a time (the
 * rotation lock); no secret value in anything returned or logged.
 *
 * Needs: Azure DevOps service connection Administrator; Graph `Application.ReadWrite.OwnedBy` with
 * the identity an owner of the app (path `federated-credential` and the clean-up); Key Vault Secrets
 * Officer.
 */
import { ServiceError } from '../errors';
import { errorMessage, redactor } from '../telemetry';
import {
  federatedCredentialName,
  federationOf,
  isWorkloadIdentity,
  revertDeadlineOf,
  toAzureDevOpsConversionBody,
  toAzureDevOpsRevertBody,
  toSecretBody,
  toWorkloadIdentityBody,
  CONVERT_OPERATION,
  TOKEN_EXCHANGE_AUDIENCE,
} from './federation';
import type {
  ApplicationInfo,
  ConversionPath,
  ConversionRecord,
  ConversionStateStore,
  FederatedCredentialsClient,
  ServiceConnection,
} from './ports';
import {
  assertEntitled,
  classify,
  recordBinding,
  EngineFailure,
  type ConnectionTarget,
  type EngineDeps,
  type EngineResult,
  type RotationSettings,
} from './rotation';
import { parseMarker } from './transform';

const HOUR_MS = 3600 * 1000;
/** Azure DevOps keeps the old secret so the conversion can be reverted for seven days (Learn). */
export const REVERT_WINDOW_MS = 7 * 24 * HOUR_MS;
/** Polling of a conversion Azure DevOps answered as still in progress. */
const CONVERSION_POLL_INITIAL_MS = 5_000;
const CONVERSION_POLL_MAX_DELAY_MS = 60_000;
const CONVERSION_POLL_BUDGET_MS = 15 * 60_000;

/** Where Azure DevOps' own conversion stands, from the connection as read. */
function conversionState(connection: ServiceConnection): 'done' | 'in-progress' | 'failed' {
  const state = (connection.operationStatus?.state ?? '').toLowerCase();
  const message = (connection.operationStatus?.statusMessage ?? '').toLowerCase();
  if (state === 'failed') return 'failed';
  if (state === 'inprogress' || message.includes('converting')) return 'in-progress';
  // Ready on the secret scheme right after the request: not converted yet.
  return isWorkloadIdentity(connection) ? 'done' : 'in-progress';
}

/** Azure DevOps refused its own conversion because the caller is not a user (wording not public). */
function refusedForNonUser(err: unknown): boolean {
  return (
    err instanceof ServiceError &&
    err.status === 400 &&
    /not supported for (a )?(service principal|managed identit|non-user)/i.test(err.message)
  );
}

export interface ConversionTarget extends ConnectionTarget {
  path: ConversionPath;
}

interface Ctx {
  target: ConnectionTarget;
  deps: EngineDeps;
  settings: RotationSettings;
  result: EngineResult;
  conversions: ConversionStateStore;
}

function fail(code: ConstructorParameters<typeof EngineFailure>[0], message: string): EngineFailure {
  return new EngineFailure(code, message);
}

async function withLock(
  target: ConnectionTarget,
  deps: EngineDeps,
  settings: RotationSettings,
  result: EngineResult,
  during: string,
  body: () => Promise<void>,
): Promise<EngineResult> {
  const lease = await deps.locks.tryAcquire(`connection-${target.connectionId}`, settings.lockSeconds ?? 60);
  if (!lease) {
    result.outcome = 'skipped';
    result.error = {
      code: 'lock-held',
      message: 'Another operation on this connection is in progress.',
      transient: true,
    };
    return result;
  }
  try {
    await body();
    result.outcome = 'succeeded';
  } catch (err) {
    const failure = classify(err, during);
    result.error = failure.toError();
    result.outcome = 'failed';
    deps.log.warn(`${during} failed`, {
      connectionId: target.connectionId,
      code: failure.code,
      message: result.error.message,
    });
  } finally {
    await lease.release().catch(() => undefined);
  }
  return result;
}

async function read(ctx: Ctx): Promise<ServiceConnection> {
  const { target, deps } = ctx;
  const connection = await deps.devops
    .getConnection(target.organizationUrl, target.project, target.connectionId)
    .catch((err: unknown) => {
      throw classify(err, 'reading the connection');
    });
  if (!connection) throw fail('connection-not-found', 'The connection no longer exists.');
  return connection;
}

async function readApp(ctx: Ctx, connection: ServiceConnection): Promise<ApplicationInfo> {
  const appId = connection.authorization.parameters['serviceprincipalid'] ?? undefined;
  if (!appId) throw fail('not-convertible', 'The connection names no service principal.');
  const app = await ctx.deps.graph.getApplicationByAppId(appId).catch((err: unknown) => {
    throw classify(err, 'reading the app registration');
  });
  if (!app) throw fail('app-missing', `No app registration with client id ${appId} exists.`);
  return app;
}

function requireFederation(deps: EngineDeps): FederatedCredentialsClient {
  if (!deps.federation)
    throw fail('not-configured', 'No Graph client for federated identity credentials is configured.');
  return deps.federation;
}

async function save(ctx: Ctx, record: ConversionRecord): Promise<ConversionRecord> {
  const saved = await ctx.conversions.putConversion(record).catch((err: unknown) => {
    throw classify(err, 'writing the conversion state to Key Vault');
  });
  ctx.result.conversion = saved;
  return saved;
}

/**
 * Waits (with the verification backoff: a new federated credential takes seconds to be honoured)
 * until TestConnection succeeds and the connection reads back ready. Returns the last problem when
 * it never does.
 */
async function verify(ctx: Ctx, connection: ServiceConnection): Promise<string | undefined> {
  const { target, deps, settings } = ctx;
  const attempts = settings.verifyAttempts ?? 8;
  let delay = settings.verifyInitialDelayMs ?? 2000;
  let lastProblem = 'not tried';
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    // The connection as it is now: TestConnection sends the parameters as read.
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
    if (!test.ok) lastProblem = `TestConnection answered ${test.statusCode}: ${test.errorMessage}`;
    else {
      if (reread?.isReady) {
        ctx.result.steps.push(`verified: TestConnection and isReady (attempt ${attempt})`);
        return undefined;
      }
      lastProblem = `the connection still reads isReady=${String(reread?.isReady)}`;
    }
    if (attempt < attempts) {
      await deps.clock.sleep(delay);
      delay = Math.min(delay * 2, settings.verifyMaxDelayMs ?? 30_000);
    }
  }
  return redactor.redact(lastProblem);
}

/**
 * Reads the connection again (backoff from 5 s to 60 s, at most 15 minutes in all, on the engine's
 * clock) until Azure DevOps' own conversion is done or failed. Failed: the record says so and the
 * connection stays on its secret. Still running when the budget is spent: a transient failure,
 * and the next run resumes polling from the `started` record without asking again.
 */
async function awaitConversion(
  ctx: Ctx,
  answer: ServiceConnection,
  record: ConversionRecord,
): Promise<ServiceConnection> {
  const { deps, settings } = ctx;
  const budget = settings.conversionPollBudgetMs ?? CONVERSION_POLL_BUDGET_MS;
  let delay = settings.conversionPollInitialDelayMs ?? CONVERSION_POLL_INITIAL_MS;
  let waited = 0;
  let polls = 0;
  let connection = answer;
  for (;;) {
    const state = conversionState(connection);
    if (state === 'done') {
      if (polls > 0)
        ctx.result.steps.push(
          `Azure DevOps finished the conversion (${polls} read(s), ${Math.round(waited / 1000)} s)`,
        );
      return connection;
    }
    if (state === 'failed') {
      const why = redactor.redact(connection.operationStatus?.statusMessage ?? 'no message').slice(0, 400);
      await save(ctx, { ...record, phase: 'failed', failedAt: deps.clock.now().toISOString(), note: why });
      throw fail(
        'conversion-failed',
        `Azure DevOps reports the conversion failed (${why}); the connection stays on its secret.`,
      );
    }
    if (waited >= budget)
      throw new EngineFailure(
        'conversion-failed',
        `Azure DevOps' conversion is still in progress after ${Math.round(waited / 1000)} s; the next run checks it again (nothing is verified or removed until it is done).`,
        true,
      );
    const step = Math.min(delay, budget - waited);
    await deps.clock.sleep(step);
    waited += step;
    delay = Math.min(delay * 2, CONVERSION_POLL_MAX_DELAY_MS);
    polls += 1;
    connection = await read(ctx);
  }
}

/**
 * The engine's own entitlement check (`assertEntitled`); the rotation record, its evidence, is read
 * only when the plan's entitlement does not cover the app.
 */
async function requireEntitled(ctx: Ctx, connection: ServiceConnection, appId: string): Promise<void> {
  const planned = ctx.target.entitlement;
  const record =
    planned && planned.appId.toLowerCase() === appId.toLowerCase()
      ? undefined
      : await ctx.deps.store.getRecord(ctx.target.connectionId).catch((err: unknown) => {
          throw classify(err, 'reading the rotation state from Key Vault');
        });
  await assertEntitled(ctx.target, connection, appId, record, ctx.deps);
}

/** The verified Key Vault secret of the connection, when its credential still exists on the app. */
async function fallbackSecret(
  ctx: Ctx,
  app: ApplicationInfo,
): Promise<{ value: string; keyIds: string[] } | undefined> {
  const record = await ctx.deps.store.getRecord(ctx.target.connectionId).catch((err: unknown) => {
    throw classify(err, 'reading the rotation state from Key Vault');
  });
  if (
    !record ||
    record.appId.toLowerCase() !== app.appId.toLowerCase() ||
    (record.phase !== 'verified' && record.phase !== 'completed') ||
    !app.passwordCredentials.some((c) => c.keyId === record.keyId)
  )
    return undefined;
  const value = await ctx.deps.store.getSecretValue(ctx.target.connectionId);
  if (!value) return undefined;
  redactor.register(value);
  return { value, keyIds: [record.keyId, ...(record.phase === 'verified' ? record.previousKeyIds : [])] };
}

/** Adds the federated credential Azure DevOps expects (unless the app already has it). */
async function ensureFederatedCredential(
  ctx: Ctx,
  app: ApplicationInfo,
  record: ConversionRecord,
  connection: ServiceConnection,
): Promise<ConversionRecord> {
  const connectionName = connection.name;
  const federation = requireFederation(ctx.deps);
  if (!record.issuer || !record.subject)
    throw fail(
      'conversion-failed',
      'Azure DevOps did not say which federated credential it expects (no workloadIdentityFederationIssuer/Subject in its answer).',
    );
  const existing = await federation.listFederatedCredentials(app.id).catch((err: unknown) => {
    throw classify(err, 'listing the federated credentials');
  });
  const match = existing.find((f) => f.issuer === record.issuer && f.subject === record.subject);
  if (match) {
    ctx.result.steps.push(`the app already has the federated credential '${match.name}'`);
    return record;
  }
  // Invariant 8: the federated credential only for a connection entitled to this app, and only to
  // the app the conversion began with (a connection edited to name another app since gets nothing).
  if (record.appId.toLowerCase() !== app.appId.toLowerCase())
    throw fail(
      'not-entitled',
      `The conversion began for app ${record.appId}, but the connection now names app ${app.appId}; nothing was added.`,
    );
  await requireEntitled(ctx, connection, app.appId);
  const name = federatedCredentialName(ctx.target.connectionId);
  // Our own credential with other values (the connection was converted before): replaced.
  const stale = existing.find((f) => f.name.toLowerCase() === name.toLowerCase());
  if (stale) await federation.removeFederatedCredential(app.id, stale.id);
  const created = await federation
    .addFederatedCredential(app.id, {
      name,
      issuer: record.issuer,
      subject: record.subject,
      audiences: [TOKEN_EXCHANGE_AUDIENCE],
      description: `sc-remediator: Azure DevOps service connection '${connectionName}' (${ctx.target.connectionId})`,
    })
    .catch((err: unknown) => {
      throw new EngineFailure(
        err instanceof ServiceError && err.status === 403 ? 'permission-denied' : 'conversion-failed',
        `adding the federated credential: ${errorMessage(err)}`,
        false,
        err,
      );
    });
  ctx.result.steps.push(`added federated credential '${created.name}' (issuer ${record.issuer}) to the app`);
  return save(ctx, {
    ...record,
    federatedCredentialIds: [...new Set([...record.federatedCredentialIds, created.id])],
  });
}

/**
 * Puts the connection back on its secret after a failed conversion (or on request): Azure DevOps'
 * revert for its own conversion, else the Key Vault secret written back and the federated
 * credentials this service added removed. Throws when that is not possible.
 */
async function backToSecret(
  ctx: Ctx,
  connection: ServiceConnection,
  app: ApplicationInfo,
  record: ConversionRecord | undefined,
  why: string,
): Promise<ConversionRecord | undefined> {
  const { deps, target } = ctx;
  const now = deps.clock.now();
  const deadline = revertDeadlineOf(connection) ?? record?.revertDeadline;
  let restored: ServiceConnection;
  if (record?.path !== 'federated-credential' && deadline && Date.parse(deadline) > now.getTime()) {
    restored = await deps.devops
      .updateConnection(target.organizationUrl, toAzureDevOpsRevertBody(connection), CONVERT_OPERATION)
      .catch((err: unknown) => {
        throw classify(err, "reverting with Azure DevOps' own revert");
      });
    ctx.result.steps.push(`reverted with Azure DevOps' own revert (open until ${deadline})`);
  } else if (record?.path === 'federated-credential') {
    const secret = await fallbackSecret(ctx, app);
    if (!secret)
      throw fail(
        'revert-window-closed',
        'The connection cannot be put back on its secret: Key Vault holds no verified secret whose credential still exists on the app (removed after the retention period).',
      );
    restored = await deps.devops
      .updateConnection(target.organizationUrl, toSecretBody(connection, secret.value))
      .catch((err: unknown) => {
        throw classify(err, 'putting the secret back into the connection');
      });
    ctx.result.steps.push(
      'put the secret kept in Key Vault back into the connection (ServicePrincipal, Manual)',
    );
    const federation = requireFederation(deps);
    for (const id of record.federatedCredentialIds) {
      await federation.removeFederatedCredential(app.id, id).catch((err: unknown) => {
        throw classify(err, 'removing the federated credential');
      });
      ctx.result.steps.push(`removed federated credential ${id}`);
    }
  } else {
    throw fail(
      'revert-window-closed',
      deadline
        ? `Azure DevOps' revert window closed on ${deadline}; the connection can only get a new secret (rotate it after switching it back by hand).`
        : "The connection was not converted by this service or by Azure DevOps' conversion tool: there is nothing to revert to.",
    );
  }
  const problem = await verify(ctx, restored);
  if (problem) throw fail('verification-failed', `Back on the secret, but it does not work: ${problem}`);
  if (!record) return undefined;
  const at = deps.clock.now().toISOString();
  return save(ctx, {
    ...record,
    federatedCredentialIds: record.path === 'federated-credential' ? [] : record.federatedCredentialIds,
    ...(why === 'revert'
      ? { phase: 'reverted' as const, revertedAt: at, note: 'reverted on request' }
      : { phase: 'failed' as const, failedAt: at, note: redactor.redact(why).slice(0, 400) }),
  });
}

/** After the retention period (and the revert window), removes the secret the conversion superseded. */
async function cleanUp(ctx: Ctx, record: ConversionRecord): Promise<ConversionRecord> {
  const { deps, settings, result } = ctx;
  const now = deps.clock.now();
  const verifiedMs = Date.parse(record.verifiedAt ?? record.convertedAt ?? record.startedAt);
  // Azure DevOps' conversion keeps the old secret for its 7-day revert: never removed before that,
  // even for a record that lacks the deadline (counted from the conversion, or its start).
  const deadlineMs = record.revertDeadline
    ? Date.parse(record.revertDeadline)
    : record.path === 'azure-devops'
      ? Date.parse(record.convertedAt ?? record.startedAt) + REVERT_WINDOW_MS
      : 0;
  const dueMs = Math.max(verifiedMs + settings.oldSecretRetentionHours * HOUR_MS, deadlineMs || 0);
  if (now.getTime() < dueMs) {
    result.cleanupDueAt = new Date(dueMs).toISOString();
    result.steps.push(
      `old secret kept until ${result.cleanupDueAt} (retention${record.path === 'azure-devops' ? " and Azure DevOps' revert window" : ''})`,
    );
    return record;
  }
  const app = await deps.graph.getApplicationByAppId(record.appId).catch((err: unknown) => {
    throw classify(err, 'reading the app registration');
  });
  if (app)
    for (const credential of app.passwordCredentials) {
      const ours =
        parseMarker(credential.displayName)?.connectionId.toLowerCase() ===
        ctx.target.connectionId.toLowerCase();
      const previous = record.previousKeyIds.includes(credential.keyId);
      const expired = credential.endDateTime !== null && Date.parse(credential.endDateTime) <= now.getTime();
      if (!ours && !previous && !expired) continue;
      await deps.graph.removePassword(app.id, credential.keyId).catch((err: unknown) => {
        throw classify(err, 'removing the superseded secret');
      });
      result.removedKeyIds.push(credential.keyId);
      result.steps.push(
        `removed credential ${credential.keyId} (${ours ? 'created by this service' : previous ? 'used by the connection before the conversion' : 'expired'})`,
      );
    }
  return save(ctx, { ...record, phase: 'completed', completedAt: now.toISOString() });
}

/**
 * Converts (or resumes converting) one connection to workload identity federation, verifies it,
 * and removes the old secret once the retention period has passed.
 *
 * Fixes: a connection that depends on a client secret at all. Needs: see the file header.
 */
export async function convertConnection(
  target: ConversionTarget,
  deps: EngineDeps,
  settings: RotationSettings,
): Promise<EngineResult> {
  const result: EngineResult = { outcome: 'failed', action: 'convert-to-wif', removedKeyIds: [], steps: [] };
  const conversions = deps.conversions;
  if (!conversions) {
    result.error = {
      code: 'not-configured',
      message: 'No conversion state store is configured.',
      transient: false,
    };
    return result;
  }
  const ctx: Ctx = { target, deps, settings, result, conversions };
  return withLock(target, deps, settings, result, 'conversion', async () => {
    let connection = await read(ctx);
    const app = await readApp(ctx, connection);
    let record = await conversions.getConversion(target.connectionId).catch((err: unknown) => {
      throw classify(err, 'reading the conversion state from Key Vault');
    });
    const now = () => deps.clock.now().toISOString();

    if (!isWorkloadIdentity(connection)) {
      if (connection.authorization.scheme.toLowerCase() !== 'serviceprincipal')
        throw fail(
          'not-convertible',
          `The connection authenticates with ${connection.authorization.scheme}.`,
        );
      // Invariant 8: either path gives the connection a federated credential of its app.
      await requireEntitled(ctx, connection, app.appId);
      const inFlight =
        target.path === 'azure-devops' &&
        record?.phase === 'started' &&
        record.path === 'azure-devops' &&
        conversionState(connection) === 'in-progress' &&
        (connection.operationStatus?.state ?? '').toLowerCase() === 'inprogress';
      let previousKeyIds = target.previousKeyIds;
      if (inFlight && record) {
        result.steps.push('resumed: Azure DevOps is still converting the connection');
        connection = await awaitConversion(ctx, connection, record);
      } else if (target.path === 'federated-credential') {
        // The secret to fall back on must be known: Azure DevOps never returns the stored one.
        const secret = await fallbackSecret(ctx, app);
        if (!secret)
          throw fail(
            'conversion-failed',
            'Key Vault holds no verified secret of this connection to fall back on; the connection is rotated first.',
          );
        previousKeyIds = [...new Set([...secret.keyIds, ...previousKeyIds])];
      }
      if (!inFlight) {
        const started = await save(ctx, {
          connectionId: target.connectionId,
          organization: target.organizationUrl,
          appId: app.appId,
          path: target.path,
          phase: 'started',
          originalCreationMode: connection.data['creationMode'] ?? 'Manual',
          previousKeyIds,
          federatedCredentialIds: [],
          startedAt: now(),
        });
        record = started;
        result.steps.push('recorded the conversion in Key Vault (phase started)');
        await recordBinding(target, app.appId, deps, result);
        const updated =
          target.path === 'azure-devops'
            ? await deps.devops
                .updateConnection(
                  target.organizationUrl,
                  toAzureDevOpsConversionBody(connection),
                  CONVERT_OPERATION,
                )
                .catch(async (err: unknown) => {
                  if (refusedForNonUser(err)) {
                    await save(ctx, {
                      ...started,
                      phase: 'failed',
                      failedAt: now(),
                      note: 'Azure DevOps does not run its conversion for a service principal or managed identity',
                    });
                    throw new EngineFailure(
                      'not-convertible',
                      `Azure DevOps refused its own conversion to this service's identity (${errorMessage(err)}). Nothing was changed; the connection keeps its secret. Convert it as a user (Project settings → Service connections → the connection → Convert), or make this service an owner of the app and convert it through the federated-credential path.`,
                      false,
                      err,
                    );
                  }
                  throw new EngineFailure(
                    'conversion-failed',
                    `Azure DevOps refused the conversion: ${errorMessage(err)}`,
                    false,
                    err,
                  );
                })
            : await deps.devops
                .updateConnection(target.organizationUrl, toWorkloadIdentityBody(connection))
                .catch((err: unknown) => {
                  throw new EngineFailure(
                    'update-rejected',
                    `Azure DevOps rejected the update: ${errorMessage(err)}`,
                    false,
                    err,
                  );
                });
        result.steps.push(
          target.path === 'azure-devops'
            ? 'converted with operation=ConvertAuthenticationScheme (Azure DevOps added the federated credential to its app)'
            : 'updated the connection to WorkloadIdentityFederation (creationMode Manual, no secret)',
        );
        connection = target.path === 'azure-devops' ? await awaitConversion(ctx, updated, started) : updated;
      }
    } else if (!record || !['started', 'converted', 'verified'].includes(record.phase)) {
      result.steps.push('the connection already uses workload identity federation');
      return;
    } else {
      result.steps.push(`resumed conversion at phase ${record.phase}`);
    }
    if (!record) throw fail('conversion-failed', 'The conversion has no record in Key Vault.');

    if (record.phase === 'started') {
      const federation = federationOf(connection) ?? federationOf(await read(ctx));
      // The revert window: Azure DevOps' own deadline (`revertSchemeDeadline`); when its answer has
      // none, seven days from now (the conversion was just seen done), so the old secret is never
      // removed while Azure DevOps may still revert to it.
      const deadline =
        revertDeadlineOf(connection) ??
        (record.path === 'azure-devops'
          ? new Date(deps.clock.now().getTime() + REVERT_WINDOW_MS).toISOString()
          : undefined);
      record = await save(ctx, {
        ...record,
        phase: 'converted',
        convertedAt: now(),
        ...(federation ?? {}),
        ...(deadline ? { revertDeadline: deadline } : {}),
      });
      if (federation)
        result.steps.push(
          `Azure DevOps expects issuer ${federation.issuer} and subject ${federation.subject}`,
        );
    }

    if (record.phase === 'converted') {
      let problem: string | undefined;
      try {
        if (record.path === 'federated-credential')
          record = await ensureFederatedCredential(ctx, app, record, connection);
        problem = await verify(ctx, connection);
      } catch (err) {
        problem = classify(err, 'conversion').message;
      }
      if (problem) {
        // A failed conversion leaves the connection working on its secret.
        const failed = await backToSecret(ctx, connection, app, record, problem);
        throw new EngineFailure(
          'conversion-failed',
          `The conversion did not verify (${problem}); the connection was put back on its secret${failed ? ` (phase ${failed.phase})` : ''}.`,
        );
      }
      record = await save(ctx, { ...record, phase: 'verified', verifiedAt: now() });
    }

    if (record.phase === 'verified') record = await cleanUp(ctx, record);
    result.conversion = record;
  });
}

/**
 * Reverts a conversion to the connection's secret while that is still possible: Azure DevOps' own
 * revert while its revert window (`revertSchemeDeadline`, seven days) is open, or, for a conversion
 * this service made, until the old secret is removed after the retention period.
 */
export async function revertConversion(
  target: ConnectionTarget,
  deps: EngineDeps,
  settings: RotationSettings,
): Promise<EngineResult> {
  const result: EngineResult = { outcome: 'failed', action: 'convert-to-wif', removedKeyIds: [], steps: [] };
  const conversions = deps.conversions;
  if (!conversions) {
    result.error = {
      code: 'not-configured',
      message: 'No conversion state store is configured.',
      transient: false,
    };
    return result;
  }
  const ctx: Ctx = { target, deps, settings, result, conversions };
  return withLock(target, deps, settings, result, 'revert', async () => {
    const connection = await read(ctx);
    if (!isWorkloadIdentity(connection))
      throw fail(
        'not-converted',
        `The connection uses ${connection.authorization.scheme}: there is nothing to revert.`,
      );
    const app = await readApp(ctx, connection);
    const record = await conversions.getConversion(target.connectionId).catch((err: unknown) => {
      throw classify(err, 'reading the conversion state from Key Vault');
    });
    const usable = record && ['started', 'converted', 'verified'].includes(record.phase) ? record : undefined;
    const reverted = await backToSecret(ctx, connection, app, usable, 'revert');
    if (reverted) result.conversion = reverted;
  });
}
