/**
 * Where events and metrics go: Application Insights in Azure (`appInsights.ts`), memory in tests,
 * nowhere when neither is configured. Every name and property passes through `redactor` on the way
 * in (DESIGN invariant 6), so no sink ever sees a secret value.
 */
import { redactor } from '../telemetry';

export type TelemetryProperties = Record<string, string | number | boolean | undefined>;

export interface TelemetrySink {
  trackEvent(name: string, properties?: TelemetryProperties): void;
  trackMetric(name: string, value: number, properties?: TelemetryProperties): void;
  /** Sends what is buffered; resolves even when sending fails. */
  flush(): Promise<void>;
}

/** One captured item (memory sink). */
type TelemetryItem =
  | { kind: 'event'; name: string; properties: Record<string, string> }
  | { kind: 'metric'; name: string; value: number; properties: Record<string, string> };

/** String properties, redacted, without undefined values. */
export function cleanProperties(properties: TelemetryProperties = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(properties)) {
    if (value === undefined) continue;
    out[redactor.redact(key)] = redactor.redact(String(value));
  }
  return out;
}

/** Keeps every item in memory: tests read `items`. */
export class MemoryTelemetrySink implements TelemetrySink {
  readonly items: TelemetryItem[] = [];

  trackEvent(name: string, properties?: TelemetryProperties): void {
    this.items.push({ kind: 'event', name, properties: cleanProperties(properties) });
  }

  trackMetric(name: string, value: number, properties?: TelemetryProperties): void {
    this.items.push({ kind: 'metric', name, value, properties: cleanProperties(properties) });
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  events(name?: string): Extract<TelemetryItem, { kind: 'event' }>[] {
    return this.items.filter(
      (i): i is Extract<TelemetryItem, { kind: 'event' }> =>
        i.kind === 'event' && (name === undefined || i.name === name),
    );
  }

  metrics(name?: string): Extract<TelemetryItem, { kind: 'metric' }>[] {
    return this.items.filter(
      (i): i is Extract<TelemetryItem, { kind: 'metric' }> =>
        i.kind === 'metric' && (name === undefined || i.name === name),
    );
  }
}

/** Drops everything (no Application Insights configured). */
export const nullTelemetrySink: TelemetrySink = {
  trackEvent: () => undefined,
  trackMetric: () => undefined,
  flush: () => Promise.resolve(),
};

/**
 * Wraps a sink: redacts every name and property, adds `common()` properties (invocation id, function
 * name) to each item, and never lets a sink error escape into the caller.
 */
export function correlatedSink(inner: TelemetrySink, common: () => TelemetryProperties): TelemetrySink {
  return {
    trackEvent(name, properties) {
      try {
        inner.trackEvent(redactor.redact(name), cleanProperties({ ...common(), ...properties }));
      } catch {
        // Telemetry never fails the work it describes.
      }
    },
    trackMetric(name, value, properties) {
      try {
        if (Number.isFinite(value))
          inner.trackMetric(redactor.redact(name), value, cleanProperties({ ...common(), ...properties }));
      } catch {
        // idem
      }
    },
    flush: () => inner.flush().catch(() => undefined),
  };
}

/**
 * A sink that loads its real sink (Application Insights: seconds of module loading) only when the
 * first item is tracked, queueing items meanwhile; `flush` waits for it. A function that tracks
 * nothing (the health probe) never loads it, and work starts without waiting for it.
 */
export function lazyTelemetrySink(load: () => Promise<TelemetrySink>): TelemetrySink {
  let inner: TelemetrySink | undefined;
  let loading: Promise<void> | undefined;
  const queue: ((sink: TelemetrySink) => void)[] = [];
  const start = (): void => {
    loading ??= load().then(
      (sink) => {
        inner = sink;
        for (const item of queue.splice(0)) item(sink);
      },
      () => {
        inner = nullTelemetrySink;
        queue.length = 0;
      },
    );
  };
  const track = (item: (sink: TelemetrySink) => void): void => {
    if (inner) return item(inner);
    queue.push(item);
    start();
  };
  return {
    trackEvent: (name, properties) => track((s) => s.trackEvent(name, properties)),
    trackMetric: (name, value, properties) => track((s) => s.trackMetric(name, value, properties)),
    flush: async () => {
      if (!loading) return;
      await loading;
      await inner?.flush().catch(() => undefined);
    },
  };
}
