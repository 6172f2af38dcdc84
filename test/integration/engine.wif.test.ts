/**
 * Conversion to workload identity federation, its revert, retirement of unrecoverable connections
 * and the remediation policy, through the product's composition root (the real SDK clients) against
 * the sandbox's default scenario, with Azurite for the locks and the run ledger:
 * - nothing is converted or retired without an explicit policy or request, but convertible
 *   connections are noted;
 * - Azure DevOps' own conversion (Automatic, one project) and its revert within the 7-day window;
 * - the federated-credential conversion (Manual, shared), with the Entra issuer and with the older
 *   Azure DevOps issuer the service may still return, and its revert from the Key Vault secret;
 * - a conversion that fails midway (either path) leaves the connection working on its secret;
 * - retirement with the ledger record (no secret in it), without the ledger (refused), by age;
 * - each policy choice.
 */
import type { Azurite } from '../../sandbox/azurite';
import { checkClientSecret } from '../../sandbox/credentials';
import { guidToBase64Url } from '../../sandbox/federation';
import type { Sandbox } from '../../sandbox/index';
import type { AppRecord, EndpointRecord } from '../../sandbox/model';
import { createBlobServiceClient } from '../../src/clients/blobLeaseLock';
import { createBlobRunLedger, DEFAULT_LEDGER_CONTAINER } from '../../src/clients/runLedger';
import type { RunLedger } from '../../src/remediation/ports';
import type { Engine } from '../../src/composition';
import type { ConversionRecord } from '../../src/remediation/ports';
import type { ConnectionReport, RunReport } from '../../src/remediation/report';
import { runRemediation, type RunOptions, type RunResult } from '../../src/remediation/run';
import { createLogger } from '../../src/telemetry';
import {
  engineFor,
  entryFor,
  expectNoSecrets,
  passwordKeyId,
  requestsTouching,
  sandboxClock,
  scenarioCases,
  snapshot,
  type ScenarioCase,
} from '../helpers/engineSandbox';
import { useSandbox, type SandboxFixture } from '../helpers/useSandbox';

const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;

interface World {
  sandbox: Sandbox;
  azurite: Azurite;
  cases: Map<string, ScenarioCase>;
  lines: string[];
}

/** The default scenario and Azurite for the enclosing describe (`tenant: 'test'`: a tenant per test). */
function useWorld(tenant: 'block' | 'test' = 'block'): SandboxFixture {
  return useSandbox({ scenario: 'default', azurite: true, tenant });
}

/** What the tests of a block read: the running tenant and Azurite, the scenario's cases, log lines. */
function world(fixture: SandboxFixture): World {
  const { sandbox, azurite } = fixture;
  return { sandbox, azurite, cases: scenarioCases(sandbox), lines: [] };
}

/** The engine as the product builds it; sleeps move the sandbox clock (fast verification backoff). */
function engine(w: World, settings: Record<string, string> = {}, withStorage = true): Engine {
  const e = engineFor(
    w.sandbox,
    createLogger((level, line) => w.lines.push(`${level}: ${line}`), 'debug'),
    {
      settings: { ...(withStorage ? { AzureWebJobsStorage: w.azurite.connectionString } : {}), ...settings },
      clock: sandboxClock(w.sandbox, true),
    },
  );
  e.settings.verifyInitialDelayMs = 500;
  e.settings.verifyAttempts = 3;
  return e;
}

async function run(
  w: World,
  settings: Record<string, string> = {},
  options: RunOptions = {},
): Promise<RunResult> {
  const e = engine(w, settings, settings['__noStorage'] !== 'true');
  return runRemediation(e.deps, e.settings, options);
}

function policy(rules: object[], extra: object = {}): string {
  return JSON.stringify({ rules, ...extra });
}

function caseOf(w: World, label: string): ScenarioCase {
  const c = w.cases.get(label);
  if (!c) throw new Error(`no case ${label}`);
  return c;
}

function appOf(c: ScenarioCase): AppRecord {
  if (!c.app) throw new Error(`case ${c.label} has no app`);
  return c.app;
}

function param(ep: EndpointRecord, name: string): string | null | undefined {
  const key = Object.keys(ep.authorization.parameters).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : ep.authorization.parameters[key];
}

function conversionRecord(w: World, connectionId: string): ConversionRecord | undefined {
  const secret = w.sandbox.state.vault.secrets.get(`sc-remediator-wif-${connectionId}`.toLowerCase());
  const latest = secret?.versions[secret.versions.length - 1];
  return latest ? (JSON.parse(latest.value) as ConversionRecord) : undefined;
}

function rotationSecret(w: World, connectionId: string): string | undefined {
  const secret = w.sandbox.state.vault.secrets.get(`sc-remediator-${connectionId}`.toLowerCase());
  return secret?.versions[secret.versions.length - 1]?.value;
}

