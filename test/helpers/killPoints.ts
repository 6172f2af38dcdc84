/**
 * Crash tests (DESIGN invariants 1, 2, 4 and 5) with real process kills: the CLI runs as a child
 * process and the sandbox's `onRequestHandled` hook SIGKILLs it right after one exact request of a
 * rotation was handled — after Graph addPassword, after the Key Vault set (phase created), after the
 * Azure DevOps PUT, after the Key Vault update to applied, after the TestConnection proxy call, after
 * the Key Vault update to verified, after the first Graph removePassword. Then the CLI is run again
 * until it exits 0, and the tenant must have converged: the connection holds the Key Vault value,
 * which is a live credential of the app that gets a token; the record is `completed`; no credential
 * marked for the connection is left but the current one; the superseded one is gone and an unrelated
 * one is kept.
 *
 * Along the way every handled request is checked against the invariants, not only the end state:
 * the connection never holds a secret that is not already in Key Vault (1) and always holds one that
 * gets a token (no secret lost); no credential disappears except through removePassword, and none is
 * removed before its replacement is verified, except an orphan that never reached Key Vault (2, 4).
 * After each kill the lease lock is still held (5); the test breaks it, as its expiry would.
 *
 * `npm test` runs one kill point on the Manual connection (test/integration/crash.test.ts); the
 * slow project the rest (test/integration/crash.slow.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { checkClientSecret } from '../../sandbox/credentials';
import type { Sandbox, Scenario } from '../../sandbox/index';
import type {
  AppRecord,
  EndpointRecord,
  RequestLogEntry,
  TenantState,
  VaultSecret,
} from '../../sandbox/model';
import { cliEnv, parseReport, rerunUntilSuccess, spawnCli, type CliChild } from './cliChild';
import { expectNoLeak, expectSameSecret } from './sandboxCredentials';
import { expectLockHeldThenBreak } from './lockContainers';
import { useSandbox } from './useSandbox';
import { API_DEPLOY_CONNECTION, CAST, CAST_MEMBERS, deployApp } from './scenarios';

/** One expiring Manual connection, one expiring Automatic connection whose app has more passwords. */
const SCENARIO: Scenario = {
  name: 'crash',
  description: 'Crash tests: one expiring Manual and one expiring Automatic connection.',
  ...CAST,
  apps: [
    deployApp([
      { key: 'pipeline', displayName: 'azure-devops api-deploy', startInDays: -355, endInDays: 10 },
    ]),
    {
      key: 'warehouse',
      displayName: 'contoso-data-4613c21e-ee27-4f31-8046-78ef1793637c',
      owners: ['remediator', 'alice'],
      passwords: [
        { key: 'ado', displayName: 'contoso-data-2af15f2a-8049-4413-8099-3952c0e82d13', endInDays: 7 },
        // Another consumer's live password: it must survive every rotation of the connection.
        { key: 'adf-etl', displayName: 'adf-etl-prod (do not delete)', startInDays: -35, endInDays: 330 },
        // Long expired: cleanup removes it (so the Automatic case has a removePassword to die after).
        { key: 'stale', displayName: 'contoso-data-2019', startInDays: -800, endInDays: -30 },
      ],
    },
  ],
  organizations: [
    {
      name: 'contoso',
      projects: [{ name: 'api' }, { name: 'data' }],
      members: CAST_MEMBERS,
      connections: [
        API_DEPLOY_CONNECTION,
        {
          key: 'data-warehouse',
          name: 'data-warehouse-prod',
          projects: ['data'],
          scheme: 'ServicePrincipal',
          creationMode: 'Automatic',
          app: 'warehouse',
          secret: 'ado',
          createdBy: 'alice',
        },
      ],
    },
  ],
};

/**
 * The scenario with a Manual connection whose app lives in another tenant (fabrikam), reached
 * through the multi-tenant app that trusts the product's identity (ADDITIONAL_TENANT_IDS).
 */
