/**
 * CachingTokenCredential: one token request per scope however many callers ask at once, the token
 * reused until shortly before it expires, a failed renewal not hiding a token that still works,
 * claims challenges never cached.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { CachingTokenCredential, REFRESH_MARGIN_MS } from '../../src/clients/cachedCredential';

const HOUR = 3600_000;

class CountingCredential implements TokenCredential {
  calls: { scopes: string | string[]; options?: GetTokenOptions }[] = [];
  fail = false;
  private pending: (() => void)[] = [];

  constructor(private readonly now: () => number) {}

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.calls.push({ scopes, options });
    const n = this.calls.length;
    return new Promise((resolve, reject) =>
      this.pending.push(() =>
        this.fail
          ? reject(new Error('AADSTS50000: token service down'))
          : resolve({ token: `token-${n}`, expiresOnTimestamp: this.now() + HOUR }),
      ),
    );
  }

  answer(): void {
    for (const f of this.pending.splice(0)) f();
  }
}

test('concurrent callers share one request; the token is reused until shortly before it expires', async () => {
  let now = 1_000_000;
  const inner = new CountingCredential(() => now);
  const credential = new CachingTokenCredential(inner, () => now);
  const asked = Array.from({ length: 64 }, () => credential.getToken('https://graph.microsoft.com/.default'));
  inner.answer();
  const tokens = await Promise.all(asked);
  expect(inner.calls).toHaveLength(1);
  expect(new Set(tokens.map((t) => t?.token))).toEqual(new Set(['token-1']));

  now += HOUR - REFRESH_MARGIN_MS - 1;
  expect((await credential.getToken('https://graph.microsoft.com/.default'))?.token).toBe('token-1');
  expect(inner.calls).toHaveLength(1);

  // Another scope is another token.
  const vault = credential.getToken('https://vault.azure.net/.default');
  inner.answer();
  expect((await vault)?.token).toBe('token-2');
});

test('in the renewal window the cached token serves while one renewal runs; a failed renewal is retried', async () => {
  let now = 0;
  const inner = new CountingCredential(() => now);
  const credential = new CachingTokenCredential(inner, () => now);
  const first = credential.getToken('s');
  inner.answer();
  await first;

  now = HOUR - REFRESH_MARGIN_MS + 1; // renew, but the token still works for minutes
  inner.fail = true;
  expect((await credential.getToken('s'))?.token).toBe('token-1');
  expect((await credential.getToken('s'))?.token).toBe('token-1');
  expect(inner.calls).toHaveLength(2); // one renewal in flight, not two
  inner.answer(); // it fails: no unhandled rejection, the next caller tries again
  await new Promise((r) => setImmediate(r));
  inner.fail = false;
  const again = credential.getToken('s');
  inner.answer();
  expect((await again)?.token).toBe('token-1'); // still valid: served while renewing
  expect(inner.calls).toHaveLength(3);
  inner.answer();
});

test('an expired token is never served; a claims challenge always goes to the credential', async () => {
  let now = 0;
  const inner = new CountingCredential(() => now);
  const credential = new CachingTokenCredential(inner, () => now);
  const first = credential.getToken('s');
  inner.answer();
  await first;
  now = 2 * HOUR;
  const renewed = credential.getToken('s');
  inner.answer();
  expect((await renewed)?.token).toBe('token-2');

  const challenged = credential.getToken('s', { claims: '{"access_token":{}}' });
  inner.answer();
  expect((await challenged)?.token).toBe('token-3');
  expect(inner.calls[2]?.options?.claims).toBe('{"access_token":{}}');
});
