/**
 * `POST /api/connections/{org}/{id}/approve` (issue 10 §1, DESIGN invariant 8), handlers invoked
 * directly against the sandbox's `confused-deputy` scenario and Azurite, with App Service
 * Authentication on: only `Remediation.Operator` approves; the body names the app, which must be the
 * one the connection names now; a JSON body only. A direct `remediate` call of a connection nobody
 * approved is reported, not rotated; once approved, it is rotated.
 */
import { HttpRequest, type HttpHandler, type HttpResponseInit } from '@azure/functions';
import type { Azurite } from '../../sandbox/azurite';
import type { Sandbox } from '../../sandbox/index';
import type { EndpointRecord } from '../../sandbox/model';
import { configureServices } from '../../src/functions/context';
import { approveConnectionNow, remediateConnectionNow } from '../../src/functions/connectionsApi';
import { MemoryTelemetrySink } from '../../src/telemetry/sink';
import { invocation } from '../helpers/functionsHost';
import { useSandbox } from '../helpers/useSandbox';

const fixture = useSandbox({
  scenario: 'confused-deputy',
  seed: 'approve-http',
  azurite: true,
});
let sandbox: Sandbox;
let azurite: Azurite;

interface Answer {
  status: number;
  // Answers are checked field by field; their shapes are the API's.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function call(
  handler: HttpHandler,
  endpoint: EndpointRecord,
  action: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> {
  const request = new HttpRequest({
    method: 'POST',
    url: `https://sc-remediator.example/api/connections/contoso/${endpoint.id}/${action}`,
    params: { organization: 'contoso', connectionId: endpoint.id },
    headers,
    ...(body !== undefined ? { body: { string: body } } : {}),
  });
  const response = (await handler(request, invocation('http'))) as HttpResponseInit;
  return { status: response.status ?? 200, body: response.jsonBody };
}

function principal(roles: string[]): string {
  const roleTyp = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';
  return Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'name',
      role_typ: roleTyp,
      claims: [{ typ: 'name', val: 'Ann' }, ...roles.map((val) => ({ typ: roleTyp, val }))],
    }),
  ).toString('base64');
}

const reader = {
  'x-ms-client-principal': principal(['Remediation.Reader']),
  'content-type': 'application/json',
};
const operator = {
  'x-ms-client-principal': principal(['Remediation.Operator']),
  'x-ms-client-principal-name': 'ann@contoso.example',
  'content-type': 'application/json',
};

function endpoint(name: string): EndpointRecord {
  for (const org of sandbox.state.organizations.values())
    for (const ep of org.endpoints.values()) if (ep.name === name) return ep;
  throw new Error(`no connection ${name}`);
}

const appIdOf = (ep: EndpointRecord): string => ep.authorization.parameters['serviceprincipalid'] ?? '';

function binding(id: string): Record<string, string> | undefined {
  return sandbox.state.vault.secrets.get(`sc-remediator-binding-${id}`.toLowerCase())?.versions.at(-1)?.tags;
}

beforeAll(() => {
  ({ sandbox, azurite } = fixture);
  configureServices({
    env: {
      ...sandbox.env,
      AzureWebJobsStorage: azurite.connectionString,
      WEBSITE_AUTH_ENABLED: 'true',
      OLD_SECRET_RETENTION_HOURS: '0',
    },
    telemetry: new MemoryTelemetrySink(),
  });
});

test('a direct remediate call of a connection nobody approved is reported, not rotated', async () => {
  const attacker = endpoint('borrowed-prod');
  const a = await call(remediateConnectionNow, attacker, 'remediate', operator);
  expect(a.status).toBe(200);
  expect(a.body.connection).toMatchObject({ action: 'report', entitlement: { bound: false } });
  expect(a.body.connection.entitlement.approveCommand).toContain(`--connection ${attacker.id}`);
  const app = sandbox.state.appByAppId(appIdOf(attacker));
  expect(app?.passwordCredentials.some((p) => p.displayName?.includes(attacker.id))).toBe(false);
});

test('only Remediation.Operator approves; a JSON body naming the app the connection names now', async () => {
  const attacker = endpoint('borrowed-prod');
  const appId = appIdOf(attacker);
  const otherAppId = appIdOf(endpoint('staging-deploy'));

  const asReader = await call(approveConnectionNow, attacker, 'approve', reader, JSON.stringify({ appId }));
  expect(asReader.status).toBe(403);
  expect(asReader.body.error.code).toBe('forbidden');

  const wrongApp = await call(
    approveConnectionNow,
    attacker,
    'approve',
    operator,
    JSON.stringify({ appId: otherAppId }),
  );
  expect(wrongApp.status).toBe(409);
  expect(wrongApp.body.error).toMatchObject({ code: 'app-mismatch' });
  expect(wrongApp.body.error.message).toContain(`now names app ${appId}`);

  const form = await call(
    approveConnectionNow,
    attacker,
    'approve',
    { ...operator, 'content-type': 'text/plain' },
    JSON.stringify({ appId }),
  );
  expect(form.status).toBe(415);
  const empty = await call(approveConnectionNow, attacker, 'approve', operator);
  expect(empty.status).toBe(400);
  const extra = await call(
    approveConnectionNow,
    attacker,
    'approve',
    operator,
    JSON.stringify({ appId, how: 'x' }),
  );
  expect(extra.status).toBe(400);
  expect(binding(attacker.id)).toBeUndefined();

  const ok = await call(approveConnectionNow, attacker, 'approve', operator, JSON.stringify({ appId }));
  expect(ok.status).toBe(200);
  expect(ok.body.binding).toMatchObject({
    connectionId: attacker.id,
    appId,
    how: 'approved:http:ann@contoso.example',
  });
  expect(binding(attacker.id)).toMatchObject({ appId, how: 'approved:http:ann@contoso.example' });

  const fixed = await call(remediateConnectionNow, attacker, 'remediate', operator);
  expect(fixed.body.connection).toMatchObject({
    action: 'rotate-secret',
    outcome: 'succeeded',
    entitlement: { bound: true, how: 'approved:http:ann@contoso.example' },
  });
});
