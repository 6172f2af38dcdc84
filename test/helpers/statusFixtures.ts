/** Plain-object reports and ledger entries for the status page tests (no sandbox). */
import { randomUUID } from 'node:crypto';
import { summarize, type ConnectionReport, type RunReport } from '../../src/remediation/report';
import { createMemoryRunLedger } from '../../src/clients/runLedger';
import type { RunLedger, RunRecord } from '../../src/remediation/ports';

export const STATUS_NOW = new Date('2026-03-10T08:30:00.000Z');
const DAY_MS = 24 * 3600 * 1000;

/** ISO time `days` from `STATUS_NOW`. */
export function daysFromNow(days: number, now: Date = STATUS_NOW): string {
  return new Date(now.getTime() + days * DAY_MS).toISOString();
}

export function connectionReport(overrides: Partial<ConnectionReport> = {}): ConnectionReport {
  return {
    organization: 'contoso',
    organizationUrl: 'https://dev.azure.com/contoso',
    projects: ['web'],
    connectionId: randomUUID(),
    connectionName: 'web-prod-deploy',
    appId: randomUUID(),
    finding: 'healthy',
    action: 'none',
    outcome: 'skipped',
    credentialSource: 'inferred',
    scheme: 'ServicePrincipal',
    creationMode: 'Automatic',
    secretExpiresAt: daysFromNow(200),
    ...overrides,
  };
}

/** One connection per finding (and then some), as a live run would report them. */
export function allFindingsConnections(now: Date = STATUS_NOW): ConnectionReport[] {
  return [
    connectionReport({ connectionName: 'web-prod-deploy', secretExpiresAt: daysFromNow(210, now) }),
    connectionReport({
      connectionName: 'web-staging',
      finding: 'expiring',
      action: 'rotate-secret',
      outcome: 'succeeded',
      reason: 'The secret ends within 30 days.',
      secretExpiresAt: daysFromNow(12, now),
      newSecretExpiresAt: daysFromNow(90, now),
      phase: 'verified',
    }),
    connectionReport({
      connectionName: 'data-ml-workspace',
      projects: ['data'],
      finding: 'expiring',
      action: 'rotate-secret',
      outcome: 'failed',
      secretExpiresAt: daysFromNow(5, now),
      error: 'adding a password: Graph 403 Authorization_RequestDenied: Insufficient privileges.',
      diagnosis: {
        kind: 'graph-permission-denied',
        cause: "This service's identity may not change the app through Microsoft Graph.",
        code: 'Authorization_RequestDenied',
        fixableByService: false,
        nextStep: 'Grant the service identity Application.ReadWrite.OwnedBy and make it an owner of the app.',
      },
    }),
    connectionReport({
      connectionName: 'platform-terraform',
      projects: ['platform'],
      finding: 'expired',
      action: 'rotate-secret',
      outcome: 'succeeded',
      secretExpiresAt: daysFromNow(-3, now),
      newSecretExpiresAt: daysFromNow(90, now),
    }),
    connectionReport({
      connectionName: 'platform-legacy',
      projects: ['platform'],
      finding: 'expired',
      action: 'rotate-secret',
      outcome: 'skipped',
      secretExpiresAt: daysFromNow(-20, now),
      reason: 'Another rotation holds the lock.',
    }),
    connectionReport({
      connectionName: 'platform-dns',
      projects: ['platform', 'web'],
      finding: 'not-ready',
      action: 'repair',
      outcome: 'succeeded',
      secretExpiresAt: daysFromNow(400, now),
    }),
    connectionReport({
      connectionName: 'web-legacy',
      finding: 'not-ready',
      action: 'report',
      outcome: 'skipped',
      secretExpiresAt: daysFromNow(45, now),
      diagnosis: {
        kind: 'app-disabled',
        cause: "The app's service principal is disabled for sign-in in the tenant.",
        code: 'AADSTS7000112',
        fixableByService: false,
        nextStep:
          "Set 'Enabled for users to sign-in' to Yes in Entra admin center > Enterprise applications.",
      },
    }),
    connectionReport({
      connectionName: 'data-legacy-reporting',
      projects: ['data'],
      finding: 'app-missing',
      action: 'report',
      outcome: 'skipped',
      secretExpiresAt: undefined,
      diagnosis: {
        kind: 'app-not-found',
        cause: 'The app registration behind the connection no longer exists.',
        code: 'AADSTS700016',
        fixableByService: false,
        nextStep: 'Restore the app from Deleted applications within 30 days, or delete the connection.',
      },
    }),
    connectionReport({
      organization: 'fabrikam',
      organizationUrl: 'https://dev.azure.com/fabrikam',
      connectionName: 'payments-reporting',
      projects: ['payments'],
      finding: 'blocked-by-policy',
      action: 'report',
      outcome: 'skipped',
      secretExpiresAt: daysFromNow(20, now),
      diagnosis: {
        kind: 'password-policy',
        cause: 'An app management policy forbids new client secrets for this app.',
        fixableByService: false,
        nextStep:
          'Ask an Entra administrator to exempt the app, or convert the connection to workload identity.',
      },
    }),
    connectionReport({
      organization: 'fabrikam',
      organizationUrl: 'https://dev.azure.com/fabrikam',
      connectionName: 'payments-wif',
      projects: ['payments'],
      finding: 'unsupported',
      action: 'none',
      outcome: 'skipped',
      scheme: 'WorkloadIdentityFederation',
      secretExpiresAt: undefined,
      appId: null,
    }),
    connectionReport({
      organization: 'fabrikam',
      organizationUrl: 'https://dev.azure.com/fabrikam',
      connectionName: 'payments-broken-read',
      projects: ['payments'],
      finding: 'error',
      action: 'report',
      outcome: 'failed',
      secretExpiresAt: undefined,
      error: 'Graph 500 InternalServerError while reading the app',
    }),
  ];
}

