/**
 * The run loop: discover → assess → plan → (unless dry run) remediate, one connection at a time
 * per worker, a bounded number of workers. One connection's failure never stops the run; the report
 * says what happened to each, and the caller fails visibly at the end. Its parts: which connections
 * (runSelection.ts), what is read for them (runInputs.ts), each one's plan (runPlanning.ts), and
 * carrying the plan out (runExecution.ts).
 */
import { randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import { errorMessage } from '../telemetry';
import type { AppLookup } from './assess';
import { buildCensus, type AppUsage, type UsageCensus } from './census';
import { discoverConnections, type DiscoveredConnection, type DiscoveryProblem } from './discovery';
import type { EngineDeps } from './engine';
import type { Intent } from './policy';
import type { PolicyDecision } from './policyFile';
import type { ServiceConnection } from './ports';
import { needsAttention, summarize, type ConnectionReport, type RunReport } from './report';
import { applyResult, execute } from './runExecution';
import {
  appCacheKey,
  appsUsedTwice,
  readAppAhead,
  RecordListing,
  trackFailing,
  type RunSettings,
} from './runInputs';
import { prepare } from './runPlanning';
import { configuredOrganization, selectConnections, type ExcludedConnection } from './runSelection';
import { OffHeapTexts } from './offHeapTexts';
import { depsForConnection } from './tenants';
import { takeTurns } from './turns';

// Callers import the run's names from here.
export type { RunSettings } from './runInputs';
export type { ExcludedConnection } from './runSelection';
export { configuredOrganization, findConnection } from './runSelection';

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

export interface RunResult {
  report: RunReport;
  problems: DiscoveryProblem[];
  /** Connections the policy excludes (not in the report). */
  excluded?: ExcludedConnection[];
  /** The usage census, when the run took one. */
  census?: UsageCensus;
}

/** Connections read ahead and worked on at once, per worker (MAX_CONCURRENCY): bounds what is held. */
const WINDOW_PER_WORKER = 4;

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
  const selection = selectConnections(discovery, organizations, settings, options);
  const { problems, decisions, excluded, orgNameOf } = selection;
  let connections = selection.connections;
  const intent = options.connectionId ? options.intent : undefined;
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
  selection.connections = [];
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
    // Graph in the connection's own tenant when it is a configured other tenant (tenants.ts).
    let connectionDeps = deps;
    let wiringError: Error | undefined;
    try {
      connectionDeps = depsForConnection(deps, discovered.connection, settings.additionalTenantIds);
    } catch (err) {
      wiringError = err instanceof Error ? err : new Error(String(err));
    }
    try {
      if (wiringError === undefined) await readAppAhead(discovered, apps, connectionDeps, appReads);
      return await limit(async (): Promise<ConnectionReport> => {
        const orgName = orgNames.get(discovered.organizationUrl.toLowerCase()) ?? discovered.organizationUrl;
        let report: ConnectionReport;
        try {
          if (wiringError !== undefined) throw wiringError;
          const prepared = await prepare(discovered, connectionDeps, settings, apps, orgName, {
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
            const result = await execute(prepared, connectionDeps, settings, usageOf(discovered));
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
      const appKey = appCacheKey(discovered.connection);
      if (appId && appKey && !sharedApps.has(appId.toLowerCase())) apps.delete(appKey);
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
