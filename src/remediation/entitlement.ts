/**
 * Entitlement (DESIGN invariant 8): a connection receives a new credential of an app (a client
 * secret, or a federated credential through a conversion) only when it is entitled to that app.
 * Naming an app in `serviceprincipalid` grants nothing: anyone who may create a connection in a
 * scanned project can name any app this service owns, and without this gate the service would add a
 * password to that app and hand it to them (a confused deputy).
 *
 * The rule, per (organization, connection, app [, tenant]):
 * - proof of possession binds — what only a holder of a credential of that very app can show:
 *   a. TestConnection with the connection's stored secret succeeds;
 *   b. TestConnection fails with AADSTS7000222: Entra ID says the stored value is an expired secret
 *      of that app (a value that is no secret of the app gets AADSTS7000215, which proves nothing);
 *   c. the connection's Key Vault rotation record says this service verified a secret of that app
 *      in that connection (phase verified or completed);
 *   A holder gains nothing new from a fresh secret, so proof is enough even when other connections
 *   use the same app;
 * - without proof, only an operator binds: an approval in the remediation policy, or
 *   `sc-remediator approve` / `POST /api/connections/{org}/{id}/approve`;
 * - a binding counts only for the app (and tenant) it names: a connection edited to name another
 *   app is not entitled to it;
 * - proof from a probe is recorded as a binding in Key Vault (`sc-remediator-binding-<id>`), so the
 *   next run needs no probe. A verified rotation record is durable evidence by itself (each rotation
 *   renews it), so it is not copied into a binding. Losing the bindings falls back to "report", not
 *   "rotate": only evidence can prove it again.
 */
import { errorMessage } from '../telemetry';
import type { Assessment } from './assess';
import type { Plan } from './plan';
import type {
  AzureDevOpsClient,
  Binding,
  BindingHow,
  BindingStore,
  Clock,
  RotationRecord,
  ServiceConnection,
  TestConnectionResult,
} from './ports';

/** What the report and the operator read when a connection is not entitled. */
export const NOT_BOUND = 'not bound to this app; approve it if it is legitimate';

/** An operator's approval in the remediation policy: both ids, exactly (no patterns). */
export interface PolicyApproval {
  connectionId: string;
  appId: string;
  /** Organization name or URL; any configured organization when absent. */
  organization?: string;
}

export type EntitlementSource = 'policy' | 'record' | 'binding' | 'probe';

/** Whether a connection is entitled to the app it names, and why. */
export interface Entitlement {
  appId: string;
  tenantId?: string;
  bound: boolean;
  how?: BindingHow;
  source?: EntitlementSource;
  /** In words: what proved it, or why nothing did. */
  detail: string;
  /**
   * The binding to record once the connection is about to receive a credential (proof by a probe):
   * the engine writes it right before, so a plan that is never carried out writes nothing.
   */
  toRecord?: Binding;
}

const sameId = (a: string | undefined, b: string | undefined): boolean =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();

/** Organization URLs compared without case and trailing slashes. */
function sameOrganization(a: string, b: string): boolean {
  return a.replace(/\/+$/, '').toLowerCase() === b.replace(/\/+$/, '').toLowerCase();
}

/**
 * Whether a plan would give the connection a new credential of its app: a new rotation (an
 * `addPassword` whose value goes into the connection) or a conversion (a federated credential added
 * by this service or, for Azure DevOps' own conversion, by Azure DevOps with this service's token).
 * Resuming a rotation this service recorded for the same app is not new: it was gated when it began.
 */
export function needsEntitlement(plan: Plan): boolean {
  if (plan.action === 'rotate-secret') return plan.resumeFrom === undefined;
  if (plan.action === 'convert-to-wif') return plan.conversion?.kind === 'convert';
  return false;
}

/** Evidence c: this service verified a secret of `appId` in this connection. */
export function recordProves(
  record: RotationRecord | undefined,
  connectionId: string,
  appId: string,
): boolean {
  return (
    record !== undefined &&
    sameId(record.connectionId, connectionId) &&
    sameId(record.appId, appId) &&
    (record.phase === 'verified' || record.phase === 'completed')
  );
}

/** Whether a recorded binding entitles this connection, in this organization, to this app and tenant. */
export function bindingMatches(
  binding: Binding | undefined,
  subject: { organizationUrl: string; connectionId: string; appId: string; tenantId?: string },
): binding is Binding {
  return (
    binding !== undefined &&
    sameId(binding.connectionId, subject.connectionId) &&
    sameId(binding.appId, subject.appId) &&
    sameOrganization(binding.organization, subject.organizationUrl) &&
    (binding.tenantId === undefined ||
      subject.tenantId === undefined ||
      sameId(binding.tenantId, subject.tenantId))
  );
}

