/**
 * `sc-remediator check` against the sandbox's default scenario, through the CLI entry point and the
 * real SDK clients: what is missing (an app the identity does not own, an organization where it is
 * a member but not service connection Administrator) is reported with the exact fix; the rest is
 * ok; every check is a read (the sandbox records no write); and each prerequisite, once removed
 * from the tenant, turns its own check red with its own fix. Storage is checked against Azurite.
 */
import { Writable } from 'node:stream';
import type { Azurite } from '../../sandbox/azurite';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { runCli } from '../../src/cli/main';
import type { PreflightCheck, PreflightReport } from '../../src/remediation/preflight';
import { testAzurite } from '../helpers/azuritePool';

let sandbox: Sandbox;
let azurite: Azurite;

beforeAll(async () => {
  [sandbox, azurite] = await Promise.all([
    startSandbox({ scenario: 'default' }),
    testAzurite({ blob: true, queue: false }),
  ]);
});

afterAll(async () => {
  await Promise.all([sandbox?.stop(), azurite?.stop()]);
});

function sink(): { stream: NodeJS.WritableStream & NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream: stream as unknown as NodeJS.WritableStream & NodeJS.WriteStream,
    text: () => chunks.join(''),
  };
}

async function check(
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = sink();
  const err = sink();
  const code = await runCli(['check', ...args], {
    stdout: out.stream,
    stderr: err.stream,
    env: { ...sandbox.env, AzureWebJobsStorage: azurite.connectionString, ...env },
  });
  return { code, stdout: out.text(), stderr: err.text() };
}

async function checkJson(
  env: Record<string, string> = {},
): Promise<{ code: number; report: PreflightReport }> {
  const { code, stdout, stderr } = await check(['--json'], env);
  expect(stderr).toBe('');
  return { code, report: JSON.parse(stdout) as PreflightReport };
}

const orgUrl = (name: string): string => `${sandbox.urls.devops}/${name}`;
const product = () => sandbox.state.identities.get(sandbox.scenario.productIdentity)!;

function find(report: PreflightReport, name: string, target: string | RegExp): PreflightCheck {
  const match = report.checks.filter(
    (c) => c.name === name && (typeof target === 'string' ? c.target === target : target.test(c.target)),
  );
  expect(match).toHaveLength(1);
  return match[0]!;
}

function appOf(connectionName: string) {
  for (const org of sandbox.state.organizations.values())
    for (const ep of org.endpoints.values())
      if (ep.name === connectionName)
        return sandbox.state.appByAppId(ep.authorization.parameters['serviceprincipalid']!)!;
  throw new Error(`no connection ${connectionName}`);
}

