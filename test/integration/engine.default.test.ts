/**
 * The engine through the product's composition root (`buildEngine`: `@azure/identity`, the Graph
 * client, `@azure/keyvault-secrets`, the Azure DevOps pipeline client, the blob lease lock on
 * Azurite) against the sandbox's default scenario: one test per `case` of the scenario, checking
 * the report entry and what the tenant looks like afterwards; then retention, idempotence,
 * replication lag, Key Vault refusing the write, dry run, secret leaks, and the API calls one
 * rotation costs.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import type { Azurite } from '../../sandbox/azurite';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import type { AppRecord, EndpointRecord, RequestLogEntry } from '../../sandbox/model';
import { generateSecretText } from '../../sandbox/scenario';
import { AUDIENCES } from '../../sandbox/tokens';
import type { EngineDeps } from '../../src/remediation/engine';
import { runRemediation, type RunEventName, type RunResult } from '../../src/remediation/run';
import type { ConnectionReport, DiagnosisKind, RunReport } from '../../src/remediation/report';
import { createLogger, type Logger } from '../../src/telemetry';
import {
  engineFor,
  entryFor,
  expectNoSecrets,
  passwordKeyId,
  requestsTouching,
  sandboxClock,
  scenarioCases,
  snapshot,
  storedVersions,
  vaultVersion,
  writesBesidesIntent,
  writesFor,
  type ScenarioCase,
} from '../helpers/engineSandbox';
import { testAzurite } from '../helpers/azuritePool';

const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;
const AUTOMATIC_ONLY_FIELDS = ['spnObjectId', 'appObjectId', 'azureSpnRoleAssignmentId'];

let azurite: Azurite;

beforeAll(async () => {
  azurite = await testAzurite({ blob: true, queue: false });
});

afterAll(async () => {
  await azurite?.stop();
});

interface Captured {
  lines: string[];
  events: { name: RunEventName; properties: Record<string, string | number | boolean> }[];
  log: Logger;
}

function capture(): Captured {
  const lines: string[] = [];
  return {
    lines,
    events: [],
    log: createLogger((level, line) => lines.push(`${level}: ${line}`), 'debug'),
  };
}

/** Settings every engine here gets on top of the sandbox's: the lock lives in Azurite. */
function storage(extra: Record<string, string> = {}): Record<string, string> {
  return { AzureWebJobsStorage: azurite.connectionString, ...extra };
}

function caseOf(cases: Map<string, ScenarioCase>, label: string): ScenarioCase {
  const c = cases.get(label);
  if (!c) throw new Error(`The default scenario has no case '${label}'.`);
  return c;
}

function appOf(c: ScenarioCase): AppRecord {
  if (!c.app) throw new Error(`Case '${c.label}' has no app.`);
  return c.app;
}

function keyIds(app: AppRecord): string[] {
  return app.passwordCredentials.map((p) => p.keyId).sort();
}

function param(endpoint: EndpointRecord, name: string): string | null | undefined {
  const key = Object.keys(endpoint.authorization.parameters).find(
    (k) => k.toLowerCase() === name.toLowerCase(),
  );
  return key === undefined ? undefined : endpoint.authorization.parameters[key];
}

function hasParam(endpoint: EndpointRecord, name: string): boolean {
  return Object.keys(endpoint.authorization.parameters).some((k) => k.toLowerCase() === name.toLowerCase());
}

function hasDataField(endpoint: EndpointRecord, name: string): boolean {
  return Object.keys(endpoint.data).some((k) => k.toLowerCase() === name.toLowerCase());
}

function count(entries: RequestLogEntry[], method: string, pathPattern: RegExp, status?: number): number {
  return entries.filter(
    (e) => e.method === method && pathPattern.test(e.path) && (status === undefined || e.status === status),
  ).length;
}

/** The report entry in the shape the tests compare: finding, action, outcome, diagnosis kind. */
function verdict(entry: ConnectionReport): {
  finding: string;
  action: string;
  outcome: string;
  diagnosis: DiagnosisKind | undefined;
} {
  return {
    finding: entry.finding,
    action: entry.action,
    outcome: entry.outcome,
    diagnosis: entry.diagnosis?.kind,
  };
}

/**
 * A rotation the tenant shows: the connection is ready and Manual, without the fields Manual
 * rejects, and holds exactly the secret Key Vault keeps, which is a marked password of the app.
 */
function expectRotatedState(
  sandbox: Sandbox,
  c: ScenarioCase,
  phase: 'verified' | 'completed',
): { keyId: string; rotationId: string } {
  const endpoint = c.endpoint;
  expect(endpoint.isReady).toBe(true);
  expect(endpoint.operationStatus.state).toBe('Ready');
  expect(endpoint.data['creationMode']).toBe('Manual');
  for (const field of AUTOMATIC_ONLY_FIELDS) expect(hasDataField(endpoint, field)).toBe(false);
  expect(hasParam(endpoint, 'accesstoken')).toBe(false);

  const version = vaultVersion(sandbox, c.connectionId);
  expect(version).toBeDefined();
  const stored = param(endpoint, 'serviceprincipalkey');
  // Compared without ever printing a secret.
  expect(typeof stored === 'string' && stored.length > 0).toBe(true);
  expect(version!.value === stored).toBe(true);
  expect(version!.tags['phase']).toBe(phase);

  const keyId = version!.tags['keyId']!;
  const rotationId = version!.tags['rotationId']!;
  const credential = appOf(c).passwordCredentials.find((p) => p.keyId === keyId);
  expect(credential).toBeDefined();
  expect(credential!.displayName).toBe(`sc-remediator ${c.connectionId} ${rotationId}`);
  expect(credential!.secretText === version!.value).toBe(true);
  // Key Vault's `expires` carries the credential's end (whole seconds).
  expect(version!.exp).toBe(Math.floor(Date.parse(credential!.endDateTime) / 1000));
  return { keyId, rotationId };
}

