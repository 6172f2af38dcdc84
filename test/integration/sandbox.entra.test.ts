/**
 * Fidelity of the simulated Entra ID, through the real `@azure/identity` ClientSecretCredential
 * (MSAL Node underneath) and our TokenProbe; raw HTTP only for what the SDK never sends.
 */
import { inspect } from 'node:util';
import { ClientSecretCredential } from '@azure/identity';
import { startSandbox, type Sandbox, type Scenario } from '../../sandbox/index';
import type { AppRecord } from '../../sandbox/model';
import { EntraTokenProbe, isPublicEntraHost } from '../../src/clients/tokenProbe';

const scenario: Scenario = {
  name: 'entra-fidelity',
  tenantDomain: 'fabrikam.onmicrosoft.com',
  productIdentity: 'remediator',
  identities: [
    {
      key: 'remediator',
      displayName: 'sc-remediator',
      kind: 'servicePrincipal',
      graphPermissions: ['Application.ReadWrite.All', 'Policy.Read.All'],
    },
  ],
  apps: [
    { key: 'healthy', displayName: 'Healthy app', passwords: [{ key: 'current', endInDays: 200 }] },
    { key: 'expired', displayName: 'Expired app', passwords: [{ key: 'old', endInDays: -5 }] },
    {
      key: 'disabled',
      displayName: 'Disabled app',
      disabled: true,
      passwords: [{ key: 'p', endInDays: 100 }],
    },
    { key: 'gone', displayName: 'Deleted app', deleted: true, passwords: [{ key: 'p', endInDays: 100 }] },
  ],
  organizations: [],
};

let sandbox: Sandbox;
let probe: EntraTokenProbe;

function app(displayName: string): AppRecord {
  const found = [...sandbox.state.apps.values()].find((a) => a.displayName === displayName);
  if (!found) throw new Error(`no app ${displayName}`);
  return found;
}

function secretOf(a: AppRecord): string {
  const p = a.passwordCredentials[0];
  if (!p) throw new Error(`no password on ${a.displayName}`);
  return p.secretText;
}

function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

function productCredential(): ClientSecretCredential {
  return new ClientSecretCredential(
    sandbox.state.tenantId,
    sandbox.env['AZURE_CLIENT_ID'] ?? '',
    sandbox.env['AZURE_CLIENT_SECRET'] ?? '',
    { authorityHost: sandbox.urls.authority, disableInstanceDiscovery: true },
  );
}

async function postToken(form: Record<string, string>, tenant = sandbox.state.tenantId): Promise<Response> {
  return fetch(`${sandbox.urls.authority}/${tenant}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
}

beforeAll(async () => {
  sandbox = await startSandbox({ scenario });
  probe = new EntraTokenProbe({ authorityHost: sandbox.urls.authority });
});

afterAll(async () => {
  await sandbox.stop();
});

afterEach(() => {
  sandbox.faults.clear();
});

describe('OpenID metadata', () => {
  it('serves v2.0 metadata built from the request host, for the tenant id, its domain and organizations', async () => {
    const { tenantId, tenantDomain } = sandbox.state;
    const base = sandbox.urls.authority;
    for (const tenant of [tenantId, tenantDomain, tenantId.toUpperCase()]) {
      const res = await fetch(`${base}/${tenant}/v2.0/.well-known/openid-configuration`);
      expect(res.status).toBe(200);
      const doc = (await res.json()) as Record<string, unknown>;
      // A domain resolves to the tenant id in every URL, as Entra does (MSAL relies on it).
      expect(doc).toMatchObject({
        authorization_endpoint: `${base}/${tenantId}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}/${tenantId}/oauth2/v2.0/token`,
        issuer: `${base}/${tenantId}/v2.0`,
        jwks_uri: `${base}/${tenantId}/discovery/v2.0/keys`,
        end_session_endpoint: `${base}/${tenantId}/oauth2/v2.0/logout`,
        tenant_region_scope: 'WW',
      });
    }
    const orgs = (await (
      await fetch(`${base}/organizations/v2.0/.well-known/openid-configuration`)
    ).json()) as Record<string, unknown>;
    expect(orgs).toMatchObject({
      token_endpoint: `${base}/organizations/oauth2/v2.0/token`,
      issuer: `${base}/{tenantid}/v2.0`,
    });
  });

  it('serves v1 metadata at /{tenant}/.well-known/openid-configuration', async () => {
    const { tenantId } = sandbox.state;
    const res = await fetch(`${sandbox.urls.authority}/${tenantId}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      token_endpoint: `${sandbox.urls.authority}/${tenantId}/oauth2/token`,
      issuer: `https://sts.windows.net/${tenantId}/`,
    });
  });

  it('answers an unknown tenant with AADSTS90002 and a malformed one with AADSTS900023', async () => {
    const unknown = await fetch(
      `${sandbox.urls.authority}/00000000-1111-2222-3333-444444444444/v2.0/.well-known/openid-configuration`,
    );
    expect(unknown.status).toBe(400);
    const body = (await unknown.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'invalid_tenant', error_codes: [90002] });
    expect(body['error_description']).toMatch(
      /^AADSTS90002: Tenant '00000000-1111-2222-3333-444444444444' not found\./,
    );
    expect(body).toHaveProperty('trace_id');
    expect(body).toHaveProperty('correlation_id');

    const malformed = await fetch(
      `${sandbox.urls.authority}/not_a_tenant/v2.0/.well-known/openid-configuration`,
    );
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error_codes: [900023] });
  });

  it('publishes a (key-less) JWKS document', async () => {
    const res = await fetch(`${sandbox.urls.authority}/${sandbox.state.tenantId}/discovery/v2.0/keys`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ keys: [] });
  });
});

