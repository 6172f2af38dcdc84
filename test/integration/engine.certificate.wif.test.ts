/**
 * Conversion of a certificate connection (`authenticationType: spnCertificate`) to workload
 * identity federation through the composition root — the real Azure DevOps, Graph,
 * `@azure/keyvault-secrets` and `@azure/keyvault-certificates` clients — against the sandbox:
 * - with no certificate in Key Vault to fall back on, the certificate is rotated first, then the
 *   connection converted (federated-credential path: Azure DevOps' own tool is for connections it
 *   created with a secret), verified with TestConnection on the federated credential, and the
 *   superseded certificate removed from keyCredentials only after the retention period;
 * - a conversion whose verification fails puts the certificate (never a secret) back: the connection
 *   works on it, the federated credential is gone;
 * - revert on request does the same;
 * - no PEM or private key in any step, log line or report.
 */
import type { Sandbox, Scenario } from '../../sandbox/index';
import { checkClientCertificate } from '../../sandbox/credentials';
import type { EndpointRecord } from '../../sandbox/model';
import type { Engine } from '../../src/composition';
import type { ConversionRecord } from '../../src/remediation/ports';
import { runRemediation, type RunOptions, type RunResult } from '../../src/remediation/run';
import { createLogger } from '../../src/telemetry';
import {
  engineFor,
  entryFor,
  expectNoSecrets,
  sandboxClock,
  scenarioCases,
  type ScenarioCase,
} from '../helpers/engineSandbox';
import { afterCall, once } from '../helpers/intercept';
import { certificateScenario } from '../helpers/scenarios';
import { useSandbox } from '../helpers/useSandbox';

const HOUR_MS = 3600 * 1000;
const SETTINGS = { OLD_SECRET_RETENTION_HOURS: '24', SECRET_LIFETIME_DAYS: '90' };
const SCENARIO: Scenario = certificateScenario('certificate-conversion');

const marked = (k: { displayName: string | null }) => k.displayName?.startsWith('sc-remediator ') === true;

function param(ep: EndpointRecord, name: string): string | null | undefined {
  const key = Object.keys(ep.authorization.parameters).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : ep.authorization.parameters[key];
}

function conversionRecord(sandbox: Sandbox, connectionId: string): ConversionRecord | undefined {
  const secret = sandbox.state.vault.secrets.get(`sc-remediator-wif-${connectionId}`.toLowerCase());
  const latest = secret?.versions.at(-1);
  return latest ? (JSON.parse(latest.value) as ConversionRecord) : undefined;
}

/** The PEM of the certificate version the connection's rotation record names. */
function recordedPem(sandbox: Sandbox, connectionId: string): string | undefined {
  const record = sandbox.state.vault.secrets
    .get(`sc-remediator-${connectionId}`.toLowerCase())
    ?.versions.at(-1);
  const [name, version] = (record?.tags['certificate'] ?? '').split('/');
  return sandbox.state.vault.secrets
    .get((name ?? '').toLowerCase())
    ?.versions.find((v) => v.version === version)?.value;
}

/** Every private key the tenant knows (the scenario's and Key Vault's), and each of its lines. */
function privateKeys(sandbox: Sandbox, extra: (string | null | undefined)[]): string[] {
  const pems = [
    ...extra,
    ...[...sandbox.state.vault.secrets.values()].flatMap((s) => s.versions.map((v) => v.value)),
  ];
  const keys = pems.flatMap(
    (p) =>
      (p ?? '').match(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/g) ?? [],
  );
  return [
    ...keys,
    ...keys.flatMap((k) =>
      k
        .split('\n')
        .slice(1, -1)
        .filter((l) => l.length >= 16),
    ),
  ];
}