function withOtherTenant(scenario: Scenario): Scenario {
  scenario.apps.push({
    key: 'remediator-multi-tenant',
    displayName: 'sc-remediator multi-tenant',
    signInAudience: 'AzureADMultipleOrgs',
    owners: ['alice'],
    trustsIdentities: ['remediator'],
  });
  scenario.otherTenants = [
    {
      key: 'fabrikam',
      consents: [
        {
          app: 'remediator-multi-tenant',
          graphPermissions: ['Application.ReadWrite.OwnedBy', 'Policy.Read.All'],
        },
      ],
      apps: [
        {
          key: 'fabrikam-deploy',
          displayName: 'sp-fabrikam-deploy',
          owners: ['remediator-multi-tenant'],
          passwords: [{ key: 'pipeline', displayName: 'azure-devops fabrikam-deploy', endInDays: 10 }],
        },
      ],
    },
  ];
  scenario.organizations[0]!.connections.push({
    key: 'fabrikam-deploy',
    name: 'fabrikam-deploy',
    projects: ['api'],
    scheme: 'ServicePrincipal',
    creationMode: 'Manual',
    app: 'fabrikam-deploy',
    secret: 'pipeline',
    createdBy: 'alice',
  });
  return scenario;
}

const MARKER = /^sc-remediator (\S+) (\S+)$/;

/** `OtherTenant`: a Manual connection whose app lives in another configured tenant. */
type Kind = 'Manual' | 'Automatic' | 'OtherTenant';

/** The connection under test, as the sandbox holds it. */
interface Target {
  kind: Kind;
  connectionId: string;
  app: AppRecord;
  /** The tenant the app lives in (where its secrets are checked). */
  tenant: TenantState;
  /** Key Vault secret name (`sc-remediator-<connectionId>`), lower-cased. */
  secretName: string;
  /** The credential the connection used before. */
  originalKeyId: string;
  /** Automatic only: another consumer's password and an expired one. */
  unrelatedKeyId?: string;
  expiredKeyId?: string;
}

interface KillPoint {
  name: string;
  matches(e: RequestLogEntry, t: Target, state: TenantState): boolean;
  /** Killed before the run takes the connection's lock: no lease is left behind. */
  beforeLock?: boolean;
}

const ok = (e: RequestLogEntry): boolean => e.status >= 200 && e.status < 300;
const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

function vaultSecret(state: TenantState, t: Target): VaultSecret | undefined {
  return state.vault.secrets.get(t.secretName);
}

function latestTags(state: TenantState, t: Target): Record<string, string> {
  return vaultSecret(state, t)?.versions.at(-1)?.tags ?? {};
}

const keyVaultUpdateTo =
  (phase: string) =>
  (e: RequestLogEntry, t: Target, state: TenantState): boolean =>
    e.service === 'keyvault' &&
    e.method === 'PATCH' &&
    e.path.toLowerCase().startsWith(`/secrets/${t.secretName}/`) &&
    ok(e) &&
    latestTags(state, t)['phase'] === phase;

/** A Graph addPassword or removePassword call on the target's app (answered or not). */
const passwordCall =
  (action: 'addPassword' | 'removePassword') =>
  (e: RequestLogEntry, t: Target): boolean =>
    e.service === 'graph' && e.method === 'POST' && same(e.path, `/v1.0/applications/${t.app.id}/${action}`);
const isAddPassword = passwordCall('addPassword');
/** Azure DevOps' TestConnection (the endpoint proxy) of the target connection. */
const isTestConnection = (e: RequestLogEntry, t: Target): boolean =>
  e.service === 'devops' &&
  e.method === 'POST' &&
  e.path.endsWith('/_apis/serviceendpoint/endpointproxy') &&
  same(e.query['endpointId'] ?? '', t.connectionId);
const isRemovePassword = passwordCall('removePassword');

