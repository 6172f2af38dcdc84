/**
 * The metrics of a finished full run (pure): connections by finding, connections that need a
 * person, and the days to the nearest secret expiry (Application Insights `customMetrics`, for
 * charts and alert rules).
 */
import { getHeapStatistics } from 'node:v8';
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

const MB = 1024 * 1024;

/**
 * The memory of the worker process that finished a run, for `RunCompleted`: its peak resident size,
 * the heap limit V8 was given, and the memory limit Node saw (0: none). Node sizes the heap from that
 * limit (docs/performance.md), so these show in production what the bench can only assume: whether
 * the instance's memory reaches the process as a limit, and how close a run came to it.
 */
export function workerMemory(): {
  workerPeakRssMb: number;
  workerHeapLimitMb: number;
  workerMemoryLimitMb: number;
} {
  const limit = process.constrainedMemory();
  return {
    workerPeakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    workerHeapLimitMb: Math.round(getHeapStatistics().heap_size_limit / MB),
    // Node reports no limit as 0 on some versions and as a huge number on others.
    workerMemoryLimitMb: limit > 0 && limit < Number.MAX_SAFE_INTEGER ? Math.round(limit / MB) : 0,
  };
}
