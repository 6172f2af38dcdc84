/**
 * The queue worker's failure paths, handlers invoked directly against the sandbox (minimal
 * scenario) and Azurite: a lock held elsewhere is retried and reported on the last attempt; a work
 * item that fails every attempt lands in the poison queue and is reported failed in the ledger (the
 * run still completes); malformed messages are reported and dropped, never retried; a message
 * naming an organization that is not configured is refused without a request.
 */
import type { Timer } from '@azure/functions';
import type { Azurite } from '../../sandbox/azurite';
import type { Sandbox } from '../../sandbox/index';
import { BlobLeaseLockProvider, createBlobServiceClient } from '../../src/clients/blobLeaseLock';
import { createBlobRunLedger, DEFAULT_LEDGER_CONTAINER } from '../../src/clients/runLedger';
import type { RunLedger } from '../../src/remediation/ports';
import { configureServices, MAX_DEQUEUE_COUNT, WORK_QUEUE } from '../../src/functions/context';
import { nightlyRemediation } from '../../src/functions/nightlyRemediation';
import { remediateConnection, remediateConnectionPoison } from '../../src/functions/remediateConnection';
import { workQueueOutput } from '../../src/functions/workQueue';
import type { WorkItem } from '../../src/remediation/fanOut';
import { MemoryTelemetrySink } from '../../src/telemetry/sink';
import {
  drainQueue,
  invocation,
  logLines,
  outputMessages,
  peekQueue,
  queueClients,
  sendToQueue,
} from '../helpers/functionsHost';
import { useSandbox } from '../helpers/useSandbox';

const fixture = useSandbox({ scenario: 'minimal', seed: 'poison', azurite: { blob: true, queue: true } });
let sandbox: Sandbox;
let azurite: Azurite;
let telemetry: MemoryTelemetrySink;
let ledger: RunLedger;
/** Storage "outage" for the ledger's per-connection reads while set. */
let failReads = false;
const q = () => queueClients(azurite.connectionString, WORK_QUEUE);

const timer: Timer = {
  isPastDue: true,
  schedule: { adjustForDST: true },
  scheduleStatus: { last: '', next: '', lastUpdated: '' },
};

async function plan(): Promise<WorkItem[]> {
  const context = invocation('nightlyRemediation');
  await nightlyRemediation(timer, context);
  return outputMessages(context, workQueueOutput) as WorkItem[];
}

beforeAll(() => {
  ({ sandbox, azurite } = fixture);
  const real = createBlobRunLedger(
    createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString }).getContainerClient(
      DEFAULT_LEDGER_CONTAINER,
    ),
  );
  ledger = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'getConnection' && failReads)
        return () => Promise.reject(new Error('503 ServerBusy: the storage account is unavailable'));
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  telemetry = new MemoryTelemetrySink();
  configureServices({
    env: { ...sandbox.env, AzureWebJobsStorage: azurite.connectionString, REMEDIATION_JITTER_SECONDS: '0' },
    telemetry,
    ledger,
  });
});

test('a lock held by another rotation is retried, then reported on the last attempt (not lost)', async () => {
  const messages = await plan();
  expect(messages).toHaveLength(1);
  const [message] = messages as [WorkItem];
  const locks = new BlobLeaseLockProvider(
    createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString }),
  );
  const held = await locks.tryAcquire(`connection-${message.connectionId}`, 60);
  expect(held).toBeDefined();
  try {
    await sendToQueue(q().queue, messages);
    const stats = await drainQueue(q().queue, q().poison, remediateConnection, {
      functionName: 'remediateConnection',
      maxDequeueCount: MAX_DEQUEUE_COUNT,
    });
    expect(stats).toEqual({ invocations: 5, succeeded: 1, failed: 4, poisoned: 0 });
  } finally {
    await held!.release();
  }
  expect(sandbox.state.writes()).toEqual([]);
  const run = await ledger.getRun(message.runId);
  expect(run?.status).toBe('completed');
  const report = await ledger.getReport(message.runId);
  const connection = report!.connections.find((c) => c.connectionId === message.connectionId);
  expect(connection).toMatchObject({ action: 'rotate-secret', outcome: 'skipped' });
  expect(connection?.error).toMatch(/in progress/);
  expect(report!.summary.needsAttention).toBe(1);
});

