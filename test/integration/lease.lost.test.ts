/**
 * An operation that loses its lease lock stops before its next write (DESIGN invariant 5): the blob
 * lease on Azurite is broken from outside (as `az storage blob lease break` or an expiry during a
 * stall would) between two phases of a real rotation, retirement, conversion or repair against the
 * sandbox, and sometimes taken by another holder. The operation ends `failed` with `lock-lost`,
 * writes nothing more, and a re-run converges. Also the lease port itself: `stillHeld` renews, and
 * answers false once the lease is broken or taken.
 */
import { randomUUID } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import type { Azurite } from '../../sandbox/azurite';
import { checkClientSecret } from '../../sandbox/credentials';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import type { AppRecord, EndpointRecord, RequestLogEntry, TenantState } from '../../sandbox/model';
import {
  BlobLeaseLockProvider,
  createBlobServiceClient,
  DEFAULT_LOCK_CONTAINER,
  lockBlobName,
} from '../../src/clients/blobLeaseLock';
import { MemoryLockProvider } from '../../src/clients/memoryLock';
import { createMemoryRunLedger } from '../../src/clients/runLedger';
import { buildEngine, type Engine } from '../../src/composition';
import { loadConfig } from '../../src/config';
import type { Lease } from '../../src/remediation/ports';
import { retireConnection } from '../../src/remediation/retirement';
import type { ConnectionTarget } from '../../src/remediation/engine';
import { rotateConnection } from '../../src/remediation/rotation';
import { runRemediation } from '../../src/remediation/run';
import { createLogger, silentLogger } from '../../src/telemetry';
import { engineFor, entryFor, sandboxClock, scenarioCases } from '../helpers/engineSandbox';
import { afterCall, once } from '../helpers/intercept';
import { breakBlobLease } from '../helpers/lockContainers';
import { expectNoLeak, expectSameSecret } from '../helpers/sandboxCredentials';
import { testAzurite } from '../helpers/azuritePool';

jest.setTimeout(60_000);

let azurite: Azurite;
let sandbox: Sandbox | undefined;
const stolen: Lease[] = [];

beforeAll(async () => {
  azurite = await testAzurite({ blob: true, queue: false });
});

afterEach(async () => {
  for (const lease of stolen.splice(0)) await lease.release();
  await sandbox?.stop();
  sandbox = undefined;
});

afterAll(async () => {
  await azurite?.stop();
});

interface Subject {
  state: TenantState;
  endpoint: EndpointRecord;
  app: AppRecord;
  originalKeyId: string;
  originalSecret: string;
  target: ConnectionTarget;
  container: string;
  engine: Engine;
  logLines: string[];
}

/**
 * The `minimal` scenario's expiring Manual connection, and an engine with the lease lock on Azurite
 * (`settings`: more app settings for the engine).
 */
async function subject(settings: Record<string, string> = {}): Promise<Subject> {
  sandbox = await startSandbox({ scenario: 'minimal', seed: 'lease-lost' });
  const { state } = sandbox;
  const endpoint = [...state.organization('contoso')!.endpoints.values()].find(
    (e) => e.name === 'api-deploy',
  )!;
  const app = state.appByAppId(endpoint.authorization.parameters['serviceprincipalid']!)!;
  const logLines: string[] = [];
  const engine = buildEngine(
    loadConfig({
      ...sandbox.env,
      AzureWebJobsStorage: azurite.connectionString,
      OLD_SECRET_RETENTION_HOURS: '0',
      ...settings,
    }),
    createLogger((level, line) => logLines.push(`${level}: ${line}`), 'debug'),
  );
  // Each test its own container: its lock blobs never meet another test's.
  const container = `locks-${randomUUID().slice(0, 8)}`;
  engine.deps.locks = new BlobLeaseLockProvider(
    createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString }),
    { containerName: container },
  );
  engine.settings = { ...engine.settings, verifyInitialDelayMs: 50, verifyMaxDelayMs: 200 };
  return {
    state,
    endpoint,
    app,
    originalKeyId: app.passwordCredentials[0]!.keyId,
    originalSecret: endpoint.authorization.parameters['serviceprincipalkey'] ?? '',
    target: {
      organizationUrl: sandbox.organizationUrls[0]!,
      project: 'api',
      connectionId: endpoint.id,
      previousKeyIds: [app.passwordCredentials[0]!.keyId],
      // What the plan's entitlement gate found (the connection holds a working secret of its app).
      entitlement: { appId: app.appId, how: 'proof:test-connection-ok' },
      // What the run's usage census found: no other connection names the app (invariant 9).
      usage: { others: [], gaps: [] },
    },
    container,
    engine,
    logLines,
  };
}

