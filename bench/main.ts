/**
 * `npm run bench [-- --quick] [-- --scale] [-- --json <file>]`: the nightly run against a generated
 * tenant with per-call latency and throttling budgets shaped like the real services', and in the same
 * run the manual procedure of the field reports as the baseline; then the Functions app's cold start,
 * lazy against eager. The sandbox, the product and the baseline each run in their own process, so the
 * product's memory and CPU are its own. Prints a table; `--json` writes the figures.
 *
 * Targets (reported, not asserted): speedup ≥ 20× against the baseline; calls per rotated connection
 * at most one above the minimum the APIs allow, per service; memory sublinear and under 256 MB at
 * 10,000 connections; throttling answered (waits for Retry-After), never retried blindly.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Table from 'cli-table3';
import { startAzurite } from '../sandbox/azurite';
import type { ServiceName } from '../sandbox/model';
import { CLI_NODE_OPTIONS } from '../src/cli/launch';
import type { BaselineResult } from './baseline';
import { DIST_BENCH, ROOT, runBaseline, runProduct, startSandboxProcess } from './children';
import { createMemoryLimit, deployedInstanceMemoryMb, deployedMallocArenaMax } from './instanceMemory';
import type { ColdStartSample } from './coldStart';
import type { ProductResult } from './product';
import type { SandboxStats, ServiceTally } from './sandboxChild';
import {
  benchFaults,
  DEFAULT_ADO_BUDGET,
  MINIMUM_CALLS_PER_ROTATED,
  shapeOf,
  type AdoBudget,
} from './settings';
import { connectionCount, type TenantShape } from './tenant';

interface Options {
  quick: boolean;
  scale: boolean;
  /** Only the product's runs at the main size (no run without the memory limit, baseline nor cold start). */
  productOnly: boolean;
  /** Which paths of the product to run: the CLI's run loop, the Functions app's queue workers, or both. */
  paths: ProductPath[];
  json?: string;
  latencyMs: number;
  concurrency: number;
  ado: AdoBudget;
  baselineOrganizations: number;
  coldStartRuns: number;
  seed: string;
  connections?: number;
  /** Diagnosis: the product runs with --expose-gc and reports its live heap once a second. */
  liveHeap?: boolean;
  /** The memory limit (MB) the product runs under, as on its instance; 0: none. */
  instanceMemoryMb: number;
  /** The Functions path's run ledger: in memory (in the engine thread) or blobs in Azurite. */
  ledger: 'memory' | 'blob';
}

type ProductPath = 'cli' | 'queue';

const USAGE = `usage: npm run bench -- [--quick] [--scale] [--json <file>] [--latency-ms 30] [--concurrency 64]
                        [--ado-budget 1500/10] [--baseline-organizations 1] [--cold-start-runs 5] [--seed bench]
                        [--path cli|queue|both] [--product-only] [--connections N] [--instance-memory MB|none]
                        [--ledger memory|blob]
  --quick        300 connections instead of 10,000 (the baseline then runs in full)
  --connections  the main size (default 10,000; --quick 300)
  --scale        also 1,000, 2,000 and 5,000 connections, to show how time and memory grow
  --path         the product's CLI run loop, the Functions app's fan-out and queue workers, or both (default)
  --ledger       the Functions path's run ledger: blob (default: Azurite, as deployed) or memory
  --live-heap    diagnosis: the product reports the heap left after a full collection, once a second
  --product-only only the product's runs at the main size: no run without the memory limit, baseline nor cold start
  --instance-memory  the memory cgroup the product runs in, as on its Flex Consumption instance (default
                 infra/main.bicep's instanceMemoryMB, 2048); none: this machine's memory
  --ado-budget   Azure DevOps requests per window (seconds) per identity before it delays, then refuses
`;

