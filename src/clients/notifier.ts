/**
 * Webhook notifications (`NOTIFY_WEBHOOK_URL`): failures, connections that need a person, and the
 * summary of each full run. The payload follows the receiver, chosen by the URL's host:
 *
 * - Microsoft Teams incoming webhook (`*.webhook.office.com`, `outlook.office.com`): a MessageCard;
 * - Teams Workflows / Power Automate (`*.logic.azure.com`, `*.powerautomate.com`,
 *   `*.powerplatform.com`): a message with one Adaptive Card attachment;
 * - Slack (`hooks.slack.com`): `{ text }` with Slack markup;
 * - anything else: a generic JSON document.
 *
 * Best effort (acmebot's `WebhookInvoker`): a short timeout, one attempt, and `notify` never throws
 * or rejects; a failing webhook never fails a run. The URL is a secret (it embeds a token): it is
 * registered with the redactor and never logged. Everything sent is redacted, then escaped for the
 * format: a notification's texts are plain text (connection names and errors are anyone's input),
 * and only the markup added here is markup.
 */
import { slackText, teamsMarkdown, withoutControls, withoutControlsDeep } from '../escaping';
import { redactor, type Logger } from '../telemetry';
import type { ConnectionReport, RunReport } from '../remediation/report';
import { needsAttention } from '../remediation/report';

export type NotificationKind = 'failure' | 'attention' | 'summary';

export interface NotificationItem {
  title: string;
  detail: string;
}

export interface Notification {
  kind: NotificationKind;
  title: string;
  text: string;
  runId?: string;
  facts: { name: string; value: string }[];
  items: NotificationItem[];
}

export type WebhookFormat = 'teams-messagecard' | 'teams-adaptive' | 'slack' | 'generic';

export interface NotifyResult {
  ok: boolean;
  status?: number;
  /** Why it did not go through (never the URL). */
  error?: string;
}

export interface Notifier {
  /** Sends one notification; resolves with the outcome, never rejects. */
  notify(notification: Notification): Promise<NotifyResult>;
}

/** The payload format for a webhook URL, by its host. */
export function webhookFormat(url: string): WebhookFormat {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return 'generic';
  }
  if (host === 'outlook.office.com' || host.endsWith('.webhook.office.com')) return 'teams-messagecard';
  if (
    host.endsWith('.logic.azure.com') ||
    host.endsWith('.powerautomate.com') ||
    host.endsWith('.powerplatform.com')
  )
    return 'teams-adaptive';
  if (host === 'hooks.slack.com') return 'slack';
  return 'generic';
}

const COLOURS: Record<NotificationKind, string> = {
  failure: 'D13438',
  attention: 'FFB900',
  summary: '107C10',
};
const MAX_ITEMS = 20;

/** Plain text as MessageCard markdown (markdown and limited HTML). */
const card = (text: string) => teamsMarkdown(text, { html: true });
/** Plain text as Adaptive Card markdown (no HTML). */
const adaptive = (text: string) => teamsMarkdown(text);

/**
 * The request body for a format. Pure. The text loses its control characters, is redacted, and only
 * then escaped for the format (an escaped secret would no longer match the redactor).
 */
export function webhookPayload(format: WebhookFormat, notification: Notification): unknown {
  const n = redactor.redactValue(withoutControlsDeep(notification));
  const items = n.items.slice(0, MAX_ITEMS);
  const more = n.items.length - items.length;
  const moreText = more > 0 ? `… and ${more} more` : undefined;
  let payload: unknown;
  switch (format) {
    case 'teams-messagecard':
      payload = {
        '@type': 'MessageCard',
        '@context': 'https://schema.org/extensions',
        summary: withoutControls(n.title),
        themeColor: COLOURS[n.kind],
        title: card(n.title),
        text: card(n.text),
        sections: [
          { facts: n.facts.map((f) => ({ name: card(f.name), value: card(f.value) })) },
          ...(items.length > 0
            ? [
                {
                  text: [
                    ...items.map((i) => `**${card(i.title)}**: ${card(i.detail)}`),
                    ...(moreText ? [moreText] : []),
                  ].join('\n\n'),
                },
              ]
            : []),
        ],
      };
      break;
    case 'teams-adaptive':
      payload = {
        type: 'message',
        attachments: [
          {
            contentType: 'application/vnd.microsoft.card.adaptive',
            contentUrl: null,
            content: {
              $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
              type: 'AdaptiveCard',
              version: '1.4',
              body: [
                {
                  type: 'TextBlock',
                  text: adaptive(n.title),
                  weight: 'Bolder',
                  size: 'Medium',
                  wrap: true,
                  color: n.kind === 'failure' ? 'Attention' : n.kind === 'attention' ? 'Warning' : 'Good',
                },
                { type: 'TextBlock', text: adaptive(n.text), wrap: true },
                {
                  type: 'FactSet',
                  facts: n.facts.map((f) => ({ title: adaptive(f.name), value: adaptive(f.value) })),
                },
                ...items.map((i) => ({
                  type: 'TextBlock',
                  text: `**${adaptive(i.title)}**: ${adaptive(i.detail)}`,
                  wrap: true,
                })),
                ...(moreText ? [{ type: 'TextBlock', text: moreText, isSubtle: true, wrap: true }] : []),
              ],
            },
          },
        ],
      };
      break;
    case 'slack':
      payload = {
        text: [
          `*${slackText(n.title)}*`,
          slackText(n.text),
          n.facts.map((f) => `${slackText(f.name)}: ${slackText(f.value)}`).join(' · '),
          ...items.map((i) => `• *${slackText(i.title)}*: ${slackText(i.detail)}`),
          ...(moreText ? [moreText] : []),
        ]
          .filter((line) => line !== '')
          .join('\n'),
      };
      break;
    default:
      payload = {
        source: 'sc-remediator',
        kind: n.kind,
        title: n.title,
        text: n.text,
        runId: n.runId,
        facts: n.facts,
        items: n.items,
      };
  }
  return redactor.redactValue(payload);
}

