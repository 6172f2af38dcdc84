/**
 * The run loop: discover → assess → plan → (unless dry run) remediate, one connection at a time
 * per worker, a bounded number of workers. One connection's failure never stops the run; the report
 * says what happened to each, and the caller fails visibly at the end.
 */
import { randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import { PreconditionError } from '../errors';
import { errorMessage } from '../telemetry';
import { assess, type AppLookup, type Assessment } from './assess';
import { diagnoseError, diagnosisOf } from './diagnosis';
import { discoverConnections, type DiscoveredConnection, type DiscoveryProblem } from './discovery';
import { plan, plannedReport, type Plan } from './plan';
import type { PasswordPolicy, RotationRecord } from './ports';
import { needsAttention, summarize, type ConnectionReport, type RunReport } from './report';
import {
  removeOrphanCredentials,
  repairConnection,
  rotateConnection,
  type ConnectionTarget,
  type EngineDeps,
  type EngineResult,
  type RotationSettings,
} from './rotation';

export interface RunSettings extends RotationSettings {
  organizations: { url: string; name: string }[];
  projects?: string[];
  rotateDaysBeforeExpiry: number;
  tenantId?: string;
  maxConcurrency: number;
  dryRun: boolean;
}

export type RunProgress =
  | { stage: 'discovering'; organizationUrl: string; project: string }
  | { stage: 'discovered'; connections: number; projects: number }
  | { stage: 'remediating'; done: number; total: number; connectionName: string };

/** Telemetry the run emits: event name and properties (never a secret). */
export type RunEventSink = (
  name: RunEventName,
  properties: Record<string, string | number | boolean>,
) => void;

export type RunEventName =
  | 'RunStarted'
  | 'RunCompleted'
  | 'ConnectionRemediated'
  | 'RemediationFailed'
  | 'ConnectionNeedsAttention'
  | 'SecretExpiringSoon';

export interface RunOptions {
  runId?: string;
  /** Only this organization (must be one of the configured ones: no request goes anywhere else). */
  organizationUrl?: string;
  /** Only this connection id. */
  connectionId?: string;
  /** Overrides `settings.dryRun`. */
  dryRun?: boolean;
  onProgress?: (progress: RunProgress) => void;
  events?: RunEventSink;
}

export interface RunResult {
  report: RunReport;
  problems: DiscoveryProblem[];
}

/** Finds the configured organization a URL names; throws for anything not configured. */
export function configuredOrganization(
  settings: Pick<RunSettings, 'organizations'>,
  organization: string,
): { url: string; name: string } {
  const wanted = organization.replace(/\/+$/, '').toLowerCase();
  const match = settings.organizations.find(
    (o) => o.url.toLowerCase() === wanted || o.name.toLowerCase() === wanted,
  );
  if (!match)
    throw new PreconditionError(
      `Organization '${organization}' is not configured (AZDO_ORGANIZATION_URLS lists ${settings.organizations.map((o) => o.url).join(', ')}).`,
      'organization-not-configured',
    );
  return match;
}

interface Prepared {
  discovered: DiscoveredConnection;
  assessment: Assessment;
  plan: Plan;
  report: ConnectionReport;
  /** The Key Vault rotation record as read for the plan (undefined: none). */
  record: RotationRecord | undefined;
}

async function prepare(
  discovered: DiscoveredConnection,
  deps: EngineDeps,
  settings: RunSettings,
  apps: Map<string, Promise<AppLookup>>,
  orgName: string,
): Promise<Prepared> {
  const { connection } = discovered;
  const appId = connection.authorization.parameters['serviceprincipalid'] ?? undefined;
  let app: AppLookup;
  if (connection.authorization.scheme === 'ServicePrincipal' && appId) {
    // Apps shared by several connections are read once per run.
    let lookup = apps.get(appId);
    if (!lookup) {
      lookup = deps.graph.getApplicationByAppId(appId).then(
        (found): AppLookup => found,
        (err: unknown): AppLookup => ({ error: describeError(err, 'graph') }),
      );
      apps.set(appId, lookup);
    }
    app = await lookup;
  }
  let record: RotationRecord | undefined;
  let recordError: string | undefined;
  try {
    record = await deps.store.getRecord(connection.id);
  } catch (err) {
    recordError = errorMessage(err);
  }
  const input = {
    connection,
    organizationUrl: discovered.organizationUrl,
    organization: orgName,
    projects: discovered.projects,
    app,
    record,
    settings: {
      rotateDaysBeforeExpiry: settings.rotateDaysBeforeExpiry,
      oldSecretRetentionHours: settings.oldSecretRetentionHours,
      tenantId: settings.tenantId,
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
  const thePlan = plan(assessment, settings);
  const report = plannedReport(assessment, thePlan);
  if (recordError) {
    // Without the rotation record a rotation could lose track of a secret: never act blind.
    report.finding = 'error';
    report.action = 'report';
    report.outcome = 'skipped';
    report.error = `Cannot read the rotation state from Key Vault: ${recordError}`;
  }
  return { discovered, assessment, plan: thePlan, report, record };
}

function describeError(
  err: unknown,
  service: string,
): { message: string; status?: number; code?: string; service?: string } {
  const e = err as { status?: unknown; code?: unknown };
  return {
    message: errorMessage(err),
    status: typeof e.status === 'number' ? e.status : undefined,
    code: typeof e.code === 'string' ? e.code : undefined,
    service,
  };
}

async function execute(
  prepared: Prepared,
  deps: EngineDeps,
  settings: RunSettings,
): Promise<EngineResult | undefined> {
  const { discovered, assessment, plan: thePlan } = prepared;
  const project = discovered.projects[0];
  if (!project) return undefined;
  const target: ConnectionTarget = {
    organizationUrl: discovered.organizationUrl,
    project: project.id,
    connectionId: discovered.connection.id,
    previousKeyIds: thePlan.previousKeyIds,
    passwordPolicy: assessment.passwordPolicy,
    // Checked again under the lock: a plan made before another run's rotation is not carried out.
    plannedFrom: prepared.record
      ? { rotationId: prepared.record.rotationId, phase: prepared.record.phase }
      : null,
  };
  switch (thePlan.action) {
    case 'rotate-secret':
      return rotateConnection(target, deps, {
        ...settings,
        secretLifetimeDays: thePlan.secretLifetimeDays ?? settings.secretLifetimeDays,
      });
    case 'repair': {
      if (thePlan.repair === 'remove-orphans')
        return removeOrphanCredentials(target, thePlan.orphanKeyIds, deps);
      const repaired = await repairConnection(target, deps);
      // The stored secret itself turned out to be bad: a new one is the fix.
      if (
        repaired.outcome === 'failed' &&
        repaired.error?.code === 'verification-failed' &&
        assessment.appId
      ) {
        const rotated = await rotateConnection(target, deps, settings);
        rotated.steps = [
          ...repaired.steps,
          'the repair was not enough; rotating the secret',
          ...rotated.steps,
        ];
        return rotated;
      }
      return repaired;
    }
    default:
      return undefined;
  }
}

function applyResult(report: ConnectionReport, result: EngineResult): void {
  report.outcome = result.outcome;
  report.steps = result.steps;
  if (result.phase) report.phase = result.phase;
  if (result.cleanupDueAt) report.cleanupDueAt = result.cleanupDueAt;
  else delete report.cleanupDueAt;
  if (result.outcome === 'succeeded' && result.secretExpiresAt) {
    report.newSecretExpiresAt = result.secretExpiresAt;
  }
  const error = result.error;
  if (!error) return;
  report.error = error.message;
  if (result.outcome !== 'failed') return;
  // What the failure says about the connection, for the operator.
  if (error.code === 'blocked-by-policy') {
    report.finding = 'blocked-by-policy';
    // Graph says so only in words: no code tells the password-count limit apart.
    const limit = /maximum of \d+ passwords/i.test(error.message);
    report.diagnosis = diagnosisOf(limit ? 'password-limit' : 'password-policy', error.serviceCode);
    return;
  }
  const diagnosis = diagnoseError({
    message: error.message,
    status: error.status,
    code: error.serviceCode,
    service: error.service,
  });
  if (diagnosis.kind !== 'unknown') report.diagnosis = diagnosis;
}

/**
 * One full run (or one organization or connection of it). Dry run: assess and plan only, with no
 * write to any service (DESIGN invariant 7).
 */
export async function runRemediation(
  deps: EngineDeps,
  settings: RunSettings,
  options: RunOptions = {},
): Promise<RunResult> {
  const runId = options.runId ?? randomUUID();
  const dryRun = options.dryRun ?? settings.dryRun;
  const startedAt = deps.clock.now().toISOString();
  const emit = options.events ?? (() => undefined);
  const organizations = options.organizationUrl
    ? [configuredOrganization(settings, options.organizationUrl)]
    : settings.organizations;
  emit('RunStarted', { runId, dryRun, organizations: organizations.length });

  const discovery = await discoverConnections(
    organizations.map((o) => o.url),
    deps.devops,
    {
      projects: settings.projects,
      concurrency: settings.maxConcurrency,
      onProject: (organizationUrl, project) =>
        options.onProgress?.({ stage: 'discovering', organizationUrl, project }),
    },
  );
  let connections = discovery.connections;
  if (options.connectionId) {
    const wanted = options.connectionId.toLowerCase();
    connections = connections.filter((c) => c.connection.id.toLowerCase() === wanted);
  }
  options.onProgress?.({
    stage: 'discovered',
    connections: connections.length,
    projects: discovery.projectsScanned,
  });

  const orgNames = new Map(organizations.map((o) => [o.url.toLowerCase(), o.name]));
  const apps = new Map<string, Promise<AppLookup>>();
  const limit = pLimit(Math.max(1, settings.maxConcurrency));
  let done = 0;
  const reports = await Promise.all(
    connections.map((discovered) =>
      limit(async (): Promise<ConnectionReport> => {
        const orgName = orgNames.get(discovered.organizationUrl.toLowerCase()) ?? discovered.organizationUrl;
        let report: ConnectionReport;
        try {
          const prepared = await prepare(discovered, deps, settings, apps, orgName);
          report = prepared.report;
          if (!dryRun && report.outcome === 'planned') {
            const result = await execute(prepared, deps, settings);
            if (result) applyResult(report, result);
          }
        } catch (err) {
          // Per-connection isolation: note it and go on with the others.
          report = {
            organization: orgName,
            organizationUrl: discovered.organizationUrl,
            projects: discovered.projects.map((p) => p.name),
            connectionId: discovered.connection.id,
            connectionName: discovered.connection.name,
            appId: discovered.connection.authorization.parameters['serviceprincipalid'] ?? null,
            finding: 'error',
            action: 'report',
            outcome: 'failed',
            credentialSource: 'unknown',
            scheme: discovered.connection.authorization.scheme,
            error: errorMessage(err),
          };
        }
        done += 1;
        options.onProgress?.({
          stage: 'remediating',
          done,
          total: connections.length,
          connectionName: report.connectionName,
        });
        emitConnectionEvents(emit, runId, report, deps.clock.now(), settings.rotateDaysBeforeExpiry);
        return report;
      }),
    ),
  );

  const summary = summarize(reports);
  const report: RunReport = {
    runId,
    startedAt,
    finishedAt: deps.clock.now().toISOString(),
    dryRun,
    summary,
    connections: reports,
  };
  emit('RunCompleted', {
    runId,
    dryRun,
    total: summary.total,
    succeeded: summary.byOutcome.succeeded,
    failed: summary.byOutcome.failed,
    needsAttention: summary.needsAttention,
    discoveryProblems: discovery.problems.length,
  });
  return { report, problems: discovery.problems };
}

function emitConnectionEvents(
  emit: RunEventSink,
  runId: string,
  c: ConnectionReport,
  now: Date,
  rotateDays: number,
): void {
  const base = {
    runId,
    organization: c.organization,
    connectionId: c.connectionId,
    connectionName: c.connectionName,
  };
  if (c.outcome === 'succeeded')
    emit('ConnectionRemediated', { ...base, action: c.action, finding: c.finding });
  if (c.outcome === 'failed')
    emit('RemediationFailed', { ...base, action: c.action, finding: c.finding, error: c.error ?? '' });
  else if (needsAttention(c))
    emit('ConnectionNeedsAttention', {
      ...base,
      finding: c.finding,
      cause: c.diagnosis?.cause ?? c.reason ?? '',
    });
  const end = c.outcome === 'succeeded' && c.newSecretExpiresAt ? c.newSecretExpiresAt : c.secretExpiresAt;
  if (end) {
    const days = (Date.parse(end) - now.getTime()) / (24 * 3600 * 1000);
    if (days <= rotateDays)
      emit('SecretExpiringSoon', { ...base, daysLeft: Math.floor(days), expiresAt: end });
  }
}
