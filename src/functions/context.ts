/**
 * The Functions app's one composition point, built lazily and once per worker process: settings,
 * the engine (Graph, Key Vault, Azure DevOps clients), the run ledger, telemetry and the notifier.
 * Nothing heavy is imported at module load: each SDK is imported the first time a function needs
 * it, so the health probe never loads the Azure SDKs and a ledger read loads only Storage.
 *
 * Every function runs its body in `withInvocation(context, …)`: logs from anywhere below (the
 * engine included) go to that invocation's log, and every telemetry item carries its invocationId
 * and function name.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { InvocationContext } from '@azure/functions';
import type { Notifier } from '../clients/notifier';
import type { RunLedger, RunRecord, RunTrigger } from '../remediation/ports';
import type { Engine } from '../composition';
import type { Config, FunctionSettings } from '../config';
import type { EngineHost, EngineThread } from '../engineThread/engineThread';
import type { FanOutContext, PlannedRun, WorkItem, WorkResult } from '../remediation/fanOut';
import type { Clock } from '../remediation/ports';
import type { RunReport } from '../remediation/report';
import type { FinishedRun } from './metrics';
import type { RunEventSink, RunSettings } from '../remediation/run';
import { createLogger, errorMessage, redactor, type Logger, type LogLevel } from '../telemetry';
import type { TelemetryProperties, TelemetrySink } from '../telemetry/sink';
import { workerMemory } from '../telemetry/processMemory';

type Env = Record<string, string | undefined>;

/** Queue the nightly run fans out to, and its poison queue (the host adds `-poison`). */
export const WORK_QUEUE = 'sc-remediator-work';
export const POISON_QUEUE = `${WORK_QUEUE}-poison`;
/** The app setting holding the storage connection (or its `__queueServiceUri` identity form). */
export const STORAGE_CONNECTION = 'AzureWebJobsStorage';
/** Must equal `extensions.queues.maxDequeueCount` in host.json (a test checks). */
export const MAX_DEQUEUE_COUNT = 5;

interface ServicesOptions {
  /** Settings source (default `process.env`). */
  env?: Env;
  clock?: Clock;
  /** Random source for the start jitter. */
  random?: () => number;
  /** Telemetry sink instead of Application Insights (tests: a `MemoryTelemetrySink`). */
  telemetry?: TelemetrySink;
  /** Run ledger instead of the storage account's. */
  ledger?: RunLedger;
  /** fetch for the notifier (tests). */
  fetch?: typeof fetch;
  /** Overrides of the engine's settings (tests: short verification backoff). */
  settings?: Partial<RunSettings>;
}

const invocations = new AsyncLocalStorage<InvocationContext>();

/** Runs `fn` as the body of one invocation (logs and telemetry are attributed to it). */
export function withInvocation<T>(context: InvocationContext, fn: () => Promise<T>): Promise<T> {
  return invocations.run(context, fn);
}

function logTo(level: LogLevel, line: string): void {
  const ctx = invocations.getStore();
  if (ctx) {
    if (level === 'debug') ctx.debug(line);
    else if (level === 'info') ctx.info(line);
    else if (level === 'warn') ctx.warn(line);
    else ctx.error(line);
    return;
  }
  (level === 'error' ? console.error : level === 'warn' ? console.warn : console.log)(line);
}

function once<T>(build: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= build().catch((err: unknown) => {
      // A failed build is tried again next time (a setting fixed, a transient error gone).
      value = undefined;
      throw err;
    });
    return value;
  };
}

const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

class Services {
  readonly env: Env;
  readonly clock: Clock;
  readonly random: () => number;
  readonly log: Logger;

  constructor(private readonly options: ServicesOptions = {}) {
    this.env = options.env ?? process.env;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = createLogger(logTo, 'info');
  }

