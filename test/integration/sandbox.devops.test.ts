/**
 * Fidelity of the simulated Azure DevOps, through the real adapter (`src/clients/azureDevOps.ts`,
 * `@azure/core-rest-pipeline`, `@azure/identity`) over HTTPS, and raw `fetch` where the adapter
 * hides what the service does (the 203 sign-in page, headers, error bodies).
 * One test per behaviour in DESIGN.md "Behaviour of the real services".
 */
import { ClientSecretCredential } from '@azure/identity';
import { AzureDevOpsRestClient } from '../../src/clients/azureDevOps';
import type { PacingClock, PacingStats } from '../../src/clients/azureDevOpsPacing';
import { AZURE_DEVOPS_SCOPE } from '../../src/clients/cloud';
import { AuthenticationError, ServiceError } from '../../src/errors';
import type { ServiceConnection } from '../../src/remediation/ports';
import { startSandbox, type Sandbox, type Scenario } from '../../sandbox/index';
import { guidToBase64Url } from '../../sandbox/federation';
import type { EndpointRecord, HttpExchange } from '../../sandbox/model';

const ALICE_PAT = 'alice-pat-0c1d6f5e9b7a4c2d8e3f';
const BOB_PAT = 'bob-pat-7e2a9c4b1d6f3e8a5c0b';
const CAROL_PAT = 'carol-pat-3b8e1f6a9c2d5e7b4a0f';
const UNKNOWN_PAT = 'expired-pat-9f8e7d6c5b4a3210';
const DANA_PAT = 'dana-pat-5c1e8b3f7a2d9e4c6b0a';
const ERIN_PAT = 'erin-pat-8a4d2c7e1b9f3a6d5e0c';

const scenario: Scenario = {
  name: 'devops-fidelity',
  productIdentity: 'remediator',
  identities: [
    { key: 'remediator', displayName: 'sc-remediator', kind: 'servicePrincipal' },
    { key: 'alice', displayName: 'Alice Lee', kind: 'user', pats: [ALICE_PAT] },
    { key: 'bob', displayName: 'Bob Reader', kind: 'user', pats: [BOB_PAT] },
    { key: 'carol', displayName: 'Carol Outsider', kind: 'user', pats: [CAROL_PAT] },
    { key: 'dana', displayName: 'Dana ProjectAdmin', kind: 'user', pats: [DANA_PAT] },
    { key: 'erin', displayName: 'Erin NoView', kind: 'user', pats: [ERIN_PAT] },
  ],
  apps: [
    { key: 'manual', displayName: 'sp-manual', passwords: [{ key: 'cur', endInDays: 200 }] },
    { key: 'keep', displayName: 'sp-keep', passwords: [{ key: 'cur', endInDays: 200 }] },
    { key: 'ready', displayName: 'sp-ready', passwords: [{ key: 'cur', endInDays: 200 }] },
    { key: 'token', displayName: 'sp-token', passwords: [{ key: 'cur', endInDays: 200 }] },
    { key: 'expired', displayName: 'sp-expired', passwords: [{ key: 'old', endInDays: -5 }] },
    {
      key: 'norole',
      displayName: 'sp-norole',
      hasSubscriptionRole: false,
      passwords: [{ key: 'cur', endInDays: 90 }],
    },
    { key: 'gone', displayName: 'sp-gone', deleted: true, passwords: [{ key: 'cur', endInDays: 90 }] },
    { key: 'gone2', displayName: 'sp-gone2', deleted: true, passwords: [{ key: 'cur', endInDays: 90 }] },
    { key: 'shared', displayName: 'sp-shared', passwords: [{ key: 'cur', endInDays: 200 }] },
    {
      key: 'auto',
      displayName: 'contoso-web-auto',
      passwords: [
        { key: 'ado', displayName: 'ado-created', endInDays: 30 },
        { key: 'other', displayName: 'used by a nightly job', endInDays: 300 },
      ],
    },
    {
      key: 'auto2',
      displayName: 'contoso-web-auto2',
      passwords: [
        { key: 'ado', displayName: 'ado-created', endInDays: 30 },
        { key: 'other', displayName: 'used by a nightly job', endInDays: 300 },
      ],
    },
    { key: 'auto3', displayName: 'contoso-web-auto3', passwords: [{ key: 'ado', endInDays: 30 }] },
    { key: 'deletable', displayName: 'sp-deletable', passwords: [{ key: 'cur', endInDays: 200 }] },
    { key: 'wif', displayName: 'sp-wif' },
    { key: 'convert', displayName: 'contoso-web-convert', passwords: [{ key: 'ado', endInDays: 30 }] },
    { key: 'convertslow', displayName: 'contoso-web-slow', passwords: [{ key: 'ado', endInDays: 30 }] },
    { key: 'convertsp', displayName: 'contoso-web-sp', passwords: [{ key: 'ado', endInDays: 30 }] },
  ],
  organizations: [
    {
      name: 'contoso',
      projects: [{ name: 'web' }, { name: 'data' }],
      members: [
        { identity: 'remediator', endpointAdministrator: true },
        { identity: 'alice', endpointAdministrator: true },
        { identity: 'bob', endpointAdministrator: false },
        { identity: 'dana', endpointAdministrator: false, projectAdministratorOf: ['web'] },
        { identity: 'erin', endpointAdministrator: false, viewConnections: false },
      ],
      connections: [
        c('manual-ok', 'manual', { name: 'web-manual' }),
        c('keep-key', 'keep'),
        c('ready-follows', 'ready'),
        c('token-breaks', 'token'),
        c('expired', 'expired', { secret: 'old' }),
        c('accesstoken-null', 'manual', { accessTokenNull: true }),
        c('no-role', 'norole'),
        c('app-gone', 'gone'),
        c('shared', 'shared', { projects: ['web', 'data'] }),
        c('automatic', 'auto', { creationMode: 'Automatic', secret: 'ado' }),
        c('automatic-to-manual', 'auto2', { creationMode: 'Automatic', secret: 'ado' }),
        c('automatic-deep', 'auto3', { creationMode: 'Automatic', secret: 'ado' }),
        c('deletable', 'deletable'),
        c('convert', 'convert', { creationMode: 'Automatic', secret: 'ado' }),
        c('wrong-key', 'manual'),
        c('convert-slow', 'convertslow', { creationMode: 'Automatic', secret: 'ado' }),
        c('convert-sp', 'convertsp', { creationMode: 'Automatic', secret: 'ado' }),
        c('auto-gone', 'gone2', { creationMode: 'Automatic' }),
        c('hidden', 'manual'),
        {
          key: 'wif',
          name: 'wif',
          projects: ['web'],
          scheme: 'WorkloadIdentityFederation',
          creationMode: 'Manual',
          app: 'wif',
        },
      ],
    },
    {
      name: 'bigco',
      projects: Array.from({ length: 205 }, (_, i) => ({ name: `project-${String(i).padStart(3, '0')}` })),
      members: [{ identity: 'remediator', endpointAdministrator: true }],
      connections: [],
    },
  ],
};

