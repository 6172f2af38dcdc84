/**
 * What the bench runs against: the minimum calls the APIs allow per rotated connection, the
 * generated tenant's shape, and the latency and throttling budgets of the simulated services.
 */
import type { FaultRule } from '../sandbox/index';
import type { ServiceTally } from './sandboxChild';
import type { TenantShape } from './tenant';

/** What the APIs allow at least, per rotated connection (docs/performance.md explains each). */
export const MINIMUM_CALLS_PER_ROTATED: ServiceTally = {
  // the app (its credentials), addPassword, removePassword of the one superseded credential
  graph: 3,
  // the record, the value with the record (phase created), phases applied, verified, completed
  keyvault: 5,
  // the connection, the PUT, TestConnection, the read-back of isReady
  devops: 4,
  // one token with the new secret
  entra: 1,
};

/**
 * Latency on every call, and budgets per caller shaped like the real throttles:
 * - Azure DevOps: a sliding window per identity; past it requests are delayed (X-RateLimit-Delay,
 *   X-RateLimit-Remaining: 0), past the hard limit 429 with Retry-After. Azure DevOps publishes no
 *   request count (its unit is TSTUs); these numbers are the bench's.
 * - Graph (identity and access, per app and tenant): 5,000 requests per 10 s (tier M), writes 3,000
 *   per 150 s; 429 with Retry-After (learn.microsoft.com/graph/throttling-limits).
 * - Key Vault: 4,000 secret transactions per 10 s per vault (Key Vault service limits).
 */
export interface AdoBudget {
  requests: number;
  windowSeconds: number;
}

export const DEFAULT_ADO_BUDGET: AdoBudget = { requests: 1500, windowSeconds: 10 };

export function benchFaults(latencyMs: number, ado: AdoBudget = DEFAULT_ADO_BUDGET): FaultRule[] {
  return [
    { service: '*', latencyMs },
    {
      service: 'devops',
      budget: { ...ado, delayMs: 500, hardLimit: Math.round(ado.requests * 1.5) },
    },
    { service: 'graph', budget: { requests: 5000, windowSeconds: 10 } },
    { service: 'graph', method: 'POST', budget: { requests: 3000, windowSeconds: 150 } },
    { service: 'keyvault', budget: { requests: 4000, windowSeconds: 10 } },
  ];
}

/**
 * 100 projects of 10 connections per organization, like the 10 × 100 × 10; 10% need a new
 * secret. The steady state of a nightly run: 90% of the connections hold a secret this service set
 * in an earlier run (a Key Vault record each), so every record is read, as every night.
 */
export function shapeOf(connections: number): TenantShape {
  const common = { connectionsPerProject: 10, rotateFraction: 0.1, recordsFraction: 0.9 };
  if (connections >= 1000 && connections % 1000 === 0)
    return { organizations: connections / 1000, projectsPerOrganization: 100, ...common };
  return { organizations: 1, projectsPerOrganization: Math.max(1, Math.round(connections / 10)), ...common };
}