/** Breaks the connection's lease at once, as an operator (or an expiry) would; `steal`: another holder takes it. */
async function breakLease(s: Subject, steal: boolean): Promise<void> {
  const key = `connection-${s.endpoint.id}`;
  await breakBlobLease(azurite.connectionString, s.container, key);
  if (!steal) return;
  const thief = await new BlobLeaseLockProvider(
    createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString }),
    { containerName: s.container },
  ).tryAcquire(key, 60);
  if (!thief) throw new Error('The broken lease could not be taken.');
  stolen.push(thief);
}

const graphWrites = (s: Subject, what: RegExp): RequestLogEntry[] =>
  s.state.requestLog.filter(
    (e) => e.service === 'graph' && e.method === 'POST' && what.test(e.path) && e.status < 300,
  );
const vaultRecord = (s: Subject) =>
  s.state.vault.secrets.get(`sc-remediator-${s.endpoint.id}`.toLowerCase())?.versions.at(-1);

/** The connection works with the secret Key Vault holds, and only that credential is left. */
function expectConverged(s: Subject): void {
  const value = s.endpoint.authorization.parameters['serviceprincipalkey'] ?? '';
  const latest = vaultRecord(s);
  if (!latest) throw new Error('Key Vault holds no rotation record.');
  expectSameSecret(value, latest.value, "the connection's secret (vs Key Vault)");
  expect(latest.tags['phase']).toBe('completed');
  expect(s.app.passwordCredentials.map((p) => p.keyId)).toEqual([latest.tags['keyId']]);
  expect(checkClientSecret(s.state, s.app.appId, value).ok).toBe(true);
  expect(s.endpoint.isReady).toBe(true);
}

function expectNoSecretIn(s: Subject, texts: string[]): void {
  for (const secret of s.state.allSecretValues())
    for (const text of texts) expectNoLeak(text, secret, 'the results and logs');
}

test('lease broken and taken right after addPassword: no secret in Key Vault, no PUT, the fresh credential removed; a re-run converges', async () => {
  const s = await subject();
  const restoreAddPassword = afterCall(s.engine.deps.graph, 'addPassword', () => breakLease(s, true));

  const lost = await rotateConnection(s.target, s.engine.deps, s.engine.settings);

  expect(lost).toMatchObject({ outcome: 'failed', error: { code: 'lock-lost', transient: true } });
  expect(lost.error?.message).toMatch(
    /lock on this connection was lost before storing the new secret in Key Vault/,
  );
  expect(lost.steps).toContainEqual(
    expect.stringMatching(
      /^removed credential [0-9a-f-]+ again: the lock was lost before Key Vault got its value$/,
    ),
  );
  // Key Vault holds only the rotation's intent, noted before addPassword (invariant 4): no value.
  expect(vaultRecord(s)?.contentType).toMatch(/rotation-intent$/);
  expect(vaultRecord(s)?.tags['phase']).toBeUndefined();
  expect(s.state.writes('devops')).toEqual([]);
  expect(s.state.writes('keyvault')).toHaveLength(1);
  expect(s.app.passwordCredentials.map((p) => p.keyId)).toEqual([s.originalKeyId]);
  expectSameSecret(
    s.endpoint.authorization.parameters['serviceprincipalkey'] ?? undefined,
    s.originalSecret,
    'the connection',
  );

  // The other holder still has the lock: a run now is kept out; once it is released, a run converges.
  restoreAddPassword();
  expect(await rotateConnection(s.target, s.engine.deps, s.engine.settings)).toMatchObject({
    outcome: 'skipped',
    error: { code: 'lock-held' },
  });
  for (const lease of stolen.splice(0)) await lease.release();
  const again = await rotateConnection(s.target, s.engine.deps, s.engine.settings);
  expect(again).toMatchObject({ outcome: 'succeeded', phase: 'completed' });
  expectConverged(s);
  expectNoSecretIn(s, [...s.logLines, JSON.stringify([lost, again])]);
});

