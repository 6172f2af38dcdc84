/**
 * A lost or soft-deleted Key Vault record never deletes a live credential (issue 10 §3, DESIGN
 * invariant 10). The connection is rotated (retention 0: its old secret removed), its app keeps
 * another consumer's live password; then a person deletes the connection's Key Vault secret:
 * - soft delete: a scan does not say healthy, the next run recovers the record before deciding
 *   anything, the live credential stays and the connection keeps working;
 * - delete and purge: the marked credential stays, the report says the rotation state is lost
 *   (finding `error`, diagnosis `rotation-state-lost`), and the next scan is not healthy either.
 * Before the fix both removed the connection's credential as an "orphan" (another live password
 * made it look unused: plan `repair`, remove-orphans) and the connection broke with AADSTS7000215. The real SDK clients talk to
 * the sandbox throughout, the deletion included.
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { checkClientSecret } from '../../sandbox/credentials';
import type { Sandbox, Scenario } from '../../sandbox/index';
import { stableGuid } from '../../sandbox/scenario';
import { runRemediation } from '../../src/remediation/run';
import type { RunReport } from '../../src/remediation/report';
import { createLogger } from '../../src/telemetry';
import { engineFor, entryFor, passwordKeyId, sandboxClock } from '../helpers/engineSandbox';
import { identityCredential } from '../helpers/sandboxCredentials';
import { useSandbox } from '../helpers/useSandbox';
import { API_DEPLOY_CONNECTION, CAST, CAST_MEMBERS, deployApp } from '../helpers/scenarios';

jest.setTimeout(60_000);

const SCENARIO: Scenario = {
  name: 'lost-record',
  description: 'One expiring connection whose app also holds another consumer’s live password.',
  ...CAST,
  apps: [
    deployApp([
      { key: 'pipeline', displayName: 'azure-devops api-deploy', startInDays: -80, endInDays: 10 },
      { key: 'etl', displayName: 'adf-etl-prod (do not delete)', startInDays: -35, endInDays: 330 },
    ]),
  ],
  organizations: [
    {
      name: 'contoso',
      projects: [{ name: 'api' }],
      members: CAST_MEMBERS,
      connections: [API_DEPLOY_CONNECTION],
    },
  ],
};

const CONNECTION_ID = stableGuid('endpoint', 'contoso', 'api-deploy');
const SECRET_NAME = `sc-remediator-${CONNECTION_ID}`;

const fixture = useSandbox({ scenario: SCENARIO, tenant: 'manual' });

function run(s: Sandbox, dryRun = false): Promise<RunReport> {
  const engine = engineFor(
    s,
    createLogger(() => undefined),
    {
      settings: { OLD_SECRET_RETENTION_HOURS: '0' },
      clock: sandboxClock(s, true),
    },
  );
  return runRemediation(engine.deps, engine.settings, { dryRun }).then((r) => r.report);
}

/** A person with the Key Vault Secrets Officer role, through the real SDK. */
function vault(s: Sandbox): SecretClient {
  return new SecretClient(s.urls.keyVault, identityCredential(s, 'remediator'), {
    disableChallengeResourceVerification: true,
  });
}

function app(s: Sandbox) {
  return s.state.appByAppId(stableGuid('app', 'deploy'))!;
}

/** Rotates the connection once; returns the key id of its new (marked) credential. */
async function rotated(s: Sandbox): Promise<string> {
  const report = await run(s);
  expect(entryFor(report, CONNECTION_ID)).toMatchObject({ outcome: 'succeeded', phase: 'completed' });
  const marked = app(s).passwordCredentials.find((p) => p.displayName?.startsWith('sc-remediator '));
  // Eleven days on, the password the connection used before has ended: only the other consumer's
  // password and the marked one are live, so the connection looks healthy whatever it holds.
  s.state.advanceClock(11 * 24 * 3600 * 1000);
  return marked!.keyId;
}

/** The connection works: its secret gets a token and TestConnection passes through the product's client. */
async function expectConnectionWorks(s: Sandbox, keyId: string): Promise<void> {
  expect(app(s).passwordCredentials.map((p) => p.keyId)).toContain(keyId);
  const endpoint = s.state.organization('contoso')!.endpoints.get(CONNECTION_ID)!;
  const value = endpoint.authorization.parameters['serviceprincipalkey'] ?? undefined;
  expect(checkClientSecret(s.state, app(s).appId, value).ok).toBe(true);
  const engine = engineFor(
    s,
    createLogger(() => undefined),
  );
  const orgUrl = s.organizationUrls[0]!;
  const connection = await engine.deps.devops.getConnection(orgUrl, 'api', CONNECTION_ID);
  expect(await engine.deps.devops.testConnection(orgUrl, 'api', connection!)).toMatchObject({ ok: true });
}