describe('default scenario', () => {
  let code: number;
  let report: PreflightReport;
  let writesBefore: number;

  beforeAll(async () => {
    writesBefore = sandbox.state.writes().length;
    ({ code, report } = await checkJson());
  });

  test('exit 1: two prerequisites are missing, and only those two', () => {
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    const missing = report.checks.filter((c) => c.status === 'missing');
    expect(missing.map((c) => `${c.name} @ ${c.target}`).sort()).toEqual(
      [
        `connection Administrator @ ${orgUrl('northwind')}`,
        expect.stringMatching(
          /^app owned by identity @ sp-contoso-ml-workspace .*\(contoso\/data-ml-workspace\)$/,
        ),
      ].sort(),
    );
    expect(report.summary.missing).toBe(2);
  });

  test('the identity: who it is, from its own Graph token, with both Graph permissions', () => {
    expect(report.identity).toEqual({
      objectId: product().objectId,
      appId: product().appId,
      graphRoles: ['Application.ReadWrite.OwnedBy', 'Policy.Read.All'],
    });
    expect(find(report, 'Graph Application.ReadWrite.OwnedBy', 'Microsoft Graph').status).toBe('ok');
    expect(find(report, 'Graph Policy.Read.All', 'Microsoft Graph').status).toBe('ok');
  });

  test('a missing ownership: the app data-ml-workspace uses, with the add-owner command', () => {
    const app = appOf('data-ml-workspace');
    const c = find(report, 'app owned by identity', new RegExp(app.appId));
    expect(c.status).toBe('missing');
    expect(c.detail).toMatch(/not an owner/);
    expect(c.fix).toContain(`scripts/add-owner.sh --owner ${product().objectId} ${app.appId}`);
    expect(c.fix).toContain(`az ad app owner add --id ${app.appId} --owner-object-id ${product().objectId}`);
  });

  test('a missing Administrator role: northwind, where the identity is only a member', () => {
    const c = find(report, 'connection Administrator', orgUrl('northwind'));
    expect(c.status).toBe('missing');
    expect(c.detail).toBe('not Administrator of 1 of 1 connections: northwind-ops-deploy');
    expect(c.fix).toMatch(/Administrator role .* at organization level/);
    expect(c.fix).toContain(product().appId!);
    // Being a member is enough to be reachable.
    expect(find(report, 'organization access', orgUrl('northwind')).status).toBe('ok');
  });

  test('contoso and fabrikam: reachable and Administrator of every AzureRM connection', () => {
    expect(find(report, 'organization access', orgUrl('contoso')).detail).toBe('3 projects visible');
    expect(find(report, 'connection Administrator', orgUrl('contoso'))).toMatchObject({
      status: 'ok',
      detail: 'Administrator of all 12 Azure Resource Manager connections (organization level)',
    });
    expect(find(report, 'connection Administrator', orgUrl('fabrikam')).status).toBe('ok');
  });

  test('the other apps are owned; a deleted app is a warning (no permission can fix it), not a missing right', () => {
    expect(find(report, 'app owned by identity', '12 apps').status).toBe('ok');
    const deleted = find(report, 'app owned by identity', /contoso\/data-legacy-reporting/);
    expect(deleted.status).toBe('warning');
    expect(deleted.detail).toMatch(/no such app/);
  });

  test('Key Vault and storage: reachable and authorized', () => {
    const vault = find(report, 'vault access', sandbox.env['KEY_VAULT_URL']!.replace(/\/$/, ''));
    expect(vault.status).toBe('ok');
    expect(vault.detail).toMatch(/404/);
    expect(find(report, 'lock storage', /sc-remediator-locks$/).status).toBe('ok');
  });

  test('read only: the check made no write to any service', () => {
    expect(sandbox.state.writes().slice(writesBefore)).toEqual([]);
    // The Key Vault probe was a GET of a name the service never writes, answered 404.
    const probe = sandbox.state.requestLog.filter(
      (e) => e.service === 'keyvault' && /preflight-probe/.test(e.path),
    );
    expect(probe.map((e) => [e.method, e.status])).toContainEqual(['GET', 404]);
    // Rights were learnt from the actionFilter=manage list, never from an attempt.
    const manage = sandbox.state.requestLog.filter(
      (e) => e.service === 'devops' && e.query['actionFilter'] === 'manage',
    );
    expect(manage.length).toBeGreaterThanOrEqual(5); // one per project: web, data, platform, payments, ops
  });
});

test('human output: a table, then each missing item with its fix; exit 1', async () => {
  const { code, stdout } = await check();
  expect(code).toBe(1);
  expect(stdout).toMatch(/^sc-remediator check as /);
  expect(stdout).toMatch(/│ MISSING │ azure-devops │ connection Administrator/);
  expect(stdout).toContain('What to do:');
  expect(stdout).toContain(
    `fix: Make the identity an owner of the app: scripts/add-owner.sh --owner ${product().objectId} ${appOf('data-ml-workspace').appId}`,
  );
  expect(stdout).toMatch(/Summary: \d+ ok · 2 missing · 1 warning · 0 skipped/);
  for (const secret of sandbox.state.allSecretValues()) expect(stdout.includes(secret)).toBe(false);
});

test('--organization limits the check to one configured organization: all good there, exit 0', async () => {
  const { code, stdout } = await check(['--organization', orgUrl('fabrikam'), '--json']);
  const report = JSON.parse(stdout) as PreflightReport;
  expect(report.checks.filter((c) => c.area === 'azure-devops').map((c) => c.target)).toEqual([
    orgUrl('fabrikam'),
    orgUrl('fabrikam'),
  ]);
  expect(report.ok).toBe(true);
  expect(code).toBe(0);
});

test('once both are fixed in the tenant, the same check passes (exit 0)', async () => {
  const app = appOf('data-ml-workspace');
  const member = sandbox.state.organization('northwind')!.members.find((m) => m.identity === product().key)!;
  app.owners.push(product().key);
  member.endpointAdministrator = true;
  try {
    const { code, report } = await checkJson();
    expect(report.checks.filter((c) => c.status === 'missing')).toEqual([]);
    expect(code).toBe(0);
  } finally {
    app.owners.pop();
    member.endpointAdministrator = false;
  }
});