export function reportOf(
  connections: ConnectionReport[],
  overrides: Partial<RunReport> = {},
  now: Date = STATUS_NOW,
): RunReport {
  return {
    runId: 'a1b2c3d4-0000-4000-8000-000000000001',
    startedAt: new Date(now.getTime() - 3 * 3600 * 1000).toISOString(),
    finishedAt: new Date(now.getTime() - 3 * 3600 * 1000 + 42_000).toISOString(),
    dryRun: false,
    summary: summarize(connections),
    connections,
    ...overrides,
  };
}

interface FixtureRun {
  record: RunRecord;
  /** The run's report (completed runs). */
  report?: RunReport;
}

/**
 * The run that produced `report` (a nightly timer run), plus earlier runs, newest first: the
 * evening's dry run over HTTP, a timer run that failed before it had a report, and a CLI run.
 */
function historyFor(report: RunReport, now: Date = STATUS_NOW): FixtureRun[] {
  const ago = (hours: number): string => new Date(now.getTime() - hours * 3600 * 1000).toISOString();
  const rerun = (runId: string, startedAt: string, seconds: number, dryRun: boolean): RunReport => {
    const connections = report.connections.map((c) =>
      dryRun && c.outcome !== 'skipped' ? { ...c, outcome: 'planned' as const } : c,
    );
    return {
      runId,
      startedAt,
      finishedAt: new Date(Date.parse(startedAt) + seconds * 1000).toISOString(),
      dryRun,
      summary: summarize(connections),
      connections,
    };
  };
  const record = (r: RunReport, trigger: RunRecord['trigger']): RunRecord => ({
    runId: r.runId,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    status: 'completed',
    dryRun: r.dryRun,
    expected: r.connections.filter((c) => c.action !== 'none' && c.action !== 'report').length,
    summary: r.summary,
    trigger,
    scope: 'full',
  });
  const dry = rerun('b2c3d4e5-0000-4000-8000-000000000002', ago(20), 36, true);
  const cli = rerun('d4e5f6a7-0000-4000-8000-000000000004', ago(51), 180, false);
  return [
    { record: record(report, 'timer'), report },
    { record: record(dry, 'http'), report: dry },
    {
      record: {
        runId: 'c3d4e5f6-0000-4000-8000-000000000003',
        startedAt: ago(27),
        finishedAt: ago(26.99),
        status: 'failed',
        dryRun: false,
        expected: 0,
        trigger: 'timer',
        scope: 'full',
        error: 'Listing projects of https://dev.azure.com/contoso failed: Azure DevOps 401 Unauthorized.',
      },
    },
    { record: record(cli, 'cli'), report: cli },
  ];
}

/** The ledger entries of `historyFor`, newest first. */
export function runsFor(report: RunReport, now: Date = STATUS_NOW): RunRecord[] {
  return historyFor(report, now).map((r) => r.record);
}

/** An in-memory run ledger holding `historyFor(report)`: `latestReport()` is `report`. */
export async function ledgerWithHistory(report: RunReport, now: Date = STATUS_NOW): Promise<RunLedger> {
  let clock = now;
  const ledger = createMemoryRunLedger({ now: () => clock });
  for (const { record, report: runReport } of historyFor(report, now).reverse()) {
    await ledger.startRun(record.runId, {
      trigger: record.trigger,
      dryRun: record.dryRun,
      expected: record.expected,
      startedAt: record.startedAt,
      scope: 'full',
    });
    if (runReport) await ledger.completeRun(record.runId, runReport);
    else {
      clock = new Date(record.finishedAt ?? record.startedAt);
      await ledger.failRun(record.runId, record.error ?? 'failed');
      clock = now;
    }
  }
  return ledger;
}
