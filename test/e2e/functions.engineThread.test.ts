/**
 * The Functions app's engine thread (src/engineThread): the nightly run is planned, and queued
 * connections remediated, in one worker thread with a heap limit of its own (`ENGINE_HEAP_MB`),
 * against the sandbox through the real SDK clients, with the run ledger in Azurite. Its log lines and
 * events reach the invocation that asked; a thread that dies fails the call clearly and is replaced.
 */
import { randomUUID } from 'node:crypto';
import { getHeapStatistics } from 'node:v8';
import type { Timer } from '@azure/functions';
import { EngineThread, type EngineHost } from '../../src/engineThread/engineThread';
import { configureServices, MAX_DEQUEUE_COUNT, WORK_QUEUE } from '../../src/functions/context';
import { nightlyRemediation } from '../../src/functions/nightlyRemediation';
import { remediateConnection } from '../../src/functions/remediateConnection';
import { workQueueOutput } from '../../src/functions/workQueue';
import type { WorkItem } from '../../src/remediation/fanOut';
import { MemoryTelemetrySink } from '../../src/telemetry/sink';
import {
  drainQueue,
  invocation,
  logLines,
  outputMessages,
  queueClients,
  sendToQueue,
} from '../helpers/functionsHost';
import { useSandbox } from '../helpers/useSandbox';

const fixture = useSandbox({ scenario: 'default', azurite: { blob: true, queue: true }, tenant: 'test' });

const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: true },
  scheduleStatus: { last: '', next: '', lastUpdated: '' },
};

const THREAD_STARTED = /Engine thread started: V8 heap limit (\d+) MB \(ENGINE_HEAP_MB (\d+)\)/;

function appEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    ...fixture.sandbox.env,
    AzureWebJobsStorage: fixture.azurite.connectionString,
    REMEDIATION_JITTER_SECONDS: '0',
    ...extra,
  };
}

async function planNightly(): Promise<{ invocationId: string; messages: WorkItem[] }> {
  const context = invocation('nightlyRemediation');
  await nightlyRemediation(timer, context);
  return {
    invocationId: context.invocationId,
    messages: outputMessages(context, workQueueOutput) as WorkItem[],
  };
}

test('the nightly run is planned and its connections remediated in one thread with its own heap limit', async () => {
  const telemetry = new MemoryTelemetrySink();
  const services = configureServices({ env: appEnv({ ENGINE_HEAP_MB: '160' }), telemetry });
  const before = logLines.length;
  const { invocationId, messages } = await planNightly();
  expect(messages.length).toBeGreaterThan(0);

  // The thread says what bounds it, in the log of the invocation that started it.
  const started = logLines.slice(before).filter((l) => THREAD_STARTED.test(l.text));
  expect(started).toHaveLength(1);
  expect(started[0]!.invocationId).toBe(invocationId);
  const [, limitMb, setting] = THREAD_STARTED.exec(started[0]!.text)!;
  expect(Number(setting)).toBe(160);
  expect(Number(limitMb)).toBeGreaterThanOrEqual(160);
  expect(Number(limitMb)).toBeLessThan(160 + 64);
  expect(Number(limitMb)).toBeLessThan(getHeapStatistics().heap_size_limit / 2 ** 20);
  // Its events are correlated with that invocation, as events of this thread would be.
  const runStarted = telemetry.events('RunStarted');
  expect(runStarted).toHaveLength(1);
  expect(runStarted[0]!.properties['invocationId']).toBe(invocationId);

  // The queue worker's invocations use the same thread (no second start) and complete the run.
  const { queue, poison } = queueClients(fixture.azurite.connectionString, WORK_QUEUE);
  await queue.createIfNotExists();
  await poison.createIfNotExists();
  await sendToQueue(queue, messages);
  const stats = await drainQueue(queue, poison, remediateConnection, {
    functionName: 'remediateConnection',
    maxDequeueCount: MAX_DEQUEUE_COUNT,
    concurrency: 4,
  });
  expect(stats).toMatchObject({ invocations: messages.length, poisoned: 0 });
  expect(logLines.slice(before).filter((l) => THREAD_STARTED.test(l.text))).toHaveLength(1);
  const run = await (await services.ledger()).getRun(messages[0]!.runId);
  expect(run?.status).toBe('completed');
  // Exactly one worker invocation learnt that it completed the run (the run's report itself stays
  // in the thread; RunCompleted and the metrics are described there).
  const completions = logLines
    .slice(before)
    .filter((l) => l.functionName === 'remediateConnection' && / Run completed\.$/.test(l.text));
  expect(completions).toHaveLength(1);
  expect(telemetry.metrics('ConnectionsByFinding').length).toBeGreaterThan(0);
  expect(telemetry.events('RunCompleted')).toHaveLength(1);
  const remediated = telemetry.events('ConnectionRemediated');
  expect(remediated.length).toBeGreaterThan(0);
  // Per-connection events belong to the worker invocation that handled the connection.
  const workerInvocations = new Set(
    logLines.filter((l) => l.functionName === 'remediateConnection').map((l) => l.invocationId),
  );
  for (const e of remediated) expect(workerInvocations.has(e.properties['invocationId']!)).toBe(true);
});

