/**
 * The nightly fan-out end to end, handlers invoked directly (test mode) against the sandbox tenant
 * (default scenario) and Azurite: the timer plans and fans out one message per connection that
 * needs work; the messages go through a real Azurite queue; the queue handler drains them to a
 * completed run whose summary equals a single-process run of the same tenant; redelivery is a
 * no-op; telemetry is correlated and carries no secret; the webhook gets the run's notification.
 */
import type { Timer } from '@azure/functions';
import type { Azurite } from '../../sandbox/azurite';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { createBlobServiceClient } from '../../src/clients/blobLeaseLock';
import { createBlobRunLedger, DEFAULT_LEDGER_CONTAINER } from '../../src/clients/runLedger';
import type { RunLedger } from '../../src/remediation/ports';
import { buildEngine } from '../../src/composition';
import { loadConfig } from '../../src/config';
import { configureServices, MAX_DEQUEUE_COUNT, WORK_QUEUE } from '../../src/functions/context';
import { nightlyRemediation } from '../../src/functions/nightlyRemediation';
import { remediateConnection } from '../../src/functions/remediateConnection';
import { workQueueOutput } from '../../src/functions/workQueue';
import type { WorkItem } from '../../src/remediation/fanOut';
import type { RunReport } from '../../src/remediation/report';
import { runRemediation } from '../../src/remediation/run';
import { silentLogger } from '../../src/telemetry';
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
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookServer';
import { testAzurite } from '../helpers/azuritePool';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

let sandbox: Sandbox;
let reference: Sandbox;
let azurite: Azurite;
let webhook: WebhookReceiver;
let telemetry: MemoryTelemetrySink;
let ledger: RunLedger;
let referenceDry: RunReport;
let referenceRun: RunReport;
const q = () => queueClients(azurite.connectionString, WORK_QUEUE);

function timer(): Timer {
  const now = new Date().toISOString();
  return {
    isPastDue: false,
    schedule: { adjustForDST: true },
    scheduleStatus: { last: now, next: now, lastUpdated: now },
  };
}

beforeAll(async () => {
  [sandbox, reference, azurite, webhook] = await Promise.all([
    startSandbox({ scenario: 'default', seed: 'fanout' }),
    startSandbox({ scenario: 'default', seed: 'fanout' }),
    testAzurite({ blob: true, queue: true }),
    startWebhookReceiver(),
  ]);
  // The same tenant remediated in one process, as the CLI does: what the fan-out must match.
  const engine = buildEngine(loadConfig(reference.env), silentLogger);
  referenceDry = (await runRemediation(engine.deps, engine.settings, { dryRun: true })).report;
  referenceRun = (await runRemediation(engine.deps, engine.settings, {})).report;

  telemetry = new MemoryTelemetrySink();
  configureServices({
    env: {
      ...sandbox.env,
      AzureWebJobsStorage: azurite.connectionString,
      REMEDIATION_JITTER_SECONDS: '0',
      NOTIFY_WEBHOOK_URL: webhook.url,
    },
    telemetry,
  });
  ledger = createBlobRunLedger(
    createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString }).getContainerClient(
      DEFAULT_LEDGER_CONTAINER,
    ),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([sandbox?.stop(), reference?.stop(), azurite?.stop(), webhook?.close()]);
});

let messages: WorkItem[];
let runId: string;

test('the timer plans read-only and fans out one message per connection that needs work', async () => {
  const context = invocation('nightlyRemediation');
  await nightlyRemediation(timer(), context);

  messages = outputMessages(context, workQueueOutput) as WorkItem[];
  const planned = referenceDry.connections.filter((c) => c.outcome === 'planned');
  expect(messages).toHaveLength(planned.length);
  expect(messages.length).toBe(8);
  expect(new Set(messages.map((m) => m.connectionId))).toEqual(new Set(planned.map((c) => c.connectionId)));
  runId = messages[0]!.runId;
  for (const m of messages) {
    expect(m.runId).toBe(runId);
    expect(sandbox.organizationUrls).toContain(m.organizationUrl);
    expect(m.connectionId).toMatch(GUID);
    expect(m.project).toMatch(GUID); // a project id: the worker reads the connection through it
    expect(Number.isNaN(Date.parse(m.enqueuedAt))).toBe(false);
  }
  // Planning writes nothing to any service.
  expect(sandbox.state.writes()).toEqual([]);

  const run = await ledger.getRun(runId);
  expect(run).toMatchObject({
    runId,
    status: 'running',
    trigger: 'timer',
    dryRun: false,
    expected: 8,
    total: referenceDry.connections.length,
  });

  // What the output binding does in Azure: the messages land in the queue.
  await sendToQueue(q().queue, messages);
  const queued = (await peekQueue(q().queue)) as WorkItem[];
  expect(queued).toHaveLength(8);
  expect(queued).toEqual(expect.arrayContaining(messages));
});

