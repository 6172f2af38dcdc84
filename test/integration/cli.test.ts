/**
 * The `sc-remediator` command against the sandbox: as a real process (main.js compiled once per
 * run, as the built command runs it: test/helpers/compiledSources.ts; the settings file's CA restart
 * through `node_modules/.bin/tsx src/cli/main.ts …`, what `npm run cli` runs) where stdout purity,
 * exit codes, the settings file and its CA restart matter, and in-process (`runCli`) for the rest.
 * Public contracts checked: the `--json` report shape, exit codes 0/1/2, `--settings-file`;
 * invariants: a dry run or scan writes nothing (7), no secret value reaches stdout or stderr (6).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { AUDIENCES } from '../../sandbox/tokens';
import { runCli } from '../../src/cli/main';
import { ACTIONS, FINDINGS, OUTCOMES } from '../../src/remediation/report';
import { expectNoSecrets, scenarioCases } from '../helpers/engineSandbox';
import { collector } from '../helpers/collector';
import { nodeArgsFor } from '../helpers/compiledSources';

const ROOT = resolve(__dirname, '..', '..');
/** The `tsx` command line on main.ts (`npm run cli`): a supervisor process and the CLI's. */
const TSX_MAIN: [string, ...string[]] = [join(ROOT, 'node_modules', '.bin', 'tsx'), 'src/cli/main.ts'];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Only what a shell needs: nothing of this process's settings (nor its CA bundle) leaks in. */
function bareEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? tmpdir(),
    TMPDIR: tmpdir(),
    ...extra,
  };
}

/**
 * `sc-remediator <args>` as a child process; the sandbox keeps serving while it runs. `command`:
 * how it is started (default: Node on main.ts, compiled).
 */
