/**
 * Rotation of a certificate-based connection (`authenticationType: spnCertificate`) through the
 * composition root — the real `@azure/keyvault-certificates`, `@azure/keyvault-secrets`, Graph and
 * Azure DevOps clients — against the sandbox: a new certificate created by Key Vault, its public
 * part added to the app's keyCredentials (PATCH, read-modify-write), the connection PUT with the
 * PEM, verified with a token signed by the new certificate, the record naming the certificate
 * version, superseded certificates removed after the retention period; a keyCredential written by
 * someone else meanwhile is kept; the private key appears in no log line and no report.
 */
import type { Sandbox, Scenario } from '../../sandbox/index';
import { EntraTokenProbe } from '../../src/clients/tokenProbe';
import { runRemediation } from '../../src/remediation/run';
import { createLogger } from '../../src/telemetry';
import {
  engineFor,
  entryFor,
  expectNoSecrets,
  scenarioCases,
  type ScenarioCase,
} from '../helpers/engineSandbox';
import { afterCall, once } from '../helpers/intercept';
import { certificateScenario } from '../helpers/scenarios';
import { useSandbox } from '../helpers/useSandbox';

const DAY_MS = 24 * 3600 * 1000;
const SETTINGS = { OLD_SECRET_RETENTION_HOURS: '24', SECRET_LIFETIME_DAYS: '90' };

const SCENARIO: Scenario = certificateScenario('certificate-rotation');

const certificateName = (c: ScenarioCase) => `sc-remediator-cert-${c.connectionId}`;
const ours = (k: { displayName: string | null }) => k.displayName?.startsWith('sc-remediator ') === true;

