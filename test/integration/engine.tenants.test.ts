/**
 * Connections whose app lives in another tenant (ADDITIONAL_TENANT_IDS), through the product's
 * composition root and the real SDK clients against the sandbox's `multi-tenant` scenario: the
 * multi-tenant app signs in to each tenant with the identity's own token as its client assertion
 * (`ClientAssertionCredential`), Graph calls go to the connection's tenant, and the rotation is the
 * home one (same phases and invariants). A tenant not consented fails clearly and changes nothing;
 * a tenant not configured stays `unsupported`.
 */
import type { Sandbox } from '../../sandbox/index';
import type { AppRecord, TenantState } from '../../sandbox/model';
import { stableGuid } from '../../sandbox/scenario';
import { ClientSecretCredential } from '@azure/identity';
import { createTenantCredential } from '../../src/clients/tenantCredential';
import { buildPreflight } from '../../src/composition';
import { loadConfig } from '../../src/config';
import { runPreflight } from '../../src/remediation/preflight';
import { runRemediation } from '../../src/remediation/run';
import { createLogger } from '../../src/telemetry';
import {
  engineFor,
  entryFor,
  expectNoSecrets,
  sandboxClock,
  snapshot,
  storedVersions,
} from '../helpers/engineSandbox';
import { useSandbox } from '../helpers/useSandbox';

const fixture = useSandbox({ scenario: 'multi-tenant', tenant: 'test' });

function connectionId(key: string): string {
  return stableGuid('endpoint', 'contoso', key);
}

function tenantOf(sandbox: Sandbox, key: string): TenantState {
  const t = [...sandbox.state.otherTenants.values()].find((o) => o.tenantDomain === `${key}.onmicrosoft.com`);
  if (!t) throw new Error(`No tenant '${key}'.`);
  return t;
}

function appIn(tenant: TenantState, key: string): AppRecord {
  const app = tenant.apps.get(stableGuid('app-object', key));
  if (!app) throw new Error(`No app '${key}' in ${tenant.tenantDomain}.`);
  return app;
}

function run(sandbox: Sandbox, lines: string[] = [], settings: Record<string, string> = {}) {
  const log = createLogger((level, line) => lines.push(`${level}: ${line}`), 'debug');
  const engine = engineFor(sandbox, log, { settings, clock: sandboxClock(sandbox, true) });
  return runRemediation(engine.deps, engine.settings);
}