/** The connection works on its stored secret (compared without printing it). */
function worksOnSecret(w: World, c: ScenarioCase): boolean {
  const key = param(c.endpoint, 'serviceprincipalkey') ?? undefined;
  return (
    c.endpoint.authorization.scheme === 'ServicePrincipal' &&
    c.endpoint.isReady &&
    checkClientSecret(w.sandbox.state, appOf(c).appId, key).ok
  );
}

/** The app holds the federated credential the connection's issuer and subject name. */
function hasMatchingFederatedCredential(c: ScenarioCase): boolean {
  const issuer = param(c.endpoint, 'workloadIdentityFederationIssuer');
  const subject = param(c.endpoint, 'workloadIdentityFederationSubject');
  return appOf(c).federatedIdentityCredentials.some(
    (f) => f.issuer === issuer && f.subject === subject && f.audiences.includes('api://AzureADTokenExchange'),
  );
}

function ledgerOf(w: World): RunLedger {
  return createBlobRunLedger(
    createBlobServiceClient({ AzureWebJobsStorage: w.azurite.connectionString }).getContainerClient(
      DEFAULT_LEDGER_CONTAINER,
    ),
  );
}

function noSecretsAnywhere(w: World, reports: unknown[], before: string[]): void {
  const secrets = new Set([...before, ...w.sandbox.state.allSecretValues()]);
  expectNoSecrets(JSON.stringify(reports), secrets, 'the reports');
  expectNoSecrets(w.lines.join('\n'), secrets, 'log lines');
}

function entry(w: World, report: RunReport, label: string): ConnectionReport {
  return entryFor(report, caseOf(w, label).connectionId);
}

describe('without an explicit policy or flag, nothing is converted or retired', () => {
  const fixture = useWorld();
  let w: World;
  let result: RunResult;
  let dry: RunResult;
  let ficsBefore: Map<string, number>;

  beforeAll(async () => {
    w = world(fixture);
    ficsBefore = new Map(
      [...w.sandbox.state.apps.values()].map((a) => [a.id, a.federatedIdentityCredentials.length]),
    );
    const healthy = caseOf(w, 'healthy');
    dry = await run(w, {}, { connectionId: healthy.connectionId, intent: 'convert', dryRun: true });
    result = await run(w, { OLD_SECRET_RETENTION_HOURS: '0' });
  });

  test('no conversion, no retirement, no federated credential, no delete', () => {
    const actions = result.report.connections.map((c) => c.action);
    expect(actions).not.toContain('convert-to-wif');
    expect(actions).not.toContain('delete');
    const log = w.sandbox.state.requestLog;
    expect(log.filter((r) => r.query['operation'] === 'ConvertAuthenticationScheme')).toEqual([]);
    expect(log.filter((r) => r.method === 'DELETE')).toEqual([]);
    expect(log.filter((r) => /federatedIdentityCredentials/i.test(r.path) && r.method !== 'GET')).toEqual([]);
    for (const app of w.sandbox.state.apps.values())
      expect(app.federatedIdentityCredentials).toHaveLength(ficsBefore.get(app.id) ?? 0);
    for (const c of w.cases.values()) expect(conversionRecord(w, c.connectionId)).toBeUndefined();
  });

  test('convertible connections are noted beside their finding, with the path they would take', () => {
    expect(entry(w, result.report, 'healthy')).toMatchObject({
      finding: 'healthy',
      convertible: true,
      conversionPath: 'federated-credential',
    });
    expect(entry(w, result.report, 'shared-across-projects')).toMatchObject({
      convertible: true,
      conversionPath: 'federated-credential',
    });
    // Automatic and one project: Azure DevOps' own conversion. (Rotated in this run: now Manual.)
    const dryWarehouse = entry(w, dry.report, 'healthy');
    expect(dryWarehouse.convertible).toBe(true);
    for (const label of ['workload-identity', 'managed-identity', 'app-deleted', 'failed-app-disabled'])
      expect(entry(w, result.report, label).convertible).toBeUndefined();
    expect(result.report.summary.convertible).toBe(
      result.report.connections.filter((c) => c.convertible).length,
    );
    expect(result.report.summary.convertible).toBeGreaterThan(5);
  });

  test('a connection whose app is gone is a retirement candidate, reported, not deleted', () => {
    const e = entry(w, result.report, 'app-deleted');
    expect(e).toMatchObject({
      finding: 'app-missing',
      action: 'report',
      outcome: 'skipped',
      retirable: true,
    });
    expect(e.reason).toMatch(/retirement is off \(ENABLE_RETIREMENT\)/);
    expect(
      w.sandbox.state.organization('contoso')!.endpoints.has(caseOf(w, 'app-deleted').connectionId),
    ).toBe(true);
  });

  test('an explicit convert in a dry run plans it and writes nothing', () => {
    const e = entry(w, dry.report, 'healthy');
    expect(e).toMatchObject({ action: 'convert-to-wif', outcome: 'planned' });
    expect(e.steps?.[0]).toMatch(/^Rotate the secret first/);
    expect(dry.report.connections).toHaveLength(1);
  });
});

