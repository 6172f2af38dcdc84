/**
 * The binding store on Azure Key Vault (`BindingStore`): one secret per bound connection, named
 * `sc-remediator-binding-<connectionId>`, beside its rotation state. Nothing in it is secret: the
 * value is the binding as JSON, and the tags repeat its facts (appId, tenantId, organization, how,
 * at) for a glance in the portal. Its content type keeps it out of the rotation records' listing.
 *
 * Permissions: Key Vault Secrets Officer (get, set, recover), as for the rotation state.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { SecretClient } from '@azure/keyvault-secrets';
import type { Binding, BindingStore } from '../remediation/ports';
import { connectionSecretName, createSecretClient } from './keyVaultClient';
import { readJsonSecret, writeJsonSecret } from './keyVaultJsonSecret';

const BINDING_SECRET_PREFIX = 'sc-remediator-binding-';
const BINDING_CONTENT_TYPE = 'application/json; sc-remediator binding';

const HOW = /^(proof:test-connection-ok|proof:expired-secret-7000222|verified-rotation|approved:.{1,200})$/;

function bindingSecretName(connectionId: string): string {
  return connectionSecretName(BINDING_SECRET_PREFIX, connectionId);
}

/** Key Vault tag values are at most 256 characters. */
function tag(value: string): string {
  return value.slice(0, 256);
}

export class KeyVaultBindingStore implements BindingStore {
  private readonly client: SecretClient;

  /** With `client`, the rotation store's (one Key Vault challenge per run, not one per store). */
  constructor(options: { client: SecretClient } | { vaultUrl: string; credential: TokenCredential }) {
    this.client =
      'client' in options ? options.client : createSecretClient(options.vaultUrl, options.credential);
  }

  /** The connection's binding; undefined when none was recorded. Requires secrets/get. */
  async getBinding(connectionId: string): Promise<Binding | undefined> {
    // One that is not a binding is not ours to trust: the connection is treated as unbound
    // (report), never as bound.
    return readJsonSecret(this.client, bindingSecretName(connectionId), 'binding', (document) => {
      const b = document as Partial<Binding>;
      if (
        typeof b.connectionId !== 'string' ||
        b.connectionId.toLowerCase() !== connectionId.toLowerCase() ||
        typeof b.appId !== 'string' ||
        typeof b.organization !== 'string' ||
        typeof b.how !== 'string' ||
        !HOW.test(b.how) ||
        typeof b.at !== 'string'
      )
        return undefined;
      return {
        connectionId: b.connectionId,
        organization: b.organization,
        appId: b.appId,
        ...(typeof b.tenantId === 'string' ? { tenantId: b.tenantId } : {}),
        how: b.how,
        at: b.at,
      };
    });
  }

  /** Writes a new version of the binding. A soft-deleted name is recovered first. Requires secrets/set. */
  async putBinding(binding: Binding): Promise<Binding> {
    const name = bindingSecretName(binding.connectionId);
    const tags: Record<string, string> = {
      kind: 'binding',
      appId: tag(binding.appId),
      organization: tag(binding.organization),
      how: tag(binding.how),
      at: tag(binding.at),
    };
    if (binding.tenantId) tags['tenantId'] = tag(binding.tenantId);
    await writeJsonSecret(this.client, name, binding, { contentType: BINDING_CONTENT_TYPE, tags });
    return binding;
  }
}
