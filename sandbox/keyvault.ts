/**
 * Simulated Azure Key Vault, secrets data plane of one vault (`specs/keyvault/secrets.json`), as
 * `@azure/keyvault-secrets`' SecretClient uses it:
 *
 * - Challenge-based auth: a request without a bearer gets 401 `AKV10000` with the
 *   `WWW-Authenticate: Bearer authorization="…/{tenant}", resource="https://vault.azure.net"`
 *   header the SDK parses; tokens must be for `https://vault.azure.net`; callers outside
 *   `state.vault.writers` (the Key Vault Secrets Officer role) get RBAC's 403 `ForbiddenByRbac`.
 * - `api-version` is required, any value accepted (the SDK pins its own).
 * - Set/get (latest or by version)/list versions (paged by `maxresults` + `nextLink`)/list/update
 *   (attributes, tags, contentType; never the value)/soft delete/get deleted/recover/purge.
 * - Names are case-insensitive and keep their first spelling; versions are 32 hex characters.
 * - Limits: name `^[0-9a-zA-Z-]{1,127}$`, value ≤ 25,600 bytes, contentType ≤ 255 characters,
 *   ≤ 15 tags, tag names and values ≤ 512 characters.
 * - A deleted-but-recoverable name cannot be reused: 409 `Conflict` / `ObjectIsDeletedButRecoverable`.
 *
 * Error bodies are Key Vault's `{"error":{"code","message","innererror"?}}`. Messages come from
 * recordings and issue reports where one was found (see the constants below); the rest are marked.
 * Soft delete, recovery and purge complete at once here (the real service takes a moment, which the
 * SDK's pollers absorb). Backup and restore are not simulated.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { SandboxContext } from './index';
import { mintCertificate } from './certificates';
import type {
  TenantState,
  VaultCertificate,
  VaultCertificateVersion,
  VaultSecret,
  VaultSecretVersion,
} from './model';
import { stableGuid } from './scenario';
import type { ServiceDefinition } from './server';
import { AUDIENCES } from './tokens';

/** Limits from "About Azure Key Vault secrets" (learn.microsoft.com). */
const KEY_VAULT_LIMITS = {
  nameMaxLength: 127,
  /** "maximum size of 25 KB each"; `az keyvault secret set` refuses past 25,600. */
  valueMaxBytes: 25_600,
  contentTypeMaxLength: 255,
  maxTags: 15,
  tagNameMaxLength: 512,
  tagValueMaxLength: 512,
  maxResults: 25,
} as const;

const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION_PATTERN = /^[0-9a-f]{32}$/i;
const RECOVERY_LEVEL = 'Recoverable+Purgeable';
const REGION = 'westeurope';

// Messages seen from the real service (azure-sdk-for-js recordings, azure-sdk-for-rust tests,
// terraform-provider-azurerm and azure-cli issues).
const MSG_MISSING_TOKEN = 'AKV10000: Request is missing a Bearer or PoP token.';
/** Answer to any limit violation in the body (16 tags: terraform-provider-azurerm #16780/#16947). */
const MSG_INVALID_PROPERTY = 'Property has invalid value\r\n';
const MSG_NOT_FOUND_HINT =
  'If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182';

interface KvErrorBody {
  error: { code: string; message: string; innererror?: { code: string } };
}

function kvError(code: string, message: string, innerCode?: string): KvErrorBody {
  return { error: { code, message, ...(innerCode ? { innererror: { code: innerCode } } : {}) } };
}

class KvFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: KvErrorBody,
  ) {
    super(body.error.message);
  }
}

const fail = (status: number, code: string, message: string, innerCode?: string): KvFailure =>
  new KvFailure(status, kvError(code, message, innerCode));

const badParameter = (message: string): KvFailure => fail(400, 'BadParameter', message);