  /** The validated settings (throws `ConfigError` listing every bad one). */
  readonly config = once(async (): Promise<Config> => {
    const { loadConfig, secretValues } = await import('../config');
    const config = loadConfig(this.env);
    for (const secret of secretValues(config)) redactor.register(secret);
    return config;
  });

  /** Settings of the Functions app itself (not part of the engine's config). */
  readonly functionSettings = once(async (): Promise<FunctionSettings> => {
    const { loadFunctionSettings } = await import('../config');
    return loadFunctionSettings(this.env);
  });

  /** The engine: every SDK client, built from the config. */
  readonly engine = once(async (): Promise<Engine> => {
    const config = await this.config();
    const { buildEngine } = await import('../composition');
    const engine = buildEngine(config, this.log, this.clock);
    engine.settings = { ...engine.settings, ...this.options.settings };
    return engine;
  });

  /** The run ledger in the function's storage account (or in memory when none is configured). */
  readonly ledger = once(async (): Promise<RunLedger> => {
    if (this.options.ledger) return this.options.ledger;
    const { openRunLedger } = await import('../clients/runLedgerFromConfig');
    return openRunLedger(await this.config(), { now: () => this.clock.now(), log: this.log });
  });

  private readonly rawTelemetry = once(async (): Promise<TelemetrySink> => {
    if (this.options.telemetry) return this.options.telemetry;
    const connectionString = this.env['APPLICATIONINSIGHTS_CONNECTION_STRING']?.trim();
    if (!connectionString) {
      const { nullTelemetrySink } = await import('../telemetry/sink');
      return nullTelemetrySink;
    }
    redactor.register(connectionString);
    try {
      const { createAppInsightsSink } = await import('../telemetry/appInsights');
      return await createAppInsightsSink(
        connectionString,
        this.env['APPLICATIONINSIGHTS_AUTHENTICATION_STRING'],
      );
    } catch (err) {
      this.log.warn('Application Insights could not be set up; telemetry is off', {
        error: errorMessage(err),
      });
      const { nullTelemetrySink } = await import('../telemetry/sink');
      return nullTelemetrySink;
    }
  });

  /** Telemetry: redacted, correlated with the current invocation, never throwing. */
  readonly telemetry = once(async (): Promise<TelemetrySink> => {
    const { correlatedSink, lazyTelemetrySink } = await import('../telemetry/sink');
    return correlatedSink(lazyTelemetrySink(this.rawTelemetry), (): TelemetryProperties => {
      const ctx = invocations.getStore();
      return ctx ? { invocationId: ctx.invocationId, functionName: ctx.functionName } : {};
    });
  });

  /** The webhook notifier, when `NOTIFY_WEBHOOK_URL` is set. */
  readonly notifier = once(async (): Promise<Notifier | undefined> => {
    const config = await this.config();
    if (!config.notifyWebhookUrl) return undefined;
    const { createWebhookNotifier } = await import('../clients/notifier');
    return createWebhookNotifier(config.notifyWebhookUrl, { fetch: this.options.fetch, log: this.log });
  });

  /** What the fan-out core needs, wired to this app's ledger, telemetry and notifier. */
  readonly fanOut = once(async (): Promise<FanOutContext> => {
    const [engine, ledger, telemetry] = await Promise.all([this.engine(), this.ledger(), this.telemetry()]);
    const events: RunEventSink = (name, properties) => telemetry.trackEvent(name, properties);
    return {
      // Retired connections are recorded in this app's ledger (the one the API and status page read).
      deps: { ...engine.deps, retirements: ledger },
      settings: engine.settings,
      ledger,
      events,
      onRunFinished: (run, report) => this.runFinished(run, report),
    };
  });

