/**
 * Every HTTP route, handlers invoked directly (`new HttpRequest`) against the sandbox (default
 * scenario) and Azurite: good input, bad ids, unknown organizations (never contacted), malformed,
 * oversized and wrongly typed bodies, role enforcement from `x-ms-client-principal`, and invalid
 * settings. Bad input is always a 4xx with a JSON error, never a 5xx, never a secret.
 */
import { HttpRequest, type HttpHandler, type HttpResponseInit } from '@azure/functions';
import type { Azurite } from '../../sandbox/azurite';
import type { Sandbox } from '../../sandbox/index';
import { BlobLeaseLockProvider, createBlobServiceClient } from '../../src/clients/blobLeaseLock';
import { configureServices } from '../../src/functions/context';
import { health } from '../../src/functions/health';
import { getConnection, listConnections, remediateConnectionNow } from '../../src/functions/connectionsApi';
import { getRun, listRuns, startRun } from '../../src/functions/runsApi';
import { remediateConnection } from '../../src/functions/remediateConnection';
import { workQueueOutput } from '../../src/functions/workQueue';
import type { WorkItem } from '../../src/remediation/fanOut';
import { MemoryTelemetrySink } from '../../src/telemetry/sink';
import {
  appServicePrincipal,
  BEHIND_APP_SERVICE_AUTH,
  invocation,
  operatorHeaders,
  outputMessages,
} from '../helpers/functionsHost';
import { useSandbox } from '../helpers/useSandbox';

const fixture = useSandbox({ scenario: 'default', seed: 'http', azurite: true });
let sandbox: Sandbox;
let azurite: Azurite;
let env: Record<string, string>;
const answers: string[] = [];
const statuses: number[] = [];

interface Call {
  method: string;
  path: string;
  params?: Record<string, string>;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
  /** Send exactly `headers` (default: a signed-in operator's principal and, on POST, the JSON content type). */
  bare?: boolean;
}

interface Answer {
  status: number;
  // Answers are checked field by field; their shapes are the API's.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  headers: Record<string, string>;
  outputs: unknown[];
}

async function call(handler: HttpHandler, c: Call): Promise<Answer> {
  const qs = new URLSearchParams(c.query ?? {}).toString();
  const request = new HttpRequest({
    method: c.method,
    url: `https://sc-remediator.example/api/${c.path}${qs ? `?${qs}` : ''}`,
    params: c.params ?? {},
    headers: c.bare ? (c.headers ?? {}) : { ...operatorHeaders(c.method), ...c.headers },
    ...(c.body !== undefined ? { body: { string: c.body } } : {}),
  });
  const context = invocation('http');
  const response = (await handler(request, context)) as HttpResponseInit;
  const text = JSON.stringify(response.jsonBody ?? null);
  answers.push(text);
  statuses.push(response.status ?? 200);
  return {
    status: response.status ?? 200,
    body: response.jsonBody,
    headers: (response.headers ?? {}) as Record<string, string>,
    outputs: outputMessages(context, workQueueOutput),
  };
}

function connectionId(name: string): string {
  for (const org of sandbox.state.organizations.values())
    for (const ep of org.endpoints.values()) if (ep.name === name) return ep.id;
  throw new Error(`no connection ${name}`);
}

/** A principal as App Service sets it; the role claims alternate between the two names a role claim goes by. */
function principal(roles: string[]): string {
  const roleTyp = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';
  const body = {
    auth_typ: 'aad',
    name_typ: 'name',
    role_typ: roleTyp,
    claims: [
      { typ: 'name', val: 'Ann' },
      ...roles.map((r, i) => ({ typ: i % 2 ? 'roles' : roleTyp, val: r })),
    ],
  };
  return Buffer.from(JSON.stringify(body)).toString('base64');
}

const base64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

beforeAll(() => {
  ({ sandbox, azurite } = fixture);
  env = {
    ...sandbox.env,
    ...BEHIND_APP_SERVICE_AUTH,
    AzureWebJobsStorage: azurite.connectionString,
    REMEDIATION_JITTER_SECONDS: '0',
  };
  configureServices({ env, telemetry: new MemoryTelemetrySink() });
});