interface WebhookNotifierOptions {
  /** Default 5 s. */
  timeoutMs?: number;
  /** Overrides the format chosen by host. */
  format?: WebhookFormat;
  /** For tests; default the global fetch. */
  fetch?: typeof fetch;
  log?: Logger;
}

/** A notifier posting to one webhook URL. */
export function createWebhookNotifier(url: string, options: WebhookNotifierOptions = {}): Notifier {
  redactor.register(url);
  const format = options.format ?? webhookFormat(url);
  const timeoutMs = options.timeoutMs ?? 5000;
  const doFetch = options.fetch ?? fetch;
  return {
    async notify(notification) {
      let result: NotifyResult;
      try {
        const response = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8' },
          body: JSON.stringify(webhookPayload(format, notification)),
          signal: AbortSignal.timeout(timeoutMs),
          redirect: 'error',
        });
        // Drain the body so the connection is released.
        await response.arrayBuffer().catch(() => undefined);
        result = response.ok
          ? { ok: true, status: response.status }
          : { ok: false, status: response.status, error: `the webhook answered ${response.status}` };
      } catch (err) {
        // Duck-typed: fetch's DOMException may come from another realm than this Error.
        const raw = typeof err === 'object' && err !== null ? (err as { name?: unknown }).name : undefined;
        const name = typeof raw === 'string' ? raw : '';
        result = {
          ok: false,
          error:
            name === 'TimeoutError' || name === 'AbortError'
              ? `the webhook did not answer within ${timeoutMs} ms`
              : // Never the message: undici's may carry the URL.
                `the webhook could not be reached (${name || 'error'})`,
        };
      }
      if (!result.ok)
        options.log?.warn('Notification not delivered', { kind: notification.kind, error: result.error });
      return result;
    },
  };
}

function itemOf(c: ConnectionReport): NotificationItem {
  const where = `${c.organization}/${c.connectionName} (${c.connectionId})`;
  const why = c.error ?? c.diagnosis?.cause ?? c.reason ?? c.finding;
  const next = c.diagnosis?.nextStep ? ` Next: ${c.diagnosis.nextStep}` : '';
  return { title: where, detail: `${c.finding}, ${c.action} ${c.outcome}: ${why}${next}` };
}

/**
 * The one notification for a finished run: `failure` when a remediation failed, `attention` when a
 * connection needs a person, else `summary` (the daily summary of the nightly run). `onlyProblems`
 * (one-connection runs) returns undefined when all is well.
 */
export function runNotification(
  report: RunReport,
  options: { trigger?: string; onlyProblems?: boolean } = {},
): Notification | undefined {
  const s = report.summary;
  const failed = report.connections.filter((c) => c.outcome === 'failed');
  const attention = report.connections.filter((c) => c.outcome !== 'failed' && needsAttention(c));
  const kind: NotificationKind =
    failed.length > 0 ? 'failure' : attention.length > 0 ? 'attention' : 'summary';
  if (options.onlyProblems && kind === 'summary') return undefined;
  const parts = [
    `${s.byOutcome.succeeded} fixed`,
    `${s.byOutcome.failed} failed`,
    `${s.needsAttention} need a person`,
  ];
  const title =
    kind === 'failure'
      ? `sc-remediator: ${failed.length} remediation${failed.length === 1 ? '' : 's'} failed`
      : kind === 'attention'
        ? `sc-remediator: ${attention.length} connection${attention.length === 1 ? '' : 's'} need${attention.length === 1 ? 's' : ''} a person`
        : 'sc-remediator: all service connections healthy or fixed';
  return {
    kind,
    title,
    text: `${report.dryRun ? 'Dry run' : 'Run'} ${report.runId}${options.trigger ? ` (${options.trigger})` : ''}: ${s.total} connection${s.total === 1 ? '' : 's'}, ${parts.join(', ')}.`,
    runId: report.runId,
    facts: [
      { name: 'Connections', value: String(s.total) },
      { name: 'Fixed', value: String(s.byOutcome.succeeded) },
      { name: 'Failed', value: String(s.byOutcome.failed) },
      { name: 'Need a person', value: String(s.needsAttention) },
      { name: 'Healthy', value: String(s.byFinding.healthy) },
      { name: 'Finished', value: report.finishedAt },
    ],
    items: [...failed, ...attention].map(itemOf),
  };
}
