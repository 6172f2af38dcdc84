/**
 * The work queue between the nightly planner and the per-connection worker: the output binding
 * both the timer and `POST /api/runs` write to, and the message contract the worker accepts.
 *
 * Message (JSON; the host base64-encodes it, host.json `messageEncoding`):
 *   { "runId": GUID, "organizationUrl": one of AZDO_ORGANIZATION_URLS, "project": id or name,
 *     "connectionId": GUID, "enqueuedAt": ISO time,
 *     "usage"?: { "others": [{ "organizationUrl", "connectionId", "connectionName" }], "gaps": [text] } }
 */
import { output } from '@azure/functions';
import { MAX_CARRIED_USERS } from '../remediation/census';
import type { WorkItem } from '../remediation/fanOut';
import { STORAGE_CONNECTION, WORK_QUEUE } from './context';
import { GUID } from '../guid';

export const workQueueOutput = output.storageQueue({ queueName: WORK_QUEUE, connection: STORAGE_CONNECTION });

type ParsedWorkItem =
  { ok: true; item: WorkItem } | { ok: false; problem: string; partial: Partial<WorkItem> };

const MAX_MESSAGE_CHARS = 8192;

/**
 * Validates a queue entry as the host hands it over (a parsed JSON object, or a string when the
 * message was not JSON). Never throws; a problem names the fields, never echoes values.
 */
export async function parseWorkItem(entry: unknown): Promise<ParsedWorkItem> {
  let value: unknown = entry;
  if (typeof entry === 'string' || Buffer.isBuffer(entry)) {
    const text = entry.toString();
    if (text.length > MAX_MESSAGE_CHARS)
      return { ok: false, problem: 'the message is too large', partial: {} };
    try {
      value = JSON.parse(text);
    } catch {
      return { ok: false, problem: 'the message is not JSON', partial: {} };
    }
  }
  const { z } = await import('zod');
  const schema = z.object({
    runId: z.string().regex(GUID),
    organizationUrl: z
      .string()
      .max(2048)
      .refine((v) => /^https:\/\/[^\s/]+/i.test(v), 'an https URL'),
    // A project id or name: no path, query or control characters (Azure DevOps forbids them too).
    project: z
      .string()
      .min(1)
      .max(256)
      .refine(
        (v) => !/[/\\?#%]/.test(v) && ![...v].some((ch) => ch.charCodeAt(0) < 32),
        'a project id or name',
      ),
    connectionId: z.string().regex(GUID),
    enqueuedAt: z
      .string()
      .max(64)
      .refine((v) => !Number.isNaN(Date.parse(v)), 'an ISO time'),
    // The planning run's usage census of the connection's app (optional: without it nothing
    // superseded is removed). Only read to decide what to keep, never to reach a host.
    usage: z
      .object({
        others: z
          .array(
            z.object({
              organizationUrl: z.string().max(2048),
              connectionId: z.string().regex(GUID),
              connectionName: z.string().max(512),
            }),
          )
          .max(MAX_CARRIED_USERS),
        gaps: z.array(z.string().max(1024)).max(6),
      })
      .optional(),
  });
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, item: result.data };
  const fields = [...new Set(result.error.issues.map((i) => String(i.path[0] ?? '(message)')))];
  const partial: Partial<WorkItem> = {};
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v['runId'] === 'string' && GUID.test(v['runId'])) partial.runId = v['runId'];
    if (typeof v['connectionId'] === 'string' && GUID.test(v['connectionId']))
      partial.connectionId = v['connectionId'];
  }
  return { ok: false, problem: `invalid or missing field(s): ${fields.join(', ')}`, partial };
}

/** The dequeue count the host reports for a queue-triggered invocation (1 when unknown). */
export function dequeueCountOf(triggerMetadata: Record<string, unknown> | undefined): number {
  const raw = triggerMetadata?.['dequeueCount'];
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : Number.NaN;
  return Number.isFinite(n) && n >= 1 ? n : 1;
}
