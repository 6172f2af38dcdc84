/**
 * Issue 10 §1, the confused deputy (DESIGN invariant 8), end to end through the `sc-remediator`
 * command (in process, `runCli`) and the engine against the sandbox's `confused-deputy` scenario:
 * a developer creates connections in the playground project naming apps this service owns, with a
 * made-up secret (AADSTS7000215). Before the entitlement gate the service added a password to the
 * app and wrote it into the attacker's connection (or converted it, adding a federated credential).
 * Now they are reported, never given anything, while the legitimate expired connection (AADSTS7000222)
 * is still rotated unattended; an operator's approval (CLI or policy) binds; a lost binding falls
 * back to "report"; the engine refuses a stale plan or a caller that skipped the gate.
 */
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { checkClientSecret } from '../../sandbox/credentials';
import type { AppRecord, EndpointRecord } from '../../sandbox/model';
import { runCli } from '../../src/cli/main';
import { convertConnection } from '../../src/remediation/conversion';
import type { ConnectionReport, RunReport } from '../../src/remediation/report';
import type { ConnectionTarget } from '../../src/remediation/engine';
import { rotateConnection } from '../../src/remediation/rotation';
import { createLogger } from '../../src/telemetry';
import { engineFor, expectNoSecrets, scenarioCases, type ScenarioCase } from '../helpers/engineSandbox';
import { collector } from '../helpers/collector';

let sandbox: Sandbox;
let cases: Map<string, ScenarioCase>;

beforeEach(async () => {
  sandbox = await startSandbox({ scenario: 'confused-deputy', seed: 'entitlement' });
  cases = scenarioCases(sandbox);
});

afterEach(async () => {
  await sandbox?.stop();
});

function caseOf(label: string): ScenarioCase & { app: AppRecord } {
  const c = cases.get(label);
  if (!c?.app) throw new Error(`no case ${label} with an app`);
  return c as ScenarioCase & { app: AppRecord };
}

const attacker = () => caseOf('confused-deputy-manual');
const attackerAutomatic = () => caseOf('confused-deputy-automatic');
const prod = () => caseOf('legitimate-expired');
const staging = () => caseOf('legitimate-expiring-automatic');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  const out = collector();
  const err = collector();
  const code = await runCli(args, {
    stdout: out.stream,
    stderr: err.stream as unknown as NodeJS.WriteStream,
    env: { ...sandbox.env, OLD_SECRET_RETENTION_HOURS: '0', ...extra },
  });
  return { code, stdout: out.text(), stderr: err.text() };
}

async function remediate(args: string[] = [], extra: Record<string, string> = {}): Promise<RunReport> {
  const r = await cli(['remediate', '--json', ...args], extra);
  expect(r.stderr).not.toMatch(/sc-remediator:/);
  return JSON.parse(r.stdout) as RunReport;
}

function entry(report: RunReport, c: ScenarioCase): ConnectionReport {
  const e = report.connections.find((x) => x.connectionId === c.connectionId);
  if (!e) throw new Error(`${c.name} is not in the report`);
  return e;
}

const storedKey = (ep: EndpointRecord): string | undefined =>
  ep.authorization.parameters['serviceprincipalkey'] ?? undefined;

/** Whether the connection's stored secret gets a token for its app (what an attacker wants). */
const works = (c: ScenarioCase & { app: AppRecord }): boolean =>
  checkClientSecret(sandbox.state, c.app.appId, storedKey(c.endpoint)).ok;

/** addPassword calls on an app, and the markers they carried. */
function addPasswordsOn(app: AppRecord): number {
  return sandbox.state.requestLog.filter(
    (e) =>
      e.service === 'graph' && e.method === 'POST' && e.path.endsWith(`/applications/${app.id}/addPassword`),
  ).length;
}

function markedFor(app: AppRecord, connectionId: string): number {
  return app.passwordCredentials.filter((p) => p.displayName?.includes(connectionId)).length;
}

function binding(connectionId: string): Record<string, string> | undefined {
  const secret = sandbox.state.vault.secrets.get(`sc-remediator-binding-${connectionId}`.toLowerCase());
  return secret && !secret.deleted ? secret.versions.at(-1)?.tags : undefined;
}