describe('certificate connection: conversion to workload identity federation', () => {
  const fixture = useSandbox({ scenario: SCENARIO, tenant: 'test' });
  let sandbox: Sandbox;
  let c: ScenarioCase;
  const lines: string[] = [];
  const log = createLogger((level, line) => lines.push(`${level}: ${line}`), 'debug');

  /** The engine as the product builds it; sleeps move the sandbox clock (fast verification backoff). */
  function engine(): Engine {
    const e = engineFor(sandbox, log, { settings: SETTINGS, clock: sandboxClock(sandbox, true) });
    e.settings.verifyInitialDelayMs = 500;
    e.settings.verifyAttempts = 3;
    return e;
  }

  async function run(options: RunOptions = {}, e: Engine = engine()): Promise<RunResult> {
    return runRemediation(e.deps, e.settings, { connectionId: c.connectionId, ...options });
  }

  function worksOnCertificate(): boolean {
    const pem = param(c.endpoint, 'servicePrincipalCertificate') ?? undefined;
    return (
      c.endpoint.authorization.scheme === 'ServicePrincipal' &&
      param(c.endpoint, 'authenticationType') === 'spnCertificate' &&
      param(c.endpoint, 'serviceprincipalkey') === undefined &&
      c.endpoint.isReady &&
      checkClientCertificate(sandbox.state, c.app!.appId, pem).ok
    );
  }

  beforeEach(() => {
    sandbox = fixture.sandbox;
    c = scenarioCases(sandbox).get('certificate')!;
    lines.length = 0;
  });

  test('no certificate to fall back on: rotated first, converted, verified on the federated credential; the superseded certificate goes only after the retention period', async () => {
    const scenarioPem = param(c.endpoint, 'servicePrincipalCertificate');
    const original = c.app!.keyCredentials![0]!.keyId;
    const dry = await run({ intent: 'convert', dryRun: true });
    expect(sandbox.state.writes()).toEqual([]);
    expect(entryFor(dry.report, c.connectionId)).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'planned',
      conversionPath: 'federated-credential',
    });
    expect(entryFor(dry.report, c.connectionId).steps?.[0]).toMatch(/^Rotate the certificate first/);

    const e = engine();
    const from = sandbox.state.requestLog.length;
    const first = await run({ intent: 'convert' }, e);
    const entry = entryFor(first.report, c.connectionId);
    expect(entry).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'succeeded',
      conversion: { path: 'federated-credential', phase: 'verified', credential: 'certificate' },
    });
    expect(entry.steps?.[0]).toMatch(/^rotation: created certificate /);

    // The connection uses workload identity federation: nothing of the certificate is left in it.
    expect(c.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');
    expect(param(c.endpoint, 'servicePrincipalCertificate')).toBeUndefined();
    expect(param(c.endpoint, 'authenticationType')).toBeUndefined();
    expect(c.endpoint.data['creationMode']).toBe('Manual');
    const fics = c.app!.federatedIdentityCredentials;
    expect(fics).toHaveLength(1);
    expect(fics[0]).toMatchObject({
      name: `sc-remediator-${c.connectionId}`,
      issuer: param(c.endpoint, 'workloadIdentityFederationIssuer'),
      subject: param(c.endpoint, 'workloadIdentityFederationSubject'),
      audiences: ['api://AzureADTokenExchange'],
    });

    // The record says the connection held a certificate; the rotated one is what it supersedes.
    const ours = c.app!.keyCredentials!.find(marked)!;
    const record = conversionRecord(sandbox, c.connectionId)!;
    expect(record).toMatchObject({ credential: 'certificate', phase: 'verified' });
    expect(record.previousKeyIds).toContain(ours.keyId);
    // Graph writes, in order: the certificate added (PATCH), then the federated credential.
    const graphWrites = sandbox.state.requestLog
      .slice(from)
      .filter((r) => r.service === 'graph' && r.write && r.path.includes(c.app!.id));
    expect(graphWrites.map((r) => `${r.method} ${r.path.split('/').pop() ?? ''}`)).toEqual([
      `PATCH ${c.app!.id}`,
      'POST federatedIdentityCredentials',
    ]);

    // TestConnection now goes through the federated credential: without it, it fails.
    const project = c.endpoint.serviceEndpointProjectReferences[0]!.projectReference.name;
    const orgUrl = `${sandbox.urls.devops}/${c.organization}`;
    const read = (await e.deps.devops.getConnection(orgUrl, project, c.connectionId))!;
    await expect(e.deps.devops.testConnection(orgUrl, project, read)).resolves.toMatchObject({ ok: true });
    const kept = c.app!.federatedIdentityCredentials.splice(0);
    await expect(e.deps.devops.testConnection(orgUrl, project, read)).resolves.toMatchObject({ ok: false });
    c.app!.federatedIdentityCredentials.push(...kept);

    // Within the retention period both certificates stay; a run changes nothing.
    const keyIds = () => c.app!.keyCredentials!.map((k) => k.keyId);
    expect(keyIds()).toEqual(expect.arrayContaining([original, ours.keyId]));
    const waiting = await run();
    expect(entryFor(waiting.report, c.connectionId)).toMatchObject({ action: 'none' });
    expect(keyIds()).toEqual(expect.arrayContaining([original, ours.keyId]));

    // Past it, the superseded certificate (this service's, recorded) is removed from keyCredentials;
    // the scenario's own certificate (neither ours, recorded nor expired) stays; no password touched.
    sandbox.state.advanceClock(25 * HOUR_MS);
    const later = await run();
    const done = entryFor(later.report, c.connectionId);
    expect(done).toMatchObject({ conversion: { phase: 'completed' } });
    expect(done.steps).toEqual(
      expect.arrayContaining([`removed credential ${ours.keyId} (created by this service)`]),
    );
    expect(keyIds()).toEqual([original]);
    expect(c.app!.federatedIdentityCredentials).toHaveLength(1);
    expect(c.endpoint.isReady).toBe(true);

    // No private key in any step, log line or report.
    const keys = privateKeys(sandbox, [scenarioPem]);
    expect(keys.length).toBeGreaterThan(5);
    for (const [where, text] of [
      ['log lines', lines.join('\n')],
      ['the reports', JSON.stringify([dry.report, first.report, waiting.report, later.report])],
    ] as const) {
      expectNoSecrets(text, keys, where);
      expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    }
  });

  test('a verification that fails puts the certificate back (never a secret) and removes the federated credential', async () => {
    // A verified certificate rotation first: the fallback exists, the conversion needs no rotation.
    const rotated = await run();
    expect(entryFor(rotated.report, c.connectionId)).toMatchObject({
      outcome: 'succeeded',
      phase: 'verified',
    });
    const pem = recordedPem(sandbox, c.connectionId);
    expect(param(c.endpoint, 'servicePrincipalCertificate')).toBe(pem);
    const passwords = c.app!.passwordCredentials.length;

    // Right after the federated credential is added, its subject is changed behind the service's
    // back: Entra ID then refuses Azure DevOps' token, and TestConnection fails every attempt.
    const e = engine();
    afterCall(
      e.deps.federation!,
      'addFederatedCredential',
      once(() => {
        for (const f of c.app!.federatedIdentityCredentials) f.subject = `${f.subject}-tampered`;
        return Promise.resolve();
      }),
    );
    const r = await run({ intent: 'convert' }, e);
    const entry = entryFor(r.report, c.connectionId);
    expect(entry).toMatchObject({
      action: 'convert-to-wif',
      outcome: 'failed',
      conversion: { path: 'federated-credential', phase: 'failed' },
    });
    expect(entry.steps?.some((s) => s.startsWith('rotation:'))).toBe(false);
    expect(entry.error).toMatch(/put back on its certificate/);
    expect(entry.steps).toEqual(
      expect.arrayContaining([
        'updated the connection to WorkloadIdentityFederation (creationMode Manual, no secret)',
        'put the certificate kept in Key Vault back into the connection (ServicePrincipal, spnCertificate, Manual)',
      ]),
    );
    // Back on the very certificate Key Vault keeps; it signs in; no secret went anywhere.
    expect(worksOnCertificate()).toBe(true);
    expect(param(c.endpoint, 'servicePrincipalCertificate') === pem).toBe(true);
    expect(param(c.endpoint, 'workloadIdentityFederationSubject')).toBeUndefined();
    expect(c.app!.passwordCredentials).toHaveLength(passwords);
    expect(c.app!.federatedIdentityCredentials).toEqual([]);
    expect(conversionRecord(sandbox, c.connectionId)).toMatchObject({
      credential: 'certificate',
      phase: 'failed',
      federatedCredentialIds: [],
    });
    const text = `${lines.join('\n')}\n${JSON.stringify([rotated.report, r.report])}`;
    expectNoSecrets(text, privateKeys(sandbox, []), 'logs and reports');
  });

  test('revert on request: the certificate from Key Vault goes back, the federated credential goes', async () => {
    const rotated = await run();
    expect(entryFor(rotated.report, c.connectionId)).toMatchObject({
      outcome: 'succeeded',
      phase: 'verified',
    });
    const pem = recordedPem(sandbox, c.connectionId);
    const converted = await run({ intent: 'convert' });
    expect(entryFor(converted.report, c.connectionId)).toMatchObject({
      outcome: 'succeeded',
      conversion: { phase: 'verified' },
    });
    expect(c.app!.federatedIdentityCredentials).toHaveLength(1);

    const planned = await run({ intent: 'revert', dryRun: true });
    expect(entryFor(planned.report, c.connectionId).steps?.[0]).toBe(
      'PUT the connection back to ServicePrincipal (spnCertificate, Manual) with the certificate from Key Vault',
    );
    const r = await run({ intent: 'revert' });
    expect(entryFor(r.report, c.connectionId)).toMatchObject({
      outcome: 'succeeded',
      conversion: { phase: 'reverted' },
    });
    expect(worksOnCertificate()).toBe(true);
    expect(param(c.endpoint, 'servicePrincipalCertificate') === pem).toBe(true);
    expect(c.app!.federatedIdentityCredentials).toEqual([]);

    // The connection is a certificate connection again: judged and rotated as one.
    const next = await run();
    expect(entryFor(next.report, c.connectionId)).toMatchObject({ finding: 'healthy', action: 'none' });
  });
});

