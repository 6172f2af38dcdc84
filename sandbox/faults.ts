/**
 * Fault injection, per service and route: latency, throttling (429 + Retry-After), 5xx, dropped
 * connections, hung requests, and request budgets per time window like the real throttles.
 * Every random choice comes from one seeded generator, so a failing run can be replayed by seed.
 */
import seedrandom from 'seedrandom';
import type { ServiceName } from './model';

/**
 * `drop`: the connection closes before the request is handled; `answer-lost`: the request is carried
 * out, then the connection closes before the answer reaches the client (it cannot tell whether it
 * worked); `timeout`: no answer, the connection closes after `hangMs`.
 */
export type FaultKind = 'throttle' | 'server-error' | 'drop' | 'answer-lost' | 'timeout';

export interface FaultRule {
  /** Which service; `*` for all. */
  service: ServiceName | '*';
  /** HTTP method to match (any when absent). */
  method?: string;
  /** Regular expression (source) matched against the request path (any when absent). */
  path?: string;
  /** Latency added to every matched request. */
  latencyMs?: number;
  /** Extra random latency, uniform in [0, latencyJitterMs). */
  latencyJitterMs?: number;
  /** Probability (0..1) that a matched request gets `kind` instead of an answer. */
  rate?: number;
  kind?: FaultKind;
  /** Status for `server-error` (default 503). */
  status?: number;
  /** Retry-After seconds sent with `throttle` and with 503 (default 1). */
  retryAfterSeconds?: number;
  /** At most this many faults from this rule. */
  maxCount?: number;
  /** For `timeout`: how long the request hangs before its connection is dropped (default 120 s). */
  hangMs?: number;
  /**
   * A budget per caller and window like the real throttles: past `requests` in `windowSeconds`, the
   * service answers 429 with a Retry-After until the window frees a slot.
   */
  budget?: FaultBudget;
}

export interface FaultBudget {
  requests: number;
  windowSeconds: number;
  /**
   * Azure DevOps' way: past `requests`, requests are first delayed by this much (`X-RateLimit-Delay`,
   * `X-RateLimit-Remaining: 0`) and answered; only past `hardLimit` do they get a 429.
   */
  delayMs?: number;
  /** With `delayMs`: requests per window answered (delayed) before the 429s start (default 2 × requests). */
  hardLimit?: number;
  /**
   * With `delayMs`: the delayed answers (200) carry `Retry-After` too (Learn, "Rate and usage
   * limits", Azure DevOps: Retry-After may come on a delayed request, not only on a 429).
   */
  retryAfterSeconds?: number;
}

export interface FaultDecision {
  latencyMs: number;
  fault?: { kind: FaultKind; status: number; retryAfterSeconds: number; reason: string; hangMs?: number };
  /** For Azure DevOps' X-RateLimit-* headers: the budget state after this request. */
  rateLimit?: {
    limit: number;
    remaining: number;
    resetEpochSeconds: number;
    delayMs?: number;
    retryAfterSeconds?: number;
  };
}

interface FaultStats {
  injected: number;
  byKind: Record<FaultKind, number>;
}

export class FaultInjector {
  private rules: FaultRule[] = [];
  private readonly counts = new Map<FaultRule, number>();
  private readonly windows = new Map<string, number[]>();
  private random: () => number;
  readonly stats: FaultStats = {
    injected: 0,
    byKind: { throttle: 0, 'server-error': 0, drop: 0, 'answer-lost': 0, timeout: 0 },
  };

  constructor(
    readonly seed: string = 'sandbox',
    rules: FaultRule[] = [],
  ) {
    this.random = seedrandom(seed);
    this.rules = [...rules];
  }

  /** Replaces the rules (tests switch faults on and off between phases). */
  setRules(rules: FaultRule[]): void {
    this.rules = [...rules];
    this.counts.clear();
    this.windows.clear();
  }

  addRule(rule: FaultRule): void {
    this.rules.push(rule);
  }

  clear(): void {
    this.setRules([]);
  }

  /** Decides what happens to one request. `caller` keys the budgets (one budget per caller, like ADO). */
  decide(service: ServiceName, method: string, path: string, caller: string, nowMs: number): FaultDecision {
    const decision: FaultDecision = { latencyMs: 0 };
    for (const rule of this.rules) {
      if (rule.service !== '*' && rule.service !== service) continue;
      if (rule.method && rule.method.toUpperCase() !== method.toUpperCase()) continue;
      if (rule.path && !new RegExp(rule.path, 'i').test(path)) continue;

      decision.latencyMs += (rule.latencyMs ?? 0) + Math.floor(this.random() * (rule.latencyJitterMs ?? 0));

      if (rule.budget && !decision.fault) {
        const key = `${this.rules.indexOf(rule)}|${service}|${caller}`;
        const windowMs = rule.budget.windowSeconds * 1000;
        // Stamps are in arrival order: drop the ones that left the window from the front.
        const stamps = this.windows.get(key) ?? [];
        let expired = 0;
        while (expired < stamps.length && (stamps[expired] ?? 0) <= nowMs - windowMs) expired += 1;
        if (expired > 0) stamps.splice(0, expired);
        const oldest = stamps[0] ?? nowMs;
        const resetEpochSeconds = Math.ceil((oldest + windowMs) / 1000);
        const { delayMs } = rule.budget;
        const hardLimit = rule.budget.hardLimit ?? rule.budget.requests * 2;
        if (delayMs !== undefined && stamps.length >= rule.budget.requests && stamps.length < hardLimit) {
          // Over the budget but under the hard limit: answered, slowly.
          stamps.push(nowMs);
          decision.latencyMs += delayMs;
          decision.rateLimit = {
            limit: rule.budget.requests,
            remaining: 0,
            resetEpochSeconds,
            delayMs,
            ...(rule.budget.retryAfterSeconds !== undefined
              ? { retryAfterSeconds: rule.budget.retryAfterSeconds }
              : {}),
          };
        } else if (stamps.length >= (delayMs !== undefined ? hardLimit : rule.budget.requests)) {
          const retryAfterSeconds = Math.max(1, Math.ceil((oldest + windowMs - nowMs) / 1000));
          decision.fault = {
            kind: 'throttle',
            status: 429,
            retryAfterSeconds,
            reason: `budget of ${rule.budget.requests} requests per ${rule.budget.windowSeconds}s exceeded`,
          };
          decision.rateLimit = { limit: rule.budget.requests, remaining: 0, resetEpochSeconds };
        } else {
          stamps.push(nowMs);
          decision.rateLimit = {
            limit: rule.budget.requests,
            remaining: rule.budget.requests - stamps.length,
            resetEpochSeconds,
          };
        }
        this.windows.set(key, stamps);
      }

      if (rule.rate && rule.kind && !decision.fault) {
        const used = this.counts.get(rule) ?? 0;
        if ((rule.maxCount === undefined || used < rule.maxCount) && this.random() < rule.rate) {
          this.counts.set(rule, used + 1);
          const status =
            rule.kind === 'throttle' ? 429 : rule.kind === 'server-error' ? (rule.status ?? 503) : 0;
          decision.fault = {
            kind: rule.kind,
            status,
            retryAfterSeconds: rule.retryAfterSeconds ?? 1,
            reason: `injected ${rule.kind}`,
          };
          if (rule.kind === 'timeout' && rule.hangMs !== undefined) decision.fault.hangMs = rule.hangMs;
        }
      }
    }
    if (decision.fault) {
      this.stats.injected += 1;
      this.stats.byKind[decision.fault.kind] += 1;
    }
    return decision;
  }
}
