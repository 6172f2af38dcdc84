/**
 * One rotation per connection at a time (DESIGN invariant 5), with the blob lease lock on Azurite:
 * - two `rotateConnection` calls for one connection at once, each with its own lock provider (two
 *   instances of the app): one rotates, the other is skipped with `lock-held`;
 * - a run whose plan was made before another run rotated the connection, and which only gets the
 *   lock afterwards (a slow instance), does not rotate a second time;
 * - two CLI processes started together on one connection: one rotation.
 */
import { randomUUID } from 'node:crypto';
import { checkClientSecret } from '../../sandbox/credentials';
import type { Sandbox } from '../../sandbox/index';
import type { AppRecord, EndpointRecord, RequestLogEntry, TenantState } from '../../sandbox/model';
import { BlobLeaseLockProvider, createBlobServiceClient } from '../../src/clients/blobLeaseLock';
import { buildEngine, type Engine } from '../../src/composition';
import { loadConfig } from '../../src/config';
import type { LockProvider } from '../../src/remediation/ports';
import type { ConnectionTarget } from '../../src/remediation/engine';
import { rotateConnection } from '../../src/remediation/rotation';
import { runRemediation } from '../../src/remediation/run';
import { createLogger } from '../../src/telemetry';
import { cliEnv, parseReport, spawnCli } from '../helpers/cliChild';
import { expectNoLeak, expectSameSecret } from '../helpers/sandboxCredentials';
import { useSandbox } from '../helpers/useSandbox';

jest.setTimeout(60_000);

const fixture = useSandbox({ azurite: true });

interface Subject {
  sandbox: Sandbox;
  state: TenantState;
  endpoint: EndpointRecord;
  app: AppRecord;
  originalKeyId: string;
  env: Record<string, string>;
  logLines: string[];
}

/** The `minimal` scenario's expiring Manual connection. */
async function subject(): Promise<Subject> {
  const sandbox = await fixture.start({ scenario: 'minimal', seed: 'concurrency' });
  const { state } = sandbox;
  const endpoint = [...state.organization('contoso')!.endpoints.values()].find(
    (e) => e.name === 'api-deploy',
  )!;
  const app = state.appByAppId(endpoint.authorization.parameters['serviceprincipalid']!)!;
  expect(app.passwordCredentials).toHaveLength(1);
  return {
    sandbox,
    state,
    endpoint,
    app,
    originalKeyId: app.passwordCredentials[0]!.keyId,
    env: {
      ...sandbox.env,
      AzureWebJobsStorage: fixture.azurite.connectionString,
      OLD_SECRET_RETENTION_HOURS: '0',
    },
    logLines: [],
  };
}

/** One instance of the app: its own clients, and its own lock provider on the shared storage account. */
function instance(s: Subject, container: string, wrapLocks?: (inner: LockProvider) => LockProvider): Engine {
  const log = createLogger((level, line) => s.logLines.push(`${level}: ${line}`), 'debug');
  const engine = buildEngine(loadConfig(s.env), log);
  const locks = new BlobLeaseLockProvider(
    createBlobServiceClient({ AzureWebJobsStorage: fixture.azurite.connectionString }),
    { containerName: container },
  );
  engine.deps.locks = wrapLocks ? wrapLocks(locks) : locks;
  return engine;
}

const addPasswords = (s: Subject): RequestLogEntry[] =>
  s.state.requestLog.filter(
    (e) =>
      e.service === 'graph' &&
      e.method === 'POST' &&
      e.path.toLowerCase() === `/v1.0/applications/${s.app.id}/addpassword` &&
      e.status === 200,
  );

/** The connection works with the secret Key Vault holds, and only that credential is left. */
function expectConverged(s: Subject): void {
  const value = s.endpoint.authorization.parameters['serviceprincipalkey'] ?? '';
  const latest = s.state.vault.secrets.get(`sc-remediator-${s.endpoint.id}`.toLowerCase())?.versions.at(-1);
  if (!latest) throw new Error('Key Vault holds no rotation record.');
  expectSameSecret(value, latest.value, "the connection's secret (vs Key Vault)");
  expect(latest.tags['phase']).toBe('completed');
  expect(latest.tags['previousKeyIds']).toBe(s.originalKeyId);
  expect(s.app.passwordCredentials.map((p) => p.keyId)).toEqual([latest.tags['keyId']]);
  expect(checkClientSecret(s.state, s.app.appId, value).ok).toBe(true);
  expect(s.endpoint.isReady).toBe(true);
}

function expectNoSecretIn(s: Subject, texts: string[], where: string): void {
  for (const secret of s.state.allSecretValues()) for (const text of texts) expectNoLeak(text, secret, where);
}

