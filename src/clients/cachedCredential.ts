/**
 * One token per scope for the whole process, shared by every client: a `TokenCredential` wrapper
 * that keeps each access token until shortly before it expires and lets concurrent callers wait for
 * one request instead of each starting its own.
 *
 * Why: the Graph client asks its credential for a token on every request, and `@azure/identity`'s
 * credentials only cache a token once the first request has come back. A run that starts 64
 * connections at once used to send about 64 token requests to Entra ID (and as many metadata
 * requests) before the first answer; now it sends one per resource.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';

/** A token is renewed this long before it expires (or from its `refreshAfterTimestamp`). */
export const REFRESH_MARGIN_MS = 5 * 60_000;

export class CachingTokenCredential implements TokenCredential {
  private readonly tokens = new Map<string, AccessToken>();
  private readonly pending = new Map<string, Promise<AccessToken | null>>();

  constructor(
    private readonly inner: TokenCredential,
    private readonly now: () => number = Date.now,
  ) {}

  /** The credential this one wraps. */
  get wrapped(): TokenCredential {
    return this.inner;
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    // A claims challenge or a proof-of-possession token is about this one request: never cached.
    if (options?.claims || options?.proofOfPossessionOptions) return this.inner.getToken(scopes, options);
    const key = [
      options?.tenantId ?? '',
      options?.enableCae ? 'cae' : '',
      ...(Array.isArray(scopes) ? [...scopes].sort() : [scopes]),
    ].join('|');
    const cached = this.tokens.get(key);
    if (cached && this.now() < renewAt(cached)) return cached;
    let request = this.pending.get(key);
    if (!request) {
      request = this.inner.getToken(scopes, options).then(
        (token) => {
          this.pending.delete(key);
          if (token) this.tokens.set(key, token);
          else this.tokens.delete(key);
          return token;
        },
        (err: unknown) => {
          this.pending.delete(key);
          throw err;
        },
      );
      this.pending.set(key, request);
    }
    // While a renewal runs, a token that has not expired yet still serves.
    if (cached && this.now() < cached.expiresOnTimestamp - 30_000) {
      request.catch(() => undefined); // a failed renewal is tried again by the next caller
      return cached;
    }
    return request;
  }
}

function renewAt(token: AccessToken): number {
  return token.refreshAfterTimestamp ?? token.expiresOnTimestamp - REFRESH_MARGIN_MS;
}
