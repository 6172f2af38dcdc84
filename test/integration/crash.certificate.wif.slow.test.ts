/**
 * A real process kill in the middle of a certificate connection's conversion to workload identity
 * federation (as crash.certificate.slow.test.ts does for its rotation): `sc-remediator convert` is
 * SIGKILLed right after Azure DevOps accepted the switch to WorkloadIdentityFederation — the
 * conversion recorded as started, the connection no longer holding its certificate, no federated
 * credential on the app yet: the moment the connection does not work. The lease outlives the process
 * (then it is broken, as its expiry would); re-runs must converge: the federated credential Azure
 * DevOps expects added, the conversion verified with TestConnection, the certificate kept in Key
 * Vault and on the app for the retention period, no secret anywhere near the connection.
 */
import { randomUUID } from 'node:crypto';
import type { Scenario } from '../../sandbox/index';
import { checkFederatedCredential } from '../../sandbox/credentials';
import type { ConversionRecord } from '../../src/remediation/ports';
import { cliEnv, parseReport, rerunUntilSuccess, spawnCli, type CliChild } from '../helpers/cliChild';
import { expectLockHeldThenBreak } from '../helpers/lockContainers';
import { certificateScenario } from '../helpers/scenarios';
import { useSandbox } from '../helpers/useSandbox';

const SCENARIO: Scenario = certificateScenario('crash-certificate-conversion');

const fixture = useSandbox({ azurite: true });

test('killed right after the switch to workload identity federation (before the federated credential): a re-run converges', async () => {
  const scenario = structuredClone(SCENARIO);
  const connectionId = randomUUID();
  scenario.organizations[0]!.connections[0]!.id = connectionId;
  const sandbox = await fixture.start({ scenario, seed: 'crash-certificate-conversion' });
  const { state } = sandbox;
  const app = [...state.apps.values()].find((a) => a.displayName === 'sp-contoso-cert-deploy')!;
  const endpoint = [...state.organizations.values()][0]!.endpoints.get(connectionId)!;
  const env = cliEnv(sandbox, {
    AzureWebJobsStorage: fixture.azurite.connectionString,
    OLD_SECRET_RETENTION_HOURS: '24',
  });
  const args = ['convert', '--connection', connectionId, '--json'];
  const conversion = (): ConversionRecord | undefined => {
    const latest = state.vault.secrets.get(`sc-remediator-wif-${connectionId}`)?.versions.at(-1);
    return latest ? (JSON.parse(latest.value) as ConversionRecord) : undefined;
  };

  let armed: CliChild | undefined;
  let killed = false;
  state.onRequestHandled = (entry) => {
    if (
      armed &&
      entry.service === 'devops' &&
      entry.method === 'PUT' &&
      endpoint.authorization.scheme === 'WorkloadIdentityFederation'
    ) {
      armed.kill();
      armed = undefined;
      killed = true;
    }
  };

  const first = spawnCli(args, env);
  armed = first;
  const firstExit = await first.exit;
  expect(killed).toBe(true);
  expect(firstExit.signal).toBe('SIGKILL');
  // Killed between the switch and the federated credential: started, nothing on the app yet.
  expect(conversion()).toMatchObject({ phase: 'started', credential: 'certificate' });
  expect(app.federatedIdentityCredentials).toEqual([]);
  const ours = app.keyCredentials!.find((k) => k.displayName?.startsWith('sc-remediator '))!;
  expect(ours).toBeDefined();

  // The lease outlives the process, then runs out (broken here instead of waiting for it).
  await expectLockHeldThenBreak(fixture.azurite.connectionString, connectionId);
  const { run: last, exit } = await rerunUntilSuccess(args, env);
  const entry = parseReport(last, exit).connections[0];
  expect(entry).toMatchObject({
    action: 'convert-to-wif',
    outcome: 'succeeded',
    conversion: { path: 'federated-credential', phase: 'verified' },
  });
  expect(entry?.steps?.some((s) => s.startsWith('resumed conversion at phase started'))).toBe(true);

  // Converged: one federated credential, the one Azure DevOps expects, and it signs in.
  const issuer = endpoint.authorization.parameters['workloadIdentityFederationIssuer'] ?? undefined;
  const subject = endpoint.authorization.parameters['workloadIdentityFederationSubject'] ?? undefined;
  expect(app.federatedIdentityCredentials).toHaveLength(1);
  expect(checkFederatedCredential(state, app.appId, issuer, subject).ok).toBe(true);
  expect(endpoint.isReady).toBe(true);
  // The certificate is kept (Key Vault and app) for the retention period; never a secret.
  expect(conversion()).toMatchObject({ phase: 'verified', credential: 'certificate' });
  expect(conversion()?.previousKeyIds).toContain(ours.keyId);
  expect(app.keyCredentials!.map((k) => k.keyId)).toContain(ours.keyId);
  expect(app.passwordCredentials).toEqual([]);
  expect(last.stdout()).not.toMatch(/PRIVATE KEY/);
});
