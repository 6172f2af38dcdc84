/**
 * One JSON document per connection kept as a Key Vault secret (the binding and conversion stores):
 * the name checked against Key Vault's rules, a read that answers undefined for a missing name, and a
 * write that recovers a soft-deleted name first. Errors are mapped as the rotation store maps them.
 */
import type { SecretClient } from '@azure/keyvault-secrets';
import { PreconditionError } from '../errors';
import { mapKeyVaultError } from './keyVaultStateStore';

const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;

/** `<prefix><connectionId>`, or a `PreconditionError` when the id cannot name a Key Vault secret. */
export function connectionSecretName(prefix: string, connectionId: string): string {
  const name = `${prefix}${connectionId}`;
  if (!NAME_PATTERN.test(name))
    throw new PreconditionError(
      `Connection id '${connectionId}' cannot name a Key Vault secret.`,
      'InvalidConnectionId',
    );
  return name;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof Error && err.name === 'RestError'
    ? (err as { statusCode?: number }).statusCode
    : undefined;
}

function innerCode(err: unknown): string | undefined {
  return (err as { details?: { error?: { innerError?: { code?: string } } } }).details?.error?.innerError
    ?.code;
}

/** The secret's value; undefined when the name does not exist. Requires secrets/get. */
export async function readSecretValue(client: SecretClient, name: string): Promise<string | undefined> {
  try {
    return (await client.getSecret(name)).value ?? '';
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw mapKeyVaultError(err, 'read', name);
  }
}

/** Writes a new version of `name` as `document`'s JSON; a soft-deleted name is recovered first. Requires secrets/set. */
export async function writeJsonSecret(
  client: SecretClient,
  name: string,
  document: unknown,
  options: { contentType: string; tags: Record<string, string> },
): Promise<void> {
  const write = () => client.setSecret(name, JSON.stringify(document), { ...options, enabled: true });
  try {
    try {
      await write();
    } catch (err) {
      if (statusOf(err) !== 409 || innerCode(err) !== 'ObjectIsDeletedButRecoverable') throw err;
      await (await client.beginRecoverDeletedSecret(name)).pollUntilDone();
      await write();
    }
  } catch (err) {
    throw mapKeyVaultError(err, 'write', name);
  }
}
