/**
 * `npm run sandbox` as a user runs it: the process starts the tenant, writes the env file (mode
 * 0600, every setting, no secret on the console), stops cleanly on SIGTERM, and refuses bad
 * arguments with a usage message and exit code 2.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'dotenv';

const ROOT = resolve(__dirname, '..', '..');
const REQUIRED = [
  'AZDO_ORGANIZATION_URLS',
  'KEY_VAULT_URL',
  'GRAPH_ENDPOINT',
  'AZURE_AUTHORITY_HOST',
  'AZURE_TENANT_ID',
  'AZURE_CLIENT_ID',
  'AZURE_CLIENT_SECRET',
  'NODE_EXTRA_CA_CERTS',
];

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** The process's exit code, or its signal. */
  exit: Promise<number | string | null>;
  /** Every process of the group (the sandbox and its Azurite) closed its output. */
  closed: Promise<void>;
}

function start(args: string[]): Run {
  // One process in its own group, like a terminal's foreground job, as the CLI tests run the CLI
  // (test/helpers/cliChild.ts). Not through `npx tsx`: npm and tsx's supervisor cost two Node
  // start-ups a test, and the supervisor SIGKILLs its child when the child has not acknowledged a
  // relayed signal within 30 ms, which a loaded machine misses (the clean stop then never prints).
  const child = spawn(process.execPath, ['--import', 'tsx', 'sandbox/main.ts', ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | string | null>((r) =>
    child.once('exit', (code, signal) => r(code ?? signal)),
  );
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  return { child, stdout: () => out, stderr: () => err, exit, closed };
}

function terminate(run: Run): void {
  try {
    process.kill(-run.child.pid!, 'SIGTERM');
  } catch {
    // already gone
  }
}

async function waitFor(check: () => boolean, what: string, run: Run, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline || run.child.exitCode !== null)
      throw new Error(`${what} did not happen.\nstdout:\n${run.stdout()}\nstderr:\n${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function listening(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((r) => {
    const s = connect({ host: hostname, port: Number(port) });
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
}

let dir: string;
const running: Run[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sandbox-main-'));
});

afterAll(() => {
  for (const run of running)
    try {
      process.kill(-run.child.pid!, 'SIGKILL');
    } catch {
      // the group is gone: good
    }
  rmSync(dir, { recursive: true, force: true });
});

test('writes every setting to a 0600 env file, prints no secret, stops cleanly on SIGTERM', async () => {
  const envPath = join(dir, 'nested', 'sandbox.env');
  const run = start(['--scenario', 'minimal', '--write-env', envPath, '--seed', 'main-test']);
  running.push(run);
  await waitFor(() => existsSync(envPath), 'the env file', run);
  await waitFor(() => run.stdout().includes('Ctrl+C stops the sandbox.'), 'the summary', run);

  expect(statSync(envPath).mode & 0o777).toBe(0o600);
  const env = parse(readFileSync(envPath, 'utf8'));
  for (const key of REQUIRED) expect(env[key]).toBeTruthy();
  expect(env['AzureWebJobsStorage']).toBeUndefined();
  expect(env['AZDO_ORGANIZATION_URLS']).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/contoso$/);
  expect(existsSync(env['NODE_EXTRA_CA_CERTS']!)).toBe(true);
  const secret = env['AZURE_CLIENT_SECRET']!;
  expect(secret.length).toBeGreaterThanOrEqual(16);

  const summary = run.stdout();
  expect(summary).toContain("scenario 'minimal', seed 'main-test'");
  expect(summary).toContain(env['KEY_VAULT_URL']);
  expect(summary).toMatch(/api-deploy +Manual +secret valid 10 more days/);
  expect(summary).toContain(`set -a; . ${envPath}; set +a`);
  expect(summary).toContain('npm run cli -- scan');
  expect(summary).not.toContain(secret);
  expect(run.stderr()).not.toContain(secret);
  for (const url of [env['AZURE_AUTHORITY_HOST']!, env['GRAPH_ENDPOINT']!, env['KEY_VAULT_URL']!])
    expect(await listening(url)).toBe(true);

  terminate(run);
  expect([0, 'SIGTERM']).toContain(await run.exit);
  await run.closed;
  // Printed only on the clean path, right before the sandbox process exits with code 0.
  expect(run.stdout()).toMatch(/SIGTERM: stopping the sandbox\.\.\.\nSandbox stopped\.\n$/);
  expect(existsSync(envPath)).toBe(false);
  expect(await listening(env['KEY_VAULT_URL']!)).toBe(false);
  expect(run.stdout() + run.stderr()).not.toContain(secret);
});

test('--storage starts Azurite and adds AzureWebJobsStorage; both stop with the sandbox', async () => {
  const envPath = join(dir, 'storage.env');
  writeFileSync(envPath, 'OLD=1\n', { mode: 0o644 });
  const run = start(['--scenario', 'minimal', '--write-env', envPath, '--storage']);
  running.push(run);
  await waitFor(
    () => existsSync(envPath) && readFileSync(envPath, 'utf8') !== 'OLD=1\n',
    'the env file',
    run,
  );
  // An existing, readable file is replaced, not rewritten in place: the new one is 0600 too.
  expect(statSync(envPath).mode & 0o777).toBe(0o600);
  const env = parse(readFileSync(envPath, 'utf8'));
  const blob = /BlobEndpoint=([^;]+);/.exec(env['AzureWebJobsStorage'] ?? '')?.[1];
  expect(blob).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
  expect(await listening(blob!)).toBe(true);

  terminate(run);
  await run.closed;
  expect(run.stdout()).toContain('Sandbox stopped.');
  expect(await listening(blob!)).toBe(false);
});

test.each([
  [['--port-base', 'abc'], /--port-base.*whole number from 1024/],
  [['--scenario', 'no-such'], /no scenario 'no-such' \(available: .*default.*minimal/],
  [['--bogus'], /unknown option '--bogus'/],
  [['stray'], /too many arguments/],
  [['--write-env', ''], /--write-env needs a path/],
])('bad arguments %j: usage on stderr, exit code 2', async (args, message) => {
  const run = start(args);
  running.push(run);
  expect(await run.exit).toBe(2);
  expect(run.stderr()).toMatch(message);
  expect(run.stderr()).toContain('Usage: npm run sandbox -- [options]');
  expect(run.stdout()).toBe('');
});