describe('connections of other tenants', () => {
  it('rotates a connection of a configured, consented tenant through its own tenant, with no secret of the multi-tenant app', async () => {
    const sandbox = fixture.sandbox;
    const fabrikam = tenantOf(sandbox, 'fabrikam');
    const app = appIn(fabrikam, 'fabrikam-deploy');
    const before = app.passwordCredentials.map((p) => p.keyId);
    const lines: string[] = [];
    // The client assertions (the identity's tokens) as Entra received them: never in any output.
    const assertions = new Set<string>();
    sandbox.state.onExchange = (exchange) => {
      const body = exchange.requestBody as Record<string, unknown> | undefined;
      if (exchange.service === 'entra' && typeof body?.['client_assertion'] === 'string')
        assertions.add(body['client_assertion']);
    };
    const { report } = await run(sandbox, lines);
    sandbox.state.onExchange = undefined;
    expect(assertions.size).toBeGreaterThan(0);
    expectNoSecrets(lines.join('\n'), assertions, 'the log');
    expectNoSecrets(JSON.stringify(report), assertions, 'the report');

    const entry = entryFor(report, connectionId('fabrikam-deploy'));
    expect(entry).toMatchObject({ finding: 'expiring', action: 'rotate-secret', outcome: 'succeeded' });
    // The new credential is on fabrikam's app, its value in Key Vault and in the connection.
    const added = app.passwordCredentials.filter((p) => !before.includes(p.keyId));
    expect(added).toHaveLength(1);
    const endpoint = sandbox.state.organization('contoso')!.endpoints.get(connectionId('fabrikam-deploy'))!;
    expect(endpoint.authorization.parameters['serviceprincipalkey']).toBe(added[0]!.secretText);
    expect(endpoint.authorization.parameters['tenantid']).toBe(fabrikam.tenantId);
    expect(storedVersions(sandbox, connectionId('fabrikam-deploy')).at(-1)?.value).toBe(added[0]!.secretText);
    // The home path is unchanged: its connection is rotated too.
    expect(entryFor(report, connectionId('home-deploy'))).toMatchObject({ outcome: 'succeeded' });

    // Tokens in fabrikam came from a client assertion (no secret exists for the multi-tenant app),
    // and Graph writes were made as the multi-tenant app's service principal in fabrikam.
    const multiTenant = sandbox.state.apps.get(stableGuid('app-object', 'remediator-multi-tenant'))!;
    expect(multiTenant.passwordCredentials).toEqual([]);
    const graphWrites = sandbox.state.writes('graph');
    expect(graphWrites.some((w) => w.caller === 'remediator-multi-tenant' && w.path.includes(app.id))).toBe(
      true,
    );
    expect(
      graphWrites.filter((w) => w.path.includes(app.id)).every((w) => w.caller === 'remediator-multi-tenant'),
    ).toBe(true);
    expect(
      sandbox.state.requestLog.some(
        (e) =>
          e.service === 'entra' &&
          e.path.toLowerCase().startsWith(`/${fabrikam.tenantId}/`) &&
          e.status === 200,
      ),
    ).toBe(true);
    expectNoSecrets(lines.join('\n'), sandbox.state.allSecretValues(), 'the log');
    expectNoSecrets(JSON.stringify(report), sandbox.state.allSecretValues(), 'the report');
  });

  it('fails clearly for a listed tenant without consent, and changes nothing there', async () => {
    const sandbox = fixture.sandbox;
    const northwind = tenantOf(sandbox, 'northwind');
    const app = appIn(northwind, 'northwind-deploy');
    const passwords = snapshot(app.passwordCredentials);
    const endpointBefore = snapshot(
      sandbox.state.organization('contoso')!.endpoints.get(connectionId('northwind-deploy'))!.authorization,
    );
    const { report } = await run(sandbox);
    const entry = entryFor(report, connectionId('northwind-deploy'));
    expect(entry.finding).toBe('error');
    expect(entry.finding).not.toBe('app-missing');
    expect(entry.action).not.toBe('delete');
    expect(JSON.stringify(entry)).toMatch(/AADSTS700016/);
    expect(entry.diagnosis).toMatchObject({ kind: 'tenant-access', code: 'AADSTS700016' });
    expect(entry.diagnosis?.cause).toContain(northwind.tenantId);
    expect(entry.diagnosis?.nextStep).toContain(
      `https://login.microsoftonline.com/${northwind.tenantId}/adminconsent`,
    );
    expect(app.passwordCredentials).toEqual(passwords);
    expect(
      sandbox.state.organization('contoso')!.endpoints.get(connectionId('northwind-deploy'))!.authorization,
    ).toEqual(endpointBefore);
    expect(storedVersions(sandbox, connectionId('northwind-deploy'))).toEqual([]);
  });

  it('keeps a connection of a tenant not configured unsupported, naming both tenants', async () => {
    const sandbox = fixture.sandbox;
    const { report } = await run(sandbox);
    const entry = entryFor(report, connectionId('tailspin-deploy'));
    expect(entry.finding).toBe('unsupported');
    expect(entry.diagnosis?.kind).toBe('other-tenant');
    expect(entry.diagnosis?.cause).toContain('9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c03');
    expect(entry.diagnosis?.cause).toContain(sandbox.state.tenantId);
  });

  it('without ADDITIONAL_TENANT_IDS, every other tenant stays unsupported and nothing there is touched', async () => {
    const sandbox = fixture.sandbox;
    const fabrikamApp = appIn(tenantOf(sandbox, 'fabrikam'), 'fabrikam-deploy');
    const passwords = snapshot(fabrikamApp.passwordCredentials);
    const { report } = await run(sandbox, [], { ADDITIONAL_TENANT_IDS: '', MULTI_TENANT_APP_CLIENT_ID: '' });
    for (const key of ['fabrikam-deploy', 'northwind-deploy', 'tailspin-deploy'])
      expect(entryFor(report, connectionId(key))).toMatchObject({ finding: 'unsupported' });
    expect(fabrikamApp.passwordCredentials).toEqual(passwords);
  });

  it('converges under faults in the other tenant (token endpoint errors, a lost addPassword answer, Graph throttling), losing nothing', async () => {
    const fabrikamId = '5f0c2f4e-8d0a-4a43-9d5e-2f6b1c7a9e01';
    const appObjectId = stableGuid('app-object', 'fabrikam-deploy');
    const sandbox = await fixture.start({
      scenario: 'multi-tenant',
      seed: 'tenants',
      faults: [
        // Entra in fabrikam: the client-assertion grant fails twice with 503 (retried by the SDK).
        { service: 'entra', path: `^/${fabrikamId}/oauth2`, kind: 'server-error', rate: 1, maxCount: 2 },
        // Graph in fabrikam: addPassword carried out but its answer lost, once.
        {
          service: 'graph',
          method: 'POST',
          path: `${appObjectId}/addPassword`,
          kind: 'answer-lost',
          rate: 1,
          maxCount: 1,
        },
        // Graph throttles reads of the app now and then.
        { service: 'graph', method: 'GET', path: 'applications', kind: 'throttle', rate: 0.3, maxCount: 3 },
      ],
    });
    const fabrikam = tenantOf(sandbox, 'fabrikam');
    const app = appIn(fabrikam, 'fabrikam-deploy');
    const original = app.passwordCredentials[0]!.keyId;
    const id = connectionId('fabrikam-deploy');
    const lines: string[] = [];
    let entry;
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const { report } = await run(sandbox, lines, { OLD_SECRET_RETENTION_HOURS: '0' });
      entry = entryFor(report, id);
      if (entry.outcome === 'succeeded' && entry.phase === 'completed') break;
    }
    expect(sandbox.faults.stats.byKind['answer-lost']).toBe(1);
    expect(sandbox.faults.stats.byKind['server-error']).toBe(2);
    expect(entry).toMatchObject({ outcome: 'succeeded', phase: 'completed' });
    const endpoint = sandbox.state.organization('contoso')!.endpoints.get(id)!;
    const value = endpoint.authorization.parameters['serviceprincipalkey'];
    const latest = storedVersions(sandbox, id).at(-1)!;
    expect(value).toBe(latest.value);
    // One live credential: the current one; the orphan of the lost answer and the old one are gone.
    expect(app.passwordCredentials.map((p) => p.keyId)).toEqual([latest.tags['keyId']]);
    expect(app.passwordCredentials.map((p) => p.keyId)).not.toContain(original);
    expect(endpoint.isReady).toBe(true);
    expect(sandbox.state.requestLog.filter((e) => e.fault !== undefined).length).toBeGreaterThan(0);
    expectNoSecrets(lines.join('\n'), sandbox.state.allSecretValues(), 'the log');
  });

  it('the sandbox refuses an assertion no federated credential matches (AADSTS700213) and a tenant without consent (AADSTS700016)', async () => {
    const sandbox = fixture.sandbox;
    const home = new ClientSecretCredential(
      sandbox.state.tenantId,
      sandbox.env['AZURE_CLIENT_ID']!,
      sandbox.env['AZURE_CLIENT_SECRET']!,
      { authorityHost: sandbox.urls.authority, disableInstanceDiscovery: true },
    );
    const tokenIn = (tenantId: string) =>
      createTenantCredential({
        home,
        tenantId,
        appClientId: sandbox.env['MULTI_TENANT_APP_CLIENT_ID']!,
        cloud: 'AzureCloud',
        authorityHost: sandbox.urls.authority,
        disableInstanceDiscovery: true,
      }).getToken('https://graph.microsoft.com/.default');
    const fabrikam = tenantOf(sandbox, 'fabrikam').tenantId;
    await expect(tokenIn(fabrikam)).resolves.toMatchObject({ token: expect.any(String) });
    await expect(tokenIn(tenantOf(sandbox, 'northwind').tenantId)).rejects.toThrow(/AADSTS700016/);
    const multiTenant = sandbox.state.apps.get(stableGuid('app-object', 'remediator-multi-tenant'))!;
    multiTenant.federatedIdentityCredentials[0]!.subject = stableGuid('someone else');
    await expect(tokenIn(fabrikam)).rejects.toThrow(/AADSTS700213/);
  });

  it('preflight: a row per tenant (consent) and the apps of its connections checked there, a failure naming the tenant and the fix', async () => {
    const sandbox = fixture.sandbox;
    const { deps, settings } = buildPreflight(loadConfig(sandbox.env));
    const report = await runPreflight(deps, settings);
    const fabrikam = tenantOf(sandbox, 'fabrikam').tenantId;
    const northwind = tenantOf(sandbox, 'northwind').tenantId;
    const row = (name: string, target: string) =>
      report.checks.find((c) => c.name === name && c.target.includes(target));
    expect(row('tenant consent', fabrikam)).toMatchObject({ status: 'ok' });
    expect(row('app owned by identity', `1 app in tenant ${fabrikam}`)).toMatchObject({ status: 'ok' });
    const missing = row('tenant consent', northwind);
    expect(missing).toMatchObject({ status: 'missing', detail: expect.stringContaining('AADSTS700016') });
    expect(missing?.fix).toContain(`https://login.microsoftonline.com/${northwind}/adminconsent?client_id=`);
    // Fabrikam's app is not checked in the home tenant (where it would look missing).
    expect(
      report.checks.filter((c) => c.target.includes('sp-fabrikam-deploy') && !c.target.includes(fabrikam)),
    ).toEqual([]);
    expect(report.ok).toBe(false);
  });

  it('preflight: an app of a consented tenant that the multi-tenant app does not own is missing, naming the tenant', async () => {
    const sandbox = fixture.sandbox;
    appIn(tenantOf(sandbox, 'fabrikam'), 'fabrikam-deploy').owners = [];
    const { deps, settings } = buildPreflight(loadConfig(sandbox.env));
    const report = await runPreflight(deps, settings);
    const fabrikam = tenantOf(sandbox, 'fabrikam').tenantId;
    const row = report.checks.find((c) => c.name === 'app owned by identity' && c.target.includes(fabrikam));
    expect(row).toMatchObject({ status: 'missing', target: expect.stringContaining('sp-fabrikam-deploy') });
  });
});
