/**
 * Telemetry through the real `applicationinsights` v3 client, end to end: with
 * APPLICATIONINSIGHTS_CONNECTION_STRING pointing at a local ingestion endpoint, a nightly run of
 * the sandbox (minimal scenario) sends its custom events and metrics, correlated with the
 * invocation, and no secret value is in anything sent. The health probe never loads the SDK.
 */
import type { Timer } from '@azure/functions';
import { HttpRequest } from '@azure/functions';
import type { Azurite } from '../../sandbox/azurite';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { configureServices } from '../../src/functions/context';
import { health } from '../../src/functions/health';
import { nightlyRemediation } from '../../src/functions/nightlyRemediation';
import { remediateConnection } from '../../src/functions/remediateConnection';
import { workQueueOutput } from '../../src/functions/workQueue';
import type { WorkItem } from '../../src/remediation/fanOut';
import { stopOneSettingsPolling } from '../helpers/appInsights';
import { invocation, logLines, outputMessages } from '../helpers/functionsHost';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhookServer';
import { testAzurite } from '../helpers/azuritePool';

/** Set when `applicationinsights` is first loaded (the module factory runs then). */
const mockLoads = { applicationinsights: 0 };
jest.mock('applicationinsights', () => {
  mockLoads.applicationinsights += 1;
  return jest.requireActual<object>('applicationinsights');
});

let sandbox: Sandbox;
let azurite: Azurite;
let ingestion: WebhookReceiver;

interface Envelope {
  name: string;
  data: {
    baseType: string;
    baseData: {
      name?: string;
      properties?: Record<string, string>;
      metrics?: { name: string; value: number }[];
    };
  };
}

function envelopes(): Envelope[] {
  return ingestion.received.flatMap((r) => {
    // The exporter sends plain JSON (no content-encoding) to a custom ingestion endpoint.
    expect(r.headers['content-encoding']).toBeUndefined();
    return JSON.parse(r.body) as Envelope[];
  });
}

beforeAll(async () => {
  [sandbox, azurite, ingestion] = await Promise.all([
    startSandbox({ scenario: 'minimal', seed: 'telemetry' }),
    testAzurite({ blob: true, queue: false }),
    startWebhookReceiver('ingest'),
  ]);
  const endpoint = ingestion.url.replace(/\/hook\/.*$/, '/');
  configureServices({
    env: {
      ...sandbox.env,
      AzureWebJobsStorage: azurite.connectionString,
      REMEDIATION_JITTER_SECONDS: '0',
      APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=00000000-0000-4000-8000-000000000000;IngestionEndpoint=${endpoint}`,
    },
  });
}, 60_000);

afterAll(async () => {
  stopOneSettingsPolling();
  await Promise.all([sandbox?.stop(), azurite?.stop(), ingestion?.close()]);
});

test('the health probe sends nothing and loads no telemetry SDK', async () => {
  const response = await health(
    new HttpRequest({ method: 'GET', url: 'https://app.example/api/health' }),
    invocation('health'),
  );
  expect(response.status).toBe(200);
  expect(ingestion.received).toEqual([]);
  expect(mockLoads.applicationinsights).toBe(0);
});

test('a nightly run sends its events and metrics to Application Insights, correlated, with no secret', async () => {
  const timerContext = invocation('nightlyRemediation');
  const timer: Timer = {
    isPastDue: false,
    schedule: { adjustForDST: true },
    scheduleStatus: { last: '', next: '', lastUpdated: '' },
  };
  await nightlyRemediation(timer, timerContext);
  const messages = outputMessages(timerContext, workQueueOutput) as WorkItem[];
  expect(messages).toHaveLength(1);
  const workerContext = invocation('remediateConnection', { dequeueCount: 1 });
  await remediateConnection(messages[0], workerContext);

  expect(mockLoads.applicationinsights).toBe(1);
  const sent = envelopes();
  const events = sent.filter((e) => e.data.baseType === 'EventData');
  const names = events.map((e) => e.data.baseData.name);
  expect(names).toEqual(expect.arrayContaining(['RunStarted', 'ConnectionRemediated', 'RunCompleted']));
  const remediated = events.find((e) => e.data.baseData.name === 'ConnectionRemediated')!;
  expect(remediated.data.baseData.properties).toMatchObject({
    runId: messages[0]!.runId,
    invocationId: workerContext.invocationId,
    functionName: 'remediateConnection',
    connectionName: 'api-deploy',
  });
  const started = events.find((e) => e.data.baseData.name === 'RunStarted')!;
  expect(started.data.baseData.properties?.['invocationId']).toBe(timerContext.invocationId);
  const metricNames = sent
    .filter((e) => e.data.baseType === 'MetricData')
    .flatMap((e) => e.data.baseData.metrics?.map((m) => m.name) ?? []);
  expect(metricNames).toEqual(expect.arrayContaining(['ConnectionsByFinding', 'DaysToNearestExpiry']));

  const wire = JSON.stringify(sent) + JSON.stringify(logLines);
  const secrets = sandbox.state.allSecretValues();
  expect(secrets.length).toBeGreaterThan(3);
  for (const secret of secrets)
    if (wire.includes(secret)) throw new Error('A secret value reached Application Insights.');
}, 60_000);