export const KILL_POINTS: KillPoint[] = [
  { name: 'after Graph addPassword', matches: (e, t) => isAddPassword(e, t) && ok(e) },
  {
    name: 'after the Key Vault set (phase created)',
    matches: (e, t, state) =>
      e.service === 'keyvault' &&
      e.method === 'PUT' &&
      same(e.path, `/secrets/${t.secretName}`) &&
      ok(e) &&
      latestTags(state, t)['phase'] === 'created',
  },
  {
    name: 'after the binding is recorded in Key Vault',
    matches: (e, t) =>
      e.service === 'keyvault' &&
      e.method === 'PUT' &&
      same(e.path, `/secrets/sc-remediator-binding-${t.connectionId}`) &&
      ok(e),
  },
  {
    name: 'after the Azure DevOps PUT',
    matches: (e, t) =>
      e.service === 'devops' &&
      e.method === 'PUT' &&
      same(e.path, `/contoso/_apis/serviceendpoint/endpoints/${t.connectionId}`) &&
      ok(e),
  },
  { name: 'after the Key Vault update to applied', matches: keyVaultUpdateTo('applied') },
  {
    name: 'after the TestConnection proxy call',
    matches: (e, t, state) => isTestConnection(e, t) && ok(e) && latestTags(state, t)['phase'] === 'applied',
  },
  { name: 'after the Key Vault update to verified', matches: keyVaultUpdateTo('verified') },
  { name: 'after the first Graph removePassword', matches: (e, t) => isRemovePassword(e, t) && ok(e) },
  {
    // Before the lock: TestConnection of the stored secret proves the connection holds a secret of
    // its app (the entitlement, invariant 8); nothing is written yet.
    name: 'after the entitlement proof (TestConnection of the stored secret)',
    beforeLock: true,
    matches: (e, t, state) => isTestConnection(e, t) && ok(e) && vaultSecret(state, t) === undefined,
  },
];

function endpointOf(state: TenantState, connectionId: string): EndpointRecord {
  const ep = state.organization('contoso')?.endpoints.get(connectionId);
  if (!ep) throw new Error(`No endpoint ${connectionId}.`);
  return ep;
}

function connectionKey(state: TenantState, connectionId: string): string | undefined {
  return endpointOf(state, connectionId).authorization.parameters['serviceprincipalkey'] ?? undefined;
}

function targetOf(sandbox: Sandbox, kind: Kind): Target {
  const org = sandbox.state.organization('contoso')!;
  const home = (e: EndpointRecord) => e.authorization.parameters['tenantid'] === sandbox.state.tenantId;
  const ep = [...org.endpoints.values()].find((e) =>
    kind === 'OtherTenant' ? !home(e) : home(e) && e.data['creationMode'] === kind,
  )!;
  const tenant = sandbox.state.tenant(ep.authorization.parameters['tenantid'])!;
  const app = tenant.appByAppId(ep.authorization.parameters['serviceprincipalid']!)!;
  const value = ep.authorization.parameters['serviceprincipalkey'];
  const original = app.passwordCredentials.find((p) => p.secretText === value)!;
  const byName = (name: string) =>
    app.passwordCredentials.find((p) => p.displayName?.startsWith(name))?.keyId;
  return {
    kind,
    connectionId: ep.id,
    app,
    tenant,
    secretName: `sc-remediator-${ep.id}`.toLowerCase(),
    originalKeyId: original.keyId,
    unrelatedKeyId: kind === 'Automatic' ? byName('adf-etl') : undefined,
    expiredKeyId: kind === 'Automatic' ? byName('contoso-data-2019') : undefined,
  };
}

/**
 * Checks the invariants after every handled request (from the sandbox hook) and collects what the
 * test reports: violations are plain sentences, never a secret value.
 */
class InvariantWatch {
  readonly violations: string[] = [];
  /** Credentials added to the app, in order. */
  readonly added: string[] = [];
  readonly removed: string[] = [];
  private keys: Set<string>;
  private key: string | undefined;

