/**
 * `sc-remediator convert`, `revert` and `retire` in-process (`runCli`) against the sandbox (default
 * scenario), with Azurite for the run ledger: usage errors (exit 2), the dry run, the JSON report,
 * the refusal to retire without the ledger, and no secret on stdout or stderr; a certificate
 * connection converted and reverted, with no certificate or private key on stdout or stderr.
 */
import { Writable } from 'node:stream';
import type { Azurite } from '../../sandbox/azurite';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { runCli } from '../../src/cli/main';
import { certificateScenario } from '../helpers/scenarios';
import { expectNoSecrets, scenarioCases, type ScenarioCase } from '../helpers/engineSandbox';
import { testAzurite } from '../helpers/azuritePool';

let sandbox: Sandbox;
let azurite: Azurite;
let cases: Map<string, ScenarioCase>;
const outputs: string[] = [];

async function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        append(chunk.toString());
        callback();
      },
    });
  const code = await runCli(args, {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)) as unknown as NodeJS.WriteStream,
    env,
  });
  outputs.push(stdout, stderr);
  return { code, stdout, stderr };
}

const withStorage = () => ({ ...sandbox.env, AzureWebJobsStorage: azurite.connectionString });

beforeAll(async () => {
  [sandbox, azurite] = await Promise.all([
    startSandbox({ scenario: 'default' }),
    testAzurite({ blob: true, queue: false }),
  ]);
  cases = scenarioCases(sandbox);
}, 60_000);

afterAll(async () => {
  expectNoSecrets(outputs.join('\n'), sandbox.state.allSecretValues(), 'CLI output');
  await Promise.all([sandbox?.stop(), azurite?.stop()]);
});

describe('usage', () => {
  test.each([
    [['convert'], /convert needs --connection <id>/],
    [['retire', '--connection', '00000000-0000-4000-8000-000000000000'], /confirm with --yes/],
    [['revert', '--connection', 'not-a-guid'], /--connection takes a service connection id/],
  ])('%j → exit 2', async (args, message) => {
    const r = await cli(args, withStorage());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(sandbox.state.writes()).toEqual([]);
  });
});

describe('convert, revert, retire', () => {
  test('convert --dry-run --json: the conversion planned, nothing written', async () => {
    const c = cases.get('automatic-expiring-other-password')!;
    const r = await cli(['convert', '--connection', c.connectionId, '--dry-run', '--json'], withStorage());
    const report = JSON.parse(r.stdout) as {
      dryRun: boolean;
      connections: { action: string; outcome: string; conversionPath?: string }[];
    };
    expect(report.dryRun).toBe(true);
    expect(report.connections).toEqual([
      expect.objectContaining({
        action: 'convert-to-wif',
        outcome: 'planned',
        conversionPath: 'azure-devops',
      }),
    ]);
    expect(sandbox.state.writes()).toEqual([]);
  });

  test('convert, then revert: exit 0 each, the connection back on its secret', async () => {
    const c = cases.get('automatic-expiring-other-password')!;
    const converted = await cli(
      ['convert', '--connection', c.connectionId, '--organization', `${sandbox.urls.devops}/contoso`],
      withStorage(),
    );
    expect(converted.code).toBe(0);
    expect(converted.stdout.replace(/[\s│]+/g, ' ')).toMatch(
      /workload identity federation: verified \(azure-devops\)/,
    );
    expect(converted.stdout).not.toMatch(/Could leave their secret or certificate behind/);
    expect(c.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');
    const reverted = await cli(['revert', '--connection', c.connectionId, '--json'], withStorage());
    expect(reverted.code).toBe(0);
    expect(JSON.parse(reverted.stdout).connections[0]).toMatchObject({ conversion: { phase: 'reverted' } });
    expect(c.endpoint.authorization.scheme).toBe('ServicePrincipal');
  });

  test('retire --yes without storage: refused (the definition could not be kept), exit 1, nothing deleted', async () => {
    const c = cases.get('app-deleted')!;
    const r = await cli(['retire', '--connection', c.connectionId, '--yes', '--json'], sandbox.env);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).connections[0]).toMatchObject({ action: 'report', outcome: 'skipped' });
    expect(sandbox.state.organization('contoso')!.endpoints.has(c.connectionId)).toBe(true);
  });

  test('retire --yes with storage: recorded, deleted, exit 0', async () => {
    const c = cases.get('app-deleted')!;
    const r = await cli(['retire', '--connection', c.connectionId, '--yes'], withStorage());
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/[\s│]+/g, ' ')).toMatch(
      /retired: deleted \d{4}-\d\d-\d\d, definition kept in the run ledger/,
    );
    expect(sandbox.state.organization('contoso')!.endpoints.has(c.connectionId)).toBe(false);
  });
});

describe('a certificate connection', () => {
  let certificates: Sandbox;
  const before: string[] = [];

  beforeAll(async () => {
    certificates = await startSandbox({ scenario: certificateScenario('cli-certificate-conversion') });
  }, 60_000);

  afterAll(async () => {
    await certificates?.stop();
  });

  test('convert (rotated first), then revert: exit 0 each, back on its certificate; no PEM on stdout or stderr', async () => {
    const env = { ...certificates.env, AzureWebJobsStorage: azurite.connectionString };
    const c = scenarioCases(certificates).get('certificate')!;
    before.push(c.endpoint.authorization.parameters['servicePrincipalCertificate'] ?? '');
    const listed = await cli(['scan'], env);
    expect(listed.stdout).toMatch(/Could leave their secret or certificate behind .*api-cert-deploy/);
    const converted = await cli(['convert', '--connection', c.connectionId], env);
    expect(converted.code).toBe(0);
    expect(converted.stdout.replace(/[\s│]+/g, ' ')).toMatch(
      /workload identity federation: verified \(federated-credential\)/,
    );
    expect(c.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');
    const reverted = await cli(['revert', '--connection', c.connectionId, '--json'], env);
    expect(reverted.code).toBe(0);
    expect(JSON.parse(reverted.stdout).connections[0]).toMatchObject({ conversion: { phase: 'reverted' } });
    expect(c.endpoint.authorization.parameters['authenticationType']).toBe('spnCertificate');

    // Every PEM the tenant knows (the scenario's, Key Vault's), whole and line by line.
    const pems = [
      ...before,
      ...[...certificates.state.vault.secrets.values()].flatMap((v) => v.versions.map((x) => x.value)),
    ].filter((p) => p.includes('PRIVATE KEY-----'));
    expect(pems.length).toBeGreaterThanOrEqual(2);
    const lines = pems.flatMap((p) => p.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----')));
    const text = [listed, converted, reverted].map((r) => `${r.stdout}\n${r.stderr}`).join('\n');
    expectNoSecrets(text, [...pems, ...lines], 'CLI output');
    expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
  });
});
