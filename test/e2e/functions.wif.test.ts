/**
 * Conversion and retirement through the Functions app, handlers invoked directly against the
 * sandbox (default scenario) and Azurite: the nightly run with a policy and ENABLE_RETIREMENT fans
 * out the conversion and the retirement like any other work, and records them; the HTTP API
 * converts, reverts and retires one connection on request (retire only with ?confirm=true) and
 * lists what the ledger kept of retired connections; a certificate connection is converted and
 * reverted through the API with no PEM in any answer.
 */
import { HttpRequest, type HttpHandler, type HttpResponseInit, type Timer } from '@azure/functions';
import type { Azurite } from '../../sandbox/azurite';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { configureServices, MAX_DEQUEUE_COUNT, WORK_QUEUE } from '../../src/functions/context';
import {
  convertConnectionNow,
  retireConnectionNow,
  revertConnectionNow,
} from '../../src/functions/connectionsApi';
import { listRetired } from '../../src/functions/retiredApi';
import { nightlyRemediation } from '../../src/functions/nightlyRemediation';
import { remediateConnection } from '../../src/functions/remediateConnection';
import { workQueueOutput } from '../../src/functions/workQueue';
import type { WorkItem } from '../../src/remediation/fanOut';
import { MemoryTelemetrySink } from '../../src/telemetry/sink';
import { expectNoSecrets, scenarioCases, type ScenarioCase } from '../helpers/engineSandbox';
import {
  BEHIND_APP_SERVICE_AUTH,
  drainQueue,
  invocation,
  operatorHeaders,
  outputMessages,
  queueClients,
  sendToQueue,
} from '../helpers/functionsHost';
import { createBlobServiceClient } from '../../src/clients/blobLeaseLock';
import { createBlobRunLedger, DEFAULT_LEDGER_CONTAINER } from '../../src/clients/runLedger';
import { certificateScenario } from '../helpers/scenarios';
import { testAzurite } from '../helpers/azuritePool';

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function call(
  handler: HttpHandler,
  c: { method: string; path: string; params?: Record<string, string>; query?: Record<string, string> },
): Promise<Answer> {
  const qs = new URLSearchParams(c.query ?? {}).toString();
  const request = new HttpRequest({
    method: c.method,
    url: `https://sc-remediator.example/api/${c.path}${qs ? `?${qs}` : ''}`,
    params: c.params ?? {},
    headers: operatorHeaders(c.method),
  });
  const response = (await handler(request, invocation('http'))) as HttpResponseInit;
  return { status: response.status ?? 200, body: response.jsonBody };
}

function timer(): Timer {
  const now = new Date().toISOString();
  return {
    isPastDue: false,
    schedule: { adjustForDST: true },
    scheduleStatus: { last: now, next: now, lastUpdated: now },
  };
}

/** The Functions app against `sandbox` and `azurite`, behind App Service Authentication. */
function configureApp(sandbox: Sandbox, azurite: Azurite): void {
  configureServices({
    env: {
      ...sandbox.env,
      ...BEHIND_APP_SERVICE_AUTH,
      AzureWebJobsStorage: azurite.connectionString,
      REMEDIATION_JITTER_SECONDS: '0',
    },
    telemetry: new MemoryTelemetrySink(),
  });
}

describe('the nightly run with a policy and retirement enabled', () => {
  let sandbox: Sandbox;
  let azurite: Azurite;
  let cases: Map<string, ScenarioCase>;

  beforeAll(async () => {
    [sandbox, azurite] = await Promise.all([
      startSandbox({ scenario: 'default', seed: 'wif-nightly' }),
      testAzurite({ blob: true, queue: true }),
    ]);
    cases = scenarioCases(sandbox);
    configureServices({
      env: {
        ...sandbox.env,
        AzureWebJobsStorage: azurite.connectionString,
        REMEDIATION_JITTER_SECONDS: '0',
        OLD_SECRET_RETENTION_HOURS: '0',
        ENABLE_RETIREMENT: 'true',
        REMEDIATION_POLICY: JSON.stringify({
          rules: [
            {
              organization: 'contoso',
              project: 'data',
              connection: 'data-warehouse-prod',
              action: 'convert-to-wif',
            },
          ],
        }),
      },
      telemetry: new MemoryTelemetrySink(),
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([sandbox?.stop(), azurite?.stop()]);
  });

  test('planned read-only, fanned out, converted and retired by the queue worker, recorded in the ledger', async () => {
    const converted = cases.get('automatic-expiring-other-password')!;
    const retired = cases.get('app-deleted')!;
    const context = invocation('nightlyRemediation');
    await nightlyRemediation(timer(), context);
    const messages = outputMessages(context, workQueueOutput) as WorkItem[];
    expect(sandbox.state.writes()).toEqual([]);
    expect(messages.map((m) => m.connectionId)).toEqual(
      expect.arrayContaining([converted.connectionId, retired.connectionId]),
    );

    const { queue, poison } = queueClients(azurite.connectionString, WORK_QUEUE);
    await sendToQueue(queue, messages);
    const stats = await drainQueue(queue, poison, remediateConnection, {
      functionName: 'remediateConnection',
      maxDequeueCount: MAX_DEQUEUE_COUNT,
    });
    expect(stats.poisoned).toBe(0);

    const ledger = createBlobRunLedger(
      createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString }).getContainerClient(
        DEFAULT_LEDGER_CONTAINER,
      ),
    );
    const report = await ledger.getReport(messages[0]!.runId);
    expect(report?.connections.find((c) => c.connectionId === converted.connectionId)).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'succeeded',
      conversion: { path: 'azure-devops', phase: 'verified' },
    });
    expect(report?.connections.find((c) => c.connectionId === retired.connectionId)).toMatchObject({
      action: 'delete',
      outcome: 'succeeded',
    });
    expect(report?.summary.convertible).toBeGreaterThan(0);
    expect(converted.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');
    expect(sandbox.state.organization('contoso')!.endpoints.has(retired.connectionId)).toBe(false);
    expect(await ledger.getRetired('contoso', retired.connectionId)).toMatchObject({
      runId: messages[0]!.runId,
      definition: { name: 'data-legacy-reporting' },
    });
    expectNoSecrets(JSON.stringify(report), sandbox.state.allSecretValues(), 'the ledger report');
  });
});

