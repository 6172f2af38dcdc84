/**
 * The run ledger: what each run did, kept as JSON blobs in the function's storage account
 * (`AzureWebJobsStorage`, container `sc-remediator-runs`), so the nightly fan-out can be assembled
 * from many queue invocations on many instances, and the HTTP API and status page can show history.
 *
 * Layout of the container:
 *
 *   runs/<runId>/run.json                    RunRecord (status, counts, summary once complete)
 *   runs/<runId>/plan.json                   connections recorded at the start: `assessed` (final,
 *                                            nothing to do) and `planned` (fanned out to the queue)
 *   runs/<runId>/connections/<key>.json      one ConnectionReport per fanned-out connection, written
 *                                            by the queue worker (or the poison handler)
 *   runs/<runId>/recorded.log                one line per record (append blob): the run's count
 *   runs/<runId>/report.json                 the run's final RunReport
 *   index/<inverted time>-<runId>            empty marker: newest run first in a listing
 *   latest.json                              the RunReport of the latest completed full run
 *   retired/<key>.json                       a retired (deleted) connection's full definition, no
 *                                            secret: written before it is deleted, nothing is lost
 *   failing/<organization>.json              since when each failing connection has been seen
 *                                            failing (RETIRE_FAILED_AFTER_DAYS)
 *
 * A run is complete when as many connection reports as it fanned out (`expected`) are recorded: each
 * record adds a line to `recorded.log` (an append blob), and a recorder whose line makes the count
 * reach `expected` lists the records to confirm, assembles the report and marks the run completed
 * with an ETag-conditional write, so exactly one caller learns it completed the run (and notifies).
 *
 * Permissions: Storage Blob Data Contributor on the account (or a connection string). The container
 * is created on first use. The ledger holds reports only: never a secret value.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type {
  RecordResult,
  RetiredConnectionRecord,
  RunLedger,
  RunRecord,
  StartRunMeta,
} from '../remediation/ports';
import { summarize, type ConnectionReport, type RunReport } from '../remediation/report';
import { BlobJsonStore } from './blobJsonStore';
import { ConditionNotMetError, type JsonStore } from './jsonStore';
import { MemoryJsonStore } from './memoryJsonStore';
import { GUID } from '../guid';

export const DEFAULT_LEDGER_CONTAINER = 'sc-remediator-runs';

interface FailingDocument {
  /** Connection id (lower case) → first time seen failing (ISO). */
  connections: Record<string, string>;
}

/** Run ids are GUIDs; anything else never reaches a blob name. */
function isRunId(value: string): boolean {
  return GUID.test(value);
}

function checkRunId(runId: string): string {
  if (!isRunId(runId)) throw new Error(`Not a run id: '${runId.slice(0, 60)}'.`);
  return runId.toLowerCase();
}

/** Blob-safe key of one connection in a run. */
function connectionKey(organization: string, connectionId: string): string {
  return `${encodeURIComponent(organization.toLowerCase())}~${encodeURIComponent(connectionId.toLowerCase())}`;
}

const MAX_TIME = 9_999_999_999_999;

function indexName(startedAt: string, runId: string): string {
  const inverted = String(MAX_TIME - Date.parse(startedAt)).padStart(13, '0');
  return `index/${inverted}-${runId}`;
}

interface PlanDocument {
  assessed: ConnectionReport[];
  planned: ConnectionReport[];
}

function sortConnections(reports: ConnectionReport[]): ConnectionReport[] {
  return [...reports].sort(
    (a, b) =>
      (a.organizationUrl ?? a.organization).localeCompare(b.organizationUrl ?? b.organization) ||
      a.connectionName.localeCompare(b.connectionName),
  );
}

function sameConnection(a: ConnectionReport, organization: string, connectionId: string): boolean {
  return (
    a.connectionId.toLowerCase() === connectionId.toLowerCase() &&
    a.organization.toLowerCase() === organization.toLowerCase()
  );
}

interface RunLedgerOptions {
  now?: () => Date;
  /** Reads in flight at once when assembling a report. */
  concurrency?: number;
}