test('two rotations of one connection at once, each instance with its own lease lock: one rotates', async () => {
  const s = await subject();
  const target: ConnectionTarget = {
    organizationUrl: s.sandbox.organizationUrls[0]!,
    project: 'api',
    connectionId: s.endpoint.id,
    previousKeyIds: [s.originalKeyId],
    // The run's usage census (invariant 9): no other connection names the app.
    usage: { others: [], gaps: [] },
    // What the plan's entitlement gate found (the connection holds a working secret of its app).
    entitlement: { appId: s.app.appId, how: 'proof:test-connection-ok' },
  };
  // A new container: both instances also race to create it and the lock blob.
  const container = `locks-${randomUUID().slice(0, 8)}`;
  const [a, b] = [instance(s, container), instance(s, container)];

  const results = await Promise.all([
    rotateConnection(target, a.deps, a.settings),
    rotateConnection(target, b.deps, b.settings),
  ]);

  expect(results.map((r) => r.outcome).sort()).toEqual(['skipped', 'succeeded']);
  const skipped = results.find((r) => r.outcome === 'skipped')!;
  expect(skipped.error).toMatchObject({ code: 'lock-held', transient: true });
  expect(skipped.steps).toEqual([]);
  expect(results.find((r) => r.outcome === 'succeeded')!.phase).toBe('completed');
  expect(addPasswords(s)).toHaveLength(1);
  expectConverged(s);

  // The lock was released: the next rotation goes ahead (and is one more).
  const again = await rotateConnection(target, b.deps, b.settings);
  expect(again.outcome).toBe('succeeded');
  expect(addPasswords(s)).toHaveLength(2);
  expectNoSecretIn(s, [...s.logLines, JSON.stringify([...results, again])], 'the engine results and logs');
});

test('a run that planned a rotation but got the lock only after another run completed one does not rotate again', async () => {
  const s = await subject();
  const container = `locks-${randomUUID().slice(0, 8)}`;
  // The slow instance: it assesses and plans, then waits (GC pause, slow storage) before its lock call.
  let reachedLock!: () => void;
  const atLock = new Promise<void>((r) => (reachedLock = r));
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  const slow = instance(s, container, (inner) => ({
    tryAcquire: async (key, seconds) => {
      reachedLock();
      await gate;
      return inner.tryAcquire(key, seconds);
    },
  }));
  const fast = instance(s, container);

  const slowRun = runRemediation(slow.deps, slow.settings, { connectionId: s.endpoint.id });
  await atLock;
  const fastRun = await runRemediation(fast.deps, fast.settings, { connectionId: s.endpoint.id });
  expect(fastRun.report.connections[0]).toMatchObject({ outcome: 'succeeded', phase: 'completed' });
  expect(addPasswords(s)).toHaveLength(1);
  openGate();
  const slowResult = await slowRun;

  // It planned a rotation from what it had read, but under the lock the state is not what it planned from.
  const late = slowResult.report.connections[0]!;
  expect(late).toMatchObject({ finding: 'expiring', action: 'rotate-secret', outcome: 'skipped' });
  expect(late.error).toMatch(/changed while this run waited/);
  expect(addPasswords(s)).toHaveLength(1);
  expectConverged(s);
  expectNoSecretIn(s, [...s.logLines, JSON.stringify([fastRun, slowResult])], 'the reports and logs');
});

test('two CLI processes started together on one connection: one rotation; the other exits 1, skipped', async () => {
  const s = await subject();
  // Graph takes 3 s to add the password, so the two runs surely overlap: whichever gets the lock
  // holds it while the other arrives (without it, one process may finish before the other starts).
  s.sandbox.faults.setRules([{ service: 'graph', method: 'POST', path: '/addPassword$', latencyMs: 3000 }]);
  const env = cliEnv(s.sandbox, {
    AzureWebJobsStorage: fixture.azurite.connectionString,
    OLD_SECRET_RETENTION_HOURS: '0',
  });
  const args = ['remediate', '--connection', s.endpoint.id, '--json'];
  const runs = [spawnCli(args, env), spawnCli(args, env)];
  const exits = await Promise.all(runs.map((r) => r.exit));

  expect(addPasswords(s)).toHaveLength(1);
  expectConverged(s);
  const outcomes = runs.map((run, i) => ({
    exit: exits[i]!.code,
    ...parseReport(run, exits[i]!).connections[0]!,
  }));
  const winner = outcomes.find((o) => o.outcome === 'succeeded');
  expect(winner).toMatchObject({ exit: 0, action: 'rotate-secret', phase: 'completed' });
  // The other run found the lock held: skipped, not failed. It exits 1 all the same: it cannot
  // vouch that the connection is fixed (the holder may still fail), and a run moments later says 0.
  const loser = outcomes.find((o) => o !== winner);
  expect(loser).toMatchObject({ exit: 1, finding: 'expiring', action: 'rotate-secret', outcome: 'skipped' });
  expect(loser?.error).toBe('Another rotation of this connection is in progress.');
  expectNoSecretIn(
    s,
    runs.flatMap((r) => [r.stdout(), r.stderr()]),
    'CLI output',
  );
});