describe('certificate connection: rotation end to end', () => {
  const fixture = useSandbox({ scenario: SCENARIO, tenant: 'test' });
  let sandbox: Sandbox;
  let c: ScenarioCase;
  const lines: string[] = [];
  const log = createLogger((_level, line) => lines.push(line), 'debug');

  beforeEach(() => {
    sandbox = fixture.sandbox;
    c = scenarioCases(sandbox).get('certificate')!;
    lines.length = 0;
  });

  test('created → applied → verified, then completed after the retention period; the record names the version', async () => {
    const original = c.app!.keyCredentials![0]!;
    const engine = engineFor(sandbox, log, { settings: SETTINGS });
    const from = sandbox.state.requestLog.length;
    const first = await runRemediation(engine.deps, engine.settings);
    const e = entryFor(first.report, c.connectionId);
    expect(e).toMatchObject({
      finding: 'expiring',
      action: 'rotate-secret',
      outcome: 'succeeded',
      phase: 'verified',
    });

    // Key Vault created the certificate; its secret holds the PEM with the private key.
    const certificate = sandbox.state.vault.certificates.get(certificateName(c).toLowerCase());
    expect(certificate?.versions).toHaveLength(1);
    const version = certificate!.versions[0]!;
    expect(version.policy).toMatchObject({
      key_props: { exportable: true },
      secret_props: { contentType: 'application/x-pem-file' },
    });
    const pem = sandbox.state.vault.secrets.get(certificateName(c).toLowerCase())?.versions[0]?.value ?? '';
    expect(pem).toMatch(/PRIVATE KEY-----/);

    // The app has the new certificate (public part, marked) beside the old one, still valid.
    const keys = c.app!.keyCredentials!;
    expect(keys.map((k) => k.keyId)).toContain(original.keyId);
    const added = keys.find(ours)!;
    expect(added.key).toBe(version.cer);
    expect(added).toMatchObject({ type: 'AsymmetricX509Cert', usage: 'Verify' });

    // The connection holds that PEM, stays spnCertificate and Manual, and is ready.
    const parameters = c.endpoint.authorization.parameters;
    expect(parameters['servicePrincipalCertificate']).toBe(pem);
    expect(parameters['authenticationType']).toBe('spnCertificate');
    expect(parameters['serviceprincipalkey'] ?? null).toBeNull();
    expect(c.endpoint.data['creationMode']).toBe('Manual');
    expect(c.endpoint.isReady).toBe(true);

    // A token is obtained with the new certificate (a client assertion signed by its key).
    const probe = new EntraTokenProbe({ authorityHost: sandbox.env['AZURE_AUTHORITY_HOST'] });
    await expect(probe.tryClientCertificate(sandbox.state.tenantId, c.app!.appId, pem)).resolves.toEqual({
      ok: true,
    });

    // The record is the connection's state secret: it names the certificate version, holds no key.
    const record = sandbox.state.vault.secrets
      .get(`sc-remediator-${c.connectionId}`.toLowerCase())
      ?.versions.at(-1);
    expect(record?.tags).toMatchObject({
      phase: 'verified',
      keyId: added.keyId,
      certificate: `${certificateName(c)}/${version.version}`,
    });
    expect(record?.value).not.toMatch(/PRIVATE KEY/);

    // The order of the writes: Key Vault certificate, then Graph, then the record, then Azure DevOps.
    const writes = sandbox.state.requestLog
      .slice(from)
      .filter(
        (r) =>
          r.method !== 'GET' && !(r.service === 'entra') && !(r.service === 'devops' && r.method === 'POST'),
      );
    const firstIndex = (pred: (r: (typeof writes)[number]) => boolean) => writes.findIndex(pred);
    const create = firstIndex((r) => r.path.endsWith('/create'));
    const patch = firstIndex((r) => r.service === 'graph' && r.method === 'PATCH');
    const put = firstIndex((r) => r.service === 'devops' && r.method === 'PUT');
    expect(create).toBeGreaterThanOrEqual(0);
    expect(create).toBeLessThan(patch);
    expect(patch).toBeLessThan(put);

    // The next run judges the connection by the certificate it verified: nothing to do (the
    // predecessor, still valid, is no reason to rotate again).
    const again = await runRemediation(engine.deps, engine.settings);
    expect(entryFor(again.report, c.connectionId)).toMatchObject({ finding: 'healthy', action: 'none' });
    expect(certificate?.versions).toHaveLength(1);

    // Past the old certificate's end (and the retention period): it is removed, the new one kept.
    sandbox.state.advanceClock(11 * DAY_MS);
    // A new engine: the first one's cached tokens ended with the sandbox's clock.
    const later = engineFor(sandbox, log, { settings: SETTINGS });
    const second = await runRemediation(later.deps, later.settings);
    expect(entryFor(second.report, c.connectionId)).toMatchObject({
      action: 'rotate-secret',
      outcome: 'succeeded',
      phase: 'completed',
    });
    expect(c.app!.keyCredentials!.map((k) => k.keyId)).toEqual([added.keyId]);

    // The private key is in no log line and no report.
    const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(pem)?.[0] ?? '';
    const keyBody = key.split('\n').slice(1, -1);
    expect(keyBody.length).toBeGreaterThan(5);
    for (const [where, text] of [
      ['log lines', lines.join('\n')],
      ['the first report', JSON.stringify(first.report)],
      ['the second report', JSON.stringify(second.report)],
    ] as const) {
      expectNoSecrets(text, [key, ...keyBody], where);
      expect(text).not.toMatch(/PRIVATE KEY/);
    }
  });

  test('a keyCredential someone else adds while Key Vault creates the certificate is kept', async () => {
    const engine = engineFor(sandbox, log, { settings: SETTINGS });
    const foreignKeyId = '0b5e7a34-7c0e-4d2a-9e39-2b7c0f3a9d11';
    afterCall(
      engine.deps.certificates!,
      'createCertificate',
      once(() => {
        // An operator's write through Graph (the same certificate data under another key id is
        // enough here) between this service's read of the app and its PATCH.
        c.app!.keyCredentials!.push({
          ...c.app!.keyCredentials![0]!,
          keyId: foreignKeyId,
          displayName: 'added by an operator meanwhile',
        });
        return Promise.resolve();
      }),
    );
    const run = await runRemediation(engine.deps, engine.settings);
    expect(entryFor(run.report, c.connectionId)).toMatchObject({ outcome: 'succeeded', phase: 'verified' });
    const keyIds = c.app!.keyCredentials!.map((k) => k.keyId);
    expect(keyIds).toContain(foreignKeyId);
    expect(c.app!.keyCredentials!.filter(ours)).toHaveLength(1);
    expect(keyIds).toHaveLength(3);
  });
});