describe("Azure DevOps' own conversion of an Automatic connection (policy convert-to-wif), and its revert", () => {
  const fixture = useWorld();
  let w: World;
  let c: ScenarioCase;
  let first: RunResult;
  let secretsBefore: string[];
  const rules = policy([
    { organization: 'contoso', project: 'data', connection: 'data-warehouse-*', action: 'convert-to-wif' },
  ]);

  beforeAll(async () => {
    w = world(fixture);
    c = caseOf(w, 'automatic-expiring-other-password');
    secretsBefore = w.sandbox.state.allSecretValues();
    first = await run(w, { REMEDIATION_POLICY: rules }, { connectionId: c.connectionId });
  });

  test('converted with operation=ConvertAuthenticationScheme and verified; the secret is kept for the revert window', () => {
    const e = entryFor(first.report, c.connectionId);
    expect(e).toMatchObject({
      finding: 'expiring',
      action: 'convert-to-wif',
      outcome: 'succeeded',
      policy: 'convert-to-wif',
      policyRule: 1,
      conversion: { path: 'azure-devops', phase: 'verified' },
    });
    const puts = requestsTouching(w.sandbox, [c.connectionId]).filter(
      (r) => r.service === 'devops' && r.method === 'PUT',
    );
    expect(puts.map((r) => r.query['operation'])).toEqual(['ConvertAuthenticationScheme']);
    expect(c.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');
    expect(c.endpoint.data['creationMode']).toBe('Automatic');
    expect(c.endpoint.data['revertSchemeDeadline']).toBe(e.conversion?.revertDeadline);
    expect(hasMatchingFederatedCredential(c)).toBe(true);
    // Azure DevOps added the credential itself: this service made no Graph write.
    expect(w.sandbox.state.writes('graph')).toEqual([]);
    // Both passwords stay: Azure DevOps' own (for its revert) and the other team's.
    expect(
      appOf(c)
        .passwordCredentials.map((p) => p.keyId)
        .sort(),
    ).toEqual([passwordKeyId('data-warehouse', 'ado'), passwordKeyId('data-warehouse', 'adf-etl')].sort());
    expect(e.steps).toEqual(
      expect.arrayContaining([expect.stringMatching(/^old secret kept until .*revert window\)$/)]),
    );
    expect(conversionRecord(w, c.connectionId)).toMatchObject({ phase: 'verified', path: 'azure-devops' });
    // The subject Azure DevOps gave out, in the 2025 Entra issuer format, is what the report carries.
    expect(e.conversion?.issuer).toBe(`https://login.microsoftonline.com/${w.sandbox.state.tenantId}/v2.0`);
    expect(e.conversion?.subject).toBe(
      `/eid1/c/pub/t/${guidToBase64Url(w.sandbox.state.tenantId)}/a/rISbSSETf0KqFyZ8ppdXmA/sc/${w.sandbox.state.organization('contoso')!.id}/${c.connectionId}`,
    );
    noSecretsAnywhere(w, [first], secretsBefore);
  });

  test('the next run finds it converted and waits for the retention period and the revert window', async () => {
    const again = await run(w, { REMEDIATION_POLICY: rules }, { connectionId: c.connectionId });
    const e = entryFor(again.report, c.connectionId);
    expect(e).toMatchObject({ finding: 'healthy', action: 'none', conversion: { phase: 'verified' } });
    expect(e.reason).toMatch(/^Converted to workload identity federation; the old secret is removed after /);
  });

  test('revert on request within the window: Azure DevOps restores the secret and removes its credential', async () => {
    const reverted = await run(
      w,
      { REMEDIATION_POLICY: rules },
      { connectionId: c.connectionId, intent: 'revert' },
    );
    const e = entryFor(reverted.report, c.connectionId);
    expect(e).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'succeeded',
      conversion: { phase: 'reverted' },
    });
    expect(worksOnSecret(w, c)).toBe(true);
    expect(c.endpoint.data['revertSchemeDeadline']).toBeUndefined();
    expect(appOf(c).federatedIdentityCredentials).toEqual([]);
    const ops = requestsTouching(w.sandbox, [c.connectionId])
      .filter((r) => r.service === 'devops' && r.method === 'PUT')
      .map((r) => r.query['operation']);
    expect(ops).toEqual(['ConvertAuthenticationScheme', 'ConvertAuthenticationScheme']);
  });

  test('a reverted conversion is not redone by the policy, only on request', async () => {
    const next = await run(w, { REMEDIATION_POLICY: rules }, { connectionId: c.connectionId });
    const e = entryFor(next.report, c.connectionId);
    expect(e.action).not.toBe('convert-to-wif');
    expect(e.reason).toMatch(/Not converted again: the last conversion was reverted/);
    expect(c.endpoint.authorization.scheme).toBe('ServicePrincipal');
  });
});

