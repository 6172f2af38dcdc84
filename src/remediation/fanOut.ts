/**
 * The run spread over many invocations (the Functions app): plan once, then one queue message per
 * connection that needs work, each remediated by its own invocation on any instance, each result
 * recorded in the run ledger; the last one recorded completes the run.
 *
 *   planRun          discover → assess → plan (a dry run of the whole tenant), record the run and
 *                    every connection with nothing to do; return one work item per connection to fix
 *   processWorkItem  re-assess that one connection and run its state machine (idempotent: a
 *                    redelivered message finds its result recorded, or the connection healthy)
 *   recordPoisoned   a work item that failed every attempt is recorded as failed, never lost
 *   remediateOne     one connection on demand (HTTP API), recorded as a run of its own
 *
 * Everything the run loop does (locks, per-connection isolation, dry run, events) is reused as is:
 * the adapters in `scope.ts` narrow discovery to the one connection.
 */
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../telemetry';
import { organizationName } from './assess';
import { carriedUsage, type AppUsage } from './census';
import type { DiscoveryProblem } from './discovery';
import type { ConnectionReport, RunReport } from './report';
import type { EngineDeps } from './engine';
import type { RecordResult, RunLedger, RunRecord, RunTrigger } from './ports';
import {
  configuredOrganization,
  runRemediation,
  type RunEventName,
  type RunEventSink,
  type RunSettings,
} from './run';
import type { Intent } from './policy';
import { recordingProjects, scopedToConnection, watchingLocks } from './scope';

/** One queue message: a connection of a run to remediate. */
export interface WorkItem {
  runId: string;
  /** One of the configured organization URLs. */
  organizationUrl: string;
  /** A project the connection is shared with (id, or name), to read it through. */
  project: string;
  connectionId: string;
  /** ISO time the message was queued. */
  enqueuedAt: string;
  /**
   * The usage census of the connection's app as the planning run took it: without it the worker
   * keeps every superseded credential that is still valid (DESIGN invariant 9).
   */
  usage?: AppUsage;
}

export interface FanOutContext {
  deps: EngineDeps;
  settings: RunSettings;
  ledger: RunLedger;
  /** Events, already correlated with the invocation. */
  events: RunEventSink;
  /** Called once per finished run (completed or failed): `RunCompleted`, metrics, notification. */
  onRunFinished(run: RunRecord, report: RunReport | undefined): Promise<void>;
}

type BufferedEvent = [RunEventName, Record<string, string | number | boolean>];

function sameKey(organizationUrl: string | undefined, connectionId: string): string {
  return `${(organizationUrl ?? '').toLowerCase()}|${connectionId.toLowerCase()}`;
}

/** Emits the connection events (not RunStarted/RunCompleted, which the fan-out emits itself). */
function emitConnectionEvents(ctx: FanOutContext, events: BufferedEvent[]): void {
  for (const [name, properties] of events)
    if (name !== 'RunStarted' && name !== 'RunCompleted') ctx.events(name, properties);
}

export interface PlannedRun {
  run: RunRecord;
  /** One per connection that needs work (none in a dry run). */
  messages: WorkItem[];
  /** The report, when the run completed at once (nothing to fan out). */
  report?: RunReport;
  problems: DiscoveryProblem[];
}

/**
 * Plans a full run and records it. A dry run (settings or request) records every planned action
 * and completes at once; otherwise each connection whose plan changes something becomes a work item.
 */
