/**
 * Fidelity of the simulated Microsoft Graph, through the real `@microsoft/microsoft-graph-client`
 * (its default middleware, RetryHandler included) and our GraphApplicationsAdapter.
 */
import { inspect } from 'node:util';
import { ClientSecretCredential } from '@azure/identity';
import { Client, GraphError } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials';
import { startSandbox, type Sandbox, type Scenario } from '../../sandbox/index';
import type { AppRecord } from '../../sandbox/model';
import { AUDIENCES } from '../../sandbox/tokens';
import { AuthenticationError, ServiceError } from '../../src/errors';
import { GraphApplicationsAdapter } from '../../src/clients/graph';
import { EntraTokenProbe } from '../../src/clients/tokenProbe';

const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
const DAY_MS = 86400_000;

const scenario: Scenario = {
  name: 'graph-fidelity',
  productIdentity: 'remediator',
  identities: [
    {
      key: 'remediator',
      displayName: 'sc-remediator',
      kind: 'servicePrincipal',
      graphPermissions: ['Application.ReadWrite.All', 'Policy.Read.All'],
    },
    {
      key: 'owner-bot',
      displayName: 'Owner bot',
      kind: 'servicePrincipal',
      graphPermissions: ['Application.ReadWrite.OwnedBy'],
    },
    {
      key: 'reader',
      displayName: 'Reader',
      kind: 'servicePrincipal',
      graphPermissions: ['Application.Read.All'],
    },
    { key: 'nobody', displayName: 'No roles', kind: 'servicePrincipal', graphPermissions: [] },
  ],
  apps: [
    { key: 'target', displayName: 'Target app', passwords: [{ key: 'current', endInDays: 200 }] },
    {
      key: 'owned',
      displayName: 'Owned app',
      owners: ['owner-bot'],
      passwords: [{ key: 'p', endInDays: 100 }],
    },
    { key: 'capped', displayName: 'Capped app', policy: { passwordLifetimeMax: 'P90D' } },
    { key: 'blocked', displayName: 'Blocked app', policy: { passwordAdditionBlocked: true } },
    {
      key: 'personal',
      displayName: 'Personal account app',
      signInAudience: 'AzureADandPersonalMicrosoftAccount',
      passwords: [{ key: 'p', endInDays: 100 }],
    },
    { key: 'removed', displayName: 'Removed app', deleted: true },
    // An app management policy assigned to the app, restricting nothing: exempt from the tenant default.
    { key: 'exempt', displayName: 'Exempt app', policy: {} },
    { key: 'own-cap', displayName: 'Own cap app', policy: { passwordLifetimeMax: 'P365D' } },
    {
      key: 'certified',
      displayName: 'Certificate app',
      certificates: [
        { key: 'old', endInDays: 10 },
        { key: 'new', endInDays: 400 },
      ],
    },
    { key: 'extra-1', displayName: 'Extra one' },
    { key: 'extra-2', displayName: 'Extra two' },
  ],
  organizations: [],
};

let sandbox: Sandbox;
let adapter: GraphApplicationsAdapter;
let raw: Client;

function app(displayName: string): AppRecord {
  const found = [...sandbox.state.apps.values()].find((a) => a.displayName === displayName);
  if (!found) throw new Error(`no app ${displayName}`);
  return found;
}

function credentialFor(identityKey: string): ClientSecretCredential {
  const identity = sandbox.state.identities.get(identityKey);
  if (!identity?.appId || !identity.clientSecret) throw new Error(`no credential for ${identityKey}`);
  return new ClientSecretCredential(sandbox.state.tenantId, identity.appId, identity.clientSecret, {
    authorityHost: sandbox.urls.authority,
    disableInstanceDiscovery: true,
  });
}

function adapterFor(identityKey: string): GraphApplicationsAdapter {
  return new GraphApplicationsAdapter({
    credential: credentialFor(identityKey),
    endpoint: sandbox.urls.graph,
    scope: GRAPH_SCOPE,
  });
}

function rawClientFor(identityKey: string): Client {
  return Client.initWithMiddleware({
    authProvider: new TokenCredentialAuthenticationProvider(credentialFor(identityKey), {
      scopes: [GRAPH_SCOPE],
    }),
    baseUrl: sandbox.urls.graph,
    defaultVersion: 'v1.0',
    customHosts: new Set([new URL(sandbox.urls.graph).hostname]),
  });
}

async function graphError(promise: Promise<unknown>): Promise<GraphError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof GraphError)) throw new Error(`expected a GraphError, got ${String(err)}`);
  return err;
}

