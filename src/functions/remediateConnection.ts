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
export class RetryLaterError extends Error {
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

export async function remediateConnection(entry: unknown, context: InvocationContext): Promise<void> {
  await withInvocation(context, async () => {
    const svc = services();
    const telemetry = await svc.telemetry();
    try {
      const parsed = await rejectMalformed(entry, context, WORK_QUEUE);
      if (!parsed.ok) return;
      const item = parsed.item;
      const dequeueCount = dequeueCountOf(context.triggerMetadata);
      const { processWorkItem } = await import('../remediation/fanOut');
      const outcome = await processWorkItem(await svc.fanOut(), item, {
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
              (outcome.completed ? ` Run completed.` : ''),
          );
      }
    } finally {
      await telemetry.flush();
    }
  });
}

export async function remediateConnectionPoison(entry: unknown, context: InvocationContext): Promise<void> {
  await withInvocation(context, async () => {
    const svc = services();
    const telemetry = await svc.telemetry();
    try {
      const parsed = await rejectMalformed(entry, context, POISON_QUEUE);
      if (!parsed.ok) return;
      const { recordPoisoned } = await import('../remediation/fanOut');
      const outcome = await recordPoisoned(await svc.fanOut(), parsed.item, MAX_DEQUEUE_COUNT);
      if (outcome.status === 'recorded')
        context.error(
          `Connection ${parsed.item.connectionId} of run ${parsed.item.runId} failed ${MAX_DEQUEUE_COUNT} times; recorded as failed.`,
        );
    } finally {
      await telemetry.flush();
    }
  });
}

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
