/**
 * Cold start of the Functions app, in a fresh process each time (compiled: `node dist/bench/coldStart.js
 * lazy|eager`): load every function module, as the host does from `main` (`dist/src/functions/*.js`),
 * then serve a first HTTP request (`GET /api/health`, the probe a cold instance answers first).
 * `eager` first loads every SDK the app uses, as an app importing them at the top of its modules would.
 * Prints one JSON line: milliseconds from process start, modules loaded, RSS.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every heavy dependency of the app: what an eager app loads before it can answer anything. */
const SDKS = [
  '@azure/identity',
  '@azure/keyvault-secrets',
  '@azure/storage-blob',
  '@azure/core-rest-pipeline',
  '@microsoft/microsoft-graph-client',
  '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials',
  'applicationinsights',
  'p-limit',
];

export interface ColdStartSample {
  mode: 'lazy' | 'eager';
  /** Node's own start-up, before this script's first line. */
  bootMs: number;
  /** Loading the function modules (and, eager, the SDKs). */
  loadMs: number;
  /** The first request, from the handler's call to its answer. */
  firstRequestMs: number;
  /** Process start to the first answer. */
  totalMs: number;
  status: number;
  modulesLoaded: number;
  packagesLoaded: string[];
  rssMb: number;
}

function packagesIn(cache: NodeJS.Require['cache']): string[] {
  const names = new Set<string>();
  for (const file of Object.keys(cache)) {
    const m = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(file);
    if (m?.[1]) names.add(m[1].replace(/\\/g, '/'));
  }
  return [...names].sort();
}

async function main(): Promise<void> {
  const mode = process.argv[2] === 'eager' ? 'eager' : 'lazy';
  const bootMs = performance.now();
  const functionsDir = join(__dirname, '..', 'src', 'functions');
  if (mode === 'eager') for (const sdk of SDKS) await import(sdk);
  for (const file of readdirSync(functionsDir)
    .filter((f) => f.endsWith('.js'))
    .sort())
    await import(join(functionsDir, file));
  const loaded = performance.now();

  const { HttpRequest, InvocationContext } = await import('@azure/functions');
  const { health } = await import('../src/functions/health');
  const response = await health(
    new HttpRequest({ method: 'GET', url: 'https://sc-remediator.example/api/health' }),
    new InvocationContext({ functionName: 'health', logHandler: () => undefined }),
  );
  const answered = performance.now();
  const sample: ColdStartSample = {
    mode,
    bootMs: Math.round(bootMs),
    loadMs: Math.round(loaded - bootMs),
    firstRequestMs: Math.round(answered - loaded),
    totalMs: Math.round(answered),
    status: response.status ?? 200,
    modulesLoaded: Object.keys(require.cache).length,
    packagesLoaded: packagesIn(require.cache),
    rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
  process.stdout.write(`${JSON.stringify(sample)}\n`);
}

void main();
