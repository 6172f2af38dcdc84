/** What the status page is rendered from: the latest report and the run ledger's records. */
import type { RunReport, RunSummary } from '../remediation/report';

/**
 * One run as the run ledger lists it. Structurally compatible with the ledger's `RunRecord`
 * (`src/clients/runLedger.ts`), with `status` and `trigger` widened to strings so that a newer ledger
 * value still renders (with neutral styling).
 */
export interface RunListEntry {
  runId: string;
  startedAt: string;
  finishedAt?: string;
  /** `running` | `completed` | `failed`. */
  status: string;
  dryRun: boolean;
  /** Connections the run expected to handle (queue messages sent). */
  expected: number;
  summary?: RunSummary;
  /** `timer` | `http` | `cli`. */
  trigger: string;
  /** `full` (default): every configured organization; `connection`: one connection. */
  scope?: string;
  /** Connections the run covers. */
  total?: number;
  /** Queued connections that have reported so far (a running run's progress). */
  recorded?: number;
  /** Why the run failed (redacted by the ledger; redacted again here). */
  error?: string;
  /** Organizations or projects discovery could not list: their connections are missing from the report. */
  problems?: readonly DiscoveryProblemLike[];
}

/** Structurally `DiscoveryProblem` (`src/remediation/discovery.ts`). */
export interface DiscoveryProblemLike {
  organizationUrl: string;
  project?: string;
  message: string;
}

export interface StatusPageInput {
  /** The report of the latest finished run, if any. */
  latest?: RunReport;
  /** The latest runs, any order (shown newest first). */
  runs: readonly RunListEntry[];
  /** The time the page is rendered at: relative times and days to expiry count from it. */
  now: Date;
  /** Problems reading the data (shown as a warning at the top; already plain text). */
  warnings?: readonly string[];
}
