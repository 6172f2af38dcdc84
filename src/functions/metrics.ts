/**
 * The metrics of a finished full run (pure): connections by finding, connections that need a
 * person, and the days to the nearest secret expiry (Application Insights `customMetrics`, for
 * charts and alert rules).
 */
import { FINDINGS, type RunReport } from '../remediation/report';

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

export function runMetrics(report: RunReport, now: Date): RunMetric[] {
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