test('lease broken and taken during the PUT: the applied phase is not recorded; the re-run resumes at created', async () => {
  const s = await subject();
  const restoreUpdate = afterCall(s.engine.deps.devops, 'updateConnection', () => breakLease(s, true));

  const lost = await rotateConnection(s.target, s.engine.deps, s.engine.settings);

  expect(lost).toMatchObject({ outcome: 'failed', error: { code: 'lock-lost' } });
  expect(lost.error?.message).toMatch(/before recording the applied phase in Key Vault/);
  expect(vaultRecord(s)?.tags['phase']).toBe('created');
  expect(graphWrites(s, /removePassword$/i)).toEqual([]);

  restoreUpdate();
  for (const lease of stolen.splice(0)) await lease.release();
  const again = await rotateConnection(s.target, s.engine.deps, s.engine.settings);
  expect(again).toMatchObject({ outcome: 'succeeded', phase: 'completed' });
  expect(again.steps[0]).toMatch(/^resumed rotation [0-9a-f]+ at phase created$/);
  expect(graphWrites(s, /addPassword$/i)).toHaveLength(1);
  expectConverged(s);
});

test('lease broken during verification (after the PUT): the verification is not recorded, nothing removed; the re-run resumes at applied', async () => {
  const s = await subject();
  const devops = s.engine.deps.devops;
  const testConnection = devops.testConnection.bind(devops);
  let broken = false;
  devops.testConnection = async (...args) => {
    if (!broken) {
      broken = true;
      await breakLease(s, false);
    }
    return testConnection(...args);
  };

  const lost = await rotateConnection(s.target, s.engine.deps, s.engine.settings);

  expect(lost).toMatchObject({ outcome: 'failed', error: { code: 'lock-lost' } });
  expect(lost.error?.message).toMatch(/before recording the verification in Key Vault/);
  // Applied: the connection already works on the new secret, both credentials are still there.
  expect(vaultRecord(s)?.tags['phase']).toBe('applied');
  expect(s.app.passwordCredentials).toHaveLength(2);
  expect(graphWrites(s, /removePassword$/i)).toEqual([]);
  expect(
    checkClientSecret(s.state, s.app.appId, s.endpoint.authorization.parameters['serviceprincipalkey'] ?? '')
      .ok,
  ).toBe(true);

  const again = await rotateConnection(s.target, s.engine.deps, s.engine.settings);
  expect(again).toMatchObject({ outcome: 'succeeded', phase: 'completed' });
  expect(again.steps[0]).toMatch(/^resumed rotation [0-9a-f]+ at phase applied$/);
  expect(graphWrites(s, /addPassword$/i)).toHaveLength(1);
  expectConverged(s);
});