describe("after Azure DevOps' revert window: no revert, and the superseded secret is cleaned up", () => {
  const fixture = useWorld();
  let w: World;
  let c: ScenarioCase;
  const rules = policy([{ connection: 'data-warehouse-prod', action: 'convert-to-wif' }]);

  beforeAll(async () => {
    w = world(fixture);
    c = caseOf(w, 'automatic-expiring-other-password');
    await run(w, { REMEDIATION_POLICY: rules }, { connectionId: c.connectionId });
    w.sandbox.state.advanceClock(8 * DAY_MS);
  });

  test('revert is refused once the window has closed, and nothing changes', async () => {
    const before = snapshot(c.endpoint);
    const r = await run(w, {}, { connectionId: c.connectionId, intent: 'revert' });
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({ action: 'report', outcome: 'skipped' });
    expect(e.reason).toMatch(/^Cannot revert: Azure DevOps' revert window closed on /);
    expect(c.endpoint).toEqual(before);
  });

  test('the policy run completes the conversion: the expired password goes, the other team’s stays', async () => {
    const r = await run(w, { REMEDIATION_POLICY: rules }, { connectionId: c.connectionId });
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'succeeded',
      conversion: { phase: 'completed' },
    });
    expect(appOf(c).passwordCredentials.map((p) => p.keyId)).toEqual([
      passwordKeyId('data-warehouse', 'adf-etl'),
    ]);
    expect(hasMatchingFederatedCredential(c)).toBe(true);
    const test = await engine(w).deps.devops.testConnection(
      `${w.sandbox.urls.devops}/contoso`,
      'data',
      await engine(w)
        .deps.devops.getConnection(`${w.sandbox.urls.devops}/contoso`, 'data', c.connectionId)
        .then((x) => x!),
    );
    expect(test.ok).toBe(true);
  });
});

describe('federated-credential conversion (Manual, shared) with the issuer and subject the service returns', () => {
  const fixture = useWorld();
  let w: World;
  let secretsBefore: string[];

  beforeAll(() => {
    w = world(fixture);
    secretsBefore = w.sandbox.state.allSecretValues();
  });

  test('explicit convert of a Manual connection: rotated first for a fallback secret, then converted and verified', async () => {
    const c = caseOf(w, 'healthy');
    const oldKey = passwordKeyId('web-prod', 'pipeline');
    const r = await run(w, {}, { connectionId: c.connectionId, intent: 'convert' });
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'succeeded',
      conversion: { path: 'federated-credential', phase: 'verified' },
    });
    expect(e.steps?.[0]).toMatch(/^rotation: added credential /);
    expect(c.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');
    expect(c.endpoint.data['creationMode']).toBe('Manual');
    expect(param(c.endpoint, 'serviceprincipalkey')).toBeUndefined();
    // The credential was added through Graph with exactly what Azure DevOps answered.
    const fics = appOf(c).federatedIdentityCredentials;
    expect(fics).toHaveLength(1);
    expect(fics[0]).toMatchObject({
      name: `sc-remediator-${c.connectionId}`,
      issuer: `https://login.microsoftonline.com/${w.sandbox.state.tenantId}/v2.0`,
      subject: param(c.endpoint, 'workloadIdentityFederationSubject'),
      audiences: ['api://AzureADTokenExchange'],
    });
    const graphWrites = requestsTouching(w.sandbox, [appOf(c).id]).filter((x) => x.write);
    expect(graphWrites.map((x) => `${x.method} ${x.path.split('/').pop() ?? ''}`)).toEqual([
      'POST addPassword',
      'POST federatedIdentityCredentials',
    ]);
    // Old secrets stay until the retention period: the one Alice set and the fallback in Key Vault.
    const record = conversionRecord(w, c.connectionId)!;
    expect(record.previousKeyIds).toContain(oldKey);
    expect(appOf(c).passwordCredentials.map((p) => p.keyId)).toEqual(
      expect.arrayContaining(record.previousKeyIds),
    );
    expect(rotationSecret(w, c.connectionId)).toBeDefined();
    noSecretsAnywhere(w, [r], secretsBefore);
  });

  test('revert before the retention period ends: the Key Vault secret goes back in, the federated credential goes', async () => {
    const c = caseOf(w, 'healthy');
    const r = await run(w, {}, { connectionId: c.connectionId, intent: 'revert' });
    expect(entryFor(r.report, c.connectionId)).toMatchObject({
      outcome: 'succeeded',
      conversion: { phase: 'reverted' },
    });
    expect(worksOnSecret(w, c)).toBe(true);
    expect(param(c.endpoint, 'serviceprincipalkey') === rotationSecret(w, c.connectionId)).toBe(true);
    expect(appOf(c).federatedIdentityCredentials).toEqual([]);
  });

  test('a service still giving out the Azure DevOps issuer: the credential is created from its answer', async () => {
    w.sandbox.state.federationIssuer = 'azure-devops';
    const c = caseOf(w, 'shared-across-projects');
    const rules = policy([{ connection: 'contoso-shared-monitoring', action: 'convert-to-wif' }]);
    const r = await run(
      w,
      { REMEDIATION_POLICY: rules, OLD_SECRET_RETENTION_HOURS: '24' },
      { connectionId: c.connectionId },
    );
    expect(entryFor(r.report, c.connectionId)).toMatchObject({
      outcome: 'succeeded',
      conversion: {
        path: 'federated-credential',
        phase: 'verified',
        issuer: `https://vstoken.dev.azure.com/${w.sandbox.state.organization('contoso')!.id}`,
        subject: 'sc://contoso/platform/contoso-shared-monitoring',
      },
    });
    expect(hasMatchingFederatedCredential(c)).toBe(true);
    expect(c.endpoint.serviceEndpointProjectReferences.map((p) => p.projectReference.name)).toEqual([
      'platform',
      'web',
    ]);

    // 25 h later the policy run removes the superseded secrets (ours and the one recorded in use).
    w.sandbox.state.advanceClock(25 * HOUR_MS);
    const later = await run(
      w,
      { REMEDIATION_POLICY: rules, OLD_SECRET_RETENTION_HOURS: '24' },
      { connectionId: c.connectionId },
    );
    expect(entryFor(later.report, c.connectionId)).toMatchObject({ conversion: { phase: 'completed' } });
    expect(appOf(c).passwordCredentials).toEqual([]);
    expect(hasMatchingFederatedCredential(c)).toBe(true);
    w.sandbox.state.federationIssuer = 'entra';
  });
});