  constructor(
    private readonly state: TenantState,
    private readonly t: Target,
  ) {
    this.keys = new Set(t.app.passwordCredentials.map((p) => p.keyId));
    this.key = connectionKey(state, t.connectionId);
  }

  private storedKeyIds(): Set<string> {
    return new Set((vaultSecret(this.state, this.t)?.versions ?? []).map((v) => v.tags['keyId'] ?? ''));
  }

  private inVault(value: string): boolean {
    return (vaultSecret(this.state, this.t)?.versions ?? []).some((v) => v.value === value);
  }

  observe(e: RequestLogEntry): void {
    const where = `${e.service} ${e.method} ${e.path}`;
    const current = new Set(this.t.app.passwordCredentials.map((p) => p.keyId));
    for (const keyId of current) if (!this.keys.has(keyId)) this.added.push(keyId);
    for (const keyId of this.keys) {
      if (current.has(keyId)) continue;
      this.removed.push(keyId);
      if (!isRemovePassword(e, this.t)) {
        this.violations.push(`credential ${keyId} disappeared on ${where}`);
        continue;
      }
      const tags = latestTags(this.state, this.t);
      const orphan = this.added.includes(keyId) && !this.storedKeyIds().has(keyId);
      // Invariant 2: only after the new credential is verified, and never the recorded current one.
      if (!orphan && (tags['phase'] !== 'verified' || tags['keyId'] === keyId))
        this.violations.push(
          `credential ${keyId} removed while the record is in phase ${tags['phase'] ?? '(none)'}`,
        );
    }
    this.keys = current;

    const key = connectionKey(this.state, this.t.connectionId);
    if (key !== this.key) {
      // Invariant 1: a value reaches the connection only once Key Vault holds it.
      if (key === undefined || !this.inVault(key))
        this.violations.push(`the connection got a secret Key Vault does not hold (${where})`);
      this.key = key;
    }
    // No secret lost: the connection can always get a token.
    if (!checkClientSecret(this.t.tenant, this.t.app.appId, key).ok)
      this.violations.push(`the connection's secret gets no token after ${where}`);
  }
}

interface CaseLog {
  killPoint: string;
  kind: Kind;
  addPasswordKilledRun: number;
  addPasswordReruns: number;
  removePasswordTotal: number;
  orphansRemoved: number;
  reruns: number;
  ms: number;
}

/**
 * One test per kill point and connection kind (`kinds`, by default Manual and Automatic): kill the
 * CLI there, re-run until it exits 0, check the tenant converged and no invariant broke on the way.
 */
