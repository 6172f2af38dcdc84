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
import { SecretClient, type SecretClientOptions, type SecretProperties } from '@azure/keyvault-secrets';
import { AuthenticationError, PreconditionError, ServiceError } from '../errors';
import type { RotationPhase, RotationRecord, SecretStateStore } from '../remediation/ports';

/** Prefix of every secret this store writes. */
export const SECRET_NAME_PREFIX = 'sc-remediator-';
/** Content type of the secrets this store writes. */
export const ROTATION_CONTENT_TYPE = 'text/plain; sc-remediator rotation';

/** Key Vault's limits (learn.microsoft.com, "About Azure Key Vault secrets"). */
const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;
const MAX_TAGS = 15;
const MAX_TAG_VALUE = 512;

const PHASES: readonly RotationPhase[] = ['created', 'applied', 'verified', 'completed'];

/** Tag names, in the order they are written. */
const TAG = {
  phase: 'phase',
  appId: 'appId',
  keyId: 'keyId',
  rotationId: 'rotationId',
  previousKeyIds: 'previousKeyIds',
  originalCreationMode: 'originalCreationMode',
  organization: 'organization',
  createdAt: 'createdAt',
  appliedAt: 'appliedAt',
  verifiedAt: 'verifiedAt',
  completedAt: 'completedAt',
} as const;

export interface KeyVaultStateStoreOptions {
  /** `KEY_VAULT_URL`, e.g. `https://myvault.vault.azure.net/`. */
  vaultUrl: string;
  credential: TokenCredential;
  /** Passed to the SDK (retry tuning in tests, for instance). `disableChallengeResourceVerification` is decided here. */
  clientOptions?: Omit<SecretClientOptions, 'disableChallengeResourceVerification'>;
  /** Poll interval of the SDK's recover poller (default: the SDK's 2 s). */
  recoverPollIntervalMs?: number;
}

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

/** The secret name for a connection; refuses ids that would not make a valid Key Vault name. */
export function secretNameFor(connectionId: string): string {
  const name = `${SECRET_NAME_PREFIX}${connectionId}`;
  if (!NAME_PATTERN.test(name))
    throw new PreconditionError(
      `Connection id '${connectionId}' cannot name a Key Vault secret (letters, digits and '-' only, at most ${127 - SECRET_NAME_PREFIX.length} characters).`,
      'InvalidConnectionId',
    );
  return name;
}

/** The record as Key Vault tags; refuses records that break Key Vault's tag limits. */
export function recordToTags(record: RotationRecord): Record<string, string> {
  const tags: Record<string, string> = {
    [TAG.phase]: record.phase,
    [TAG.appId]: record.appId,
    [TAG.keyId]: record.keyId,
    [TAG.rotationId]: record.rotationId,
    [TAG.originalCreationMode]: record.originalCreationMode,
    [TAG.organization]: record.organization,
    [TAG.createdAt]: record.createdAt,
  };
  // Optional values are left out rather than written empty.
  if (record.previousKeyIds.length > 0) tags[TAG.previousKeyIds] = record.previousKeyIds.join(',');
  if (record.appliedAt) tags[TAG.appliedAt] = record.appliedAt;
  if (record.verifiedAt) tags[TAG.verifiedAt] = record.verifiedAt;
  if (record.completedAt) tags[TAG.completedAt] = record.completedAt;

  if (record.previousKeyIds.some((id) => id.includes(',') || id.trim() === ''))
    throw new PreconditionError('A previous key id is empty or contains a comma.', 'InvalidRecord');
  for (const [name, value] of Object.entries(tags)) {
    if (value.length > MAX_TAG_VALUE) {
      // previousKeyIds is the only field that can grow (about 13 GUIDs fit). Truncating it would make
      // the service forget credentials it must remove after the retention period, so refuse instead.
      throw new PreconditionError(
        name === TAG.previousKeyIds
          ? `Too many previous key ids (${record.previousKeyIds.length}) to keep in a Key Vault tag of ${MAX_TAG_VALUE} characters; clean up the app's old credentials first.`
          : `The rotation record's '${name}' is longer than Key Vault's ${MAX_TAG_VALUE}-character tag limit.`,
        'RecordTooLarge',
      );
    }
  }
  if (Object.keys(tags).length > MAX_TAGS)
    throw new PreconditionError('The rotation record needs more than 15 tags.', 'RecordTooLarge');
  return tags;
}

/** Reads a record back from a secret's properties; throws when the tags are not ours. */
export function recordFromProperties(connectionId: string, properties: SecretProperties): RotationRecord {
  const tags = properties.tags ?? {};
  const need = (name: string): string => {
    const value = tags[name];
    if (value === undefined || value === '')
      throw new ServiceError(
        'key-vault',
        `Key Vault secret '${properties.name}' is not a rotation record (tag '${name}' is missing).`,
        { code: 'InvalidRecord', transient: false },
      );
    return value;
  };
  const phase = need(TAG.phase);
  if (!PHASES.includes(phase as RotationPhase))
    throw new ServiceError(
      'key-vault',
      `Key Vault secret '${properties.name}' has an unknown phase '${phase}'.`,
      {
        code: 'InvalidRecord',
        transient: false,
      },
    );
  if (!properties.expiresOn)
    throw new ServiceError('key-vault', `Key Vault secret '${properties.name}' has no expiry date.`, {
      code: 'InvalidRecord',
      transient: false,
    });
  const previous = tags[TAG.previousKeyIds];
  const record: RotationRecord = {
    connectionId,
    organization: need(TAG.organization),
    phase: phase as RotationPhase,
    appId: need(TAG.appId),
    keyId: need(TAG.keyId),
    rotationId: need(TAG.rotationId),
    previousKeyIds: previous ? previous.split(',').filter((id) => id !== '') : [],
    originalCreationMode: need(TAG.originalCreationMode),
    // Key Vault keeps `exp` in whole seconds.
    expiresAt: properties.expiresOn.toISOString(),
    createdAt: need(TAG.createdAt),
  };
  const appliedAt = tags[TAG.appliedAt];
  const verifiedAt = tags[TAG.verifiedAt];
  const completedAt = tags[TAG.completedAt];
  if (appliedAt) record.appliedAt = appliedAt;
  if (verifiedAt) record.verifiedAt = verifiedAt;
  if (completedAt) record.completedAt = completedAt;
  if (properties.version) record.version = properties.version;
  return record;
}