describe('GET /api/health (anonymous)', () => {
  test('200 with the configuration valid', async () => {
    const a = await call(health, { method: 'GET', path: 'health' });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ status: 'ok', checks: { configuration: 'ok' } });
    expect(a.headers['content-type']).toMatch(/^application\/json/);
  });
});

describe('connections', () => {
  const webSandbox = () => connectionId('web-sandbox');

  test('GET /api/connections before any run: 404 no-report; ?refresh=true assesses now, read-only', async () => {
    const none = await call(listConnections, { method: 'GET', path: 'connections' });
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('no-report');

    const live = await call(listConnections, {
      method: 'GET',
      path: 'connections',
      query: { refresh: 'true', code: 'function-key' },
    });
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({ source: 'live', dryRun: true });
    expect(live.body.connections.length).toBeGreaterThanOrEqual(15);
    expect(live.body.summary.byOutcome.planned).toBeGreaterThan(0);
    expect(sandbox.state.writes()).toEqual([]);
  });

  test('GET /api/connections: bad query is a 400', async () => {
    for (const query of [{ refresh: 'maybe' }, { verbose: '1' }] as Record<string, string>[]) {
      const a = await call(listConnections, { method: 'GET', path: 'connections', query });
      expect(a.status).toBe(400);
      expect(a.body.error.code).toBe('invalid-query');
    }
  });

  test('GET /api/connections/{org}/{id}: 200 assessed now; 400 bad id or org; 404 unknown', async () => {
    const ok = await call(getConnection, {
      method: 'GET',
      path: `connections/contoso/${webSandbox()}`,
      params: { organization: 'contoso', connectionId: webSandbox() },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.connection).toMatchObject({
      connectionName: 'web-sandbox',
      finding: 'expired',
      action: 'rotate-secret',
      outcome: 'planned',
    });

    const cases: [Record<string, string>, number, string][] = [
      [{ organization: 'contoso', connectionId: 'not-a-guid' }, 400, 'invalid-connection-id'],
      [{ organization: 'contoso', connectionId: "1' OR 1=1" }, 400, 'invalid-connection-id'],
      [{ organization: '../../etc', connectionId: webSandbox() }, 400, 'invalid-organization'],
      [{ organization: 'a'.repeat(200), connectionId: webSandbox() }, 400, 'invalid-organization'],
      [
        { organization: 'contoso', connectionId: '0f0f0f0f-0000-4000-8000-000000000000' },
        404,
        'connection-not-found',
      ],
    ];
    for (const [params, status, code] of cases) {
      const a = await call(getConnection, { method: 'GET', path: 'connections/x/y', params });
      expect([params, a.status, a.body.error?.code]).toEqual([params, status, code]);
    }
    expect(sandbox.state.writes()).toEqual([]);
  });

  test('an organization that is not configured is a 404 and is never contacted', async () => {
    const requests = sandbox.state.requestLog.length;
    for (const organization of ['evil', 'northwind-fake', 'dev.azure.com']) {
      const get = await call(getConnection, {
        method: 'GET',
        path: `connections/${organization}/${webSandbox()}`,
        params: { organization, connectionId: webSandbox() },
      });
      expect(get.status).toBe(404);
      expect(get.body.error.code).toBe('organization-not-configured');
      const post = await call(remediateConnectionNow, {
        method: 'POST',
        path: `connections/${organization}/${webSandbox()}/remediate`,
        params: { organization, connectionId: webSandbox() },
      });
      expect(post.status).toBe(404);
    }
    expect(sandbox.state.requestLog).toHaveLength(requests);
  });

  test('POST …/remediate?dryRun=true: 200 with the plan, no write', async () => {
    const a = await call(remediateConnectionNow, {
      method: 'POST',
      path: `connections/contoso/${webSandbox()}/remediate`,
      params: { organization: 'contoso', connectionId: webSandbox() },
      query: { dryRun: 'true' },
    });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({
      dryRun: true,
      connection: { action: 'rotate-secret', outcome: 'planned' },
    });
    expect(a.body.runId).toBeUndefined();
    const viaBody = await call(remediateConnectionNow, {
      method: 'POST',
      path: `connections/contoso/${webSandbox()}/remediate`,
      params: { organization: 'contoso', connectionId: webSandbox() },
      headers: { 'content-type': 'application/json' },
      body: '{"dryRun": true}',
    });
    expect(viaBody.status).toBe(200);
    expect(viaBody.body.dryRun).toBe(true);
    expect(sandbox.state.writes()).toEqual([]);
  });

  test('POST …/remediate: bodies that are malformed, oversized, mistyped or unexpected are 4xx', async () => {
    const base = {
      method: 'POST',
      path: `connections/contoso/${webSandbox()}/remediate`,
      params: { organization: 'contoso', connectionId: webSandbox() },
    };
    const json = { 'content-type': 'application/json' };
    const cases: [Partial<Call>, number, string][] = [
      [{ headers: json, body: '{"dryRun": tru' }, 400, 'invalid-json'],
      [{ headers: json, body: `{"dryRun": true, "pad": "${'x'.repeat(5000)}"}` }, 413, 'body-too-large'],
      [{ headers: { ...json, 'content-length': '10000000' }, body: '{}' }, 413, 'body-too-large'],
      [{ headers: json, body: '[true]' }, 400, 'invalid-body'],
      [{ headers: json, body: '{"dryRun": "yes"}' }, 400, 'invalid-body'],
      [{ headers: json, body: '{"dryRun": false, "force": true}' }, 400, 'invalid-body'],
      [{ headers: { 'content-type': 'text/plain' }, body: 'dryRun' }, 415, 'unsupported-media-type'],
      [{ query: { dryRun: 'perhaps' } }, 400, 'invalid-query'],
      [{ query: { force: 'true' } }, 400, 'invalid-query'],
    ];
    for (const [extra, status, code] of cases) {
      const a = await call(remediateConnectionNow, { ...base, ...extra });
      expect([extra.body?.slice(0, 30) ?? extra.query, a.status, a.body.error?.code]).toEqual([
        extra.body?.slice(0, 30) ?? extra.query,
        status,
        code,
      ]);
    }
    expect(sandbox.state.writes()).toEqual([]);
  });

  test('POST …/remediate while another rotation holds the lock: 409, nothing done', async () => {
    const locks = new BlobLeaseLockProvider(
      createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString }),
    );
    const held = await locks.tryAcquire(`connection-${webSandbox()}`, 30);
    try {
      const a = await call(remediateConnectionNow, {
        method: 'POST',
        path: `connections/contoso/${webSandbox()}/remediate`,
        params: { organization: 'contoso', connectionId: webSandbox() },
      });
      expect(a.status).toBe(409);
      expect(a.body.error.code).toBe('rotation-in-progress');
    } finally {
      await held?.release();
    }
    expect(sandbox.state.writes()).toEqual([]);
  });

  test('POST …/remediate: 200 with the outcome, recorded as a one-connection run', async () => {
    const a = await call(remediateConnectionNow, {
      method: 'POST',
      path: `connections/contoso/${webSandbox()}/remediate`,
      params: { organization: 'contoso', connectionId: webSandbox() },
    });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({
      dryRun: false,
      connection: {
        connectionName: 'web-sandbox',
        action: 'rotate-secret',
        outcome: 'succeeded',
        phase: 'verified',
      },
    });
    expect(sandbox.state.writes().length).toBeGreaterThan(0);
    const run = await call(getRun, {
      method: 'GET',
      path: `runs/${a.body.runId}`,
      params: { runId: a.body.runId },
    });
    expect(run.status).toBe(200);
    expect(run.body.run).toMatchObject({
      status: 'completed',
      trigger: 'http',
      scope: 'connection',
      total: 1,
    });
    expect(run.body.report.connections).toHaveLength(1);
    // A one-connection run is not "the latest report".
    expect((await call(listConnections, { method: 'GET', path: 'connections' })).status).toBe(404);
  });
});