function c(
  key: string,
  app: string,
  extra: Partial<Scenario['organizations'][number]['connections'][number]> = {},
): Scenario['organizations'][number]['connections'][number] {
  return {
    key,
    name: key,
    projects: ['web'],
    scheme: 'ServicePrincipal',
    creationMode: 'Manual',
    app,
    secret: 'cur',
    ...extra,
  };
}

let sandbox: Sandbox;
let org: string;
let client: AzureDevOpsRestClient;
let credential: ClientSecretCredential;
/** Every error message the adapter produced: none may carry a secret value. */
const errorMessages: string[] = [];

const fastRetry = { maxRetries: 3, retryDelayInMs: 20, maxRetryDelayInMs: 100 };

beforeAll(async () => {
  sandbox = await startSandbox({ scenario });
  org = `${sandbox.urls.devops}/contoso`;
  credential = new ClientSecretCredential(
    sandbox.env['AZURE_TENANT_ID']!,
    sandbox.env['AZURE_CLIENT_ID']!,
    sandbox.env['AZURE_CLIENT_SECRET']!,
    { authorityHost: sandbox.urls.authority, disableInstanceDiscovery: true },
  );
  client = new AzureDevOpsRestClient({ credential, retry: fastRetry });
});

afterAll(async () => {
  await sandbox?.stop();
  const secrets = sandbox.state
    .allSecretValues()
    .concat([ALICE_PAT, BOB_PAT, CAROL_PAT, UNKNOWN_PAT, DANA_PAT, ERIN_PAT]);
  const leaked = errorMessages.filter((m) => secrets.some((s) => m.includes(s)));
  expect(leaked.length).toBe(0);
});

beforeEach(() => {
  sandbox.faults.clear();
  sandbox.state.requestLog.length = 0;
  delete sandbox.state.onExchange;
});

/** The request log is written when an answer finishes sending, a moment after the client has it. */
function settled(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 50));
}

/** Captures the Azure DevOps exchanges (bodies and headers) from now on, for this test. */
function capture(): HttpExchange[] {
  const exchanges: HttpExchange[] = [];
  sandbox.state.onExchange = (x) => {
    if (x.service === 'devops') exchanges.push(x);
  };
  return exchanges;
}