const FUNCTION_APP_BICEP = join(ROOT, 'infra', 'modules', 'functionapp.bicep');

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    scale: false,
    productOnly: false,
    paths: ['cli', 'queue'],
    latencyMs: 30,
    concurrency: 64,
    ado: DEFAULT_ADO_BUDGET,
    baselineOrganizations: 1,
    coldStartRuns: 5,
    seed: 'bench',
    instanceMemoryMb: deployedInstanceMemoryMb(join(ROOT, 'infra', 'main.bicep')),
    ledger: 'blob',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a ?? ''} needs a value`);
      return v;
    };
    const int = (min: number, max: number): number => {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < min || n > max)
        throw new Error(`${a ?? ''}: a whole number from ${min} to ${max}`);
      return n;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--scale') o.scale = true;
    else if (a === '--product-only') o.productOnly = true;
    else if (a === '--live-heap') o.liveHeap = true;
    else if (a === '--ledger') {
      const v = value();
      if (v !== 'memory' && v !== 'blob') throw new Error('--ledger: memory or blob');
      o.ledger = v;
    } else if (a === '--connections') o.connections = int(10, 100_000);
    else if (a === '--path') {
      const v = value();
      if (v !== 'cli' && v !== 'queue' && v !== 'both') throw new Error('--path: cli, queue or both');
      o.paths = v === 'both' ? ['cli', 'queue'] : [v];
    } else if (a === '--json') o.json = value();
    else if (a === '--latency-ms') o.latencyMs = int(0, 1000);
    else if (a === '--concurrency') o.concurrency = int(1, 64);
    else if (a === '--ado-budget') {
      const m = /^(\d{1,6})\/(\d{1,4})$/.exec(value());
      if (!m || Number(m[1]) < 1 || Number(m[2]) < 1)
        throw new Error('--ado-budget: <requests>/<seconds>, e.g. 1500/10');
      o.ado = { requests: Number(m[1]), windowSeconds: Number(m[2]) };
    } else if (a === '--baseline-organizations') o.baselineOrganizations = int(1, 50);
    else if (a === '--cold-start-runs') o.coldStartRuns = int(1, 50);
    else if (a === '--seed') o.seed = value();
    else if (a === '--instance-memory') {
      const v = value();
      if (v !== 'none' && (!/^\d+$/.test(v) || Number(v) < 256 || Number(v) > 65_536))
        throw new Error('--instance-memory: megabytes from 256 to 65536, or none');
      o.instanceMemoryMb = v === 'none' ? 0 : Number(v);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${a ?? ''}'\n${USAGE}`);
  }
  return o;
}

interface ProductRun {
  shape: TenantShape;
  connections: number;
  needRotation: number;
  seededRecords: number;
  sandboxStartupSeconds: number;
  product: ProductResult;
  stats: SandboxStats;
  memoryLimit: MemoryLimitFigures;
}

/** The memory limit a product run had: asked for, applied (a cgroup) or why not, and what Node made of it. */
interface MemoryLimitFigures {
  mb: number;
  applied: boolean;
  reason?: string;
  constrainedMemoryMb: number;
  heapLimitMb: number;
}

function describeLimit(l: MemoryLimitFigures): string {
  if (l.applied) return `in a ${l.mb} MB memory cgroup (V8 heap limit ${l.heapLimitMb} MB)`;
  return `without a memory limit (this machine; V8 heap limit ${l.heapLimitMb} MB)${l.reason ? `: ${l.mb} MB not applied, ${l.reason}` : ''}`;
}