describe('runs', () => {
  let runId: string;

  test('POST /api/runs: 202 with the run id; its work goes to the queue output', async () => {
    const a = await call(startRun, { method: 'POST', path: 'runs' });
    expect(a.status).toBe(202);
    runId = a.body.runId;
    expect(a.headers['location']).toBe(`/api/runs/${runId}`);
    expect(a.body).toMatchObject({ status: 'running', dryRun: false });
    const messages = a.outputs as WorkItem[];
    expect(messages.length).toBe(a.body.expected);
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.map((m) => m.connectionId)).not.toContain(connectionId('web-sandbox'));

    const running = await call(getRun, { method: 'GET', path: `runs/${runId}`, params: { runId } });
    expect(running.status).toBe(200);
    expect(running.body.run.status).toBe('running');
    expect(running.body.report).toBeUndefined();

    for (const m of messages)
      await remediateConnection(m, invocation('remediateConnection', { dequeueCount: 1 }));
    const done = await call(getRun, { method: 'GET', path: `runs/${runId}`, params: { runId } });
    expect(done.body.run).toMatchObject({ status: 'completed', recorded: messages.length });
    expect(done.body.report.summary.total).toBe(a.body.total);

    const latest = await call(listConnections, { method: 'GET', path: 'connections' });
    expect(latest.status).toBe(200);
    expect(latest.body).toMatchObject({ runId, source: 'ledger' });
  });

  test('GET /api/connections/{org}/{id} uses the project it was last seen in: no organization listing', async () => {
    const id = connectionId('web-sandbox');
    const from = sandbox.state.requestLog.length;
    const a = await call(getConnection, {
      method: 'GET',
      path: `connections/contoso/${id}`,
      params: { organization: 'contoso', connectionId: id },
    });
    expect(a.status).toBe(200);
    expect(a.body.connection).toMatchObject({ finding: 'healthy', action: 'none' });
    const paths = sandbox.state.requestLog.slice(from).map((e) => e.path);
    expect(paths.some((p) => p.endsWith('/_apis/projects'))).toBe(false);
  });

  test('POST /api/runs?dryRun=true (or body): 202, completed at once, nothing queued', async () => {
    const writes = sandbox.state.writes().length;
    const viaQuery = await call(startRun, { method: 'POST', path: 'runs', query: { dryRun: 'true' } });
    const viaBody = await call(startRun, {
      method: 'POST',
      path: 'runs',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{"dryRun":true}',
    });
    for (const a of [viaQuery, viaBody]) {
      expect(a.status).toBe(202);
      expect(a.body).toMatchObject({ status: 'completed', dryRun: true, expected: 0 });
      expect(a.outputs).toEqual([]);
    }
    expect(sandbox.state.writes()).toHaveLength(writes);
  });

  test('POST /api/runs: bad bodies and queries are 4xx', async () => {
    const cases: [Partial<Call>, number][] = [
      [{ headers: { 'content-type': 'application/json' }, body: '{' }, 400],
      [
        {
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ dryRun: true, x: 'y'.repeat(5000) }),
        },
        413,
      ],
      [{ headers: { 'content-type': 'application/json' }, body: '"run"' }, 400],
      [{ query: { dryRun: 'yes please' } }, 400],
    ];
    for (const [extra, status] of cases) {
      const a = await call(startRun, { method: 'POST', path: 'runs', ...extra });
      expect(a.status).toBe(status);
      expect(a.outputs).toEqual([]);
    }
  });

  test('GET /api/runs: newest first, ?limit; bad limit is a 400', async () => {
    const all = await call(listRuns, { method: 'GET', path: 'runs' });
    expect(all.status).toBe(200);
    expect(all.body.runs.length).toBeGreaterThanOrEqual(4);
    const started = (all.body.runs as { startedAt: string }[]).map((r) => r.startedAt);
    expect([...started].sort().reverse()).toEqual(started);
    const one = await call(listRuns, { method: 'GET', path: 'runs', query: { limit: '1' } });
    expect(one.body.runs).toHaveLength(1);
    for (const limit of ['0', '101', 'ten', '-1']) {
      const bad = await call(listRuns, { method: 'GET', path: 'runs', query: { limit } });
      expect(bad.status).toBe(400);
    }
  });

  test('GET /api/runs/{runId}: 400 for a bad id, 404 for an unknown one', async () => {
    for (const [id, status, code] of [
      ['not-a-run', 400, 'invalid-run-id'],
      ['../latest', 400, 'invalid-run-id'],
      ['0f0f0f0f-0000-4000-8000-000000000000', 404, 'run-not-found'],
    ] as const) {
      const a = await call(getRun, { method: 'GET', path: `runs/${id}`, params: { runId: id } });
      expect([id, a.status, a.body.error.code]).toEqual([id, status, code]);
    }
  });
});

