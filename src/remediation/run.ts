/**
 * The run loop: discover → assess → plan → (unless dry run) remediate, one connection at a time
 * per worker, a bounded number of workers. One connection's failure never stops the run; the report
 * says what happened to each, and the caller fails visibly at the end.
 */
import { randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import { PreconditionError } from '../errors';
import { errorMessage } from '../telemetry';
import { assess, isAppLookupError, type AppLookup, type Assessment } from './assess';
import { addPasswordRefusal, diagnoseError, diagnosisOf } from './diagnosis';
import { convertConnection, revertConversion } from './conversion';
import { buildCensus, type AppUsage, type UsageCensus } from './census';
import { discoverConnections, type DiscoveredConnection, type DiscoveryProblem } from './discovery';
import {
  approveCommand,
  establishEntitlement,
  gateEntitlement,
  needsEntitlement,
  NOT_BOUND,
  type Entitlement,
} from './entitlement';
import { isWorkloadIdentity } from './federation';
import { plan, plannedReport, type Plan } from './plan';
import { decide, type Intent } from './policy';
import { DEFAULT_POLICY, resolvePolicy, type PolicyDecision, type RemediationPolicy } from './policyFile';
import type {
  ApplicationInfo,
  ConversionRecord,
  RecordState,
  PasswordPolicy,
  RotationRecord,
  ServiceConnection,
} from './ports';
import { isMarkedFor } from './transform';
import { needsAttention, summarize, type ConnectionReport, type RunReport } from './report';
import type { ConnectionTarget, EngineDeps, EngineResult, RotationSettings } from './engine';
import { resolveMissingRecord } from './orphans';
import { recoverRotationRecord, removeOrphanCredentials, repairConnection } from './repair';
import { rotateConnection } from './rotation';
import { retireConnection } from './retirement';
import { OffHeapTexts } from './offHeapTexts';
import { takeTurns, type TurnGate } from './turns';

export interface RunSettings extends RotationSettings {
  organizations: { url: string; name: string }[];
  projects?: string[];
  rotateDaysBeforeExpiry: number;
  tenantId?: string;
  maxConcurrency: number;
  dryRun: boolean;
  /** `REMEDIATION_POLICY[_FILE]`; absent: rotate everything, convert nothing. */
  policy?: RemediationPolicy;
  /** `ENABLE_RETIREMENT`, `RETIRE_FAILED_AFTER_DAYS` (0: only connections whose app is gone). */
  retirement?: { enabled: boolean; failedAfterDays?: number };
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
  /**
   * What a person asked for explicitly, for `connectionId`: convert it, revert its conversion, or
   * retire it. Still bounded by the policy (`exclude` and `report-only` win); a dry run only plans it.
   */
  intent?: Intent;
  /**
   * Note in the run ledger which connections are failing (for RETIRE_FAILED_AFTER_DAYS). Default:
   * when not a dry run (the fan-out's planning run, a dry run itself, asks for it explicitly).
   */
  trackFailures?: boolean;
  /**
   * Take the usage census (DESIGN invariant 9): list every configured organization and project,
   * whatever `organizationUrl`, `AZDO_PROJECTS` and the policy select, and count every connection
   * that names each app. Default: when the run lists every organization anyway (no
   * `organizationUrl`) and no `usage` is given. Without a census a run keeps every superseded
   * credential that is still valid.
   */
  census?: boolean;
  /** For `connectionId`: the census of its app as the run that planned it took it (a fan-out work item). */
  usage?: AppUsage;
}

/** A connection the policy excludes: listed here, never read further nor reported. */
export interface ExcludedConnection {
  organization: string;
  connectionId: string;
  connectionName: string;
  /** Which rule excluded it (1-based), or the policy default. */
  rule?: number;
}

export interface RunResult {
  report: RunReport;
  problems: DiscoveryProblem[];
  /** Connections the policy excludes (not in the report). */
  excluded?: ExcludedConnection[];
  /** The usage census, when the run took one. */
  census?: UsageCensus;
}

/**
 * What a run remediates: its organizations, and the projects of `AZDO_PROJECTS` (names or ids) when
 * set. A problem without a project concerns the organization's project listing.
 */
function scopeFilter(
  organizations: { url: string }[],
  projects: string[] | undefined,
): { organization(url: string): boolean; project(name?: string, id?: string): boolean } {
  const orgs = new Set(organizations.map((o) => o.url.toLowerCase()));
  const wanted = projects?.map((p) => p.toLowerCase());
  return {
    organization: (url) => orgs.has(url.toLowerCase()),
    project: (name, id) =>
      !wanted ||
      name === undefined ||
      wanted.includes(name.toLowerCase()) ||
      (id !== undefined && wanted.includes(id.toLowerCase())),
  };
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

/** One connection of a configured organization, as discovery finds it (within `AZDO_PROJECTS`). */
export async function findConnection(
  deps: Pick<EngineDeps, 'devops'>,
  settings: Pick<RunSettings, 'organizations' | 'projects' | 'maxConcurrency'>,
  organizationUrl: string,
  connectionId: string,
): Promise<DiscoveredConnection | undefined> {
  const org = configuredOrganization(settings, organizationUrl);
  const { connections } = await discoverConnections([org.url], deps.devops, {
    projects: settings.projects,
    concurrency: settings.maxConcurrency,
  });
  return connections.find((c) => c.connection.id.toLowerCase() === connectionId.toLowerCase());
}

interface Prepared {
  discovered: DiscoveredConnection;
  assessment: Assessment;
  plan: Plan;
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

/**
 * The rotation records of a whole run, listed once (one Key Vault call per 25 connections) from the
 * start of discovery on, and handed out as their pages arrive: a connection is planned as soon as its
 * record has been listed, or once the listing has ended without it. Should the listing fail, the
 * connections it had not reached read their own record.
 */
class RecordListing implements TurnGate {
  /**
   * Listed records not yet handed out: a slot of `texts`, the record as JSON text outside the heap
   * (memory: most wait a while for their turn).
   */
  private readonly found = new Map<string, number | Error>();
  private readonly texts = new OffHeapTexts(1024);
  private slots = 0;
  private readonly handedOut = new Set<string>();
  private settled = false;
  private failed = false;
  private readonly listeners: ((connectionId: string | undefined) => void)[] = [];

  constructor(pages: AsyncIterable<Map<string, RotationRecord | Error>>, log: EngineDeps['log']) {
    void this.consume(pages, log);
  }

  private async consume(pages: AsyncIterable<Map<string, RotationRecord | Error>>, log: EngineDeps['log']) {
    try {
      for await (const page of pages)
        for (const [id, record] of page) {
          if (record instanceof Error) this.found.set(id, record);
          else {
            this.texts.set(this.slots, JSON.stringify(record));
            this.found.set(id, this.slots);
            this.slots += 1;
          }
          for (const listener of this.listeners) listener(id);
        }
    } catch (err) {
      this.failed = true;
      log.warn('Could not list the rotation records; the rest are read one by one', {
        error: errorMessage(err),
      });
    }
    this.settled = true;
    for (const listener of this.listeners) listener(undefined);
  }

  /** Whether the connection's record (lower-cased id) is known from the listing, or the listing is over. */
  isReady(connectionId: string): boolean {
    return this.settled || this.found.has(connectionId) || this.handedOut.has(connectionId);
  }

  /** `listener(id)` as each record is listed, `listener(undefined)` once the listing is over. */
  onReady(listener: (connectionId: string | undefined) => void): void {
    this.listeners.push(listener);
  }

  /**
   * The listed record (`record` undefined: the listing is complete and has none), or 'read' when
   * unknown. A record is handed out once and then forgotten (memory); asked again, it is 'read'.
   */
  lookup(connectionId: string): { record: RotationRecord | undefined } | 'read' {
    const id = connectionId.toLowerCase();
    if (this.handedOut.has(id)) return 'read';
    const found = this.found.get(id);
    if (found instanceof Error) return 'read';
    if (found !== undefined) {
      const text = this.texts.get(found);
      this.found.delete(id);
      this.texts.delete(found);
      this.handedOut.add(id);
      if (text !== undefined) return { record: JSON.parse(text) as RotationRecord };
    }
    return this.settled && !this.failed ? { record: undefined } : 'read';
  }
}

/** Connections read ahead and worked on at once, per worker (MAX_CONCURRENCY): bounds what is held. */
const WINDOW_PER_WORKER = 4;

/** When each app of this run was read (engine clock, ms). */
const appReadAt = new WeakMap<ApplicationInfo, number>();

/** Reads an app from Graph for the plan, noting when; never rejects (a failure is an `AppLookupError`). */
function readAppForPlan(appId: string, deps: EngineDeps): Promise<AppLookup> {
  return deps.graph.getApplicationByAppId(appId).then(
    (found): AppLookup => {
      if (found) appReadAt.set(found, deps.clock.now().getTime());
      return found;
    },
    (err: unknown): AppLookup => ({ error: describeError(err, 'graph') }),
  );
}

/** The app's lookup for this run: started once per app, shared by the connections that use it. */
function lookupApp(
  apps: Map<string, Promise<AppLookup>>,
  appId: string,
  deps: EngineDeps,
): Promise<AppLookup> {
  let lookup = apps.get(appId);
  if (!lookup) {
    lookup = readAppForPlan(appId, deps);
    apps.set(appId, lookup);
  }
  return lookup;
}

/**
 * Reads a connection's app ahead of its turn, through `reads` (at most the run's concurrency at once,
 * apart from the loop's own calls), so the loop's workers find it ready and a rotation finds it fresh.
 */
function readAppAhead(
  { connection }: DiscoveredConnection,
  apps: Map<string, Promise<AppLookup>>,
  deps: EngineDeps,
  reads: ReturnType<typeof pLimit>,
): Promise<unknown> {
  const appId = connection.authorization.parameters['serviceprincipalid'];
  if (connection.authorization.scheme !== 'ServicePrincipal' || !appId) return Promise.resolve();
  let lookup = apps.get(appId);
  if (!lookup) {
    lookup = reads(() => readAppForPlan(appId, deps));
    apps.set(appId, lookup);
  }
  return lookup;
}

/**
 * A connection as it waits for its turn, as JSON text, without what no step before its turn reads:
 * who created it, its description and owner, and its project references (already merged into
 * `projects`). Every write reads the connection again first (the PUT sends that body, not this one).
 */
function queuedText(discovered: DiscoveredConnection): string {
  const connection: ServiceConnection = { ...discovered.connection, serviceEndpointProjectReferences: [] };
  delete connection['createdBy'];
  delete connection.description;
  delete connection.owner;
  return JSON.stringify({ ...discovered, connection });
}

/** Client ids that more than one of the connections names. */
function appsUsedTwice(connections: DiscoveredConnection[]): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const { connection } of connections) {
    const appId = connection.authorization.parameters['serviceprincipalid']?.toLowerCase();
    if (!appId) continue;
    if (seen.has(appId)) twice.add(appId);
    seen.add(appId);
  }
  return twice;
}

/** The connection's record: from the run's listing when it has it, else read on its own. */
async function readRecord(
  connectionId: string,
  deps: EngineDeps,
  listing: RecordListing | undefined,
): Promise<{ record?: RotationRecord; error?: string }> {
  const listed = listing?.lookup(connectionId);
  if (listed && listed !== 'read') return { record: listed.record };
  try {
    return { record: await deps.store.getRecord(connectionId) };
  } catch (err) {
    return { error: errorMessage(err) };
  }
}

async function prepare(
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
    app = await lookupApp(apps, appId, deps);
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
    report,
    record,
    runId: context.runId,
    ...(ownApp && readAtMs !== undefined ? { app: { info: ownApp, readAtMs } } : {}),
    ...(entitlement ? { entitlement } : {}),
  };
}

