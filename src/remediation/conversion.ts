/**
 * Conversion of a client-secret or certificate connection to workload identity federation, its
 * revert, and the removal of the secret (or certificate) it left behind. Phases live in Key Vault (`ConversionStateStore`), so a
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
 *   A certificate connection (`spnCertificate`) always takes this path (federation.ts says why): its
 *   fallback is the Key Vault certificate of a verified certificate rotation (PEM with its key, the
 *   certificate still on the app's keyCredentials), put back with `spnCertificate`; the record
 *   notes `credential: certificate`, so the way back never puts a secret into it (nor a certificate
 *   into a secret connection), and the clean-up removes superseded keyCredentials, not passwords.
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
  assertLeaseHeld,
  classify,
  pollUntil,
  underConnectionLock,
  notConfigured,
  EngineFailure,
  type ConnectionTarget,
  type EngineDeps,
  type EngineResult,
  type RotationSettings,
} from './engine';
import { readConnection } from './reads';
import { recordBinding } from './entitlementCheck';
import {
  federationOf,
  isWorkloadIdentity,
  revertDeadlineOf,
  toAzureDevOpsConversionBody,
  toWorkloadIdentityBody,
  CONVERT_OPERATION,
} from './federation';
import { CERTIFICATE_KIND, credentialKindOf } from './credentialKind';
import {
  backToSecret,
  cleanUp,
  ensureFederatedCredential,
  fail,
  fallbackCredential,
  readConnectionApp,
  recordedKind,
  requireEntitled,
  save,
  verify,
  REVERT_WINDOW_MS,
  type ConversionContext,
} from './conversionSteps';
import type { ConversionPath, ConversionRecord, ServiceConnection } from './ports';

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

interface ConversionTarget extends ConnectionTarget {
  path: ConversionPath;
}

/** Runs a conversion or revert under the connection's lock; `not-configured` without a conversion store. */
async function underConversionLock(
  target: ConnectionTarget,
  deps: EngineDeps,
  settings: RotationSettings,
  during: string,
  body: (ctx: ConversionContext) => Promise<void>,
): Promise<EngineResult> {
  const conversions = deps.conversions;
  if (!conversions) return notConfigured('convert-to-wif', 'No conversion state store is configured.');
  const operation = { action: 'convert-to-wif', during } as const;
  return underConnectionLock(target, deps, settings, operation, (ctx) => body({ ...ctx, conversions }));
}

/**
 * Reads the connection again (backoff from 5 s to 60 s, at most 15 minutes in all, on the engine's
 * clock) until Azure DevOps' own conversion is done or failed. Failed: the record says so and the
 * connection stays on its secret. Still running when the budget is spent: a transient failure,
 * and the next run resumes polling from the `started` record without asking again.
 */
async function awaitConversion(
  ctx: ConversionContext,
  answer: ServiceConnection,
  record: ConversionRecord,
): Promise<ServiceConnection> {
  const { deps, settings } = ctx;
  const backoff = {
    initialDelayMs: settings.conversionPollInitialDelayMs ?? CONVERSION_POLL_INITIAL_MS,
    maxDelayMs: CONVERSION_POLL_MAX_DELAY_MS,
    budgetMs: settings.conversionPollBudgetMs ?? CONVERSION_POLL_BUDGET_MS,
  };
  const outcome = await pollUntil(deps.clock, backoff, async (attempt) => {
    const connection = attempt === 1 ? answer : await readConnection(ctx);
    const state = conversionState(connection);
    if (state === 'done') return { done: true, value: connection };
    if (state === 'failed') {
      const why = redactor.redact(connection.operationStatus?.statusMessage ?? 'no message').slice(0, 400);
      await save(ctx, { ...record, phase: 'failed', failedAt: deps.clock.now().toISOString(), note: why });
      throw fail(
        'conversion-failed',
        `Azure DevOps reports the conversion failed (${why}); the connection stays on its secret.`,
      );
    }
    return { done: false, problem: 'still in progress' };
  });
  if (!outcome.done)
    throw new EngineFailure(
      'conversion-failed',
      `Azure DevOps' conversion is still in progress after ${Math.round(outcome.waitedMs / 1000)} s; the next run checks it again (nothing is verified or removed until it is done).`,
      true,
    );
  const polls = outcome.attempt - 1;
  if (polls > 0)
    ctx.result.steps.push(
      `Azure DevOps finished the conversion (${polls} read(s), ${Math.round(outcome.waitedMs / 1000)} s)`,
    );
  return outcome.value;
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
  return underConversionLock(target, deps, settings, 'conversion', async (ctx) => {
    const { result, conversions } = ctx;
    let connection = await readConnection(ctx);
    const app = await readConnectionApp(ctx, connection);
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
      const kind = credentialKindOf(connection);
      if (kind === CERTIFICATE_KIND && target.path !== 'federated-credential')
        throw fail(
          'not-convertible',
          "Azure DevOps' own conversion is not used for a certificate connection (it is documented for connections it created with a secret); convert it through the federated-credential path.",
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
        // The credential to fall back on must be known: Azure DevOps never returns the stored one.
        const fallback = await fallbackCredential(ctx, app, kind);
        if (!fallback)
          throw fail(
            'conversion-failed',
            `Key Vault holds no verified ${kind.noun} of this connection to fall back on; the connection is rotated first.`,
          );
        previousKeyIds = [...new Set([...fallback.keyIds, ...previousKeyIds])];
      }
      if (!inFlight) {
        const started = await save(ctx, {
          connectionId: target.connectionId,
          organization: target.organizationUrl,
          appId: app.appId,
          path: target.path,
          phase: 'started',
          originalCreationMode: connection.data['creationMode'] ?? 'Manual',
          ...(kind === CERTIFICATE_KIND ? { credential: 'certificate' as const } : {}),
          previousKeyIds,
          federatedCredentialIds: [],
          startedAt: now(),
        });
        record = started;
        result.steps.push('recorded the conversion in Key Vault (phase started)');
        await recordBinding(target, app.appId, deps, result);
        await assertLeaseHeld('updating the connection');
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
      const federation = federationOf(connection) ?? federationOf(await readConnection(ctx));
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
          `The conversion did not verify (${problem}); the connection was put back on its ${recordedKind(record).noun}${failed ? ` (phase ${failed.phase})` : ''}.`,
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
  return underConversionLock(target, deps, settings, 'revert', async (ctx) => {
    const { result, conversions } = ctx;
    const connection = await readConnection(ctx);
    if (!isWorkloadIdentity(connection))
      throw fail(
        'not-converted',
        `The connection uses ${connection.authorization.scheme}: there is nothing to revert.`,
      );
    const app = await readConnectionApp(ctx, connection);
    const record = await conversions.getConversion(target.connectionId).catch((err: unknown) => {
      throw classify(err, 'reading the conversion state from Key Vault');
    });
    const usable = record && ['started', 'converted', 'verified'].includes(record.phase) ? record : undefined;
    const reverted = await backToSecret(ctx, connection, app, usable, 'revert');
    if (reverted) result.conversion = reverted;
  });
}