/** The policy approval for this connection and app, if any. */
export function approvalFor(
  approvals: readonly PolicyApproval[] | undefined,
  subject: { organization: string; organizationUrl: string; connectionId: string; appId: string },
): PolicyApproval | undefined {
  return approvals?.find(
    (a) =>
      sameId(a.connectionId, subject.connectionId) &&
      sameId(a.appId, subject.appId) &&
      (a.organization === undefined ||
        a.organization.toLowerCase() === subject.organization.toLowerCase() ||
        sameOrganization(a.organization, subject.organizationUrl)),
  );
}

/**
 * What a TestConnection of the stored secret proves: success (a), or AADSTS7000222 — Entra ID's
 * answer when the value is an expired password of that very app (b). Any other failure (AADSTS7000215
 * invalid secret, 700016 no such app, 7000112 disabled, a network error) proves nothing. An answer
 * naming another app than the connection's proves nothing either.
 */
export function proofFromTest(test: TestConnectionResult | undefined, appId: string): BindingHow | undefined {
  if (!test) return undefined;
  if (test.ok) return 'proof:test-connection-ok';
  const codes = [...test.errorMessage.matchAll(/AADSTS(\d+)/g)].map((m) => m[1]);
  if (codes.length !== 1 || codes[0] !== '7000222') return undefined;
  const named = /for app '([0-9a-f-]{36})'/i.exec(test.errorMessage)?.[1];
  if (named !== undefined && !sameId(named, appId)) return undefined;
  return 'proof:expired-secret-7000222';
}

/** The exact command an operator runs to approve the binding (also shown in the report). */
export function approveCommand(organizationUrl: string, connectionId: string, appId: string): string {
  return `sc-remediator approve --connection ${connectionId} --organization ${organizationUrl} --app ${appId}`;
}

/**
 * The plan once entitlement is known: a plan that would give the connection a new credential of an
 * app it is not entitled to becomes a report (finding unchanged), saying how to approve it.
 */
export function gateEntitlement(plan: Plan, a: Assessment, entitlement: Entitlement | undefined): Plan {
  if (!needsEntitlement(plan) || entitlement?.bound) return plan;
  const appId = a.appId ?? '(none)';
  const command = approveCommand(a.organizationUrl, a.connectionId, appId);
  return {
    action: 'report',
    reason: `The connection is ${NOT_BOUND}: it names app ${appId} but ${
      entitlement?.detail ?? 'nothing proves it holds a credential of it'
    }. Would ${plan.action}: ${plan.reason}`,
    steps: [`If the connection is legitimate: ${command}`, ...plan.steps.map((s) => `(not done) ${s}`)],
    previousKeyIds: plan.previousKeyIds,
    orphanKeyIds: plan.orphanKeyIds,
    warnings: plan.warnings,
  };
}

interface EntitlementSubject {
  organization: string;
  organizationUrl: string;
  /** A project the connection is shared with (TestConnection goes through it). */
  project: string;
  connection: ServiceConnection;
  record: RotationRecord | undefined;
}

interface EntitlementDeps {
  devops: AzureDevOpsClient;
  bindings?: BindingStore;
  clock: Clock;
  log: { warn(message: string, properties?: Record<string, unknown>): void };
}

/**
 * Finds out whether the connection is entitled to the app it names, cheapest evidence first: a
 * policy approval and the rotation record (already read, no call), the recorded binding (one Key
 * Vault read), then a TestConnection of the stored secret (one Azure DevOps call), whose proof the
 * engine records as a binding right before it gives the connection a credential (`toRecord`; never in
 * a dry run). A binding store that cannot be read counts as no binding: the connection is reported
 * unless evidence proves it again.
 */