function conversionSummary(r: ConversionRecord): NonNullable<ConnectionReport['conversion']> {
  const out: NonNullable<ConnectionReport['conversion']> = { path: r.path, phase: r.phase };
  if (r.issuer) out.issuer = r.issuer;
  if (r.subject) out.subject = r.subject;
  if (r.revertDeadline) out.revertDeadline = r.revertDeadline;
  return out;
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
  usage: AppUsage | undefined,
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
    // A fresh read of the app is not repeated under the lock (see rotation's `reusableApp`).
    ...(prepared.app ? { app: prepared.app } : {}),
    ...(usage ? { usage } : {}),
    // Checked again by the engine right before a credential is given.
    ...(prepared.entitlement?.bound && prepared.entitlement.how
      ? {
          entitlement: {
            appId: prepared.entitlement.appId,
            how: prepared.entitlement.how,
            ...(prepared.entitlement.toRecord ? { toRecord: prepared.entitlement.toRecord } : {}),
          },
        }
      : {}),
  };
  switch (thePlan.action) {
    case 'rotate-secret':
      return rotateConnection(target, deps, {
        ...settings,
        secretLifetimeDays: thePlan.secretLifetimeDays ?? settings.secretLifetimeDays,
      });
    case 'convert-to-wif': {
      const conversion = thePlan.conversion;
      if (!conversion) return undefined;
      if (conversion.kind === 'revert') return revertConversion(target, deps, settings);
      if (conversion.needsFallbackSecret) {
        // Azure DevOps never returns the secret it stores: rotate first, so Key Vault holds one to fall back on.
        const rotated = await rotateConnection(target, deps, settings);
        if (rotated.outcome !== 'succeeded') {
          rotated.steps.push('not converted: the rotation that provides the fallback secret did not succeed');
          return rotated;
        }
        const converted = await convertConnection(
          {
            ...target,
            plannedFrom: undefined,
            path: conversion.path,
            // The rotation recorded the binding already.
            ...(target.entitlement ? { entitlement: { ...target.entitlement, toRecord: undefined } } : {}),
          },
          deps,
          settings,
        );
        if (rotated.bindingRecorded) converted.bindingRecorded = true;
        converted.steps = [...rotated.steps.map((s) => `rotation: ${s}`), ...converted.steps];
        converted.removedKeyIds = [...rotated.removedKeyIds, ...converted.removedKeyIds];
        return converted;
      }
      return convertConnection({ ...target, path: conversion.path }, deps, settings);
    }
    case 'delete':
      return retireConnection(
        {
          ...target,
          organization: prepared.report.organization,
          projects: discovered.projects,
          reason: thePlan.retirement?.reason ?? thePlan.reason,
          runId: prepared.runId,
        },
        deps,
        settings,
      );
    case 'repair': {
      if (thePlan.repair === 'recover-record') return recoverRotationRecord(target, deps, settings);
      if (thePlan.repair === 'remove-orphans')
        return removeOrphanCredentials(target, thePlan.orphanKeyIds, deps, settings);
      const repaired = await repairConnection(target, deps, settings);
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
  if (result.cleanup) report.cleanup = result.cleanup;
  if (result.outcome === 'succeeded' && result.secretExpiresAt) {
    report.newSecretExpiresAt = result.secretExpiresAt;
  }
  if (result.conversion) {
    report.conversion = conversionSummary(result.conversion);
    // Converted: no longer a connection that could leave its secret behind.
    if (['converted', 'verified', 'completed'].includes(result.conversion.phase)) delete report.convertible;
  }
  if (result.retired) report.retired = result.retired;
  if (result.bindingRecorded && report.entitlement) report.entitlement.recorded = true;
  const error = result.error;
  if (!error) return;
  report.error = error.message;
  if (result.outcome !== 'failed') return;
  // What the failure says about the connection, for the operator.
  if (error.code === 'state-lost') {
    // Found under the lock (the plan did not see it): the same verdict as assessment's.
    report.finding = 'error';
    report.diagnosis = diagnosisOf('rotation-state-lost');
    return;
  }
  if (error.code === 'blocked-by-policy') {
    report.finding = 'blocked-by-policy';
    // Which refusal, by Graph's error code (see addPasswordRefusal); a policy read up front says policy.
    const refusal =
      error.status !== undefined
        ? addPasswordRefusal({ status: error.status, code: error.serviceCode, message: error.message })
        : undefined;
    report.diagnosis = diagnosisOf(refusal ?? 'password-policy', error.serviceCode);
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

  // A whole run lists every rotation record (one Key Vault call per 25), from discovery on.
  const records =
    !options.connectionId && deps.store.listRecords
      ? new RecordListing(deps.store.listRecords(), deps.log)
      : undefined;
  // The census counts every connection of every configured organization and project; the scope
  // (organization, AZDO_PROJECTS, connection, policy) only narrows what is remediated. One listing
  // serves both, so a run without filters makes no extra call.
  const takeCensus = options.census ?? (options.organizationUrl === undefined && options.usage === undefined);
  const listed = takeCensus ? settings.organizations : organizations;
  const discovery = await discoverConnections(
    listed.map((o) => o.url),
    deps.devops,
    {
      concurrency: settings.maxConcurrency,
      onProject: (organizationUrl, project) =>
        options.onProgress?.({ stage: 'discovering', organizationUrl, project }),
    },
  );
  const census = takeCensus ? buildCensus(discovery.connections, discovery.problems) : undefined;
  const inScope = scopeFilter(organizations, settings.projects);
  const problems = discovery.problems.filter(
    (p) => inScope.organization(p.organizationUrl) && inScope.project(p.project),
  );
  let connections = discovery.connections.filter(
    (c) => inScope.organization(c.organizationUrl) && c.projects.some((p) => inScope.project(p.name, p.id)),
  );
  if (options.connectionId) {
    const wanted = options.connectionId.toLowerCase();
    connections = connections.filter((c) => c.connection.id.toLowerCase() === wanted);
  }
  const intent = options.connectionId ? options.intent : undefined;
  const orgNameOf = (url: string): string =>
    organizations.find((o) => o.url.toLowerCase() === url.toLowerCase())?.name ?? url;
  const decisions = new Map<DiscoveredConnection, PolicyDecision>();
  const excluded: ExcludedConnection[] = [];
  connections = connections.filter((d) => {
    const decision = resolvePolicy(settings.policy ?? DEFAULT_POLICY, {
      organization: orgNameOf(d.organizationUrl),
      organizationUrl: d.organizationUrl,
      projects: d.projects.map((p) => p.name),
      connectionName: d.connection.name,
    });
    decisions.set(d, decision);
    // Excluded: not even read further, unless a person asked for this one (then reported as excluded).
    if (decision.choice !== 'exclude' || (options.intent && options.connectionId)) return true;
    excluded.push({
      organization: orgNameOf(d.organizationUrl),
      connectionId: d.connection.id,
      connectionName: d.connection.name,
      ...(decision.rule !== undefined ? { rule: decision.rule } : {}),
    });
    return false;
  });
  const failingSince = await trackFailing(
    connections,
    deps,
    settings,
    orgNameOf,
    options.trackFailures ?? !dryRun,
  );
  options.onProgress?.({
    stage: 'discovered',
    connections: connections.length,
    projects: discovery.projectsScanned,
  });
  const usageOf = (d: DiscoveredConnection): AppUsage | undefined => {
    const appId = d.connection.authorization.parameters['serviceprincipalid'];
    if (!appId) return undefined;
    if (census) return census.usageFor(appId, d.organizationUrl, d.connection.id);
    return options.connectionId && d.connection.id.toLowerCase() === options.connectionId.toLowerCase()
      ? options.usage
      : undefined;
  };

  const orgNames = new Map(organizations.map((o) => [o.url.toLowerCase(), o.name]));
  const apps = new Map<string, Promise<AppLookup>>();
  const appReads = pLimit(Math.max(1, settings.maxConcurrency));
  const sharedApps = appsUsedTwice(connections);
  const limit = pLimit(Math.max(1, settings.maxConcurrency));
  // Memory (docs/performance.md): once its record is listed, a connection takes its turn in a window
  // of a few times the concurrency (`takeTurns`), in which its app is read ahead and its work done;
  // what it needed (its body, its app, its record) is let go once it is reported.
  // Until its turn, each connection is kept as its JSON text (`queuedText`) outside the heap
  // (`OffHeapTexts`): a tenth of the memory of the parsed body, and nothing for the collector to walk
  // or for V8 to multiply. Its report is kept the same way until the run is over.
  const total = connections.length;
  const keys = connections.map((d) => d.connection.id.toLowerCase());
  const decisionAt: (PolicyDecision | undefined)[] = connections.map((d) => decisions.get(d));
  const queue = OffHeapTexts.of(connections.map(queuedText));
  connections = [];
  discovery.connections = [];
  decisions.clear();
  let done = 0;
  const finished = new OffHeapTexts(total);
  await takeTurns(
    keys,
    Math.max(1, settings.maxConcurrency) * WINDOW_PER_WORKER,
    async (index) => finished.set(index, JSON.stringify(await work(index))),
    records,
  );
  const reports = keys.map((_, index) => {
    const text = finished.get(index);
    if (text === undefined) throw new Error('A connection was not reported.');
    return JSON.parse(text) as ConnectionReport;
  });

  async function work(index: number): Promise<ConnectionReport> {
    const text = queue.get(index);
    if (text === undefined) throw new Error('A connection was worked on twice.');
    const discovered = JSON.parse(text) as DiscoveredConnection;
    try {
      await readAppAhead(discovered, apps, deps, appReads);
      return await limit(async (): Promise<ConnectionReport> => {
        const orgName = orgNames.get(discovered.organizationUrl.toLowerCase()) ?? discovered.organizationUrl;
        let report: ConnectionReport;
        try {
          const prepared = await prepare(discovered, deps, settings, apps, orgName, {
            policy: decisionAt[index] ?? { choice: 'rotate', source: 'the default (no policy)' },
            intent,
            failingSince: failingSince.get(
              `${discovered.organizationUrl.toLowerCase()}|${discovered.connection.id.toLowerCase()}`,
            ),
            runId,
            records,
            sharedApps,
            dryRun,
          });
          report = prepared.report;
          if (!dryRun && report.outcome === 'planned') {
            const result = await execute(prepared, deps, settings, usageOf(discovered));
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
          total,
          connectionName: report.connectionName,
        });
        emitConnectionEvents(emit, runId, report, deps.clock.now(), settings.rotateDaysBeforeExpiry);
        return report;
      });
    } finally {
      queue.delete(index);
      decisionAt[index] = undefined;
      // An app only this connection uses is not needed again this run.
      const appId = discovered.connection.authorization.parameters['serviceprincipalid'];
      if (appId && !sharedApps.has(appId.toLowerCase())) apps.delete(appId);
    }
  }

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
    discoveryProblems: problems.length,
  });
  return { report, problems, excluded, ...(census ? { census } : {}) };
}

