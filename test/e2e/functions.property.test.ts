/**
 * Property-based tests (fast-check) of every HTTP handler: random route parameters (ids,
 * organizations: names, URLs of other hosts, a trap server's URL, path tricks, unicode, sizes),
 * random query strings, headers (principals included) and bodies, with App Service Authentication on
 * and off, against the sandbox (minimal scenario). Every answer is a JSON 2xx-4xx, never a 5xx nor an
 * exception, and no request ever leaves for a host that is not configured: every TCP connection the
 * process opens goes to the sandbox, and the trap server hears nothing.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import fc from 'fast-check';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { ensureDevCa, issueServerCertificate } from '../../sandbox/tls';
import { configureServices } from '../../src/functions/context';
import { health } from '../../src/functions/health';
import * as connectionsApi from '../../src/functions/connectionsApi';
import * as retiredApi from '../../src/functions/retiredApi';
import * as runsApi from '../../src/functions/runsApi';
import { statusPage } from '../../src/functions/statusPage';
import { MemoryTelemetrySink } from '../../src/telemetry/sink';
import { invocation } from '../helpers/functionsHost';
import { unexpectedTargets, watchOutbound, type OutboundWatch } from '../helpers/outbound';

jest.setTimeout(180_000);

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

let sandbox: Sandbox;
let trap: Server;
let trapUrl: string;
let trapHits = 0;
let outbound: OutboundWatch;
let allowed: string[];
let env: Record<string, string>;
let connectionIds: string[];

beforeAll(async () => {
  sandbox = await startSandbox({ scenario: 'minimal', seed: 'property' });
  const tls = await issueServerCertificate(await ensureDevCa());
  trap = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => {
    trapHits += 1;
    res.statusCode = 200;
    res.end('{}');
  });
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  trapUrl = `https://127.0.0.1:${(trap.address() as AddressInfo).port}`;
  allowed = [sandbox.urls.authority, sandbox.urls.graph, sandbox.urls.devops, sandbox.urls.keyVault].map(
    (u) => new URL(u).host,
  );
  connectionIds = [...sandbox.state.organizations.values()].flatMap((o) => [...o.endpoints.keys()]);
  env = { ...sandbox.env, REMEDIATION_JITTER_SECONDS: '0' };
  outbound = watchOutbound();
});

afterAll(async () => {
  outbound?.stop();
  await sandbox?.stop();
  await new Promise<void>((resolve) => (trap ? trap.close(() => resolve()) : resolve()));
});

/** Every exported handler of the HTTP API, the health probe and the status page. */
function handlers(): [string, Handler][] {
  const api = { ...connectionsApi, ...runsApi, ...retiredApi };
  const fromApi = Object.entries(api).filter((e): e is [string, Handler] => typeof e[1] === 'function');
  return [...fromApi, ['health', health], ['statusPage', statusPage]];
}

/** Organizations: configured ones, other hosts, the trap, path and encoding tricks, unicode, sizes. */
function organizationArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom('contoso', sandbox.organizationUrls[0] ?? ''), weight: 6 },
    fc.constant(trapUrl),
    fc.constant(`${trapUrl}/contoso`),
    fc.constantFrom(
      'https://dev.azure.com/contoso',
      'https://evil.example/contoso',
      '//evil.example',
      '../contoso',
      '..%2f..%2fcontoso',
      'contoso/../../evil',
      'CONTOSO',
      ' contoso ',
      'contoso%00',
      '',
    ),
    fc.string({ maxLength: 64 }),
    fc.string({ unit: 'grapheme', maxLength: 64 }),
    fc.string({ unit: 'binary', maxLength: 32 }),
    fc.string({ minLength: 1000, maxLength: 5000 }),
    fc.webUrl(),
  );
}

function idArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.uuid(), weight: 3 },
    { arbitrary: fc.constantFrom(...connectionIds), weight: 3 },
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.constantFrom('', '00000000-0000-0000-0000-000000000000', `${connectionIds[0] ?? ''} `, '../x'),
    fc.string({ minLength: 500, maxLength: 3000 }),
  );
}

const valueArb = fc.oneof(
  fc.constantFrom('true', 'false', '1', '0', 'yes', '', '100', '-1', '1e3', 'null', '20'),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
);

const queryArb = fc.oneof(
  { arbitrary: fc.constant({}), weight: 2 },
  {
    arbitrary: fc.dictionary(fc.constantFrom('dryRun', 'refresh', 'limit', 'confirm'), valueArb, {
      maxKeys: 2,
    }),
    weight: 2,
  },
  fc.dictionary(
    fc.oneof(
      fc.constantFrom('dryRun', 'refresh', 'limit', 'confirm', 'DRYRUN'),
      fc.string({ maxLength: 12 }),
    ),
    valueArb,
    { maxKeys: 4 },
  ),
);