describe('roles, when App Service Authentication fronts the app', () => {
  const asCaller = (headers: Record<string, string>, method = 'GET') => ({
    bare: true,
    headers: { ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...headers },
  });

  test('no principal: 401 (health stays anonymous)', async () => {
    const a = await call(listConnections, { method: 'GET', path: 'connections', bare: true });
    expect(a.status).toBe(401);
    expect(a.body.error.code).toBe('unauthenticated');
    expect((await call(health, { method: 'GET', path: 'health', bare: true })).status).toBe(200);
  });

  test('a malformed principal: 401', async () => {
    for (const value of [
      'not base64 json',
      Buffer.from('[1,2]').toString('base64'),
      'e'.repeat(20_000),
      // Static Web Apps' shape: its userRoles are not app roles, and App Service never sends it.
      base64({ identityProvider: 'aad', userId: 'u1', userRoles: ['Remediation.Operator'] }),
    ]) {
      const a = await call(listRuns, {
        method: 'GET',
        path: 'runs',
        ...asCaller({ 'x-ms-client-principal': value }),
      });
      expect(a.status).toBe(401);
      expect(a.body.error.code).toBe('invalid-principal');
    }
  });

  test('Remediation.Reader reads but cannot write (403)', async () => {
    const reader = { 'x-ms-client-principal': principal(['Remediation.Reader']) };
    expect(
      (await call(listConnections, { method: 'GET', path: 'connections', ...asCaller(reader) })).status,
    ).toBe(200);
    expect((await call(listRuns, { method: 'GET', path: 'runs', ...asCaller(reader) })).status).toBe(200);
    const post = await call(startRun, {
      method: 'POST',
      path: 'runs',
      ...asCaller(reader, 'POST'),
      query: { dryRun: 'true' },
    });
    expect(post.status).toBe(403);
    expect(post.body.error).toEqual({
      code: 'forbidden',
      message: "This operation requires the app role 'Remediation.Operator'.",
    });
    const id = connectionId('web-sandbox');
    const remediate = await call(remediateConnectionNow, {
      method: 'POST',
      path: `connections/contoso/${id}/remediate`,
      params: { organization: 'contoso', connectionId: id },
      ...asCaller(reader, 'POST'),
    });
    expect(remediate.status).toBe(403);
  });

  test('Remediation.Operator writes and reads; other roles get 403', async () => {
    const operator = { 'x-ms-client-principal': principal(['Some.Other', 'Remediation.Operator']) };
    const post = await call(startRun, {
      method: 'POST',
      path: 'runs',
      ...asCaller(operator, 'POST'),
      query: { dryRun: 'true' },
    });
    expect(post.status).toBe(202);
    expect((await call(listRuns, { method: 'GET', path: 'runs', ...asCaller(operator) })).status).toBe(200);
    const other = { 'x-ms-client-principal': principal(['Some.Other']) };
    expect((await call(listRuns, { method: 'GET', path: 'runs', ...asCaller(other) })).status).toBe(403);
  });

  test("a principal's own role_typ never makes another claim a role (403)", async () => {
    const writes = sandbox.state.writes().length;
    const id = connectionId('web-sandbox');
    for (const forged of [
      { auth_typ: 'aad', role_typ: 'groups', claims: [{ typ: 'groups', val: 'Remediation.Operator' }] },
      { auth_typ: 'aad', role_typ: 'name', claims: [{ typ: 'name', val: 'Remediation.Operator' }] },
    ]) {
      const a = await call(remediateConnectionNow, {
        method: 'POST',
        path: `connections/contoso/${id}/remediate`,
        params: { organization: 'contoso', connectionId: id },
        ...asCaller({ 'x-ms-client-principal': base64(forged) }, 'POST'),
      });
      expect([forged.role_typ, a.status, a.body.error?.code]).toEqual([forged.role_typ, 403, 'forbidden']);
    }
    expect(sandbox.state.writes()).toHaveLength(writes);
  });
});

