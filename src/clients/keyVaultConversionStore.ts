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
import { SecretClient } from '@azure/keyvault-secrets';
import { PreconditionError, ServiceError } from '../errors';
import type { ConversionRecord, ConversionStateStore } from '../remediation/ports';
import { isLoopbackUrl, mapKeyVaultError } from './keyVaultStateStore';

export const CONVERSION_SECRET_PREFIX = 'sc-remediator-wif-';
export const CONVERSION_CONTENT_TYPE = 'application/json; sc-remediator conversion';

const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;

export function conversionSecretName(connectionId: string): string {
  const name = `${CONVERSION_SECRET_PREFIX}${connectionId}`;
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

export class KeyVaultConversionStore implements ConversionStateStore {
  private readonly client: SecretClient;

  constructor(options: { vaultUrl: string; credential: TokenCredential }) {
    this.client = new SecretClient(options.vaultUrl, options.credential, {
      // As for the rotation store: the challenge resource check cannot pass on a loopback vault.
      disableChallengeResourceVerification: isLoopbackUrl(options.vaultUrl),
    });
  }

  /** The connection's conversion record; undefined when it was never converted. Requires secrets/get. */
  async getConversion(connectionId: string): Promise<ConversionRecord | undefined> {
    const name = conversionSecretName(connectionId);
    let value: string | undefined;
    try {
      value = (await this.client.getSecret(name)).value;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw mapKeyVaultError(err, 'read', name);
    }
    try {
      const record = JSON.parse(value ?? '') as ConversionRecord;
      if (record.connectionId?.toLowerCase() !== connectionId.toLowerCase() || !record.phase || !record.path)
        throw new Error('not a conversion record');
      return {
        ...record,
        federatedCredentialIds: record.federatedCredentialIds ?? [],
        previousKeyIds: record.previousKeyIds ?? [],
      };
    } catch {
      throw new ServiceError('key-vault', `Key Vault secret '${name}' is not a conversion record.`, {
        code: 'InvalidRecord',
        transient: false,
      });
    }
  }

  /** Writes a new version of the record. A soft-deleted name is recovered first. Requires secrets/set. */
  async putConversion(record: ConversionRecord): Promise<ConversionRecord> {
    const name = conversionSecretName(record.connectionId);
    const write = () =>
      this.client.setSecret(name, JSON.stringify(record), {
        contentType: CONVERSION_CONTENT_TYPE,
        tags: { kind: 'conversion', phase: record.phase, path: record.path, appId: record.appId },
        enabled: true,
      });
    try {
      try {
        await write();
      } catch (err) {
        if (statusOf(err) !== 409 || innerCode(err) !== 'ObjectIsDeletedButRecoverable') throw err;
        await (await this.client.beginRecoverDeletedSecret(name)).pollUntilDone();
        await write();
      }
      return record;
    } catch (err) {
      throw mapKeyVaultError(err, 'write', name);
    }
  }
}
