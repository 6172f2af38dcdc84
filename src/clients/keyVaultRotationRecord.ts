/**
 * The rotation record as Key Vault keeps it: the secret's name for a connection, the record as the
 * secret's tags (within Key Vault's limits) and back, checked on the way in and out, and the tags of
 * a version that holds only a rotation's intent.
 */
import type { SecretProperties } from '@azure/keyvault-secrets';
import { PreconditionError, ServiceError } from '../errors';
import type { RotationIntent, RotationPhase, RotationRecord } from '../remediation/ports';
import { connectionSecretName } from './keyVaultClient';

/** Prefix of every secret this store writes. */
export const SECRET_NAME_PREFIX = 'sc-remediator-';
/** Content type of the secrets this store writes. */
export const ROTATION_CONTENT_TYPE = 'text/plain; sc-remediator rotation';
/**
 * Content type of a version that holds only a rotation's intent (a connection's first rotation,
 * noted before its credential is added): its value is a placeholder, never a credential.
 */
export const INTENT_CONTENT_TYPE = 'text/plain; sc-remediator rotation-intent';
export const INTENT_PLACEHOLDER = 'no credential stored yet (rotation intent)';

/** Key Vault's limits (learn.microsoft.com, "About Azure Key Vault secrets"). */
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
  intentRotationId: 'intentRotationId',
  intentAt: 'intentAt',
  certificate: 'certificate',
} as const;

/** The secret name for a connection; refuses ids that would not make a valid Key Vault name. */
export function secretNameFor(connectionId: string): string {
  return connectionSecretName(SECRET_NAME_PREFIX, connectionId);
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
  // A certificate rotation names the Key Vault certificate version the connection is given.
  if (record.certificate) tags[TAG.certificate] = `${record.certificate.name}/${record.certificate.version}`;
  if (record.intent) {
    tags[TAG.intentRotationId] = record.intent.rotationId;
    tags[TAG.intentAt] = record.intent.at;
  }

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
  const intent = intentFromTags(tags);
  if (intent) record.intent = intent;
  const certificate = /^([0-9a-zA-Z-]{1,127})\/([0-9a-zA-Z]+)$/.exec(tags[TAG.certificate] ?? '');
  if (certificate?.[1] && certificate[2])
    record.certificate = { name: certificate[1], version: certificate[2] };
  if (properties.version) record.version = properties.version;
  return record;
}

/** A rotation's intent from a secret's tags, when it carries one. */
function intentFromTags(tags: Record<string, string>): RotationIntent | undefined {
  const rotationId = tags[TAG.intentRotationId];
  return rotationId ? { rotationId, at: tags[TAG.intentAt] ?? '' } : undefined;
}

/** Whether a version holds only an intent (its value a placeholder, never a credential). */
export const isIntentOnly = (properties: SecretProperties) => properties.contentType === INTENT_CONTENT_TYPE;

/** `{ intent }` when the tags carry one, else nothing (to spread into a `RecordState`). */
export function optionalIntent(tags: Record<string, string> | undefined): { intent?: RotationIntent } {
  const intent = intentFromTags(tags ?? {});
  return intent ? { intent } : {};
}

/** The intent-only version's tags: the intent and the organization, no record. */
export function intentOnlyTags(organization: string, intent: RotationIntent): Record<string, string> {
  return {
    [TAG.intentRotationId]: intent.rotationId,
    [TAG.intentAt]: intent.at,
    [TAG.organization]: organization,
  };
}

/** The record's `expiresAt` as the secret's `expires`; refuses a record whose date is not one. */
export function recordExpiry(record: RotationRecord): Date {
  const expiresOn = new Date(record.expiresAt);
  if (Number.isNaN(expiresOn.getTime()))
    throw new PreconditionError(
      `The rotation record's expiresAt '${record.expiresAt}' is not a date.`,
      'InvalidRecord',
    );
  return expiresOn;
}
