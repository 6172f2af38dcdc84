/**
 * The steps a conversion and its revert share (see conversion.ts for the state machine): the
 * conversion state written to Key Vault, verification, the federated credential added through
 * Graph, the way back to the secret (or certificate), and the removal of the superseded one.
 */
import { ServiceError } from '../errors';
import { errorMessage, redactor } from '../telemetry';
import {
  assertLeaseHeld,
  classify,
  pollUntil,
  verificationBackoff,
  EngineFailure,
  type EngineContext,
  type EngineDeps,
  type RotationSettings,
} from './engine';
import { appIdOf, notWorking, readApp, readBackAndTest } from './reads';
import { assertEntitled } from './entitlementCheck';
import { CERTIFICATE_KIND, SECRET_KIND, type CredentialKind } from './credentialKind';
import {
  federatedCredentialName,
  revertDeadlineOf,
  toAzureDevOpsRevertBody,
  toCertificateBody,
  toSecretBody,
  CONVERT_OPERATION,
  TOKEN_EXCHANGE_AUDIENCE,
} from './federation';
import type {
  ApplicationInfo,
  ConversionRecord,
  ConversionStateStore,
  FederatedCredentialsClient,
  ServiceConnection,
} from './ports';
import { readCertificatePem } from './rotationCertificate';
import { removeSuperseded } from './superseded';

const HOUR_MS = 3600 * 1000;
/** Azure DevOps keeps the old secret so the conversion can be reverted for seven days (Learn). */
export const REVERT_WINDOW_MS = 7 * 24 * HOUR_MS;

/** One conversion (or revert): the engine's context and the conversion state store. */
export interface ConversionContext extends EngineContext<RotationSettings> {
  conversions: ConversionStateStore;
}

export function fail(code: ConstructorParameters<typeof EngineFailure>[0], message: string): EngineFailure {
  return new EngineFailure(code, message);
}

/** The app the connection names; `not-convertible` when it names none. */
export async function readConnectionApp(
  ctx: ConversionContext,
  connection: ServiceConnection,
): Promise<ApplicationInfo> {
  const appId = appIdOf(connection);
  if (!appId) throw fail('not-convertible', 'The connection names no service principal.');
  return readApp(appId, ctx.deps);
}

function requireFederation(deps: EngineDeps): FederatedCredentialsClient {
  if (!deps.federation)
    throw fail('not-configured', 'No Graph client for federated identity credentials is configured.');
  return deps.federation;
}