test('the queue worker drains the messages to a completed run matching a single-process run', async () => {
  const { queue, poison } = q();
  const stats = await drainQueue(queue, poison, remediateConnection, {
    functionName: 'remediateConnection',
    maxDequeueCount: MAX_DEQUEUE_COUNT,
    concurrency: 4,
  });
  expect(stats).toEqual({ invocations: 8, succeeded: 8, failed: 0, poisoned: 0 });
  expect(await peekQueue(queue)).toEqual([]);

  const run = await ledger.getRun(runId);
  expect(run?.status).toBe('completed');
  expect(run?.recorded).toBe(8);
  expect(run?.summary).toEqual(referenceRun.summary);
  expect(referenceRun.summary.byOutcome).toMatchObject({ planned: 0, succeeded: 6, failed: 2 });

  const report = await ledger.getReport(runId);
  const shape = (r: RunReport) =>
    r.connections.map((c) => [c.organization, c.connectionName, c.finding, c.action, c.outcome]);
  expect(shape(report!)).toEqual(shape(referenceRun));
  expect(await ledger.latestReport()).toEqual(report);
  process.stdout.write(
    `fan-out: ${messages.length} messages, ${stats.invocations} invocations, run ${run?.status}: ${JSON.stringify(run?.summary?.byOutcome)} of ${run?.summary?.total}, ${run?.summary?.needsAttention} need attention\n`,
  );
});

test('telemetry: one RunStarted and one RunCompleted (with the summary), per-connection events, metrics, correlated', () => {
  const started = telemetry.events('RunStarted');
  const completed = telemetry.events('RunCompleted');
  expect(started).toHaveLength(1);
  expect(completed).toHaveLength(1);
  expect(started[0]!.properties).toMatchObject({
    runId,
    trigger: 'timer',
    fannedOut: '8',
    connections: String(referenceDry.connections.length),
  });
  expect(JSON.parse(completed[0]!.properties['summary']!)).toEqual(referenceRun.summary);
  expect(completed[0]!.properties).toMatchObject({ runId, status: 'completed', succeeded: '6', failed: '2' });
  // The finishing worker's memory, for checking in production what the bench assumes (docs/performance.md).
  const memory = completed[0]!.properties;
  expect(Number(memory['workerPeakRssMb'])).toBeGreaterThan(20);
  expect(Number(memory['workerHeapLimitMb'])).toBeGreaterThan(100);
  expect(Number.isInteger(Number(memory['workerMemoryLimitMb']))).toBe(true);
  expect(telemetry.events('ConnectionRemediated')).toHaveLength(6);
  expect(telemetry.events('RemediationFailed')).toHaveLength(2);
  expect(telemetry.events('ConnectionNeedsAttention').length).toBeGreaterThan(0);

  const byFinding = telemetry.metrics('ConnectionsByFinding');
  expect(byFinding).toHaveLength(8);
  for (const m of byFinding)
    expect(m.value).toBe(referenceRun.summary.byFinding[m.properties['finding'] as 'healthy']);
  expect(telemetry.metrics('DaysToNearestExpiry')).toHaveLength(1);

  // Correlated: every item names its invocation, function and run.
  const invocationIds = new Set(logLines.map((l) => l.invocationId));
  for (const item of telemetry.items) {
    expect(invocationIds.has(item.properties['invocationId']!)).toBe(true);
    expect(item.properties['functionName']).toMatch(/^(nightlyRemediation|remediateConnection)$/);
    expect(item.properties['runId']).toBe(runId);
  }
  // Per-connection events come from the worker invocation that handled the connection.
  for (const e of telemetry.events('ConnectionRemediated'))
    expect(e.properties['functionName']).toBe('remediateConnection');
});