describe('without App Service Authentication: fail closed', () => {
  beforeAll(() => {
    const { WEBSITE_AUTH_ENABLED: _on, ...withoutAuth } = env;
    configureServices({ env: withoutAuth, telemetry: new MemoryTelemetrySink() });
  });
  afterAll(() => {
    configureServices({ env, telemetry: new MemoryTelemetrySink() });
  });

  test('a function key alone, or with a forged principal (any role_typ), is refused with 401; nothing is written', async () => {
    const id = connectionId('web-sandbox');
    const writes = sandbox.state.writes().length;
    const requests = sandbox.state.requestLog.length;
    const forgedPrincipals = [
      undefined,
      appServicePrincipal(['Remediation.Operator']),
      base64({ auth_typ: 'aad', role_typ: 'x', claims: [{ typ: 'x', val: 'Remediation.Operator' }] }),
    ];
    const calls: [HttpHandler, Call][] = [
      [listConnections, { method: 'GET', path: 'connections' }],
      [listRuns, { method: 'GET', path: 'runs' }],
      [startRun, { method: 'POST', path: 'runs' }],
      [
        remediateConnectionNow,
        {
          method: 'POST',
          path: `connections/contoso/${id}/remediate`,
          params: { organization: 'contoso', connectionId: id },
        },
      ],
    ];
    for (const forged of forgedPrincipals)
      for (const [handler, c] of calls) {
        const a = await call(handler, {
          ...c,
          query: { code: 'function-key' },
          bare: true,
          headers: {
            'content-type': 'application/json',
            ...(forged ? { 'x-ms-client-principal': forged } : {}),
          },
        });
        expect([c.path, a.status, a.body.error?.code]).toEqual([c.path, 401, 'authentication-required']);
      }
    expect(sandbox.state.writes()).toHaveLength(writes);
    expect(sandbox.state.requestLog).toHaveLength(requests);
    expect((await call(health, { method: 'GET', path: 'health', bare: true })).status).toBe(200);
  });

  test('API_UNSAFE_ALLOW_KEY_ONLY_ACCESS=true: the function key alone is enough (the principal is ignored)', async () => {
    const { WEBSITE_AUTH_ENABLED: _on, ...withoutAuth } = env;
    configureServices({
      env: { ...withoutAuth, API_UNSAFE_ALLOW_KEY_ONLY_ACCESS: 'true' },
      telemetry: new MemoryTelemetrySink(),
    });
    expect((await call(listRuns, { method: 'GET', path: 'runs', bare: true })).status).toBe(200);
    const post = await call(startRun, {
      method: 'POST',
      path: 'runs',
      query: { dryRun: 'true' },
      bare: true,
      headers: {
        'content-type': 'application/json',
        'x-ms-client-principal': appServicePrincipal(['Some.Other']),
      },
    });
    expect(post.status).toBe(202);
  });

  test('an API_UNSAFE_ALLOW_KEY_ONLY_ACCESS that is not a boolean: 503, the settings are invalid', async () => {
    configureServices({
      env: { ...env, API_UNSAFE_ALLOW_KEY_ONLY_ACCESS: 'sure' },
      telemetry: new MemoryTelemetrySink(),
    });
    const a = await call(listRuns, { method: 'GET', path: 'runs' });
    expect(a.status).toBe(503);
    expect(a.body.error.problems).toEqual([
      expect.objectContaining({ setting: 'API_UNSAFE_ALLOW_KEY_ONLY_ACCESS' }),
    ]);
  });
});