  /**
   * The thread the engine works in (`ENGINE_HEAP_MB`, src/engineThread), or none: 0, or a test
   * injected a clock (a clock cannot cross to a thread).
   */
  private readonly engineThread = once(async (): Promise<EngineThread | undefined> => {
    const { engineHeapMb } = await this.functionSettings();
    // The thread has its own run ledger: only one shared through storage is the one the API reads.
    const { ledgerIsShared } = await import('../clients/runLedgerFromConfig');
    if (
      engineHeapMb === 0 ||
      this.options.clock ||
      this.options.ledger ||
      !ledgerIsShared(await this.config())
    )
      return undefined;
    const { EngineThread } = await import('../engineThread/engineThread');
    return new EngineThread({ env: { ...this.env }, settings: this.options.settings }, engineHeapMb);
  });

  /** What the engine thread calls back: this app's telemetry, log and run completion. */
  private async engineHost(): Promise<EngineHost> {
    const telemetry = await this.telemetry();
    return {
      log: logTo,
      event: (name, properties) => telemetry.trackEvent(name, properties),
      runFinished: (run, finished) => this.publishFinished(run, finished),
    };
  }

  /** Plans a full run (the nightly timer, `POST /api/runs`). */
  async planRun(options: { trigger: RunTrigger; dryRun?: boolean }): Promise<PlannedRun> {
    const thread = await this.engineThread();
    if (thread) {
      const { randomUUID } = await import('node:crypto');
      return thread.plan({ ...options, runId: randomUUID() }, await this.engineHost(), () => this.ledger());
    }
    const { planRun } = await import('../remediation/fanOut');
    return planRun(await this.fanOut(), options);
  }

  /** Remediates one fanned-out connection (the queue worker). */
  async processWorkItem(
    item: WorkItem,
    attempt: { dequeueCount: number; maxDequeueCount: number },
  ): Promise<WorkResult> {
    const thread = await this.engineThread();
    if (thread) return thread.processWorkItem(item, attempt, await this.engineHost());
    const { processWorkItem, workResult } = await import('../remediation/fanOut');
    return workResult(await processWorkItem(await this.fanOut(), item, attempt));
  }

  /** Ends the engine thread, if one runs. */
  async close(): Promise<void> {
    const thread = await this.engineThread().catch(() => undefined);
    await thread?.close();
  }

  /** `RunCompleted` with the summary, the run's metrics, and the notification (best effort). */
  async runFinished(run: RunRecord, report: RunReport | undefined): Promise<void> {
    const { describeFinishedRun } = await import('./metrics');
    await this.publishFinished(run, describeFinishedRun(run, report, this.clock.now()));
  }

  /** Publishes a finished run as `describeFinishedRun` (here or in the engine thread) described it. */
  async publishFinished(run: RunRecord, finished: FinishedRun): Promise<void> {
    const telemetry = await this.telemetry();
    const { summary } = finished;
    telemetry.trackEvent('RunCompleted', {
      runId: run.runId,
      status: run.status,
      trigger: run.trigger,
      scope: run.scope ?? 'full',
      dryRun: run.dryRun,
      total: summary?.total ?? 0,
      succeeded: summary?.byOutcome.succeeded ?? 0,
      failed: summary?.byOutcome.failed ?? 0,
      needsAttention: summary?.needsAttention ?? 0,
      discoveryProblems: run.problems?.length ?? 0,
      summary: summary ? JSON.stringify(summary) : undefined,
      error: run.error,
      ...workerMemory(),
    });
    for (const m of finished.metrics)
      telemetry.trackMetric(m.name, m.value, { runId: run.runId, ...m.properties });
    try {
      const notifier = await this.notifier();
      if (notifier && finished.notification) await notifier.notify(finished.notification);
    } catch (err) {
      // Notifications never fail a run.
      this.log.warn('Notification skipped', { error: errorMessage(err) });
    }
  }
}

let current: Services | undefined;

/** The process-wide services, built on first use. */
export function services(): Services {
  current ??= new Services();
  return current;
}

/** Replaces the services (tests: another env, an in-memory telemetry sink, a fake clock). */
export function configureServices(options: ServicesOptions = {}): Services {
  void current?.close();
  current = new Services(options);
  return current;
}
