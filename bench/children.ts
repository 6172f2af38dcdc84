/**
 * Child processes of the bench and the fault campaign: the sandbox (TypeScript, through tsx), the
 * product and the baseline (compiled, `dist/bench/*.js`, so no TypeScript loader sits in the memory
 * the bench measures). Messages over IPC; every child is killed when the bench ends.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FaultRule } from '../sandbox/index';
import type { BaselineInput, BaselineResult } from './baseline';
import type { MemoryLimit } from './instanceMemory';
import type { ProductResult } from './product';
import type { ReadyMessage, SandboxStats } from './sandboxChild';
import type { TenantShape } from './tenant';

export const ROOT = resolve(__dirname, '..');
export const DIST_BENCH = join(ROOT, 'dist', 'bench');

const children = new Set<ChildProcess>();

process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** The next message of `type` from `child` (or its error message, or its exit), within `timeoutMs`. */
function nextMessage<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no '${type}' message within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: { type?: string; message?: string }): void => {
      if (message.type === type) {
        cleanup();
        resolvePromise(message as T);
      } else if (message.type === 'error') {
        cleanup();
        reject(new Error(message.message ?? 'child failed'));
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`child exited (${code ?? signal ?? '?'}) before sending '${type}'`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

interface SandboxProcess {
  ready: ReadyMessage;
  pid: number;
  stats(): Promise<SandboxStats>;
  stop(): Promise<void>;
}

/** Starts the sandbox with a generated tenant in its own process. */
export async function startSandboxProcess(
  shape: TenantShape,
  faults: FaultRule[],
  seed: string,
): Promise<SandboxProcess> {
  const child = fork(join(ROOT, 'bench', 'sandboxChild.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.send({ type: 'start', shape, faults, seed });
  const ready = await nextMessage<ReadyMessage>(child, 'ready', 300_000);
  return {
    ready,
    pid: child.pid ?? 0,
    stats: async () => {
      child.send({ type: 'stats' });
      return (await nextMessage<{ stats: SandboxStats }>(child, 'stats', 120_000)).stats;
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.send({ type: 'stop' });
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      child.kill('SIGKILL');
    },
  };
}

function requireBuilt(name: string): string {
  const path = join(DIST_BENCH, `${name}.js`);
  if (!existsSync(path))
    throw new Error(`${path} is missing: build first (tsc -p tsconfig.bench.json; npm run bench does).`);
  return path;
}

/** One full product run in a fresh, compiled process; inside `limit`'s memory cgroup when it applies. */
export async function runProduct(
  env: Record<string, string>,
  nodeOptions: string[] = [],
  limit?: MemoryLimit,
  timeoutMs = 900_000,
): Promise<ProductResult> {
  const launch = limit?.applied ? limit.launch(nodeOptions) : { execArgv: nodeOptions };
  const child = fork(requireBuilt('product'), [], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    ...launch,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('exit', () => children.delete(child));
  try {
    return await nextMessage<ProductResult>(child, 'result', timeoutMs);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

/** The manual procedure, in a fresh process. */
export async function runBaseline(
  input: BaselineInput,
  caCertPath: string,
  timeoutMs = 1_800_000,
): Promise<BaselineResult> {
  const child = fork(requireBuilt('baseline'), [], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', NODE_EXTRA_CA_CERTS: caCertPath },
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.send(input);
  try {
    return await nextMessage<BaselineResult>(child, 'result', timeoutMs);
  } finally {
    child.kill('SIGKILL');
  }
}