/** The RBAC data action each operation needs (Microsoft.KeyVault resource provider operations). */
const ACTIONS = {
  get: 'Microsoft.KeyVault/vaults/secrets/getSecret/action',
  set: 'Microsoft.KeyVault/vaults/secrets/setSecret/action',
  readMetadata: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action',
  update: 'Microsoft.KeyVault/vaults/secrets/update/action',
  delete: 'Microsoft.KeyVault/vaults/secrets/delete',
  recover: 'Microsoft.KeyVault/vaults/secrets/recover/action',
  purge: 'Microsoft.KeyVault/vaults/secrets/purge/action',
} as const;
/**
 * Certificate data actions (Learn, "Azure built-in roles for Security": Key Vault Certificates
 * Officer has `Microsoft.KeyVault/vaults/certificates/*`; "Certificate access control": certificate
 * permissions are "distinct from the access control policies for keys and secrets"). Reading the
 * certificate's private key goes through its secret, so that stays a secrets action.
 */
const CERTIFICATE_ACTIONS = {
  create: 'Microsoft.KeyVault/vaults/certificates/create/action',
  read: 'Microsoft.KeyVault/vaults/certificates/read',
} as const;
type Action =
  (typeof ACTIONS)[keyof typeof ACTIONS] | (typeof CERTIFICATE_ACTIONS)[keyof typeof CERTIFICATE_ACTIONS];

interface Caller {
  key: string;
  appid: string;
  oid: string;
  iss: string;
}

const seconds = (state: TenantState): number => Math.floor(state.now().getTime() / 1000);

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function isStringMap(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string')
  );
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function optionalInt(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw badParameter(MSG_INVALID_PROPERTY);
  return value;
}

function checkTags(tags: unknown): Record<string, string> | undefined {
  if (tags === undefined || tags === null) return undefined;
  if (!isStringMap(tags)) throw badParameter(MSG_INVALID_PROPERTY);
  const entries = Object.entries(tags);
  if (entries.length > KEY_VAULT_LIMITS.maxTags) throw badParameter(MSG_INVALID_PROPERTY);
  for (const [name, value] of entries)
    if (name.length > KEY_VAULT_LIMITS.tagNameMaxLength || value.length > KEY_VAULT_LIMITS.tagValueMaxLength)
      throw badParameter(MSG_INVALID_PROPERTY);
  return { ...tags };
}

function checkContentType(contentType: unknown): string | undefined {
  if (contentType === undefined || contentType === null) return undefined;
  if (typeof contentType !== 'string' || contentType.length > KEY_VAULT_LIMITS.contentTypeMaxLength)
    throw badParameter(MSG_INVALID_PROPERTY);
  return contentType;
}

interface AttributeChanges {
  enabled?: boolean;
  nbf?: number;
  exp?: number;
}

function checkAttributes(attributes: unknown): AttributeChanges {
  if (attributes === undefined || attributes === null) return {};
  if (!isObject(attributes)) throw badParameter(MSG_INVALID_PROPERTY);
  const enabled = attributes['enabled'];
  if (enabled !== undefined && enabled !== null && typeof enabled !== 'boolean')
    throw badParameter(MSG_INVALID_PROPERTY);
  const changes: AttributeChanges = {};
  if (typeof enabled === 'boolean') changes.enabled = enabled;
  const nbf = optionalInt(attributes['nbf']);
  if (nbf !== undefined) changes.nbf = nbf;
  const exp = optionalInt(attributes['exp']);
  if (exp !== undefined) changes.exp = exp;
  return changes;
}