describe('certificate conversion clean-up while another connection names the app (invariant 9)', () => {
  const scenario: Scenario = structuredClone(SCENARIO);
  const org = scenario.organizations[0]!;
  org.projects.push({ name: 'ops' });
  org.connections.push({
    ...org.connections[0]!,
    key: 'cert-ops',
    case: 'other-user',
    name: 'ops-cert-deploy',
    projects: ['ops'],
  });
  const fixture = useSandbox({ scenario, tenant: 'test' });

  test('the superseded certificate stays on the app past the retention period: the other connection may hold it', async () => {
    const sandbox = fixture.sandbox;
    const c = scenarioCases(sandbox).get('certificate')!;
    const other = scenarioCases(sandbox).get('other-user')!;
    const e = engineFor(
      sandbox,
      createLogger(() => undefined, 'error'),
      {
        settings: SETTINGS,
        clock: sandboxClock(sandbox, true),
      },
    );
    e.settings.verifyInitialDelayMs = 500;
    const first = await runRemediation(e.deps, e.settings, {
      connectionId: c.connectionId,
      intent: 'convert',
    });
    expect(entryFor(first.report, c.connectionId)).toMatchObject({
      outcome: 'succeeded',
      conversion: { phase: 'verified' },
    });
    const ours = c.app!.keyCredentials!.find(marked)!;

    sandbox.state.advanceClock(25 * HOUR_MS);
    const later = engineFor(
      sandbox,
      createLogger(() => undefined, 'error'),
      { settings: SETTINGS },
    );
    const run = await runRemediation(later.deps, later.settings);
    const entry = entryFor(run.report, c.connectionId);
    // The census is complete, so the conversion completes; the certificate stays until it expires.
    expect(entry.reason).toMatch(/remove the old certificate/);
    expect(entry.cleanup).toMatch(new RegExp(`^kept ${ours.keyId} until it expires: 1 other connection`));
    expect(entry.steps).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(`^kept credential ${ours.keyId}: 1 other connection\\(s\\) name app`),
        ),
      ]),
    );
    expect(c.app!.keyCredentials!.map((k) => k.keyId)).toContain(ours.keyId);
    // The other connection still signs in with the certificate it holds.
    expect(other.endpoint.authorization.scheme).toBe('ServicePrincipal');
    expect(
      checkClientCertificate(
        sandbox.state,
        c.app!.appId,
        param(other.endpoint, 'servicePrincipalCertificate') ?? undefined,
      ).ok,
    ).toBe(true);
  });
});