describe('default scenario: one remediation run through the real clients (retention 0)', () => {
  let sandbox: Sandbox;
  let cases: Map<string, ScenarioCase>;
  let endpointsBefore: Map<string, EndpointRecord>;
  let appsBefore: Map<string, AppRecord>;
  let secretsBefore: string[];
  let dry: RunResult;
  let writesAfterDryRun: RequestLogEntry[];
  let containersAfterDryRun: string[];
  let runFrom: number;
  let run: RunResult;
  const dryCapture = capture();
  const runCapture = capture();

  beforeAll(async () => {
    sandbox = await startSandbox({ scenario: 'default' });
    cases = scenarioCases(sandbox);
    endpointsBefore = new Map([...cases.values()].map((c) => [c.connectionId, snapshot(c.endpoint)]));
    appsBefore = new Map([...sandbox.state.apps.values()].map((a) => [a.id, snapshot(a)]));
    secretsBefore = sandbox.state.allSecretValues();

    const settings = storage({ OLD_SECRET_RETENTION_HOURS: '0' });
    const dryEngine = engineFor(sandbox, dryCapture.log, { settings });
    dry = await runRemediation(dryEngine.deps, dryEngine.settings, {
      dryRun: true,
      events: (name, properties) => dryCapture.events.push({ name, properties }),
    });
    writesAfterDryRun = sandbox.state.writes();
    const containers: string[] = [];
    for await (const c of BlobServiceClient.fromConnectionString(azurite.connectionString).listContainers())
      containers.push(c.name);
    containersAfterDryRun = containers;

    runFrom = sandbox.state.requestLog.length;
    const engine = engineFor(sandbox, runCapture.log, { settings });
    run = await runRemediation(engine.deps, engine.settings, {
      events: (name, properties) => runCapture.events.push({ name, properties }),
    });
  });

  afterAll(async () => {
    await sandbox?.stop();
  });

  const entry = (label: string): ConnectionReport => entryFor(run.report, caseOf(cases, label).connectionId);

  /** Nothing changed: no write names the connection or its app, and both read as before. */
  function expectUntouched(label: string): void {
    const c = caseOf(cases, label);
    // At most the rotation's intent was noted in Key Vault (before an addPassword Graph refused).
    expect(writesBesidesIntent(sandbox, c)).toEqual([]);
    expect(c.endpoint).toEqual(endpointsBefore.get(c.connectionId));
    if (c.app) expect(c.app).toEqual(appsBefore.get(c.app.id));
    expect(vaultVersion(sandbox, c.connectionId)).toBeUndefined();
  }

  /**
   * The run rotated the connection exactly once: one addPassword, one PUT, one Key Vault value; and,
   * since nothing bound it before, its binding (proved by TestConnection) recorded once beside it.
   */
  function expectRotatedOnce(label: string): { keyId: string; rotationId: string } {
    const c = caseOf(cases, label);
    const app = appOf(c);
    const touching = requestsTouching(sandbox, [c.connectionId, app.id], runFrom);
    expect(count(touching, 'POST', /\/addPassword$/)).toBe(1);
    expect(count(touching, 'PUT', /\/_apis\/serviceendpoint\/endpoints\//)).toBe(1);
    // The rotation's intent (before addPassword), then the value: one version holds a credential.
    expect(count(touching, 'PUT', /^\/secrets\/sc-remediator-(?!binding-)/)).toBe(2);
    expect(storedVersions(sandbox, c.connectionId)).toHaveLength(1);
    expect(count(touching, 'PUT', /^\/secrets\/sc-remediator-binding-/)).toBe(1);
    const e = entryFor(run.report, c.connectionId);
    expect(e.entitlement).toMatchObject({ bound: true, appId: app.appId, recorded: true });
    expect(e.entitlement?.how).toMatch(/^proof:(test-connection-ok|expired-secret-7000222)$/);
    expect(e.phase).toBe('completed');
    expect(e.cleanupDueAt).toBeUndefined();
    const rotated = expectRotatedState(sandbox, c, 'completed');
    const credential = app.passwordCredentials.find((p) => p.keyId === rotated.keyId)!;
    expect(e.newSecretExpiresAt).toBe(
      new Date(Math.floor(Date.parse(credential.endDateTime) / 1000) * 1000).toISOString(),
    );
    // Everything but the secret and the fields Manual refuses is sent back as read.
    const before = endpointsBefore.get(c.connectionId)!;
    expect(c.endpoint.name).toBe(before.name);
    expect(c.endpoint.description).toBe(before.description);
    expect(c.endpoint.serviceEndpointProjectReferences).toEqual(before.serviceEndpointProjectReferences);
    expect(param(c.endpoint, 'serviceprincipalid')).toBe(param(before, 'serviceprincipalid'));
    expect(param(c.endpoint, 'tenantid')).toBe(param(before, 'tenantid'));
    return rotated;
  }

  const COVERED = [
    'failed-secret-expired',
    'automatic-expiring-other-password',
    'accesstoken-null',
    'app-deleted',
    'manual-secret-expired',
    'workload-identity',
    'managed-identity',
    'shared-across-projects',
    'healthy',
    'failed-app-disabled',
    'failed-no-subscription-role',
    'policy-lifetime-cap',
    'policy-blocks-passwords',
    'personal-account-password-limit',
    'app-not-owned',
    'not-endpoint-administrator',
  ];

  test('every case of the default scenario is covered below, and each is reported exactly once', () => {
    expect([...cases.keys()].sort()).toEqual([...COVERED].sort());
    expect(run.problems).toEqual([]);
    expect(run.report.connections).toHaveLength(cases.size);
    for (const c of cases.values()) {
      const e = entryFor(run.report, c.connectionId);
      expect(e.connectionName).toBe(c.name);
      expect(e.organization).toBe(c.organization);
      expect(e.appId).toBe(c.app?.appId ?? null);
    }
  });

  test('failed-secret-expired (Automatic, Failed): rotated, ready, Manual, Automatic-only fields gone', () => {
    expect(verdict(entry('failed-secret-expired'))).toEqual({
      finding: 'expired',
      action: 'rotate-secret',
      outcome: 'succeeded',
      diagnosis: 'expired-secret',
    });
    const { keyId } = expectRotatedOnce('failed-secret-expired');
    const c = caseOf(cases, 'failed-secret-expired');
    expect(endpointsBefore.get(c.connectionId)!.data['creationMode']).toBe('Automatic');
    // The expired password is gone (retention 0); Azure DevOps did not rotate on its own.
    expect(keyIds(appOf(c))).toEqual([keyId]);
    expect(entry('failed-secret-expired').steps).toContain(
      'updated the connection with the new secret (creationMode Automatic → Manual)',
    );
  });

  test("automatic-expiring-other-password: rotated; the other team's password survives", () => {
    expect(verdict(entry('automatic-expiring-other-password'))).toEqual({
      finding: 'expiring',
      action: 'rotate-secret',
      outcome: 'succeeded',
      diagnosis: undefined,
    });
    const { keyId } = expectRotatedOnce('automatic-expiring-other-password');
    const app = appOf(caseOf(cases, 'automatic-expiring-other-password'));
    const before = appsBefore.get(app.id)!;
    const etl = passwordKeyId('data-warehouse', 'adf-etl');
    const ado = passwordKeyId('data-warehouse', 'ado');
    // adf-etl is another consumer's; the old ADO one was only inferred to be in use and still lives.
    expect(keyIds(app)).toEqual([ado, etl, keyId].sort());
    expect(app.passwordCredentials.find((p) => p.keyId === etl)).toEqual(
      before.passwordCredentials.find((p) => p.keyId === etl),
    );
  });

  test('accesstoken-null: repaired without a new credential; accesstoken gone, stored secret kept', () => {
    expect(verdict(entry('accesstoken-null'))).toEqual({
      finding: 'not-ready',
      action: 'repair',
      outcome: 'succeeded',
      diagnosis: 'access-token-invalid',
    });
    const c = caseOf(cases, 'accesstoken-null');
    const app = appOf(c);
    const before = endpointsBefore.get(c.connectionId)!;
    expect(hasParam(before, 'accesstoken')).toBe(true);
    expect(hasParam(c.endpoint, 'accesstoken')).toBe(false);
    expect(c.endpoint.isReady).toBe(true);
    expect(c.endpoint.data['creationMode']).toBe('Manual');
    for (const field of AUTOMATIC_ONLY_FIELDS) expect(hasDataField(c.endpoint, field)).toBe(false);
    expect(param(c.endpoint, 'serviceprincipalkey') === param(before, 'serviceprincipalkey')).toBe(true);
    // No credential was made, none removed, nothing went to Key Vault.
    expect(count(requestsTouching(sandbox, [app.id]), 'POST', /\/addPassword$/)).toBe(0);
    expect(app).toEqual(appsBefore.get(app.id));
    expect(vaultVersion(sandbox, c.connectionId)).toBeUndefined();
    const writes = writesFor(sandbox, c);
    expect(writes.map((w) => `${w.service} ${w.method}`)).toEqual(['devops PUT']);
  });

  test('app-deleted: app-missing, reported, nothing written', () => {
    expect(verdict(entry('app-deleted'))).toEqual({
      finding: 'app-missing',
      action: 'report',
      outcome: 'skipped',
      diagnosis: 'app-not-found',
    });
    expectUntouched('app-deleted');
  });

  test('manual-secret-expired: rotated and ready', () => {
    expect(verdict(entry('manual-secret-expired'))).toEqual({
      finding: 'expired',
      action: 'rotate-secret',
      outcome: 'succeeded',
      diagnosis: 'expired-secret',
    });
    const { keyId } = expectRotatedOnce('manual-secret-expired');
    expect(keyIds(appOf(caseOf(cases, 'manual-secret-expired')))).toEqual([keyId]);
  });

  test.each(['workload-identity', 'managed-identity'])(
    '%s: no secret to rotate, untouched (its app is not even read)',
    (label) => {
      const e = entry(label);
      expect(verdict(e)).toEqual({
        finding: 'healthy',
        action: 'none',
        outcome: 'skipped',
        diagnosis: undefined,
      });
      expect(e.credentialSource).toBe('unknown');
      expectUntouched(label);
      const c = caseOf(cases, label);
      if (c.app) expect(requestsTouching(sandbox, [c.app.appId, c.app.id])).toEqual([]);
      else expect(e.appId).toBeNull();
    },
  );

  test('shared-across-projects: listed once with both projects, rotated once', () => {
    const e = entry('shared-across-projects');
    expect([...e.projects].sort()).toEqual(['platform', 'web']);
    expect(verdict(e)).toEqual({
      finding: 'expiring',
      action: 'rotate-secret',
      outcome: 'succeeded',
      diagnosis: undefined,
    });
    const { keyId } = expectRotatedOnce('shared-across-projects');
    const c = caseOf(cases, 'shared-across-projects');
    expect(c.endpoint.serviceEndpointProjectReferences.map((r) => r.projectReference.name)).toEqual([
      'platform',
      'web',
    ]);
    // The only password of a working connection was known to be in use: superseded and removed.
    expect(keyIds(appOf(c))).toEqual([keyId]);
  });

  test('healthy: nothing to do, nothing written', () => {
    expect(verdict(entry('healthy'))).toEqual({
      finding: 'healthy',
      action: 'none',
      outcome: 'skipped',
      diagnosis: undefined,
    });
    expectUntouched('healthy');
  });

  test('failed-app-disabled: reported as app-disabled, nothing written', () => {
    const e = entry('failed-app-disabled');
    expect(verdict(e)).toEqual({
      finding: 'not-ready',
      action: 'report',
      outcome: 'skipped',
      diagnosis: 'app-disabled',
    });
    expect(e.diagnosis?.code).toBe('AADSTS7000112');
    expectUntouched('failed-app-disabled');
  });

  test('failed-no-subscription-role: reported as a failed role assignment, nothing written', () => {
    const e = entry('failed-no-subscription-role');
    expect(verdict(e)).toEqual({
      finding: 'not-ready',
      action: 'report',
      outcome: 'skipped',
      diagnosis: 'role-assignment-failed',
    });
    expect(e.diagnosis?.fixableByService).toBe(false);
    expectUntouched('failed-no-subscription-role');
  });

  test('policy-lifetime-cap: rotated, and the new secret ends within the 60-day cap', () => {
    const e = entry('policy-lifetime-cap');
    expect(verdict(e)).toEqual({
      finding: 'expiring',
      action: 'rotate-secret',
      outcome: 'succeeded',
      diagnosis: undefined,
    });
    const { keyId } = expectRotatedOnce('policy-lifetime-cap');
    const credential = appOf(caseOf(cases, 'policy-lifetime-cap')).passwordCredentials.find(
      (p) => p.keyId === keyId,
    )!;
    const lifetime = Date.parse(credential.endDateTime) - Date.parse(credential.startDateTime);
    expect(lifetime).toBeLessThanOrEqual(60 * DAY_MS);
    expect(lifetime).toBeGreaterThan(59 * DAY_MS);
    expect(Date.parse(e.newSecretExpiresAt!)).toBeLessThanOrEqual(
      sandbox.state.now().getTime() + 60 * DAY_MS,
    );
  });

  test('policy-blocks-passwords: blocked-by-policy, reported, no password even attempted', () => {
    expect(verdict(entry('policy-blocks-passwords'))).toEqual({
      finding: 'blocked-by-policy',
      action: 'report',
      outcome: 'skipped',
      diagnosis: 'password-policy',
    });
    expectUntouched('policy-blocks-passwords');
    const app = appOf(caseOf(cases, 'policy-blocks-passwords'));
    expect(count(requestsTouching(sandbox, [app.id]), 'POST', /\/addPassword$/)).toBe(0);
  });

  test('personal-account-password-limit: blocked-by-policy with the password-limit diagnosis', () => {
    const e = entry('personal-account-password-limit');
    expect(verdict(e)).toEqual({
      finding: 'blocked-by-policy',
      action: 'rotate-secret',
      outcome: 'failed',
      diagnosis: 'password-limit',
    });
    expect(e.error).toMatch(/maximum of 2 passwords/);
    expectUntouched('personal-account-password-limit');
    expect(appOf(caseOf(cases, 'personal-account-password-limit')).passwordCredentials).toHaveLength(2);
  });

  test('app-not-owned: failed with graph-permission-denied, nothing written', () => {
    const e = entry('app-not-owned');
    expect(verdict(e)).toEqual({
      finding: 'expiring',
      action: 'rotate-secret',
      outcome: 'failed',
      diagnosis: 'graph-permission-denied',
    });
    expect(e.error).toMatch(/Authorization_RequestDenied/);
    expectUntouched('app-not-owned');
    const app = appOf(caseOf(cases, 'app-not-owned'));
    expect(count(requestsTouching(sandbox, [app.id]), 'POST', /\/addPassword$/, 403)).toBe(1);
  });

  test('not-endpoint-administrator: healthy, so nothing to do and nothing written', () => {
    expect(verdict(entry('not-endpoint-administrator'))).toEqual({
      finding: 'healthy',
      action: 'none',
      outcome: 'skipped',
      diagnosis: undefined,
    });
    expectUntouched('not-endpoint-administrator');
  });

  test('the summary counts what happened, and the run fails visibly (6 need a person)', () => {
    const s = run.report.summary;
    expect(s.total).toBe(16);
    expect(s.byOutcome).toEqual({ planned: 0, succeeded: 6, failed: 2, skipped: 8 });
    expect(s.byAction).toEqual({
      none: 4,
      'rotate-secret': 7,
      repair: 1,
      'convert-to-wif': 0,
      delete: 0,
      report: 4,
    });
    expect(s.needsAttention).toBe(6);
    expect(run.report.dryRun).toBe(false);
    const names = runCapture.events.map((e) => e.name);
    expect(names[0]).toBe('RunStarted');
    expect(names[names.length - 1]).toBe('RunCompleted');
    expect(names.filter((n) => n === 'ConnectionRemediated')).toHaveLength(6);
    expect(names.filter((n) => n === 'RemediationFailed')).toHaveLength(2);
  });

  test('dry run first: no write to any service (invariant 7), yet the same actions planned', () => {
    expect(writesAfterDryRun).toEqual([]);
    expect(containersAfterDryRun).toEqual([]); // not even a lock in the storage account
    expect(dry.report.dryRun).toBe(true);
    const planned = (r: RunReport) =>
      Object.fromEntries(r.connections.map((c) => [c.connectionName, c.action] as const));
    expect(planned(dry.report)).toEqual(planned(run.report));
    for (const c of dry.report.connections)
      expect(c.outcome).toBe(c.action === 'rotate-secret' || c.action === 'repair' ? 'planned' : 'skipped');
    expect(dry.report.summary.byOutcome.planned).toBe(8);
  });

  describe('invariant 6: no secret value leaves the engine', () => {
    test('not in log lines, events, the reports or their errors', () => {
      const secrets = new Set([...secretsBefore, ...sandbox.state.allSecretValues()]);
      // Old, new, the product's own client secret: all of them are looked for.
      expect(secrets.size).toBeGreaterThanOrEqual(secretsBefore.length + 5);
      expect(runCapture.lines.length).toBeGreaterThan(0);
      expectNoSecrets(runCapture.lines.join('\n'), secrets, 'log lines');
      expectNoSecrets(dryCapture.lines.join('\n'), secrets, 'dry-run log lines');
      expectNoSecrets(JSON.stringify(runCapture.events), secrets, 'events');
      expectNoSecrets(JSON.stringify(dryCapture.events), secrets, 'dry-run events');
      expectNoSecrets(JSON.stringify(run), secrets, 'the report');
      expectNoSecrets(JSON.stringify(dry), secrets, 'the dry-run report');
      const errors = run.report.connections.flatMap((c) => (c.error ? [c.error] : []));
      expect(errors).toHaveLength(2);
      expectNoSecrets(errors.join('\n'), secrets, 'error messages');
    });

    test('a secret-shaped value an adapter puts in an error is masked in the report and the logs', async () => {
      const c = caseOf(cases, 'app-not-owned');
      const echoed = generateSecretText();
      const token = sandbox.tokens.issue({
        aud: AUDIENCES.graph,
        appid: c.app!.appId,
        oid: c.app!.id,
        idtyp: 'app',
        roles: [],
        sbx: 'remediator',
      });
      const captured = capture();
      const engine = engineFor(sandbox, captured.log, {
        settings: storage({ OLD_SECRET_RETENTION_HOURS: '0' }),
      });
      const deps: EngineDeps = {
        ...engine.deps,
        graph: {
          getApplicationByAppId: (appId) => engine.deps.graph.getApplicationByAppId(appId),
          getPasswordPolicy: (id) => engine.deps.graph.getPasswordPolicy(id),
          removePassword: (id, keyId) => engine.deps.graph.removePassword(id, keyId),
          addPassword: () =>
            Promise.reject(
              new Error(
                `proxy echoed the request: {"passwordCredential":{"secretText":"${echoed}"}} with Authorization: Bearer ${token}`,
              ),
            ),
        },
      };
      const from = sandbox.state.requestLog.length;
      const { report } = await runRemediation(deps, engine.settings, { connectionId: c.connectionId });
      const e = entryFor(report, c.connectionId);
      expect(e.outcome).toBe('failed');
      expect(e.error).toMatch(/^adding a password: proxy echoed the request: /);
      expect(e.error).toContain('***');
      const leaks = [echoed, token];
      expectNoSecrets(JSON.stringify(report), leaks, 'the report');
      expectNoSecrets(captured.lines.join('\n'), leaks, 'log lines');
      expect(captured.lines.join('\n')).toContain('proxy echoed the request');
      // Nothing, but maybe the rotation's intent, noted in Key Vault before the refused addPassword.
      const intentOnly = storedVersions(sandbox, c.connectionId).length === 0;
      expect(
        sandbox.state
          .writes()
          .filter((w) => sandbox.state.requestLog.indexOf(w) >= from)
          .filter((w) => !(intentOnly && w.service === 'keyvault' && w.method === 'PUT')),
      ).toEqual([]);
      expect(vaultVersion(sandbox, c.connectionId)).toBeUndefined();
    });
  });
});

describe('retention: old credentials stay until the retention period has passed', () => {
  let sandbox: Sandbox;
  let cases: Map<string, ScenarioCase>;

  beforeAll(async () => {
    sandbox = await startSandbox({ scenario: 'default' });
    cases = scenarioCases(sandbox);
  });

  afterAll(async () => {
    await sandbox?.stop();
  });

  const ROTATED = [
    'failed-secret-expired',
    'automatic-expiring-other-password',
    'manual-secret-expired',
    'shared-across-projects',
    'policy-lifetime-cap',
  ];

  /** A run as the product does it: a fresh engine (and token caches) on a clock that follows the sandbox. */
  async function runOnce(): Promise<RunReport> {
    const engine = engineFor(
      sandbox,
      createLogger(() => undefined),
      {
        settings: storage({ OLD_SECRET_RETENTION_HOURS: '24' }),
        clock: sandboxClock(sandbox),
      },
    );
    return (await runRemediation(engine.deps, engine.settings)).report;
  }

  test('run 1 keeps old credentials; 25 h later run 2 removes exactly the recorded previous and expired ones; run 3 writes nothing', async () => {
    const before = new Map([...sandbox.state.apps.values()].map((a) => [a.id, keyIds(a)]));

    // Run 1: rotated and verified, nothing removed yet.
    const first = await runOnce();
    for (const label of ROTATED) {
      const c = caseOf(cases, label);
      const e = entryFor(first, c.connectionId);
      expect({ label, outcome: e.outcome, phase: e.phase }).toEqual({
        label,
        outcome: 'succeeded',
        phase: 'verified',
      });
      const { keyId } = expectRotatedState(sandbox, c, 'verified');
      const verifiedAt = vaultVersion(sandbox, c.connectionId)!.tags['verifiedAt']!;
      expect(e.cleanupDueAt).toBe(new Date(Date.parse(verifiedAt) + 24 * HOUR_MS).toISOString());
      expect(e.steps).toContain(`old credentials kept until ${e.cleanupDueAt} (retention)`);
      expect(keyIds(appOf(c))).toEqual([...before.get(appOf(c).id)!, keyId].sort());
    }
    expect(sandbox.state.writes('graph').filter((w) => w.path.endsWith('/removePassword'))).toEqual([]);

    // What run 2 may remove: for each rotation, the credentials Key Vault recorded as previously in
    // use, and those expired by then.
    sandbox.state.advanceClock(25 * HOUR_MS);
    const now = sandbox.state.now().getTime();
    const afterFirst = new Map([...sandbox.state.apps.values()].map((a) => [a.id, keyIds(a)]));
    const expected = new Set<string>();
    for (const label of ROTATED) {
      const c = caseOf(cases, label);
      const tags = vaultVersion(sandbox, c.connectionId)!.tags;
      for (const id of (tags['previousKeyIds'] ?? '').split(',').filter((k) => k !== '')) expected.add(id);
      for (const p of appOf(c).passwordCredentials)
        if (Date.parse(p.endDateTime) <= now) expected.add(p.keyId);
    }
    // Spelled out: both expired ones, and the only password of each working connection.
    expect([...expected].sort()).toEqual(
      [
        passwordKeyId('web-sandbox-expired', 'ado'),
        passwordKeyId('platform-terraform', 'pipeline'),
        passwordKeyId('shared-monitoring', 'pipeline'),
        passwordKeyId('payments-prod', 'pipeline'),
      ].sort(),
    );

    const writesBefore = sandbox.state.writes().length;
    const second = await runOnce();
    const secondWrites = sandbox.state.writes().slice(writesBefore);
    const removed: string[] = [];
    for (const app of sandbox.state.apps.values()) {
      const now2 = keyIds(app);
      for (const id of afterFirst.get(app.id)!) if (!now2.includes(id)) removed.push(id);
      expect(now2.filter((id) => !afterFirst.get(app.id)!.includes(id))).toEqual([]); // nothing added
    }
    expect(removed.sort()).toEqual([...expected].sort());
    // The other team's password and the inferred, still-live one are never touched.
    const warehouse = appOf(caseOf(cases, 'automatic-expiring-other-password'));
    expect(keyIds(warehouse)).toEqual(
      expect.arrayContaining([
        passwordKeyId('data-warehouse', 'adf-etl'),
        passwordKeyId('data-warehouse', 'ado'),
      ]),
    );
    for (const label of ROTATED) {
      const c = caseOf(cases, label);
      const e = entryFor(second, c.connectionId);
      expect({ label, finding: e.finding, action: e.action, outcome: e.outcome, phase: e.phase }).toEqual({
        label,
        finding: 'healthy',
        action: 'rotate-secret',
        outcome: 'succeeded',
        phase: 'completed',
      });
      expect(e.cleanupDueAt).toBeUndefined();
      expectRotatedState(sandbox, c, 'completed');
    }
    expect(
      secondWrites.map((w) => `${w.service} ${w.method} ${w.path.split('/').pop() ?? ''}`).sort(),
    ).toEqual(
      [
        ...Array<string>(4).fill('graph POST removePassword'),
        ...ROTATED.map((label) => {
          const version = vaultVersion(sandbox, caseOf(cases, label).connectionId)!.version;
          return `keyvault PATCH ${version}`;
        }),
      ].sort(),
    );

    // Run 3: nothing left to do anywhere.
    const writesBeforeThird = sandbox.state.writes().length;
    const appsBeforeThird = snapshot([...sandbox.state.apps.values()]);
    const third = await runOnce();
    expect(sandbox.state.writes().slice(writesBeforeThird)).toEqual([]);
    expect([...sandbox.state.apps.values()]).toEqual(appsBeforeThird);
    for (const label of [...ROTATED, 'accesstoken-null']) {
      const e = entryFor(third, caseOf(cases, label).connectionId);
      expect({ label, finding: e.finding, action: e.action }).toEqual({
        label,
        finding: 'healthy',
        action: 'none',
      });
    }
  });
});

describe('replication lag: a new secret that takes seconds to work', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox({ scenario: 'default' });
  });

  afterAll(async () => {
    await sandbox?.stop();
  });

  test('the engine waits for the secret to get a token before writing it into the connection, then verifies', async () => {
    sandbox.state.passwordReplicationDelaySeconds = 5;
    const c = caseOf(scenarioCases(sandbox), 'manual-secret-expired');
    const app = appOf(c);
    const engine = engineFor(
      sandbox,
      createLogger(() => undefined),
      {
        settings: storage({ OLD_SECRET_RETENTION_HOURS: '0' }),
        clock: sandboxClock(sandbox, true),
      },
    );
    const { report } = await runRemediation(engine.deps, engine.settings, { connectionId: c.connectionId });
    const e = entryFor(report, c.connectionId);
    expect({ outcome: e.outcome, phase: e.phase, error: e.error }).toEqual({
      outcome: 'succeeded',
      phase: 'completed',
      error: undefined,
    });
    // Backoff 2 s + 4 s: the third try, 6 s after the password was added, gets a token.
    expect(e.steps).toContain('the new secret gets a token (attempt 3)');
    expect(sandbox.state.clockOffsetMs).toBe(6000);
    const log = sandbox.state.requestLog;
    const probes = log.filter(
      (r) => r.service === 'entra' && r.method === 'POST' && r.caller !== 'remediator',
    );
    expect(probes.map((r) => r.status)).toEqual([401, 401, 200]);
    // The connection never held a secret that did not work yet.
    const put = log.findIndex((r) => r.service === 'devops' && r.method === 'PUT');
    expect(put).toBeGreaterThan(log.indexOf(probes[2]!));
    expectRotatedState(sandbox, c, 'completed');
    expect(c.endpoint.operationStatus).toEqual({ state: 'Ready', statusMessage: '' });
    expect(keyIds(app)).toHaveLength(1);
  });
});