export async function planRun(
  ctx: FanOutContext,
  options: { runId?: string; trigger: RunTrigger; dryRun?: boolean },
): Promise<PlannedRun> {
  const runId = options.runId ?? randomUUID();
  const dryRun = ctx.settings.dryRun || options.dryRun === true;
  const { devops, projects } = recordingProjects(ctx.deps.devops);
  const buffered: BufferedEvent[] = [];
  const {
    report: planned,
    problems,
    census,
  } = await runRemediation({ ...ctx.deps, devops }, ctx.settings, {
    runId,
    dryRun: true,
    trackFailures: !dryRun,
    events: (name, properties) => buffered.push([name, properties]),
  });
  const work = dryRun ? [] : planned.connections.filter((c) => c.outcome === 'planned');
  const workKeys = new Set(work.map((c) => sameKey(c.organizationUrl, c.connectionId)));
  const assessed = planned.connections.filter(
    (c) => !workKeys.has(sameKey(c.organizationUrl, c.connectionId)),
  );

  ctx.events('RunStarted', {
    runId,
    dryRun,
    trigger: options.trigger,
    organizations: ctx.settings.organizations.length,
    connections: planned.connections.length,
    fannedOut: work.length,
  });
  let run = await ctx.ledger.startRun(runId, {
    trigger: options.trigger,
    dryRun,
    expected: work.length,
    startedAt: planned.startedAt,
    scope: 'full',
    problems,
    assessed,
    planned: work,
  });
  // Events of the connections recorded now; the worker emits those of the fanned-out ones.
  emitConnectionEvents(
    ctx,
    buffered.filter(([, p]) => {
      const id = typeof p['connectionId'] === 'string' ? p['connectionId'] : undefined;
      return !id || !work.some((c) => c.connectionId.toLowerCase() === id.toLowerCase());
    }),
  );

  if (problems.length > 0 && planned.connections.length === 0) {
    const failed = await ctx.ledger.failRun(
      runId,
      `No connection could be listed: ${problems.map((p) => p.message).join('; ')}`.slice(0, 2000),
    );
    run = failed ?? run;
    await ctx.onRunFinished(run, undefined);
    return { run, messages: [], problems };
  }
  if (work.length === 0) {
    const report: RunReport = { ...planned, dryRun };
    run = await ctx.ledger.completeRun(runId, report);
    await ctx.onRunFinished(run, report);
    return { run, messages: [], report, problems };
  }
  const enqueuedAt = ctx.deps.clock.now().toISOString();
  const messages = work.map((c): WorkItem => {
    const usage =
      census && c.appId && c.organizationUrl
        ? carriedUsage(census.usageFor(c.appId, c.organizationUrl, c.connectionId))
        : undefined;
    return {
      runId,
      organizationUrl: c.organizationUrl ?? '',
      project: projects.get(sameKey(c.organizationUrl, c.connectionId)) ?? c.projects[0] ?? '',
      connectionId: c.connectionId,
      enqueuedAt,
      ...(usage ? { usage } : {}),
    };
  });
  return { run, messages, problems };
}

export type WorkOutcome =
  /** Remediated (or found needing nothing) and recorded; `completed` when it finished the run. */
  | { status: 'recorded'; report: ConnectionReport; completed?: RunReport }
  /** Already recorded for this run: a redelivery, nothing done again (the run settled). */
  | { status: 'duplicate'; report: ConnectionReport }
  /** Worth another attempt (lock held elsewhere, connection could not be read): throw to retry. */
  | { status: 'retry'; reason: string }
  /** Refused (an organization that is not configured), recorded as failed. */
  | { status: 'rejected'; reason: string };

/**
 * A work item's outcome as the invocation gets it: when the item completed the run, the run's
 * report (every connection of the run) goes to `onRunFinished` alone, not back a second time here.
 */
export type WorkResult =
  | Exclude<WorkOutcome, { status: 'recorded' }>
  | { status: 'recorded'; report: ConnectionReport; runCompleted: boolean };

export function workResult(outcome: WorkOutcome): WorkResult {
  if (outcome.status !== 'recorded') return outcome;
  return { status: 'recorded', report: outcome.report, runCompleted: outcome.completed !== undefined };
}

function minimalReport(item: WorkItem, organization: string): ConnectionReport {
  return {
    organization,
    organizationUrl: item.organizationUrl,
    projects: [item.project],
    connectionId: item.connectionId,
    connectionName: item.connectionId,
    appId: null,
    finding: 'error',
    action: 'report',
    outcome: 'failed',
    credentialSource: 'unknown',
    scheme: 'unknown',
  };
}

function failedReport(base: ConnectionReport, error: string): ConnectionReport {
  const report: ConnectionReport = { ...base, outcome: 'failed', error };
  delete report.steps;
  return report;
}