async function productRun(
  shape: TenantShape,
  o: Options,
  log: (s: string) => void,
  nodeOptions: string[] = [],
  path: ProductPath = 'cli',
  memoryMb = o.instanceMemoryMb,
): Promise<ProductRun> {
  // The CLI path runs as `sc-remediator` runs its work: with the command's own Node options
  // (src/cli/launch.ts, a bounded heap). The Functions path gets none: the host starts its worker.
  nodeOptions = path === 'cli' ? [...CLI_NODE_OPTIONS, ...nodeOptions] : nodeOptions;
  const sandbox = await startSandboxProcess(shape, benchFaults(o.latencyMs, o.ado), o.seed);
  // The Functions path keeps its run ledger in a storage account, as the app does (`--ledger memory`:
  // in the engine thread's memory instead).
  const storage =
    path === 'queue' && o.ledger === 'blob' ? await startAzurite({ table: false, queue: false }) : undefined;
  const limit = memoryMb > 0 ? createMemoryLimit(memoryMb, `sc-remediator-bench-${process.pid}`) : undefined;
  try {
    log(
      `  sandbox up in ${(sandbox.ready.startupMs / 1000).toFixed(1)} s: ${sandbox.ready.connections} connections, ${sandbox.ready.needRotation} need a new secret, ${sandbox.ready.seededRecords} rotated before; ${path === 'queue' ? 'fan-out and queue workers' : 'CLI run loop'}${nodeOptions.length ? `, with ${nodeOptions.join(' ')}` : ''}`,
    );
    const product = await runProduct(
      {
        ...sandbox.ready.env,
        MAX_CONCURRENCY: String(o.concurrency),
        // Clean-up in the same run, so a rotation's every call is counted (the default keeps old
        // secrets 24 h and removes them in a later run: the same calls, spread over two runs).
        OLD_SECRET_RETENTION_HOURS: '0',
        BENCH_PATH: path,
        ...(storage ? { AzureWebJobsStorage: storage.connectionString } : {}),
        // The Functions app's engine thread heap, when set here (default: the setting's own).
        ...(process.env['ENGINE_HEAP_MB'] ? { ENGINE_HEAP_MB: process.env['ENGINE_HEAP_MB'] } : {}),
        // The Functions path's allocator setting as deployed (infra/modules/functionapp.bicep), unless
        // MALLOC_ARENA_MAX is set here (diagnosis; 0: glibc's default, one arena per thread up to 8 per core).
        ...(path === 'queue'
          ? {
              MALLOC_ARENA_MAX: process.env['MALLOC_ARENA_MAX'] ?? deployedMallocArenaMax(FUNCTION_APP_BICEP),
            }
          : {}),
        // Diagnosis: a heap snapshot when the run reaches this stage (bench/product.ts).
        ...(process.env['BENCH_HEAP_SNAPSHOT']
          ? { BENCH_HEAP_SNAPSHOT: process.env['BENCH_HEAP_SNAPSHOT'] }
          : {}),
      },
      nodeOptions,
      limit,
    );
    const stats = await sandbox.stats();
    const memoryLimit: MemoryLimitFigures = {
      mb: limit?.mb ?? 0,
      applied: limit?.applied ?? false,
      ...(limit && !limit.applied ? { reason: limit.reason } : {}),
      constrainedMemoryMb: product.constrainedMemoryMb,
      heapLimitMb: product.heapLimitMb,
    };
    log(
      `  ${fmt(product.wallSeconds)} s, ${stats.end.rotated} rotated, ${product.byOutcome['failed'] ?? 0} failed, ${stats.end.orphans} orphans, peak RSS ${product.peakRssMb} MB (heap ${product.peakHeapMb} MB, outside the heap ${product.peakExternalMb} MB${product.threadHeapMb ? `, engine thread heap ${product.threadHeapMb.used} MB used of ${product.threadHeapMb.total} MB` : ''}), ${describeLimit(memoryLimit)}`,
    );
    return {
      shape,
      connections: sandbox.ready.connections,
      needRotation: sandbox.ready.needRotation,
      seededRecords: sandbox.ready.seededRecords,
      sandboxStartupSeconds: sandbox.ready.startupMs / 1000,
      product,
      stats,
      memoryLimit,
    };
  } finally {
    await sandbox.stop();
    await storage?.stop();
    if (limit?.applied) await limit.dispose();
  }
}

interface BaselineRun {
  measured: BaselineResult;
  measuredOrganizations: number;
  /** Extrapolated to the whole tenant (linear: it works one request at a time). */
  wallSeconds: number;
}

async function baselineRun(shape: TenantShape, o: Options, log: (s: string) => void): Promise<BaselineRun> {
  const organizations = Math.min(shape.organizations, o.baselineOrganizations);
  const sandbox = await startSandboxProcess(shape, benchFaults(o.latencyMs, o.ado), o.seed);
  try {
    const env = sandbox.ready.env;
    log(
      `  the manual procedure over ${organizations} of ${shape.organizations} organization(s), one request at a time`,
    );
    const measured = await runBaseline(
      {
        organizationUrls: sandbox.ready.organizationUrls.slice(0, organizations),
        pat: sandbox.ready.productPat,
        graphUrl: sandbox.ready.urls.graph,
        authorityUrl: sandbox.ready.urls.authority,
        tenantId: sandbox.ready.tenantId,
        clientId: env['AZURE_CLIENT_ID'] ?? '',
        clientSecret: env['AZURE_CLIENT_SECRET'] ?? '',
      },
      env['NODE_EXTRA_CA_CERTS'] ?? '',
    );
    const total = connectionCount(shape);
    const wallSeconds = Math.round(measured.seconds * (total / Math.max(1, measured.connections)) * 10) / 10;
    log(
      `  ${fmt(measured.seconds)} s for ${measured.connections} connections${measured.connections !== total ? ` → ${fmt(wallSeconds)} s for ${total}` : ''}`,
    );
    return { measured, measuredOrganizations: organizations, wallSeconds };
  } finally {
    await sandbox.stop();
  }
}

