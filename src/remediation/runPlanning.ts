/**
 * One connection from what the run read to its plan: assessed, planned, decided by the policy, gated
 * by its entitlement (DESIGN invariant 8), and the report entry it gets before anything is applied.
 * Pure apart from the reads it needs (its record and app, the app's password policy, its conversion
 * record, its entitlement evidence); writes nothing but the recovery of a soft-deleted record.
 */
import { errorMessage } from '../telemetry';
import { assess, isAppLookupError, type AppLookup, type Assessment } from './assess';
import { diagnosisOf } from './diagnosis';
import type { DiscoveredConnection } from './discovery';
import type { EngineDeps } from './engine';
import {
  approveCommand,
  establishEntitlement,
  gateEntitlement,
  needsEntitlement,
  NOT_BOUND,
  type Entitlement,
} from './entitlement';
import { isWorkloadIdentity } from './federation';
import { resolveMissingRecord } from './orphans';
import { plan, plannedReport, type Plan } from './plan';
import { planSteps, type PlanStep } from './planSteps';
import { decide, type Intent } from './policy';
import type { PolicyDecision } from './policyFile';
import type { ApplicationInfo, ConversionRecord, RecordState, PasswordPolicy, RotationRecord } from './ports';
import type { ConnectionReport } from './report';
import {
  appCacheKey,
  appReadAt,
  lookupApp,
  readRecord,
  type RecordListing,
  type RunSettings,
} from './runInputs';
import { isMarkedFor } from './transform';

export interface Prepared {
  discovered: DiscoveredConnection;
  assessment: Assessment;
  plan: Plan;
  /** The operations that carry the plan out, in order (`planSteps`): `execute` runs them one at a time. */
  planSteps: PlanStep[];
  report: ConnectionReport;
  /** The Key Vault rotation record as read for the plan (undefined: none). */
  record: RotationRecord | undefined;
  runId: string;
  /** The app as read for the plan, and when (a rotation reuses a fresh read: `ConnectionTarget.app`). */
  app?: { info: ApplicationInfo; readAtMs: number };
  /** Whether the connection is entitled to its app, when the plan would give it a new credential. */
  entitlement?: Entitlement;
}

interface PrepareContext {
  policy: PolicyDecision;
  intent?: Intent;
  failingSince?: string;
  runId: string;
  /** Every record, listed once for the run (undefined: each connection reads its own). */
  records?: RecordListing;
  /** A dry run: a soft-deleted record is reported, not recovered (no write). */
  dryRun?: boolean;
  /**
   * Client ids (lower-cased) of apps that several connections of this run use: a rotation reads those again under
   * its lock (another connection's rotation may have changed the app since the plan's read).
   */
  sharedApps?: Set<string>;
}

