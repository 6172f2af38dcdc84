/**
 * The rotation state store on Azure Key Vault (`SecretStateStore`): one secret per connection,
 * named `sc-remediator-<connectionId>`, whose value is the connection's client secret and whose tags
 * hold the `RotationRecord` (phase, app, key ids, times). `expires` carries the credential's end.
 *
 * Built on `@azure/keyvault-secrets`' `SecretClient`; transient failures (429, 5xx, dropped
 * connections) are retried by the SDK's own pipeline policies, honouring `Retry-After`, before an
 * error surfaces here. Errors are mapped to `ServiceError`/`AuthenticationError` and never carry the
 * secret value (nor the SDK's error object, whose request holds the body).
 *
 * Permissions: the identity needs the Key Vault Secrets Officer role (or access policy
 * get, list, set, recover) on the vault.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { SecretClient, SecretClientOptions, SecretProperties } from '@azure/keyvault-secrets';
import { ServiceError } from '../errors';
import type { RecordState, RotationIntent, RotationRecord, SecretStateStore } from '../remediation/ports';
import { createSecretClient, recoverDeletedSecret, writeRecoveringDeleted } from './keyVaultClient';
import { isNotFound, mapKeyVaultError } from './keyVaultErrors';
import {
  INTENT_CONTENT_TYPE,
  INTENT_PLACEHOLDER,
  intentOnlyTags,
  isIntentOnly,
  optionalIntent,
  recordExpiry,
  recordFromProperties,
  recordToTags,
  ROTATION_CONTENT_TYPE,
  SECRET_NAME_PREFIX,
  secretNameFor,
} from './keyVaultRotationRecord';

interface KeyVaultStateStoreOptions {
  /** `KEY_VAULT_URL`, e.g. `https://myvault.vault.azure.net/`. */
  vaultUrl: string;
  credential: TokenCredential;
  /** Passed to the SDK (retry tuning in tests, for instance). `disableChallengeResourceVerification` is decided here. */
  clientOptions?: Omit<SecretClientOptions, 'disableChallengeResourceVerification'>;
  /** Poll interval of the SDK's recover poller (default: the SDK's 2 s). */
  recoverPollIntervalMs?: number;
}

export class KeyVaultStateStore implements SecretStateStore {
  /** Shared with the binding store (one Key Vault challenge per run, not one per store). */
  readonly client: SecretClient;
  private readonly recoverPollIntervalMs: number | undefined;

  constructor(options: KeyVaultStateStoreOptions) {
    this.client = createSecretClient(options.vaultUrl, options.credential, options.clientOptions);
    this.recoverPollIntervalMs = options.recoverPollIntervalMs;
  }

  /** The latest record for a connection (the value is not returned). Requires secrets/get. */
  async getRecord(connectionId: string): Promise<RotationRecord | undefined> {
    const name = secretNameFor(connectionId);
    try {
      const secret = await this.client.getSecret(name);
      // A version holding only an intent: no credential was stored, so there is no record.
      if (isIntentOnly(secret.properties)) return undefined;
      return recordFromProperties(connectionId, secret.properties);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw mapKeyVaultError(err, 'read', name);
    }
  }

  /** The client secret of the latest version. Requires secrets/get. */
  async getSecretValue(connectionId: string): Promise<string | undefined> {
    const name = secretNameFor(connectionId);
    try {
      const secret = await this.client.getSecret(name);
      // An intent's placeholder is no credential: never hand it out.
      return isIntentOnly(secret.properties) ? undefined : secret.value;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw mapKeyVaultError(err, 'read', name);
    }
  }

  /**
   * Writes a new version holding `value`, with the record as tags and `expires` = `expiresAt`.
   * A soft-deleted secret of that name is recovered first (its history is kept). Requires
   * secrets/set (and secrets/recover when the name was deleted).
   */
  async putSecret(record: RotationRecord, value: string): Promise<RotationRecord> {
    const name = secretNameFor(record.connectionId);
    const tags = recordToTags(record);
    const expiresOn = recordExpiry(record);
    const write = () =>
      this.client.setSecret(name, value, {
        tags,
        expiresOn,
        contentType: ROTATION_CONTENT_TYPE,
        enabled: true,
      });
    try {
      const secret = await writeRecoveringDeleted(this.client, name, write, this.recoverPollIntervalMs);
      return recordFromProperties(record.connectionId, secret.properties);
    } catch (err) {
      throw mapKeyVaultError(err, 'write', name, value);
    }
  }

  /**
   * Replaces the record (tags, expiry) of the latest version, or of `record.version` when given;
   * the value stays. A soft-deleted secret is recovered first. Requires secrets/set (update).
   */
  async updateRecord(record: RotationRecord): Promise<RotationRecord> {
    const name = secretNameFor(record.connectionId);
    const tags = recordToTags(record);
    const expiresOn = recordExpiry(record);
    const update = async (): Promise<SecretProperties> => {
      const version = record.version ?? (await this.client.getSecret(name)).properties.version;
      if (!version) throw new ServiceError('key-vault', `Key Vault returned no version for '${name}'.`);
      return this.client.updateSecretProperties(name, version, {
        tags,
        expiresOn,
        contentType: ROTATION_CONTENT_TYPE,
      });
    };
    try {
      let properties: SecretProperties;
      try {
        properties = await update();
      } catch (err) {
        if (!isNotFound(err) || !(await this.isSoftDeleted(name))) throw err;
        await this.recover(name);
        properties = await update();
      }
      return recordFromProperties(record.connectionId, properties);
    } catch (err) {
      throw mapKeyVaultError(err, 'update', name);
    }
  }

