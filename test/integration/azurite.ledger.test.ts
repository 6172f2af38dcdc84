/**
 * The run ledger on blobs in Azurite (and the same semantics in memory): a run completes exactly
 * once however many workers record at the same time, its report joins what was recorded at the
 * start with what the workers recorded, runs list newest first, and ids never become blob paths.
 */
import { randomUUID } from 'node:crypto';
import type { Azurite } from '../../sandbox/azurite';
import { createBlobServiceClient } from '../../src/clients/blobLeaseLock';
import { createBlobRunLedger, createMemoryRunLedger } from '../../src/clients/runLedger';
import type { RunLedger } from '../../src/remediation/ports';
import type { ConnectionReport } from '../../src/remediation/report';
import { testAzurite } from '../helpers/azuritePool';

let azurite: Azurite;

beforeAll(async () => {
  azurite = await testAzurite({ blob: true, queue: false });
});

afterAll(async () => {
  await azurite?.stop();
});

function blobLedger(container = `runs-${randomUUID().slice(0, 8)}`, now?: () => Date): RunLedger {
  const service = createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString });
  return createBlobRunLedger(service.getContainerClient(container), now ? { now } : {});
}

function connection(i: number, extra: Partial<ConnectionReport> = {}): ConnectionReport {
  return {
    organization: 'contoso',
    organizationUrl: 'https://dev.azure.com/contoso',
    projects: ['web'],
    connectionId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    connectionName: `conn-${String(i).padStart(2, '0')}`,
    appId: null,
    finding: 'expiring',
    action: 'rotate-secret',
    outcome: 'planned',
    credentialSource: 'recorded',
    scheme: 'ServicePrincipal',
    ...extra,
  };
}

describe.each([
  ['blobs in Azurite', () => blobLedger()],
  ['memory', () => createMemoryRunLedger()],
])('ledger on %s', (_name, make) => {
  test('twelve workers recording at once: the run completes exactly once, with every result', async () => {
    const ledger = make();
    const runId = randomUUID();
    const planned = Array.from({ length: 12 }, (_, i) => connection(i));
    const assessed = [connection(50, { finding: 'healthy', action: 'none', outcome: 'skipped' })];
    const started = await ledger.startRun(runId, {
      trigger: 'timer',
      dryRun: false,
      expected: 12,
      planned,
      assessed,
    });
    expect(started).toMatchObject({ status: 'running', expected: 12, total: 13, recorded: 0, scope: 'full' });
    expect(await ledger.getPlanned(runId, planned[3]!.connectionId)).toEqual(planned[3]);

    const results = await Promise.all(
      planned.map((c, i) =>
        ledger.recordConnection(runId, { ...c, outcome: i % 4 === 0 ? 'failed' : 'succeeded' }),
      ),
    );
    expect(results.filter((r) => r.completed)).toHaveLength(1);
    const run = await ledger.getRun(runId);
    expect(run).toMatchObject({ status: 'completed', recorded: 12 });
    expect(run?.summary?.byOutcome).toEqual({ planned: 0, succeeded: 9, failed: 3, skipped: 1 });
    const report = await ledger.getReport(runId);
    expect(report?.connections.map((c) => c.connectionName)).toEqual([
      ...planned.map((c) => c.connectionName),
      'conn-50',
    ]);
    expect(await ledger.latestReport()).toEqual(report);
    // A late duplicate changes nothing.
    const again = await ledger.recordConnection(runId, { ...planned[0]!, outcome: 'succeeded' });
    expect(again.completed).toBeUndefined();
    expect((await ledger.getRun(runId))?.summary).toEqual(run?.summary);
  });

  test('one-connection runs are recorded but never become the latest report; runs list newest first', async () => {
    const ledger = make();
    const full = randomUUID();
    await ledger.startRun(full, {
      trigger: 'timer',
      dryRun: true,
      expected: 0,
      startedAt: '2025-01-01T02:00:00.000Z',
    });
    const fullReport = {
      runId: full,
      startedAt: '2025-01-01T02:00:00.000Z',
      finishedAt: '2025-01-01T02:00:05.000Z',
      dryRun: true,
      summary: { total: 0, byFinding: {}, byAction: {}, byOutcome: {}, needsAttention: 0 },
      connections: [],
    } as never;
    await ledger.completeRun(full, fullReport);
    const single = randomUUID();
    await ledger.startRun(single, {
      trigger: 'http',
      dryRun: false,
      expected: 0,
      scope: 'connection',
      startedAt: '2025-01-02T10:00:00.000Z',
    });
    await ledger.completeRun(single, { ...(fullReport as object), runId: single } as never);
    const failed = randomUUID();
    await ledger.startRun(failed, {
      trigger: 'cli',
      dryRun: false,
      expected: 3,
      startedAt: '2025-01-03T00:00:00.000Z',
    });
    expect(await ledger.failRun(failed, 'could not list projects')).toMatchObject({ status: 'failed' });

    expect((await ledger.latestReport())?.runId).toBe(full);
    const runs = await ledger.listRuns(10);
    expect(runs.map((r) => [r.runId, r.status, r.scope])).toEqual([
      [failed, 'failed', 'full'],
      [single, 'completed', 'connection'],
      [full, 'completed', 'full'],
    ]);
    expect(await ledger.listRuns(1)).toHaveLength(1);
  });

  test('ids that are not GUIDs never reach a blob name', async () => {
    const ledger = make();
    expect(await ledger.getRun('../latest')).toBeUndefined();
    expect(await ledger.getReport('x/../../y')).toBeUndefined();
    await expect(ledger.startRun('../x', { trigger: 'cli', dryRun: false, expected: 0 })).rejects.toThrow(
      /Not a run id/,
    );
  });
});

