/**
 * The webhook notifier against a local HTTPS receiver: payload per receiver (Teams MessageCard,
 * Teams Workflows Adaptive Card, Slack, generic JSON), best effort (errors, resets, hangs and
 * unreachable hosts give a result, never a throw, never the URL), redaction; and end to end, a
 * failing webhook never fails a run.
 */
import type { Timer } from '@azure/functions';
import type { Azurite } from '../../sandbox/azurite';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { createBlobServiceClient } from '../../src/clients/blobLeaseLock';
import {
  createWebhookNotifier,
  runNotification,
  webhookFormat,
  webhookPayload,
  type Notification,
} from '../../src/clients/notifier';
import { createBlobRunLedger, DEFAULT_LEDGER_CONTAINER } from '../../src/clients/runLedger';
import { configureServices } from '../../src/functions/context';
import { nightlyRemediation } from '../../src/functions/nightlyRemediation';
import { remediateConnection } from '../../src/functions/remediateConnection';
import { workQueueOutput } from '../../src/functions/workQueue';
import type { WorkItem } from '../../src/remediation/fanOut';
import { summarize, type ConnectionReport, type RunReport } from '../../src/remediation/report';
import { redactor } from '../../src/telemetry';
import { MemoryTelemetrySink } from '../../src/telemetry/sink';
import { invocation, outputMessages } from '../helpers/functionsHost';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookServer';
import { testAzurite } from '../helpers/azuritePool';

let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await startWebhookReceiver('whk-T0ken-unit-1234567890');
});

afterAll(async () => {
  await receiver?.close();
});

beforeEach(() => {
  receiver.received.length = 0;
  receiver.behaviour = 'ok';
});

const SECRET = 'abc8Q~thisIsASecretValueThatMustNeverLeave000';

const notification: Notification = {
  kind: 'failure',
  title: 'sc-remediator: 1 remediation failed',
  text: `Run r1: rotation failed with serviceprincipalkey=${SECRET}`,
  runId: 'r1',
  facts: [{ name: 'Failed', value: '1' }],
  items: [{ title: 'contoso/web-prod (id)', detail: `failed: ${SECRET}` }],
};

test('the payload follows the receiver, chosen by the URL host', () => {
  expect(webhookFormat('https://contoso.webhook.office.com/webhookb2/abc')).toBe('teams-messagecard');
  expect(
    webhookFormat(
      'https://prod-12.westeurope.logic.azure.com:443/workflows/x/triggers/manual/paths/invoke?sig=s',
    ),
  ).toBe('teams-adaptive');
  expect(webhookFormat('https://hooks.slack.com/services/T/B/X')).toBe('slack');
  expect(webhookFormat('https://example.org/hook')).toBe('generic');
  expect(webhookFormat('not a url')).toBe('generic');

  const card = webhookPayload('teams-messagecard', notification) as Record<string, unknown>;
  expect(card).toMatchObject({ '@type': 'MessageCard', themeColor: 'D13438', title: notification.title });
  const adaptive = webhookPayload('teams-adaptive', notification) as {
    type: string;
    attachments: { contentType: string; content: { type: string; body: unknown[] } }[];
  };
  expect(adaptive.type).toBe('message');
  expect(adaptive.attachments[0]).toMatchObject({
    contentType: 'application/vnd.microsoft.card.adaptive',
    content: { type: 'AdaptiveCard' },
  });
  const slack = webhookPayload('slack', notification) as { text: string };
  expect(Object.keys(slack)).toEqual(['text']);
  expect(slack.text).toContain('*sc-remediator: 1 remediation failed*');
  expect(webhookPayload('generic', notification)).toMatchObject({
    source: 'sc-remediator',
    kind: 'failure',
    runId: 'r1',
  });
  for (const f of ['teams-messagecard', 'teams-adaptive', 'slack', 'generic'] as const)
    expect(JSON.stringify(webhookPayload(f, notification))).not.toContain(SECRET);
});