interface RestErrorLike {
  name: string;
  message: string;
  statusCode?: number;
  code?: string;
  details?: { error?: { code?: string; message?: string; innerError?: { code?: string } } };
}

function asRestError(err: unknown): RestErrorLike | undefined {
  return err instanceof Error && err.name === 'RestError' ? err : undefined;
}

function innerCode(err: unknown): string | undefined {
  return asRestError(err)?.details?.error?.innerError?.code;
}

function isNotFound(err: unknown): boolean {
  return asRestError(err)?.statusCode === 404;
}

function isDeletedButRecoverable(err: unknown): boolean {
  return asRestError(err)?.statusCode === 409 && innerCode(err) === 'ObjectIsDeletedButRecoverable';
}

/** Hides a value wherever it might appear in a text. */
function scrub(text: string, secret?: string): string {
  return secret && secret.length > 0 ? text.split(secret).join('***') : text;
}

/**
 * Maps an SDK or credential failure to the product's errors. The message is built from the status,
 * the service's code and message only; the SDK error (its request holds the body) is not kept.
 */
export function mapKeyVaultError(
  err: unknown,
  operation: string,
  secretName: string,
  secretValue?: string,
): Error {
  if (err instanceof ServiceError || err instanceof PreconditionError) return err;
  const rest = asRestError(err);
  if (rest) {
    const status = rest.statusCode;
    const code = rest.details?.error?.code ?? rest.code;
    const inner = rest.details?.error?.innerError?.code;
    const serviceMessage = scrub(rest.details?.error?.message ?? rest.message, secretValue);
    const message = scrub(
      `Key Vault ${operation} of '${secretName}' failed${status ? ` (${status}${code ? ` ${code}` : ''}${inner ? `/${inner}` : ''})` : ''}: ${serviceMessage}`,
      secretValue,
    );
    if (status === 401) return new AuthenticationError('key-vault', message, { status, code });
    // A deletion still in progress clears by itself; everything else in 4xx needs a person.
    const transient = inner === 'ObjectIsBeingDeleted' ? true : undefined;
    return new ServiceError('key-vault', message, { status, code: inner ?? code, transient });
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const text = scrub(`Key Vault ${operation} of '${secretName}' failed: ${e.message}`, secretValue);
  if (/Authentication|CredentialUnavailable/.test(e.name))
    return new AuthenticationError('key-vault', text, { code: e.name });
  // No HTTP answer at all (connection refused/reset, timeout after the SDK's retries): transient.
  return new ServiceError('key-vault', text, { code: (err as { code?: string }).code, transient: true });
}

export class KeyVaultStateStore implements SecretStateStore {
  /** Shared with the binding store (one Key Vault challenge per run, not one per store). */
  readonly client: SecretClient;
  private readonly recoverPollIntervalMs: number | undefined;

  constructor(options: KeyVaultStateStoreOptions) {
    this.client = new SecretClient(options.vaultUrl, options.credential, {
      ...options.clientOptions,
      // The SDK checks that the vault's host ends with the challenge resource's host
      // (`*.vault.azure.net` for `resource="https://vault.azure.net"`). A vault on a loopback
      // address (the sandbox, a local emulator) can never pass that check, so it is switched off
      // for loopback hosts only and stays on for every real vault.
      disableChallengeResourceVerification: isLoopbackUrl(options.vaultUrl),
    });
    this.recoverPollIntervalMs = options.recoverPollIntervalMs;
  }

  /** The latest record for a connection (the value is not returned). Requires secrets/get. */
  async getRecord(connectionId: string): Promise<RotationRecord | undefined> {
    const name = secretNameFor(connectionId);
    try {
      const secret = await this.client.getSecret(name);
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
      return secret.value;
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
    const expiresOn = this.expiry(record);
    const write = () =>
      this.client.setSecret(name, value, {
        tags,
        expiresOn,
        contentType: ROTATION_CONTENT_TYPE,
        enabled: true,
      });
    try {
      let secret;
      try {
        secret = await write();
      } catch (err) {
        if (!isDeletedButRecoverable(err)) throw err;
        await this.recover(name);
        secret = await write();
      }
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
    const expiresOn = this.expiry(record);
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

  private expiry(record: RotationRecord): Date {
    const expiresOn = new Date(record.expiresAt);
    if (Number.isNaN(expiresOn.getTime()))
      throw new PreconditionError(
        `The rotation record's expiresAt '${record.expiresAt}' is not a date.`,
        'InvalidRecord',
      );
    return expiresOn;
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

  private async recover(name: string): Promise<void> {
    const poller = await this.client.beginRecoverDeletedSecret(
      name,
      this.recoverPollIntervalMs === undefined ? {} : { intervalInMs: this.recoverPollIntervalMs },
    );
    await poller.pollUntilDone();
  }
}