const ATTACKER_KEY = 'not-a-secret-of-this-app~0123456789abcdef';

describe('the confused deputy: a connection naming an app it holds no secret of', () => {
  test('remediate reports it and gives it nothing; the expired legitimate connection is rotated unattended', async () => {
    const a = attacker();
    const orgUrl = sandbox.organizationUrls[0]!;
    expect(works(a)).toBe(false);
    const prodPasswordsBefore = prod().app.passwordCredentials.length;

    const report = await remediate();

    // The attacker's connection: reported, not rotated; finding unchanged (the app's only password,
    // inferred to be the one in use, has expired); how to approve it.
    const e = entry(report, a);
    expect(e).toMatchObject({ finding: 'expired', action: 'report', outcome: 'skipped' });
    expect(e.entitlement).toMatchObject({ bound: false, appId: a.app.appId });
    expect(e.entitlement?.approveCommand).toBe(
      `sc-remediator approve --connection ${a.connectionId} --organization ${orgUrl} --app ${a.app.appId}`,
    );
    expect(e.diagnosis?.nextStep).toContain('not bound to this app; approve it if it is legitimate');
    expect(e.diagnosis?.nextStep).toContain(e.entitlement?.approveCommand ?? '?');
    expect(e.diagnosis?.fixableByService).toBe(false);
    expect(e.reason).toMatch(/AADSTS7000215|proves nothing/);
    // It holds no working secret, and no credential of the app was made for it.
    expect(storedKey(a.endpoint)).toBe(ATTACKER_KEY);
    expect(works(a)).toBe(false);
    expect(markedFor(a.app, a.connectionId)).toBe(0);
    expect(binding(a.connectionId)).toBeUndefined();

    // The Automatic-looking one too.
    const b = attackerAutomatic();
    expect(entry(report, b)).toMatchObject({ action: 'report', entitlement: { bound: false } });
    expect(works(b)).toBe(false);
    expect(markedFor(b.app, b.connectionId)).toBe(0);

    // The legitimate connections: proved by TestConnection, bound, rotated.
    const p = entry(report, prod());
    expect(p).toMatchObject({ finding: 'expired', action: 'rotate-secret', outcome: 'succeeded' });
    expect(p.entitlement).toMatchObject({ bound: true, how: 'proof:expired-secret-7000222', recorded: true });
    expect(works(prod())).toBe(true);
    expect(binding(prod().connectionId)).toMatchObject({
      appId: prod().app.appId,
      how: 'proof:expired-secret-7000222',
    });
    const s = entry(report, staging());
    expect(s).toMatchObject({ action: 'rotate-secret', outcome: 'succeeded' });
    expect(s.entitlement).toMatchObject({ bound: true, how: 'proof:test-connection-ok' });
    // Exactly one password added to the production app: the legitimate connection's.
    expect(addPasswordsOn(prod().app)).toBe(1);
    expect(prod().app.passwordCredentials.length).toBeLessThanOrEqual(prodPasswordsBefore + 1);
    expectNoSecrets(JSON.stringify(report), sandbox.state.allSecretValues(), 'the report');

    // Next run: the legitimate ones are healthy (no probe needed: the record proves it); the
    // attacker's are still reported and still get nothing.
    const again = await remediate();
    expect(entry(again, prod())).toMatchObject({ finding: 'healthy', action: 'none' });
    expect(entry(again, a)).toMatchObject({ action: 'report', entitlement: { bound: false } });
    expect(addPasswordsOn(prod().app)).toBe(1);
    expect(works(a)).toBe(false);
  });

  test('a dry run shows the gate too and writes nothing', async () => {
    const report = await remediate(['--dry-run']);
    expect(entry(report, attacker())).toMatchObject({ action: 'report', entitlement: { bound: false } });
    expect(entry(report, prod())).toMatchObject({
      action: 'rotate-secret',
      outcome: 'planned',
      entitlement: { bound: true, how: 'proof:expired-secret-7000222' },
    });
    expect(sandbox.state.writes()).toEqual([]);
  });

  test('conversion to workload identity federation: no federated credential for the attacker, on either path', async () => {
    const policy = JSON.stringify({
      rules: [
        { connection: 'borrowed-*', action: 'convert-to-wif' },
        { connection: 'staging-deploy', action: 'convert-to-wif' },
      ],
    });
    const ficsBefore = [prod().app, staging().app].map((app) => app.federatedIdentityCredentials.length);
    const report = await remediate([], { REMEDIATION_POLICY: policy });

    for (const c of [attacker(), attackerAutomatic()]) {
      const e = entry(report, c);
      expect(e).toMatchObject({ action: 'report', entitlement: { bound: false } });
      expect(e.reason).toMatch(/Would convert-to-wif/);
      expect(c.endpoint.authorization.scheme).toBe('ServicePrincipal');
      expect(works(c)).toBe(false);
    }
    // No conversion PUT (Azure DevOps' own, made with this service's token) for the attacker's connections.
    const converts = sandbox.state.requestLog.filter(
      (r) =>
        r.service === 'devops' &&
        r.method === 'PUT' &&
        r.query['operation'] === 'ConvertAuthenticationScheme',
    );
    expect(converts.map((r) => r.path.split('/').pop()?.toLowerCase())).toEqual([staging().connectionId]);
    // Federated credentials: only the legitimate staging connection's (added by Azure DevOps).
    expect(prod().app.federatedIdentityCredentials.length).toBe(ficsBefore[0]);
    expect(entry(report, staging())).toMatchObject({ action: 'convert-to-wif', outcome: 'succeeded' });
    expect(staging().app.federatedIdentityCredentials.length).toBe((ficsBefore[1] ?? 0) + 1);

    // Asked for explicitly, still refused.
    const asked = await cli(['convert', '--connection', attacker().connectionId, '--json']);
    const e = (JSON.parse(asked.stdout) as RunReport).connections[0];
    expect(e).toMatchObject({ action: 'report', entitlement: { bound: false } });
    expect(attacker().app.federatedIdentityCredentials.length).toBe(ficsBefore[0]);
  });
});