/** Runs `fn`, expecting it to throw; records the message for the leak check. */
async function failure(fn: () => Promise<unknown>): Promise<ServiceError> {
  try {
    await fn();
  } catch (err) {
    errorMessages.push((err as Error).message);
    if (err instanceof ServiceError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

function endpoint(name: string): EndpointRecord {
  const found = [...sandbox.state.organization('contoso')!.endpoints.values()].find((e) => e.name === name);
  if (!found) throw new Error(`no endpoint ${name}`);
  return found;
}

function projectId(name: string, orgName = 'contoso'): string {
  return sandbox.state.organization(orgName)!.projects.find((p) => p.name === name)!.id;
}

async function bearer(): Promise<Record<string, string>> {
  const token = await credential.getToken(AZURE_DEVOPS_SCOPE);
  return { Authorization: `Bearer ${token.token}` };
}

function basic(pat: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`:${pat}`).toString('base64')}` };
}

async function get(id: string, project = 'web'): Promise<ServiceConnection> {
  const connection = await client.getConnection(org, project, id);
  if (!connection) throw new Error(`connection ${id} not found`);
  return connection;
}

function devopsLog(method?: string) {
  return sandbox.state.requestLog.filter((e) => e.service === 'devops' && (!method || e.method === method));
}

/** Stored secret equals an app password's secret (compared without printing either). */
function storedKeyIs(ep: EndpointRecord, secret: string | undefined): boolean {
  return ep.authorization.parameters['serviceprincipalkey'] === secret;
}

describe('authentication', () => {
  test('an Entra ID token with the Azure DevOps audience from ClientSecretCredential is accepted', async () => {
    const projects = await client.listProjects(org);
    expect(projects.map((p) => p.name).sort()).toEqual(['data', 'web']);
    expect(devopsLog()[0]?.caller).toBe('remediator');
  });

  test('a PAT as Basic base64(":"+pat) is accepted', async () => {
    const projects = await new AzureDevOpsRestClient({ pat: ALICE_PAT }).listProjects(org);
    expect(projects).toHaveLength(2);
    expect(devopsLog()[0]?.caller).toBe('alice');
  });

  test('no credential: 401 TF400813 with a WWW-Authenticate Bearer authorization_uri challenge', async () => {
    const res = await fetch(`${org}/_apis/projects?api-version=7.1`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain(
      `Bearer authorization_uri=${sandbox.urls.authority}/${sandbox.state.tenantId}`,
    );
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      $id: '1',
      innerException: null,
      typeKey: 'UnauthorizedRequestException',
      errorCode: 0,
      eventId: 3000,
    });
    expect(body['message']).toMatch(/^TF400813: /);
    expect(body['typeName']).toMatch(/UnauthorizedRequestException, /);
  });

  test('an Entra ID credential that cannot get a token is an AuthenticationError carrying the AADSTS code', async () => {
    const wrong = new ClientSecretCredential(
      sandbox.state.tenantId,
      sandbox.env['AZURE_CLIENT_ID']!,
      'definitely-not-the-secret',
      { authorityHost: sandbox.urls.authority, disableInstanceDiscovery: true },
    );
    const err = await failure(() => new AzureDevOpsRestClient({ credential: wrong }).listProjects(org));
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.code).toBe('AADSTS7000215');
    expect(err.message).not.toContain('definitely-not-the-secret');
    expect(devopsLog()).toHaveLength(0); // Azure DevOps was never called
  });

  test('a caller who is not a member of the organization gets 401 TF400813 (AuthenticationError)', async () => {
    const err = await failure(() => new AzureDevOpsRestClient({ pat: CAROL_PAT }).listProjects(org));
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.status).toBe(401);
    expect(err.code).toBe('UnauthorizedRequestException');
    expect(err.message).toContain('TF400813');
  });

  test('a bad PAT gets HTTP 203 with an HTML sign-in page, which the adapter reports as an auth error', async () => {
    const res = await fetch(`${org}/_apis/projects?api-version=7.1`, { headers: basic(UNKNOWN_PAT) });
    expect(res.status).toBe(203);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toContain('<title>Azure DevOps Services | Sign In</title>');

    const err = await failure(() => new AzureDevOpsRestClient({ pat: UNKNOWN_PAT }).listProjects(org));
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.message).toContain('Azure DevOps answered with a sign-in page: the PAT is invalid or expired');
    expect(err.transient).toBe(false);
    expect(devopsLog()).toHaveLength(2); // the raw call and one adapter call: never retried
  });

  test('X-TFS-FedAuthRedirect: Suppress turns the sign-in page into a 401', async () => {
    const res = await fetch(`${org}/_apis/projects?api-version=7.1`, {
      headers: { ...basic(UNKNOWN_PAT), 'X-TFS-FedAuthRedirect': 'Suppress' },
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { typeKey: string }).typeKey).toBe('UnauthorizedRequestException');
  });
});

describe('api-version', () => {
  test('missing: 400 VssVersionNotSpecifiedException with the real message', async () => {
    const res = await fetch(`${org}/_apis/projects`, { headers: await bearer() });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { message: string; typeKey: string };
    expect(body.typeKey).toBe('VssVersionNotSpecifiedException');
    expect(body.message).toBe(
      'No api-version was supplied for the "GET" request. The version must be supplied either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a query parameter (e.g. "?api-version=1.0").',
    );
  });

  test('7.1, 7.1-preview.4, 6.0-preview.4, 7.2-preview.4 and the Accept header are accepted; others refused', async () => {
    const headers = await bearer();
    const list = (v: string) => `${org}/web/_apis/serviceendpoint/endpoints?api-version=${v}`;
    for (const v of ['7.1', '7.1-preview.4', '6.0-preview.4', '7.2-preview.4'])
      expect((await fetch(list(v), { headers })).status).toBe(200);
    const viaAccept = await fetch(`${org}/web/_apis/serviceendpoint/endpoints`, {
      headers: { ...headers, Accept: 'application/json; api-version=7.1' },
    });
    expect(viaAccept.status).toBe(200);

    const refused = async (v: string) =>
      (await (await fetch(list(v), { headers })).json()) as { typeKey: string };
    expect((await refused('6.0')).typeKey).toBe('VssInvalidPreviewVersionException');
    expect((await refused('7.2')).typeKey).toBe('VssInvalidPreviewVersionException');
    expect((await refused('8.0')).typeKey).toBe('VssVersionOutOfRangeException');
    expect((await refused('latest')).typeKey).toBe('VssInvalidApiResourceVersionException');
  });
});

describe('projects', () => {
  test('are paged with $top and x-ms-continuationtoken, and the adapter follows the token', async () => {
    const bigco = `${sandbox.urls.devops}/bigco`;
    const first = await fetch(`${bigco}/_apis/projects?$top=100&api-version=7.1`, {
      headers: await bearer(),
    });
    const page = (await first.json()) as { count: number; value: Record<string, unknown>[] };
    expect(page.count).toBe(100);
    expect(first.headers.get('x-ms-continuationtoken')).toBeTruthy();
    expect(page.value[0]).toMatchObject({ state: 'wellFormed', visibility: 'private' });
    expect(Object.keys(page.value[0]!).sort()).toEqual(
      ['id', 'lastUpdateTime', 'name', 'revision', 'state', 'url', 'visibility'].sort(),
    );

    sandbox.state.requestLog.length = 0;
    const projects = await client.listProjects(bigco);
    expect(projects).toHaveLength(205);
    expect(new Set(projects.map((p) => p.id)).size).toBe(205);
    const calls = devopsLog('GET');
    expect(calls).toHaveLength(3);
    expect(calls[0]?.query['continuationToken']).toBeUndefined();
    expect(calls[1]?.query['continuationToken']).toBeTruthy();
  });
});

describe('listing service connections', () => {
  test('failed connections are hidden unless includeFailed=true', async () => {
    const res = await fetch(`${org}/web/_apis/serviceendpoint/endpoints?type=azurerm&api-version=7.1`, {
      headers: await bearer(),
    });
    const body = (await res.json()) as { count: number; value: ServiceConnection[] };
    const visible = body.value.map((e) => e.name);
    expect(body.count).toBe(body.value.length);
    expect(visible).toContain('web-manual');
    for (const failed of ['expired', 'accesstoken-null', 'app-gone']) expect(visible).not.toContain(failed);

    const all = await client.listAzureRmConnections(org, 'web');
    const byName = new Map(all.map((e) => [e.name, e]));
    expect(byName.get('expired')).toMatchObject({ isReady: false, operationStatus: { state: 'Failed' } });
    expect(byName.get('expired')?.operationStatus?.statusMessage).toMatch(
      /^Failed to obtain the Json Web Token\(JWT\) using service principal client ID\. Exception message: AADSTS7000222: /,
    );
    expect(byName.get('app-gone')?.operationStatus?.statusMessage).toContain('AADSTS700016');
    expect(byName.get('accesstoken-null')?.operationStatus?.statusMessage).toBe(
      'Failed to get Azure DevOps Service access token, cache value is invalid.',
    );
    expect(byName.get('web-manual')).toMatchObject({ isReady: true, operationStatus: { state: 'Ready' } });
    expect(byName.get('wif')?.isReady).toBe(true);
  });

  test('filters: type (case-insensitive), authSchemes, endpointIds, endpointNames, owner; project by id', async () => {
    const headers = await bearer();
    const names = async (query: string, project = 'web') => {
      const res = await fetch(`${org}/${project}/_apis/serviceendpoint/endpoints?${query}&api-version=7.1`, {
        headers,
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { value: ServiceConnection[] }).value.map((e) => e.name).sort();
    };
    expect(await names('type=AzureRM')).toEqual(await names('type=azurerm'));
    expect(await names('type=Generic')).toEqual([]);
    expect(await names('authSchemes=WorkloadIdentityFederation')).toEqual(['wif']);
    expect(await names(`endpointIds=${endpoint('shared').id},${endpoint('wif').id}`)).toEqual([
      'shared',
      'wif',
    ]);
    expect(await names('endpointNames=WEB-MANUAL')).toEqual(['web-manual']);
    expect(await names('owner=Library&type=azurerm')).toEqual(await names('type=azurerm'));
    expect(await names('type=azurerm', projectId('web'))).toEqual(await names('type=azurerm'));

    const unknown = await fetch(`${org}/nope/_apis/serviceendpoint/endpoints?api-version=7.1`, { headers });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { message: string }).message).toMatch(
      /^TF200016: The following project does not exist: nope\./,
    );
  });

  test('a shared connection is listed in both projects, with both project references', async () => {
    const inWeb = (await client.listAzureRmConnections(org, 'web')).find((e) => e.name === 'shared');
    const inData = (await client.listAzureRmConnections(org, 'data')).find((e) => e.name === 'shared');
    expect(inWeb?.id).toBe(endpoint('shared').id);
    expect(inData?.id).toBe(inWeb?.id);
    expect(inWeb?.isShared).toBe(true);
    expect(inWeb?.serviceEndpointProjectReferences.map((r) => r.projectReference.name).sort()).toEqual([
      'data',
      'web',
    ]);
    // Not shared with 'data': not listed there, and GET through 'data' finds nothing.
    expect((await client.listAzureRmConnections(org, 'data')).map((e) => e.name)).not.toContain('web-manual');
    expect(await client.getConnection(org, 'data', endpoint('web-manual').id)).toBeUndefined();
  });
});

describe('confidential parameters', () => {
  test('serviceprincipalkey is never returned: left out of the list, null on GET and PUT', async () => {
    const id = endpoint('web-manual').id;
    const listed = (await client.listAzureRmConnections(org, 'web')).find((e) => e.id === id)!;
    expect(Object.keys(listed.authorization.parameters)).not.toContain('serviceprincipalkey');

    const got = await get(id);
    expect(got.authorization.parameters).toHaveProperty('serviceprincipalkey', null);

    const updated = await client.updateConnection(org, got);
    expect(updated.authorization.parameters).toHaveProperty('serviceprincipalkey', null);

    // And no secret value of the tenant appears in any answer text.
    const headers = await bearer();
    const texts = [
      await (
        await fetch(`${org}/web/_apis/serviceendpoint/endpoints?includeFailed=true&api-version=7.1`, {
          headers,
        })
      ).text(),
      await (
        await fetch(`${org}/web/_apis/serviceendpoint/endpoints/${id}?api-version=7.1`, { headers })
      ).text(),
    ];
    const secrets = sandbox.state.allSecretValues();
    expect(texts.filter((t) => secrets.some((s) => t.includes(s)))).toHaveLength(0);
  });

  test('a PUT with serviceprincipalkey null keeps the stored key; leaving the required key out is a 400', async () => {
    const ep = endpoint('keep-key');
    const before = ep.authorization.parameters['serviceprincipalkey'];
    expect(before).toBeTruthy();

    const got = await get(ep.id);
    const updated = await client.updateConnection(org, { ...got, description: 'key null' });
    expect(storedKeyIs(ep, before ?? undefined)).toBe(true);
    expect(updated).toMatchObject({ description: 'key null', isReady: true });
    expect((await client.testConnection(org, 'web', updated)).ok).toBe(true);

    const withoutKey = structuredClone(got);
    delete withoutKey.authorization.parameters['serviceprincipalkey'];
    const err = await failure(() =>
      client.updateConnection(org, { ...withoutKey, description: 'key absent' }),
    );
    expect(err.status).toBe(400);
    expect(err.code).toBe('ArgumentException');
    expect(err.message).toContain('serviceprincipalkey');
    expect(ep.description).toBe('key null');
    expect(storedKeyIs(ep, before ?? undefined)).toBe(true);
  });
});

describe('isReady follows the stored credential', () => {
  test('a wrong key makes the connection Failed with the JWT error; a valid one makes it Ready', async () => {
    const ep = endpoint('ready-follows');
    const got = await get(ep.id);
    got.authorization.parameters['serviceprincipalkey'] = 'not-the-secret-of-this-app';
    const broken = await client.updateConnection(org, got);
    expect(broken.isReady).toBe(false);
    expect(broken.operationStatus).toMatchObject({ state: 'Failed' });
    expect(broken.operationStatus?.statusMessage).toMatch(
      /^Failed to obtain the Json Web Token\(JWT\) using service principal client ID\. Exception message: AADSTS7000215: /,
    );

    const app = sandbox.state.appByAppId(ep.authorization.parameters['serviceprincipalid']!)!;
    const valid = app.passwordCredentials[0]!.secretText;
    const repaired = await client.updateConnection(org, {
      ...broken,
      authorization: {
        ...broken.authorization,
        parameters: { ...broken.authorization.parameters, serviceprincipalkey: valid },
      },
    });
    expect(repaired).toMatchObject({ isReady: true, operationStatus: { state: 'Ready', statusMessage: '' } });
  });
});

describe('creationMode', () => {
  test('a PUT of an Automatic connection makes Azure DevOps rotate the secret and wipe every other password', async () => {
    const ep = endpoint('automatic');
    const app = sandbox.state.appByAppId(ep.authorization.parameters['serviceprincipalid']!)!;
    expect(app.passwordCredentials).toHaveLength(2);
    const oldKeyIds = app.passwordCredentials.map((p) => p.keyId);

    const got = await get(ep.id);
    expect(got.data['creationMode']).toBe('Automatic');
    const updated = await client.updateConnection(org, { ...got, description: 'just a description' });

    expect(updated.isReady).toBe(true);
    expect(app.passwordCredentials).toHaveLength(1);
    const created = app.passwordCredentials[0]!;
    expect(oldKeyIds).not.toContain(created.keyId);
    expect(created.displayName).toBe(`contoso-web-${ep.id}`);
    expect(Date.parse(created.endDateTime) - Date.now()).toBeGreaterThan(80 * 24 * 3600 * 1000);
    expect(storedKeyIs(ep, created.secretText)).toBe(true);
  });

  test('with Manual, azureSpnRoleAssignmentId, spnObjectId and appObjectId are refused one by one; azureSpnPermissions is tolerated', async () => {
    const ep = endpoint('automatic-to-manual');
    const app = sandbox.state.appByAppId(ep.authorization.parameters['serviceprincipalid']!)!;
    const body = await get(ep.id);
    body.data['creationMode'] = 'Manual';
    expect(body.data['azureSpnPermissions']).toBeTruthy();

    for (const field of ['azureSpnRoleAssignmentId', 'spnObjectId', 'appObjectId']) {
      const err = await failure(() => client.updateConnection(org, body));
      expect(err.status).toBe(400);
      expect(err.code).toBe('ArgumentException');
      expect(err.message).toContain(field);
      delete body.data[field];
    }
    const updated = await client.updateConnection(org, body);
    expect(updated.data).toMatchObject({ creationMode: 'Manual', azureSpnPermissions: expect.any(String) });
    expect(updated.isReady).toBe(true);
    expect(app.passwordCredentials).toHaveLength(2); // nothing rotated, nothing removed
    expect(devopsLog('PUT').map((e) => e.status)).toEqual([400, 400, 400, 200]);
  });
});

describe('operation=ConvertAuthenticationScheme', () => {
  test('converts an Automatic secret connection to workload identity federation', async () => {
    const ep = endpoint('convert');
    const app = sandbox.state.appByAppId(ep.authorization.parameters['serviceprincipalid']!)!;
    const got = await get(ep.id);
    const converted = await client.updateConnection(
      org,
      { ...got, authorization: { ...got.authorization, scheme: 'WorkloadIdentityFederation' } },
      'ConvertAuthenticationScheme',
    );
    expect(devopsLog('PUT')[0]?.query['operation']).toBe('ConvertAuthenticationScheme');
    expect(converted).toMatchObject({
      isReady: true,
      authorization: { scheme: 'WorkloadIdentityFederation' },
    });
    expect(converted.authorization.parameters).not.toHaveProperty('serviceprincipalkey');
    // The Microsoft Entra issuer format (2025): the organization id and the connection id.
    const subject = converted.authorization.parameters['workloadIdentityFederationSubject'];
    expect(subject).toBe(
      `/eid1/c/pub/t/${guidToBase64Url(sandbox.state.tenantId)}/a/rISbSSETf0KqFyZ8ppdXmA/sc/${sandbox.state.organization('contoso')!.id}/${ep.id}`,
    );
    expect(converted.authorization.parameters['workloadIdentityFederationIssuer']).toBe(
      `https://login.microsoftonline.com/${sandbox.state.tenantId}/v2.0`,
    );
    expect(app.federatedIdentityCredentials.map((f) => f.subject)).toEqual([subject]);
    expect(app.passwordCredentials).toHaveLength(1); // kept for the 7-day revert
  });
});