describe('a conversion that fails midway leaves the connection working on its secret', () => {
  const fixture = useWorld();
  let w: World;

  beforeAll(() => {
    w = world(fixture);
  });

  test('federated-credential path: Graph refuses the credential after the switch; the Key Vault secret goes back', async () => {
    const c = caseOf(w, 'healthy');
    w.sandbox.faults.addRule({
      service: 'graph',
      method: 'POST',
      path: 'federatedIdentityCredentials$',
      kind: 'server-error',
      status: 400,
      rate: 1,
    });
    const r = await run(w, {}, { connectionId: c.connectionId, intent: 'convert' });
    w.sandbox.faults.clear();
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({ action: 'convert-to-wif', outcome: 'failed', conversion: { phase: 'failed' } });
    expect(e.error).toMatch(/put back on its secret/);
    expect(worksOnSecret(w, c)).toBe(true);
    expect(param(c.endpoint, 'serviceprincipalkey') === rotationSecret(w, c.connectionId)).toBe(true);
    expect(appOf(c).federatedIdentityCredentials).toEqual([]);
    expect(e.steps).toEqual(
      expect.arrayContaining([
        'updated the connection to WorkloadIdentityFederation (creationMode Manual, no secret)',
        'put the secret kept in Key Vault back into the connection (ServicePrincipal, Manual)',
      ]),
    );
    // A failed conversion is not retried by policy on its own.
    const next = await run(
      w,
      { REMEDIATION_POLICY: policy([{ connection: c.name, action: 'convert-to-wif' }]) },
      {
        connectionId: c.connectionId,
      },
    );
    expect(entryFor(next.report, c.connectionId).reason).toMatch(
      /Not converted again: the last conversion was failed/,
    );
  });

  test("Azure DevOps path: verification fails after the conversion; Azure DevOps' revert restores the secret", async () => {
    const c = caseOf(w, 'automatic-expiring-other-password');
    const fics = appOf(c).federatedIdentityCredentials.length;
    w.sandbox.faults.addRule({
      service: 'devops',
      method: 'POST',
      path: 'endpointproxy$',
      kind: 'server-error',
      status: 400,
      rate: 1,
      maxCount: 1,
    });
    // Approved by the operator, so the first TestConnection (the one the fault breaks) is the
    // conversion's verification, not the entitlement proof.
    const r = await run(
      w,
      {
        REMEDIATION_POLICY: policy([{ connection: c.name, action: 'convert-to-wif' }], {
          approvals: [{ connectionId: c.connectionId, appId: appOf(c).appId }],
        }),
      },
      {
        connectionId: c.connectionId,
      },
    );
    w.sandbox.faults.clear();
    const e = entryFor(r.report, c.connectionId);
    expect(e.entitlement).toMatchObject({ bound: true, how: 'approved:policy' });
    expect(e).toMatchObject({ outcome: 'failed', conversion: { path: 'azure-devops', phase: 'failed' } });
    expect(e.error).toMatch(/put back on its secret/);
    expect(worksOnSecret(w, c)).toBe(true);
    expect(c.endpoint.data['creationMode']).toBe('Automatic');
    expect(c.endpoint.revertStash).toBeUndefined();
    expect(appOf(c).federatedIdentityCredentials).toHaveLength(fics);
  });
});

