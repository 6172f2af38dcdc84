/**
 * Pacing of Azure DevOps requests (Learn, "Rate and usage limits" for Azure DevOps): a pipeline
 * policy that honours `Retry-After` on any answer and narrows the requests in flight while answers
 * come delayed (`X-RateLimit-Delay`). The details are on `rateLimitPacingPolicy`.
 */
import type { PipelinePolicy, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import { parseRetryAfter } from './retryAfter';

const rateLimitPacingPolicyName = 'azureDevOpsRateLimitPacingPolicy';

/** Time source of the pacing policy. */
export interface PacingClock {
  now(): number;
  sleep(ms: number, signal?: PipelineRequest['abortSignal']): Promise<void>;
}

/** What the pacing policy did: every clock wait it imposed before a request, and the concurrency cuts. */
export interface PacingStats {
  waits: { ms: number; reason: 'retry-after' }[];
  totalWaitMs: number;
  /** Times the in-flight limit was halved after a delayed answer. */
  concurrencyCuts: number;
  /** Lowest in-flight limit reached (Infinity: never limited). */
  lowestConcurrency: number;
}

const realClock: PacingClock = { now: () => Date.now(), sleep };

/** Above this in-flight limit the pacing lets the caller's own concurrency decide again. */
const UNLIMITED_ABOVE = 64;
/** The in-flight limit is never cut below this: the service's own delay does the rest. */
const MIN_IN_FLIGHT = 8;

/**
 * Paces requests the way Azure DevOps asks to (Learn, "Rate and usage limits", Azure DevOps):
 * - `Retry-After` (on a 429, and on a 200 of a delayed request as well): no request starts before
 *   it has passed. The retry policy retries the 429 itself; this holds the other requests too.
 * - `X-RateLimit-Delay` ("how long the request was delayed"): the service is already slowing each
 *   request down; the client adds no sleep of its own but halves how many requests it keeps in
 *   flight (at most once per delay period, never below 8), and widens it again by one per
 *   undelayed answer (additive increase, multiplicative decrease), so a throttled run slows down
 *   without stalling. (Measured on the sandbox, 1,500 lists against a 150/s budget with 500 ms
 *   delays: 10.9 s with these settings, 11.5 s waiting for the reset as before, 59 s with a floor
 *   of 1: cutting deeper only loses throughput the service's own delay already takes care of.)
 * - `X-RateLimit-Reset` ("time at which, if all resource consumption stopped immediately, tracked
 *   usage would return to 0") is not a wait: waiting for it stalled whole runs.
 * Placed after the retry policy, so retries are paced too. One policy (one state) per client.
 */
export function rateLimitPacingPolicy(
  options: { maxWaitMs?: number; clock?: PacingClock; stats?: PacingStats } = {},
): PipelinePolicy {
  const clock = options.clock ?? realClock;
  const maxWaitMs = options.maxWaitMs ?? 60_000;
  const stats = options.stats;
  let notBefore = 0;
  let limit = Number.POSITIVE_INFINITY;
  let inFlight = 0;
  let lastCut = Number.NEGATIVE_INFINITY;
  const queue: (() => void)[] = [];

  const admit = (): void => {
    while (inFlight < limit && queue.length > 0) {
      inFlight += 1;
      queue.shift()?.();
    }
  };
  const acquire = (): Promise<void> => {
    if (inFlight < limit && queue.length === 0) {
      inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => queue.push(resolve));
  };

  return {
    name: rateLimitPacingPolicyName,
    async sendRequest(request, next) {
      await acquire();
      let response: PipelineResponse;
      try {
        const now = clock.now();
        const wait = Math.min(notBefore, now + maxWaitMs) - now;
        if (wait > 0) {
          stats?.waits.push({ ms: wait, reason: 'retry-after' });
          if (stats) stats.totalWaitMs += wait;
          await clock.sleep(wait, request.abortSignal);
        }
        response = await next(request);
      } finally {
        inFlight -= 1;
        admit();
      }
      const answeredAt = clock.now();
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'), answeredAt);
      if (retryAfter !== undefined && retryAfter > 0)
        notBefore = Math.max(notBefore, answeredAt + Math.min(retryAfter, maxWaitMs));
      const delayMs = Number(response.headers.get('x-ratelimit-delay') ?? '') * 1000;
      if (Number.isFinite(delayMs) && delayMs > 0) {
        if (answeredAt - lastCut >= delayMs) {
          limit = Math.max(MIN_IN_FLIGHT, Math.floor(Math.min(limit, inFlight + 1) / 2));
          lastCut = answeredAt;
          if (stats) {
            stats.concurrencyCuts += 1;
            stats.lowestConcurrency = Math.min(stats.lowestConcurrency, limit);
          }
        }
      } else if (Number.isFinite(limit)) {
        limit = limit + 1 > UNLIMITED_ABOVE ? Number.POSITIVE_INFINITY : limit + 1;
      }
      admit();
      return response;
    },
  };
}

function sleep(ms: number, signal?: PipelineRequest['abortSignal']): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('The operation was aborted.'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('The operation was aborted.'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