describe('POST needs Content-Type: application/json (no cross-site form posts)', () => {
  test('a form or text post, with or without a body, is a 415 and changes nothing', async () => {
    const id = connectionId('web-sandbox');
    const writes = sandbox.state.writes().length;
    const requests = sandbox.state.requestLog.length;
    const principalHeader = { 'x-ms-client-principal': appServicePrincipal(['Remediation.Operator']) };
    const types = [
      undefined,
      'application/x-www-form-urlencoded',
      'text/plain',
      'text/plain; charset=utf-8',
      'multipart/form-data; boundary=x',
      'application/jsonx',
    ];
    const targets: [HttpHandler, Partial<Call>][] = [
      [startRun, { path: 'runs' }],
      [
        remediateConnectionNow,
        {
          path: `connections/contoso/${id}/remediate`,
          params: { organization: 'contoso', connectionId: id },
        },
      ],
    ];
    for (const type of types)
      for (const body of [undefined, '', 'dryRun=false'])
        for (const [handler, c] of targets) {
          const a = await call(handler, {
            method: 'POST',
            path: c.path ?? '',
            ...(c.params ? { params: c.params } : {}),
            bare: true,
            headers: { ...principalHeader, ...(type ? { 'content-type': type } : {}) },
            ...(body !== undefined ? { body } : {}),
          });
          expect([type, body, a.status, a.body.error?.code]).toEqual([
            type,
            body,
            415,
            'unsupported-media-type',
          ]);
          expect(a.outputs).toEqual([]);
        }
    expect(sandbox.state.writes()).toHaveLength(writes);
    expect(sandbox.state.requestLog).toHaveLength(requests);
  });
});