describe('ConvertAuthenticationScheme that takes a while, or is refused to a non-user', () => {
  test('with a delay the answer is still on the secret, InProgress; later reads show it converted', async () => {
    const contoso = sandbox.state.organization('contoso')!;
    contoso.conversionDelayMs = 3 * 60_000;
    try {
      const ep = endpoint('convert-slow');
      const got = await get(ep.id);
      const answer = await client.updateConnection(
        org,
        { ...got, authorization: { ...got.authorization, scheme: 'WorkloadIdentityFederation' } },
        'ConvertAuthenticationScheme',
      );
      expect(answer).toMatchObject({
        authorization: { scheme: 'ServicePrincipal' },
        operationStatus: { state: 'InProgress', statusMessage: 'converting_scheme' },
      });
      expect((await get(ep.id)).authorization.scheme).toBe('ServicePrincipal');
      sandbox.state.advanceClock(3 * 60_000);
      const later = await get(ep.id);
      expect(later).toMatchObject({
        isReady: true,
        authorization: { scheme: 'WorkloadIdentityFederation' },
        operationStatus: { state: 'Ready' },
      });
      expect(later.data['revertSchemeDeadline']).toBeDefined();
    } finally {
      delete contoso.conversionDelayMs;
    }
  });

  test('conversionRequiresUser: a service principal is refused (400), nothing changes', async () => {
    const contoso = sandbox.state.organization('contoso')!;
    contoso.conversionRequiresUser = true;
    try {
      const ep = endpoint('convert-sp');
      const got = await get(ep.id);
      const err = await failure(() =>
        client.updateConnection(
          org,
          { ...got, authorization: { ...got.authorization, scheme: 'WorkloadIdentityFederation' } },
          'ConvertAuthenticationScheme',
        ),
      );
      expect(err.status).toBe(400);
      expect(err.message).toMatch(/not supported for a service principal or managed identity/);
      expect(ep.authorization.scheme).toBe('ServicePrincipal');
    } finally {
      delete contoso.conversionRequiresUser;
    }
  });
});