describe('the HTTP API', () => {
  let sandbox: Sandbox;
  let azurite: Azurite;
  let cases: Map<string, ScenarioCase>;

  beforeAll(async () => {
    [sandbox, azurite] = await Promise.all([
      startSandbox({ scenario: 'default', seed: 'wif-http' }),
      testAzurite({ blob: true, queue: false }),
    ]);
    cases = scenarioCases(sandbox);
    configureApp(sandbox, azurite);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([sandbox?.stop(), azurite?.stop()]);
  });

  const params = (c: ScenarioCase) => ({ organization: c.organization, connectionId: c.connectionId });

  test('POST …/convert converts (no policy needed for an explicit request); …/revert puts the secret back', async () => {
    const c = cases.get('automatic-expiring-other-password')!;
    const dry = await call(convertConnectionNow, {
      method: 'POST',
      path: 'x',
      params: params(c),
      query: { dryRun: 'true' },
    });
    expect(dry.status).toBe(200);
    expect(dry.body.connection).toMatchObject({ action: 'convert-to-wif', outcome: 'planned' });
    expect(sandbox.state.writes('devops')).toEqual([]);

    const done = await call(convertConnectionNow, { method: 'POST', path: 'x', params: params(c) });
    expect(done.status).toBe(200);
    expect(done.body.connection).toMatchObject({ action: 'convert-to-wif', outcome: 'succeeded' });
    expect(done.body.runId).toEqual(expect.any(String));
    expect(c.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');

    const reverted = await call(revertConnectionNow, { method: 'POST', path: 'x', params: params(c) });
    expect(reverted.body.connection).toMatchObject({
      outcome: 'succeeded',
      conversion: { phase: 'reverted' },
    });
    expect(c.endpoint.authorization.scheme).toBe('ServicePrincipal');
  });

  test('POST …/retire needs ?confirm=true; then deletes, and GET /api/retired shows the record', async () => {
    const c = cases.get('app-deleted')!;
    const unconfirmed = await call(retireConnectionNow, { method: 'POST', path: 'x', params: params(c) });
    expect(unconfirmed.status).toBe(400);
    expect(unconfirmed.body.error.code).toBe('confirmation-required');
    expect(sandbox.state.organization('contoso')!.endpoints.has(c.connectionId)).toBe(true);

    const done = await call(retireConnectionNow, {
      method: 'POST',
      path: 'x',
      params: params(c),
      query: { confirm: 'true' },
    });
    expect(done.status).toBe(200);
    expect(done.body.connection).toMatchObject({ action: 'delete', outcome: 'succeeded' });
    expect(sandbox.state.organization('contoso')!.endpoints.has(c.connectionId)).toBe(false);

    const list = await call(listRetired, { method: 'GET', path: 'retired' });
    expect(list.status).toBe(200);
    expect(list.body.retired).toEqual([
      expect.objectContaining({ connectionId: c.connectionId, connectionName: 'data-legacy-reporting' }),
    ]);
    expectNoSecrets(JSON.stringify(list.body), sandbox.state.allSecretValues(), 'GET /api/retired');
  });
});

describe('the HTTP API, a certificate connection', () => {
  let sandbox: Sandbox;
  let azurite: Azurite;

  beforeAll(async () => {
    [sandbox, azurite] = await Promise.all([
      startSandbox({ scenario: certificateScenario('wif-http-certificate') }),
      testAzurite({ blob: true, queue: false }),
    ]);
    configureApp(sandbox, azurite);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([sandbox?.stop(), azurite?.stop()]);
  });

  test('POST …/convert rotates the certificate first and converts; …/revert puts the certificate back; no PEM in an answer', async () => {
    const c = scenarioCases(sandbox).get('certificate')!;
    const params = { organization: c.organization, connectionId: c.connectionId };
    const scenarioPem = c.endpoint.authorization.parameters['servicePrincipalCertificate'] ?? '';
    const done = await call(convertConnectionNow, { method: 'POST', path: 'x', params });
    expect(done.body.connection).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'succeeded',
      conversion: { path: 'federated-credential', phase: 'verified' },
    });
    expect(c.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');
    const reverted = await call(revertConnectionNow, { method: 'POST', path: 'x', params });
    expect(reverted.body.connection).toMatchObject({
      outcome: 'succeeded',
      conversion: { phase: 'reverted' },
    });
    expect(c.endpoint.authorization.parameters['authenticationType']).toBe('spnCertificate');
    const text = JSON.stringify([done.body, reverted.body]);
    expectNoSecrets(text, [scenarioPem, ...sandbox.state.allSecretValues()], 'the answers');
    expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
  });
});