export function keyVaultService(ctx: SandboxContext): ServiceDefinition {
  const { state, tokens } = ctx;
  const vault = state.vault;
  // A plausible ARM identity for the vault, used in RBAC messages only.
  const subscriptionId = stableGuid('vault-subscription', state.tenantId);
  const vaultName = 'kv-sc-remediator';
  const resourceGroup = 'rg-sc-remediator';

  const vaultUrl = (): string => ctx.urls.keyVault; // ends with '/'
  const secretId = (secret: VaultSecret, version?: string): string =>
    `${vaultUrl()}secrets/${secret.name}${version ? `/${version}` : ''}`;
  const recoveryId = (secret: VaultSecret): string => `${vaultUrl()}deletedsecrets/${secret.name}`;

  /** Soft-deleted secrets whose retention ended are purged by the service itself. */
  let sweptAt: number | undefined;
  function sweep(): void {
    const now = seconds(state);
    // Purge dates are in whole seconds: once per second of the sandbox clock is as good as always.
    if (now === sweptAt) return;
    sweptAt = now;
    for (const [key, secret] of vault.secrets)
      if (secret.deleted && secret.deleted.scheduledPurgeDate <= now) vault.secrets.delete(key);
  }

  function latest(secret: VaultSecret): VaultSecretVersion {
    const last = secret.versions[secret.versions.length - 1];
    if (!last) throw new Error(`Sandbox vault: secret '${secret.name}' has no version.`);
    return last;
  }

  function attributes(v: VaultSecretVersion): Record<string, unknown> {
    return {
      enabled: v.enabled,
      ...(v.nbf !== undefined ? { nbf: v.nbf } : {}),
      ...(v.exp !== undefined ? { exp: v.exp } : {}),
      created: v.created,
      updated: v.updated,
      recoveryLevel: RECOVERY_LEVEL,
      recoverableDays: vault.recoverableDays,
    };
  }

  /** The parts every representation of one version shares. */
  function common(v: VaultSecretVersion): Record<string, unknown> {
    return {
      ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
      attributes: attributes(v),
      ...(Object.keys(v.tags).length > 0 ? { tags: { ...v.tags } } : {}),
    };
  }

  /** SecretBundle; `withValue` false for answers that never carry it (update, recover). */
  function bundle(secret: VaultSecret, v: VaultSecretVersion, withValue: boolean): Record<string, unknown> {
    return {
      ...(withValue ? { value: v.value } : {}),
      id: secretId(secret, v.version),
      ...common(v),
      ...(v.managedKid ? { kid: v.managedKid, managed: true } : {}),
    };
  }

  function deletedBundle(secret: VaultSecret): Record<string, unknown> {
    const v = latest(secret);
    return {
      id: secretId(secret, v.version),
      ...common(v),
      recoveryId: recoveryId(secret),
      deletedDate: secret.deleted?.deletedDate,
      scheduledPurgeDate: secret.deleted?.scheduledPurgeDate,
    };
  }

  function deletedItem(secret: VaultSecret): Record<string, unknown> {
    return {
      id: secretId(secret),
      ...common(latest(secret)),
      recoveryId: recoveryId(secret),
      deletedDate: secret.deleted?.deletedDate,
      scheduledPurgeDate: secret.deleted?.scheduledPurgeDate,
    };
  }

  function checkName(raw: string): string {
    const name = decode(raw);
    if (!NAME_PATTERN.test(name)) throw badParameter(`The request URI contains an invalid name: ${name}`);
    return name;
  }

  const notFound = (nameOrId: string): KvFailure =>
    fail(
      404,
      'SecretNotFound',
      `A secret with (name/id) ${nameOrId} was not found in this key vault. ${MSG_NOT_FOUND_HINT}`,
    );

  const deletedNotFound = (name: string): KvFailure =>
    fail(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);

  /** A live (not deleted) secret, or 404. */
  function live(name: string): VaultSecret {
    const secret = vault.secrets.get(name.toLowerCase());
    if (!secret || secret.deleted) throw notFound(name);
    return secret;
  }

  function deleted(name: string): VaultSecret {
    const secret = vault.secrets.get(name.toLowerCase());
    if (!secret?.deleted) throw deletedNotFound(name);
    return secret;
  }

  function findVersion(secret: VaultSecret, name: string, version: string): VaultSecretVersion {
    if (version === '') return latest(secret);
    const v = VERSION_PATTERN.test(version)
      ? secret.versions.find((x) => x.version.toLowerCase() === version.toLowerCase())
      : undefined;
    if (!v) throw notFound(`${name}/${version}`);
    return v;
  }

  function maxResults(req: Request): number {
    const raw = req.query['maxresults'];
    if (raw === undefined) return KEY_VAULT_LIMITS.maxResults;
    const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
    // Message not confirmed against the real service.
    if (!(n >= 1 && n <= KEY_VAULT_LIMITS.maxResults))
      throw badParameter(
        `Invalid maxresults: '${typeof raw === 'string' ? raw : JSON.stringify(raw)}'. It must be between 1 and 25.`,
      );
    return n;
  }

  function skip(req: Request): number {
    const token = req.query['$skiptoken'];
    if (token === undefined) return 0;
    try {
      if (typeof token !== 'string') throw new Error('not a string');
      const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {
        skip?: unknown;
      };
      if (typeof parsed.skip === 'number' && Number.isInteger(parsed.skip) && parsed.skip >= 0)
        return parsed.skip;
    } catch {
      // fall through
    }
    throw badParameter('The $skiptoken is invalid.');
  }

  /**
   * One page of `items` in Key Vault's list shape; `nextLink` is null on the last page, as recorded.
   * `show` turns an item into its JSON (only the page's items are turned).
   */
  function page<T>(
    req: Request,
    path: string,
    items: T[],
    show: (item: T) => Record<string, unknown>,
  ): Record<string, unknown> {
    const size = maxResults(req);
    const start = skip(req);
    const slice = items.slice(start, start + size).map(show);
    let nextLink: string | null = null;
    if (start + size < items.length) {
      const v = req.query['api-version'];
      const apiVersion = typeof v === 'string' ? v : '';
      const token = Buffer.from(JSON.stringify({ skip: start + size })).toString('base64url');
      nextLink = `${vaultUrl()}${path}?api-version=${encodeURIComponent(apiVersion)}&$skiptoken=${token}&maxresults=${size}`;
    }
    return { value: slice, nextLink };
  }

  function authorize(res: Response, action: Action, resource: string): void {
    const caller = res.locals['kvCaller'] as Caller;
    const holders = action.startsWith('Microsoft.KeyVault/vaults/certificates/')
      ? vault.certificateOfficers
      : vault.writers;
    if (holders.includes(caller.key)) return;
    throw fail(
      403,
      'Forbidden',
      [
        'Caller is not authorized to perform action on resource.',
        'If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.',
        `Caller: appid=${caller.appid};oid=${caller.oid};iss=${caller.iss}`,
        `Action: '${action}'`,
        `Resource: '/subscriptions/${subscriptionId}/resourcegroups/${resourceGroup}/providers/microsoft.keyvault/vaults/${vaultName}${resource.toLowerCase()}'`,
        'Assignment: (not found)',
        'DenyAssignmentId: null',
        "DecisionReason: 'DeniedWithNoValidRBAC' ",
        `Vault: ${vaultName};location=${REGION}`,
        '',
      ].join('\r\n'),
      'ForbiddenByRbac',
    );
  }

  function newVersion(): string {
    return randomBytes(16).toString('hex');
  }

  // --- operations -----------------------------------------------------------------------------

  function setSecret(req: Request, res: Response, rawName: string): void {
    const name = checkName(rawName);
    authorize(res, ACTIONS.set, `/secrets/${name}`);
    const body: unknown = req.body;
    if (!isObject(body) || typeof body['value'] !== 'string')
      // Message not confirmed against the real service.
      throw badParameter('The parameter value is required and must be a string.');
    const value = body['value'];
    if (Buffer.byteLength(value, 'utf8') > KEY_VAULT_LIMITS.valueMaxBytes)
      throw badParameter(MSG_INVALID_PROPERTY);
    const tags = checkTags(body['tags']) ?? {};
    const contentType = checkContentType(body['contentType']);
    const attrs = checkAttributes(body['attributes']);

    const key = name.toLowerCase();
    const existing = vault.secrets.get(key);
    if (existing?.deleted)
      throw fail(
        409,
        'Conflict',
        `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
        'ObjectIsDeletedButRecoverable',
      );
    const now = seconds(state);
    const version: VaultSecretVersion = {
      version: newVersion(),
      value,
      tags,
      enabled: attrs.enabled ?? true,
      created: now,
      updated: now,
      ...(contentType !== undefined ? { contentType } : {}),
      ...(attrs.nbf !== undefined ? { nbf: attrs.nbf } : {}),
      ...(attrs.exp !== undefined ? { exp: attrs.exp } : {}),
    };
    const secret = existing ?? { name, versions: [] };
    secret.versions.push(version);
    vault.secrets.set(key, secret);
    res.status(200).json(bundle(secret, version, true));
  }

  function getSecret(res: Response, rawName: string, version: string): void {
    const name = checkName(rawName);
    authorize(res, ACTIONS.get, `/secrets/${name}`);
    const secret = live(name);
    const v = findVersion(secret, name, version);
    if (!v.enabled)
      throw fail(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
    res.status(200).json(bundle(secret, v, true));
  }

  function updateSecret(req: Request, res: Response, rawName: string, version: string): void {
    const name = checkName(rawName);
    authorize(res, ACTIONS.update, `/secrets/${name}`);
    const secret = live(name);
    const v = findVersion(secret, name, version);
    const body: unknown = req.body ?? {};
    if (!isObject(body)) throw badParameter(MSG_INVALID_PROPERTY);
    // Check everything before changing anything; `value` is not part of SecretUpdateParameters.
    const tags = checkTags(body['tags']);
    const contentType = checkContentType(body['contentType']);
    const attrs = checkAttributes(body['attributes']);
    if (tags !== undefined) v.tags = tags;
    if (contentType !== undefined) v.contentType = contentType;
    if (attrs.enabled !== undefined) v.enabled = attrs.enabled;
    if (attrs.nbf !== undefined) v.nbf = attrs.nbf;
    if (attrs.exp !== undefined) v.exp = attrs.exp;
    v.updated = seconds(state);
    res.status(200).json(bundle(secret, v, false));
  }

  function listSecrets(req: Request, res: Response): void {
    authorize(res, ACTIONS.readMetadata, '');
    // In the order the secrets were created (a vault of thousands is listed page by page).
    const items = [...vault.secrets.values()].filter((s) => !s.deleted);
    res.status(200).json(page(req, 'secrets', items, (s) => ({ id: secretId(s), ...common(latest(s)) })));
  }

  function listVersions(req: Request, res: Response, rawName: string): void {
    const name = checkName(rawName);
    authorize(res, ACTIONS.readMetadata, `/secrets/${name}`);
    const secret = live(name);
    res.status(200).json(
      page(req, `secrets/${secret.name}/versions`, secret.versions, (v) => ({
        id: secretId(secret, v.version),
        ...common(v),
      })),
    );
  }

  function deleteSecret(res: Response, rawName: string): void {
    const name = checkName(rawName);
    authorize(res, ACTIONS.delete, `/secrets/${name}`);
    const secret = live(name);
    const now = seconds(state);
    secret.deleted = { deletedDate: now, scheduledPurgeDate: now + vault.recoverableDays * 24 * 3600 };
    res.status(200).json(deletedBundle(secret));
  }

  function listDeleted(req: Request, res: Response): void {
    authorize(res, ACTIONS.readMetadata, '');
    const items = [...vault.secrets.entries()]
      .filter(([, s]) => s.deleted)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([, s]) => deletedItem(s));
    res.status(200).json(page(req, 'deletedsecrets', items, (item) => item));
  }

  function getDeleted(res: Response, rawName: string): void {
    const name = checkName(rawName);
    authorize(res, ACTIONS.readMetadata, `/secrets/${name}`);
    res.status(200).json(deletedBundle(deleted(name)));
  }

  function recoverDeleted(res: Response, rawName: string): void {
    const name = checkName(rawName);
    authorize(res, ACTIONS.recover, `/secrets/${name}`);
    const secret = deleted(name);
    delete secret.deleted;
    res.status(200).json(bundle(secret, latest(secret), false));
  }

  function purgeDeleted(res: Response, rawName: string): void {
    const name = checkName(rawName);
    authorize(res, ACTIONS.purge, `/secrets/${name}`);
    deleted(name);
    vault.secrets.delete(name.toLowerCase());
    res.status(204).end();
  }

  // --- certificates ---------------------------------------------------------------------------
  // "About Azure Key Vault certificates" (Learn): creating a certificate creates a key and a secret
  // of the same name; the addressable secret holds the certificate with its private key when the
  // policy's key is exportable (without it, only the certificate). Self-signed creation (issuer
  // `Self`) answers 202 with a pending operation (`/certificates/{name}/pending`) that completes on
  // its own; the sandbox completes it at once, so the SDK's poller sees `completed` at its first
  // poll. Only `application/x-pem-file` secrets are simulated (PKCS#12 is refused), and only the
  // `Self` issuer. Certificate operations need Key Vault Certificates Officer
  // (`vault.certificateOfficers`, see CERTIFICATE_ACTIONS); the PEM is read as a secret (Secrets Officer).

  const certificateId = (c: VaultCertificate, version?: string): string =>
    `${vaultUrl()}certificates/${c.name}${version ? `/${version}` : ''}`;

  function certificateBundle(c: VaultCertificate, v: VaultCertificateVersion): Record<string, unknown> {
    return {
      id: certificateId(c, v.version),
      kid: `${vaultUrl()}keys/${c.name}/${v.version}`,
      sid: `${vaultUrl()}secrets/${c.name}/${v.version}`,
      x5t: v.x5t,
      cer: v.cer,
      attributes: {
        enabled: true,
        nbf: v.nbf,
        exp: v.exp,
        created: v.created,
        updated: v.updated,
        recoveryLevel: RECOVERY_LEVEL,
        recoverableDays: vault.recoverableDays,
      },
      policy: { id: `${certificateId(c)}/policy`, ...v.policy },
      ...(Object.keys(v.tags).length > 0 ? { tags: { ...v.tags } } : {}),
    };
  }

  function operationJson(c: VaultCertificate): Record<string, unknown> {
    const op = c.operation;
    return {
      id: `${certificateId(c)}/pending`,
      issuer: { name: op?.issuer ?? 'Self' },
      csr: '',
      cancellation_requested: false,
      status: op?.status ?? 'completed',
      status_details:
        op?.status === 'inProgress'
          ? 'Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.'
          : '',
      ...(op?.status === 'completed' ? { target: certificateId(c) } : {}),
      request_id: op?.requestId ?? '',
    };
  }

  const certificateNotFound = (nameOrId: string): KvFailure =>
    fail(
      404,
      'CertificateNotFound',
      `A certificate with (name/id) ${nameOrId} was not found in this key vault. ${MSG_NOT_FOUND_HINT}`,
    );

  function createCertificate(req: Request, res: Response, rawName: string): void {
    const name = checkName(rawName);
    authorize(res, CERTIFICATE_ACTIONS.create, `/certificates/${name}`);
    const body: unknown = req.body ?? {};
    if (!isObject(body)) throw badParameter(MSG_INVALID_PROPERTY);
    const policy = isObject(body['policy']) ? body['policy'] : {};
    const keyProps = isObject(policy['key_props']) ? policy['key_props'] : {};
    const secretProps = isObject(policy['secret_props']) ? policy['secret_props'] : {};
    const x509 = isObject(policy['x509_props']) ? policy['x509_props'] : {};
    const issuer =
      isObject(policy['issuer']) && typeof policy['issuer']['name'] === 'string'
        ? policy['issuer']['name']
        : 'Unknown';
    if (issuer.toLowerCase() !== 'self')
      throw badParameter(`The sandbox vault issues self-signed certificates only (issuer '${issuer}').`);
    const contentType =
      typeof secretProps['contentType'] === 'string' ? secretProps['contentType'] : 'application/x-pkcs12';
    if (contentType !== 'application/x-pem-file')
      throw badParameter(
        `The sandbox vault keeps certificates as application/x-pem-file only (asked: ${contentType}).`,
      );
    const subject = typeof x509['subject'] === 'string' ? x509['subject'] : '';
    if (!/^CN=./i.test(subject)) throw badParameter(MSG_INVALID_PROPERTY);
    const months =
      typeof x509['validity_months'] === 'number' && x509['validity_months'] > 0
        ? x509['validity_months']
        : 12;
    const tags = checkTags(body['tags']) ?? {};
    const key = name.toLowerCase();
    if (vault.secrets.get(key)?.deleted)
      throw fail(
        409,
        'Conflict',
        `Certificate ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the certificate can only be recovered or purged.`,
        'ObjectIsDeletedButRecoverable',
      );
    const now = state.now();
    const notAfter = new Date(now.getTime());
    notAfter.setUTCMonth(notAfter.getUTCMonth() + months);
    const minted = mintCertificate(subject.replace(/^CN=/i, ''), new Date(now.getTime() - 60_000), notAfter);
    const version = newVersion();
    const exportable = keyProps['exportable'] === true;
    const certificate = vault.certificates.get(key) ?? { name, versions: [] };
    const created = seconds(state);
    certificate.versions.push({
      version,
      cer: minted.derBase64,
      x5t: Buffer.from(minted.thumbprint, 'hex').toString('base64url'),
      nbf: Math.floor(minted.notBefore.getTime() / 1000),
      exp: Math.floor(minted.notAfter.getTime() / 1000),
      created,
      updated: created,
      tags,
      policy: {
        ...policy,
        key_props: { exportable, kty: 'RSA', key_size: 2048, reuse_key: false, ...keyProps },
        secret_props: { contentType },
      },
    });
    certificate.operation = {
      requestId: randomUUID().replace(/-/g, ''),
      status: 'inProgress',
      version,
      issuer,
    };
    vault.certificates.set(key, certificate);
    const secret = vault.secrets.get(key) ?? { name, versions: [] };
    secret.versions.push({
      version,
      value: exportable ? `${minted.keyPem}${minted.certPem}` : minted.certPem,
      contentType,
      tags,
      enabled: true,
      created,
      updated: created,
      nbf: Math.floor(minted.notBefore.getTime() / 1000),
      exp: Math.floor(minted.notAfter.getTime() / 1000),
      managedKid: `${vaultUrl()}keys/${name}/${version}`,
    });
    vault.secrets.set(key, secret);
    res.status(202).json(operationJson(certificate));
    // Self-signed: done by the time anyone asks.
    certificate.operation.status = 'completed';
  }

  function liveCertificate(name: string): VaultCertificate {
    const c = vault.certificates.get(name.toLowerCase());
    if (!c || vault.secrets.get(name.toLowerCase())?.deleted) throw certificateNotFound(name);
    return c;
  }

  function getPending(res: Response, rawName: string): void {
    const name = checkName(rawName);
    authorize(res, CERTIFICATE_ACTIONS.read, `/certificates/${name}`);
    const c = liveCertificate(name);
    if (!c.operation) throw fail(404, 'PendingCertificateNotFound', 'Pending certificate not found');
    res.status(200).json(operationJson(c));
  }

  function getCertificate(res: Response, rawName: string, version: string): void {
    const name = checkName(rawName);
    authorize(res, CERTIFICATE_ACTIONS.read, `/certificates/${name}`);
    const c = liveCertificate(name);
    const v =
      version === ''
        ? c.versions[c.versions.length - 1]
        : c.versions.find((x) => x.version.toLowerCase() === version.toLowerCase());
    if (!v) throw certificateNotFound(version ? `${name}/${version}` : name);
    res.status(200).json(certificateBundle(c, v));
  }

  function listCertificateVersions(req: Request, res: Response, rawName: string): void {
    const name = checkName(rawName);
    authorize(res, CERTIFICATE_ACTIONS.read, `/certificates/${name}`);
    const c = liveCertificate(name);
    res.status(200).json(
      page(req, `certificates/${c.name}/versions`, c.versions, (v) => {
        const { id, x5t, attributes, tags } = certificateBundle(c, v);
        return { id, x5t, attributes, ...(tags ? { tags } : {}) };
      }),
    );
  }

  /** Routes one request; paths are case-insensitive like the real service. */
  function dispatch(req: Request, res: Response): void {
    const parts = req.path.split('/').slice(1);
    const collection = (parts[0] ?? '').toLowerCase();
    const method = req.method;
    const name = parts[1];
    const third = parts[2];

    if (collection === 'secrets') {
      if (parts.length === 1 || (parts.length === 2 && name === '')) {
        if (method === 'GET') return listSecrets(req, res);
      } else if (name !== undefined && parts.length === 2) {
        if (method === 'PUT') return setSecret(req, res, name);
        if (method === 'DELETE') return deleteSecret(res, name);
        if (method === 'GET') return getSecret(res, name, '');
        if (method === 'PATCH') return updateSecret(req, res, name, '');
      } else if (name !== undefined && third !== undefined && parts.length === 3) {
        if (method === 'GET' && third.toLowerCase() === 'versions') return listVersions(req, res, name);
        if (method === 'GET') return getSecret(res, name, third);
        if (method === 'PATCH') return updateSecret(req, res, name, third);
      }
    } else if (collection === 'certificates' && name !== undefined && name !== '') {
      const sub = (third ?? '').toLowerCase();
      if (parts.length === 3 && sub === 'create' && method === 'POST')
        return createCertificate(req, res, name);
      if (parts.length === 3 && sub === 'pending' && method === 'GET') return getPending(res, name);
      if (parts.length === 3 && sub === 'versions' && method === 'GET')
        return listCertificateVersions(req, res, name);
      if (parts.length === 2 && method === 'GET') return getCertificate(res, name, '');
      if (parts.length === 3 && method === 'GET') return getCertificate(res, name, third ?? '');
    } else if (collection === 'deletedsecrets') {
      if (parts.length === 1 || (parts.length === 2 && name === '')) {
        if (method === 'GET') return listDeleted(req, res);
      } else if (name !== undefined && parts.length === 2) {
        if (method === 'GET') return getDeleted(res, name);
        if (method === 'DELETE') return purgeDeleted(res, name);
      } else if (name !== undefined && parts.length === 3 && third?.toLowerCase() === 'recover') {
        if (method === 'POST') return recoverDeleted(res, name);
      }
    }
    // Backup/restore, keys, certificate policies, issuers and anything else: not part of this sandbox.
    throw fail(404, 'NotFound', `The sandbox vault does not serve ${method} ${req.path}.`);
  }

  function sendFailure(res: Response, err: unknown): void {
    if (err instanceof KvFailure) {
      res.status(err.status).json(err.body);
      return;
    }
    res.status(500).json(kvError('InternalServerError', 'The sandbox vault failed to process the request.'));
  }

  return {
    name: 'keyvault',
    formatError: (_status, code, message) => kvError(code, message),
    mount: (app) => {
      // Headers every Key Vault answer carries.
      app.use((_req: Request, res: Response, next: NextFunction) => {
        res.setHeader('Cache-Control', 'no-cache');
        res.setHeader('Pragma', 'no-cache');
        res.setHeader('Expires', '-1');
        res.setHeader('x-ms-keyvault-region', REGION);
        res.setHeader('x-ms-request-id', randomUUID());
        res.setHeader('x-ms-keyvault-service-version', '1.9.0.0');
        next();
      });

      // Authentication first: the SDK's first request carries neither token nor body.
      app.use((req: Request, res: Response, next: NextFunction) => {
        const challenge = `Bearer authorization="${ctx.urls.authority}/${state.tenantId}", resource="${AUDIENCES.keyvault}"`;
        const check = tokens.verifyBearer(req.headers.authorization, AUDIENCES.keyvault);
        if (check.ok) {
          const c = check.claims;
          res.locals['caller'] = c.sbx;
          res.locals['kvCaller'] = { key: c.sbx, appid: c.appid, oid: c.oid, iss: c.iss } satisfies Caller;
          return next();
        }
        res.setHeader('WWW-Authenticate', challenge);
        let message: string;
        switch (check.reason) {
          case 'missing':
            message = MSG_MISSING_TOKEN;
            break;
          case 'audience': {
            const aud = check.message.replace(/^Invalid audience '(.*)'\.$/, '$1');
            message = `AKV10022: Invalid audience. Expected ${AUDIENCES.keyvault}, found: ${aud}.`;
            break;
          }
          case 'tenant':
            message = `AKV10032: Invalid issuer. Expected one of https://sts.windows.net/${state.tenantId}/.`;
            break;
          default:
            // Wording not confirmed against the real service.
            message = `AKV10046: Token validation failed: ${check.message}`;
        }
        res.status(401).json(kvError('Unauthorized', message));
      });

      // api-version is required; any value is accepted. Message not confirmed against the real service.
      app.use((req: Request, res: Response, next: NextFunction) => {
        const v = req.query['api-version'];
        if (typeof v === 'string' && v.trim() !== '') return next();
        res.status(400).json(kvError('BadParameter', 'The request URI contains an invalid api-version.'));
      });

      app.use(express.json({ limit: '1mb' }));

      app.use((req: Request, res: Response) => {
        try {
          sweep();
          dispatch(req, res);
        } catch (err) {
          sendFailure(res, err);
        }
      });

      // Body parser errors (malformed JSON, too large).
      app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
        const status = (err as { status?: number }).status;
        if (status === 413) return sendFailure(res, badParameter(MSG_INVALID_PROPERTY));
        if (status === 400) return sendFailure(res, badParameter('The request body is not valid JSON.'));
        sendFailure(res, err);
      });
    },
  };
}