describe('accesstoken', () => {
  test.each([
    ['null', null],
    ["''", ''],
  ])(
    'accesstoken %s stored by a PUT breaks the connection; removing it repairs it',
    async (_label, value) => {
      const ep = endpoint('token-breaks');
      const got = await get(ep.id);
      const broken = await client.updateConnection(org, {
        ...got,
        authorization: {
          ...got.authorization,
          parameters: { ...got.authorization.parameters, accesstoken: value },
        },
      });
      expect(broken).toMatchObject({
        isReady: false,
        operationStatus: {
          state: 'Failed',
          statusMessage: 'Failed to get Azure DevOps Service access token, cache value is invalid.',
        },
      });
      const verify = await client.testConnection(org, 'web', broken);
      expect(verify).toEqual({
        ok: false,
        statusCode: 'badRequest',
        errorMessage: 'Failed to get Azure DevOps Service access token, cache value is invalid.',
      });

      const parameters = { ...broken.authorization.parameters };
      delete parameters['accesstoken'];
      const repaired = await client.updateConnection(org, {
        ...broken,
        authorization: { ...broken.authorization, parameters },
      });
      expect(repaired.isReady).toBe(true);
      expect(repaired.authorization.parameters).not.toHaveProperty('accesstoken');
    },
  );
});