type ColdStartSeries = ColdStartSample & { medianTotalMs: number; medianLoadMs: number; samples: number[] };

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function coldStart(runs: number): { runs: number; lazy: ColdStartSeries; eager: ColdStartSeries } {
  // Valid settings (the health probe checks them), pointing nowhere: nothing is called.
  const env = {
    PATH: process.env['PATH'] ?? '',
    AZDO_ORGANIZATION_URLS: 'https://dev.azure.com/contoso',
    KEY_VAULT_URL: 'https://kv-contoso.vault.azure.net/',
    AZURE_TENANT_ID: '00000000-0000-0000-0000-000000000001',
    AZURE_CLIENT_ID: '00000000-0000-0000-0000-000000000002',
    REMEDIATION_JITTER_SECONDS: '0',
  };
  const sample = (mode: 'lazy' | 'eager'): ColdStartSample => {
    const out = spawnSync(process.execPath, [join(DIST_BENCH, 'coldStart.js'), mode], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    });
    const line = out.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as ColdStartSample;
    } catch {
      throw new Error(`cold start (${mode}) printed no result: ${out.stderr.slice(-500)}`);
    }
  };
  const series = (mode: 'lazy' | 'eager'): ColdStartSeries => {
    sample(mode); // once to warm the file system cache, as a deployed instance's is
    const samples = Array.from({ length: runs }, () => sample(mode));
    const totals = samples.map((s) => s.totalMs);
    const typical = samples.find((s) => s.totalMs === median(totals)) ?? samples[0]!;
    return {
      ...typical,
      medianTotalMs: median(totals),
      medianLoadMs: median(samples.map((s) => s.loadMs)),
      samples: totals,
    };
  };
  return { runs, lazy: series('lazy'), eager: series('eager') };
}

const SERVICES: ServiceName[] = ['graph', 'keyvault', 'devops', 'entra'];