export async function save(ctx: ConversionContext, record: ConversionRecord): Promise<ConversionRecord> {
  await assertLeaseHeld('writing the conversion state to Key Vault');
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
export async function verify(
  ctx: ConversionContext,
  connection: ServiceConnection,
): Promise<string | undefined> {
  const outcome = await pollUntil(ctx.deps.clock, verificationBackoff(ctx.settings), async () => {
    // The connection as it is now: TestConnection sends the parameters as read.
    const problem = notWorking(await readBackAndTest(ctx, connection));
    return problem ? { done: false, problem } : { done: true, value: undefined };
  });
  if (!outcome.done) return redactor.redact(outcome.problem);
  ctx.result.steps.push(`verified: TestConnection and isReady (attempt ${outcome.attempt})`);
  return undefined;
}

/**
 * The engine's own entitlement check (`assertEntitled`); the rotation record, its evidence, is read
 * only when the plan's entitlement does not cover the app.
 */
export async function requireEntitled(
  ctx: ConversionContext,
  connection: ServiceConnection,
  appId: string,
): Promise<void> {
  const planned = ctx.target.entitlement;
  const record =
    planned && planned.appId.toLowerCase() === appId.toLowerCase()
      ? undefined
      : await ctx.deps.store.getRecord(ctx.target.connectionId).catch((err: unknown) => {
          throw classify(err, 'reading the rotation state from Key Vault');
        });
  await assertEntitled(ctx.target, connection, appId, record, ctx.deps);
}

/** The kind of credential a conversion record says the connection held before (a secret when unsaid). */
export function recordedKind(record: Pick<ConversionRecord, 'credential'> | undefined): CredentialKind {
  return record?.credential === 'certificate' ? CERTIFICATE_KIND : SECRET_KIND;
}

/**
 * What the connection can be put back on: the Key Vault secret — for a certificate connection, the
 * Key Vault certificate (PEM with its key) — of a rotation of this connection that this service
 * verified, when that credential still exists on the app. Only of `kind`: a secret never goes into
 * a certificate connection, nor a certificate into a secret one.
 */
export async function fallbackCredential(
  ctx: ConversionContext,
  app: ApplicationInfo,
  kind: CredentialKind,
): Promise<{ value: string; keyIds: string[] } | undefined> {
  const record = await ctx.deps.store.getRecord(ctx.target.connectionId).catch((err: unknown) => {
    throw classify(err, 'reading the rotation state from Key Vault');
  });
  if (
    !record ||
    record.appId.toLowerCase() !== app.appId.toLowerCase() ||
    (record.phase !== 'verified' && record.phase !== 'completed') ||
    (record.certificate !== undefined) !== (kind === CERTIFICATE_KIND) ||
    !kind.credentials(app).some((c) => c.keyId === record.keyId)
  )
    return undefined;
  const value = record.certificate
    ? await readCertificatePem(ctx, record.certificate)
    : await ctx.deps.store.getSecretValue(ctx.target.connectionId);
  if (!value || (record.certificate && !/PRIVATE KEY-----/.test(value))) return undefined;
  redactor.register(value);
  return { value, keyIds: [record.keyId, ...(record.phase === 'verified' ? record.previousKeyIds : [])] };
}

/** Adds the federated credential Azure DevOps expects (unless the app already has it). */
export async function ensureFederatedCredential(
  ctx: ConversionContext,
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
  await assertLeaseHeld('adding the federated credential');
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
 * revert for its own conversion, else the Key Vault secret — or, for a connection that held a
 * certificate, the Key Vault certificate — written back and the federated credentials this service
 * added removed. Throws when that is not possible.
 */
export async function backToSecret(
  ctx: ConversionContext,
  connection: ServiceConnection,
  app: ApplicationInfo,
  record: ConversionRecord | undefined,
  why: string,
): Promise<ConversionRecord | undefined> {
  const { deps, target } = ctx;
  const now = deps.clock.now();
  const deadline = revertDeadlineOf(connection) ?? record?.revertDeadline;
  let restored: ServiceConnection;
  await assertLeaseHeld('putting the connection back on its secret');
  if (record?.path !== 'federated-credential' && deadline && Date.parse(deadline) > now.getTime()) {
    restored = await deps.devops
      .updateConnection(target.organizationUrl, toAzureDevOpsRevertBody(connection), CONVERT_OPERATION)
      .catch((err: unknown) => {
        throw classify(err, "reverting with Azure DevOps' own revert");
      });
    ctx.result.steps.push(`reverted with Azure DevOps' own revert (open until ${deadline})`);
  } else if (record?.path === 'federated-credential') {
    const kind = recordedKind(record);
    const fallback = await fallbackCredential(ctx, app, kind);
    if (!fallback)
      throw fail(
        'revert-window-closed',
        `The connection cannot be put back on its ${kind.noun}: Key Vault holds no verified ${kind.noun} whose credential still exists on the app (removed after the retention period).`,
      );
    const body =
      kind === CERTIFICATE_KIND
        ? toCertificateBody(connection, fallback.value)
        : toSecretBody(connection, fallback.value);
    restored = await deps.devops.updateConnection(target.organizationUrl, body).catch((err: unknown) => {
      throw classify(err, `putting the ${kind.noun} back into the connection`);
    });
    ctx.result.steps.push(
      kind === CERTIFICATE_KIND
        ? 'put the certificate kept in Key Vault back into the connection (ServicePrincipal, spnCertificate, Manual)'
        : 'put the secret kept in Key Vault back into the connection (ServicePrincipal, Manual)',
    );
    const federation = requireFederation(deps);
    for (const id of record.federatedCredentialIds) {
      await assertLeaseHeld('removing a federated credential');
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
  if (problem)
    throw fail(
      'verification-failed',
      `Back on the ${recordedKind(record).noun}, but it does not work: ${problem}`,
    );
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

/**
 * After the retention period (and the revert window), removes the secret — or the certificate(s),
 * from the app's keyCredentials — the conversion superseded.
 */
export async function cleanUp(ctx: ConversionContext, record: ConversionRecord): Promise<ConversionRecord> {
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
  const kind = recordedKind(record);
  if (now.getTime() < dueMs) {
    result.cleanupDueAt = new Date(dueMs).toISOString();
    result.steps.push(
      `old ${kind.noun} kept until ${result.cleanupDueAt} (retention${record.path === 'azure-devops' ? " and Azure DevOps' revert window" : ''})`,
    );
    return record;
  }
  const app = await deps.graph.getApplicationByAppId(record.appId).catch((err: unknown) => {
    throw classify(err, 'reading the app registration');
  });
  if (app) {
    // Invariant 9: a live secret stays while another connection naming the app may hold it.
    const cleared = await removeSuperseded(ctx, app, record, {
      now,
      kind,
      during: `removing the superseded ${kind.noun}`,
      why: ({ ours, previous }) =>
        ours
          ? 'created by this service'
          : previous
            ? 'used by the connection before the conversion'
            : 'expired',
    });
    if (!cleared.done) return record;
  }
  return save(ctx, { ...record, phase: 'completed', completedAt: now.toISOString() });
}
