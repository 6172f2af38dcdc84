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