describe('retirement', () => {
  const fixture = useWorld();
  let w: World;
  let secretsBefore: string[];

  beforeAll(() => {
    w = world(fixture);
    secretsBefore = w.sandbox.state.allSecretValues();
  });

  test('without the run ledger (no storage), nothing is retired even when enabled', async () => {
    const c = caseOf(w, 'app-deleted');
    const r = await run(
      w,
      { ENABLE_RETIREMENT: 'true', __noStorage: 'true' },
      { connectionId: c.connectionId },
    );
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({ action: 'report', outcome: 'skipped' });
    expect(e.reason).toMatch(/needs the run ledger \(AzureWebJobsStorage\)/);
    expect(w.sandbox.state.organization('contoso')!.endpoints.has(c.connectionId)).toBe(true);
  });

  test('ENABLE_RETIREMENT: recorded in the ledger (no secret), deleted directly with deep=false (no switch to Manual)', async () => {
    const c = caseOf(w, 'app-deleted');
    const definitionBefore = snapshot(c.endpoint);
    expect(definitionBefore.data['creationMode']).toBe('Automatic');
    const from = w.sandbox.state.requestLog.length;
    const r = await run(w, { ENABLE_RETIREMENT: 'true' });
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({ finding: 'app-missing', action: 'delete', outcome: 'succeeded' });
    expect(e.retired?.deletedAt).toBeDefined();
    expect(w.sandbox.state.organization('contoso')!.endpoints.has(c.connectionId)).toBe(false);
    const writes = requestsTouching(w.sandbox, [c.connectionId], from).filter((x) => x.write);
    // deep=false leaves Azure alone, so even an Automatic connection whose app is gone goes directly.
    expect(writes.map((x) => `${x.method} ${x.status}`)).toEqual(['DELETE 204']);
    const del = writes[0]!;
    expect(del.query).toMatchObject({
      deep: 'false',
      projectIds: definitionBefore.serviceEndpointProjectReferences[0]!.projectReference.id,
    });

    const record = await ledgerOf(w).getRetired('contoso', c.connectionId);
    expect(record).toMatchObject({
      connectionName: 'data-legacy-reporting',
      organization: 'contoso',
      projects: [{ name: 'data' }],
      deletedAt: e.retired?.deletedAt,
      runId: r.report.runId,
      definition: {
        id: c.connectionId,
        name: 'data-legacy-reporting',
        data: { creationMode: 'Automatic', subscriptionId: definitionBefore.data['subscriptionId'] },
        authorization: {
          scheme: 'ServicePrincipal',
          parameters: { serviceprincipalid: param(definitionBefore, 'serviceprincipalid') },
        },
      },
    });
    expect(record?.definition.authorization.parameters).not.toHaveProperty('serviceprincipalkey');
    expectNoSecrets(
      JSON.stringify(record),
      new Set([...secretsBefore, ...w.sandbox.state.allSecretValues()]),
      'the ledger record',
    );
    noSecretsAnywhere(w, [r], secretsBefore);

    // Only the connection whose app is gone: failing ones are not retired for age (RETIRE_FAILED_AFTER_DAYS 0).
    expect(r.report.connections.filter((x) => x.action === 'delete').map((x) => x.connectionName)).toEqual([
      'data-legacy-reporting',
    ]);
  });

  test('an explicit retire of a working connection is refused; of a failing one, done', async () => {
    const healthy = caseOf(w, 'healthy');
    const refused = await run(w, {}, { connectionId: healthy.connectionId, intent: 'retire' });
    expect(entryFor(refused.report, healthy.connectionId)).toMatchObject({
      action: 'report',
      outcome: 'skipped',
    });
    expect(entryFor(refused.report, healthy.connectionId).reason).toMatch(
      /^Not retired: the connection is ready/,
    );
    expect(w.sandbox.state.organization('contoso')!.endpoints.has(healthy.connectionId)).toBe(true);

    const disabled = caseOf(w, 'failed-app-disabled');
    const done = await run(w, {}, { connectionId: disabled.connectionId, intent: 'retire' });
    expect(entryFor(done.report, disabled.connectionId)).toMatchObject({
      action: 'delete',
      outcome: 'succeeded',
    });
    expect(w.sandbox.state.organization('contoso')!.endpoints.has(disabled.connectionId)).toBe(false);
    expect(await ledgerOf(w).getRetired('contoso', disabled.connectionId)).toMatchObject({
      reason: 'it is failing and its retirement was requested',
    });
  });
});

describe('retirement of connections failing past RETIRE_FAILED_AFTER_DAYS', () => {
  const fixture = useWorld();
  let w: World;
  const settings = {
    ENABLE_RETIREMENT: 'true',
    RETIRE_FAILED_AFTER_DAYS: '30',
    OLD_SECRET_RETENTION_HOURS: '0',
  };

  beforeAll(() => {
    w = world(fixture);
  });

  test('first sighting is noted; 31 days later, still failing, they are retired', async () => {
    const disabled = caseOf(w, 'failed-app-disabled');
    const noRole = caseOf(w, 'failed-no-subscription-role');
    const first = await run(w, settings);
    // The app-gone one goes at once; the failing ones are only noted.
    expect(
      first.report.connections.filter((c) => c.action === 'delete').map((c) => c.connectionName),
    ).toEqual(['data-legacy-reporting']);
    for (const c of [disabled, noRole])
      expect(entryFor(first.report, c.connectionId)).toMatchObject({ action: 'report', outcome: 'skipped' });
    const since = await ledgerOf(w).failingSince('contoso', [disabled.connectionId, noRole.connectionId]);
    expect(since.size).toBe(2);

    w.sandbox.state.advanceClock(31 * DAY_MS);
    const second = await run(w, settings);
    for (const c of [disabled, noRole]) {
      const e = entryFor(second.report, c.connectionId);
      expect(e).toMatchObject({ action: 'delete', outcome: 'succeeded' });
      expect(e.reason).toMatch(/has been failing since .* \(more than 30 days\)/);
    }
    // Connections fixed in the first run were forgotten, not retired.
    const deleted = second.report.connections
      .filter((c) => c.action === 'delete')
      .map((c) => c.connectionName)
      .sort();
    expect(deleted).toEqual(['web-experiments', 'web-legacy']);
  });
});

