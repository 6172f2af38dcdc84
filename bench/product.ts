/**
 * The product alone in a fresh process, compiled (`dist/bench/product.js`, no TypeScript loader in
 * memory): one full `remediate` run through the composition root, as `sc-remediator remediate` does,
 * against the sandbox the environment points at. Reports over IPC: wall time, peak resident memory
 * (the kernel's high-water mark, `VmHWM`, plus sampled RSS and heap), and the report's summary.
 *
 * `BENCH_PATH=queue`: the Functions app's path instead — `planRun` (the nightly timer's fan-out),
 * then every work item through `processWorkItem` (the queue worker), `MAX_CONCURRENCY` at once, all
 * in this one process (one instance taking every message: the most memory a single instance holds).
 */
import { readFileSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';
import pLimit from 'p-limit';
import { randomUUID } from 'node:crypto';
import { loadConfig, loadFunctionSettings } from '../src/config';
import { EngineThread, type EngineHost } from '../src/engineThread/engineThread';
import { workerMemory } from '../src/telemetry/processMemory';
import type { ConnectionReport, RunReport, RunSummary } from '../src/remediation/report';
import { createLogger } from '../src/telemetry';

export interface ProductResult {
  type: 'result';
  wallSeconds: number;
  discoverySeconds: number;
  peakRssMb: number;
  sampledPeakRssMb: number;
  peakHeapMb: number;
  /** Peak of memory outside the JS heap that V8 knows of (Buffers, TLS), sampled. */
  peakExternalMb: number;
  idleRssMb: number;
  /** The memory limit this process runs under (a cgroup's), 0 when none: what Node sized V8's heap from. */
  constrainedMemoryMb: number;
  /** V8's heap limit as Node configured it at start. */
  heapLimitMb: number;
  connections: number;
  byOutcome: Record<string, number>;
  byAction: Record<string, number>;
  /** Up to 10 errors of failed connections (redacted by the engine). */
  errors: string[];
  logLines: { warn: number; error: number };
  cpuSeconds: number;
  /**
   * The Functions path's engine thread: its V8 heap at its largest (used, and reserved by V8), sampled;
   * only where Node reports a thread's heap (22.16+).
   */
  threadHeapMb?: { used: number; total: number };
  /** With `--live-heap`: the heap reachable after a full collection, once a second, by stage. */
  liveHeapMb?: { at: string; mb: number }[];
}

function kernelPeakRssMb(): number {
  try {
    const kb = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : 0;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const idleRssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
  let sampledPeak = 0;
  let heapPeak = 0;
  let externalPeak = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    sampledPeak = Math.max(sampledPeak, m.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed);
    externalPeak = Math.max(externalPeak, m.external);
  };
  const sampler = setInterval(sample, 50);
  // `--live-heap` (node --expose-gc): the heap still reachable after a full collection, once a
  // second, with the run's stage: what the process holds, not what V8 lets accumulate. Diagnosis
  // only (collecting every second lowers the peak RSS it measures).
  const gc = (globalThis as { gc?: () => void }).gc;
  const live: { at: string; mb: number }[] = [];
  // `BENCH_HEAP_SNAPSHOT=<stage>` (diagnosis): a heap snapshot in the working directory when the run
  // reaches that stage (`remediating 0`, `remediating 1000`, …).
  const snapshotAt = process.env['BENCH_HEAP_SNAPSHOT'];
  let stage = 'discovery';
  const enterStage = (value: string): void => {
    if (value !== stage && value === snapshotAt) writeHeapSnapshot();
    stage = value;
  };
  const liveSampler = gc
    ? setInterval(() => {
        gc();
        live.push({ at: stage, mb: Math.round(process.memoryUsage().heapUsed / 2 ** 20) });
      }, 1000)
    : undefined;
  const logLines = { warn: 0, error: 0 };
  const log = createLogger((level) => {
    if (level === 'warn') logLines.warn += 1;
    if (level === 'error') logLines.error += 1;
  }, 'warn');

  const started = performance.now();
  let discovered = started;
  const config = loadConfig(process.env);
  // Built (and its SDKs loaded) on this thread only where the work runs on it: the engine thread
  // builds its own, as the Functions app's invocation thread loads none of them.
  const engineHere = async () => (await import('../src/composition')).buildEngine(config, log);
  // What the run did: its summary, and the first failures (redacted by the engine).
  let summary: RunSummary | undefined;
  const failures: string[] = [];
  let threadHeap: { used: number; total: number } | undefined;
  const noteFailures = (reports: ConnectionReport[]) => {
    for (const c of reports)
      if (c.outcome === 'failed' && c.error && failures.length < 10)
        failures.push(`${c.connectionName}: ${c.error}`);
  };
  if (process.env['BENCH_PATH'] === 'queue') {
    // As the Functions app works (src/functions/context.ts): in its engine thread (ENGINE_HEAP_MB), or
    // on this thread with 0. Modules are loaded only where used, as on the app's invocation thread.
    const { engineHeapMb } = loadFunctionSettings(process.env);
    // The run ledger: in the storage account the bench started (the default), as the app's is, or in
    // memory with `--ledger memory` (with the engine thread, the thread's own).
    const ledger = async () =>
      (await import('../src/clients/runLedgerFromConfig')).openRunLedger(config, {
        now: () => new Date(),
        log,
      });
    const runId = randomUUID();
    const attempt = { dequeueCount: 1, maxDequeueCount: 5 };
    const limit = pLimit(config.maxConcurrency);
    let completed: RunReport | undefined;
    if (engineHeapMb > 0) {
      const thread = new EngineThread({ env: process.env }, engineHeapMb);
      const threadSampler = setInterval(() => {
        void thread.heapStatistics().then((h) => {
          if (!h) return;
          threadHeap ??= { used: 0, total: 0 };
          threadHeap.used = Math.max(threadHeap.used, Math.round(h.used_heap_size / 2 ** 20));
          threadHeap.total = Math.max(threadHeap.total, Math.round(h.total_heap_size / 2 ** 20));
        });
      }, 100);
      const host: EngineHost = {
        log: (level, line) => log[level](line),
        event: () => undefined,
        // The finished run's summary, as the app's RunCompleted gets it (the report stays in the thread).
        runFinished: (_run, finished) => Promise.resolve(void (summary = finished.summary ?? summary)),
      };
      const planned = await thread.plan({ runId, trigger: 'timer' }, host, ledger);
      discovered = performance.now();
      const results = await Promise.all(
        planned.messages.map((item) => limit(() => thread.processWorkItem(item, attempt, host))),
      );
      clearInterval(threadSampler);
      await thread.close();
      noteFailures(results.flatMap((r) => (r.status === 'recorded' ? [r.report] : [])));
    } else {
      const [{ planRun, processWorkItem }, engine, ledgerHere] = await Promise.all([
        import('../src/remediation/fanOut'),
        engineHere(),
        ledger(),
      ]);
      const ctx = {
        deps: { ...engine.deps, retirements: ledgerHere },
        settings: engine.settings,
        ledger: ledgerHere,
        events: () => undefined,
        onRunFinished: (_run: unknown, report: RunReport | undefined) =>
          Promise.resolve(void (completed = report ?? completed)),
      };
      const planned = await planRun(ctx, { runId, trigger: 'timer' });
      discovered = performance.now();
      completed ??= planned.report;
      await Promise.all(planned.messages.map((item) => limit(() => processWorkItem(ctx, item, attempt))));
    }
    if (completed) {
      summary = completed.summary;
      noteFailures(completed.connections);
    }
    // The last work item recorded completes the run.
    if (!summary) throw new Error('the queue-worker run did not complete');
  } else {
    const engine = await engineHere();
    const { runRemediation } = await import('../src/remediation/run');
    const { report } = await runRemediation(engine.deps, engine.settings, {
      onProgress: (p) => {
        if (p.stage === 'discovered') discovered = performance.now();
        if (p.stage === 'discovered') enterStage('remediating 0');
        if (p.stage === 'remediating' && p.done % 1000 === 0) enterStage(`remediating ${p.done}`);
      },
    });
    summary = report.summary;
    noteFailures(report.connections);
  }
  const wall = performance.now() - started;
  clearInterval(sampler);
  if (liveSampler) clearInterval(liveSampler);
  sample();

  const cpu = process.cpuUsage();
  // The memory limit and heap limit as the deployed app reports them in RunCompleted.
  const memory = workerMemory();
  const result: ProductResult = {
    type: 'result',
    wallSeconds: Math.round(wall / 10) / 100,
    discoverySeconds: Math.round((discovered - started) / 10) / 100,
    peakRssMb: kernelPeakRssMb(),
    sampledPeakRssMb: Math.round(sampledPeak / 2 ** 20),
    peakHeapMb: Math.round(heapPeak / 2 ** 20),
    peakExternalMb: Math.round(externalPeak / 2 ** 20),
    idleRssMb,
    constrainedMemoryMb: memory.workerMemoryLimitMb,
    heapLimitMb: memory.workerHeapLimitMb,
    connections: summary.total,
    byOutcome: summary.byOutcome,
    byAction: summary.byAction,
    errors: failures,
    logLines,
    cpuSeconds: Math.round(((cpu.user + cpu.system) / 1e6) * 10) / 10,
    ...(threadHeap ? { threadHeapMb: threadHeap } : {}),
    ...(live.length > 0 ? { liveHeapMb: live } : {}),
  };
  if (process.send) process.send(result);
  else process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
