/**
 * Findings and rotations that depend on how Microsoft Graph behaves, through the composition root
 * (the real Graph client, Key Vault and Azure DevOps clients) against the sandbox's `graph-findings`
 * scenario: app management policy precedence (an app's own policy replaces the tenant default),
 * addPassword refusals classified by their code, certificate-based connections judged by the app's
 * keyCredentials, and a connection whose app lives in another tenant.
 */
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { rotateConnection } from '../../src/remediation/rotation';
import { runRemediation, type RunResult } from '../../src/remediation/run';
import type { ConnectionReport } from '../../src/remediation/report';
import { createLogger } from '../../src/telemetry';
import { engineFor, entryFor, scenarioCases, type ScenarioCase } from '../helpers/engineSandbox';

const DAY_MS = 24 * 3600 * 1000;
const log = createLogger(() => undefined, 'error');
const SETTINGS = { OLD_SECRET_RETENTION_HOURS: '0', SECRET_LIFETIME_DAYS: '90' };

function caseOf(cases: Map<string, ScenarioCase>, label: string): ScenarioCase {
  const c = cases.get(label);
  if (!c) throw new Error(`The graph-findings scenario has no case '${label}'.`);
  return c;
}

function addPasswordCalls(sandbox: Sandbox, appObjectId: string, from = 0): number[] {
  return sandbox.state.requestLog
    .slice(from)
    .filter((e) => e.service === 'graph' && e.method === 'POST' && e.path.includes(appObjectId))
    .filter((e) => /addPassword$/i.test(e.path))
    .map((e) => e.status);
}

describe('graph-findings: one run', () => {
  let sandbox: Sandbox;
  let cases: Map<string, ScenarioCase>;
  let run: RunResult;
  const entry = (label: string): ConnectionReport => entryFor(run.report, caseOf(cases, label).connectionId);

  beforeAll(async () => {
    sandbox = await startSandbox({ scenario: 'graph-findings' });
    cases = scenarioCases(sandbox);
    const engine = engineFor(sandbox, log, { settings: SETTINGS });
    run = await runRemediation(engine.deps, engine.settings);
  });

  afterAll(async () => {
    await sandbox?.stop();
  });

  test("an app's own policy (restricting nothing) exempts it from the tenant default's block: rotated", () => {
    expect(entry('app-policy-exempts-from-tenant-default')).toMatchObject({
      finding: 'expiring',
      action: 'rotate-secret',
      outcome: 'succeeded',
    });
  });

  test('without a policy of its own the tenant default applies: blocked-by-policy, nothing added', () => {
    const e = entry('tenant-default-blocks-passwords');
    expect(e).toMatchObject({ finding: 'blocked-by-policy', action: 'report' });
    expect(e.diagnosis?.kind).toBe('password-policy');
    const app = caseOf(cases, 'tenant-default-blocks-passwords').app!;
    expect(addPasswordCalls(sandbox, app.id)).toEqual([]);
  });

  test("an app's own lifetime cap is honoured, the tenant's block not inherited", () => {
    const e = entry('app-policy-caps-lifetime');
    expect(e).toMatchObject({ finding: 'expiring', action: 'rotate-secret', outcome: 'succeeded' });
    const days = (Date.parse(e.newSecretExpiresAt ?? '') - sandbox.state.now().getTime()) / DAY_MS;
    expect(days).toBeGreaterThan(59);
    expect(days).toBeLessThanOrEqual(60);
  });

  test('the personal-account cap of 2 passwords: blocked-by-policy with the password-limit diagnosis', () => {
    const e = entry('personal-account-password-limit');
    expect(e).toMatchObject({ finding: 'blocked-by-policy', outcome: 'failed' });
    expect(e.diagnosis?.kind).toBe('password-limit');
    expect(caseOf(cases, 'personal-account-password-limit').app!.passwordCredentials).toHaveLength(2);
  });

  test('a certificate ending within the window: rotated through a Key Vault certificate, no secret added', () => {
    const c = caseOf(cases, 'certificate-expiring');
    const e = entry('certificate-expiring');
    expect(e).toMatchObject({
      finding: 'expiring',
      action: 'rotate-secret',
      outcome: 'succeeded',
      phase: 'completed',
    });
    expect(e.diagnosis?.kind).toBe('certificate-expiring');
    const keys = c.app!.keyCredentials!;
    const ours = (k: { displayName: string | null }) => k.displayName?.startsWith('sc-remediator ') === true;
    const old = keys.find((k) => !ours(k));
    expect(e.diagnosis?.cause).toContain(old!.customKeyIdentifier!);
    expect(Date.parse(e.secretExpiresAt ?? '')).toBe(Date.parse(old!.endDateTime));
    // The new certificate: Key Vault's (its DER in the app), marked, on the app; the old one, still
    // valid and not known to be this connection's alone, kept until it expires.
    const version = sandbox.state.vault.certificates.get(`sc-remediator-cert-${c.connectionId}`)?.versions[0];
    const added = keys.find(ours);
    expect(added?.key).toBe(version?.cer);
    expect(keys).toHaveLength(2);
    // The connection holds the PEM of that version, private key included; TestConnection used it.
    const stored = c.endpoint.authorization.parameters['servicePrincipalCertificate'] ?? '';
    const pem = sandbox.state.vault.secrets.get(`sc-remediator-cert-${c.connectionId}`)?.versions[0]?.value;
    expect(stored).toBe(pem);
    expect(stored).toMatch(/PRIVATE KEY-----[\s\S]*BEGIN CERTIFICATE/);
    expect(c.endpoint.authorization.parameters['authenticationType']).toBe('spnCertificate');
    expect(c.endpoint.isReady).toBe(true);
    // The app's (longer-lived) password is not what the certificate connection uses.
    expect(addPasswordCalls(sandbox, c.app!.id)).toEqual([]);
    expect(c.app!.passwordCredentials).toHaveLength(1);
  });

  test('a certificate lasting past the window: healthy, nothing to do', () => {
    expect(entry('certificate-valid')).toMatchObject({ finding: 'healthy', action: 'none' });
  });

  test('an app in another tenant: unsupported, naming both tenants, never healthy or app-missing', () => {
    const c = caseOf(cases, 'app-in-another-tenant');
    const e = entry('app-in-another-tenant');
    expect(e).toMatchObject({ finding: 'unsupported', action: 'report' });
    expect(e.diagnosis?.kind).toBe('other-tenant');
    expect(e.diagnosis?.cause).toContain(sandbox.state.tenantId);
    expect(e.diagnosis?.cause).toContain(c.endpoint.authorization.parameters['tenantid']);
  });
});