test('lease broken before the superseded credential is removed: it stays, the rotation stays verified; the re-run removes it', async () => {
  const s = await subject();
  const restoreUpdate = afterCall(s.engine.deps.store, 'updateRecord', async (record) => {
    if (record.phase === 'verified') await breakLease(s, true);
  });

  const lost = await rotateConnection(s.target, s.engine.deps, s.engine.settings);

  expect(lost).toMatchObject({ outcome: 'failed', error: { code: 'lock-lost' } });
  expect(lost.error?.message).toMatch(/before removing a superseded credential/);
  expect(vaultRecord(s)?.tags['phase']).toBe('verified');
  expect(s.app.passwordCredentials.map((p) => p.keyId)).toContain(s.originalKeyId);
  expect(graphWrites(s, /removePassword$/i)).toEqual([]);

  restoreUpdate();
  for (const lease of stolen.splice(0)) await lease.release();
  const again = await rotateConnection(s.target, s.engine.deps, s.engine.settings);
  expect(again).toMatchObject({ outcome: 'succeeded', phase: 'completed', removedKeyIds: [s.originalKeyId] });
  expectConverged(s);
});

test('retirement: lease broken after the definition is recorded: the connection is not deleted; a re-run deletes it', async () => {
  const s = await subject();
  const ledger = createMemoryRunLedger();
  afterCall(
    ledger,
    'recordRetired',
    once(() => breakLease(s, false)),
  );
  const deps = { ...s.engine.deps, retirements: ledger };
  const target = {
    ...s.target,
    organization: 'contoso',
    projects: [],
    reason: 'test: unrecoverable',
  };

  const lost = await retireConnection(target, deps);

  expect(lost).toMatchObject({ outcome: 'failed', error: { code: 'lock-lost' } });
  expect(s.state.organization('contoso')!.endpoints.has(s.endpoint.id)).toBe(true);
  expect(s.state.writes('devops')).toEqual([]);

  const again = await retireConnection(target, deps);
  expect(again).toMatchObject({ outcome: 'succeeded' });
  expect(s.state.organization('contoso')!.endpoints.has(s.endpoint.id)).toBe(false);
});

test('LOCK_LEASE_SECONDS reaches the lease a run acquires on Azurite', async () => {
  const s = await subject({ LOCK_LEASE_SECONDS: '21' });
  // The engine's lock port, recording what the run asks of the blob lease provider it wraps.
  const blobLocks = s.engine.deps.locks as BlobLeaseLockProvider;
  const taken: { key: string; seconds: number; leaseSeconds: number }[] = [];
  s.engine.deps.locks = {
    tryAcquire: async (key, seconds) => {
      const lease = await blobLocks.tryAcquire(key, seconds);
      if (lease) taken.push({ key, seconds, leaseSeconds: lease.durationSeconds });
      return lease;
    },
  };

  const result = await runRemediation(s.engine.deps, s.engine.settings, { connectionId: s.endpoint.id });

  expect(entryFor(result.report, s.endpoint.id)).toMatchObject({ outcome: 'succeeded', phase: 'completed' });
  expect(taken).toEqual([{ key: `connection-${s.endpoint.id}`, seconds: 21, leaseSeconds: 21 }]);
});

describe('Lease.stillHeld', () => {
  test('blob lease: true while held (a renewal), false once broken, or broken and taken, or released', async () => {
    const container = `locks-${randomUUID().slice(0, 8)}`;
    const service = createBlobServiceClient({ AzureWebJobsStorage: azurite.connectionString });
    const provider = new BlobLeaseLockProvider(service, { containerName: container });
    const blobLease = (key: string) =>
      BlobServiceClient.fromConnectionString(azurite.connectionString)
        .getContainerClient(container)
        .getBlobClient(lockBlobName(key))
        .getBlobLeaseClient();

    const held = (await provider.tryAcquire('held', 15))!;
    expect(await held.stillHeld()).toBe(true);
    expect(held.renewals).toBe(1);
    await held.release();
    expect(await held.stillHeld()).toBe(false);

    const broken = (await provider.tryAcquire('broken', 15))!;
    await blobLease('broken').breakLease(0);
    expect(await broken.stillHeld()).toBe(false);
    expect(broken.lost).toBe(true);
    await broken.release();

    const taken = (await provider.tryAcquire('taken', 15))!;
    await blobLease('taken').breakLease(0);
    const thief = (await provider.tryAcquire('taken', 15))!;
    expect(await taken.stillHeld()).toBe(false);
    expect(await thief.stillHeld()).toBe(true);
    await Promise.all([taken.release(), thief.release()]);
  });

  test('in-process lock: true while held, false once released', async () => {
    const locks = new MemoryLockProvider();
    const lease = (await locks.tryAcquire('k', 15))!;
    expect(await lease.stillHeld()).toBe(true);
    await lease.release();
    expect(await lease.stillHeld()).toBe(false);
  });
});