describe('Key Vault refuses the new secret', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox({ scenario: 'default' });
  });

  afterAll(async () => {
    await sandbox?.stop();
  });

  test('the new Graph credential is removed again and the connection is untouched; the next run converges', async () => {
    const c = caseOf(scenarioCases(sandbox), 'manual-secret-expired');
    const app = appOf(c);
    const appBefore = snapshot(app);
    const endpointBefore = snapshot(c.endpoint);
    // RBAC refuses setSecret (the identity may read secrets, not write them) once the rotation's
    // intent is noted (were that refused, nothing would be added at all: no compensation to test).
    sandbox.state.onRequestHandled = (entry) => {
      if (entry.service !== 'keyvault' || entry.method !== 'PUT') return;
      sandbox.state.onRequestHandled = undefined;
      sandbox.faults.addRule({
        service: 'keyvault',
        method: 'PUT',
        path: '^/secrets/',
        kind: 'server-error',
        status: 403,
        rate: 1,
      });
    };
    const settings = storage({ OLD_SECRET_RETENTION_HOURS: '0' });
    const engine = engineFor(
      sandbox,
      createLogger(() => undefined),
      { settings },
    );
    const { report } = await runRemediation(engine.deps, engine.settings, { connectionId: c.connectionId });
    const e = entryFor(report, c.connectionId);
    expect(verdict(e)).toEqual({
      finding: 'expired',
      action: 'rotate-secret',
      outcome: 'failed',
      diagnosis: 'key-vault-permission-denied',
    });
    expect(e.error).toMatch(
      /^Key Vault refused the new secret: Key Vault write of 'sc-remediator-[0-9a-f-]+' failed \(403/,
    );
    expect(e.phase).toBeUndefined();

    const touching = requestsTouching(sandbox, [c.connectionId, app.id]);
    expect(
      touching.filter((r) => r.method !== 'GET').map((r) => `${r.service} ${r.method} ${r.status}`),
    ).toEqual([
      'keyvault PUT 200', // the rotation's intent
      'graph POST 200', // addPassword
      'keyvault PUT 403', // refused
      'graph POST 204', // removePassword: compensation
    ]);
    expect(touching.filter((r) => r.method === 'POST').map((r) => r.path.split('/').pop())).toEqual([
      'addPassword',
      'removePassword',
    ]);
    expect(app).toEqual(appBefore);
    expect(c.endpoint).toEqual(endpointBefore);
    expect(vaultVersion(sandbox, c.connectionId)).toBeUndefined();
    expect(e.steps).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^removed credential [0-9a-f-]+ again: Key Vault refused the write$/),
      ]),
    );

    sandbox.faults.clear();
    const retry = await runRemediation(engine.deps, engine.settings, { connectionId: c.connectionId });
    expect(entryFor(retry.report, c.connectionId).outcome).toBe('succeeded');
    const { keyId } = expectRotatedState(sandbox, c, 'completed');
    expect(keyIds(app)).toEqual([keyId]);
  });
});

