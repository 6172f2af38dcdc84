/**
 * The metrics of a finished full run (pure): connections by finding, connections that need a
 * person, and the days to the nearest secret expiry (Application Insights `customMetrics`, for
 * charts and alert rules).
 */
import { runNotification, type Notification } from '../clients/notifier';
import type { RunRecord } from '../remediation/ports';
import { FINDINGS, type RunReport, type RunSummary } from '../remediation/report';

interface RunMetric {
  name: 'ConnectionsByFinding' | 'ConnectionsNeedingAttention' | 'DaysToNearestExpiry';
  value: number;
  properties: Record<string, string>;
}

const DAY_MS = 24 * 3600 * 1000;

/** The end of the secret a connection uses after the run (the new one when it was rotated). */
function secretEnd(c: RunReport['connections'][number]): string | undefined {
  return c.outcome === 'succeeded' && c.newSecretExpiresAt ? c.newSecretExpiresAt : c.secretExpiresAt;
}

function runMetrics(report: RunReport, now: Date): RunMetric[] {
  const metrics: RunMetric[] = FINDINGS.map((finding) => ({
    name: 'ConnectionsByFinding' as const,
    value: report.summary.byFinding[finding],
    properties: { finding },
  }));
  metrics.push({ name: 'ConnectionsNeedingAttention', value: report.summary.needsAttention, properties: {} });
  let nearest: { days: number; connectionId: string; connectionName: string } | undefined;
  for (const c of report.connections) {
    const end = secretEnd(c);
    const t = end === undefined ? Number.NaN : Date.parse(end);
    if (Number.isNaN(t)) continue;
    const days = (t - now.getTime()) / DAY_MS;
    if (!nearest || days < nearest.days)
      nearest = { days, connectionId: c.connectionId, connectionName: c.connectionName };
  }
  if (nearest)
    metrics.push({
      name: 'DaysToNearestExpiry',
      value: Math.round(nearest.days * 10) / 10,
      properties: { connectionId: nearest.connectionId, connectionName: nearest.connectionName },
    });
  return metrics;
}

/**
 * What a finished run tells the app's telemetry and notifier (pure): its summary, its metrics (full
 * runs) and its notification. Small: the engine thread sends this, not the run's report.
 */
export interface FinishedRun {
  summary?: RunSummary;
  metrics: RunMetric[];
  notification?: Notification;
}

export function describeFinishedRun(run: RunRecord, report: RunReport | undefined, now: Date): FinishedRun {
  const notification = report
    ? runNotification(report, { trigger: run.trigger, onlyProblems: run.scope === 'connection' })
    : {
        kind: 'failure' as const,
        title: 'sc-remediator: the run failed',
        text: `Run ${run.runId} (${run.trigger}) failed: ${run.error ?? 'unknown error'}`,
        runId: run.runId,
        facts: [{ name: 'Started', value: run.startedAt }],
        items: [],
      };
  const summary = report?.summary ?? run.summary;
  return {
    ...(summary ? { summary } : {}),
    metrics: report && (run.scope ?? 'full') === 'full' ? runMetrics(report, now) : [],
    ...(notification ? { notification } : {}),
  };
}
