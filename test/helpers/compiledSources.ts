/**
 * The product's TypeScript (src/), transpiled once per test run (the global setup, esbuild: under a
 * second) for the CLI processes tests start: `node <compiled>/src/cli/main.js` starts in about half
 * the CPU of `node --import tsx src/cli/main.ts` (1.2-2 s, paid by some 25 children of `npm test`),
 * and is what the built `sc-remediator` runs (dist/, also plain CommonJS). The output sits under
 * node_modules/.cache so the packages resolve as from the sources; each run writes its own folder and
 * removes it. (Not the sandbox: it reads its scenarios and CA from beside its sources.)
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const ROOT = resolve(__dirname, '..', '..');
const COMPILED_VARIABLE = 'SC_TEST_COMPILED_SOURCES';

/** Transpiles src/ for this run's children; returns what removes the output. */
export async function compileForChildren(): Promise<() => void> {
  const cache = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const outdir = mkdtempSync(join(cache, 'sc-remediator-tests-'));
  const entryPoints = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => join(ROOT, 'src', file));
  // Transpiled file by file like tsx does (no bundling, no type check): the same CommonJS modules.
  await build({
    entryPoints,
    outdir,
    outbase: ROOT,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    logLevel: 'error',
  });
  process.env[COMPILED_VARIABLE] = outdir;
  return () => {
    delete process.env[COMPILED_VARIABLE];
    rmSync(outdir, { recursive: true, force: true });
  };
}

/**
 * Node's arguments that run `script` (a path under src/ from the project root, `src/cli/main.ts`):
 * the compiled file when this run has one, else the source through tsx.
 */
export function nodeArgsFor(script: string): string[] {
  const compiled = process.env[COMPILED_VARIABLE];
  return compiled ? [join(compiled, script.replace(/\.ts$/, '.js'))] : ['--import', 'tsx', script];
}
