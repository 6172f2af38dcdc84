/**
 * Fidelity of the simulated Azure DevOps and Graph for workload identity federation, through the
 * real adapters (`src/clients/azureDevOps.ts`, `src/clients/graph.ts`) over HTTPS:
 * - Azure DevOps' own conversion (`operation=ConvertAuthenticationScheme`) only for Automatic
 *   connections of one project, its revert within the seven-day window and not after;
 * - the issuer and subject are Azure DevOps' to generate (Entra issuer format, or the older Azure
 *   DevOps issuer), whatever a client sends;
 * - TestConnection of a workload identity connection succeeds only when the app holds a federated
 *   credential with that issuer, subject and audience (Entra ID's AADSTS700211/700213/700212 otherwise);
 * - federated credentials listed, added and removed through Graph;
 * - an Automatic connection whose app is gone cannot be deleted until it is Manual (field report);
 * - a certificate connection switched to workload identity federation by a plain update and back,
 *   as a secret one: the certificate dropped, TestConnection on the federated credential, and back
 *   on `spnCertificate` only with a certificate.
 */
import { ClientSecretCredential } from '@azure/identity';
import { AzureDevOpsRestClient } from '../../src/clients/azureDevOps';
import { GraphApplicationsAdapter } from '../../src/clients/graph';
import { ServiceError } from '../../src/errors';
import {
  toAzureDevOpsConversionBody,
  toAzureDevOpsRevertBody,
  toCertificateBody,
  toWorkloadIdentityBody,
} from '../../src/remediation/federation';
import type { ServiceConnection } from '../../src/remediation/ports';
import { guidToBase64Url } from '../../sandbox/federation';
import { startSandbox, type Sandbox, type Scenario } from '../../sandbox/index';
import type { AppRecord, EndpointRecord } from '../../sandbox/model';

const DAY_MS = 24 * 3600 * 1000;

const scenario: Scenario = {
  name: 'federation-fidelity',
  productIdentity: 'remediator',
  identities: [
    {
      key: 'remediator',
      displayName: 'sc-remediator',
      kind: 'servicePrincipal',
      graphPermissions: ['Application.ReadWrite.OwnedBy'],
    },
  ],
  apps: [
    {
      key: 'auto',
      displayName: 'contoso-web-auto',
      owners: ['remediator'],
      passwords: [{ key: 'ado', endInDays: 60 }],
    },
    {
      key: 'auto-late',
      displayName: 'contoso-web-late',
      owners: ['remediator'],
      passwords: [{ key: 'ado', endInDays: 60 }],
    },
    {
      key: 'manual',
      displayName: 'sp-manual',
      owners: ['remediator'],
      passwords: [{ key: 'cur', endInDays: 60 }],
    },
    {
      key: 'shared',
      displayName: 'contoso-shared',
      owners: ['remediator'],
      passwords: [{ key: 'ado', endInDays: 60 }],
    },
    { key: 'gone', displayName: 'contoso-gone', deleted: true, passwords: [{ key: 'ado', endInDays: 60 }] },
    {
      key: 'cert',
      displayName: 'sp-cert',
      owners: ['remediator'],
      certificates: [{ key: 'cur', startInDays: -10, endInDays: 60 }],
    },
  ],
  organizations: [
    {
      name: 'contoso',
      projects: [{ name: 'web' }, { name: 'data' }],
      members: [{ identity: 'remediator', endpointAdministrator: true }],
      connections: [
        conn('auto', 'auto', 'Automatic'),
        conn('auto-late', 'auto-late', 'Automatic'),
        conn('manual', 'manual', 'Manual', 'cur'),
        { ...conn('shared', 'shared', 'Automatic'), projects: ['web', 'data'] },
        conn('gone', 'gone', 'Automatic'),
        {
          key: 'cert',
          name: 'cert',
          projects: ['web'],
          scheme: 'ServicePrincipal',
          authenticationType: 'spnCertificate',
          creationMode: 'Manual',
          app: 'cert',
          certificate: 'cur',
        },
      ],
    },
  ],
};

function conn(
  key: string,
  app: string,
  creationMode: 'Automatic' | 'Manual',
  secret = 'ado',
): Scenario['organizations'][number]['connections'][number] {
  return { key, name: key, projects: ['web'], scheme: 'ServicePrincipal', creationMode, app, secret };
}

let sandbox: Sandbox;
let org: string;
let devops: AzureDevOpsRestClient;
let graph: GraphApplicationsAdapter;

