/**
 * The Functions app runs its engine work (planning a run, remediating a fanned-out connection) in one
 * worker thread whose heap has a limit of its own (`ENGINE_HEAP_MB`).
 *
 * Why a thread: the host starts the Node worker process, and Flex Consumption offers no app setting
 * for its Node options (azure-functions-host#6455 and #9017 show `languageWorkers__node__arguments`
 * only on other plans). Without a heap limit V8 sizes its heap from the machine, and with a limit of
 * 2 GB or more it lets the heap grow to four times what is live before it collects: a
 * 10,000-connection run reached about 290 MB resident while less than 40 MB was live.
 * `resourceLimits` is the documented way to give an isolate its own limit after start
 * (https://nodejs.org/api/worker_threads.html#new-workerfilename-options); V8 then collects
 * against that limit.
 *
 * The thread builds its own engine and run ledger from the same settings (the ledger is shared
 * through the storage account, so the API on this side sees the same runs): run reports, the
 * largest things the engine makes, never cross. Telemetry events, log lines (redacted in the
 * thread, where the secrets are known) and `onRunFinished` come back over `comlink`, each in the
 * async context of the call that asked (the invocation's, for its log and telemetry correlation).
 * A thread that dies (out of memory, a crash) fails its calls: a queue message is then retried by
 * the host, and a run being planned is failed here, so none is left `running`. The next call starts
 * a new thread.
 */
import { AsyncResource } from 'node:async_hooks';
import { join } from 'node:path';
import type { HeapInfo } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { proxy, releaseProxy, wrap, type Remote } from 'comlink';
import nodeEndpoint from 'comlink/dist/umd/node-adapter';
import type { PlannedRun, WorkItem, WorkResult } from '../remediation/fanOut';
import type { RunLedger, RunRecord, RunTrigger } from '../remediation/ports';
import type { FinishedRun } from '../functions/metrics';
import type { RunEventName, RunSettings } from '../remediation/run';
import { errorMessage, type LogLevel } from '../telemetry';

/** What the thread builds its engine from. */
export interface ThreadInit {
  env: Record<string, string | undefined>;
  /** Overrides of the engine's settings (tests), applied after the settings are read. */
  settings?: Partial<RunSettings>;
  /** `ENGINE_HEAP_MB`, for the thread's log. */
  heapMb?: number;
}

/** What the thread calls back on this side, per call. */
export interface EngineHost {
  log(level: LogLevel, line: string): void;
  event(name: RunEventName, properties: Record<string, string | number | boolean>): void;
  /** A finished run, described in the thread (`describeFinishedRun`): its report stays there. */
  runFinished(run: RunRecord, finished: FinishedRun): Promise<void>;
}

type PlanOptions = { runId: string; trigger: RunTrigger; dryRun?: boolean };
type Attempt = { dequeueCount: number; maxDequeueCount: number };

/** The thread's side (`threadMain.ts`). */
export interface EngineThreadApi {
  plan(options: PlanOptions, host: EngineHost): Promise<PlannedRun>;
  processWorkItem(item: WorkItem, attempt: Attempt, host: EngineHost): Promise<WorkResult>;
}

/** The thread ended before it answered (out of memory, a crash): not an error of the work itself. */
class ThreadDied extends Error {}

interface Running {
  worker: Worker;
  api: Remote<EngineThreadApi>;
  died: Promise<never>;
}

/** Threads running now, so a test run can end them all (`closeEngineThreads`). */
const open = new Set<EngineThread>();

/** Ends every engine thread of this module instance (jest's set-up does it after each test file). */
export async function closeEngineThreads(): Promise<void> {
  await Promise.all([...open].map((thread) => thread.close()));
}

export class EngineThread {
  private running?: Running;

  constructor(
    private readonly init: ThreadInit,
    readonly heapMb: number,
  ) {}

