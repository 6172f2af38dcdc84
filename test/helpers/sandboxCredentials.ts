/**
 * Credentials for tests that talk to the sandbox through the real SDK clients: a
 * `ClientSecretCredential` for any service-principal identity of the scenario (through the
 * simulated Entra ID), a wrapper that records what the SDK asked for, and secret-safe comparisons.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { ClientSecretCredential } from '@azure/identity';
import type { Sandbox } from '../../sandbox/index';

/** A fresh credential (own token cache) for a service-principal identity of the scenario. */
export function identityCredential(sandbox: Sandbox, identityKey: string): ClientSecretCredential {
  const identity = sandbox.state.identities.get(identityKey);
  if (!identity?.appId || !identity.clientSecret)
    throw new Error(`Identity '${identityKey}' is not a service principal with a client secret.`);
  return new ClientSecretCredential(sandbox.state.tenantId, identity.appId, identity.clientSecret, {
    authorityHost: sandbox.urls.authority,
    disableInstanceDiscovery: true,
  });
}

interface TokenRequest {
  scopes: string[];
  tenantId?: string;
  enableCae?: boolean;
}

/** Wraps a credential and records each `getToken` call (scopes, tenant), never the token. */
export function recordingCredential(inner: TokenCredential): {
  credential: TokenCredential;
  calls: TokenRequest[];
} {
  const calls: TokenRequest[] = [];
  return {
    calls,
    credential: {
      getToken: (scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> => {
        calls.push({
          scopes: Array.isArray(scopes) ? [...scopes] : [scopes],
          tenantId: options?.tenantId,
          enableCae: options?.enableCae,
        });
        return inner.getToken(scopes, options);
      },
    },
  };
}

/** Compares secret values without ever printing them. */
export function expectSameSecret(actual: string | undefined, expected: string, what = 'secret value'): void {
  if (actual !== expected)
    throw new Error(
      `${what} differs from the expected one (lengths ${actual?.length ?? 'undefined'} / ${expected.length}).`,
    );
}

/** Fails (without printing it) when `text` contains `secret`. */
export function expectNoLeak(text: string, secret: string, where: string): void {
  if (secret.length > 0 && text.includes(secret)) throw new Error(`A secret value leaked into ${where}.`);
}