beforeAll(async () => {
  sandbox = await startSandbox({ scenario });
  org = `${sandbox.urls.devops}/contoso`;
  const credential = freshCredential();
  devops = new AzureDevOpsRestClient({ credential, retry: { maxRetries: 0 } });
  graph = new GraphApplicationsAdapter({
    credential,
    endpoint: sandbox.urls.graph,
    scope: 'https://graph.microsoft.com/.default',
  });
});

afterAll(async () => {
  await sandbox?.stop();
});

function freshCredential(): ClientSecretCredential {
  return new ClientSecretCredential(
    sandbox.env['AZURE_TENANT_ID']!,
    sandbox.env['AZURE_CLIENT_ID']!,
    sandbox.env['AZURE_CLIENT_SECRET']!,
    { authorityHost: sandbox.urls.authority, disableInstanceDiscovery: true },
  );
}

function endpoint(name: string): EndpointRecord {
  const found = [...sandbox.state.organization('contoso')!.endpoints.values()].find((e) => e.name === name);
  if (!found) throw new Error(`no endpoint ${name}`);
  return found;
}

function appFor(ep: EndpointRecord): AppRecord {
  const appId = ep.authorization.parameters['serviceprincipalid'];
  const app = [...sandbox.state.apps.values()].find((a) => a.appId === appId);
  if (!app) throw new Error('no app');
  return app;
}

async function get(name: string, project = 'web'): Promise<ServiceConnection> {
  const c = await devops.getConnection(org, project, endpoint(name).id);
  if (!c) throw new Error(`no connection ${name}`);
  return c;
}

async function failure(fn: () => Promise<unknown>): Promise<ServiceError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ServiceError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe("Azure DevOps' own conversion", () => {
  test('Automatic, one project: converted, federated credential added by Azure DevOps, secret kept for the revert', async () => {
    const converted = await devops.updateConnection(
      org,
      toAzureDevOpsConversionBody(await get('auto')),
      'ConvertAuthenticationScheme',
    );
    const ep = endpoint('auto');
    const orgId = sandbox.state.organization('contoso')!.id;
    expect(converted.authorization.scheme).toBe('WorkloadIdentityFederation');
    expect(converted.authorization.parameters).toEqual({
      tenantid: sandbox.state.tenantId,
      serviceprincipalid: appFor(ep).appId,
      workloadIdentityFederationIssuer: `https://login.microsoftonline.com/${sandbox.state.tenantId}/v2.0`,
      workloadIdentityFederationSubject: `/eid1/c/pub/t/${guidToBase64Url(sandbox.state.tenantId)}/a/rISbSSETf0KqFyZ8ppdXmA/sc/${orgId}/${ep.id}`,
    });
    const deadline = Date.parse(converted.data['revertSchemeDeadline'] ?? '');
    expect(deadline - sandbox.state.now().getTime()).toBeGreaterThan(7 * DAY_MS - 60_000);
    expect(appFor(ep).federatedIdentityCredentials.map((f) => f.subject)).toEqual([
      converted.authorization.parameters['workloadIdentityFederationSubject'],
    ]);
    expect(appFor(ep).passwordCredentials).toHaveLength(1);
    expect((await devops.testConnection(org, 'web', converted)).ok).toBe(true);
  });

  test('revert within the window restores the secret and removes the federated credential', async () => {
    const reverted = await devops.updateConnection(
      org,
      toAzureDevOpsRevertBody(await get('auto')),
      'ConvertAuthenticationScheme',
    );
    const ep = endpoint('auto');
    expect(reverted.authorization.scheme).toBe('ServicePrincipal');
    expect(reverted.data).not.toHaveProperty('revertSchemeDeadline');
    expect(reverted.isReady).toBe(true);
    expect(appFor(ep).federatedIdentityCredentials).toEqual([]);
    expect((await devops.testConnection(org, 'web', reverted)).ok).toBe(true);
    // Reverting again: nothing to revert to.
    const again = await failure(() =>
      devops.updateConnection(org, toAzureDevOpsRevertBody(reverted), 'ConvertAuthenticationScheme'),
    );
    expect(again.status).toBe(400);
  });

  test('revert after seven days is refused', async () => {
    await devops.updateConnection(
      org,
      toAzureDevOpsConversionBody(await get('auto-late')),
      'ConvertAuthenticationScheme',
    );
    sandbox.state.advanceClock(7 * DAY_MS + 1000);
    try {
      // A new client: the first one's token expired with the week.
      const later = new AzureDevOpsRestClient({ credential: freshCredential(), retry: { maxRetries: 0 } });
      const current = await later.getConnection(org, 'web', endpoint('auto-late').id);
      const err = await failure(() =>
        later.updateConnection(org, toAzureDevOpsRevertBody(current!), 'ConvertAuthenticationScheme'),
      );
      expect(err.status).toBe(400);
      expect(err.message).toMatch(/revert deadline .* has passed/);
      expect(endpoint('auto-late').authorization.scheme).toBe('WorkloadIdentityFederation');
    } finally {
      sandbox.state.advanceClock(-(7 * DAY_MS + 1000));
    }
  });

  test.each([
    ['Manual', 'manual', /Only service connections created automatically by Azure DevOps can be converted/],
    ['shared with two projects', 'shared', /shared with more than one project cannot be converted/],
  ])('%s: refused, nothing changed', async (_label, name, message) => {
    const before = structuredClone(endpoint(name));
    const err = await failure(async () =>
      devops.updateConnection(
        org,
        toAzureDevOpsConversionBody(await get(name)),
        'ConvertAuthenticationScheme',
      ),
    );
    expect(err.status).toBe(400);
    expect(err.message).toMatch(message);
    expect(endpoint(name)).toEqual(before);
  });
});