describe('graph-findings: addPassword refusals', () => {
  let sandbox: Sandbox;
  let cases: Map<string, ScenarioCase>;

  beforeEach(async () => {
    sandbox = await startSandbox({ scenario: 'graph-findings' });
    cases = scenarioCases(sandbox);
  });

  afterEach(async () => {
    await sandbox?.stop();
  });

  test('an unknown 400 is an error carrying its code, not blocked-by-policy', async () => {
    const c = caseOf(cases, 'app-policy-exempts-from-tenant-default');
    sandbox.faults.setRules([
      { service: 'graph', method: 'POST', path: 'addPassword$', kind: 'server-error', status: 400, rate: 1 },
    ]);
    const engine = engineFor(sandbox, log, { settings: SETTINGS });
    const { report } = await runRemediation(engine.deps, engine.settings, { connectionId: c.connectionId });
    const e = entryFor(report, c.connectionId);
    expect(e.outcome).toBe('failed');
    expect(e.finding).not.toBe('blocked-by-policy');
    expect(e.diagnosis?.kind ?? 'none').not.toMatch(/^password-/);
    expect(e.error).toMatch(/Graph 400 ServiceUnavailable/);
  });

  test("addPassword's answer lost: the credential it added (value never seen) is removed, and it asks once more", async () => {
    const c = caseOf(cases, 'app-policy-exempts-from-tenant-default');
    const app = c.app!;
    const before = new Set(app.passwordCredentials.map((p) => p.keyId));
    sandbox.faults.setRules([
      { service: 'graph', method: 'POST', path: 'addPassword$', kind: 'answer-lost', rate: 1, maxCount: 1 },
    ]);
    const engine = engineFor(sandbox, log, { settings: SETTINGS });
    const { report } = await runRemediation(engine.deps, engine.settings, { connectionId: c.connectionId });
    const e = entryFor(report, c.connectionId);
    expect(e).toMatchObject({ action: 'rotate-secret', outcome: 'succeeded' });
    expect(e.steps?.join('\n')).toMatch(/addPassword's answer was lost, so was its value/);
    // No orphan: the only new credential is the one Key Vault holds and the connection uses.
    const added = app.passwordCredentials.filter((p) => !before.has(p.keyId));
    expect(added).toHaveLength(1);
    expect(added[0]?.secretText).toBe(c.endpoint.authorization.parameters['serviceprincipalkey']);
  });

  test('a lifetime cap the plan did not know: the policy is read again and the secret asked for within it, once', async () => {
    const c = caseOf(cases, 'app-policy-caps-lifetime');
    const engine = engineFor(sandbox, log, { settings: SETTINGS });
    const from = sandbox.state.requestLog.length;
    const result = await rotateConnection(
      {
        organizationUrl: engine.settings.organizations[0]!.url,
        project: c.endpoint.serviceEndpointProjectReferences[0]!.projectReference.id,
        connectionId: c.connectionId,
        previousKeyIds: [],
        // As planned before the policy was assigned: no cap known.
        passwordPolicy: { additionBlocked: false },
        // The plan's entitlement finding (its stored secret works: TestConnection proves possession).
        entitlement: { appId: c.app!.appId, how: 'proof:test-connection-ok' },
      },
      engine.deps,
      { ...engine.settings, secretLifetimeDays: 90 },
    );
    expect(result.outcome).toBe('succeeded');
    expect(addPasswordCalls(sandbox, c.app!.id, from)).toEqual([400, 200]);
    expect(result.steps.join('\n')).toMatch(
      /refused 90 days: asked again within the policy's cap of 60 days/,
    );
    const days = (Date.parse(result.secretExpiresAt ?? '') - sandbox.state.now().getTime()) / DAY_MS;
    expect(days).toBeLessThanOrEqual(60);
  });

  test('a lifetime cap that cannot be read (no Policy.Read.All): blocked-by-policy, the diagnosis says how to fix it', async () => {
    const identity = sandbox.state.identities.get('remediator')!;
    identity.graphPermissions = identity.graphPermissions.filter((p) => p !== 'Policy.Read.All');
    const c = caseOf(cases, 'app-policy-caps-lifetime');
    const engine = engineFor(sandbox, log, { settings: SETTINGS });
    const { report } = await runRemediation(engine.deps, engine.settings, { connectionId: c.connectionId });
    const e = entryFor(report, c.connectionId);
    expect(e).toMatchObject({ finding: 'blocked-by-policy', outcome: 'failed' });
    expect(e.diagnosis).toMatchObject({
      kind: 'password-lifetime',
      code: 'CredentialInvalidLifetimeAsPerAppPolicy',
    });
    expect(e.diagnosis?.nextStep).toMatch(/Policy\.Read\.All/);
    expect(addPasswordCalls(sandbox, c.app!.id)).toEqual([400]);
  });
});
