/**
 * A real process kill in the middle of a certificate rotation (as test/helpers/killPoints.ts does
 * for secrets): the CLI is SIGKILLed right after Graph accepted the PATCH that added the new
 * certificate to the app — before Key Vault got the rotation record, the crash that leaves an
 * orphan. The lease outlives the process (then it is broken, as its expiry would); re-runs must
 * converge: the orphan removed by its marker (the intent noted before it was added is the
 * evidence), one certificate of this service left on the app, the connection holding the PEM of
 * the version the record names, that certificate getting a token, the record verified, the
 * unrelated certificate kept.
 */
import { randomUUID } from 'node:crypto';
import type { Scenario } from '../../sandbox/index';
import { certificateOfPem } from '../../sandbox/certificates';
import { checkClientCertificate } from '../../sandbox/credentials';
import { cliEnv, parseReport, rerunUntilSuccess, spawnCli, type CliChild } from '../helpers/cliChild';
import { expectLockHeldThenBreak } from '../helpers/lockContainers';
import { certificateScenario } from '../helpers/scenarios';
import { useSandbox } from '../helpers/useSandbox';

const SCENARIO: Scenario = certificateScenario('crash-certificate', [
  // Another consumer's certificate: never touched.
  { key: 'other', displayName: 'CN=batch-job (do not delete)', startInDays: -30, endInDays: 300 },
]);

const fixture = useSandbox({ azurite: true });

test('killed right after the keyCredentials PATCH (before the record): a re-run converges', async () => {
  const scenario = structuredClone(SCENARIO);
  const connectionId = randomUUID();
  scenario.organizations[0]!.connections[0]!.id = connectionId;
  const sandbox = await fixture.start({ scenario, seed: 'crash-certificate' });
  const { state } = sandbox;
  const app = [...state.apps.values()].find((a) => a.displayName === 'sp-contoso-cert-deploy')!;
  const otherKeyId = app.keyCredentials!.find((k) => k.displayName?.includes('do not delete'))!.keyId;
  const env = cliEnv(sandbox, {
    AzureWebJobsStorage: fixture.azurite.connectionString,
    // A retention period: the orphan must go as an orphan, not in a later clean-up.
    OLD_SECRET_RETENTION_HOURS: '24',
  });
  const args = ['remediate', '--connection', connectionId, '--json'];

  let armed: CliChild | undefined;
  let killed = false;
  let orphanKeyId: string | undefined;
  state.onRequestHandled = (entry) => {
    if (armed && entry.service === 'graph' && entry.method === 'PATCH' && entry.path.includes(app.id)) {
      armed.kill();
      armed = undefined;
      killed = true;
      orphanKeyId = app.keyCredentials!.find((k) => k.displayName?.startsWith('sc-remediator '))?.keyId;
    }
  };

  const first = spawnCli(args, env);
  armed = first;
  const firstExit = await first.exit;
  expect(killed).toBe(true);
  expect(firstExit.signal).toBe('SIGKILL');
  expect(orphanKeyId).toBeDefined();
  // No record was written: only the intent.
  const stateSecret = state.vault.secrets.get(`sc-remediator-${connectionId}`);
  expect(stateSecret?.versions.at(-1)?.tags['phase']).toBeUndefined();

  // The lease outlives the process, then runs out (broken here instead of waiting for it).
  await expectLockHeldThenBreak(fixture.azurite.connectionString, connectionId);
  const { run: last, exit } = await rerunUntilSuccess(args, env);
  const entry = parseReport(last, exit).connections[0];
  expect(entry).toMatchObject({ action: 'rotate-secret', outcome: 'succeeded', phase: 'verified' });
  expect(entry?.steps?.some((s) => s.startsWith(`removed orphaned credential ${orphanKeyId}`))).toBe(true);

  // Converged: the orphan gone, one certificate of this service, the other consumer's kept.
  const keys = app.keyCredentials!;
  const marked = keys.filter((k) => k.displayName?.startsWith('sc-remediator '));
  expect(marked).toHaveLength(1);
  expect(marked[0]!.keyId).not.toBe(orphanKeyId);
  expect(keys.map((k) => k.keyId)).toContain(otherKeyId);
  // The record names the version whose PEM the connection holds, and that certificate is the app's.
  const record = state.vault.secrets.get(`sc-remediator-${connectionId}`)?.versions.at(-1);
  expect(record?.tags).toMatchObject({ phase: 'verified', keyId: marked[0]!.keyId });
  const [name, version] = (record?.tags['certificate'] ?? '').split('/');
  const pem = state.vault.secrets
    .get(name!.toLowerCase())
    ?.versions.find((v) => v.version === version)?.value;
  const endpoint = [...state.organizations.values()][0]!.endpoints.get(connectionId)!;
  expect(endpoint.authorization.parameters['servicePrincipalCertificate']).toBe(pem);
  expect(certificateOfPem(pem ?? '')?.raw.toString('base64')).toBe(marked[0]!.key);
  expect(checkClientCertificate(state, app.appId, pem).ok).toBe(true);
});