export function killPointTests(points: KillPoint[], kinds: Kind[] = ['Manual', 'Automatic']): void {
  const caseLogs: CaseLog[] = [];
  const fixture = useSandbox({ azurite: true });

  afterAll(() => {
    if (caseLogs.length > 0)
      console.log(
        [
          'kill point | connection | addPassword (killed run + re-runs) | removePassword | orphans removed | re-runs | ms',
          ...caseLogs.map(
            (c) =>
              `${c.killPoint} | ${c.kind} | ${c.addPasswordKilledRun} + ${c.addPasswordReruns} | ${c.removePasswordTotal} | ${c.orphansRemoved} | ${c.reruns} | ${c.ms}`,
          ),
        ].join('\n'),
      );
  });

  async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  const CASES: [string, Kind, KillPoint][] = points.flatMap((k) =>
    kinds.map((kind): [string, Kind, KillPoint] => [k.name, kind, k]),
  );

  test.each(CASES)('killed %s (%s connection): a re-run converges', async (_name, kind, point) => {
    const started = Date.now();
    // Fresh connection ids: lock keys (and Key Vault names) of one case never meet another's.
    const scenario =
      kind === 'OtherTenant' ? withOtherTenant(structuredClone(SCENARIO)) : structuredClone(SCENARIO);
    for (const c of scenario.organizations[0]!.connections) c.id = randomUUID();
    const sandbox = await fixture.start({ scenario, seed: 'crash' });
    const { state } = sandbox;
    const t = targetOf(sandbox, kind);
    const other = targetOf(
      sandbox,
      kind === 'Automatic' ? 'Manual' : kind === 'Manual' ? 'Automatic' : 'Manual',
    );
    const otherBefore = {
      key: connectionKey(state, other.connectionId),
      credentials: other.app.passwordCredentials.map((p) => p.keyId),
    };
    const env = cliEnv(sandbox, {
      AzureWebJobsStorage: fixture.azurite.connectionString,
      OLD_SECRET_RETENTION_HOURS: '0',
    });
    const args = ['remediate', '--connection', t.connectionId, '--json'];

    const watch = new InvariantWatch(state, t);
    const secrets = new Set<string>(state.allSecretValues());
    let armed: CliChild | undefined;
    let killedAtLogIndex: number | undefined;
    let killedRequest = '';
    state.onRequestHandled = (entry) => {
      if (armed && point.matches(entry, t, state)) {
        // The request has had its effect; the process dies before it can read the answer.
        armed.kill();
        armed = undefined;
        killedAtLogIndex = state.requestLog.length;
        killedRequest = `${entry.service} ${entry.method} ${entry.path}`;
      }
      watch.observe(entry);
      for (const value of state.allSecretValues()) secrets.add(value);
    };

    // 1. The run that dies.
    const killed = spawnCli(args, env);
    armed = killed;
    const killedExit = await killed.exit;
    const runs: CliChild[] = [killed];
    if (killedAtLogIndex === undefined) {
      const c = parseReport(killed, killedExit).connections[0];
      throw new Error(
        `The run was never killed (exit ${killedExit.code ?? killedExit.signal ?? '?'}): no request matched. ` +
          `It reported ${JSON.stringify({ outcome: c?.outcome, error: c?.error, steps: c?.steps })}.\nstderr:\n${killed.stderr()}`,
      );
    }
    expect(killedExit.signal).toBe('SIGKILL');
    // It died at that exact point: after the request it was killed on (logged once its answer is
    // sent, or with status 0 when its connection was gone first) the sandbox saw nothing from it.
    await until(() => state.requestLog.length > killedAtLogIndex!);
    expect(state.requestLog.slice(killedAtLogIndex).map((e) => `${e.service} ${e.method} ${e.path}`)).toEqual(
      [killedRequest],
    );
    const addedBeforeRerun = [...watch.added];

    // 2. The lease outlives the process; then it runs out (broken here instead of waiting 60 s).
    if (!point.beforeLock) await expectLockHeldThenBreak(fixture.azurite.connectionString, t.connectionId);

    // 3. Re-run until it exits 0 (at most three times).
    const rerunFrom = state.requestLog.length;
    const { run: rerun, exit: lastExit } = await rerunUntilSuccess(args, env, (run) => runs.push(run));
    const report = parseReport(rerun, lastExit);
    const entry = report.connections.find((c) => c.connectionId === t.connectionId);
    expect(report.connections).toHaveLength(1);
    expect(entry).toMatchObject({ action: 'rotate-secret', outcome: 'succeeded', phase: 'completed' });

    // 4. Converged.
    expect(watch.violations).toEqual([]);
    const ep = endpointOf(state, t.connectionId);
    const value = ep.authorization.parameters['serviceprincipalkey'] ?? undefined;
    const latest = vaultSecret(state, t)?.versions.at(-1);
    if (!value || !latest) throw new Error('The connection or Key Vault holds no secret.');
    expectSameSecret(value, latest.value, "the connection's secret (vs Key Vault's latest value)");
    expect(latest.tags['phase']).toBe('completed');
    const current = t.app.passwordCredentials.find((p) => p.keyId === latest.tags['keyId']);
    if (!current) throw new Error('The recorded credential is not on the app.');
    expectSameSecret(current.secretText, value, 'the recorded credential');
    expect(Date.parse(current.endDateTime)).toBeGreaterThan(Date.now() + 80 * 24 * 3600 * 1000);
    expect(checkClientSecret(t.tenant, t.app.appId, value).ok).toBe(true);
    expect(ep.isReady).toBe(true);
    expect(ep.operationStatus.state).toBe('Ready');
    expect(ep.data['creationMode']).toBe('Manual');

    // No orphan: the only credential marked for this connection is the current one.
    const marked = t.app.passwordCredentials.filter(
      (p) => MARKER.exec(p.displayName ?? '')?.[1] === t.connectionId,
    );
    expect(marked.map((p) => p.keyId)).toEqual([current.keyId]);
    // Every credential the runs added is the current one or was removed again.
    for (const keyId of watch.added) expect([current.keyId, ...watch.removed]).toContain(keyId);

    const previous = (latest.tags['previousKeyIds'] ?? '').split(',').filter((k) => k !== '');
    const keyIds = t.app.passwordCredentials.map((p) => p.keyId);
    for (const keyId of previous) expect(keyIds).not.toContain(keyId);
    if (kind !== 'Automatic') {
      // The only credential of a working connection is known to be in use: recorded, then removed.
      expect(previous).toEqual([t.originalKeyId]);
      expect(keyIds).toEqual([current.keyId]);
    } else {
      // Several live passwords: the one in use is only inferred, so it is kept until it expires;
      // the other consumer's password survives; the expired one is cleaned up.
      expect(previous).toEqual([]);
      expect(keyIds.sort()).toEqual([current.keyId, t.originalKeyId, t.unrelatedKeyId].sort());
      expect(keyIds).not.toContain(t.expiredKeyId);
    }

    // The other connection was not touched.
    expectSameSecret(connectionKey(state, other.connectionId), otherBefore.key ?? '', 'the other connection');
    expect(other.app.passwordCredentials.map((p) => p.keyId)).toEqual(otherBefore.credentials);

    // addPassword: one per rotation; a kill before Key Vault costs one more, whose orphan is removed.
    const addedByKilledRun = state.requestLog.slice(0, rerunFrom).filter((e) => isAddPassword(e, t)).length;
    const addedByReruns = state.requestLog.slice(rerunFrom).filter((e) => isAddPassword(e, t)).length;
    expect(addedByKilledRun).toBe(point.beforeLock ? 0 : 1);
    expect(watch.added).toHaveLength(addedByKilledRun + addedByReruns);
    const orphans = addedBeforeRerun.filter((k) => !new Set(previous).has(k) && k !== current.keyId);
    if (point.beforeLock) {
      // Killed while planning: nothing was written, the re-run rotates from the start.
      expect(addedByReruns).toBe(1);
      expect(orphans).toEqual([]);
      expect(entry?.steps?.[0]).not.toMatch(/^resumed rotation/);
    } else if (point === KILL_POINTS[0]) {
      expect(addedByReruns).toBe(1);
      expect(orphans).toHaveLength(1);
      expect(entry?.steps?.join('\n')).toContain(`removed orphaned credential ${orphans[0]}`);
    } else {
      expect(addedByReruns).toBe(0);
      expect(orphans).toEqual([]);
      expect(entry?.steps?.[0]).toMatch(/^resumed rotation \w+ at phase (created|applied|verified)$/);
    }

    // No secret value in anything the processes printed.
    for (const run of runs)
      for (const secret of secrets) {
        expectNoLeak(run.stdout(), secret, 'CLI stdout');
        expectNoLeak(run.stderr(), secret, 'CLI stderr');
      }

    caseLogs.push({
      killPoint: point.name,
      kind,
      addPasswordKilledRun: addedByKilledRun,
      addPasswordReruns: addedByReruns,
      removePasswordTotal: state.requestLog.filter((e) => isRemovePassword(e, t)).length,
      orphansRemoved: orphans.length,
      reruns: runs.length - 1,
      ms: Date.now() - started,
    });
  });
}