function cliProcess(
  args: string[],
  env: Record<string, string>,
  command: [string, ...string[]] = [process.execPath, ...nodeArgsFor('src/cli/main.ts')],
): Promise<CliResult> {
  const [file, ...before] = command;
  return new Promise((resolveRun, reject) => {
    const child = spawn(file, [...before, ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

/** `runCli` in this process, with its own streams and environment. */
async function cliInProcess(args: string[], env: Record<string, string>): Promise<CliResult> {
  const out = collector();
  const err = collector();
  const code = await runCli(args, {
    stdout: out.stream,
    stderr: err.stream as unknown as NodeJS.WriteStream,
    env,
  });
  return { code, stdout: out.text(), stderr: err.text() };
}

/** The report contract of DESIGN ("Public contracts"): names and values others automate against. */
function expectReportContract(report: unknown): asserts report is {
  dryRun: boolean;
  summary: { total: number; needsAttention: number };
  connections: {
    connectionId: string;
    connectionName: string;
    finding: string;
    action: string;
    outcome: string;
    projects: string[];
  }[];
} {
  expect(report).toEqual(
    expect.objectContaining({
      runId: expect.stringMatching(GUID),
      startedAt: expect.stringMatching(ISO),
      finishedAt: expect.stringMatching(ISO),
      dryRun: expect.any(Boolean),
      summary: expect.objectContaining({
        total: expect.any(Number),
        byFinding: expect.any(Object),
        byAction: expect.any(Object),
        byOutcome: expect.any(Object),
        needsAttention: expect.any(Number),
      }),
      connections: expect.any(Array),
    }),
  );
  const r = report as { connections: Record<string, unknown>[]; summary: { total: number } };
  expect(r.summary.total).toBe(r.connections.length);
  for (const c of r.connections) {
    expect(c).toEqual(
      expect.objectContaining({
        organization: expect.any(String),
        projects: expect.any(Array),
        connectionId: expect.stringMatching(GUID),
        connectionName: expect.any(String),
        finding: expect.any(String),
        action: expect.any(String),
        outcome: expect.any(String),
      }),
    );
    expect(c['appId'] === null || (typeof c['appId'] === 'string' && GUID.test(c['appId']))).toBe(true);
    expect((c['projects'] as unknown[]).every((p) => typeof p === 'string')).toBe(true);
    expect(FINDINGS).toContain(c['finding']);
    expect(ACTIONS).toContain(c['action']);
    expect(OUTCOMES).toContain(c['outcome']);
  }
}

function dotenv(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k}="${v}"`)
    .join('\n');
}

/** What the default scenario plans, by case: the same whether dry run, scan or for real. */
const PLANNED_ACTIONS: Record<string, string> = {
  'failed-secret-expired': 'rotate-secret',
  'automatic-expiring-other-password': 'rotate-secret',
  'manual-secret-expired': 'rotate-secret',
  'shared-across-projects': 'rotate-secret',
  'policy-lifetime-cap': 'rotate-secret',
  'personal-account-password-limit': 'rotate-secret',
  'app-not-owned': 'rotate-secret',
  'accesstoken-null': 'repair',
  'app-deleted': 'report',
  'failed-app-disabled': 'report',
  'failed-no-subscription-role': 'report',
  'policy-blocks-passwords': 'report',
  healthy: 'none',
  'workload-identity': 'none',
  'managed-identity': 'none',
  'not-endpoint-administrator': 'none',
};

describe('the default scenario through the sc-remediator process', () => {
  let jsonSandbox: Sandbox;
  let humanSandbox: Sandbox;
  let pat: string;
  let jsonSecretsBefore: string[];
  let humanSecretsBefore: string[];
  let json: CliResult;
  let human: CliResult;
  const productAudiences: string[] = [];

  beforeAll(async () => {
    [jsonSandbox, humanSandbox] = await Promise.all([
      startSandbox({ scenario: 'default' }),
      startSandbox({ scenario: 'default' }),
    ]);
    // The human run talks to Azure DevOps with a PAT (AZDO_PAT) instead of an Entra token.
    pat = randomBytes(26).toString('hex');
    humanSandbox.state.identities.get(humanSandbox.scenario.productIdentity)!.pats.push(pat);
    const issue = humanSandbox.tokens.issue.bind(humanSandbox.tokens);
    humanSandbox.tokens.issue = (claims, lifetime) => {
      if (claims.sbx === humanSandbox.scenario.productIdentity) productAudiences.push(claims.aud);
      return issue(claims, lifetime);
    };
    jsonSecretsBefore = jsonSandbox.state.allSecretValues();
    humanSecretsBefore = humanSandbox.state.allSecretValues();
    [json, human] = await Promise.all([
      cliProcess(['remediate', '--json', '--verbose'], bareEnv(jsonSandbox.env)),
      cliProcess(['remediate', '--verbose'], bareEnv({ ...humanSandbox.env, AZDO_PAT: pat })),
    ]);
  });

  afterAll(async () => {
    await Promise.all([jsonSandbox?.stop(), humanSandbox?.stop()]);
  });

  test('--json: stdout is exactly one JSON report matching the contract; exit 1 (needs a person)', () => {
    expect(json.code).toBe(1);
    expect(json.stdout.endsWith('}\n')).toBe(true);
    const report: unknown = JSON.parse(json.stdout);
    expectReportContract(report);
    expect(report.dryRun).toBe(false);
    const cases = scenarioCases(jsonSandbox);
    expect(report.connections).toHaveLength(cases.size);
    expect(report.summary.needsAttention).toBe(6);
    const byId = new Map(report.connections.map((c) => [c.connectionId, c]));
    for (const c of cases.values()) expect(byId.get(c.connectionId)?.action).toBe(PLANNED_ACTIONS[c.label]);
    const shared = byId.get(cases.get('shared-across-projects')!.connectionId)!;
    expect([...shared.projects].sort()).toEqual(['platform', 'web']);
    expect(shared.outcome).toBe('succeeded');
    // Logs and progress went to stderr.
    expect(json.stderr).toMatch(/^warn: Rotation failed/m);
  });

  test('human output: one table per finding, then "Needs a person" with cause and next step; exit 1', () => {
    expect(human.code).toBe(1);
    const out = human.stdout;
    expect(out).toMatch(/^sc-remediator run [0-9a-f-]{36}$/m);
    for (const title of [
      'Expired secret (2)',
      'Secret expiring soon (4)',
      'Not ready (failed connection) (3)',
      'App registration missing (1)',
      'Blocked by app management policy (2)',
      'Healthy (4)',
    ])
      expect(out).toContain(`\n${title}\n┌`);
    const attention = out.slice(out.indexOf('Needs a person (6):'));
    expect(out).toContain('Needs a person (6):');
    for (const name of [
      'data-legacy-reporting',
      'data-ml-workspace',
      'web-experiments',
      'web-legacy',
      'payments-partner-sandbox',
      'payments-reporting',
    ])
      expect(attention).toContain(`"${name}"`);
    expect(attention).toMatch(/cause: .*disabled.*\[AADSTS7000112\]/);
    expect(attention).toMatch(/next: {2}A Cloud Application Administrator/);
    expect(out).toMatch(/Summary: 16 connections · 6 fixed · 2 failed · 6 need a person · \d+ healthy\s*$/);
    // Progress went to stderr, not into the report.
    expect(human.stderr).toMatch(/^Found 16 Azure Resource Manager connections in \d+ projects\.$/m);
    expect(out).not.toContain('Found 16');
    // The PAT did the Azure DevOps calls: the product got Entra ID tokens for Graph and Key Vault only.
    expect(new Set(productAudiences)).toEqual(new Set([AUDIENCES.graph, AUDIENCES.keyvault]));
    expect(
      humanSandbox.state.requestLog.filter((r) => r.service === 'devops' && r.caller === 'remediator').length,
    ).toBeGreaterThan(0);
    expect(humanSandbox.state.requestLog.filter((r) => r.service === 'devops' && r.status === 203)).toEqual(
      [],
    );
  });

  test('invariant 6: no secret value (old, new, the client secret, the PAT) in stdout or stderr', () => {
    const jsonSecrets = new Set([...jsonSecretsBefore, ...jsonSandbox.state.allSecretValues()]);
    const humanSecrets = new Set([...humanSecretsBefore, ...humanSandbox.state.allSecretValues()]);
    expect(humanSecrets.has(pat)).toBe(true);
    expect(jsonSecrets.has(jsonSandbox.env['AZURE_CLIENT_SECRET']!)).toBe(true);
    // The runs made new secrets, and they are looked for too.
    expect(jsonSecrets.size).toBeGreaterThan(jsonSecretsBefore.length);
    expect(humanSecrets.size).toBeGreaterThan(humanSecretsBefore.length);
    expectNoSecrets(json.stdout, jsonSecrets, '--json stdout');
    expectNoSecrets(json.stderr, jsonSecrets, '--json stderr');
    expectNoSecrets(human.stdout, humanSecrets, 'human stdout');
    expectNoSecrets(human.stderr, humanSecrets, 'human stderr');
  });
});

describe('the minimal scenario: exit 0 when all is healthy or fixed; --settings-file', () => {
  let sandbox: Sandbox;
  let dir: string;

  beforeAll(async () => {
    sandbox = await startSandbox({ scenario: 'minimal' });
    dir = mkdtempSync(join(tmpdir(), 'sc-cli-'));
  });

  afterAll(async () => {
    await sandbox?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('remediate --settings-file with the sandbox env file: restarts itself to trust its CA bundle; exit 0', async () => {
    const file = join(dir, 'sandbox.env');
    writeFileSync(file, dotenv(sandbox.env), { mode: 0o600 });
    // Neither the settings nor NODE_EXTRA_CA_CERTS come from the environment: only from the file.
    const run = await cliProcess(['--settings-file', file, 'remediate', '--json'], bareEnv(), TSX_MAIN);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const report: unknown = JSON.parse(run.stdout);
    expectReportContract(report);
    expect(report.connections.map((c) => [c.connectionName, c.finding, c.action, c.outcome]).sort()).toEqual([
      ['api-deploy', 'expiring', 'rotate-secret', 'succeeded'],
      ['api-monitoring', 'healthy', 'none', 'skipped'],
    ]);
    expectNoSecrets(run.stdout + run.stderr, sandbox.state.allSecretValues(), 'CLI output');

    // After remediation everything is healthy: a scan exits 0 as well, and writes nothing.
    const writes = sandbox.state.writes().length;
    const scan = await cliInProcess(['scan', '--json'], { ...sandbox.env });
    expect(scan.code).toBe(0);
    const scanned: unknown = JSON.parse(scan.stdout);
    expectReportContract(scanned);
    expect(scanned.connections.map((c) => c.finding)).toEqual(['healthy', 'healthy']);
    expect(sandbox.state.writes()).toHaveLength(writes);
  });

  test('the installed command (bin) runs its work with a bounded V8 heap; main.ts run directly does not', async () => {
    const verboseScan = (script: string): Promise<CliResult> =>
      cliProcess(
        ['scan', '--verbose'],
        bareEnv({ ...sandbox.env, NODE_EXTRA_CA_CERTS: sandbox.caCertPath }),
        [process.execPath, ...nodeArgsFor(script)],
      );
    const heapLimit = (run: CliResult): number =>
      Number(/V8 heap limit (\d+) MB/.exec(run.stderr)?.[1] ?? Number.NaN);
    const bin = await verboseScan('src/cli/bin.ts');
    expect(bin.code).toBe(0);
    // --max-old-space-size=1024 plus the young generation.
    expect(heapLimit(bin)).toBeGreaterThanOrEqual(1024);
    expect(heapLimit(bin)).toBeLessThan(1200);
    const direct = await verboseScan('src/cli/main.ts');
    expect(direct.code).toBe(0);
    expect(heapLimit(direct)).not.toBe(heapLimit(bin));
  });

  test('without the CA bundle in the file, the same command cannot reach the sandbox (the restart is what made it work)', async () => {
    const file = join(dir, 'no-ca.env');
    const settings: Record<string, string> = { ...sandbox.env };
    delete settings['NODE_EXTRA_CA_CERTS'];
    writeFileSync(file, dotenv(settings), { mode: 0o600 });
    const before = sandbox.state.requestLog.length;
    const run = await cliProcess(['--settings-file', file, 'scan'], bareEnv(), TSX_MAIN);
    expect(run.code).toBe(1);
    // The self-signed sandbox CA is refused at the first request: the product's own token.
    expect(run.stdout).toMatch(
      /^Problem: https:\/\/127\.0\.0\.1:\d+\/contoso: listing projects: Could not get an Entra ID token/m,
    );
    expect(sandbox.state.requestLog).toHaveLength(before);
  });

  test('a settings file that does not exist: exit 2 with a clear message, nothing on stdout', async () => {
    const missing = join(dir, 'missing.env');
    const run = await cliProcess(['scan', '--settings-file', missing], bareEnv());
    expect(run).toEqual({
      code: 2,
      stdout: '',
      stderr: `Cannot read the settings file '${missing}': no such file.\n`,
    });
  });
});

describe('dry run, scan and usage errors against the default scenario', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox({ scenario: 'default' });
  });

  afterAll(async () => {
    await sandbox?.stop();
  });

  /** Runs `args` in-process and checks that no request at all reached any sandbox host. */
  async function usageError(args: string[], env: Record<string, string>): Promise<CliResult> {
    const before = sandbox.state.requestLog.length;
    const run = await cliInProcess(args, env);
    expect(sandbox.state.requestLog).toHaveLength(before);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    return run;
  }

  test('missing and bad settings: exit 2, one error listing every bad setting, no secret in it', async () => {
    const secret = sandbox.env['AZURE_CLIENT_SECRET']!;
    const run = await usageError(['scan'], {
      ROTATE_DAYS_BEFORE_EXPIRY: 'soon',
      AZURE_CLIENT_ID: 'not-a-guid',
      AZURE_CLIENT_SECRET: secret,
    });
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('Invalid configuration (5 problems):');
    expect(lines.slice(1).map((l) => /^ {2}- (\w+):/.exec(l)?.[1])).toEqual([
      'AZDO_ORGANIZATION_URLS',
      'KEY_VAULT_URL',
      'AZURE_TENANT_ID',
      'AZURE_CLIENT_ID',
      'ROTATE_DAYS_BEFORE_EXPIRY',
    ]);
    expectNoSecrets(run.stderr, [secret], 'the configuration error');
  });

  test('--connection that is not a GUID: exit 2 before any request', async () => {
    const run = await usageError(['remediate', '--connection', 'not-a-guid'], { ...sandbox.env });
    expect(run.stderr).toBe("--connection takes a service connection id (a GUID), not 'not-a-guid'.\n");
  });

  test('--organization that is not configured: exit 2, and no request reached any host', async () => {
    const run = await usageError(['remediate', '--organization', 'https://dev.azure.com/elsewhere'], {
      ...sandbox.env,
    });
    expect(run.stderr).toMatch(/^Organization 'https:\/\/dev\.azure\.com\/elsewhere' is not configured/m);
  });

  test.each([[['fix-everything']], [['scan', '--bogus']], [['remediate', '--dry-run', '--no-such-flag']]])(
    'unknown command or flag %j: exit 2',
    async (args) => {
      const run = await usageError(args, { ...sandbox.env });
      expect(run.stderr).toMatch(/error: unknown (command|option)/);
    },
  );

  test('remediate --dry-run and scan write nothing anywhere (invariant 7) and plan what remediate then does', async () => {
    const cases = scenarioCases(sandbox);
    const dry = await cliInProcess(['remediate', '--dry-run', '--json'], { ...sandbox.env });
    const scan = await cliInProcess(['scan', '--json'], { ...sandbox.env });
    const human = await cliInProcess(['scan'], { ...sandbox.env });
    expect(sandbox.state.writes()).toEqual([]);
    // Planned work left undone is not "all healthy or fixed".
    expect([dry.code, scan.code, human.code]).toEqual([1, 1, 1]);
    expect(human.stdout).toContain('(dry run: nothing was changed)');
    expect(human.stdout).toMatch(
      /Summary: 16 connections · 8 would be changed · 0 failed · \d+ need a person/,
    );

    const actions = (stdout: string) => {
      const report: unknown = JSON.parse(stdout);
      expectReportContract(report);
      expect(report.dryRun).toBe(true);
      for (const c of report.connections)
        expect(c.outcome).toBe(c.action === 'rotate-secret' || c.action === 'repair' ? 'planned' : 'skipped');
      return Object.fromEntries(report.connections.map((c) => [c.connectionId, c.action] as const));
    };
    const expected = Object.fromEntries(
      [...cases.values()].map((c) => [c.connectionId, PLANNED_ACTIONS[c.label]]),
    );
    expect(actions(dry.stdout)).toEqual(expected);
    expect(actions(scan.stdout)).toEqual(expected);

    // The real run takes exactly the planned actions.
    const real = await cliInProcess(['remediate', '--json'], { ...sandbox.env });
    expect(real.code).toBe(1);
    const report: unknown = JSON.parse(real.stdout);
    expectReportContract(report);
    expect(report.dryRun).toBe(false);
    expect(Object.fromEntries(report.connections.map((c) => [c.connectionId, c.action] as const))).toEqual(
      expected,
    );
    expect(sandbox.state.writes().length).toBeGreaterThan(0);
  });
});
