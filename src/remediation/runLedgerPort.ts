/**
 * The run ledger's interface, owned by the core (re-exported by ports.ts): what each run did, for
 * the fan-out, the HTTP API and the status page. src/clients/runLedger.ts implements it.
 */
import type { DiscoveryProblem } from './discovery';
import type { RetiredConnectionRecord, RetirementLedger } from './ports';
import type { ConnectionReport, RunReport, RunSummary } from './report';

export type RunStatus = 'running' | 'completed' | 'failed';
export type RunTrigger = 'timer' | 'http' | 'cli';

/** One run as the ledger knows it (HTTP API `GET /api/runs/{runId}`, the status page). */
export interface RunRecord {
  runId: string;
  startedAt: string;
  finishedAt?: string;
  status: RunStatus;
  dryRun: boolean;
  /** Connections fanned out to the queue: the run completes once this many have reported. */
  expected: number;
  /** Present once the run completed. */
  summary?: RunSummary;
  trigger: RunTrigger;
  /** `full`: every configured organization; `connection`: one connection (HTTP remediate). */
  scope?: 'full' | 'connection';
  /** Connections the run covers (recorded at the start plus fanned out). */
  total?: number;
  /** Fanned-out connections that have reported so far. */
  recorded?: number;
  /** Discovery problems (a project or organization that could not be listed). */
  problems?: DiscoveryProblem[];
  /** Why the run failed (status `failed`). Redacted. */
  error?: string;
}

export interface StartRunMeta {
  trigger: RunTrigger;
  dryRun: boolean;
  /** Connections fanned out (the run completes when as many have reported). */
  expected: number;
  startedAt?: string;
  scope?: 'full' | 'connection';
  problems?: DiscoveryProblem[];
  /** Connections whose report is final at the start (nothing to do, or dry run). */
  assessed?: ConnectionReport[];
  /** Connections fanned out, as planned (the poison handler reports from these). */
  planned?: ConnectionReport[];
}

/** What recording one connection did to its run. */
export interface RecordResult {
  /** The run after the write; undefined when the ledger has no such run. */
  run?: RunRecord;
  /** Set only for the one caller whose write completed the run. */
  completed?: RunReport;
}

export interface RunLedger extends RetirementLedger {
  /** Records a new run (and the connections known at its start). */
  startRun(runId: string, meta: StartRunMeta): Promise<RunRecord>;
  /**
   * Records the final report of one fanned-out connection (overwriting an earlier one); completes
   * the run when it was the last one expected.
   */
  recordConnection(runId: string, report: ConnectionReport): Promise<RecordResult>;
  /**
   * Completes the run if every fanned-out connection is recorded: for a work item delivered again
   * after its record was written (its first delivery may have stopped before the run counted it).
   */
  settleRun(runId: string): Promise<RecordResult>;
  /** The final report of one fanned-out connection in a run, when recorded. */
  getConnection(
    runId: string,
    organization: string,
    connectionId: string,
  ): Promise<ConnectionReport | undefined>;
  /** The planned report of one fanned-out connection in a run, when the run planned it. */
  getPlanned(runId: string, connectionId: string): Promise<ConnectionReport | undefined>;
  /** Marks the run completed with this report (and makes it the latest, for a full run). */
  completeRun(runId: string, report: RunReport): Promise<RunRecord>;
  /** Marks the run failed (it could not be planned or finished). */
  failRun(runId: string, error: string): Promise<RunRecord | undefined>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** The final report of a completed run. */
  getReport(runId: string): Promise<RunReport | undefined>;
  /** Newest first. */
  listRuns(limit: number): Promise<RunRecord[]>;
  /** The report of the latest completed full run. */
  latestReport(): Promise<RunReport | undefined>;
  /** Retired connections, in key order, at most `limit`. */
  listRetired(limit: number): Promise<RetiredConnectionRecord[]>;
}