describe('each policy choice', () => {
  const fixture = useWorld();
  let w: World;
  let r: RunResult;
  let before: Map<string, EndpointRecord>;
  const rules = policy([
    { connection: 'web-prod-deploy', action: 'exclude' },
    { organization: 'contoso', project: 'platform', connection: 'platform-terraform', action: 'report-only' },
    {
      organization: 'https://*/contoso',
      project: 'data',
      connection: 'data-warehouse-prod',
      action: 'convert-to-wif',
    },
    { project: 'web', connection: 'contoso-shared-*', action: 'convert-to-wif' },
    { project: 'platform', connection: 'contoso-shared-*', action: 'report-only' },
  ]);

  beforeAll(async () => {
    w = world(fixture);
    before = new Map([...w.cases.values()].map((c) => [c.connectionId, snapshot(c.endpoint)]));
    r = await run(w, { REMEDIATION_POLICY: rules, OLD_SECRET_RETENTION_HOURS: '0' });
  });

  test('exclude: listed as excluded, not in the report, never read beyond the list', () => {
    const c = caseOf(w, 'healthy');
    expect(r.excluded).toEqual([
      { organization: 'contoso', connectionId: c.connectionId, connectionName: 'web-prod-deploy', rule: 1 },
    ]);
    expect(r.report.connections.some((x) => x.connectionId === c.connectionId)).toBe(false);
    expect(requestsTouching(w.sandbox, [c.connectionId, appOf(c).id, appOf(c).appId])).toEqual([]);
    expect(c.endpoint).toEqual(before.get(c.connectionId));
  });

  test('report-only: what would be done is reported, nothing is written', () => {
    const c = caseOf(w, 'manual-secret-expired');
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({
      finding: 'expired',
      action: 'report',
      outcome: 'skipped',
      policy: 'report-only',
      policyRule: 2,
    });
    expect(e.reason).toMatch(/^Policy report-only \(policy rule 2\): would rotate-secret: /);
    expect(requestsTouching(w.sandbox, [c.connectionId, appOf(c).id]).filter((x) => x.write)).toEqual([]);
  });

  test('convert-to-wif: converted; rotate (the default): rotated', () => {
    expect(entry(w, r.report, 'automatic-expiring-other-password')).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'succeeded',
      policy: 'convert-to-wif',
      policyRule: 3,
    });
    const rotated = entry(w, r.report, 'failed-secret-expired');
    expect(rotated).toMatchObject({ action: 'rotate-secret', outcome: 'succeeded' });
    expect(rotated.policy).toBeUndefined();
  });

  test('a shared connection gets the most careful choice of its projects', () => {
    const e = entry(w, r.report, 'shared-across-projects');
    expect(e).toMatchObject({ policy: 'report-only', action: 'report', policyRule: 5 });
    expect(caseOf(w, 'shared-across-projects').endpoint.authorization.scheme).toBe('ServicePrincipal');
  });

  test('an explicit request does not override report-only or exclude', async () => {
    const c = caseOf(w, 'manual-secret-expired');
    const refused = await run(
      w,
      { REMEDIATION_POLICY: rules },
      { connectionId: c.connectionId, intent: 'convert' },
    );
    const e = entryFor(refused.report, c.connectionId);
    expect(e).toMatchObject({ action: 'report', outcome: 'skipped' });
    expect(e.reason).toMatch(/report-only/);
    const excluded = caseOf(w, 'healthy');
    const ex = await run(
      w,
      { REMEDIATION_POLICY: rules },
      { connectionId: excluded.connectionId, intent: 'convert' },
    );
    expect(entryFor(ex.report, excluded.connectionId).reason).toMatch(/^Excluded by policy rule 1/);
    expect(excluded.endpoint).toEqual(before.get(excluded.connectionId));
  });
});