test('posts JSON to the webhook; what it sends is redacted', async () => {
  redactor.register(SECRET);
  const notifier = createWebhookNotifier(receiver.url);
  await expect(notifier.notify(notification)).resolves.toEqual({ ok: true, status: 200 });
  expect(receiver.received).toHaveLength(1);
  const [got] = receiver.received;
  expect(got!.path).toBe(`/hook/${receiver.token}`);
  expect(got!.headers['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(got!.body)).toMatchObject({ kind: 'failure', title: notification.title });
  expect(got!.body).not.toContain(SECRET);

  await createWebhookNotifier(receiver.url, { format: 'teams-messagecard' }).notify(notification);
  expect(JSON.parse(receiver.received[1]!.body)).toMatchObject({ '@type': 'MessageCard' });
});

test('never throws: an error answer, a reset, a hang or no listener give a result without the URL', async () => {
  const warnings: string[] = [];
  const log = {
    debug: () => undefined,
    info: () => undefined,
    warn: (m: string, p?: Record<string, unknown>) => warnings.push(`${m} ${JSON.stringify(p)}`),
    error: () => undefined,
  };
  const notifier = createWebhookNotifier(receiver.url, { timeoutMs: 300, log });
  receiver.behaviour = 'error';
  await expect(notifier.notify(notification)).resolves.toEqual({
    ok: false,
    status: 500,
    error: 'the webhook answered 500',
  });
  receiver.behaviour = 'reset';
  const reset = await notifier.notify(notification);
  expect(reset.ok).toBe(false);
  receiver.behaviour = 'hang';
  const started = Date.now();
  await expect(notifier.notify(notification)).resolves.toEqual({
    ok: false,
    error: 'the webhook did not answer within 300 ms',
  });
  expect(Date.now() - started).toBeLessThan(3000);
  const nobody = createWebhookNotifier('https://127.0.0.1:9/hook/T0ken-nobody-listens', {
    timeoutMs: 300,
    log,
  });
  const unreachable = await nobody.notify(notification);
  expect(unreachable.ok).toBe(false);
  expect(warnings).toHaveLength(4);
  for (const text of [...warnings, JSON.stringify([reset, unreachable])]) {
    expect(text).not.toContain(receiver.token);
    expect(text).not.toContain('T0ken-nobody-listens');
  }
});

function report(connections: Partial<ConnectionReport>[]): RunReport {
  const full = connections.map((c, i): ConnectionReport => ({
    organization: 'contoso',
    projects: ['web'],
    connectionId: `id-${i}`,
    connectionName: `conn-${i}`,
    appId: null,
    finding: 'healthy',
    action: 'none',
    outcome: 'skipped',
    credentialSource: 'recorded',
    scheme: 'ServicePrincipal',
    ...c,
  }));
  return {
    runId: 'run-1',
    startedAt: '2025-01-01T02:00:00.000Z',
    finishedAt: '2025-01-01T02:01:00.000Z',
    dryRun: false,
    summary: summarize(full),
    connections: full,
  };
}

test('one notification per run: failure, else attention, else the daily summary', () => {
  const healthy = report([{}, { finding: 'expiring', action: 'rotate-secret', outcome: 'succeeded' }]);
  expect(runNotification(healthy)).toMatchObject({ kind: 'summary', items: [] });
  expect(runNotification(healthy, { onlyProblems: true })).toBeUndefined();
  const attention = report([
    { finding: 'app-missing', action: 'report', outcome: 'skipped', reason: 'gone' },
  ]);
  expect(runNotification(attention)).toMatchObject({
    kind: 'attention',
    title: 'sc-remediator: 1 connection needs a person',
  });
  const failed = report([
    { finding: 'expired', action: 'rotate-secret', outcome: 'failed', error: 'Graph said no' },
    { finding: 'app-missing', action: 'report', outcome: 'skipped' },
  ]);
  const n = runNotification(failed)!;
  expect(n.kind).toBe('failure');
  expect(n.items.map((i) => i.title)).toEqual(['contoso/conn-0 (id-0)', 'contoso/conn-1 (id-1)']);
  expect(n.items[0]!.detail).toContain('Graph said no');
});

describe('end to end: a failing webhook never fails the run', () => {
  let sandbox: Sandbox;
  let azurite: Azurite;

  beforeAll(async () => {
    [sandbox, azurite] = await Promise.all([
      startSandbox({ scenario: 'minimal', seed: 'notifier' }),
      testAzurite({ blob: true, queue: false }),
    ]);
    configureServices({
      env: {
        ...sandbox.env,
        AzureWebJobsStorage: azurite.connectionString,
        REMEDIATION_JITTER_SECONDS: '0',
        NOTIFY_WEBHOOK_URL: receiver.url,
      },
      telemetry: new MemoryTelemetrySink(),
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([sandbox?.stop(), azurite?.stop()]);
  });

  test.each(['error', 'reset'] as const)(
    'webhook %s: the run completes and is recorded',
    async (behaviour) => {
      receiver.behaviour = behaviour;
      const timerContext = invocation('nightlyRemediation');
      const timer: Timer = {
        isPastDue: false,
        schedule: { adjustForDST: true },
        scheduleStatus: { last: '', next: '', lastUpdated: '' },
      };
      await expect(nightlyRemediation(timer, timerContext)).resolves.toBeUndefined();
      const messages = outputMessages(timerContext, workQueueOutput) as WorkItem[];
      for (const m of messages)
        await expect(
          remediateConnection(m, invocation('remediateConnection', { dequeueCount: 1 })),
        ).resolves.toBeUndefined();
      expect(receiver.received.length).toBe(1); // it was tried, once
      const ledger = createBlobRunLedger(
        createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString }).getContainerClient(
          DEFAULT_LEDGER_CONTAINER,
        ),
      );
      const [latest] = await ledger.listRuns(1);
      expect(latest?.status).toBe('completed');
    },
  );
});