async function serviceError(promise: Promise<unknown>): Promise<ServiceError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ServiceError)) throw new Error(`expected a ServiceError, got ${String(err)}`);
  return err;
}

beforeAll(async () => {
  sandbox = await startSandbox({ scenario });
  adapter = adapterFor('remediator');
  raw = rawClientFor('remediator');
});

afterAll(async () => {
  await sandbox.stop();
});

afterEach(() => {
  sandbox.faults.clear();
  sandbox.state.tenantPolicy = {};
});

describe('reading applications', () => {
  it('adapter: gets an application by appId, passwords without values', async () => {
    const target = app('Target app');
    const info = await adapter.getApplicationByAppId(target.appId);
    expect(info).toEqual({
      id: target.id,
      appId: target.appId,
      displayName: 'Target app',
      passwordCredentials: [
        {
          keyId: target.passwordCredentials[0]?.keyId,
          displayName: null,
          hint: target.passwordCredentials[0]?.secretText.slice(0, 3),
          startDateTime: expect.stringMatching(/Z$/),
          endDateTime: expect.stringMatching(/Z$/),
        },
      ],
    });
  });

  it('adapter: a deleted or unknown appId reads as undefined', async () => {
    expect(await adapter.getApplicationByAppId(app('Removed app').appId)).toBeUndefined();
    expect(await adapter.getApplicationByAppId('0f0f0f0f-1111-4222-8333-444444444444')).toBeUndefined();
  });

  it('raw: GET /applications/{id} has Graph’s shape', async () => {
    const target = app('Target app');
    const body = (await raw.api(`/applications/${target.id}`).get()) as Record<string, unknown>;
    expect(body['@odata.context']).toBe(`${sandbox.urls.graph}/v1.0/$metadata#applications/$entity`);
    expect(body).toMatchObject({
      id: target.id,
      appId: target.appId,
      displayName: 'Target app',
      signInAudience: 'AzureADMyOrg',
      isDisabled: false,
      keyCredentials: [],
      deletedDateTime: null,
    });
    const [password] = body['passwordCredentials'] as Record<string, unknown>[];
    expect(password).toEqual({
      customKeyIdentifier: null,
      displayName: null,
      endDateTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/),
      hint: target.passwordCredentials[0]?.hint,
      keyId: target.passwordCredentials[0]?.keyId,
      secretText: null,
      startDateTime: expect.stringMatching(/\.\d{7}Z$/),
    });
  });

  it('raw: addresses an application by the appId alternate key, quoted either way', async () => {
    const target = app('Target app');
    const single = (await raw
      .api(`/applications(appId='${target.appId}')`)
      .select(['id', 'appId'])
      .get()) as Record<string, unknown>;
    expect(single).toEqual({
      '@odata.context': `${sandbox.urls.graph}/v1.0/$metadata#applications(id,appId)/$entity`,
      id: target.id,
      appId: target.appId,
    });
    const double = (await raw.api(`/applications(appId=%22${target.appId}%22)`).get()) as Record<
      string,
      unknown
    >;
    expect(double['id']).toBe(target.id);
  });

  it('raw: lists with $filter on appId and $select', async () => {
    const target = app('Target app');
    const body = (await raw
      .api('/applications')
      .filter(`appId eq '${target.appId}'`)
      .select('id,appId,displayName')
      .get()) as { '@odata.context': string; value: unknown[]; '@odata.nextLink'?: string };
    expect(body['@odata.context']).toBe(
      `${sandbox.urls.graph}/v1.0/$metadata#applications(id,appId,displayName)`,
    );
    expect(body.value).toEqual([{ id: target.id, appId: target.appId, displayName: 'Target app' }]);
    expect(body['@odata.nextLink']).toBeUndefined();
  });

  it('raw: pages an unfiltered list with $top and @odata.nextLink', async () => {
    const live = [...sandbox.state.apps.values()].filter((a) => !a.deleted).length;
    const seen: string[] = [];
    let page = (await raw.api('/applications').top(3).select('id').get()) as {
      value: { id: string }[];
      '@odata.nextLink'?: string;
    };
    let pages = 1;
    seen.push(...page.value.map((a) => a.id));
    while (page['@odata.nextLink']) {
      expect(page['@odata.nextLink']).toMatch(/\$top=3/);
      page = (await raw.api(page['@odata.nextLink']).get()) as typeof page;
      seen.push(...page.value.map((a) => a.id));
      pages += 1;
    }
    expect(pages).toBe(Math.ceil(live / 3));
    expect(new Set(seen).size).toBe(live);
    expect(seen).not.toContain(app('Removed app').id);
  });

  it('raw: a deleted application is 404 Request_ResourceNotFound with Graph’s message', async () => {
    const removed = app('Removed app');
    const err = await graphError(raw.api(`/applications/${removed.id}`).get());
    expect(err.statusCode).toBe(404);
    expect(err.code).toBe('Request_ResourceNotFound');
    expect(err.message).toBe(
      `Resource '${removed.id}' does not exist or one of its queried reference-property objects are not present.`,
    );
    expect(err.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('raw: an invalid $filter is 400 BadRequest; an unknown $select property is 400 Request_BadRequest', async () => {
    const bad = await graphError(raw.api('/applications').filter('appId eq').get());
    expect(bad.statusCode).toBe(400);
    expect(bad.code).toBe('BadRequest');
    expect(bad.message).toMatch(/^Invalid filter clause/);
    const select = await graphError(raw.api('/applications').select('secret').get());
    expect(select.statusCode).toBe(400);
    expect(select.code).toBe('Request_BadRequest');
  });

  it('refuses callers without a Graph token (401 InvalidAuthenticationToken) or with one for another audience', async () => {
    const target = app('Target app');
    const none = await fetch(`${sandbox.urls.graph}/v1.0/applications/${target.id}`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await none.json()).toMatchObject({
      error: { code: 'InvalidAuthenticationToken', message: 'Access token is empty.' },
    });
    const vaultToken = sandbox.tokens.issue({
      aud: AUDIENCES.keyvault,
      appid: 'x',
      oid: 'y',
      idtyp: 'app',
      roles: ['Application.ReadWrite.All'],
      sbx: 'remediator',
    });
    const wrongAudience = await fetch(`${sandbox.urls.graph}/v1.0/applications/${target.id}`, {
      headers: { authorization: `Bearer ${vaultToken}` },
    });
    expect(wrongAudience.status).toBe(401);
    const body = (await wrongAudience.json()) as { error: Record<string, unknown> };
    expect(body.error['message']).toMatch(/Invalid audience/);
    expect(body.error['innerError']).toMatchObject({
      date: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/),
      'request-id': expect.any(String),
      'client-request-id': expect.any(String),
    });
  });

  it('refuses a caller with no Application role (403), lets Application.Read.All read', async () => {
    const target = app('Target app');
    const err = await serviceError(adapterFor('nobody').getApplicationByAppId(target.appId));
    expect(err).toMatchObject({
      service: 'graph',
      status: 403,
      code: 'Authorization_RequestDenied',
      transient: false,
    });
    expect(err.message).toMatch(/Insufficient privileges to complete the operation\./);
    expect(await adapterFor('reader').getApplicationByAppId(target.appId)).toMatchObject({ id: target.id });
  });
});

describe('certificates (keyCredentials)', () => {
  it('adapter: reads the certificates with their end and thumbprint, never their raw data', async () => {
    const certified = app('Certificate app');
    const info = await adapter.getApplicationByAppId(certified.appId);
    expect(info?.keyCredentials).toHaveLength(2);
    for (const k of info?.keyCredentials ?? []) {
      const stored = certified.keyCredentials?.find((c) => c.keyId === k.keyId);
      expect(k).toEqual({
        keyId: stored?.keyId,
        displayName: stored?.displayName,
        thumbprint: stored?.customKeyIdentifier,
        endDateTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        type: 'AsymmetricX509Cert',
        usage: 'Verify',
      });
      expect(Date.parse(k.endDateTime ?? '')).toBe(Date.parse(stored?.endDateTime ?? ''));
      expect(k).not.toHaveProperty('key');
    }
    // Apps without certificates carry none.
    expect((await adapter.getApplicationByAppId(app('Target app').appId))?.keyCredentials).toBeUndefined();
  });

  it('raw: the certificate data comes only with $select on a single application', async () => {
    const certified = app('Certificate app');
    const one = (await raw.api(`/applications/${certified.id}`).select('keyCredentials').get()) as {
      keyCredentials: Record<string, unknown>[];
    };
    expect(one.keyCredentials[0]).toMatchObject({ type: 'AsymmetricX509Cert', usage: 'Verify' });
    expect(typeof one.keyCredentials[0]?.['key']).toBe('string');
    const full = (await raw.api(`/applications/${certified.id}`).get()) as {
      keyCredentials: Record<string, unknown>[];
    };
    expect(full.keyCredentials[0]?.['key']).toBeNull();
    const listed = (await raw
      .api('/applications')
      .filter(`appId eq '${certified.appId}'`)
      .select('keyCredentials')
      .get()) as { value: { keyCredentials: Record<string, unknown>[] }[] };
    expect(listed.value[0]?.keyCredentials[0]?.['key']).toBeNull();
  });
});

describe('passwords', () => {
  it('adapter: addPassword returns the secret once; GET never shows it again; the secret works at Entra', async () => {
    const target = app('Target app');
    const endDateTime = new Date(Date.now() + 30 * DAY_MS).toISOString();
    const before = sandbox.state.requestLog.length;
    const created = await adapter.addPassword(target.id, { displayName: 'sc-remediator test', endDateTime });
    expect(created.secretText.length).toBeGreaterThanOrEqual(16);
    expect(created.hint).toBe(created.secretText.slice(0, 3));
    expect(created.displayName).toBe('sc-remediator test');
    expect(Date.parse(created.endDateTime)).toBe(Date.parse(endDateTime));

    const body = (await raw.api(`/applications/${target.id}`).get()) as {
      passwordCredentials: Record<string, unknown>[];
    };
    const listed = body.passwordCredentials.find((p) => p['keyId'] === created.keyId);
    expect(listed).toMatchObject({ secretText: null, hint: created.hint, displayName: 'sc-remediator test' });
    expect(JSON.stringify(body)).not.toContain(created.secretText);

    const write = sandbox.state.requestLog.slice(before).find((e) => e.path.endsWith('/addPassword'));
    expect(write).toMatchObject({ service: 'graph', status: 200, write: true, caller: 'remediator' });
    // Replication lag counts from the sandbox clock at creation.
    const record = target.passwordCredentials.find((p) => p.keyId === created.keyId);
    expect(Math.abs((record?.addedAt ?? 0) - sandbox.state.now().getTime())).toBeLessThan(10_000);

    const probe = new EntraTokenProbe({ authorityHost: sandbox.urls.authority });
    expect(await probe.tryClientSecret(sandbox.state.tenantId, target.appId, created.secretText)).toEqual({
      ok: true,
    });
    await adapter.removePassword(target.id, created.keyId);
  });

  it('raw: addPassword without a body (or through the appId address) defaults to start + 2 years', async () => {
    const target = app('Target app');
    const created = (await raw.api(`/applications(appId='${target.appId}')/addPassword`).post({})) as Record<
      string,
      string
    >;
    expect(created['@odata.context']).toBe(
      `${sandbox.urls.graph}/v1.0/$metadata#microsoft.graph.passwordCredential`,
    );
    const start = new Date(created['startDateTime'] ?? '');
    const end = new Date(created['endDateTime'] ?? '');
    const expected = new Date(start);
    expected.setUTCFullYear(start.getUTCFullYear() + 2);
    expect(end.getTime()).toBe(expected.getTime());
    expect(Math.abs(start.getTime() - sandbox.state.now().getTime())).toBeLessThan(10_000);
    expect(created).toMatchObject({ customKeyIdentifier: null, displayName: null });
    await adapter.removePassword(target.id, created['keyId'] ?? '');
  });

  it('removePassword answers 204 and the credential is gone; an unknown keyId is 400 (the adapter: already gone, done)', async () => {
    const target = app('Target app');
    const created = await adapter.addPassword(target.id, {
      displayName: 'to remove',
      endDateTime: new Date(Date.now() + DAY_MS).toISOString(),
    });
    const before = sandbox.state.requestLog.length;
    await adapter.removePassword(target.id, created.keyId);
    expect(
      sandbox.state.requestLog.slice(before).find((e) => e.path.endsWith('/removePassword')),
    ).toMatchObject({
      status: 204,
      write: true,
    });
    expect(target.passwordCredentials.some((p) => p.keyId === created.keyId)).toBe(false);

    const err = await graphError(
      raw.api(`/applications/${target.id}/removePassword`).post({ keyId: created.keyId }),
    );
    expect(err).toMatchObject({ statusCode: 400, code: 'Request_BadRequest' });
    // Removing what is gone is the end state asked for (a resend after a lost answer finds it so).
    await expect(adapter.removePassword(target.id, created.keyId)).resolves.toBeUndefined();
  });

  it('a read or removePassword whose answer was lost is sent again; addPassword is not', async () => {
    const target = app('Target app');
    const statuses = (from: number, pattern: RegExp) =>
      sandbox.state.requestLog
        .slice(from)
        .filter((e) => e.service === 'graph' && pattern.test(e.path))
        .map((e) => e.status);
    sandbox.faults.setRules([{ service: 'graph', method: 'GET', kind: 'drop', rate: 1, maxCount: 1 }]);
    let from = sandbox.state.requestLog.length;
    expect((await adapter.getApplicationByAppId(target.appId))?.id).toBe(target.id);
    const created = await adapter.addPassword(target.id, {
      displayName: 'lost answer',
      endDateTime: new Date(Date.now() + DAY_MS).toISOString(),
    });
    sandbox.faults.setRules([
      {
        service: 'graph',
        method: 'POST',
        path: 'removePassword$',
        kind: 'answer-lost',
        rate: 1,
        maxCount: 1,
      },
    ]);
    from = sandbox.state.requestLog.length;
    await adapter.removePassword(target.id, created.keyId);
    expect(target.passwordCredentials.some((p) => p.keyId === created.keyId)).toBe(false);
    // The lost answer is not in the log; the resend found the credential gone (400), which is done.
    expect(statuses(from, /removePassword$/)).toEqual([400]);
    sandbox.faults.setRules([
      { service: 'graph', method: 'POST', path: 'addPassword$', kind: 'answer-lost', rate: 1, maxCount: 1 },
    ]);
    from = sandbox.state.requestLog.length;
    const lost = await serviceError(
      adapter.addPassword(target.id, {
        displayName: 'x',
        endDateTime: new Date(Date.now() + DAY_MS).toISOString(),
      }),
    );
    expect(lost.status).toBeUndefined();
    expect(statuses(from, /addPassword$/)).toEqual([]);
    // It did take effect, once (not sent again): the rotation deals with that (engine.graph.test.ts).
    const added = target.passwordCredentials.filter((p) => p.displayName === 'x');
    expect(added).toHaveLength(1);
    for (const p of added) await adapter.removePassword(target.id, p.keyId);
  });

  it('Application.ReadWrite.OwnedBy writes owned apps only (403 Authorization_RequestDenied otherwise)', async () => {
    const owner = adapterFor('owner-bot');
    const owned = app('Owned app');
    const created = await owner.addPassword(owned.id, {
      displayName: 'by owner',
      endDateTime: new Date(Date.now() + DAY_MS).toISOString(),
    });
    await owner.removePassword(owned.id, created.keyId);

    const err = await serviceError(
      owner.addPassword(app('Target app').id, {
        displayName: 'not mine',
        endDateTime: new Date(Date.now() + DAY_MS).toISOString(),
      }),
    );
    expect(err).toMatchObject({ status: 403, code: 'Authorization_RequestDenied' });
    // Read-only role: no write at all.
    const reader = await serviceError(
      adapterFor('reader').addPassword(owned.id, {
        displayName: 'reader',
        endDateTime: new Date(Date.now() + DAY_MS).toISOString(),
      }),
    );
    expect(reader).toMatchObject({ status: 403, code: 'Authorization_RequestDenied' });
  });

  it('app management policy: a lifetime over the cap is refused (CredentialInvalidLifetimeAsPerAppPolicy)', async () => {
    const capped = app('Capped app');
    const err = await graphError(
      raw.api(`/applications/${capped.id}/addPassword`).post({
        passwordCredential: { endDateTime: new Date(Date.now() + 120 * DAY_MS).toISOString() },
      }),
    );
    expect(err.statusCode).toBe(400);
    expect(err.code).toBe('CredentialInvalidLifetimeAsPerAppPolicy');
    expect(err.message).toMatch(
      /^Credential lifetime exceeds the max value allowed as per assigned policy '[0-9a-f-]{36}'\.$/,
    );
    expect(JSON.parse(String(err.body))).toMatchObject({
      details: [{ code: 'InvalidKeyEndDate', target: 'EndDate' }],
    });

    expect(await adapter.getPasswordPolicy(capped.id)).toEqual({
      additionBlocked: false,
      maxLifetimeDays: 90,
    });
    const within = await adapter.addPassword(capped.id, {
      displayName: 'within cap',
      endDateTime: new Date(Date.now() + 90 * DAY_MS).toISOString(),
    });
    await adapter.removePassword(capped.id, within.keyId);
  });

  it('app management policy: password addition blocked (CredentialTypeNotAllowedAsPerAppPolicy)', async () => {
    const blocked = app('Blocked app');
    const err = await serviceError(
      adapter.addPassword(blocked.id, {
        displayName: 'blocked',
        endDateTime: new Date(Date.now() + DAY_MS).toISOString(),
      }),
    );
    expect(err).toMatchObject({ status: 400, code: 'CredentialTypeNotAllowedAsPerAppPolicy' });
    expect(await adapter.getPasswordPolicy(blocked.id)).toEqual({ additionBlocked: true });
    expect(blocked.passwordCredentials).toHaveLength(0);
  });

  it('tenant default policy: served in tenantAppManagementPolicy shape and applied where the app sets nothing', async () => {
    sandbox.state.tenantPolicy = { passwordLifetimeMax: 'P180D' };
    const policy = (await raw.api('/policies/defaultAppManagementPolicy').get()) as Record<string, unknown>;
    expect(policy).toMatchObject({
      id: '00000000-0000-0000-0000-000000000000',
      isEnabled: true,
      applicationRestrictions: {
        passwordCredentials: [
          {
            restrictionType: 'passwordLifetime',
            maxLifetime: 'P180D',
            restrictForAppsCreatedAfterDateTime: expect.any(String),
          },
        ],
        keyCredentials: [],
      },
      servicePrincipalRestrictions: { passwordCredentials: [], keyCredentials: [] },
    });
    const own = (await raw.api(`/applications/${app('Capped app').id}/appManagementPolicies`).get()) as {
      value: Record<string, unknown>[];
    };
    expect(own.value).toEqual([
      expect.objectContaining({
        isEnabled: true,
        restrictions: {
          passwordCredentials: [
            expect.objectContaining({ restrictionType: 'passwordLifetime', maxLifetime: 'P90D' }),
          ],
          keyCredentials: [],
        },
      }),
    ]);
    // The app's own policy wins over the tenant default; other apps get the default.
    expect(await adapter.getPasswordPolicy(app('Capped app').id)).toEqual({
      additionBlocked: false,
      maxLifetimeDays: 90,
    });
    expect(await adapter.getPasswordPolicy(app('Target app').id)).toEqual({
      additionBlocked: false,
      maxLifetimeDays: 180,
    });
    const err = await serviceError(
      adapter.addPassword(app('Target app').id, {
        displayName: 'too long',
        endDateTime: new Date(Date.now() + 365 * DAY_MS).toISOString(),
      }),
    );
    expect(err).toMatchObject({ status: 400, code: 'CredentialInvalidLifetimeAsPerAppPolicy' });
    expect(err.message).toContain("'00000000-0000-0000-0000-000000000000'");
  });

  it("an app's own policy takes precedence and does not inherit from the tenant default (sandbox and adapter)", async () => {
    sandbox.state.tenantPolicy = { passwordAdditionBlocked: true, passwordLifetimeMax: 'P30D' };
    try {
      const end = (days: number) => new Date(Date.now() + days * DAY_MS).toISOString();
      // Exempt (own policy, no restriction): neither the tenant's block nor its cap applies.
      const exempt = app('Exempt app');
      expect(await adapter.getPasswordPolicy(exempt.id)).toEqual({ additionBlocked: false });
      const added = await adapter.addPassword(exempt.id, { displayName: 'exempt', endDateTime: end(200) });
      await adapter.removePassword(exempt.id, added.keyId);
      // Its own cap only: the tenant's block and shorter cap are not inherited.
      const ownCap = app('Own cap app');
      expect(await adapter.getPasswordPolicy(ownCap.id)).toEqual({
        additionBlocked: false,
        maxLifetimeDays: 365,
      });
      const within = await adapter.addPassword(ownCap.id, { displayName: 'own cap', endDateTime: end(300) });
      await adapter.removePassword(ownCap.id, within.keyId);
      const over = await serviceError(
        adapter.addPassword(ownCap.id, { displayName: 'over', endDateTime: end(400) }),
      );
      expect(over).toMatchObject({ status: 400, code: 'CredentialInvalidLifetimeAsPerAppPolicy' });
      expect(over.message).not.toContain('00000000-0000-0000-0000-000000000000');
      // No policy of its own: the tenant default applies, whole.
      const target = app('Target app');
      expect(await adapter.getPasswordPolicy(target.id)).toEqual({
        additionBlocked: true,
        maxLifetimeDays: 30,
      });
      const refused = await serviceError(
        adapter.addPassword(target.id, { displayName: 'refused', endDateTime: end(10) }),
      );
      expect(refused).toMatchObject({ status: 400, code: 'CredentialTypeNotAllowedAsPerAppPolicy' });
    } finally {
      sandbox.state.tenantPolicy = {};
    }
  });

  it('policies need Policy.Read.All (403); the adapter then reports no known restriction instead of failing', async () => {
    sandbox.state.tenantPolicy = { passwordAdditionBlocked: true };
    const err = await graphError(rawClientFor('owner-bot').api('/policies/defaultAppManagementPolicy').get());
    expect(err.statusCode).toBe(403);
    expect(err.code).toBe('Authorization_RequestDenied');
    expect(await adapterFor('owner-bot').getPasswordPolicy(app('Owned app').id)).toEqual({
      additionBlocked: false,
    });
  });

  it('personal-account apps hold at most two passwords', async () => {
    const personal = app('Personal account app');
    expect(personal.passwordCredentials).toHaveLength(1);
    const second = await adapter.addPassword(personal.id, {
      displayName: 'second',
      endDateTime: new Date(Date.now() + DAY_MS).toISOString(),
    });
    const err = await serviceError(
      adapter.addPassword(personal.id, {
        displayName: 'third',
        endDateTime: new Date(Date.now() + DAY_MS).toISOString(),
      }),
    );
    expect(err).toMatchObject({ status: 400, code: 'Request_BadRequest' });
    expect(err.message).toMatch(
      /Not allowed to add 3 passwords\. You can only add a maximum of 2 passwords\./,
    );
    await adapter.removePassword(personal.id, second.keyId);
  });
});

describe('federated identity credentials', () => {
  it('lists, creates with the default audience, and refuses a duplicate name (409) or issuer+subject (400)', async () => {
    const target = app('Target app');
    const path = `/applications/${target.id}/federatedIdentityCredentials`;
    expect(((await raw.api(path).get()) as { value: unknown[] }).value).toEqual([]);
    const fic = {
      name: 'ado-connection',
      issuer: 'https://vstoken.dev.azure.com/00000000-0000-0000-0000-000000000001',
      subject: 'sc://contoso/project/connection',
    };
    const created = (await raw.api(path).post(fic)) as Record<string, unknown>;
    expect(created).toMatchObject({ ...fic, audiences: ['api://AzureADTokenExchange'], description: null });
    expect(created['@odata.context']).toMatch(/federatedIdentityCredentials\/\$entity$/);
    expect(((await raw.api(path).get()) as { value: unknown[] }).value).toHaveLength(1);

    const dup = await graphError(raw.api(path).post(fic));
    expect(dup.statusCode).toBe(409);
    expect(dup.code).toBe('Request_MultipleObjectsWithSameKeyValue');
    expect(dup.message).toBe('FederatedIdentityCredential with name ado-connection already exists.');
    const same = await graphError(raw.api(path).post({ ...fic, name: 'other-name' }));
    expect(same.statusCode).toBe(400);
    expect(same.code).toBe('InvalidFederatedIdentityCredentialValue');
    target.federatedIdentityCredentials.length = 0;
  });
});

describe('throttling and errors', () => {
  it('a 429 with Retry-After is retried by the Graph client’s RetryHandler', async () => {
    const target = app('Target app');
    sandbox.faults.setRules([
      { service: 'graph', kind: 'throttle', rate: 1, maxCount: 1, retryAfterSeconds: 1 },
    ]);
    const before = sandbox.state.requestLog.length;
    const started = Date.now();
    const info = await adapter.getApplicationByAppId(target.appId);
    expect(info?.id).toBe(target.id);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const graphCalls = sandbox.state.requestLog.slice(before).filter((e) => e.service === 'graph');
    expect(graphCalls.map((e) => [e.status, e.fault])).toEqual([
      [429, 'throttle'],
      [200, undefined],
    ]);
    expect(graphCalls[0]?.path).toBe(graphCalls[1]?.path);
  });

  it('throttling that outlasts the retries surfaces as a transient ServiceError with Graph’s code', async () => {
    sandbox.faults.setRules([{ service: 'graph', kind: 'throttle', rate: 1, retryAfterSeconds: 0 }]);
    const err = await serviceError(adapter.getApplicationByAppId(app('Target app').appId));
    expect(err).toMatchObject({ status: 429, code: 'TooManyRequests', transient: true });
  });

  it("a run of 429s longer than the client's default 3 retries is waited out within the time budget", async () => {
    const target = app('Target app');
    sandbox.faults.setRules([
      { service: 'graph', kind: 'throttle', rate: 1, maxCount: 6, retryAfterSeconds: 0 },
    ]);
    const before = sandbox.state.requestLog.length;
    expect((await adapter.getApplicationByAppId(target.appId))?.id).toBe(target.id);
    const statuses = sandbox.state.requestLog
      .slice(before)
      .filter((e) => e.service === 'graph')
      .map((e) => e.status);
    expect(statuses).toEqual([429, 429, 429, 429, 429, 429, 200]);
  });

  it('past the time budget the 429 surfaces (transient) instead of waiting on', async () => {
    sandbox.faults.setRules([{ service: 'graph', kind: 'throttle', rate: 1, retryAfterSeconds: 2 }]);
    const short = new GraphApplicationsAdapter({
      credential: credentialFor('remediator'),
      endpoint: sandbox.urls.graph,
      scope: GRAPH_SCOPE,
      retryBudgetMs: 3000,
    });
    const started = Date.now();
    const err = await serviceError(short.getApplicationByAppId(app('Target app').appId));
    expect(err).toMatchObject({ status: 429, transient: true });
    // One wait of 2 s fits in the 3 s budget, a second does not.
    expect(Date.now() - started).toBeLessThan(2900);
  });

  it('a 503 to addPassword is not retried (it may have added the password); a 429 is', async () => {
    const target = app('Target app');
    const end = new Date(Date.now() + DAY_MS).toISOString();
    const addPasswordCalls = (from: number) =>
      sandbox.state.requestLog
        .slice(from)
        .filter((e) => e.service === 'graph' && /addPassword$/i.test(e.path))
        .map((e) => e.status);
    sandbox.faults.setRules([
      {
        service: 'graph',
        method: 'POST',
        kind: 'server-error',
        status: 503,
        rate: 1,
        maxCount: 1,
        retryAfterSeconds: 0,
      },
    ]);
    let from = sandbox.state.requestLog.length;
    const err = await serviceError(adapter.addPassword(target.id, { displayName: 'x', endDateTime: end }));
    expect(err).toMatchObject({ status: 503, transient: true });
    expect(addPasswordCalls(from)).toEqual([503]);
    sandbox.faults.setRules([
      { service: 'graph', method: 'POST', kind: 'throttle', rate: 1, maxCount: 1, retryAfterSeconds: 0 },
    ]);
    from = sandbox.state.requestLog.length;
    const added = await adapter.addPassword(target.id, { displayName: 'y', endDateTime: end });
    expect(addPasswordCalls(from)).toEqual([429, 200]);
    await adapter.removePassword(target.id, added.keyId);
  });

  it('no secret value appears in thrown errors', async () => {
    const wrongSecret = 'Qq8Q~wrong-secret-for-the-product-identity';
    const identity = sandbox.state.identities.get('remediator');
    const badCredential = new GraphApplicationsAdapter({
      credential: new ClientSecretCredential(sandbox.state.tenantId, identity?.appId ?? '', wrongSecret, {
        authorityHost: sandbox.urls.authority,
        disableInstanceDiscovery: true,
      }),
      endpoint: sandbox.urls.graph,
      scope: GRAPH_SCOPE,
    });
    const authError = await serviceError(badCredential.getApplicationByAppId(app('Target app').appId));
    expect(authError).toBeInstanceOf(AuthenticationError);
    expect(authError.code).toBe('AADSTS7000215');

    const end = new Date(Date.now() + DAY_MS).toISOString();
    const errors: unknown[] = [
      authError,
      await serviceError(adapter.addPassword(app('Blocked app').id, { displayName: 'x', endDateTime: end })),
      await serviceError(
        adapterFor('owner-bot').addPassword(app('Target app').id, { displayName: 'x', endDateTime: end }),
      ),
      await serviceError(
        adapterFor('owner-bot').removePassword(app('Target app').id, '11111111-2222-4333-8444-555555555555'),
      ),
      await serviceError(
        adapter.addPassword(app('Capped app').id, {
          displayName: 'x',
          endDateTime: new Date(Date.now() + 365 * DAY_MS).toISOString(),
        }),
      ),
    ];
    const secrets = [wrongSecret, ...sandbox.state.allSecretValues()];
    for (const err of errors) {
      const text = `${String(err)}\n${(err as Error).message}\n${(err as Error).stack ?? ''}`;
      for (const secret of secrets) expect(text).not.toContain(secret);
      // Causes too (the Graph client's error and, below it, the identity library's).
      const deep = inspect(err, { depth: 8 });
      for (const secret of secrets) expect(deep).not.toContain(secret);
    }
  });
});