describe('TestConnection (endpointproxy)', () => {
  test('succeeds with the subscription when the stored credential works; read-only, HTTP 200', async () => {
    const ep = endpoint('web-manual');
    const result = await client.testConnection(org, 'web', await get(ep.id));
    expect(result).toEqual({ ok: true, statusCode: 'ok', errorMessage: '' });

    const res = await fetch(
      `${org}/web/_apis/serviceendpoint/endpointproxy?endpointId=${ep.id}&api-version=7.1`,
      {
        method: 'POST',
        headers: { ...(await bearer()), 'Content-Type': 'application/json' },
        body: JSON.stringify({ dataSourceDetails: { dataSourceName: 'TestConnection' } }),
      },
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { result: { subscriptionId: string }[]; statusCode: string };
    expect(body.statusCode).toBe('ok');
    expect(body.result[0]?.subscriptionId).toBe(ep.data['subscriptionId']);
    expect(devopsLog('POST').every((e) => e.status === 200 && !e.write)).toBe(true);
  });

  test('Entra ID failures: expired secret (unauthorized) and deleted app (badRequest) with the JWT message', async () => {
    const expired = await client.testConnection(org, 'web', await get(endpoint('expired').id));
    expect(expired.ok).toBe(false);
    expect(expired.statusCode).toBe('unauthorized');
    expect(expired.errorMessage).toMatch(
      /^Failed to obtain the Json Web Token\(JWT\) using service principal client ID\. Exception message: AADSTS7000222: /,
    );

    const gone = await client.testConnection(org, 'web', await get(endpoint('app-gone').id));
    expect(gone.statusCode).toBe('badRequest');
    expect(gone.errorMessage).toContain('Exception message: AADSTS700016: Application with identifier');
  });

  test('an app without a role on the subscription: forbidden with ARM AuthorizationFailed', async () => {
    const ep = endpoint('no-role');
    const result = await client.testConnection(org, 'web', await get(ep.id));
    expect(result.statusCode).toBe('forbidden');
    expect(result.errorMessage).toContain(
      `Failed to query service connection API: 'https://management.azure.com/subscriptions/${ep.data['subscriptionId']}?api-version=2016-06-01'. Status Code: 'Forbidden'`,
    );
    expect(result.errorMessage).toContain('"code":"AuthorizationFailed"');
    expect(result.errorMessage).toContain("'Microsoft.Resources/subscriptions/read'");
  });
});

describe('TestConnection tests what is sent', () => {
  async function verifyWith(
    ep: EndpointRecord,
    parameters: Record<string, string | null> | undefined,
  ): Promise<{ statusCode: string; errorMessage: string }> {
    const res = await fetch(
      `${org}/web/_apis/serviceendpoint/endpointproxy?endpointId=${ep.id}&api-version=7.1`,
      {
        method: 'POST',
        headers: { ...(await bearer()), 'Content-Type': 'application/json' },
        body: JSON.stringify({
          dataSourceDetails: { dataSourceName: 'TestConnection' },
          ...(parameters
            ? {
                serviceEndpointDetails: {
                  type: ep.type,
                  url: ep.url,
                  data: ep.data,
                  authorization: { scheme: 'ServicePrincipal', parameters },
                },
              }
            : {}),
        }),
      },
    );
    return (await res.json()) as { statusCode: string; errorMessage: string };
  }

  test('present and null → the stored secret; left out → no secret (AADSTS7000216); a value → that value', async () => {
    const ep = endpoint('web-manual');
    const base = {
      tenantid: ep.authorization.parameters['tenantid']!,
      serviceprincipalid: ep.authorization.parameters['serviceprincipalid']!,
      authenticationType: 'spnKey',
    };
    expect((await verifyWith(ep, { ...base, serviceprincipalkey: null })).statusCode).toBe('ok');
    const absent = await verifyWith(ep, base);
    expect(absent.statusCode).toBe('unauthorized');
    expect(absent.errorMessage).toContain('AADSTS7000216');
    const wrong = await verifyWith(ep, { ...base, serviceprincipalkey: 'not-the-secret-of-this-app' });
    expect(wrong.errorMessage).toContain('AADSTS7000215');
    // No details at all: the stored connection.
    expect((await verifyWith(ep, undefined)).statusCode).toBe('ok');
  });

  test('the adapter tests the STORED secret, even from a listed connection (the list leaves the key out)', async () => {
    const ep = endpoint('web-manual');
    const listed = (await client.listAzureRmConnections(org, 'web')).find((e) => e.id === ep.id)!;
    expect(Object.keys(listed.authorization.parameters)).not.toContain('serviceprincipalkey');
    const exchanges = capture();
    expect(await client.testConnection(org, 'web', listed)).toEqual({
      ok: true,
      statusCode: 'ok',
      errorMessage: '',
    });
    const sent = exchanges.find((x) => x.method === 'POST')!.requestBody as {
      serviceEndpointDetails: { authorization: { parameters: Record<string, unknown> } };
    };
    expect(sent.serviceEndpointDetails.authorization.parameters).toHaveProperty('serviceprincipalkey', null);
  });

  test('the result tells an invalid stored secret (7000215) from an expired one (7000222)', async () => {
    const wrong = endpoint('wrong-key');
    wrong.authorization.parameters['serviceprincipalkey'] = 'not-the-secret-of-this-app';
    const invalid = await client.testConnection(org, 'web', await get(wrong.id));
    expect(invalid).toMatchObject({ ok: false, statusCode: 'unauthorized', aadsts: '7000215' });
    const expired = await client.testConnection(org, 'web', await get(endpoint('expired').id));
    expect(expired).toMatchObject({ ok: false, statusCode: 'unauthorized', aadsts: '7000222' });
  });
});

describe('project-level vs organization-level Administrators', () => {
  test('actionFilter=manage lists the connection to a project Administrator, whose PUT gets 403; the role assignments tell them apart', async () => {
    const ep = endpoint('deletable');
    const dana = new AzureDevOpsRestClient({ pat: DANA_PAT, retry: fastRetry });
    const managed = await dana.listAzureRmConnections(org, 'web', { actionFilter: 'manage' });
    expect(managed.map((e) => e.id)).toContain(ep.id);
    expect(await dana.listAzureRmConnections(org, 'data', { actionFilter: 'manage' })).toEqual([]);
    const got = await dana.getConnection(org, 'web', ep.id);
    const put = await failure(() => dana.updateConnection(org, { ...got!, description: 'dana was here' }));
    expect(put.status).toBe(403);
    expect(ep.description).not.toBe('dana was here');

    expect(await dana.connectionRoles(org, ep.id, { organization: true })).toEqual({
      callerRoles: [],
      groupAdministrators: [],
    });
    expect((await dana.connectionRoles(org, ep.id, { projectId: projectId('web') })).callerRoles).toEqual([
      'Administrator',
    ]);
    expect((await client.connectionRoles(org, ep.id, { organization: true })).callerRoles).toEqual([
      'Administrator',
    ]);
    const reads = devopsLog('GET').filter((e) => e.path.includes('securityroles'));
    expect(reads.map((e) => e.query['api-version'])).toEqual([
      '7.1-preview.1',
      '7.1-preview.1',
      '7.1-preview.1',
    ]);
    expect(reads[0]!.path).toMatch(
      /\/_apis\/securityroles\/scopes\/distributedtask\.collection\.serviceendpointrole\/roleassignments\/resources\/collection_/,
    );
  });
});

describe('a caller who may not view the connection', () => {
  test('GET answers {id, name} only; the adapter says so (403-class, ConnectionDetailsHidden) instead of a half connection', async () => {
    const ep = endpoint('hidden');
    const raw = await fetch(`${org}/web/_apis/serviceendpoint/endpoints/${ep.id}?api-version=7.1`, {
      headers: basic(ERIN_PAT),
    });
    expect(raw.status).toBe(200);
    expect(await raw.json()).toEqual({ id: ep.id, name: ep.name });
    const erin = new AzureDevOpsRestClient({ pat: ERIN_PAT, retry: fastRetry });
    const err = await failure(() => erin.getConnection(org, 'web', ep.id));
    expect(err.status).toBe(403);
    expect(err.code).toBe('ConnectionDetailsHidden');
    expect(err.transient).toBe(false);
    expect(err.message).toMatch(/may not view this connection/);
  });
});

describe('DELETE', () => {
  test('projectIds is required (400 ArgumentNullException)', async () => {
    const res = await fetch(
      `${org}/_apis/serviceendpoint/endpoints/${endpoint('deletable').id}?api-version=7.1`,
      {
        method: 'DELETE',
        headers: await bearer(),
      },
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      typeKey: 'ArgumentNullException',
      message: expect.stringContaining('projectIds'),
    });
  });

  test('removing some projects only unshares; removing the last with deep=false deletes it and keeps the app', async () => {
    const ep = endpoint('shared');
    const appId = ep.authorization.parameters['serviceprincipalid']!;
    await client.deleteConnection(org, ep.id, [projectId('data')], false);
    expect(devopsLog('DELETE')[0]?.status).toBe(204);
    expect(await client.getConnection(org, 'data', ep.id)).toBeUndefined();
    const stillInWeb = await get(ep.id);
    expect(stillInWeb.isShared).toBe(false);
    expect(stillInWeb.serviceEndpointProjectReferences).toHaveLength(1);

    await client.deleteConnection(org, ep.id, [projectId('web')], false);
    expect(await client.getConnection(org, 'web', ep.id)).toBeUndefined();
    expect(sandbox.state.organization('contoso')!.endpoints.has(ep.id)).toBe(false);
    expect(sandbox.state.appByAppId(appId)).toBeDefined();
  });

  test('an Automatic connection whose app is gone: deep=true is refused, deep=false deletes it directly', async () => {
    const ep = endpoint('auto-gone');
    const deep = await failure(() => client.deleteConnection(org, ep.id, [projectId('web')], true));
    expect(deep.status).toBe(400);
    expect(sandbox.state.organization('contoso')!.endpoints.has(ep.id)).toBe(true);
    await client.deleteConnection(org, ep.id, [projectId('web')], false);
    expect(sandbox.state.organization('contoso')!.endpoints.has(ep.id)).toBe(false);
    expect(devopsLog('PUT')).toHaveLength(0);
  });

  test('deep=true deletes the app registration Azure DevOps created for an Automatic connection', async () => {
    const ep = endpoint('automatic-deep');
    const appId = ep.authorization.parameters['serviceprincipalid']!;
    await client.deleteConnection(org, ep.id, [projectId('web')], true);
    expect(sandbox.state.appByAppId(appId)).toBeUndefined();
  });
});