  /**
   * `planRun` in the thread. Should the thread die, the run is failed in `ledger()` (this side's view
   * of the same ledger, opened only then) and `host.runFinished` told.
   */
  async plan(options: PlanOptions, host: EngineHost, ledger: () => Promise<RunLedger>): Promise<PlannedRun> {
    try {
      return await this.call(host, (api, remoteHost) => api.plan(options, remoteHost));
    } catch (err) {
      if (err instanceof ThreadDied) {
        const failed = await ledger()
          .then((l) => l.failRun(options.runId, err.message))
          .catch(() => undefined);
        if (failed) {
          const { describeFinishedRun } = await import('../functions/metrics');
          await host
            .runFinished(failed, describeFinishedRun(failed, undefined, new Date()))
            .catch(() => undefined);
        }
      }
      throw err;
    }
  }

  /** `processWorkItem` in the thread. */
  processWorkItem(item: WorkItem, attempt: Attempt, host: EngineHost): Promise<WorkResult> {
    return this.call(
      host,
      (api, remoteHost) => api.processWorkItem(item, attempt, remoteHost) as Promise<WorkResult>,
    );
  }

  /**
   * The thread's V8 heap while it runs, where Node reports it (`worker.getHeapStatistics()`, Node
   * 22.16+); undefined otherwise. The bench samples it.
   */
  async heapStatistics(): Promise<HeapInfo | undefined> {
    const worker = this.running?.worker as { getHeapStatistics?: () => Promise<HeapInfo> } | undefined;
    return worker?.getHeapStatistics ? await worker.getHeapStatistics().catch(() => undefined) : undefined;
  }

  /** Ends the thread (tests, a replaced configuration); a later call starts another. */
  async close(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    open.delete(this);
    if (running) {
      running.api[releaseProxy]();
      await running.worker.terminate();
    }
  }

  private async call<T>(
    host: EngineHost,
    invoke: (api: Remote<EngineThreadApi>, remoteHost: EngineHost) => Promise<T>,
  ): Promise<T> {
    const running = (this.running ??= this.start());
    open.add(this);
    const hostHere: EngineHost = {
      log: AsyncResource.bind((level: LogLevel, line: string) => host.log(level, line)),
      event: AsyncResource.bind((name: RunEventName, properties: Record<string, string | number | boolean>) =>
        host.event(name, properties),
      ),
      runFinished: AsyncResource.bind((run: RunRecord, finished: FinishedRun) =>
        host.runFinished(run, finished),
      ),
    };
    return await Promise.race([invoke(running.api, proxy(hostHere)), running.died]);
  }

  private start(): Running {
    const resourceLimits = {
      maxOldGenerationSizeMb: this.heapMb,
      // V8's young generation scales with the heap it may use; bounded too, so the thread's
      // resident memory stays close to what it holds.
      maxYoungGenerationSizeMb: Math.max(8, Math.round(this.heapMb / 16)),
    };
    const options = { resourceLimits, workerData: { ...this.init, heapMb: this.heapMb } };
    let worker: Worker;
    if (__filename.endsWith('.js')) worker = new Worker(join(__dirname, 'threadMain.js'), options);
    else {
      // Run from TypeScript (tests, `npm run demo`): the thread registers tsx's require hook itself;
      // an `--import` in a thread's execArgv does not apply to the file it starts.
      const entry = join(__dirname, 'threadMain.ts');
      const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(entry)});`;
      worker = new Worker(code, { ...options, eval: true });
    }
    // Never keeps the process alive by itself (the host, or a CLI-style caller, decides that).
    worker.unref();
    const died = new Promise<never>((_, reject) => {
      worker.once('error', (err) => reject(new ThreadDied(threadFailure(err, this.heapMb))));
      worker.once('exit', (code) =>
        reject(new ThreadDied(`The engine thread stopped (exit code ${code}) before it answered.`)),
      );
    });
    // Observed by every call; unobserved after close() or while idle.
    died.catch(() => {
      if (this.running?.worker === worker) this.running = undefined;
    });
    return { worker, api: wrap<EngineThreadApi>(nodeEndpoint(worker)), died };
  }
}

function threadFailure(err: unknown, heapMb: number): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code === 'ERR_WORKER_OUT_OF_MEMORY')
    return `The engine needed more than the ${heapMb} MB heap of its thread (ENGINE_HEAP_MB): raise it, or run the engine on the invocation's own thread with 0.`;
  return `The engine thread failed: ${errorMessage(err)}`;
}
