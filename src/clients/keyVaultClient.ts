/**
 * What every Key Vault store of this service shares: the `SecretClient` (with the challenge check
 * a loopback vault cannot pass switched off for loopback vaults only), a connection's secret name
 * checked against Key Vault's rules, and a write that recovers a soft-deleted name first.
 */
import type { TokenCredential } from '@azure/core-auth';
import { SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import { PreconditionError } from '../errors';
import { isDeletedButRecoverable } from './keyVaultErrors';

/** Key Vault's secret names (learn.microsoft.com, "About Azure Key Vault secrets"). */
const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;

/** Whether a URL points at this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '[::1]' ||
    host === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
  );
}

/** A `SecretClient` for the vault; `disableChallengeResourceVerification` is decided here. */
export function createSecretClient(
  vaultUrl: string,
  credential: TokenCredential,
  clientOptions: Omit<SecretClientOptions, 'disableChallengeResourceVerification'> = {},
): SecretClient {
  return new SecretClient(vaultUrl, credential, {
    ...clientOptions,
    // The SDK checks that the vault's host ends with the challenge resource's host
    // (`*.vault.azure.net` for `resource="https://vault.azure.net"`). A vault on a loopback
    // address (the sandbox, a local emulator) can never pass that check, so it is switched off
    // for loopback hosts only and stays on for every real vault.
    disableChallengeResourceVerification: isLoopbackUrl(vaultUrl),
  });
}

/** `<prefix><connectionId>`, or a `PreconditionError` when the id cannot name a Key Vault secret. */
export function connectionSecretName(prefix: string, connectionId: string): string {
  const name = `${prefix}${connectionId}`;
  if (!NAME_PATTERN.test(name))
    throw new PreconditionError(
      `Connection id '${connectionId}' cannot name a Key Vault secret (letters, digits and '-' only, at most ${127 - prefix.length} characters).`,
      'InvalidConnectionId',
    );
  return name;
}

/** Recovers a soft-deleted secret (RecoverDeletedSecret); the SDK's poller waits until it is readable. */
export async function recoverDeletedSecret(
  client: SecretClient,
  name: string,
  pollIntervalMs?: number,
): Promise<void> {
  const poller = await client.beginRecoverDeletedSecret(
    name,
    pollIntervalMs === undefined ? {} : { intervalInMs: pollIntervalMs },
  );
  await poller.pollUntilDone();
}

/**
 * Runs `write` (a set of `name`); when the name is soft-deleted (409 ObjectIsDeletedButRecoverable),
 * recovers it first (its history is kept) and writes again.
 */
export async function writeRecoveringDeleted<T>(
  client: SecretClient,
  name: string,
  write: () => Promise<T>,
  pollIntervalMs?: number,
): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (!isDeletedButRecoverable(err)) throw err;
    await recoverDeletedSecret(client, name, pollIntervalMs);
    return write();
  }
}