describe('permissions', () => {
  test('a member without the Administrator role gets 403 on PUT and DELETE; nothing changes', async () => {
    const ep = endpoint('deletable');
    const bob = new AzureDevOpsRestClient({ pat: BOB_PAT, retry: fastRetry });
    const got = await bob.getConnection(org, 'web', ep.id);
    expect(got?.id).toBe(ep.id);

    const put = await failure(() => bob.updateConnection(org, { ...got!, description: 'bob was here' }));
    expect(put).not.toBeInstanceOf(AuthenticationError);
    expect(put.status).toBe(403);
    expect(put.code).toBe('AccessCheckException');
    expect(put.message).toContain('Administrator');
    const del = await failure(() => bob.deleteConnection(org, ep.id, [projectId('web')], false));
    expect(del.status).toBe(403);

    expect(ep.description).not.toBe('bob was here');
    expect(sandbox.state.organization('contoso')!.endpoints.has(ep.id)).toBe(true);
    expect(devopsLog('PUT')).toHaveLength(1); // 403 is never retried
    expect(devopsLog('DELETE')).toHaveLength(1);
  });
});

describe('errors and retries', () => {
  test('a 400 is never retried: the request log shows one call', async () => {
    const ep = endpoint('deletable');
    const got = await get(ep.id);
    const err = await failure(() =>
      client.updateConnection(org, { ...got, data: { ...got.data, spnObjectId: 'x' } }),
    );
    expect(err.status).toBe(400);
    expect(err.transient).toBe(false);
    expect(devopsLog('PUT')).toHaveLength(1);
  });

  test('429 with Retry-After is retried after the wait, X-RateLimit-* headers are sent', async () => {
    sandbox.faults.setRules([
      {
        service: 'devops',
        path: '/_apis/projects$',
        kind: 'throttle',
        rate: 1,
        maxCount: 1,
        retryAfterSeconds: 1,
      },
    ]);
    const started = Date.now();
    const projects = await client.listProjects(org);
    expect(projects).toHaveLength(2);
    const calls = devopsLog('GET');
    expect(calls.map((e) => e.status)).toEqual([429, 200]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);

    sandbox.faults.setRules([{ service: 'devops', budget: { requests: 1, windowSeconds: 30 } }]);
    const headers = await bearer();
    const ok = await fetch(`${org}/_apis/projects?api-version=7.1`, { headers });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-ratelimit-limit')).toBe('1');
    expect(ok.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(ok.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    const blocked = await fetch(`${org}/_apis/projects?api-version=7.1`, { headers });
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get('retry-after')).toBeTruthy();
    expect(blocked.headers.get('x-ratelimit-resource')).toBe('Core');
    expect(((await blocked.json()) as { message: string; typeKey: string }).typeKey).toBe(
      'RequestBlockedException',
    );
  });

  /** A pacing clock that records each wait (and how many requests had been answered) instead of sleeping. */
  function recordingClock(): {
    clock: PacingClock;
    waits: { ms: number; answeredBefore: number }[];
    answered: () => void;
  } {
    let offset = 0;
    let answeredCount = 0;
    const waits: { ms: number; answeredBefore: number }[] = [];
    return {
      waits,
      answered: () => {
        answeredCount += 1;
      },
      clock: {
        now: () => Date.now() + offset,
        sleep: (ms) => {
          waits.push({ ms, answeredBefore: answeredCount });
          offset += ms;
          return Promise.resolve();
        },
      },
    };
  }

  test('X-RateLimit-Remaining: 0 with a reset minutes away never stalls a run: 120 projects, no wait for the reset, fewer in flight', async () => {
    // Over the budget every answer is delayed 20 ms (X-RateLimit-Delay: 0.020, Remaining 0) and
    // X-RateLimit-Reset is up to five minutes away: a time usage would fall to zero, not a wait.
    sandbox.faults.setRules([
      { service: 'devops', budget: { requests: 5, windowSeconds: 300, delayMs: 20, hardLimit: 100_000 } },
    ]);
    const { clock, waits } = recordingClock();
    const stats: PacingStats = {
      waits: [],
      totalWaitMs: 0,
      concurrencyCuts: 0,
      lowestConcurrency: Infinity,
    };
    const paced = new AzureDevOpsRestClient({
      credential,
      retry: fastRetry,
      pacingClock: clock,
      pacingStats: stats,
    });
    const bigco = `${sandbox.urls.devops}/bigco`;
    const projects = (await paced.listProjects(bigco)).slice(0, 120);
    expect(projects).toHaveLength(120);
    const exchanges = capture();
    for (const p of projects) await paced.listAzureRmConnections(bigco, p.id);
    await settled();

    const calls = devopsLog('GET');
    expect(calls).toHaveLength(3 + 120); // three pages of projects, one list per project, no retry
    expect(calls.every((e) => e.status === 200)).toBe(true);
    const reset = Number(exchanges.at(-1)!.responseHeaders['x-ratelimit-reset']);
    expect(reset * 1000 - Date.now()).toBeGreaterThan(60_000); // the reset really is minutes away
    // Never a wait for the reset (nor any clock wait: no Retry-After came); the delayed answers cut
    // the requests kept in flight instead.
    expect(waits).toEqual([]);
    expect(stats.totalWaitMs).toBe(0);
    expect(stats.concurrencyCuts).toBeGreaterThan(0);

    // Concurrent callers: the delays halve what is kept in flight, and every request is answered.
    const before = stats.concurrencyCuts;
    const lists = await Promise.all(
      projects.slice(0, 24).map((p) => paced.listAzureRmConnections(bigco, p.id)),
    );
    expect(lists).toHaveLength(24);
    expect(stats.concurrencyCuts).toBeGreaterThan(before);
    expect(stats.lowestConcurrency).toBeLessThan(24);
    expect(waits).toEqual([]);
    await settled(); // the last answers' log entries, before the next test clears the log
  });

  test('Retry-After on a 200 is honoured before the next request', async () => {
    sandbox.faults.setRules([
      {
        service: 'devops',
        budget: { requests: 1, windowSeconds: 300, delayMs: 10, hardLimit: 1000, retryAfterSeconds: 2 },
      },
    ]);
    const { clock, waits, answered } = recordingClock();
    const stats: PacingStats = {
      waits: [],
      totalWaitMs: 0,
      concurrencyCuts: 0,
      lowestConcurrency: Infinity,
    };
    const paced = new AzureDevOpsRestClient({
      credential,
      retry: fastRetry,
      pacingClock: clock,
      pacingStats: stats,
    });
    const exchanges = capture();
    for (let i = 0; i < 3; i++) {
      await paced.listProjects(org);
      answered();
    }
    await settled();
    const calls = devopsLog('GET');
    expect(calls.map((e) => e.status)).toEqual([200, 200, 200]);
    expect(exchanges[1]!.responseHeaders['retry-after']).toBe('2');
    // After the second answer (a delayed 200 with Retry-After: 2), the third waited two seconds first.
    const held = waits.find((w) => w.answeredBefore === 2);
    expect(held?.ms).toBeGreaterThanOrEqual(1900);
    expect(held?.ms).toBeLessThanOrEqual(2000);
    expect(stats.waits.some((w) => w.ms >= 1900)).toBe(true);
  });

  test('503 and a dropped connection are retried; after the retries the error is transient', async () => {
    sandbox.faults.setRules([
      {
        service: 'devops',
        path: '/_apis/projects$',
        kind: 'server-error',
        status: 503,
        rate: 1,
        maxCount: 1,
        retryAfterSeconds: 0,
      },
      { service: 'devops', path: '/_apis/projects$', kind: 'drop', rate: 1, maxCount: 1 },
    ]);
    expect(await client.listProjects(org)).toHaveLength(2);
    expect(devopsLog('GET').map((e) => e.status)).toEqual([503, 0, 200]);

    sandbox.state.requestLog.length = 0;
    sandbox.faults.setRules([
      { service: 'devops', path: '/_apis/projects$', kind: 'server-error', status: 500, rate: 1 },
    ]);
    const err = await failure(() => client.listProjects(org));
    expect(err.status).toBe(500);
    expect(err.transient).toBe(true);
    expect(devopsLog('GET')).toHaveLength(1 + fastRetry.maxRetries);
  });

  test('an unknown connection id reads as undefined (200 with a null body); an unknown project is an error', async () => {
    expect(await client.getConnection(org, 'web', '00000000-0000-4000-a000-000000000000')).toBeUndefined();
    const err = await failure(() => client.getConnection(org, 'nope', endpoint('web-manual').id));
    expect(err.status).toBe(404);
    expect(err.code).toBe('ProjectDoesNotExistWithNameException');
  });
});
