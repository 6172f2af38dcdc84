/**
 * A tiny stand-in for the Functions host around the handlers, for end-to-end tests in test mode:
 * invocation contexts that capture logs, the queue output binding (what a handler put in
 * `context.extraOutputs` is sent to a real Azurite queue, base64-encoded as host.json's
 * `messageEncoding` says), and the queue trigger (messages received from Azurite, decoded, handed
 * to the handler with the host's `dequeueCount`; deleted on success, made visible again on failure,
 * moved to `<queue>-poison` after `maxDequeueCount` attempts, as the host does).
 */
import { randomUUID } from 'node:crypto';
import { InvocationContext, type FunctionOutput } from '@azure/functions';
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';

interface LogLine {
  invocationId: string;
  functionName: string;
  level: string;
  text: string;
}

/** Every log line of every invocation created through `invocation()`. */
export const logLines: LogLine[] = [];

export function invocation(
  functionName: string,
  triggerMetadata: Record<string, unknown> = {},
): InvocationContext {
  const invocationId = randomUUID();
  return new InvocationContext({
    invocationId,
    functionName,
    triggerMetadata,
    logHandler: (level, ...args) =>
      logLines.push({ invocationId, functionName, level, text: args.map((a) => String(a)).join(' ') }),
  });
}

/** The messages a handler set on a queue output binding (an array or one value). */
export function outputMessages(context: InvocationContext, binding: FunctionOutput): unknown[] {
  const value = context.extraOutputs.get(binding);
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as unknown[]) : [value];
}

export function queueClients(
  connectionString: string,
  queueName: string,
): { queue: QueueClient; poison: QueueClient } {
  const service = QueueServiceClient.fromConnectionString(connectionString);
  return { queue: service.getQueueClient(queueName), poison: service.getQueueClient(`${queueName}-poison`) };
}

/** What the output binding does in Azure: one message per value, JSON, base64-encoded. */
export async function sendToQueue(queue: QueueClient, messages: unknown[]): Promise<void> {
  await queue.createIfNotExists();
  for (const m of messages) {
    const text = typeof m === 'string' ? m : JSON.stringify(m);
    await queue.sendMessage(Buffer.from(text, 'utf8').toString('base64'));
  }
}

/** Message bodies currently in a queue (peek: up to 32), decoded and parsed where JSON. */
export async function peekQueue(queue: QueueClient): Promise<unknown[]> {
  if (!(await queue.exists())) return [];
  const peeked = await queue.peekMessages({ numberOfMessages: 32 });
  return peeked.peekedMessageItems.map((m) => decode(m.messageText));
}

function decode(messageText: string): unknown {
  const text = Buffer.from(messageText, 'base64').toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

interface DrainStats {
  invocations: number;
  succeeded: number;
  /** Invocations that threw (message made visible again or moved to poison). */
  failed: number;
  poisoned: number;
}

type QueueHandler = (entry: unknown, context: InvocationContext) => Promise<void>;

/**
 * Runs `handler` for every message in `queue` until it is empty, as the host's queue trigger does.
 * `concurrency` messages are handled at once (the host's batch).
 */
export async function drainQueue(
  queue: QueueClient,
  poison: QueueClient,
  handler: QueueHandler,
  options: { functionName: string; maxDequeueCount: number; concurrency?: number; maxInvocations?: number },
): Promise<DrainStats> {
  const stats: DrainStats = { invocations: 0, succeeded: 0, failed: 0, poisoned: 0 };
  if (!(await queue.exists())) return stats;
  for (;;) {
    if (stats.invocations >= (options.maxInvocations ?? 1000)) throw new Error('Too many invocations.');
    const received = await queue.receiveMessages({
      numberOfMessages: options.concurrency ?? 4,
      visibilityTimeout: 60,
    });
    if (received.receivedMessageItems.length === 0) break;
    await Promise.all(
      received.receivedMessageItems.map(async (m) => {
        stats.invocations += 1;
        const context = invocation(options.functionName, {
          id: m.messageId,
          dequeueCount: m.dequeueCount,
          insertionTime: m.insertedOn.toISOString(),
          expirationTime: m.expiresOn.toISOString(),
          popReceipt: m.popReceipt,
        });
        try {
          await handler(decode(m.messageText), context);
          stats.succeeded += 1;
          await queue.deleteMessage(m.messageId, m.popReceipt);
        } catch {
          stats.failed += 1;
          if (m.dequeueCount >= options.maxDequeueCount) {
            await poison.createIfNotExists();
            await poison.sendMessage(m.messageText);
            await queue.deleteMessage(m.messageId, m.popReceipt);
            stats.poisoned += 1;
          } else {
            // Visible again at once (the host waits host.json's visibilityTimeout).
            await queue.updateMessage(m.messageId, m.popReceipt, undefined, 0);
          }
        }
      }),
    );
  }
  return stats;
}

/**
 * The `x-ms-client-principal` App Service Authentication hands the app for a caller holding the app
 * roles `roles` (its shape: "Work with user identities in Azure App Service authentication"; app
 * roles arrive as claims of type `roles`).
 */
export function appServicePrincipal(roles: string[]): string {
  return Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'name',
      role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
      claims: [{ typ: 'name', val: 'Ann' }, ...roles.map((val) => ({ typ: 'roles', val }))],
    }),
  ).toString('base64');
}

/** App settings of a deployment behind App Service Authentication (the platform sets this one). */
export const BEHIND_APP_SERVICE_AUTH = { WEBSITE_AUTH_ENABLED: 'true' } as const;

/** What a signed-in operator's request carries: its principal, and the JSON content type a POST needs. */
export function operatorHeaders(method: string): Record<string, string> {
  return {
    'x-ms-client-principal': appServicePrincipal(['Remediation.Operator']),
    ...(method.toUpperCase() === 'POST' ? { 'content-type': 'application/json' } : {}),
  };
}