/** `RemediationFailed` for a connection the fan-out records as failed itself. */
function emitFailed(
  ctx: FanOutContext,
  runId: string,
  report: ConnectionReport,
  extra: Record<string, string> = {},
): void {
  ctx.events('RemediationFailed', {
    runId,
    organization: report.organization,
    connectionId: report.connectionId,
    connectionName: report.connectionName,
    action: report.action,
    finding: report.finding,
    error: report.error ?? '',
    ...extra,
  });
}

async function record(
  ctx: FanOutContext,
  runId: string,
  report: ConnectionReport,
): Promise<{ completed?: RunReport }> {
  return finish(ctx, await ctx.ledger.recordConnection(runId, report));
}

/** Tells `onRunFinished` when this call completed the run. */
async function finish(ctx: FanOutContext, result: RecordResult): Promise<{ completed?: RunReport }> {
  if (result.completed && result.run) await ctx.onRunFinished(result.run, result.completed);
  return { completed: result.completed };
}

/**
 * A work item whose result is already recorded (a redelivery): nothing is done again, but the run is
 * settled, since the first delivery may have stopped between its record and the run's count.
 */
async function duplicate(
  ctx: FanOutContext,
  runId: string,
  existing: ConnectionReport,
): Promise<WorkOutcome> {
  await finish(ctx, await ctx.ledger.settleRun(runId));
  return { status: 'duplicate', report: existing };
}

/**
 * Remediates one fanned-out connection. `attempt.dequeueCount` of `attempt.maxDequeueCount`: on the
 * last attempt a retryable problem is recorded instead of retried.
 */
export async function processWorkItem(
  ctx: FanOutContext,
  item: WorkItem,
  attempt: { dequeueCount: number; maxDequeueCount: number },
): Promise<WorkOutcome> {
  const last = attempt.dequeueCount >= attempt.maxDequeueCount;
  let org: { url: string; name: string };
  try {
    org = configuredOrganization(ctx.settings, item.organizationUrl);
  } catch (err) {
    // Never a request to a host that is not configured; record it so the run still completes.
    const reason = errorMessage(err);
    const name = organizationName(item.organizationUrl);
    const planned = await ctx.ledger.getPlanned(item.runId, item.connectionId);
    const report = failedReport(planned ?? minimalReport(item, name), reason);
    emitFailed(ctx, item.runId, report, { connectionId: item.connectionId });
    await record(ctx, item.runId, report);
    return { status: 'rejected', reason };
  }

  const existing = await ctx.ledger.getConnection(item.runId, org.name, item.connectionId);
  if (existing) return duplicate(ctx, item.runId, existing);

  const run = await ctx.ledger.getRun(item.runId);
  const dryRun = ctx.settings.dryRun || run?.dryRun === true;
  const { locks, refused } = watchingLocks(ctx.deps.locks);
  const devops = scopedToConnection(ctx.deps.devops, {
    organizationUrl: org.url,
    project: item.project,
    connectionId: item.connectionId,
  });
  const buffered: BufferedEvent[] = [];
  const result = await runRemediation({ ...ctx.deps, devops, locks }, ctx.settings, {
    runId: item.runId,
    organizationUrl: org.url,
    connectionId: item.connectionId,
    dryRun,
    events: (name, properties) => buffered.push([name, properties]),
    ...(item.usage ? { usage: item.usage } : {}),
  });
  let report = result.report.connections[0];
  if (!report) {
    const planned = await ctx.ledger.getPlanned(item.runId, item.connectionId);
    if (result.problems.length > 0) {
      const reason = `The connection could not be read: ${result.problems.map((p) => p.message).join('; ')}`;
      if (!last) return { status: 'retry', reason };
      report = failedReport(planned ?? minimalReport(item, org.name), reason);
    } else {
      report = {
        ...(planned ?? minimalReport(item, org.name)),
        outcome: 'skipped',
        error: 'The connection no longer exists (deleted since the run was planned).',
      };
      delete report.steps;
    }
  } else if (refused() && report.outcome === 'skipped' && !last) {
    return { status: 'retry', reason: report.error ?? 'Another rotation of this connection is in progress.' };
  }
  emitConnectionEvents(ctx, buffered);
  if (report.outcome === 'failed' && !buffered.some(([n]) => n === 'RemediationFailed'))
    emitFailed(ctx, item.runId, report);
  const { completed } = await record(ctx, item.runId, report);
  return { status: 'recorded', report, completed };
}

