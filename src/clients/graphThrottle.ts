/**
 * Graph throttling, handled by the Graph client's own middleware: its `RetryHandler` retries 429
 * (and 503/504) honouring `Retry-After`, bounded here by a time budget; and `ThrottleGate`, placed
 * after it in the chain so every attempt passes it, slows the caller down while 429s come.
 *
 * Microsoft Graph throttling guidance (https://learn.microsoft.com/graph/throttling): past a
 * threshold Graph "limits any further requests from that client app for some time", answers 429
 * with a suggested wait in `Retry-After`, and "writes are throttled but reads are still permitted"
 * is possible. Hence: after a 429, no new request of the same kind (reads, writes) starts before its
 * `Retry-After` has passed, and that kind's concurrency is halved (at most once per second: the
 * 429s of one burst are one signal); it grows back by one per window of successful answers
 * (additive increase, multiplicative decrease). p-limit (used elsewhere) has a fixed concurrency and
 * p-queue, which can change it, ships as ESM only, so the gate is these few lines.
 */
import type { Context, Middleware } from '@microsoft/microsoft-graph-client';
import { parseRetryAfter } from './retryAfter';

/** The 429 retry-after delay in ms from a response (seconds or an HTTP date), when it carries one. */
export function retryAfterMs(response: Response | undefined, nowMs = Date.now()): number | undefined {
  return parseRetryAfter(response?.headers?.get('Retry-After') ?? undefined, nowMs);
}

/** The method and URL of a Graph client request (a URL string plus fetch options, or a Request). */
export function requestLine(request: unknown, options: unknown): { method: string; url: string } {
  const field = (o: unknown, name: string): string | undefined => {
    if (typeof o !== 'object' || o === null || !(name in o)) return undefined;
    const v = (o as Record<string, unknown>)[name];
    return typeof v === 'string' ? v : undefined;
  };
  if (typeof request === 'string')
    return { method: (field(options, 'method') ?? 'GET').toUpperCase(), url: request };
  return { method: (field(request, 'method') ?? 'GET').toUpperCase(), url: field(request, 'url') ?? '' };
}

interface ThrottleGateOptions {
  /** Most requests of one kind in flight at once (the run's concurrency already bounds it). */
  maxConcurrency: number;
  /** Fewest requests of one kind in flight at once while throttled. */
  minConcurrency?: number;
  now?: () => number;
}

/** One kind of request (reads or writes): its concurrency limit and when it may start again. */
class Lane {
  limit: number;
  inFlight = 0;
  resumeAtMs = 0;
  private lastCutMs = Number.NEGATIVE_INFINITY;
  private successes = 0;
  private readonly waiting: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly max: number,
    private readonly min: number,
    private readonly now: () => number,
  ) {
    this.limit = max;
  }

  acquire(): Promise<void> {
    if (this.waiting.length === 0 && this.canStart()) {
      this.inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.drain();
    });
  }

  release(status: number | undefined, waitMs: number | undefined): void {
    this.inFlight -= 1;
    const now = this.now();
    if (status === 429) {
      this.resumeAtMs = Math.max(this.resumeAtMs, now + (waitMs ?? 1000));
      if (now - this.lastCutMs >= 1000) {
        this.limit = Math.max(this.min, Math.floor(this.limit / 2));
        this.lastCutMs = now;
        this.successes = 0;
      }
    } else if (status !== undefined && status < 500 && this.limit < this.max) {
      this.successes += 1;
      if (this.successes >= this.limit) {
        this.limit += 1;
        this.successes = 0;
      }
    }
    this.drain();
  }

  private canStart(): boolean {
    return this.inFlight < this.limit && this.now() >= this.resumeAtMs;
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.canStart()) {
      this.inFlight += 1;
      this.waiting.shift()?.();
    }
    const wait = this.resumeAtMs - this.now();
    if (this.waiting.length > 0 && wait > 0 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.drain();
      }, wait);
      this.timer.unref?.();
    }
  }
}

/** Graph middleware: adaptive concurrency per kind of request, paused for `Retry-After` after a 429. */
export class ThrottleGate implements Middleware {
  private next: Middleware | undefined;
  private readonly reads: Lane;
  private readonly writes: Lane;
  /** When each request (its fetch options, the same object on every retry) first went out. */
  private readonly firstSent = new WeakMap<object, number>();
  private readonly now: () => number;

  constructor(options: ThrottleGateOptions) {
    this.now = options.now ?? Date.now;
    const min = Math.max(1, options.minConcurrency ?? 2);
    const max = Math.max(min, options.maxConcurrency);
    this.reads = new Lane(max, min, this.now);
    this.writes = new Lane(max, min, this.now);
  }

  setNext(next: Middleware): void {
    this.next = next;
  }

  /** Current limits, for tests and diagnostics. */
  get limits(): { reads: number; writes: number } {
    return { reads: this.reads.limit, writes: this.writes.limit };
  }

  /** Milliseconds since the request first went out (0 if it has not). */
  elapsedMs(options: object | undefined): number {
    const first = options ? this.firstSent.get(options) : undefined;
    return first === undefined ? 0 : this.now() - first;
  }

  async execute(context: Context): Promise<void> {
    if (!this.next) throw new Error('ThrottleGate needs a next middleware.');
    const { method } = requestLine(context.request, context.options);
    const lane = method === 'GET' || method === 'HEAD' ? this.reads : this.writes;
    await lane.acquire();
    if (context.options && !this.firstSent.has(context.options))
      this.firstSent.set(context.options, this.now());
    let status: number | undefined;
    try {
      await this.next.execute(context);
      status = context.response?.status;
    } finally {
      lane.release(status, retryAfterMs(context.response, this.now()));
    }
  }
}

/**
 * Graph middleware: a request that got no answer at all (the connection dropped: `fetch failed`,
 * e.g. a keep-alive connection the server closed as it was reused) is sent again, at most twice,
 * when sending it again cannot do harm: reads, and `removePassword` (removing what is gone is the
 * same end state). Never `addPassword` or other writes: the lost answer may be of a request that
 * took effect (the rotation checks for that itself). The Graph client's RetryHandler only retries
 * answers (429/503/504), not a missing one.
 */
export class ResendWithoutAnswer implements Middleware {
  private next: Middleware | undefined;

  constructor(private readonly delaysMs: readonly number[] = [200, 1000]) {}

  setNext(next: Middleware): void {
    this.next = next;
  }

  async execute(context: Context): Promise<void> {
    if (!this.next) throw new Error('ResendWithoutAnswer needs a next middleware.');
    const { method, url } = requestLine(context.request, context.options);
    const harmless = method === 'GET' || (method === 'POST' && /\/removePassword$/i.test(url));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.next.execute(context);
        return;
      } catch (err) {
        const delay = this.delaysMs[attempt];
        if (!harmless || delay === undefined || context.response !== undefined) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