describe('token endpoint through ClientSecretCredential', () => {
  it('issues a Graph token carrying the identity, its app roles and the Graph audience', async () => {
    const before = sandbox.state.requestLog.length;
    const token = await productCredential().getToken('https://graph.microsoft.com/.default');
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3000_000);
    const identity = sandbox.state.identities.get('remediator');
    expect(claimsOf(token.token)).toMatchObject({
      aud: 'https://graph.microsoft.com',
      appid: identity?.appId,
      oid: identity?.objectId,
      tid: sandbox.state.tenantId,
      idtyp: 'app',
      roles: ['Application.ReadWrite.All', 'Policy.Read.All'],
      sbx: 'remediator',
    });
    // Token requests are reads and name their caller in the request log.
    const entry = sandbox.state.requestLog.slice(before).find((e) => e.path.endsWith('/oauth2/v2.0/token'));
    expect(entry).toMatchObject({
      service: 'entra',
      method: 'POST',
      status: 200,
      caller: 'remediator',
      write: false,
    });
  });

  it('issues tokens for other resources without Graph roles', async () => {
    const token = await productCredential().getToken('https://vault.azure.net/.default');
    expect(claimsOf(token.token)).toMatchObject({ aud: 'https://vault.azure.net', roles: [] });
  });

  it('accepts the tenant domain as the credential tenant', async () => {
    const credential = new ClientSecretCredential(
      sandbox.state.tenantDomain,
      sandbox.env['AZURE_CLIENT_ID'] ?? '',
      sandbox.env['AZURE_CLIENT_SECRET'] ?? '',
      { authorityHost: sandbox.urls.authority, disableInstanceDiscovery: true },
    );
    const token = await credential.getToken('https://management.azure.com/.default');
    expect(claimsOf(token.token)).toMatchObject({ aud: 'https://management.azure.com/' });
  });
});

