/**
 * Contract: the simulated Azure DevOps service endpoints API, driven by the product's Azure DevOps
 * client (and plain HTTPS for calls the client never makes), validated request and response
 * against the official spec (`../shared/specs/azure-devops/7.1/serviceEndpoint.json`, Swagger 2.0)
 * with Prism's validator. Only `/_apis/serviceendpoint/` traffic is in that spec (the projects API
 * is not). A negative test proves the check fails as soon as a response leaves the spec.
 */
import { startSandbox, type Sandbox, type Scenario } from '../../sandbox/index';
import type { HttpExchange } from '../../sandbox/model';
import { AUDIENCES } from '../../sandbox/tokens';
import { createAzureDevOpsClient } from '../../src/clients/azureDevOps';
import { CONVERT_OPERATION, toAzureDevOpsConversionBody } from '../../src/remediation/federation';
import { toManualUpdateBody } from '../../src/remediation/transform';
import type { AzureDevOpsClient } from '../../src/remediation/ports';
import { AZURE_DEVOPS_SPEC, Contract, captureExchanges, type ContractReport } from '../helpers/openapi';
import { identityCredential } from '../helpers/sandboxCredentials';

const scenario: Scenario = {
  name: 'devops-contract',
  productIdentity: 'remediator',
  identities: [
    { key: 'remediator', displayName: 'sc-remediator', kind: 'servicePrincipal', vaultWriter: true },
    { key: 'alice', displayName: 'Alice Lee', kind: 'user' },
  ],
  apps: [
    {
      key: 'deploy',
      displayName: 'sp-deploy',
      owners: ['remediator'],
      passwords: [{ key: 'p', endInDays: 10 }],
    },
    {
      key: 'expired',
      displayName: 'sp-expired',
      owners: ['remediator'],
      passwords: [{ key: 'p', endInDays: -3 }],
    },
    { key: 'convert', displayName: 'sp-convert', passwords: [{ key: 'p', endInDays: 20 }] },
  ],
  organizations: [
    {
      name: 'contoso',
      projects: [{ name: 'api' }, { name: 'web' }],
      // Azure DevOps' own conversion answers while still InProgress.
      conversionDelaySeconds: 120,
      members: [
        { identity: 'remediator', endpointAdministrator: true },
        { identity: 'alice', endpointAdministrator: true },
      ],
      connections: [
        {
          key: 'manual',
          name: 'api-deploy',
          projects: ['api', 'web'],
          scheme: 'ServicePrincipal',
          creationMode: 'Manual',
          app: 'deploy',
          secret: 'p',
        },
        {
          key: 'automatic-expired',
          name: 'api-expired',
          projects: ['api'],
          scheme: 'ServicePrincipal',
          creationMode: 'Automatic',
          app: 'expired',
          secret: 'p',
        },
        {
          key: 'convert',
          name: 'api-convert',
          projects: ['api'],
          scheme: 'ServicePrincipal',
          creationMode: 'Automatic',
          app: 'convert',
          secret: 'p',
        },
        {
          key: 'wif',
          name: 'api-wif',
          projects: ['api'],
          scheme: 'WorkloadIdentityFederation',
          creationMode: 'Manual',
          app: 'deploy',
        },
      ],
    },
  ],
};

let sandbox: Sandbox;
let contract: Contract;
let inSpec: HttpExchange[];
let outOfSpec: HttpExchange[];
let report: ContractReport;

const ENDPOINT_OPERATIONS = [
  'Endpoints_Get Service Endpoints',
  'Endpoints_Get Service Endpoints By Names',
  'Endpoints_Get',
  'Endpoints_Update Service Endpoint',
  'Endpoints_Delete',
  'Endpointproxy_Execute Service Endpoint Request',
];

function bearer(): string {
  const identity = sandbox.state.identities.get('remediator');
  if (!identity) throw new Error('no remediator');
  const token = sandbox.tokens.issue({
    aud: AUDIENCES.devops,
    appid: identity.appId ?? '',
    oid: identity.objectId,
    idtyp: 'app',
    roles: [],
    sbx: identity.key,
  });
  return `Bearer ${token}`;
}

