/**
 * Fault injection, per service and route: latency, throttling (429 + Retry-After), 5xx, dropped
 * connections, hung requests, and request budgets per time window like the real throttles.
 * Every random choice comes from one seeded generator, so a failing run can be replayed by seed.
 */
import seedrandom from 'seedrandom';
import type { ServiceName } from './model';

export type FaultKind = 'throttle' | 'server-error' | 'drop' | 'timeout';

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
  /**
   * A budget per caller and window like the real throttles: past `requests` in `windowSeconds`, the
   * service answers 429 with a Retry-After until the window frees a slot.
   */
  budget?: { requests: number; windowSeconds: number };
}

export interface FaultDecision {
  latencyMs: number;
  fault?: { kind: FaultKind; status: number; retryAfterSeconds: number; reason: string };
  /** For Azure DevOps' X-RateLimit-* headers: the budget state after this request. */
  rateLimit?: { limit: number; remaining: number; resetEpochSeconds: number };
}

export interface FaultStats {
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
    byKind: { throttle: 0, 'server-error': 0, drop: 0, timeout: 0 },
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
        const stamps = (this.windows.get(key) ?? []).filter((t) => t > nowMs - windowMs);
        const oldest = stamps[0] ?? nowMs;
        const resetEpochSeconds = Math.ceil((oldest + windowMs) / 1000);
        if (stamps.length >= rule.budget.requests) {
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