describe('each prerequisite, removed, turns its own check red with its own fix', () => {
  test('no Key Vault role: 403 → Key Vault Secrets Officer', async () => {
    const writers = sandbox.state.vault.writers;
    const saved = [...writers];
    writers.splice(0, writers.length);
    try {
      const { code, report } = await checkJson();
      const c = find(report, 'vault access', /127\.0\.0\.1/);
      expect(c.status).toBe('missing');
      expect(c.detail).toMatch(/403/);
      expect(c.fix).toContain('--role "Key Vault Secrets Officer"');
      expect(c.fix).toContain(`--assignee-object-id ${product().objectId}`);
      expect(code).toBe(1);
    } finally {
      writers.push(...saved);
    }
  });

  test('no Key Vault certificates role: 403 → Key Vault Certificates Officer (a warning without certificate connections)', async () => {
    const officers = sandbox.state.vault.certificateOfficers;
    const saved = [...officers];
    const before = find((await checkJson()).report, 'vault certificates', /127\.0\.0\.1/);
    expect(before.status).toBe('ok');
    officers.splice(0, officers.length);
    try {
      const { report } = await checkJson();
      const c = find(report, 'vault certificates', /127\.0\.0\.1/);
      expect(c.status).toBe('warning');
      expect(c.detail).toMatch(/403/);
      expect(c.detail).toMatch(/no certificate-based connection was found/);
      expect(c.fix).toContain('--role "Key Vault Certificates Officer"');
      // The secrets role is a separate permission: its check still passes.
      expect(find(report, 'vault access', /127\.0\.0\.1/).status).toBe('ok');
    } finally {
      officers.push(...saved);
    }
  });

  test('no Graph application permission: OwnedBy missing, Policy.Read.All a warning', async () => {
    const permissions = product().graphPermissions;
    const saved = [...permissions];
    permissions.splice(0, permissions.length);
    try {
      const { report } = await checkJson();
      const ownedBy = find(report, 'Graph Application.ReadWrite.OwnedBy', 'Microsoft Graph');
      expect(ownedBy.status).toBe('missing');
      expect(ownedBy.fix).toContain(`scripts/grant-graph-permissions.sh ${product().objectId}`);
      expect(find(report, 'Graph Policy.Read.All', 'Microsoft Graph').status).toBe('warning');
      // Without any Graph permission the apps cannot be read either: each says which permission.
      const apps = report.checks.filter((c) => c.name === 'app owned by identity' && c.status === 'missing');
      expect(apps.length).toBeGreaterThan(1);
      for (const a of apps) expect(a.fix).toContain('Application.ReadWrite.OwnedBy');
    } finally {
      permissions.push(...saved);
    }
  });

  test('a project-level Administrator only: listed by actionFilter=manage, yet missing the organization-level role', async () => {
    const org = sandbox.state.organization('fabrikam')!;
    const member = org.members.find((m) => m.identity === product().key)!;
    member.endpointAdministrator = false;
    member.projectAdministratorOf = org.projects.map((p) => p.name);
    try {
      const { code, report } = await checkJson();
      const c = find(report, 'connection Administrator (organization level)', orgUrl('fabrikam'));
      expect(c.status).toBe('missing');
      expect(c.detail).toMatch(
        /^Administrator of \d+ connections? at project level only \(listed by actionFilter=manage/,
      );
      expect(c.fix).toMatch(/Administrator role .* at organization level/);
      expect(find(report, 'connection Administrator', orgUrl('fabrikam')).status).toBe('missing');
      expect(code).toBe(1);
      // contoso, where the identity is an organization-level Administrator, stays ok.
      expect(find(report, 'connection Administrator', orgUrl('contoso')).status).toBe('ok');
    } finally {
      member.endpointAdministrator = true;
      delete member.projectAdministratorOf;
    }
  });

  test('not a user of an organization: 401 → add it with an access level', async () => {
    const members = sandbox.state.organization('fabrikam')!.members;
    const i = members.findIndex((m) => m.identity === product().key);
    const [removed] = members.splice(i, 1);
    try {
      const { report } = await checkJson();
      const c = find(report, 'organization access', orgUrl('fabrikam'));
      expect(c.status).toBe('missing');
      expect(c.detail).toMatch(/401/);
      expect(c.fix).toMatch(/as a user with an access level/);
      expect(
        report.checks.some((x) => x.name === 'connection Administrator' && x.target === orgUrl('fabrikam')),
      ).toBe(false);
    } finally {
      members.splice(i, 0, removed!);
    }
  });

  test('storage refusing the identity: 403 → Storage Blob Data Owner; no storage at all: a warning', async () => {
    const wrongKey = azurite.connectionString.replace(
      /AccountKey=[^;]+/,
      `AccountKey=${Buffer.from('not the key').toString('base64')}`,
    );
    const refused = await checkJson({ AzureWebJobsStorage: wrongKey });
    const c = find(refused.report, 'lock storage', 'AzureWebJobsStorage');
    expect(c.status).toBe('missing');
    expect(c.detail).toMatch(/403/);
    expect(c.fix).toContain('Storage Blob Data Owner');

    const none = await checkJson({ AzureWebJobsStorage: '' });
    expect(find(none.report, 'lock storage', 'AzureWebJobsStorage')).toMatchObject({ status: 'warning' });
  });
});

test('bad settings are a usage error (exit 2), before any request', async () => {
  const { code, stderr } = await check([], { KEY_VAULT_URL: 'not a url' });
  expect(code).toBe(2);
  expect(stderr).toMatch(/KEY_VAULT_URL/);
});