describe('an operator binds what cannot prove itself', () => {
  test('sc-remediator approve: refuses another app, records the binding, and the connection is then rotated', async () => {
    const a = attacker();
    const orgUrl = sandbox.organizationUrls[0]!;

    const wrong = await cli([
      'approve',
      '--connection',
      a.connectionId,
      '--organization',
      orgUrl,
      '--app',
      staging().app.appId,
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`now names app ${a.app.appId}, not ${staging().app.appId}`);
    expect(binding(a.connectionId)).toBeUndefined();

    const missing = await cli(['approve', '--connection', a.connectionId]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--organization/);

    const ok = await cli([
      'approve',
      '--connection',
      a.connectionId,
      '--organization',
      orgUrl,
      '--app',
      a.app.appId,
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`Bound connection 'borrowed-prod' (${a.connectionId})`);
    expect(ok.stdout).toContain(`to app ${a.app.appId}`);
    expect(binding(a.connectionId)).toMatchObject({
      appId: a.app.appId,
      how: expect.stringMatching(/^approved:cli:/) as string,
    });

    const report = await remediate(['--connection', a.connectionId]);
    const e = entry(report, a);
    expect(e).toMatchObject({ action: 'rotate-secret', outcome: 'succeeded' });
    expect(e.entitlement?.how).toMatch(/^approved:cli:/);
    expect(works(a)).toBe(true);
  });

  test('a policy approval names both ids; another app is not approved', async () => {
    const a = attacker();
    const approve = (appId: string) =>
      JSON.stringify({
        rules: [],
        approvals: [{ connectionId: a.connectionId, appId, organization: 'contoso' }],
      });

    const other = await remediate(['--connection', a.connectionId], {
      REMEDIATION_POLICY: approve(staging().app.appId),
    });
    expect(entry(other, a)).toMatchObject({ action: 'report', entitlement: { bound: false } });
    expect(markedFor(a.app, a.connectionId)).toBe(0);

    const right = await remediate(['--connection', a.connectionId], {
      REMEDIATION_POLICY: approve(a.app.appId),
    });
    expect(entry(right, a)).toMatchObject({
      action: 'rotate-secret',
      outcome: 'succeeded',
      entitlement: { bound: true, how: 'approved:policy' },
    });
  });

  test('a lost or unreadable binding falls back to report, never to rotate', async () => {
    const a = attacker();
    const orgUrl = sandbox.organizationUrls[0]!;
    expect((await cli(['approve', '--connection', a.connectionId, '--organization', orgUrl])).code).toBe(0);
    const name = `sc-remediator-binding-${a.connectionId}`.toLowerCase();

    // Unreadable: the secret holds something that is not a binding.
    const version = sandbox.state.vault.secrets.get(name)!.versions.at(-1)!;
    const original = version.value;
    version.value = '{"appId": 42}';
    const unreadable = await remediate(['--connection', a.connectionId]);
    expect(entry(unreadable, a)).toMatchObject({ action: 'report', entitlement: { bound: false } });
    version.value = original;

    // Deleted.
    sandbox.state.vault.secrets.delete(name);
    const lost = await remediate(['--connection', a.connectionId]);
    expect(entry(lost, a)).toMatchObject({ action: 'report', entitlement: { bound: false } });
    expect(markedFor(a.app, a.connectionId)).toBe(0);
    expect(works(a)).toBe(false);

    // A binding to another app (the connection was edited since) does not count either.
    expect((await cli(['approve', '--connection', a.connectionId, '--organization', orgUrl])).code).toBe(0);
    a.endpoint.authorization.parameters['serviceprincipalid'] = staging().app.appId;
    const edited = await remediate(['--connection', a.connectionId]);
    expect(entry(edited, a)).toMatchObject({
      action: 'report',
      entitlement: { bound: false, appId: staging().app.appId },
    });
    expect(markedFor(staging().app, a.connectionId)).toBe(0);
  });
});

describe('the engine checks again right before it gives a credential', () => {
  function target(c: ScenarioCase, extra: Partial<ConnectionTarget> = {}): ConnectionTarget {
    return {
      organizationUrl: sandbox.organizationUrls[0]!,
      project: c.endpoint.serviceEndpointProjectReferences[0]!.projectReference.id,
      connectionId: c.connectionId,
      previousKeyIds: [],
      ...extra,
    };
  }

  test('a caller that skipped the gate, or a stale plan for another app, gets nothing', async () => {
    const engine = engineFor(
      sandbox,
      createLogger(() => undefined),
      {
        settings: { OLD_SECRET_RETENTION_HOURS: '0', VERIFY_ATTEMPTS: '1' },
      },
    );
    const a = attacker();
    const settings = { ...engine.settings, verifyAttempts: 1, verifyInitialDelayMs: 1 };

    const direct = await rotateConnection(target(a), engine.deps, settings);
    expect(direct).toMatchObject({ outcome: 'failed', error: { code: 'not-entitled' } });

    // Planned when the connection named the staging app (proved then); it names the production app now.
    const stale = await rotateConnection(
      target(a, { entitlement: { appId: staging().app.appId, how: 'proof:test-connection-ok' } }),
      engine.deps,
      settings,
    );
    expect(stale).toMatchObject({ outcome: 'failed', error: { code: 'not-entitled' } });

    const converted = await convertConnection(
      { ...target(attackerAutomatic()), path: 'azure-devops' },
      engine.deps,
      settings,
    );
    expect(converted).toMatchObject({ outcome: 'failed', error: { code: 'not-entitled' } });
    const viaGraph = await convertConnection(
      { ...target(a), path: 'federated-credential' },
      engine.deps,
      settings,
    );
    expect(viaGraph).toMatchObject({ outcome: 'failed', error: { code: 'not-entitled' } });

    expect(addPasswordsOn(a.app)).toBe(0);
    expect(a.app.federatedIdentityCredentials).toHaveLength(0);
    expect(attackerAutomatic().endpoint.authorization.scheme).toBe('ServicePrincipal');
    expect(sandbox.state.writes()).toEqual([]);
  });
});
