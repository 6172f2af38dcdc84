/**
 * One JSON document per connection kept as a Key Vault secret (the binding and conversion stores):
 * a read that answers undefined for a missing name, and a write that recovers a soft-deleted name
 * first. Errors are mapped as the rotation store maps them.
 */
import type { SecretClient } from '@azure/keyvault-secrets';
import { ServiceError } from '../errors';
import { writeRecoveringDeleted } from './keyVaultClient';
import { isNotFound, mapKeyVaultError } from './keyVaultErrors';

/** The secret's value; undefined when the name does not exist. Requires secrets/get. */
async function readSecretValue(client: SecretClient, name: string): Promise<string | undefined> {
  try {
    return (await client.getSecret(name)).value ?? '';
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw mapKeyVaultError(err, 'read', name);
  }
}

/**
 * The document in `name`, as `parse` accepts it; undefined when the name does not exist. A value
 * that is not JSON, or that `parse` refuses (undefined, or a throw), is not ours to trust: an
 * `InvalidRecord` error naming `what` it should have been. Requires secrets/get.
 */
export async function readJsonSecret<T>(
  client: SecretClient,
  name: string,
  what: string,
  parse: (document: unknown) => T | undefined,
): Promise<T | undefined> {
  const value = await readSecretValue(client, name);
  if (value === undefined) return undefined;
  let parsed: T | undefined;
  try {
    parsed = parse(JSON.parse(value));
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined)
    throw new ServiceError('key-vault', `Key Vault secret '${name}' is not a ${what}.`, {
      code: 'InvalidRecord',
      transient: false,
    });
  return parsed;
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
    await writeRecoveringDeleted(client, name, write);
  } catch (err) {
    throw mapKeyVaultError(err, 'write', name);
  }
}
