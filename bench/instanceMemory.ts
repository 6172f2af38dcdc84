/**
 * The product's bench process at the memory of the instance it is deployed on.
 *
 * Node sizes V8's heap from the memory the process may use, cgroup limits included (nodejs/node#27508,
 * "src: use cgroups to get memory limits"; `SetIsolateCreateParamsForNode` in src/api/environment.cc),
 * and V8 lets the heap grow further past the live data the larger that heap limit is. So the same
 * program peaks far higher on this machine (24 GB, a 4 GB heap limit) than in a 2 GB container, and a
 * figure measured without the instance's limit is not the deployed app's. The bench therefore starts the
 * product inside a memory cgroup of `instanceMemoryMB` (infra/main.bicep; Flex Consumption instances
 * have 2,048 or 4,096 MB). Nothing in the product changes: the limit is the environment's, as in Azure.
 *
 * Not verified here (no Azure): that a Flex Consumption instance shows its memory size to the process
 * as a cgroup limit. The bench also measures the run without the limit, and says which one it reports.
 *
 * A cgroup needs root or a delegated hierarchy; where none can be made the product runs without a
 * limit and the bench says why.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type MemoryLimit =
  | {
      mb: number;
      applied: true;
      /** The cgroup's directory. */
      path: string;
      /** How to start node inside it: `fork` with these `execPath` and `execArgv`. */
      launch(nodeOptions: string[]): { execPath: string; execArgv: string[] };
      /** Removes the cgroup (once its processes have exited). */
      dispose(): Promise<void>;
    }
  | { mb: number; applied: false; reason: string };

/** `instanceMemoryMB`'s default in infra/main.bicep: the bench's limit unless `--instance-memory` says otherwise. */
export function deployedInstanceMemoryMb(bicepPath: string): number {
  const m = /^param instanceMemoryMB int = (\d+)/m.exec(readFileSync(bicepPath, 'utf8'));
  if (!m?.[1]) throw new Error(`${bicepPath} declares no default for instanceMemoryMB`);
  return Number(m[1]);
}

/**
 * The allocator setting the deployed function app runs with (`MALLOC_ARENA_MAX` in
 * infra/modules/functionapp.bicep), for the Functions path the bench measures.
 */
export function deployedMallocArenaMax(bicepPath: string): string {
  const m = /^\s*MALLOC_ARENA_MAX: '(\d+)'/m.exec(readFileSync(bicepPath, 'utf8'));
  if (!m?.[1]) throw new Error(`${bicepPath} sets no MALLOC_ARENA_MAX`);
  return m[1];
}

/** Where a child cgroup with a memory limit can be made, and the file that sets the limit. */
function memoryHierarchy(): { base: string; limitFile: string; version: 1 | 2 } | string {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  } catch {
    return 'no /proc/self/cgroup (not Linux)';
  }
  // cgroup v1: "4:memory:/path" (the memory controller may share its line with others).
  for (const line of lines) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers?.split(',').includes('memory') && path !== undefined)
      return { base: join('/sys/fs/cgroup/memory', path), limitFile: 'memory.limit_in_bytes', version: 1 };
  }
  // cgroup v2: "0::/path"; the parent must hand the memory controller to its children.
  const unified = lines.find((l) => l.startsWith('0::'));
  if (unified) {
    const base = join('/sys/fs/cgroup', unified.slice(3));
    try {
      if (!readFileSync(join(base, 'cgroup.subtree_control'), 'utf8').includes('memory'))
        writeFileSync(join(base, 'cgroup.subtree_control'), '+memory');
      return { base, limitFile: 'memory.max', version: 2 };
    } catch (err) {
      return `cgroup v2 without the memory controller for children (${(err as Error).message})`;
    }
  }
  return 'no memory cgroup controller';
}

export function createMemoryLimit(mb: number, name: string): MemoryLimit {
  const hierarchy = memoryHierarchy();
  if (typeof hierarchy === 'string') return { mb, applied: false, reason: hierarchy };
  const path = join(hierarchy.base, name);
  try {
    mkdirSync(path);
    writeFileSync(join(path, hierarchy.limitFile), String(mb * 2 ** 20));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      mb,
      applied: false,
      reason: `cannot make a memory cgroup${code === 'EACCES' || code === 'EROFS' ? ' (needs root or a delegated cgroup)' : ''}: ${(err as Error).message}`,
    };
  }
  return {
    mb,
    applied: true,
    path,
    // `fork` runs `execPath ...execArgv module`: a shell that moves itself into the cgroup, then
    // becomes node, so V8 is configured with the limit already in place (it reads it once, at start).
    launch: (nodeOptions) => ({
      execPath: '/bin/sh',
      execArgv: [
        '-c',
        'echo $$ > "$0" && exec "$@"',
        join(path, 'cgroup.procs'),
        process.execPath,
        ...nodeOptions,
      ],
    }),
    dispose: async () => {
      // The kernel refuses (EBUSY) until the last process in it has gone.
      for (let attempt = 0; attempt < 50; attempt += 1) {
        try {
          rmdirSync(path);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}