describe('workload identity federation without the conversion tool (a plain update) and TestConnection', () => {
  let wif: ServiceConnection;

  test('the issuer and subject are generated by Azure DevOps, whatever the client sends; the secret is gone', async () => {
    const body = toWorkloadIdentityBody(await get('manual'));
    body.authorization.parameters['workloadIdentityFederationSubject'] = 'sc://made/up/by-the-client';
    wif = await devops.updateConnection(org, body);
    expect(wif.authorization.parameters['workloadIdentityFederationSubject']).toMatch(
      new RegExp(
        `^/eid1/c/pub/t/[\\w-]+/a/rISbSSETf0KqFyZ8ppdXmA/sc/[0-9a-f-]{36}/${endpoint('manual').id}$`,
      ),
    );
    expect(endpoint('manual').authorization.parameters).not.toHaveProperty('serviceprincipalkey');
    expect(wif.data['revertSchemeDeadline']).toBeUndefined();
  });

  test('TestConnection fails until the app holds the matching federated credential (issuer, subject, audience)', async () => {
    const app = appFor(endpoint('manual'));
    const issuer = wif.authorization.parameters['workloadIdentityFederationIssuer']!;
    const subject = wif.authorization.parameters['workloadIdentityFederationSubject']!;
    let test = await devops.testConnection(org, 'web', wif);
    expect(test.ok).toBe(false);
    expect(test.errorMessage).toMatch(
      /AADSTS700211: No matching federated identity record found for presented assertion issuer/,
    );

    const wrongSubject = await graph.addFederatedCredential(app.id, {
      name: 'wrong-subject',
      issuer,
      subject: 'sc://contoso/web/manual',
      audiences: ['api://AzureADTokenExchange'],
    });
    test = await devops.testConnection(org, 'web', wif);
    expect(test.errorMessage).toMatch(
      /AADSTS700213: No matching federated identity record found for presented assertion subject/,
    );

    const wrongAudience = await graph.addFederatedCredential(app.id, {
      name: 'wrong-audience',
      issuer,
      subject,
      audiences: ['api://something-else'],
    });
    test = await devops.testConnection(org, 'web', wif);
    expect(test.errorMessage).toMatch(/AADSTS700212/);
    await graph.removeFederatedCredential(app.id, wrongAudience.id);

    const right = await graph.addFederatedCredential(app.id, {
      name: 'sc-remediator-manual',
      issuer,
      subject,
      audiences: ['api://AzureADTokenExchange'],
      description: 'test',
    });
    expect((await devops.testConnection(org, 'web', wif)).ok).toBe(true);
    expect((await graph.listFederatedCredentials(app.id)).map((f) => f.name).sort()).toEqual(
      ['sc-remediator-manual', 'wrong-subject'].sort(),
    );

    await graph.removeFederatedCredential(app.id, right.id);
    await graph.removeFederatedCredential(app.id, wrongSubject.id);
    // Already gone: not an error for the adapter (Graph answers 404).
    await graph.removeFederatedCredential(app.id, right.id);
    expect(sandbox.state.requestLog.filter((r) => r.method === 'DELETE').map((r) => r.status)).toEqual([
      204, 204, 204, 404,
    ]);
    expect((await devops.testConnection(org, 'web', wif)).ok).toBe(false);
  });

  test('the older Azure DevOps issuer when the service still gives it out', async () => {
    sandbox.state.federationIssuer = 'azure-devops';
    try {
      const converted = await devops.updateConnection(org, toWorkloadIdentityBody(await get('manual')));
      expect(converted.authorization.parameters['workloadIdentityFederationIssuer']).toBe(
        `https://vstoken.dev.azure.com/${sandbox.state.organization('contoso')!.id}`,
      );
      expect(converted.authorization.parameters['workloadIdentityFederationSubject']).toBe(
        'sc://contoso/web/manual',
      );
    } finally {
      sandbox.state.federationIssuer = 'entra';
    }
  });
});