describe('Azure DevOps\' conversion that answers InProgress ("might take a few minutes")', () => {
  const fixture = useWorld('test');
  let w: World;
  let c: ScenarioCase;
  const rules = policy([{ connection: 'data-warehouse-prod', action: 'convert-to-wif' }]);

  beforeEach(() => {
    w = world(fixture);
    c = caseOf(w, 'automatic-expiring-other-password');
  });

  test('polled (engine clock, backoff) until converted; verified only then; the 7-day deadline recorded and kept', async () => {
    w.sandbox.state.organization('contoso')!.conversionDelayMs = 3 * 60_000;
    const startedAt = w.sandbox.state.now().getTime();
    const r = await run(w, { REMEDIATION_POLICY: rules }, { connectionId: c.connectionId });
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'succeeded',
      conversion: { path: 'azure-devops', phase: 'verified' },
    });
    expect(c.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');
    // The answer said InProgress: reads (with backoff) until done, then the verification.
    const finished = (e.steps ?? []).findIndex((s) =>
      /^Azure DevOps finished the conversion \(\d+ read/.test(s),
    );
    const verified = (e.steps ?? []).findIndex((s) => s.startsWith('verified: TestConnection'));
    expect(finished).toBeGreaterThan(-1);
    expect(verified).toBeGreaterThan(finished);
    const touching = requestsTouching(w.sandbox, [c.connectionId]).filter((x) => x.service === 'devops');
    const firstProxy = touching.findIndex((x) => x.method === 'POST');
    const put = touching.findIndex((x) => x.method === 'PUT');
    expect(
      touching.slice(put + 1, firstProxy).filter((x) => x.method === 'GET').length,
    ).toBeGreaterThanOrEqual(2);
    expect(w.sandbox.state.now().getTime() - startedAt).toBeLessThan(20 * 60_000); // bounded
    // The revert deadline is recorded, seven days out, and the old secret is kept until then.
    const record = conversionRecord(w, c.connectionId)!;
    expect(Date.parse(record.revertDeadline!)).toBeGreaterThanOrEqual(startedAt + 7 * DAY_MS);
    const keysBefore = appOf(c)
      .passwordCredentials.map((p) => p.keyId)
      .sort();
    w.sandbox.state.advanceClock(6 * DAY_MS);
    const later = await run(w, { REMEDIATION_POLICY: rules }, { connectionId: c.connectionId });
    expect(entryFor(later.report, c.connectionId).conversion?.phase).toBe('verified');
    expect(
      appOf(c)
        .passwordCredentials.map((p) => p.keyId)
        .sort(),
    ).toEqual(keysBefore);
  });

  test('a conversion that ends Failed: recorded as failed, never verified, the connection keeps its secret', async () => {
    const contoso = w.sandbox.state.organization('contoso')!;
    contoso.conversionDelayMs = 60_000;
    contoso.conversionFails = true;
    const keysBefore = appOf(c)
      .passwordCredentials.map((p) => p.keyId)
      .sort();
    const r = await run(w, { REMEDIATION_POLICY: rules }, { connectionId: c.connectionId });
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({ action: 'convert-to-wif', outcome: 'failed' });
    expect(e.error).toMatch(/Azure DevOps reports the conversion failed/);
    expect(conversionRecord(w, c.connectionId)).toMatchObject({ phase: 'failed' });
    expect(worksOnSecret(w, c)).toBe(true);
    expect(
      appOf(c)
        .passwordCredentials.map((p) => p.keyId)
        .sort(),
    ).toEqual(keysBefore);
    expect(
      requestsTouching(w.sandbox, [c.connectionId]).filter(
        (x) => x.service === 'devops' && x.method === 'POST',
      ),
    ).toEqual([]);
  });

  test('refused to a non-user caller: not converted, a diagnosis that says how, the connection untouched', async () => {
    w.sandbox.state.organization('contoso')!.conversionRequiresUser = true;
    const r = await run(w, { REMEDIATION_POLICY: rules }, { connectionId: c.connectionId });
    const e = entryFor(r.report, c.connectionId);
    expect(e).toMatchObject({ action: 'convert-to-wif', outcome: 'failed' });
    expect(e.error).toMatch(/refused its own conversion to this service's identity/);
    expect(e.error).toMatch(/Convert it as a user/);
    expect(worksOnSecret(w, c)).toBe(true);
    expect(conversionRecord(w, c.connectionId)).toMatchObject({ phase: 'failed' });
  });
});

describe('a connection the identity may not view (GET answers {id, name})', () => {
  const fixture = useWorld();
  let w: World;
  beforeAll(() => {
    w = world(fixture);
  });

  test('rotation fails with a clear diagnosis, not a TypeError, and writes nothing', async () => {
    const c = caseOf(w, 'manual-secret-expired');
    const member = w.sandbox.state
      .organization(c.organization)!
      .members.find((m) => m.identity === w.sandbox.scenario.productIdentity)!;
    member.viewConnections = false;
    const r = await run(w, {}, { connectionId: c.connectionId });
    const e = entryFor(r.report, c.connectionId);
    expect(e.outcome).toBe('failed');
    expect(e.error).toMatch(
      /without its details \(only id and name\): the identity may not view this connection/,
    );
    expect(e.error).not.toMatch(/TypeError|Cannot read properties/);
    expect(w.sandbox.state.writes()).toEqual([]);
  });
});