/**
 * For RETIRE_FAILED_AFTER_DAYS: since when each failing connection has failed, from the run ledger
 * (first sighting), noting this run's sightings unless `write` is false. Best effort: without the
 * ledger, or when it cannot be read, no connection is retired for its age this run.
 */
async function trackFailing(
  connections: DiscoveredConnection[],
  deps: EngineDeps,
  settings: RunSettings,
  orgNameOf: (url: string) => string,
  write: boolean,
): Promise<Map<string, string>> {
  const since = new Map<string, string>();
  const ledger = deps.retirements;
  if (!ledger || !settings.retirement?.failedAfterDays) return since;
  const byOrg = new Map<string, DiscoveredConnection[]>();
  for (const c of connections) {
    const list = byOrg.get(c.organizationUrl) ?? [];
    list.push(c);
    byOrg.set(c.organizationUrl, list);
  }
  for (const [url, list] of byOrg) {
    const failing = (c: DiscoveredConnection) =>
      !c.connection.isReady || c.connection.operationStatus?.state?.toLowerCase() === 'failed';
    const ids = {
      failing: list.filter(failing).map((c) => c.connection.id),
      healthy: list.filter((c) => !failing(c)).map((c) => c.connection.id),
    };
    try {
      const found = write
        ? await ledger.trackFailing(orgNameOf(url), ids, deps.clock.now())
        : await ledger.failingSince(orgNameOf(url), ids.failing);
      for (const [id, at] of found) since.set(`${url.toLowerCase()}|${id.toLowerCase()}`, at);
    } catch (err) {
      deps.log.warn('Could not read or note failing connections in the run ledger', {
        error: errorMessage(err),
      });
    }
  }
  return since;
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
