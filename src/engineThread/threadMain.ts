/**
 * The engine thread (started by `engineThread.ts`): builds the engine once from the settings it was
 * started with, and plans runs and remediates work items with the run ledger, events, logs and
 * `onRunFinished` of the call that asked. Lives outside `src/functions/` so the host does not load it
 * as a function module. Static imports only: the thread loads what the engine needs anyway, and run
 * from TypeScript its require hook handles no `import()`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { expose, releaseProxy, type Remote } from 'comlink';
import nodeEndpoint from 'comlink/dist/umd/node-adapter';
import type { EngineHost, EngineThreadApi, ThreadInit } from './engineThread';
import { buildEngine, type Engine } from '../composition';
import { loadConfig, secretValues } from '../config';
import { planRun, processWorkItem, workResult, type FanOutContext } from '../remediation/fanOut';
import type { RunLedger } from '../remediation/ports';
import { openRunLedger } from '../clients/runLedgerFromConfig';
import { describeFinishedRun } from '../functions/metrics';
import { createLogger, errorMessage, redactor, type LogLevel } from '../telemetry';

/** The call a log line belongs to: its host gets it (calls run concurrently). */
const calls = new AsyncLocalStorage<Remote<EngineHost>>();

function relayLog(level: LogLevel, line: string): void {
  const host = calls.getStore();
  try {
    // Fire and forget, as a log line on the invocation's thread would be.
    if (host) return void host.log(level, line).catch(() => undefined);
  } catch {
    // The call has ended and released its host (a late line of its work): the thread's own console.
  }
  (level === 'error' ? console.error : level === 'warn' ? console.warn : console.log)(line);
}

function heapLimitMb(): number {
  return Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
}

let built: Promise<{ engine: Engine; ledger: RunLedger }> | undefined;

/** The engine and the run ledger, built once from the settings the thread was started with. */
function engineOnce(): Promise<{ engine: Engine; ledger: RunLedger }> {
  built ??= Promise.resolve()
    .then(() => {
      const init = workerData as ThreadInit;
      const config = loadConfig(init.env);
      for (const secret of secretValues(config)) redactor.register(secret);
      const log = createLogger(relayLog, 'info');
      const engine = buildEngine(config, log);
      engine.settings = { ...engine.settings, ...init.settings };
      // The engine's own identity: one token cache for the engine and the ledger.
      const ledger = openRunLedger(config, { now: () => new Date(), log, credential: engine.credential });
      // What bounds this thread's memory, in the log of the invocation that started it.
      log.info(`Engine thread started: V8 heap limit ${heapLimitMb()} MB (ENGINE_HEAP_MB ${init.heapMb}).`);
      return { engine, ledger };
    })
    .catch((err: unknown) => {
      built = undefined; // a transient failure is tried again by the next call
      throw err;
    });
  return built;
}

async function contextFor(host: Remote<EngineHost>): Promise<FanOutContext> {
  const { engine, ledger } = await engineOnce();
  const { deps, settings } = engine;
  return {
    // Retired connections are recorded in the app's ledger, as on the invocation's own thread.
    deps: { ...deps, retirements: ledger },
    settings,
    ledger,
    events: (name, properties) => {
      try {
        void host.event(name, properties).catch(() => undefined);
      } catch {
        // Released: the call has ended; an event after its end has no invocation to go to.
      }
    },
    // The run's report stays here: only what telemetry and the notifier need crosses.
    onRunFinished: (run, report) => host.runFinished(run, describeFinishedRun(run, report, new Date())),
  };
}

/** Runs one call with its host; only a redacted message crosses back when it fails. */
async function serve<T>(host: Remote<EngineHost>, work: (ctx: FanOutContext) => Promise<T>): Promise<T> {
  try {
    return await calls.run(host, async () => work(await contextFor(host)));
  } catch (err) {
    throw new Error(errorMessage(err));
  } finally {
    // Closes the call's channel on both sides (an open port would keep the app's process alive).
    host[releaseProxy]();
  }
}

const api: Record<keyof EngineThreadApi, unknown> = {
  plan: (options: Parameters<EngineThreadApi['plan']>[0], host: Remote<EngineHost>) =>
    serve(host, (ctx) => planRun(ctx, options)),
  processWorkItem: (
    item: Parameters<EngineThreadApi['processWorkItem']>[0],
    attempt: Parameters<EngineThreadApi['processWorkItem']>[1],
    host: Remote<EngineHost>,
  ) => serve(host, async (ctx) => workResult(await processWorkItem(ctx, item, attempt))),
};

if (!parentPort) throw new Error('threadMain runs as a worker thread (started by engineThread.ts)');
expose(api, nodeEndpoint(parentPort));
