/**
 * `remediateConnection`: storage-queue trigger, one fanned-out connection per message. Re-assesses
 * the connection and runs its state machine under the per-connection lock, then records the result
 * in the run ledger (the last one completes the run). Idempotent under redelivery: a message whose
 * result is already recorded does nothing, and a connection already fixed assesses as healthy.
 *
 * Retries: a lock held by another rotation, or a connection that could not be read, throws so the
 * host redelivers (host.json `visibilityTimeout`); after `maxDequeueCount` attempts the host moves
 * the message to `<queue>-poison`, where `remediateConnectionPoison` records the connection as
 * failed. A malformed message is reported and dropped (never retried).
 *
 * `remediateConnectionPoison`: records each poison message's connection as failed in the ledger.
 */
import { app, type InvocationContext } from '@azure/functions';
import {
  MAX_DEQUEUE_COUNT,
  POISON_QUEUE,
  services,
  STORAGE_CONNECTION,
  WORK_QUEUE,
  withInvocation,
} from './context';
import type { WorkItem } from '../remediation/fanOut';
import { dequeueCountOf, parseWorkItem } from './workQueue';

/** Thrown to have the host deliver the message again later. */
class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';
}

async function rejectMalformed(
  entry: unknown,
  context: InvocationContext,
  queue: string,
): Promise<{ ok: false } | { ok: true; item: WorkItem }> {
  const parsed = await parseWorkItem(entry);
  if (parsed.ok) return parsed;
  const telemetry = await services().telemetry();
  // Reported, then dropped: returning normally deletes the message; retrying cannot fix it.
  context.error(`Dropped a malformed message from ${queue}: ${parsed.problem}.`);
  telemetry.trackEvent('QueueMessageRejected', {
    queue,
    problem: parsed.problem,
    runId: parsed.partial.runId,
    connectionId: parsed.partial.connectionId,
  });
  return { ok: false };
}

/**
 * A queue trigger's handler: as the invocation, a malformed message reported and dropped, a
 * well-formed one handed to `handle`; telemetry flushed either way.
 */
function queueHandler(
  queue: string,
  handle: (item: WorkItem, context: InvocationContext) => Promise<void>,
): (entry: unknown, context: InvocationContext) => Promise<void> {
  return async (entry, context) => {
    await withInvocation(context, async () => {
      const telemetry = await services().telemetry();
      try {
        const parsed = await rejectMalformed(entry, context, queue);
        if (!parsed.ok) return;
        await handle(parsed.item, context);
      } finally {
        await telemetry.flush();
      }
    });
  };
}

export const remediateConnection = queueHandler(WORK_QUEUE, async (item, context) => {
  const dequeueCount = dequeueCountOf(context.triggerMetadata);
  const outcome = await services().processWorkItem(item, {
    dequeueCount,
    maxDequeueCount: MAX_DEQUEUE_COUNT,
  });
  switch (outcome.status) {
    case 'retry':
      context.warn(
        `Connection ${item.connectionId}: ${outcome.reason} (attempt ${dequeueCount}); retrying later.`,
      );
      throw new RetryLaterError(outcome.reason);
    case 'duplicate':
      context.info(
        `Connection ${item.connectionId} of run ${item.runId} is already recorded: nothing to do.`,
      );
      return;
    case 'rejected':
      context.error(`Connection ${item.connectionId}: ${outcome.reason}`);
      return;
    case 'recorded':
      context.info(
        `Connection ${item.connectionId} of run ${item.runId}: ${outcome.report.action} ${outcome.report.outcome}.` +
          (outcome.runCompleted ? ` Run completed.` : ''),
      );
  }
});

export const remediateConnectionPoison = queueHandler(POISON_QUEUE, async (item, context) => {
  const { recordPoisoned } = await import('../remediation/fanOut');
  const outcome = await recordPoisoned(await services().fanOut(), item, MAX_DEQUEUE_COUNT);
  if (outcome.status === 'recorded')
    context.error(
      `Connection ${item.connectionId} of run ${item.runId} failed ${MAX_DEQUEUE_COUNT} times; recorded as failed.`,
    );
});

app.storageQueue('remediateConnection', {
  queueName: WORK_QUEUE,
  connection: STORAGE_CONNECTION,
  handler: remediateConnection,
});

app.storageQueue('remediateConnectionPoison', {
  queueName: POISON_QUEUE,
  connection: STORAGE_CONNECTION,
  handler: remediateConnectionPoison,
});