describe('a certificate connection to workload identity federation by a plain update, and back', () => {
  test('the certificate is dropped and TestConnection needs the federated credential; back on spnCertificate only with a PEM', async () => {
    const ep = endpoint('cert');
    const app = appFor(ep);
    const pem = ep.authorization.parameters['servicePrincipalCertificate']!;
    expect(pem).toMatch(/PRIVATE KEY-----/);
    expect((await devops.testConnection(org, 'web', await get('cert'))).ok).toBe(true);

    const wif = await devops.updateConnection(org, toWorkloadIdentityBody(await get('cert')));
    expect(wif.authorization.scheme).toBe('WorkloadIdentityFederation');
    expect(Object.keys(ep.authorization.parameters).sort()).toEqual(
      [
        'serviceprincipalid',
        'tenantid',
        'workloadIdentityFederationIssuer',
        'workloadIdentityFederationSubject',
      ].sort(),
    );
    // The certificate still on the app does not sign Azure DevOps in any more: the federated credential does.
    expect((await devops.testConnection(org, 'web', wif)).ok).toBe(false);
    const fic = await graph.addFederatedCredential(app.id, {
      name: 'sc-remediator-cert',
      issuer: wif.authorization.parameters['workloadIdentityFederationIssuer']!,
      subject: wif.authorization.parameters['workloadIdentityFederationSubject']!,
      audiences: ['api://AzureADTokenExchange'],
    });
    expect((await devops.testConnection(org, 'web', wif)).ok).toBe(true);

    // Back to spnCertificate without a certificate: refused as spnKey without a key is.
    const bare = toCertificateBody(wif, pem);
    delete bare.authorization.parameters['servicePrincipalCertificate'];
    const refused = await failure(() => devops.updateConnection(org, bare));
    expect(refused.status).toBe(400);
    expect(refused.message).toMatch(/servicePrincipalCertificate/);
    expect(ep.authorization.scheme).toBe('WorkloadIdentityFederation');

    // With the PEM: a certificate connection again, Ready, signing in with it; no federation left.
    const back = await devops.updateConnection(org, toCertificateBody(wif, pem));
    expect(back.authorization.scheme).toBe('ServicePrincipal');
    expect(ep.authorization.parameters['authenticationType']).toBe('spnCertificate');
    expect(ep.authorization.parameters['servicePrincipalCertificate'] === pem).toBe(true);
    expect(Object.keys(ep.authorization.parameters).some((k) => k.startsWith('workloadIdentity'))).toBe(
      false,
    );
    expect(ep.isReady).toBe(true);
    await graph.removeFederatedCredential(app.id, fic.id);
    expect((await devops.testConnection(org, 'web', await get('cert'))).ok).toBe(true);
  });
});

describe('deleting an Automatic connection whose app is gone (the first field report)', () => {
  test('deep=true is refused (Azure DevOps cannot undo its role assignment); deep=false deletes it directly', async () => {
    const ep = endpoint('gone');
    const projectId = ep.serviceEndpointProjectReferences[0]!.projectReference.id;
    const err = await failure(() => devops.deleteConnection(org, ep.id, [projectId], true));
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/was not found in the directory/);
    expect(sandbox.state.organization('contoso')!.endpoints.has(ep.id)).toBe(true);

    await devops.deleteConnection(org, ep.id, [projectId], false);
    expect(sandbox.state.organization('contoso')!.endpoints.has(ep.id)).toBe(false);
    // deep=false: the (deleted) app registration is left as it was.
    expect(sandbox.state.apps.get(appFor(ep).id)?.deleted).toBe(true);
  });
});