test('a work item failing every attempt goes to the poison queue and is reported failed', async () => {
  const [message] = (await plan()) as [WorkItem];
  const writesBefore = sandbox.state.writes().length;
  await sendToQueue(q().queue, [message]);
  failReads = true;
  let stats;
  try {
    stats = await drainQueue(q().queue, q().poison, remediateConnection, {
      functionName: 'remediateConnection',
      maxDequeueCount: MAX_DEQUEUE_COUNT,
    });
  } finally {
    failReads = false;
  }
  expect(stats).toEqual({ invocations: 5, succeeded: 0, failed: 5, poisoned: 1 });
  expect(sandbox.state.writes()).toHaveLength(writesBefore);
  expect(await peekQueue(q().poison)).toEqual([message]);
  expect((await ledger.getRun(message.runId))?.status).toBe('running');

  const poisonStats = await drainQueue(q().poison, q().poison, remediateConnectionPoison, {
    functionName: 'remediateConnectionPoison',
    maxDequeueCount: MAX_DEQUEUE_COUNT,
  });
  expect(poisonStats).toEqual({ invocations: 1, succeeded: 1, failed: 0, poisoned: 0 });
  const run = await ledger.getRun(message.runId);
  expect(run).toMatchObject({ status: 'completed', expected: 1, recorded: 1 });
  expect(run?.summary?.byOutcome.failed).toBe(1);
  const connection = (await ledger.getReport(message.runId))!.connections.find(
    (c) => c.connectionId === message.connectionId,
  );
  expect(connection).toMatchObject({ connectionName: 'api-deploy', outcome: 'failed', finding: 'expiring' });
  expect(connection?.error).toMatch(/Gave up after 5 attempts/);
  const failed = telemetry.events('RemediationFailed').filter((e) => e.properties['reason'] === 'poison');
  expect(failed).toHaveLength(1);
  expect(failed[0]!.properties).toMatchObject({
    runId: message.runId,
    functionName: 'remediateConnectionPoison',
  });
  expect(telemetry.events('RunCompleted').at(-1)?.properties).toMatchObject({
    runId: message.runId,
    failed: '1',
  });

  // The poison message delivered again: nothing more is recorded.
  const recorded = await ledger.getRun(message.runId);
  await remediateConnectionPoison(message, invocation('remediateConnectionPoison', { dequeueCount: 2 }));
  expect(await ledger.getRun(message.runId)).toEqual(recorded);
});

test('malformed messages are reported and dropped, never retried or poisoned', async () => {
  const rejectedBefore = telemetry.events('QueueMessageRejected').length;
  await sendToQueue(q().queue, [
    'not json at all',
    { runId: 'nope', connectionId: 42 },
    {
      runId: '00000000-0000-4000-8000-000000000001',
      organizationUrl: 'ftp://x',
      project: '',
      connectionId: 'x',
      enqueuedAt: 'y',
    },
    'x'.repeat(9000),
    {
      runId: '00000000-0000-4000-8000-000000000002',
      organizationUrl: sandbox.organizationUrls[0],
      project: '../../_apis/projects?x=',
      connectionId: '00000000-0000-4000-8000-000000000003',
      enqueuedAt: new Date().toISOString(),
    },
  ]);
  const stats = await drainQueue(q().queue, q().poison, remediateConnection, {
    functionName: 'remediateConnection',
    maxDequeueCount: MAX_DEQUEUE_COUNT,
  });
  expect(stats).toEqual({ invocations: 5, succeeded: 5, failed: 0, poisoned: 0 });
  const rejected = telemetry.events('QueueMessageRejected').slice(rejectedBefore);
  expect(rejected).toHaveLength(5);
  expect(rejected.map((e) => e.properties['problem'])).toEqual(
    expect.arrayContaining([
      'the message is not JSON',
      'the message is too large',
      'invalid or missing field(s): project',
      expect.stringMatching(
        /^invalid or missing field\(s\): runId, organizationUrl, project, connectionId, enqueuedAt$/,
      ),
    ]),
  );
  expect(
    logLines.filter((l) => l.level === 'error' && l.text.includes('Dropped a malformed message')),
  ).toHaveLength(5);
  // The poison handler drops malformed messages too.
  await expect(
    remediateConnectionPoison('{', invocation('remediateConnectionPoison')),
  ).resolves.toBeUndefined();
});

test('a message naming an organization that is not configured is refused without any request', async () => {
  const requests = sandbox.state.requestLog.length;
  const runId = '00000000-0000-4000-8000-0000000000aa';
  await remediateConnection(
    {
      runId,
      organizationUrl: 'https://dev.azure.com/not-ours',
      project: 'web',
      connectionId: '11111111-2222-4333-8444-555555555555',
      enqueuedAt: new Date().toISOString(),
    },
    invocation('remediateConnection', { dequeueCount: 1 }),
  );
  expect(sandbox.state.requestLog).toHaveLength(requests);
  const failed = telemetry.events('RemediationFailed').at(-1);
  expect(failed?.properties['error']).toMatch(/not configured/);
  expect(await ledger.getConnection(runId, 'not-ours', '11111111-2222-4333-8444-555555555555')).toMatchObject(
    {
      outcome: 'failed',
    },
  );
});
