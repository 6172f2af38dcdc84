/**
 * The conversion state store on Azure Key Vault (`ConversionStateStore`): one secret per converted
 * connection, named `sc-remediator-wif-<connectionId>`, whose value is the `ConversionRecord` as
 * JSON (ids, phase, times, issuer and subject: nothing secret) and whose tags repeat the phase and
 * path for a glance in the portal. Kept apart from the rotation secret (`sc-remediator-<id>`), whose
 * value stays the secret to fall back on until the conversion is complete.
 *
 * Permissions: Key Vault Secrets Officer (get, set, recover), as for the rotation state.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { SecretClient } from '@azure/keyvault-secrets';
import type { ConversionRecord, ConversionStateStore } from '../remediation/ports';
import { connectionSecretName, createSecretClient } from './keyVaultClient';
import { readJsonSecret, writeJsonSecret } from './keyVaultJsonSecret';

const CONVERSION_SECRET_PREFIX = 'sc-remediator-wif-';
const CONVERSION_CONTENT_TYPE = 'application/json; sc-remediator conversion';

function conversionSecretName(connectionId: string): string {
  return connectionSecretName(CONVERSION_SECRET_PREFIX, connectionId);
}

export class KeyVaultConversionStore implements ConversionStateStore {
  private readonly client: SecretClient;

  constructor(options: { vaultUrl: string; credential: TokenCredential }) {
    this.client = createSecretClient(options.vaultUrl, options.credential);
  }

  /** The connection's conversion record; undefined when it was never converted. Requires secrets/get. */
  async getConversion(connectionId: string): Promise<ConversionRecord | undefined> {
    return readJsonSecret(
      this.client,
      conversionSecretName(connectionId),
      'conversion record',
      (document) => {
        const record = document as ConversionRecord;
        if (
          record.connectionId?.toLowerCase() !== connectionId.toLowerCase() ||
          !record.phase ||
          !record.path
        )
          return undefined;
        return {
          ...record,
          federatedCredentialIds: record.federatedCredentialIds ?? [],
          previousKeyIds: record.previousKeyIds ?? [],
        };
      },
    );
  }

  /** Writes a new version of the record. A soft-deleted name is recovered first. Requires secrets/set. */
  async putConversion(record: ConversionRecord): Promise<ConversionRecord> {
    const name = conversionSecretName(record.connectionId);
    await writeJsonSecret(this.client, name, record, {
      contentType: CONVERSION_CONTENT_TYPE,
      tags: { kind: 'conversion', phase: record.phase, path: record.path, appId: record.appId },
    });
    return record;
  }
}