describe('API calls one rotation costs (retention 0)', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox({ scenario: 'default' });
  });

  afterAll(async () => {
    await sandbox?.stop();
  });

  test('per rotated connection, by service, apart from discovery and the product’s own tokens', async () => {
    const c = caseOf(scenarioCases(sandbox), 'failed-secret-expired');
    const engine = engineFor(
      sandbox,
      createLogger(() => undefined),
      {
        settings: storage({ OLD_SECRET_RETENTION_HOURS: '0' }),
      },
    );
    const { report } = await runRemediation(engine.deps, engine.settings, { connectionId: c.connectionId });
    expect(entryFor(report, c.connectionId).outcome).toBe('succeeded');

    const log = sandbox.state.requestLog;
    const isDiscovery = (r: RequestLogEntry) =>
      r.service === 'devops' &&
      r.method === 'GET' &&
      (/\/_apis\/projects$/.test(r.path) || /\/_apis\/serviceendpoint\/endpoints$/.test(r.path));
    const isProductToken = (r: RequestLogEntry) => r.service === 'entra' && r.caller === 'remediator';
    const isMetadata = (r: RequestLogEntry) => r.service === 'entra' && r.method === 'GET';
    const isChallenge = (r: RequestLogEntry) => r.service === 'keyvault' && r.status === 401;
    const isTenantPolicy = (r: RequestLogEntry) =>
      r.service === 'graph' && r.path.endsWith('/policies/defaultAppManagementPolicy');
    const tally = (rows: RequestLogEntry[]) => {
      const out: Record<string, number> = {};
      for (const r of rows) {
        const what = r.method === 'POST' ? `POST ${r.path.split('/').pop() ?? ''}` : r.method;
        const key = `${r.service} ${what}`;
        out[key] = (out[key] ?? 0) + 1;
      }
      return out;
    };

    // Once per run, whatever the number of connections: one project list per organization, one
    // connection list per project.
    const organizations = sandbox.scenario.organizations;
    const projects = organizations.reduce((n, o) => n + o.projects.length, 0);
    expect(tally(log.filter(isDiscovery))).toEqual({ 'devops GET': organizations.length + projects });
    expect(tally(log.filter(isProductToken))).toEqual({ 'entra POST token': 3 }); // Azure DevOps, Graph, Key Vault
    expect(log.filter(isChallenge)).toHaveLength(1); // Key Vault's auth challenge, first request only
    expect(log.filter(isTenantPolicy)).toHaveLength(1); // the tenant's app management policy, once per run
    // Entra ID metadata, for the product's own credential only (its CAE and non-CAE MSAL clients)
    expect(log.filter(isMetadata)).toHaveLength(2);

    // Per rotated connection.
    const perConnection = log.filter(
      (r) => !isDiscovery(r) && !isProductToken(r) && !isMetadata(r) && !isChallenge(r) && !isTenantPolicy(r),
    );
    expect(tally(perConnection)).toEqual({
      // app (assess; still fresh under the lock and for the clean-up, so not read again), app policy;
      // addPassword, removePassword
      'graph GET': 2,
      'graph POST addPassword': 1,
      'graph POST removePassword': 1,
      // record (assess), binding (plan: none yet), record (rotation); the rotation's intent before
      // addPassword (no record yet: a version of its own), the value, the binding proved by
      // TestConnection (first rotation only); phase applied / verified / completed
      'keyvault GET': 3,
      'keyvault PUT': 3,
      'keyvault PATCH': 3,
      // connection (rotation), PUT; TestConnection twice: the entitlement proof (first rotation
      // only) and verification; read back
      'devops GET': 2,
      'devops PUT': 1,
      'devops POST endpointproxy': 2,
      // the new secret's token probe
      'entra POST token': 1,
    });
  });
});
