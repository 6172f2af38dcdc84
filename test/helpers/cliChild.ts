/**
 * The CLI as a real child process, for tests that kill it or race two of them.
 *
 * It runs as `node <compiled>/src/cli/main.js …` (test/helpers/compiledSources.ts; without the
 * global setup `node --import tsx src/cli/main.ts …`): one process, like the built `sc-remediator`
 * (`node dist/src/cli/main.js`). The `tsx` command line is not used here: it is a supervisor that
 * starts the script in a second Node process and only relays signals, so a SIGKILL sent to it leaves
 * the worker running on — the opposite of a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import type { Sandbox } from '../../sandbox/index';
import { nodeArgsFor } from './compiledSources';

const ROOT = resolve(__dirname, '..', '..');

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliChild {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once the process has exited and its output is read to the end. */
  exit: Promise<CliExit>;
  /** SIGKILL, sent synchronously: the process runs no more code of its own. */
  kill(): void;
  startedAt: number;
}

const running = new Set<CliChild>();

/**
 * The environment of a CLI run against `sandbox`: the sandbox's settings (with its CA trusted), what
 * `extra` adds, and nothing else from this process's environment (no stray setting leaks in).
 */
export function cliEnv(sandbox: Sandbox, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? tmpdir(),
    TMPDIR: tmpdir(),
    ...sandbox.env,
    NODE_EXTRA_CA_CERTS: sandbox.caCertPath,
    ...extra,
  };
}

/** Starts `sc-remediator <args>`; stdout and stderr are collected. */
export function spawnCli(args: string[], env: Record<string, string>): CliChild {
  const child = spawn(process.execPath, [...nodeArgsFor('src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const run: CliChild = {
    child,
    stdout: () => out,
    stderr: () => err,
    startedAt: Date.now(),
    kill: () => {
      child.kill('SIGKILL');
    },
    exit: new Promise<CliExit>((resolveExit, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        running.delete(run);
        resolveExit({ code, signal });
      });
    }),
  };
  running.add(run);
  return run;
}

/**
 * Runs `sc-remediator <args>` again until it exits 0, at most three times (a run that finds the
 * lease of a killed one still held fails and is retried); `onRun` sees each run. Throws with the
 * last run's exit and stderr when none exits 0.
 */
export async function rerunUntilSuccess(
  args: string[],
  env: Record<string, string>,
  onRun: (run: CliChild) => void = () => undefined,
): Promise<{ run: CliChild; exit: CliExit }> {
  let run: CliChild | undefined;
  let exit: CliExit | undefined;
  for (let i = 0; i < 3 && exit?.code !== 0; i += 1) {
    run = spawnCli(args, env);
    onRun(run);
    exit = await run.exit;
  }
  if (!run || !exit || exit.code !== 0)
    throw new Error(
      `No re-run exited 0 (last: ${exit?.code ?? exit?.signal ?? '?'}).\nstderr:\n${run?.stderr() ?? ''}`,
    );
  return { run, exit };
}

/** Kills every CLI child this test file started that is still running (for afterAll). */
export function killRunningClis(): void {
  for (const run of running) run.kill();
}

/** The JSON report a `--json` run printed, or a failure that shows its exit and stderr (never stdout). */
export function parseReport(run: CliChild, exit: CliExit): CliReport {
  try {
    return JSON.parse(run.stdout()) as CliReport;
  } catch {
    throw new Error(
      `The CLI printed no JSON report (exit ${exit.code ?? exit.signal ?? '?'}).\nstderr:\n${run.stderr()}`,
    );
  }
}

/** The parts of the report (DESIGN "Public contracts") these tests read. */
interface CliReport {
  summary: { total: number; needsAttention: number };
  connections: {
    connectionId: string;
    finding: string;
    action: string;
    outcome: string;
    phase?: string;
    error?: string;
    steps?: string[];
  }[];
}