async function raw(method: string, pathAndQuery: string, body?: unknown): Promise<number> {
  const res = await fetch(`${sandbox.urls.devops}${pathAndQuery}`, {
    method,
    headers: {
      authorization: bearer(),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

async function workload(ado: AzureDevOpsClient, orgUrl: string): Promise<void> {
  const connections = await ado.listAzureRmConnections(orgUrl, 'api');
  const manual = connections.find((c) => c.name === 'api-deploy');
  const expired = connections.find((c) => c.name === 'api-expired');
  if (!manual || !expired) throw new Error('scenario connections missing from the list');
  await ado.getConnection(orgUrl, 'api', manual.id);
  await ado.getConnection(orgUrl, 'web', manual.id);
  await ado.testConnection(orgUrl, 'api', manual);
  await ado.testConnection(orgUrl, 'api', expired);

  // Flip the expired automatic connection to Manual with a new key (what a rotation does).
  const full = await ado.getConnection(orgUrl, 'api', expired.id);
  if (!full) throw new Error('expired connection not found');
  const data: Record<string, string> = { ...full.data, creationMode: 'Manual' };
  for (const k of ['spnObjectId', 'appObjectId', 'azureSpnRoleAssignmentId', 'azureSpnPermissions'])
    delete data[k];
  await ado.updateConnection(orgUrl, {
    ...full,
    data,
    authorization: {
      ...full.authorization,
      parameters: { ...full.authorization.parameters, serviceprincipalkey: 'a-new-client-secret-value' },
    },
  });
  // A repair without a new secret: serviceprincipalkey sent null keeps the stored one.
  const again = await ado.getConnection(orgUrl, 'api', manual.id);
  if (!again) throw new Error('manual connection not found');
  await ado.updateConnection(orgUrl, toManualUpdateBody(again));
  // Azure DevOps' own conversion, answered while it is still InProgress.
  const convertible = connections.find((c) => c.name === 'api-convert');
  const toConvert = convertible && (await ado.getConnection(orgUrl, 'api', convertible.id));
  if (!toConvert) throw new Error('convertible connection not found');
  await ado.updateConnection(orgUrl, toAzureDevOpsConversionBody(toConvert), CONVERT_OPERATION);
  await ado.deleteConnection(
    orgUrl,
    expired.id,
    [expired.serviceEndpointProjectReferences[0]?.projectReference.id ?? ''],
    false,
  );

  // Calls the client does not make: by names, by ids, and some error answers.
  await raw(
    'GET',
    '/contoso/api/_apis/serviceendpoint/endpoints?endpointNames=api-deploy,api-wif&api-version=7.1',
  );
  await raw('GET', `/contoso/api/_apis/serviceendpoint/endpoints?endpointIds=${manual.id}&api-version=7.1`);
  await raw('GET', '/contoso/api/_apis/serviceendpoint/endpoints?api-version=7.1');
  await raw(
    'GET',
    '/contoso/api/_apis/serviceendpoint/endpoints/00000000-0000-4000-8000-000000000000?api-version=7.1',
  );
  await raw('GET', '/contoso/nosuchproject/_apis/serviceendpoint/endpoints?api-version=7.1');
}

beforeAll(async () => {
  sandbox = await startSandbox({ scenario });
  contract = await Contract.load(AZURE_DEVOPS_SPEC, [
    'azure-devops-collection-wrapper',
    'azure-devops-delete-204',
    'azure-devops-null-confidential-parameters',
    'azure-devops-jtoken-any-json',
    'azure-devops-get-unknown-null',
  ]);
  const orgUrl = sandbox.organizationUrls[0] ?? '';
  const ado = createAzureDevOpsClient({
    credential: identityCredential(sandbox, 'remediator'),
    retry: { maxRetries: 1, retryDelayInMs: 20 },
  });

  const capture = captureExchanges(sandbox.state, 'devops');
  await workload(ado, orgUrl);
  capture.stop();
  inSpec = capture.exchanges.filter((e) => /\/_apis\/serviceendpoint\//i.test(e.url));
  outOfSpec = capture.exchanges.filter((e) => !/\/_apis\/serviceendpoint\//i.test(e.url));
  report = contract.validateAll(inSpec.filter((e) => e.status !== 501));
});

afterAll(async () => {
  await sandbox.stop();
});

test('every service endpoint request and response matches the Azure DevOps 7.1 spec', () => {
  expect(inSpec.filter((e) => e.status === 501)).toEqual([]);
  expect(report.results.length).toBeGreaterThanOrEqual(10);
  if (report.failures.length > 0) throw new Error(`Off-spec exchanges:\n${report.describeFailures()}`);
  // Traffic outside this spec is only the projects API.
  expect(outOfSpec.every((e) => /\/_apis\/projects/i.test(e.url))).toBe(true);
});

test('the new shapes are in the spec: a PUT with serviceprincipalkey null, a conversion answered InProgress', () => {
  const puts = inSpec.filter((e) => e.method === 'PUT' && e.status === 200);
  const nullKey = puts.find((e) => {
    const body = e.requestBody as { authorization?: { parameters?: Record<string, unknown> } } | undefined;
    return body?.authorization?.parameters?.['serviceprincipalkey'] === null;
  });
  expect(nullKey).toBeDefined();
  expect(contract.validate(nullKey!).errors).toEqual([]);
  const inProgress = puts.find((e) => /operation=ConvertAuthenticationScheme/.test(e.url));
  expect(JSON.parse(inProgress!.responseBody)).toMatchObject({
    authorization: { scheme: 'ServicePrincipal' },
    operationStatus: { state: 'InProgress' },
  });
  expect(contract.validate(inProgress!).errors).toEqual([]);
});

test('the workload covers the operations the product relies on', () => {
  for (const op of ENDPOINT_OPERATIONS) expect(report.operations).toContain(op);
  const byNames = report.results.find((r) => r.operationId === 'Endpoints_Get Service Endpoints By Names');
  expect(byNames?.deviations).toContain('azure-devops-collection-wrapper');
});

describe('the check fails when a response leaves the spec', () => {
  function listExchange(): HttpExchange {
    const found = inSpec.find(
      (e) => contract.validate(e).operationId === 'Endpoints_Get Service Endpoints' && e.status === 200,
    );
    if (!found) throw new Error('no list exchange recorded');
    return found;
  }

  function tamper(exchange: HttpExchange, change: (body: Record<string, unknown>) => void): HttpExchange {
    const body = JSON.parse(exchange.responseBody) as Record<string, unknown>;
    change(body);
    return { ...exchange, responseBody: JSON.stringify(body) };
  }

  test('the untampered list passes', () => {
    expect(contract.validate(listExchange()).errors).toEqual([]);
  });

  test('isReady as a string', () => {
    const result = contract.validate(
      tamper(listExchange(), (b) => {
        const first = (b['value'] as Record<string, unknown>[])[0];
        if (first) first['isReady'] = 'true';
      }),
    );
    expect(result.errors).toEqual([
      expect.objectContaining({
        side: 'response',
        location: 'body.0.isReady',
        message: expect.stringContaining('boolean'),
      }),
    ]);
  });

  test('the collection wrapper without value', () => {
    const result = contract.validate(
      tamper(listExchange(), (b) => {
        delete b['value'];
      }),
    );
    expect(result.errors.map((e) => e.location)).toEqual(['body.value']);
  });

  test('a count that does not match the items', () => {
    const result = contract.validate(
      tamper(listExchange(), (b) => {
        b['count'] = 99;
      }),
    );
    expect(result.errors.map((e) => e.location)).toEqual(['body.count']);
  });

  test('an id that is not a GUID in a single endpoint', () => {
    const get = inSpec.find((e) => contract.validate(e).operationId === 'Endpoints_Get' && e.status === 200);
    if (!get) throw new Error('no GET recorded');
    const result = contract.validate(
      tamper(get, (b) => {
        b['id'] = 'not-a-guid';
      }),
    );
    expect(result.errors.map((e) => e.location)).toEqual(['body.id']);
  });
});
