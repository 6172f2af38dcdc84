/**
 * How the `sc-remediator` command starts the Node process that does its work, decided before
 * anything heavy is loaded (bin.ts):
 *
 * - **A bounded heap.** Node sizes V8's heap from the machine's memory. With memory to spare (a
 *   workstation, a build agent) V8 lets garbage grow to about four times what a run holds before
 *   it collects: about 290 MB resident for 10,000 connections whose live data is 40–55 MB. With
 *   `--max-old-space-size=1024` V8 collects sooner and the same run peaks near 195 MB, with the
 *   limit still about twenty times the live data (docs/performance.md, `npm run bench`).
 * - **A CA bundle from `--settings-file`.** Node reads NODE_EXTRA_CA_CERTS only when it starts.
 *
 * When either is missing, the same command is started again with it: the process replaced in
 * place (`process.execve`, Node 22.15 and later, not on Windows), else a child process that
 * inherits the terminal, whose exit code (or signal) becomes this one's. A heap limit the caller
 * set (`--max-old-space-size` in the command line or NODE_OPTIONS) is left as it is.
 */
import { spawnSync } from 'node:child_process';
import { readSettingsFile } from './settingsFile';

/** The V8 old-space limit (MB) the CLI's work runs with. */
const CLI_HEAP_LIMIT_MB = 1024;
/** The Node options the CLI's work runs with (the bench runs the CLI path with them too). */
export const CLI_NODE_OPTIONS: readonly string[] = [`--max-old-space-size=${CLI_HEAP_LIMIT_MB}`];

const RESTARTED = 'SC_REMEDIATOR_RESTARTED';

interface Relaunch {
  /** Node's arguments: its options, then the script and the command's arguments. */
  args: string[];
  env: NodeJS.ProcessEnv;
}

function setsHeapLimit(options: readonly string[]): boolean {
  return options.some((o) => /^--max[-_]old[-_]space[-_]size(=|$)/.test(o));
}

/**
 * How to start the process that should do the work instead of this one, or undefined when this one
 * should. `script` is the script and the command's arguments (`process.argv.slice(1)`).
 */
export function relaunchFor(input: {
  execArgv: readonly string[];
  script: readonly string[];
  env: NodeJS.ProcessEnv;
  /** NODE_EXTRA_CA_CERTS named by the settings file. */
  caBundle?: string;
  /** Bound the heap (the installed command); a direct `node main.js` run is left as started. */
  boundHeap: boolean;
}): Relaunch | undefined {
  const { execArgv, env } = input;
  if (env[RESTARTED]) return undefined;
  const wantsCa = input.caBundle !== undefined && env['NODE_EXTRA_CA_CERTS'] !== input.caBundle;
  const wantsHeap =
    input.boundHeap && !setsHeapLimit(execArgv) && !setsHeapLimit((env['NODE_OPTIONS'] ?? '').split(/\s+/));
  if (!wantsCa && !wantsHeap) return undefined;
  return {
    args: [...execArgv, ...(wantsHeap ? CLI_NODE_OPTIONS : []), ...input.script],
    env: {
      ...env,
      ...(wantsCa ? { NODE_EXTRA_CA_CERTS: input.caBundle } : {}),
      [RESTARTED]: '1',
    },
  };
}

/** The CA bundle the `--settings-file` among `args` names, if any (an unreadable file: none here). */
function caBundleFromArgs(args: readonly string[]): string | undefined {
  const i = args.indexOf('--settings-file');
  const file =
    i >= 0
      ? args[i + 1]
      : args.find((a) => a.startsWith('--settings-file='))?.slice('--settings-file='.length);
  if (!file) return undefined;
  try {
    return readSettingsFile(file)['NODE_EXTRA_CA_CERTS'] || undefined;
  } catch {
    return undefined; // Reported with the usual usage error once the command runs.
  }
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/** Starts `plan` in place of this process, or as a child whose ending becomes this one's. */
function relaunch(plan: Relaunch): never {
  const execve = (process as unknown as { execve?: Execve }).execve;
  if (typeof execve === 'function') execve(process.execPath, [process.execPath, ...plan.args], plan.env);
  const child = spawnSync(process.execPath, plan.args, { stdio: 'inherit', env: plan.env });
  if (child.signal) process.kill(process.pid, child.signal);
  process.exit(child.status ?? 1);
}

/**
 * For this process's command line: returns when this process should do the work, else starts the
 * process that does it and never returns.
 */
export function relaunchIfNeeded(options: { boundHeap: boolean }): void {
  const plan = relaunchFor({
    execArgv: process.execArgv,
    script: process.argv.slice(1),
    env: process.env,
    caBundle: caBundleFromArgs(process.argv.slice(2)),
    boundHeap: options.boundHeap,
  });
  if (plan) relaunch(plan);
}