describe('invalid settings', () => {
  afterAll(() => {
    configureServices({ env, telemetry: new MemoryTelemetrySink() });
  });

  test('503 with the problems (never a value); health 503', async () => {
    configureServices({
      env: {
        ...BEHIND_APP_SERVICE_AUTH,
        AZURE_CLIENT_SECRET: 'Sup3rSecretValue!!',
        KEY_VAULT_URL: 'http://kv',
      },
      telemetry: new MemoryTelemetrySink(),
    });
    const a = await call(listRuns, { method: 'GET', path: 'runs' });
    expect(a.status).toBe(503);
    expect(a.body.error.code).toBe('configuration-invalid');
    expect((a.body.error.problems as { setting: string }[]).map((p) => p.setting)).toEqual(
      expect.arrayContaining(['AZDO_ORGANIZATION_URLS', 'KEY_VAULT_URL', 'AZURE_TENANT_ID']),
    );
    expect(JSON.stringify(a.body)).not.toContain('Sup3rSecretValue');
    const h = await call(health, { method: 'GET', path: 'health' });
    expect(h.status).toBe(503);
    expect(h.body).toMatchObject({ status: 'unhealthy', checks: { configuration: 'invalid' } });
    expect(JSON.stringify(h.body)).not.toContain('KEY_VAULT_URL');
  });
});

test('no answer carried a secret value, and none was a 5xx but the invalid-settings ones', () => {
  const secrets = sandbox.state.allSecretValues();
  expect(answers.length).toBeGreaterThan(50);
  // The 503s of the invalid-settings tests are the only 5xx answers.
  expect(statuses.filter((s) => s >= 500)).toEqual([503, 503, 503]);
  for (const text of answers)
    for (const secret of secrets)
      if (text.includes(secret)) throw new Error('A secret value leaked into an answer.');
});