function fmt(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const log = (s: string): void => {
    process.stderr.write(`${s}\n`);
  };
  const benchStarted = Date.now();
  const fullConnections = o.connections ?? (o.quick ? 300 : 10_000);
  const mainShape = shapeOf(fullConnections);
  const scaleSizes = o.scale ? (o.quick ? [100, 200] : [1000, 2000, 5000]) : [];

  log(
    `sc-remediator bench (${o.quick ? 'quick' : 'full'}): ${o.latencyMs} ms per call, MAX_CONCURRENCY ${o.concurrency}, Azure DevOps budget ${o.ado.requests}/${o.ado.windowSeconds} s`,
  );
  const scale: ProductRun[] = [];
  for (const size of scaleSizes) {
    log(`product, ${size} connections`);
    scale.push(await productRun(shapeOf(size), o, log));
  }
  const mainPath = o.paths[0] ?? 'cli';
  log(`product, ${fullConnections} connections`);
  const diagnosisOptions = o.liveHeap ? ['--expose-gc'] : [];
  const run = await productRun(mainShape, o, log, diagnosisOptions, mainPath);
  scale.push(run);
  let queue: ProductRun | undefined;
  if (mainPath === 'cli' && o.paths.includes('queue')) {
    log(`product, ${fullConnections} connections, the Functions app's path`);
    queue = await productRun(mainShape, o, log, diagnosisOptions, 'queue');
  }
  const pathFigures = (r: ProductRun) => ({
    wallSeconds: r.product.wallSeconds,
    // Until discovery ended (the CLI) or the plan was made (the Functions path).
    discoverySeconds: r.product.discoverySeconds,
    cpuSeconds: r.product.cpuSeconds,
    peakRssMb: r.product.peakRssMb,
    peakHeapMb: r.product.peakHeapMb,
    peakExternalMb: r.product.peakExternalMb,
    rotated: r.stats.end.rotated,
    failed: r.product.byOutcome['failed'] ?? 0,
    orphans: r.stats.end.orphans,
    notFixed: r.stats.end.notFixed,
    throttled: r.stats.throttled,
    errors: r.product.errors,
    memoryLimit: r.memoryLimit,
    ...(r.product.liveHeapMb ? { liveHeapMb: r.product.liveHeapMb } : {}),
  });
  if (o.productOnly) {
    const figures = { [mainPath]: pathFigures(run), ...(queue ? { queue: pathFigures(queue) } : {}) };
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    if (o.json) writeFileSync(resolve(o.json), `${JSON.stringify(figures, null, 2)}\n`);
    return;
  }
  // The same run with this machine's memory: how much of the figure is the instance's limit.
  if (run.memoryLimit.applied) log(`product again, without the instance's memory limit`);
  const unlimited = run.memoryLimit.applied ? await productRun(mainShape, o, log, [], 'cli', 0) : undefined;
  log('baseline');
  const baseline = await baselineRun(mainShape, o, log);
  log(`cold start: ${o.coldStartRuns} fresh processes each way`);
  const cold = coldStart(o.coldStartRuns);

  const stats = run.stats;
  const rotated = stats.end.rotated;
  const callsOverMinimum = Object.fromEntries(
    SERVICES.map((s) => [s, round2(stats.perRotated[s] - MINIMUM_CALLS_PER_ROTATED[s])]),
  ) as ServiceTally;
  const throttled = SERVICES.reduce((n, s) => n + stats.throttled[s], 0);
  const speedup = Math.round((baseline.wallSeconds / Math.max(0.01, run.product.wallSeconds)) * 10) / 10;
  const first = scale[0]!;
  const memoryGrowth =
    scale.length >= 2
      ? {
          fromConnections: first.connections,
          toConnections: run.connections,
          connectionsRatio: round2(run.connections / first.connections),
          peakRssRatio: round2(run.product.peakRssMb / Math.max(1, first.product.peakRssMb)),
          sublinear:
            run.product.peakRssMb / Math.max(1, first.product.peakRssMb) <
            run.connections / first.connections,
        }
      : undefined;

  const result = {
    size: o.quick ? 'quick' : 'full',
    settings: {
      latencyMs: o.latencyMs,
      maxConcurrency: o.concurrency,
      azureDevOpsBudget: o.ado,
      faults: benchFaults(o.latencyMs, o.ado),
      oldSecretRetentionHours: 0,
      tenant: mainShape,
      seed: o.seed,
    },
    connections: run.connections,
    needRotation: run.needRotation,
    rotatedBefore: run.seededRecords,
    rotated,
    wallSeconds: run.product.wallSeconds,
    discoverySeconds: run.product.discoverySeconds,
    baselineWallSeconds: baseline.wallSeconds,
    baseline: {
      measuredSeconds: baseline.measured.seconds,
      measuredConnections: baseline.measured.connections,
      measuredOrganizations: baseline.measuredOrganizations,
      extrapolated: baseline.measured.connections !== run.connections,
      rotated: baseline.measured.rotated,
      calls: baseline.measured.calls,
      throttled: baseline.measured.throttled,
    },
    speedup,
    callsPerRotated: stats.perRotated,
    minimumCallsPerRotated: MINIMUM_CALLS_PER_ROTATED,
    callsOverMinimum,
    refusedPerRotated: stats.refusedPerRotated,
    callsPerRotatedByOperation: stats.perRotatedByOperation,
    callsPerAssessedConnection: stats.perAssessed,
    callsPerRun: stats.perRun,
    requestsByService: stats.byService,
    peakRssMb: run.product.peakRssMb,
    peakHeapMb: run.product.peakHeapMb,
    failed: run.product.byOutcome['failed'] ?? 0,
    orphans: stats.end.orphans,
    queueWorkerPath: queue ? pathFigures(queue) : undefined,
    idleRssMb: run.product.idleRssMb,
    memoryLimit: run.memoryLimit,
    withoutMemoryLimit: unlimited
      ? {
          heapLimitMb: unlimited.memoryLimit.heapLimitMb,
          wallSeconds: unlimited.product.wallSeconds,
          peakRssMb: unlimited.product.peakRssMb,
          peakHeapMb: unlimited.product.peakHeapMb,
          rotated: unlimited.stats.end.rotated,
        }
      : undefined,
    productCpuSeconds: run.product.cpuSeconds,
    sandbox: { rssMb: stats.rssMb, cpuSeconds: stats.cpuSeconds, startupSeconds: run.sandboxStartupSeconds },
    throttled,
    throttledByService: stats.throttled,
    throttling: stats.throttling,
    outcomes: run.product.byOutcome,
    actions: run.product.byAction,
    errors: run.product.errors,
    endState: stats.end,
    scale: scale.map((r) => ({
      connections: r.connections,
      rotated: r.stats.end.rotated,
      wallSeconds: r.product.wallSeconds,
      peakRssMb: r.product.peakRssMb,
      peakHeapMb: r.product.peakHeapMb,
      throttled: SERVICES.reduce((n, s) => n + r.stats.throttled[s], 0),
      azureDevOpsDelayed: r.stats.throttling.delayed.devops,
    })),
    memoryGrowth,
    coldStart: {
      runs: cold.runs,
      lazyMs: cold.lazy.medianTotalMs,
      eagerMs: cold.eager.medianTotalMs,
      lazy: cold.lazy,
      eager: cold.eager,
    },
    timeline: stats.timeline,
    benchSeconds: Math.round((Date.now() - benchStarted) / 1000),
  };

  const table = new Table({
    head: ['', 'sc-remediator', 'baseline (manual procedure)', 'target'],
    style: { head: [], border: [] },
  });
  table.push(
    [
      'connections (need a new secret)',
      `${run.connections} (${run.needRotation})`,
      `${baseline.measured.connections} measured`,
      '',
    ],
    ['rotated and verified', String(rotated), `${baseline.measured.rotated} (PUT only)`, ''],
    [
      'wall time',
      `${fmt(run.product.wallSeconds)} s`,
      `${fmt(baseline.wallSeconds)} s${result.baseline.extrapolated ? ` (${fmt(baseline.measured.seconds)} s measured)` : ''}`,
      '',
    ],
    ['speedup', `${fmt(speedup)}×`, '', '≥ 20×'],
    ...SERVICES.map((s) => [
      `calls per rotated connection: ${s}`,
      `${fmt(stats.perRotated[s], 2)} (min ${MINIMUM_CALLS_PER_ROTATED[s]})${stats.refusedPerRotated[s] ? ` + ${fmt(stats.refusedPerRotated[s], 2)} refused (429)` : ''}`,
      '',
      `≤ ${MINIMUM_CALLS_PER_ROTATED[s] + 1}`,
    ]),
    [
      `peak RSS, product process, ${run.memoryLimit.applied ? `${run.memoryLimit.mb} MB instance` : 'no memory limit'}`,
      `${run.product.peakRssMb} MB (heap ${run.product.peakHeapMb} MB)`,
      '',
      '< 256 MB',
    ],
    ['failed connections / orphan credentials', `${result.failed} / ${result.orphans}`, '', '0 / 0'],
    ...(queue
      ? [
          [
            'Functions path (fan-out + queue workers)',
            `${fmt(queue.product.wallSeconds)} s, peak RSS ${queue.product.peakRssMb} MB, ${queue.product.byOutcome['failed'] ?? 0} failed, ${queue.stats.end.orphans} orphans`,
            '',
            '< 256 MB, 0 / 0',
          ],
        ]
      : []),
    ...(unlimited
      ? [
          [
            `  without the memory limit (V8 heap limit ${unlimited.memoryLimit.heapLimitMb} MB)`,
            `${unlimited.product.peakRssMb} MB in ${fmt(unlimited.product.wallSeconds)} s`,
            '',
            '',
          ],
        ]
      : []),
    [
      '429s received / Azure DevOps delays',
      `${SERVICES.map((s) => `${s} ${stats.throttled[s]}`).join(', ')} / ${stats.throttling.delayed.devops} delayed`,
      `${baseline.measured.throttled}`,
      '',
    ],
    [
      'retries sooner than Retry-After',
      `${stats.throttling.earlyRetries} (longest 429 stretch ${fmt(Math.max(...SERVICES.map((s) => stats.throttling.longestThrottledSeconds[s])))} s)`,
      '',
      '0',
    ],
    [
      'cold start: first /api/health',
      `${cold.lazy.medianTotalMs} ms lazy`,
      `${cold.eager.medianTotalMs} ms eager`,
      '',
    ],
  );
  process.stdout.write(`${table.toString()}\n`);
  if (scale.length > 1) {
    const t = new Table({
      head: ['connections', 'rotated', 'wall s', 'peak RSS MB', 'heap MB', '429s', 'ADO delays'],
      style: { head: [], border: [] },
    });
    for (const r of result.scale)
      t.push(
        [
          r.connections,
          r.rotated,
          fmt(r.wallSeconds),
          r.peakRssMb,
          r.peakHeapMb,
          r.throttled,
          r.azureDevOpsDelayed,
        ].map(String),
      );
    process.stdout.write(`${t.toString()}\n`);
    if (memoryGrowth)
      process.stdout.write(
        `peak RSS grew ${memoryGrowth.peakRssRatio}× for ${memoryGrowth.connectionsRatio}× the connections (${memoryGrowth.sublinear ? 'sublinear' : 'NOT sublinear'})\n`,
      );
  }
  if (run.product.errors.length > 0)
    process.stdout.write(`failures (first 10):\n  ${run.product.errors.join('\n  ')}\n`);
  process.stdout.write(`bench took ${result.benchSeconds} s\n`);
  if (o.json) {
    const path = resolve(o.json);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`wrote ${path}\n`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