/**
 * Records a work item that failed `maxDequeueCount` times (moved to the poison queue) as failed, so
 * the run still completes and the failure is reported. A no-op when its result is already recorded.
 */
export async function recordPoisoned(
  ctx: FanOutContext,
  item: WorkItem,
  maxDequeueCount: number,
): Promise<WorkOutcome> {
  let orgName: string;
  try {
    orgName = configuredOrganization(ctx.settings, item.organizationUrl).name;
  } catch {
    orgName = organizationName(item.organizationUrl);
  }
  const existing = await ctx.ledger.getConnection(item.runId, orgName, item.connectionId);
  if (existing) return duplicate(ctx, item.runId, existing);
  const planned = await ctx.ledger.getPlanned(item.runId, item.connectionId);
  const report = failedReport(
    planned ?? minimalReport(item, orgName),
    `Gave up after ${maxDequeueCount} attempts: the work item was moved to the poison queue. The next run assesses the connection again.`,
  );
  emitFailed(ctx, item.runId, report, { reason: 'poison' });
  const { completed } = await record(ctx, item.runId, report);
  return { status: 'recorded', report, completed };
}

interface RemediateOneResult {
  runId: string;
  /** Undefined when the connection was not found in the organization. */
  report?: ConnectionReport;
  problems: DiscoveryProblem[];
  /** Another rotation of this connection held the lock: nothing was done. */
  lockHeld: boolean;
  /** The ledger's record, when the run was recorded. */
  run?: RunRecord;
}

/**
 * One connection on demand (HTTP API): assessed, and unless `dryRun`, remediated and recorded as a
 * run of its own (`scope: 'connection'`). `projectHint` (a project it was last seen in) saves
 * listing the organization; without it, or when the connection moved, the organization is listed.
 */
export async function remediateOne(
  ctx: FanOutContext,
  options: {
    organization: { url: string; name: string };
    connectionId: string;
    dryRun: boolean;
    trigger: RunTrigger;
    projectHint?: string;
    /** Record in the ledger and emit events (default: when not a dry run). */
    record?: boolean;
    /** Convert, revert or retire this connection on request (HTTP API). */
    intent?: Intent;
  },
): Promise<RemediateOneResult> {
  const runId = randomUUID();
  const dryRun = ctx.settings.dryRun || options.dryRun;
  const recordIt = options.record ?? !dryRun;
  const { locks, refused } = watchingLocks(ctx.deps.locks);
  const buffered: BufferedEvent[] = [];
  const events: RunEventSink = (name, properties) => buffered.push([name, properties]);
  const runOptions = {
    runId,
    organizationUrl: options.organization.url,
    connectionId: options.connectionId,
    dryRun,
    events,
    ...(options.intent ? { intent: options.intent } : {}),
  };
  let result: Awaited<ReturnType<typeof runRemediation>> | undefined;
  if (options.projectHint) {
    const devops = scopedToConnection(ctx.deps.devops, {
      organizationUrl: options.organization.url,
      project: options.projectHint,
      connectionId: options.connectionId,
    });
    result = await runRemediation({ ...ctx.deps, devops, locks }, ctx.settings, runOptions);
    if (result.report.connections.length === 0) {
      result = undefined;
      buffered.length = 0;
    }
  }
  result ??= await runRemediation({ ...ctx.deps, locks }, ctx.settings, runOptions);
  const report = result.report.connections[0];
  const lockHeld = refused() && report?.outcome === 'skipped';
  if (!recordIt || !report || lockHeld) return { runId, report, problems: result.problems, lockHeld };

  for (const [name, properties] of buffered)
    if (name !== 'RunCompleted') ctx.events(name, { ...properties, trigger: options.trigger });
  const runReport: RunReport = { ...result.report, dryRun };
  await ctx.ledger.startRun(runId, {
    trigger: options.trigger,
    dryRun,
    expected: 0,
    startedAt: runReport.startedAt,
    scope: 'connection',
    problems: result.problems,
    assessed: runReport.connections,
  });
  const run = await ctx.ledger.completeRun(runId, runReport);
  await ctx.onRunFinished(run, runReport);
  return { runId, report, problems: result.problems, lockHeld, run };
}