  /**
   * Notes a rotation's intent before its credential is added (the evidence that tells an orphan
   * from a lost record). On the live record: its tags, in place (the value stays). Without one: a
   * version holding only the intent, with a placeholder value and its own content type, which
   * `getRecord`, `getSecretValue` and `listRecords` never take for a record. A soft-deleted name
   * is refused (409), never overwritten: it is recovered first (`readState`/`recoverRecord`).
   * Requires secrets/set.
   */
  async recordIntent(
    connectionId: string,
    organization: string,
    intent: RotationIntent,
    current: RotationRecord | undefined,
  ): Promise<void> {
    const name = secretNameFor(connectionId);
    try {
      if (current) {
        const version = current.version ?? (await this.client.getSecret(name)).properties.version;
        if (!version) throw new ServiceError('key-vault', `Key Vault returned no version for '${name}'.`);
        await this.client.updateSecretProperties(name, version, {
          tags: recordToTags({ ...current, intent }),
          expiresOn: recordExpiry(current),
          contentType: ROTATION_CONTENT_TYPE,
        });
        return;
      }
      await this.client.setSecret(name, INTENT_PLACEHOLDER, {
        tags: intentOnlyTags(organization, intent),
        contentType: INTENT_CONTENT_TYPE,
        enabled: true,
      });
    } catch (err) {
      throw mapKeyVaultError(err, 'intent write', name);
    }
  }

  /**
   * The connection's live record or intent; when nothing is live, its secret soft-deleted (Key Vault keeps a deleted
   * secret's "previous id, attributes and its tags" until it is purged: GetDeletedSecret in the
   * Key Vault REST spec, "Azure Key Vault soft-delete overview" on learn.microsoft.com), or a live
   * version holding only an intent. Requires secrets/get.
   */
  async readState(connectionId: string, options: { lookForDeleted?: boolean } = {}): Promise<RecordState> {
    const name = secretNameFor(connectionId);
    try {
      try {
        const live = await this.client.getSecret(name);
        return isIntentOnly(live.properties)
          ? { softDeleted: false, ...optionalIntent(live.properties.tags) }
          : this.liveState(recordFromProperties(connectionId, live.properties));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (options.lookForDeleted === false) return { softDeleted: false };
      let deleted;
      try {
        deleted = await this.client.getDeletedSecret(name);
      } catch (err) {
        if (isNotFound(err)) return { softDeleted: false };
        throw err;
      }
      if (isIntentOnly(deleted.properties))
        return { softDeleted: true, ...optionalIntent(deleted.properties.tags) };
      const record = recordFromProperties(connectionId, deleted.properties);
      return { softDeleted: true, record, ...(record.intent ? { intent: record.intent } : {}) };
    } catch (err) {
      throw mapKeyVaultError(err, 'read', name);
    }
  }

  private liveState(record: RotationRecord): RecordState {
    return { softDeleted: false, record, ...(record.intent ? { intent: record.intent } : {}) };
  }

  /**
   * Recovers the connection's soft-deleted secret (RecoverDeletedSecret; the SDK's poller waits
   * until it is readable again) and returns its record. Another run recovering it first is fine.
   * Requires secrets/recover.
   */
  async recoverRecord(connectionId: string): Promise<RotationRecord | undefined> {
    const name = secretNameFor(connectionId);
    try {
      await this.recover(name);
    } catch (err) {
      if (!isNotFound(err)) throw mapKeyVaultError(err, 'recover', name);
    }
    return this.getRecord(connectionId);
  }

  /**
   * Every rotation record in the vault, page by page, from the secret listing (25 per page, Key
   * Vault's most): the listing carries each secret's tags and expiry, never a value. Secrets this
   * store did not write are left out; one of ours that is not a valid record comes back as its error.
   * Requires secrets/list.
   */
  async *listRecords(): AsyncIterable<Map<string, RotationRecord | Error>> {
    const pages = this.client.listPropertiesOfSecrets().byPage({ maxPageSize: 25 });
    for (;;) {
      let next: IteratorResult<SecretProperties[]>;
      try {
        next = await pages.next();
      } catch (err) {
        throw mapKeyVaultError(err, 'list', `${SECRET_NAME_PREFIX}*`);
      }
      if (next.done) return;
      const records = new Map<string, RotationRecord | Error>();
      for (const properties of next.value) {
        if (!properties.name.toLowerCase().startsWith(SECRET_NAME_PREFIX)) continue;
        // Other secrets of this service under the same prefix (a conversion's state) are not records.
        if (properties.contentType !== undefined && properties.contentType !== ROTATION_CONTENT_TYPE)
          continue;
        const connectionId = properties.name.slice(SECRET_NAME_PREFIX.length);
        try {
          records.set(connectionId.toLowerCase(), recordFromProperties(connectionId, properties));
        } catch (err) {
          records.set(connectionId.toLowerCase(), err instanceof Error ? err : new Error(String(err)));
        }
      }
      yield records;
    }
  }

  /**
   * Proves read access without writing: a GET of a secret name this service never writes. Key Vault
   * authorizes before it looks the name up, so 404 means the caller may get secrets (and the vault
   * is reachable), 403 means it may not. Write access (secrets/set) cannot be proven without
   * writing; it comes with the same role (Key Vault Secrets Officer) in this service's deployment.
   */
  async checkAccess(): Promise<void> {
    const name = `${SECRET_NAME_PREFIX}preflight-probe`;
    try {
      await this.client.getSecret(name);
    } catch (err) {
      if (isNotFound(err)) return;
      throw mapKeyVaultError(err, 'read', name);
    }
  }

  private async isSoftDeleted(name: string): Promise<boolean> {
    try {
      await this.client.getDeletedSecret(name);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private recover(name: string): Promise<void> {
    return recoverDeletedSecret(this.client, name, this.recoverPollIntervalMs);
  }
}