describe('ledger on blobs: counting the records of a run', () => {
  async function started(expected: number) {
    const container = createBlobServiceClient({
      AzureWebJobsStorage: azurite.connectionString,
    }).getContainerClient(`runs-${randomUUID().slice(0, 8)}`);
    const ledger = createBlobRunLedger(container);
    const runId = randomUUID();
    const planned = Array.from({ length: expected }, (_, i) => connection(i));
    await ledger.startRun(runId, { trigger: 'timer', dryRun: false, expected, planned });
    return { container, ledger, runId, planned };
  }

  test('each record counts itself: only the record whose count reaches the expected lists the records', async () => {
    const { container, ledger, runId, planned } = await started(12);
    const lists = jest.spyOn(container, 'listBlobsFlat');
    for (const [i, c] of planned.entries()) {
      const result = await ledger.recordConnection(runId, { ...c, outcome: 'succeeded' });
      expect(result.run?.recorded).toBe(i + 1);
      expect(result.completed !== undefined).toBe(i === planned.length - 1);
    }
    // One listing for the run, not one per record (n²/2 names at 10,000 connections).
    expect(lists).toHaveBeenCalledTimes(1);
    expect(await ledger.getRun(runId)).toMatchObject({ status: 'completed', recorded: 12 });
  });

  test('workers that stopped between their record and their count: a redelivery settles the run, once', async () => {
    const { container, ledger, runId, planned } = await started(4);
    // Two workers' records are written, then their instance stops before the run counts them.
    const stopped = planned.slice(0, 2);
    for (const c of stopped) {
      const body = JSON.stringify({ ...c, outcome: 'succeeded' });
      const name = `runs/${runId}/connections/contoso~${c.connectionId}.json`;
      await container.getBlockBlobClient(name).upload(body, Buffer.byteLength(body));
    }
    for (const c of planned.slice(2))
      expect(
        (await ledger.recordConnection(runId, { ...c, outcome: 'succeeded' })).completed,
      ).toBeUndefined();
    expect(await ledger.getRun(runId)).toMatchObject({ status: 'running', recorded: 2 });

    // One of their messages comes back: its result is already recorded, so the worker only settles
    // the run, from the records stored rather than the count.
    const settled = await ledger.settleRun(runId);
    expect(settled.completed?.summary.byOutcome).toMatchObject({ succeeded: 4 });
    expect(settled.run).toMatchObject({ status: 'completed', recorded: 4 });
    expect((await ledger.settleRun(runId)).completed).toBeUndefined();
  });

  test('a record written again is not counted again', async () => {
    const { ledger, runId, planned } = await started(2);
    await ledger.recordConnection(runId, { ...planned[0]!, outcome: 'failed' });
    const again = await ledger.recordConnection(runId, { ...planned[0]!, outcome: 'succeeded' });
    expect(again.completed).toBeUndefined();
    expect(await ledger.getRun(runId)).toMatchObject({ status: 'running', recorded: 1 });
    expect(await ledger.getConnection(runId, 'contoso', planned[0]!.connectionId)).toMatchObject({
      outcome: 'succeeded',
    });
    const last = await ledger.recordConnection(runId, { ...planned[1]!, outcome: 'succeeded' });
    expect(last.completed?.summary.byOutcome).toMatchObject({ succeeded: 2 });
  });
});