/** The ledger over any `JsonStore` (blobs: `createBlobRunLedger`; memory: `createMemoryRunLedger`). */
class JsonRunLedger implements RunLedger {
  private readonly now: () => Date;
  private readonly concurrency: number;

  constructor(
    private readonly store: JsonStore,
    options: RunLedgerOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.concurrency = options.concurrency ?? 16;
  }

  private runName(runId: string, file: string): string {
    return `runs/${checkRunId(runId)}/${file}`;
  }

  /** Where a completed run's report goes: its own, and for a full run the latest report too. */
  private reportNames(runId: string, scope: RunRecord['scope']): string[] {
    const own = this.runName(runId, 'report.json');
    return (scope ?? 'full') === 'full' ? [own, 'latest.json'] : [own];
  }

  async startRun(runId: string, meta: StartRunMeta): Promise<RunRecord> {
    const id = checkRunId(runId);
    const startedAt = meta.startedAt ?? this.now().toISOString();
    const assessed = meta.assessed ?? [];
    const planned = meta.planned ?? [];
    // The plan and the count first: a worker that finds the run also finds what was planned.
    await this.store.put(this.runName(id, 'plan.json'), { assessed, planned } satisfies PlanDocument);
    await this.store.createLog(this.runName(id, 'recorded.log'));
    const run: RunRecord = {
      runId: id,
      startedAt,
      status: 'running',
      dryRun: meta.dryRun,
      expected: meta.expected,
      trigger: meta.trigger,
      scope: meta.scope ?? 'full',
      total: assessed.length + planned.length,
      recorded: 0,
    };
    if (meta.problems && meta.problems.length > 0) run.problems = meta.problems;
    await this.store.put(this.runName(id, 'run.json'), run, { ifNoneMatch: '*' });
    await this.store.put(indexName(startedAt, id), {});
    return run;
  }

  async recordConnection(runId: string, report: ConnectionReport): Promise<RecordResult> {
    const id = checkRunId(runId);
    const key = connectionKey(report.organization, report.connectionId);
    const name = this.runName(id, `connections/${key}.json`);
    let repeated = false;
    try {
      await this.store.put(name, report, { ifNoneMatch: '*' });
    } catch (err) {
      if (!(err instanceof ConditionNotMetError)) throw err;
      // Recorded before (a redelivery, the poison handler after a worker): overwritten.
      repeated = true;
      await this.store.put(name, report);
    }
    return this.completeIfDone(id, key, repeated);
  }

  async settleRun(runId: string): Promise<RecordResult> {
    return this.completeIfDone(checkRunId(runId), 'settle', true);
  }