test('a soft-deleted record is recovered before anything is decided; the live credential stays', async () => {
  const s = await fixture.start({ seed: 'soft-deleted-record' });
  const keyId = await rotated(s);
  await (await vault(s).beginDeleteSecret(SECRET_NAME, { intervalInMs: 10 })).pollUntilDone();

  // A scan (dry run): not healthy by accident, recovery planned, nothing written.
  const writesBefore = s.state.writes().length;
  const scan = entryFor(await run(s, true), CONNECTION_ID);
  expect(scan).toMatchObject({ finding: 'error', action: 'repair', outcome: 'planned' });
  expect(scan.diagnosis?.kind).toBe('rotation-state-deleted');
  expect(s.state.writes().slice(writesBefore)).toEqual([]);

  // The next run recovers the record first, then finds the connection healthy on its evidence.
  const next = entryFor(await run(s), CONNECTION_ID);
  expect(next).toMatchObject({ finding: 'healthy', credentialSource: 'recorded' });
  expect(next.steps ?? []).toContain('recovered the soft-deleted rotation record from Key Vault');
  const secret = s.state.vault.secrets.get(SECRET_NAME.toLowerCase())!;
  expect(secret.deleted).toBeUndefined();
  expect(secret.versions.at(-1)!.tags['keyId']).toBe(keyId);
  await expectConnectionWorks(s, keyId);
  expect(app(s).passwordCredentials.map((p) => p.keyId)).toContain(passwordKeyId('deploy', 'etl'));
});

test('a purged record: the marked credential stays, the state is reported lost, and the next scan is not healthy', async () => {
  const s = await fixture.start({ seed: 'purged-record' });
  const keyId = await rotated(s);
  const kv = vault(s);
  await (await kv.beginDeleteSecret(SECRET_NAME, { intervalInMs: 10 })).pollUntilDone();
  await kv.purgeDeletedSecret(SECRET_NAME);

  const graphWritesBefore = s.state.writes('graph').length;
  const next = entryFor(await run(s), CONNECTION_ID);
  expect(next).toMatchObject({ finding: 'error', action: 'report', outcome: 'skipped' });
  expect(next.diagnosis?.kind).toBe('rotation-state-lost');
  expect(next.diagnosis?.cause).toContain(keyId);
  expect(next.diagnosis?.nextStep).toContain(SECRET_NAME);
  expect(s.state.writes('graph').slice(graphWritesBefore)).toEqual([]);
  await expectConnectionWorks(s, keyId);

  const scan = entryFor(await run(s, true), CONNECTION_ID);
  expect(scan.finding).not.toBe('healthy');
  expect(scan.diagnosis?.kind).toBe('rotation-state-lost');
  await expectConnectionWorks(s, keyId);
});

test('a soft-deleted record the intent write runs into is recovered, and the next run decides with it', async () => {
  const s = await fixture.start({ seed: 'soft-deleted-no-marker' });
  const keyId = await rotated(s);
  // A person deletes the marked credential (the connection breaks), then the record (soft delete).
  app(s).passwordCredentials = app(s).passwordCredentials.filter((p) => p.keyId !== keyId);
  const endpoint = s.state.organization('contoso')!.endpoints.get(CONNECTION_ID)!;
  endpoint.isReady = false;
  endpoint.operationStatus = {
    state: 'Failed',
    statusMessage: 'AADSTS7000215: Invalid client secret provided.',
  };
  await (await vault(s).beginDeleteSecret(SECRET_NAME, { intervalInMs: 10 })).pollUntilDone();

  const first = entryFor(await run(s), CONNECTION_ID);
  expect(first).toMatchObject({ action: 'rotate-secret', outcome: 'skipped' });
  expect(first.error).toMatch(/soft-deleted; it was recovered/);
  const secret = s.state.vault.secrets.get(SECRET_NAME.toLowerCase())!;
  expect(secret.deleted).toBeUndefined();
  expect(secret.versions.at(-1)!.tags['keyId']).toBe(keyId);
  // Nothing was added meanwhile.
  expect(app(s).passwordCredentials.filter((p) => p.displayName?.startsWith('sc-remediator '))).toEqual([]);

  const second = entryFor(await run(s), CONNECTION_ID);
  expect(second).toMatchObject({ action: 'rotate-secret', outcome: 'succeeded', phase: 'completed' });
  const current = s.state.vault.secrets.get(SECRET_NAME.toLowerCase())!.versions.at(-1)!.tags['keyId']!;
  await expectConnectionWorks(s, current);
});