export async function establishEntitlement(
  s: EntitlementSubject,
  deps: EntitlementDeps,
  options: { approvals?: readonly PolicyApproval[] },
): Promise<Entitlement> {
  const params = s.connection.authorization.parameters;
  const appId = params['serviceprincipalid'] ?? '';
  const tenantId = params['tenantid'] ?? undefined;
  const base = { appId, ...(tenantId ? { tenantId } : {}) };
  const connectionId = s.connection.id;
  if (!appId) return { ...base, bound: false, detail: 'it names no app' };

  const approval = approvalFor(options.approvals, {
    organization: s.organization,
    organizationUrl: s.organizationUrl,
    connectionId,
    appId,
  });
  if (approval)
    return {
      ...base,
      bound: true,
      how: 'approved:policy',
      source: 'policy',
      detail: 'approved in the policy',
    };
  if (recordProves(s.record, connectionId, appId))
    return {
      ...base,
      bound: true,
      how: 'verified-rotation',
      source: 'record',
      detail: `this service verified a secret of it in rotation ${s.record?.rotationId ?? ''}`,
    };

  let unreadable = false;
  if (deps.bindings) {
    try {
      const binding = await deps.bindings.getBinding(connectionId);
      const subject = {
        organizationUrl: s.organizationUrl,
        connectionId,
        appId,
        ...(tenantId ? { tenantId } : {}),
      };
      if (bindingMatches(binding, subject))
        return {
          ...base,
          bound: true,
          how: binding.how,
          source: 'binding',
          detail: `bound (${binding.how}, ${binding.at})`,
        };
    } catch (err) {
      unreadable = true;
      deps.log.warn('Could not read the connection binding from Key Vault; only evidence can prove it', {
        connectionId,
        error: errorMessage(err),
      });
    }
  }

  let test: TestConnectionResult | undefined;
  try {
    test = await deps.devops.testConnection(s.organizationUrl, s.project, s.connection);
  } catch (err) {
    deps.log.warn('TestConnection for the entitlement proof failed', {
      connectionId,
      error: errorMessage(err),
    });
  }
  const how = proofFromTest(test, appId);
  if (!how) {
    const said = test
      ? test.ok
        ? 'ok'
        : `${test.statusCode}: ${firstLine(test.errorMessage)}`
      : 'no answer';
    return {
      ...base,
      bound: false,
      detail: `no binding${unreadable ? ' could be read' : ' is recorded'} and TestConnection of its stored secret proves nothing (${said})`,
    };
  }
  return {
    ...base,
    bound: true,
    how,
    source: 'probe',
    detail:
      how === 'proof:test-connection-ok'
        ? 'TestConnection succeeds with its stored secret'
        : 'Entra ID says its stored secret is an expired secret of the app (AADSTS7000222)',
    toRecord: {
      connectionId,
      organization: s.organizationUrl,
      ...base,
      how,
      at: deps.clock.now().toISOString(),
    },
  };
}

function firstLine(text: string): string {
  return (text.split(/\r?\n/)[0] ?? '').slice(0, 200);
}

/** Why an approval was refused. */
export class ApprovalError extends Error {
  constructor(
    readonly code: 'connection-not-found' | 'no-app' | 'app-mismatch' | 'not-configured',
    message: string,
  ) {
    super(message);
    this.name = 'ApprovalError';
  }
}

interface ApprovalRequest {
  organizationUrl: string;
  connectionId: string;
  /** The app the operator means to approve; refused when the connection names another. */
  appId?: string;
  /** Who approves (recorded as `approved:<by>`). */
  by: string;
}

/**
 * An operator's approval: records that the connection is entitled to the app it names now (after
 * checking it is the app the operator expects). Reads the connection itself, so what is recorded is
 * what Azure DevOps holds, never what the caller claims.
 */
export async function approveConnection(
  request: ApprovalRequest,
  deps: EntitlementDeps,
  find: (
    organizationUrl: string,
    connectionId: string,
  ) => Promise<{ connection: ServiceConnection } | undefined>,
): Promise<{ binding: Binding; connection: ServiceConnection }> {
  if (!deps.bindings)
    throw new ApprovalError('not-configured', 'No binding store (Key Vault) is configured.');
  const found = await find(request.organizationUrl, request.connectionId);
  if (!found)
    throw new ApprovalError(
      'connection-not-found',
      `No Azure Resource Manager connection ${request.connectionId} in ${request.organizationUrl}.`,
    );
  const params = found.connection.authorization.parameters;
  const appId = params['serviceprincipalid'] ?? undefined;
  if (!appId)
    throw new ApprovalError(
      'no-app',
      'The connection names no app (serviceprincipalid): nothing to approve.',
    );
  if (request.appId !== undefined && !sameId(request.appId, appId))
    throw new ApprovalError(
      'app-mismatch',
      `The connection now names app ${appId}, not ${request.appId}: nothing was approved. Check who changed it before approving app ${appId}.`,
    );
  const tenantId = params['tenantid'] ?? undefined;
  const by = request.by.replace(/[^\w@.:\- ]/g, '').slice(0, 120) || 'operator';
  const binding = await deps.bindings.putBinding({
    connectionId: found.connection.id,
    organization: request.organizationUrl,
    appId,
    ...(tenantId ? { tenantId } : {}),
    how: `approved:${by}`,
    at: deps.clock.now().toISOString(),
  });
  return { binding, connection: found.connection };
}