  /**
   * Completes the run when every fanned-out connection has reported. Each record adds a line to the
   * run's count (`recorded.log`, an append blob: no contention however many workers record at once),
   * and only a record whose line makes the count reach `expected` lists the records to confirm:
   * listing on every record read n²/2 names per run. A repeated record (`repeated`: a redelivery, the
   * poison handler, `settleRun`) always lists, so a worker that stopped between its record and its
   * line cannot leave the run short: its message comes back and adds the line. Extra lines only make
   * a count reach `expected` sooner; the records listed, never the count, decide completion.
   */
  private async completeIfDone(runId: string, line: string, repeated: boolean): Promise<RecordResult> {
    const count = await this.store.append(this.runName(runId, 'recorded.log'), line);
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const stored = await this.store.get<RunRecord>(this.runName(runId, 'run.json'));
      if (!stored) return {};
      const run = stored.value;
      if (run.status !== 'running') return { run };
      // No count (a run started before the count existed): every record lists, as it did then.
      const mayBeDone = repeated || count === undefined || count >= run.expected;
      const names = mayBeDone ? await this.store.list(this.runName(runId, 'connections/')) : undefined;
      if (!names || names.length < run.expected) {
        const recorded = Math.min(names?.length ?? count ?? 0, run.expected);
        if ((run.recorded ?? 0) >= recorded) return { run };
        // Progress for the status page, best effort: losing this race only delays the count shown.
        const progressed = { ...run, recorded };
        try {
          await this.store.put(this.runName(runId, 'run.json'), progressed, { ifMatch: stored.etag });
          return { run: progressed };
        } catch (err) {
          if (err instanceof ConditionNotMetError) return { run };
          throw err;
        }
      }
      const report = await this.assemble(run, names);
      const completed: RunRecord = {
        ...run,
        status: 'completed',
        finishedAt: report.finishedAt,
        summary: report.summary,
        recorded: names.length,
      };
      try {
        await this.store.put(this.runName(runId, 'run.json'), completed, { ifMatch: stored.etag });
      } catch (err) {
        // Someone else completed (or updated) it meanwhile: look again.
        if (err instanceof ConditionNotMetError) continue;
        throw err;
      }
      await this.store.putEach(this.reportNames(runId, run.scope), report);
      return { run: completed, completed: report };
    }
    return { run: await this.getRun(runId) };
  }

  private async assemble(run: RunRecord, names: string[]): Promise<RunReport> {
    const plan = (await this.store.get<PlanDocument>(this.runName(run.runId, 'plan.json')))?.value;
    const finals: ConnectionReport[] = [];
    for (let i = 0; i < names.length; i += this.concurrency) {
      const batch = await Promise.all(
        names.slice(i, i + this.concurrency).map((name) => this.store.get<ConnectionReport>(name)),
      );
      for (const doc of batch) if (doc) finals.push(doc.value);
    }
    const reports = [...(plan?.assessed ?? [])];
    for (const planned of plan?.planned ?? []) {
      const final = finals.find((f) => sameConnection(f, planned.organization, planned.connectionId));
      reports.push(final ?? planned);
    }
    // A connection recorded without a plan entry (a run started elsewhere) still counts.
    for (const final of finals)
      if (!reports.some((r) => sameConnection(r, final.organization, final.connectionId)))
        reports.push(final);
    const connections = sortConnections(reports);
    return {
      runId: run.runId,
      startedAt: run.startedAt,
      finishedAt: this.now().toISOString(),
      dryRun: run.dryRun,
      summary: summarize(connections),
      connections,
    };
  }

  async getConnection(
    runId: string,
    organization: string,
    connectionId: string,
  ): Promise<ConnectionReport | undefined> {
    const name = this.runName(runId, `connections/${connectionKey(organization, connectionId)}.json`);
    return (await this.store.get<ConnectionReport>(name))?.value;
  }

  async getPlanned(runId: string, connectionId: string): Promise<ConnectionReport | undefined> {
    const plan = (await this.store.get<PlanDocument>(this.runName(runId, 'plan.json')))?.value;
    const wanted = connectionId.toLowerCase();
    return plan?.planned.find((p) => p.connectionId.toLowerCase() === wanted);
  }

  async completeRun(runId: string, report: RunReport): Promise<RunRecord> {
    const id = checkRunId(runId);
    const stored = await this.store.get<RunRecord>(this.runName(id, 'run.json'));
    const base: RunRecord = stored?.value ?? {
      runId: id,
      startedAt: report.startedAt,
      status: 'running',
      dryRun: report.dryRun,
      expected: 0,
      trigger: 'cli',
      scope: 'full',
    };
    const completed: RunRecord = {
      ...base,
      status: 'completed',
      finishedAt: report.finishedAt,
      summary: report.summary,
      total: report.connections.length,
    };
    await this.store.putEach(this.reportNames(id, completed.scope), report);
    await this.store.put(this.runName(id, 'run.json'), completed);
    if (!stored) await this.store.put(indexName(completed.startedAt, id), {});
    return completed;
  }

  async failRun(runId: string, error: string): Promise<RunRecord | undefined> {
    const stored = await this.store.get<RunRecord>(this.runName(runId, 'run.json'));
    if (!stored) return undefined;
    const failed: RunRecord = {
      ...stored.value,
      status: 'failed',
      finishedAt: this.now().toISOString(),
      error,
    };
    await this.store.put(this.runName(runId, 'run.json'), failed);
    return failed;
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    if (!isRunId(runId)) return undefined;
    return (await this.store.get<RunRecord>(this.runName(runId, 'run.json')))?.value;
  }

  async getReport(runId: string): Promise<RunReport | undefined> {
    if (!isRunId(runId)) return undefined;
    return (await this.store.get<RunReport>(this.runName(runId, 'report.json')))?.value;
  }

  async listRuns(limit: number): Promise<RunRecord[]> {
    const n = Math.max(0, Math.min(1000, Math.floor(limit)));
    if (n === 0) return [];
    const names = await this.store.list('index/', n);
    const ids = names.map((name) => name.slice(name.lastIndexOf('/') + 15)).filter(isRunId);
    const runs = await Promise.all(ids.map((id) => this.getRun(id)));
    return runs.filter((r): r is RunRecord => r !== undefined);
  }

  async latestReport(): Promise<RunReport | undefined> {
    return (await this.store.get<RunReport>('latest.json'))?.value;
  }

  async recordRetired(record: RetiredConnectionRecord): Promise<void> {
    await this.store.put(`retired/${connectionKey(record.organization, record.connectionId)}.json`, record);
  }

  async getRetired(organization: string, connectionId: string): Promise<RetiredConnectionRecord | undefined> {
    return (
      await this.store.get<RetiredConnectionRecord>(
        `retired/${connectionKey(organization, connectionId)}.json`,
      )
    )?.value;
  }

  async listRetired(limit: number): Promise<RetiredConnectionRecord[]> {
    const names = await this.store.list('retired/', Math.max(0, Math.min(1000, Math.floor(limit))));
    const docs = await Promise.all(names.map((n) => this.store.get<RetiredConnectionRecord>(n)));
    return docs.flatMap((d) => (d ? [d.value] : []));
  }

  private failingName(organization: string): string {
    return `failing/${encodeURIComponent(organization.toLowerCase())}.json`;
  }

  async failingSince(organization: string, connectionIds: string[]): Promise<Map<string, string>> {
    const doc = (await this.store.get<FailingDocument>(this.failingName(organization)))?.value;
    const out = new Map<string, string>();
    for (const id of connectionIds) {
      const at = doc?.connections[id.toLowerCase()];
      if (at) out.set(id, at);
    }
    return out;
  }

  async trackFailing(
    organization: string,
    observed: { failing: string[]; healthy: string[] },
    now: Date,
  ): Promise<Map<string, string>> {
    const name = this.failingName(organization);
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const stored = await this.store.get<FailingDocument>(name);
      const connections = { ...(stored?.value.connections ?? {}) };
      let changed = false;
      for (const id of observed.healthy)
        if (connections[id.toLowerCase()] !== undefined) {
          delete connections[id.toLowerCase()];
          changed = true;
        }
      for (const id of observed.failing)
        if (connections[id.toLowerCase()] === undefined) {
          connections[id.toLowerCase()] = now.toISOString();
          changed = true;
        }
      try {
        if (changed)
          await this.store.put(
            name,
            { connections } satisfies FailingDocument,
            stored ? { ifMatch: stored.etag } : { ifNoneMatch: '*' },
          );
      } catch (err) {
        if (err instanceof ConditionNotMetError) continue;
        throw err;
      }
      const out = new Map<string, string>();
      for (const id of observed.failing) {
        const at = connections[id.toLowerCase()];
        if (at) out.set(id, at);
      }
      return out;
    }
    return this.failingSince(organization, observed.failing);
  }
}

/** The ledger in a container of the function's storage account. */
export function createBlobRunLedger(container: ContainerClient, options: RunLedgerOptions = {}): RunLedger {
  return new JsonRunLedger(new BlobJsonStore(container), options);
}

/** A ledger that lives as long as the process (no storage account configured; tests). */
export function createMemoryRunLedger(options: RunLedgerOptions = {}): RunLedger {
  return new JsonRunLedger(new MemoryJsonStore(), options);
}