test('the webhook gets one notification for the run: failures listed, no secret', () => {
  expect(webhook.received).toHaveLength(1);
  const body = JSON.parse(webhook.received[0]!.body) as {
    kind: string;
    runId: string;
    items: { title: string }[];
  };
  expect(body).toMatchObject({ source: 'sc-remediator', kind: 'failure', runId });
  expect(body.items.length).toBe(referenceRun.summary.needsAttention);
});

test('redelivery of a message already handled is a no-op', async () => {
  const before = {
    requests: sandbox.state.writes().length,
    events: telemetry.items.length,
    record: await ledger.getRun(runId),
  };
  const { queue, poison } = q();
  await sendToQueue(queue, [messages[0], messages[3]]);
  const stats = await drainQueue(queue, poison, remediateConnection, {
    functionName: 'remediateConnection',
    maxDequeueCount: MAX_DEQUEUE_COUNT,
  });
  expect(stats).toEqual({ invocations: 2, succeeded: 2, failed: 0, poisoned: 0 });
  expect(sandbox.state.writes()).toHaveLength(before.requests);
  expect(telemetry.items).toHaveLength(before.events);
  expect(await ledger.getRun(runId)).toEqual(before.record);
  expect(logLines.filter((l) => l.text.includes('already recorded'))).toHaveLength(2);
});

test('a message for a connection fixed meanwhile (another run) finds it healthy and changes nothing', async () => {
  const fixed = referenceRun.connections.find(
    (c) => c.outcome === 'succeeded' && c.action === 'rotate-secret',
  )!;
  const message = messages.find((m) => m.connectionId === fixed.connectionId)!;
  const writes = sandbox.state.writes().length;
  const otherRun = '00000000-0000-4000-8000-00000000f1f1';
  await remediateConnection(
    { ...message, runId: otherRun },
    invocation('remediateConnection', { dequeueCount: 1 }),
  );
  expect(sandbox.state.writes()).toHaveLength(writes);
  const recorded = await ledger.getConnection(otherRun, fixed.organization, fixed.connectionId);
  expect(recorded).toMatchObject({ finding: 'healthy', action: 'none', outcome: 'skipped' });
});

test('the next night fans out only what is still broken', async () => {
  const context = invocation('nightlyRemediation');
  await nightlyRemediation(timer(), context);
  const next = outputMessages(context, workQueueOutput) as WorkItem[];
  const fixedIds = referenceRun.connections
    .filter((c) => c.outcome === 'succeeded')
    .map((c) => c.connectionId);
  expect(next.length).toBeLessThan(messages.length);
  for (const m of next) expect(fixedIds).not.toContain(m.connectionId);
  const run = await ledger.getRun(next[0]?.runId ?? '');
  expect(run?.expected ?? 0).toBe(next.length);
  process.stdout.write(`fan-out: night 1 ${messages.length} messages, night 2 ${next.length}\n`);
});

test('no secret value reaches any telemetry item, log line, queue message, webhook or ledger blob', async () => {
  const secrets = sandbox.state.allSecretValues();
  expect(secrets.length).toBeGreaterThan(10);
  const service = createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString });
  const blobs: string[] = [];
  for await (const b of service.getContainerClient(DEFAULT_LEDGER_CONTAINER).listBlobsFlat()) {
    const buf = await service
      .getContainerClient(DEFAULT_LEDGER_CONTAINER)
      .getBlobClient(b.name)
      .downloadToBuffer();
    blobs.push(buf.toString('utf8'));
  }
  expect(blobs.length).toBeGreaterThan(10);
  const places: [string, string][] = [
    ['telemetry', JSON.stringify(telemetry.items)],
    ['logs', JSON.stringify(logLines)],
    ['queue messages', JSON.stringify(messages)],
    ['webhook', JSON.stringify(webhook.received)],
    ['ledger', blobs.join('\n')],
  ];
  expect(telemetry.items.length).toBeGreaterThan(20);
  for (const [where, text] of places)
    for (const secret of secrets)
      if (text.includes(secret)) throw new Error(`A secret value leaked into ${where}.`);
  // The webhook URL's token is a secret too.
  for (const [where, text] of places.filter(([w]) => w !== 'webhook'))
    if (text.includes(webhook.token)) throw new Error(`The webhook token leaked into ${where}.`);
});