const principalArb = fc.oneof(
  fc.constant(undefined),
  fc
    .record({
      roles: fc.array(
        fc.oneof(fc.constantFrom('Remediation.Reader', 'Remediation.Operator'), fc.string({ maxLength: 20 })),
        { maxLength: 3 },
      ),
      roleType: fc.constantFrom('roles', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role', 'x'),
    })
    .map(({ roles, roleType }) =>
      Buffer.from(
        JSON.stringify({
          auth_typ: 'aad',
          role_typ: roleType,
          claims: roles.map((val) => ({ typ: roleType, val })),
        }),
      ).toString('base64'),
    ),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '').toString('base64')),
  fc.string({ maxLength: 200 }),
);

const bodyArb = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 3 },
  fc.constantFrom('{}', '{"dryRun":true}', '{"dryRun":"yes"}', '[]', 'null', '{', '{"dryRun":true,"x":1}'),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ''),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.string({ minLength: 5000, maxLength: 20_000 }),
);

/** Built once the sandbox is up (the organizations and ids come from it). */
const requestArb = () =>
  fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
    organization: fc.option(organizationArb(), { nil: undefined }),
    connectionId: fc.option(idArb(), { nil: undefined }),
    runId: fc.option(idArb(), { nil: undefined }),
    query: queryArb,
    principal: principalArb,
    contentType: fc.constantFrom(
      undefined,
      'application/json',
      'text/plain',
      'application/json; charset=utf-16',
    ),
    body: bodyArb,
  });

type RandomRequest = ReturnType<typeof requestArb> extends fc.Arbitrary<infer T> ? T : never;

async function call(handler: Handler, r: RandomRequest): Promise<HttpResponseInit> {
  const params: Record<string, string> = {};
  if (r.organization !== undefined) params['organization'] = r.organization;
  if (r.connectionId !== undefined) params['connectionId'] = r.connectionId;
  if (r.runId !== undefined) params['runId'] = r.runId;
  const headers: Record<string, string> = {};
  if (r.principal !== undefined) headers['x-ms-client-principal'] = r.principal;
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  const url = new URL('https://sc-remediator.example/api/x');
  for (const [k, v] of Object.entries(r.query)) url.searchParams.append(k, v);
  const request = new HttpRequest({
    method: r.method,
    url: url.toString(),
    params,
    headers,
    ...(r.body !== undefined && r.method !== 'GET' ? { body: { string: r.body } } : {}),
  });
  return handler(request, invocation('property'));
}

/** Answers by status class, over the whole file (the generators must reach the handlers' work too). */
const classes: Record<string, number> = {};

function checkAnswer(name: string, answer: HttpResponseInit): void {
  const status = answer.status ?? 200;
  const cls = `${Math.floor(status / 100)}xx`;
  classes[cls] = (classes[cls] ?? 0) + 1;
  if (status >= 500 || status < 200)
    throw new Error(`${name} answered ${status}: ${JSON.stringify(answer.jsonBody ?? answer.body ?? '')}`);
  if (name === 'statusPage') return;
  if (answer.jsonBody === undefined) throw new Error(`${name} answered ${status} without a JSON body`);
  if (status >= 400) {
    const error = (answer.jsonBody as { error?: { code?: unknown } }).error;
    if (typeof error?.code !== 'string') throw new Error(`${name} answered ${status} without an error code`);
  }
}

describe.each([
  ['App Service Authentication off: every call refused', {}],
  ['App Service Authentication off, key-only access allowed', { API_UNSAFE_ALLOW_KEY_ONLY_ACCESS: 'true' }],
  ['App Service Authentication on', { WEBSITE_AUTH_ENABLED: 'true' }],
])('random requests to every handler (%s)', (_label, extra: Record<string, string>) => {
  beforeAll(() => {
    configureServices({ env: { ...env, ...extra }, telemetry: new MemoryTelemetrySink() });
  });

  test.each(handlers().map(([name, handler]) => [name, handler] as const))(
    '%s: a 2xx-4xx JSON answer, never a 5xx or an exception, never another host',
    async (name, handler) => {
      const before = outbound.targets.length;
      await fc.assert(
        fc.asyncProperty(requestArb(), async (r) => {
          checkAnswer(name, await call(handler, r));
        }),
        { numRuns: 100, seed: 20261122 },
      );
      expect(unexpectedTargets(outbound.targets.slice(before), allowed)).toEqual([]);
      expect(trapHits).toBe(0);
    },
  );
});

test("the random requests reached the handlers' work, not only their validation", () => {
  expect(classes['2xx'] ?? 0).toBeGreaterThan(50);
  expect(classes['4xx'] ?? 0).toBeGreaterThan(50);
  expect(outbound.targets.length).toBeGreaterThan(0); // the sandbox was called, and watched
});