describe('TokenProbe classification by AADSTS code', () => {
  it('accepts a current secret of a connection app', async () => {
    const healthy = app('Healthy app');
    expect(await probe.tryClientSecret(sandbox.state.tenantId, healthy.appId, secretOf(healthy))).toEqual({
      ok: true,
    });
  });

  it('classifies a wrong secret as 7000215', async () => {
    const result = await probe.tryClientSecret(
      sandbox.state.tenantId,
      app('Healthy app').appId,
      'Xy8Q~not-the-secret-1234',
    );
    expect(result).toMatchObject({ ok: false, aadsts: '7000215' });
    if (!result.ok) expect(result.message).toMatch(/^AADSTS7000215: Invalid client secret provided\./);
  });

  it('classifies an expired secret as 7000222', async () => {
    const expired = app('Expired app');
    const result = await probe.tryClientSecret(sandbox.state.tenantId, expired.appId, secretOf(expired));
    expect(result).toMatchObject({ ok: false, aadsts: '7000222' });
    if (!result.ok) expect(result.message).toMatch(/are expired/);
  });

  it('classifies a deleted app, and one that never existed, as 700016', async () => {
    const gone = app('Deleted app');
    const deleted = await probe.tryClientSecret(sandbox.state.tenantId, gone.appId, secretOf(gone));
    expect(deleted).toMatchObject({ ok: false, aadsts: '700016' });
    const never = await probe.tryClientSecret(
      sandbox.state.tenantId,
      '12345678-aaaa-4bbb-8ccc-123456789012',
      'Ab8Q~whatever-secret',
    );
    expect(never).toMatchObject({ ok: false, aadsts: '700016' });
    if (!never.ok)
      expect(never.message).toMatch(/was not found in the directory 'fabrikam\.onmicrosoft\.com'/);
  });

  it('classifies a disabled app as 7000112', async () => {
    const disabled = app('Disabled app');
    const result = await probe.tryClientSecret(sandbox.state.tenantId, disabled.appId, secretOf(disabled));
    expect(result).toMatchObject({ ok: false, aadsts: '7000112' });
    if (!result.ok) expect(result.message).toMatch(/is disabled/);
  });

  it('models replication delay: a new secret fails with 7000215, then works once the delay has passed', async () => {
    const healthy = app('Healthy app');
    sandbox.state.passwordReplicationDelaySeconds = 30;
    try {
      const secretText = 'Nw8Q~fresh-secret-value-for-replication';
      healthy.passwordCredentials.push({
        keyId: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
        displayName: 'fresh',
        hint: secretText.slice(0, 3),
        secretText,
        startDateTime: sandbox.state.now().toISOString(),
        endDateTime: new Date(sandbox.state.now().getTime() + 90 * 86400_000).toISOString(),
        customKeyIdentifier: null,
        addedAt: sandbox.state.now().getTime(),
      });
      expect(await probe.tryClientSecret(sandbox.state.tenantId, healthy.appId, secretText)).toMatchObject({
        ok: false,
        aadsts: '7000215',
      });
      sandbox.state.advanceClock(31_000);
      expect(await probe.tryClientSecret(sandbox.state.tenantId, healthy.appId, secretText)).toEqual({
        ok: true,
      });
    } finally {
      sandbox.state.passwordReplicationDelaySeconds = 0;
      healthy.passwordCredentials.pop();
    }
  });

  it('does not return or throw the secret it tried', async () => {
    const healthy = app('Healthy app');
    const wrong = 'Zz8Q~a-wrong-secret-that-must-not-leak';
    const result = await probe.tryClientSecret(sandbox.state.tenantId, healthy.appId, wrong);
    expect(JSON.stringify(result)).not.toContain(wrong);

    const error = await new ClientSecretCredential(sandbox.state.tenantId, healthy.appId, wrong, {
      authorityHost: sandbox.urls.authority,
      disableInstanceDiscovery: true,
    })
      .getToken('https://management.azure.com/.default')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    const text = `${String(error)} ${inspect(error, { depth: 6 })}`;
    expect(text).toMatch(/AADSTS7000215/);
    for (const secret of [wrong, ...sandbox.state.allSecretValues()]) expect(text).not.toContain(secret);
  });

  it('knows which authority hosts need instance discovery switched off', () => {
    expect(isPublicEntraHost('https://login.microsoftonline.com')).toBe(true);
    expect(isPublicEntraHost('https://login.microsoftonline.us/')).toBe(true);
    expect(isPublicEntraHost(sandbox.urls.authority)).toBe(false);
  });
});

describe('token endpoint errors (raw requests)', () => {
  const healthyForm = (): Record<string, string> => {
    const healthy = app('Healthy app');
    return {
      grant_type: 'client_credentials',
      client_id: healthy.appId,
      client_secret: secretOf(healthy),
      scope: 'https://management.azure.com/.default',
    };
  };

  it('answers a v2 success with the documented JSON shape', async () => {
    const res = await postToken({ ...healthyForm(), 'x-client-SKU': 'msal.js.node', claims: '{}' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'ext_expires_in', 'token_type']);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599 });
  });

  it('refuses a scope without /.default (AADSTS1002012, invalid_scope)', async () => {
    const res = await postToken({
      ...healthyForm(),
      scope: 'https://graph.microsoft.com/Application.Read.All',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_scope', error_codes: [1002012] });
  });

  it('refuses an unsupported grant type (AADSTS70003)', async () => {
    const res = await postToken({ ...healthyForm(), grant_type: 'password' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'unsupported_grant_type', error_codes: [70003] });
  });

  it('asks for a missing client secret (AADSTS7000216) and a missing grant type (AADSTS900144)', async () => {
    const { client_secret: _omitted, ...noSecret } = healthyForm();
    const res = await postToken(noSecret);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_client', error_codes: [7000216] });
    const { grant_type: _grant, ...noGrant } = healthyForm();
    const res2 = await postToken(noGrant);
    expect(res2.status).toBe(400);
    expect(await res2.json()).toMatchObject({ error: 'invalid_request', error_codes: [900144] });
  });

  it('refuses an unknown resource (AADSTS500011) and client credentials on /organizations (AADSTS50059)', async () => {
    const res = await postToken({ ...healthyForm(), scope: 'https://unknown.example.com/.default' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_resource', error_codes: [500011] });
    const res2 = await postToken(healthyForm(), 'organizations');
    expect(res2.status).toBe(400);
    expect(await res2.json()).toMatchObject({ error_codes: [50059] });
  });

  it('answers injected throttling in Entra’s error shape with Retry-After', async () => {
    sandbox.faults.setRules([
      { service: 'entra', kind: 'throttle', rate: 1, maxCount: 1, retryAfterSeconds: 2 },
    ]);
    const res = await postToken(healthyForm());
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: 'temporarily_unavailable', error_codes: [90033] });
    expect(String(body['error_description'])).toMatch(/^AADSTS90033: /);
    expect((await postToken(healthyForm())).status).toBe(200);
  });
});