test('ENGINE_HEAP_MB=0 plans on the invocation thread, with the same result', async () => {
  configureServices({ env: appEnv({ ENGINE_HEAP_MB: '0' }), telemetry: new MemoryTelemetrySink() });
  const before = logLines.length;
  const { messages } = await planNightly();
  expect(messages.length).toBeGreaterThan(0);
  expect(logLines.slice(before).some((l) => THREAD_STARTED.test(l.text))).toBe(false);
});

describe('a thread that dies', () => {
  const lines: string[] = [];
  const host: EngineHost = {
    log: (_level, line) => lines.push(line),
    event: () => undefined,
    runFinished: () => Promise.resolve(),
  };

  test('fails the call in progress with a clear message; the next call starts a new thread', async () => {
    const services = configureServices({ env: appEnv(), telemetry: new MemoryTelemetrySink() });
    const ledger = await services.ledger();
    const thread = new EngineThread({ env: appEnv() }, 128);
    const interrupted = randomUUID();
    const planning = thread.plan({ runId: interrupted, trigger: 'timer' }, host, () =>
      Promise.resolve(ledger),
    );
    // As the platform's end of the thread would: it stops before it answered.
    setTimeout(() => void thread.close(), 50);
    await expect(planning).rejects.toThrow(/The engine thread stopped \(exit code \d+\) before it answered/);
    expect((await ledger.getRun(interrupted))?.status).not.toBe('running');

    const planned = await thread.plan({ runId: randomUUID(), trigger: 'timer' }, host, () =>
      Promise.resolve(ledger),
    );
    expect(planned.messages.length).toBeGreaterThan(0);
    expect(lines.filter((l) => THREAD_STARTED.test(l)).length).toBeGreaterThanOrEqual(1);
    // A work item's result crosses back without the run's report, even from the item that ends the run.
    const results = await Promise.all(
      planned.messages.map((item) =>
        thread.processWorkItem(item, { dequeueCount: 1, maxDequeueCount: 5 }, host),
      ),
    );
    const recorded = results.filter((r) => r.status === 'recorded');
    expect(recorded).toHaveLength(planned.messages.length);
    expect(recorded.filter((r) => r.runCompleted)).toHaveLength(1);
    for (const r of results) expect(r).not.toHaveProperty('completed');
    await thread.close();
  });

  test('out of memory: the error names the setting to raise', async () => {
    // A heap far too small for the engine's SDKs: V8 stops the thread, not the process.
    const thread = new EngineThread({ env: appEnv() }, 4);
    const ledger = await configureServices({ env: appEnv() }).ledger();
    await expect(
      thread.plan({ runId: randomUUID(), trigger: 'timer' }, host, () => Promise.resolve(ledger)),
    ).rejects.toThrow(/more than the 4 MB heap of its thread \(ENGINE_HEAP_MB\)/);
    await thread.close();
  });
});
