/**
 * The Graph client (`@microsoft/microsoft-graph-client`) with its middleware chain: the retry
 * handler within a time budget, the throttle gate after it (graphThrottle.ts), tokens from a
 * `TokenCredential`; and the paging every collection read shares.
 */
import type { TokenCredential } from '@azure/core-auth';
import {
  AuthenticationHandler,
  Client,
  HTTPMessageHandler,
  RedirectHandler,
  RedirectHandlerOptions,
  RetryHandler,
  RetryHandlerOptions,
  TelemetryHandler,
  type GraphRequest,
} from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials';
import { requestLine, ResendWithoutAnswer, retryAfterMs, ThrottleGate } from './graphThrottle';

export interface GraphClientOptions {
  credential: TokenCredential;
  /** Graph root without version, e.g. `https://graph.microsoft.com` (GRAPH_ENDPOINT). */
  endpoint: string;
  /**
   * Token scope of the cloud's Graph resource, e.g. `https://graph.microsoft.com/.default`. Passed in,
   * never derived from `endpoint`: a proxy or sandbox endpoint still needs the cloud's audience.
   */
  scope: string;
  /**
   * How long the tenant's default app management policy is reused once read (it is the same for
   * every app, and changes rarely): 0 (default) reads it for every app.
   */
  tenantPolicyTtlMs?: number;
  /**
   * How long one request may keep being retried after throttling (429/503/504, each wait per
   * Retry-After), from its first attempt: default 120 s. Past it the error surfaces (transient).
   */
  retryBudgetMs?: number;
  /** Graph requests of one kind (reads, writes) in flight at most; the gate halves it on 429s. Default 64. */
  maxConcurrency?: number;
}

const DEFAULT_RETRY_BUDGET_MS = 120_000;
/** Seconds the retry handler waits when an answer carries no Retry-After (its own default, 3). */
const RETRY_DELAY_SECONDS = 3;

/** A Graph v1.0 client on `options.endpoint`, retrying and pacing as described above. */
export function createGraphClient(options: GraphClientOptions): Client {
  const authProvider = new TokenCredentialAuthenticationProvider(options.credential, {
    scopes: [options.scope],
  });
  const endpoint = options.endpoint.replace(/\/+$/, '');
  const gate = new ThrottleGate({ maxConcurrency: options.maxConcurrency ?? 64 });
  const budgetMs = options.retryBudgetMs ?? DEFAULT_RETRY_BUDGET_MS;
  // The client's default chain (MiddlewareFactory.getDefaultMiddlewareChain), with the retry
  // handler allowed its maximum of 10 retries within the time budget, and the gate after it so
  // every attempt passes the gate.
  const retry = new RetryHandler(
    new RetryHandlerOptions(RETRY_DELAY_SECONDS, 10, (_delay, _attempt, request, fetchOptions, response) => {
      const { method, url } = requestLine(request, fetchOptions);
      // A 503/504 to addPassword may come after the password was added: a retry would add a
      // second one, the first one's value lost (an orphan). Only 429 (refused, nothing done) is.
      if (response.status !== 429 && method === 'POST' && /\/addPassword$/i.test(url)) return false;
      const wait = retryAfterMs(response) ?? RETRY_DELAY_SECONDS * 1000;
      return gate.elapsedMs(fetchOptions) + wait <= budgetMs;
    }),
  );
  const middleware = [
    new AuthenticationHandler(authProvider),
    retry,
    new ResendWithoutAnswer(),
    gate,
    new RedirectHandler(new RedirectHandlerOptions()),
    new TelemetryHandler(),
    new HTTPMessageHandler(),
  ];
  return Client.initWithMiddleware({
    middleware,
    // The client joins baseUrl + defaultVersion + path, so the endpoint carries no version.
    baseUrl: endpoint,
    defaultVersion: 'v1.0',
    // The auth middleware only attaches tokens to known Graph hosts or these (hostname, no port).
    customHosts: new Set([new URL(endpoint).hostname]),
  });
}

/** Every item of a Graph collection, following `@odata.nextLink` from the first page. */
export async function allPages<T>(client: Client, first: GraphRequest): Promise<T[]> {
  const items: T[] = [];
  let page = (await first.get()) as { value?: T[]; '@odata.nextLink'?: string };
  for (;;) {
    items.push(...(page.value ?? []));
    const next = page['@odata.nextLink'];
    if (!next) return items;
    page = (await client.api(next).get()) as typeof page;
  }
}