export async function prepare(
  discovered: DiscoveredConnection,
  deps: EngineDeps,
  settings: RunSettings,
  apps: Map<string, Promise<AppLookup>>,
  orgName: string,
  context: PrepareContext = { policy: { choice: 'rotate', source: 'the default (no policy)' }, runId: '' },
): Promise<Prepared> {
  const { connection } = discovered;
  const appId = connection.authorization.parameters['serviceprincipalid'] ?? undefined;
  // The app (Graph) and the record (Key Vault) are read at the same time.
  const recordRead = readRecord(connection.id, deps, context.records);
  let app: AppLookup;
  // Apps shared by several connections are read once per run.
  if (connection.authorization.scheme === 'ServicePrincipal' && appId)
    app = await lookupApp(apps, appCacheKey(connection) ?? appId, appId, deps);
  const read = await recordRead;
  let record = read.record;
  let recordError = read.error;
  // No record but credentials marked for this connection: a soft-deleted record is recovered (not
  // in a dry run) before anything is decided; an intent is evidence about orphans (invariant 10).
  let missingRecord: RecordState | undefined;
  let recovered = false;
  if (
    !record &&
    !recordError &&
    app &&
    !isAppLookupError(app) &&
    app.passwordCredentials.some((c) => isMarkedFor(c.displayName, connection.id))
  ) {
    try {
      const found = await resolveMissingRecord(connection.id, deps, !context.dryRun);
      record = found.record;
      missingRecord = found.missing;
      recovered = found.recovered;
    } catch (err) {
      recordError = errorMessage(err);
    }
  }
  const input = {
    connection,
    organizationUrl: discovered.organizationUrl,
    organization: orgName,
    projects: discovered.projects,
    app,
    record,
    ...(missingRecord ? { missingRecord } : {}),
    settings: {
      rotateDaysBeforeExpiry: settings.rotateDaysBeforeExpiry,
      oldSecretRetentionHours: settings.oldSecretRetentionHours,
      tenantId: settings.tenantId,
      ...(settings.additionalTenantIds ? { additionalTenantIds: settings.additionalTenantIds } : {}),
    },
    now: deps.clock.now(),
  };
  let assessment = assess(input);
  // The password policy matters only when a new secret will be made; read it then, once.
  if (assessment.needsNewSecret && !assessment.pending && app && !('error' in app)) {
    const policy: PasswordPolicy = await deps.graph
      .getPasswordPolicy(app.id)
      .catch((): PasswordPolicy => ({ additionBlocked: false }));
    assessment = assess({ ...input, passwordPolicy: policy });
  }
  const basePlan = plan(assessment, settings);
  // Conversion state matters for converted connections, and where a conversion may happen.
  let conversion: ConversionRecord | undefined;
  if (
    deps.conversions &&
    (isWorkloadIdentity(connection) ||
      context.intent !== undefined ||
      context.policy.choice === 'convert-to-wif')
  )
    conversion = await deps.conversions.getConversion(connection.id).catch((err: unknown) => {
      recordError ??= errorMessage(err);
      return undefined;
    });
  const decision = decide({
    assessment,
    plan: basePlan,
    connection,
    policy: context.policy,
    intent: context.intent,
    retirement: {
      enabled: settings.retirement?.enabled ?? false,
      failedAfterDays: settings.retirement?.failedAfterDays,
      ledger: deps.retirements !== undefined,
    },
    failingSince: context.failingSince,
    conversion,
    now: deps.clock.now(),
    oldSecretRetentionHours: settings.oldSecretRetentionHours,
  });
  // Invariant 8: a plan that gives the connection a new credential needs it entitled to the app.
  let entitlement: Entitlement | undefined;
  const project = discovered.projects[0];
  if (needsEntitlement(decision.plan) && project && !recordError)
    entitlement = await establishEntitlement(
      {
        organization: orgName,
        organizationUrl: discovered.organizationUrl,
        project: project.id,
        connection,
        record,
      },
      deps,
      { approvals: settings.policy?.approvals },
    );
  const thePlan = gateEntitlement(decision.plan, assessment, entitlement);
  const report = plannedReport(assessment, thePlan);
  if (entitlement) {
    report.entitlement = {
      bound: entitlement.bound,
      appId: entitlement.appId,
      detail: entitlement.detail,
      ...(entitlement.how ? { how: entitlement.how } : {}),
    };
    if (!entitlement.bound) {
      const command = approveCommand(discovered.organizationUrl, connection.id, entitlement.appId);
      report.entitlement.approveCommand = command;
      report.diagnosis = {
        ...(report.diagnosis ?? diagnosisOf('unknown')),
        fixableByService: false,
        nextStep: `The connection is ${NOT_BOUND}: ${command}`,
      };
    }
  }
  if (context.policy.choice !== 'rotate' || context.policy.rule !== undefined) {
    report.policy = context.policy.choice;
    if (context.policy.rule !== undefined) report.policyRule = context.policy.rule;
  }
  if (decision.convertible) {
    report.convertible = true;
    report.conversionPath = decision.convertible;
  }
  if (decision.retirable) report.retirable = true;
  if (conversion) report.conversion = conversionSummary(conversion);
  if (recovered)
    report.steps = ['recovered the soft-deleted rotation record from Key Vault', ...(report.steps ?? [])];
  if (recordError) {
    // Without the rotation record a rotation could lose track of a secret: never act blind.
    report.finding = 'error';
    report.action = 'report';
    report.outcome = 'skipped';
    report.error = `Cannot read the rotation state from Key Vault: ${recordError}`;
  }
  // The plan's read of the app, for the rotation to reuse (not when other connections share the app).
  const found = app && !isAppLookupError(app) ? app : undefined;
  const readAtMs = found ? appReadAt.get(found) : undefined;
  const ownApp = found && !context.sharedApps?.has(found.appId.toLowerCase()) ? found : undefined;
  return {
    discovered,
    assessment,
    plan: thePlan,
    planSteps: planSteps(thePlan, assessment.appId),
    report,
    record,
    runId: context.runId,
    ...(ownApp && readAtMs !== undefined ? { app: { info: ownApp, readAtMs } } : {}),
    ...(entitlement ? { entitlement } : {}),
  };
}

export function conversionSummary(r: ConversionRecord): NonNullable<ConnectionReport['conversion']> {
  const out: NonNullable<ConnectionReport['conversion']> = { path: r.path, phase: r.phase };
  if (r.issuer) out.issuer = r.issuer;
  if (r.subject) out.subject = r.subject;
  if (r.revertDeadline) out.revertDeadline = r.revertDeadline;
  if (r.credential === 'certificate') out.credential = 'certificate';
  return out;
}