describe('conversion and repair (default scenario, through the run)', () => {
  const engineWithLocks = (s: Sandbox) =>
    engineFor(s, silentLogger, {
      settings: { AzureWebJobsStorage: azurite.connectionString, OLD_SECRET_RETENTION_HOURS: '0' },
      clock: sandboxClock(s, true),
    });

  async function breakDefaultLease(connectionId: string): Promise<void> {
    await breakBlobLease(azurite.connectionString, DEFAULT_LOCK_CONTAINER, `connection-${connectionId}`);
  }

  test('conversion: lease broken once the conversion is recorded: the connection is not converted; a re-run converts it', async () => {
    sandbox = await startSandbox({ scenario: 'default', seed: 'lease-lost-wif' });
    const c = scenarioCases(sandbox).get('automatic-expiring-other-password')!;
    const engine = engineWithLocks(sandbox);
    const restorePut = afterCall(
      engine.deps.conversions!,
      'putConversion',
      once(() => breakDefaultLease(c.connectionId)),
    );

    const lost = await runRemediation(engine.deps, engine.settings, {
      connectionId: c.connectionId,
      intent: 'convert',
    });
    const entry = entryFor(lost.report, c.connectionId);
    expect(entry).toMatchObject({ action: 'convert-to-wif', outcome: 'failed' });
    expect(entry.error).toMatch(/lock on this connection was lost before updating the connection/);
    expect(c.endpoint.authorization.scheme).toBe('ServicePrincipal');
    expect(sandbox.state.writes('devops')).toEqual([]);

    restorePut();
    const again = await runRemediation(engine.deps, engine.settings, {
      connectionId: c.connectionId,
      intent: 'convert',
    });
    expect(entryFor(again.report, c.connectionId)).toMatchObject({ outcome: 'succeeded' });
    expect(c.endpoint.authorization.scheme).toBe('WorkloadIdentityFederation');
  });

  test('repair: lease broken before the PUT: the connection is left as it was; a re-run repairs it', async () => {
    sandbox = await startSandbox({ scenario: 'default', seed: 'lease-lost-repair' });
    const c = scenarioCases(sandbox).get('accesstoken-null')!;
    expect('accesstoken' in c.endpoint.authorization.parameters).toBe(true);
    const engine = engineWithLocks(sandbox);
    const locks = engine.deps.locks;
    // The lease is broken as soon as the repair holds it: its reads go ahead, its PUT must not.
    engine.deps.locks = {
      tryAcquire: async (key, seconds) => {
        const lease = await locks.tryAcquire(key, seconds);
        if (lease) await breakDefaultLease(c.connectionId);
        return lease;
      },
    };

    const lost = await runRemediation(engine.deps, engine.settings, { connectionId: c.connectionId });
    const entry = entryFor(lost.report, c.connectionId);
    expect(entry).toMatchObject({ action: 'repair', outcome: 'failed' });
    expect(entry.error).toMatch(/lock on this connection was lost before updating the connection/);
    expect('accesstoken' in c.endpoint.authorization.parameters).toBe(true);
    expect(sandbox.state.writes('devops')).toEqual([]);

    engine.deps.locks = locks;
    const again = await runRemediation(engine.deps, engine.settings, { connectionId: c.connectionId });
    expect(entryFor(again.report, c.connectionId)).toMatchObject({ action: 'repair', outcome: 'succeeded' });
    expect('accesstoken' in c.endpoint.authorization.parameters).toBe(false);
  });
});
