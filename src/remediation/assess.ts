/**
 * Assessment (pure): what state one discovered connection is in, which credential of its app it
 * uses, when that credential ends, and why it is broken. No I/O: the caller reads the connection,
 * the app (Graph), the rotation record (Key Vault) and optionally the password policy and a
 * TestConnection result, then decides here. `plan` turns the result into an action.
 *
 * Here: the assembly (the tenant, the kind of connection, its app). The judgements by credential:
 * assessSecret.ts (client secrets), assessCertificate.ts (certificates); the credential picks and
 * their valid/expiring/expired state: credentialInUse.ts.
 */
import { assessCertificate } from './assessCertificate';
import { assessSecret } from './assessSecret';
import { sameId, type CredentialInUse, type CredentialState } from './credentialInUse';
import {
  diagnoseConnection,
  diagnoseError,
  diagnosisOf,
  hasBrokenAccessToken,
  otherTenantDiagnosis,
  tenantAccessDiagnosis,
} from './diagnosis';
import type {
  ApplicationInfo,
  RecordState,
  PasswordPolicy,
  ProjectRef,
  RotationPhase,
  RotationRecord,
  ServiceConnection,
  TestConnectionResult,
} from './ports';
import type { CredentialSource, Diagnosis, Finding } from './report';
import { isConfiguredTenant } from './tenants';
import { connectionDataField, connectionParam } from './transform';
import { GUID } from '../guid';

/** The app could not be read (permission, throttling, outage): distinct from "does not exist". */
export interface AppLookupError {
  error: { message: string; status?: number; code?: string; service?: string };
}

/** What the Graph lookup by client id gave: the app, `undefined` (no such app), or an error. */
export type AppLookup = ApplicationInfo | undefined | AppLookupError;

/** Whether the Graph lookup failed (as opposed to finding the app or finding that it does not exist). */
export function isAppLookupError(app: AppLookup): app is AppLookupError {
  return app !== undefined && 'error' in app;
}

export interface AssessSettings {
  /** A credential ending within this many days is `expiring`. */
  rotateDaysBeforeExpiry: number;
  /** Superseded credentials are removed this long after verification. */
  oldSecretRetentionHours: number;
  /** The tenant this service manages apps in (`AZURE_TENANT_ID`); connections of other tenants are unsupported. */
  tenantId?: string;
  /**
   * Other tenants this service manages apps in too (`ADDITIONAL_TENANT_IDS`, through the multi-tenant
   * app): their connections are assessed like the home tenant's, their app read in their own tenant.
   */
  additionalTenantIds?: string[];
}

export interface AssessInput {
  connection: ServiceConnection;
  organizationUrl: string;
  /** Organization name (config's `organizations[].name`); derived from the URL when absent. */
  organization?: string;
  /** Projects the connection is shared with. */
  projects: ProjectRef[];
  app: AppLookup;
  /** The connection's Key Vault rotation record, if any. */
  record: RotationRecord | undefined;
  settings: AssessSettings;
  now: Date;
  /** A TestConnection (Verify) result, when the caller ran one. */
  test?: TestConnectionResult;
  /** The app's password policy, when the caller read it. */
  passwordPolicy?: PasswordPolicy;
  /** When `record` is undefined: what Key Vault holds instead (soft-deleted, or an intent only). */
  missingRecord?: RecordState;
}

/** What `assess` hands the judgement by credential (assessSecret.ts, assessCertificate.ts). */
export interface AppFound {
  input: AssessInput;
  /** The assessment so far; the judgement adds its notes. */
  base: Assessment;
  /** Completes the assessment with what the judgement found. */
  done: (a: Partial<Assessment>) => Assessment;
  /** The connection's app, read through Graph. */
  app: ApplicationInfo;
  /** What the connection itself tells (`diagnoseConnection`), if anything. */
  diagnosis: Diagnosis | undefined;
}

/** A rotation this service started and has not completed (resume it). */
export interface PendingRotation {
  phase: Exclude<RotationPhase, 'completed'>;
  rotationId: string;
  /** The new credential. */
  keyId: string;
  expiresAt: string;
  /** For `verified`: when the superseded credentials may be removed. */
  cleanupDueAt?: string;
  /** For `verified`: the retention period has passed. */
  cleanupDue: boolean;
}

export interface Assessment {
  organization: string;
  organizationUrl: string;
  projects: ProjectRef[];
  connectionId: string;
  connectionName: string;
  scheme: string;
  authenticationType?: string;
  creationMode?: string;
  /** `serviceprincipalid`; null when the connection names no app. */
  appId: string | null;
  /** The app's object id, when Graph found it. */
  applicationObjectId?: string;
  /** `tenantid` of the connection. */
  connectionTenantId?: string;
  /** `tenantid` of the connection when it is not this service's home tenant (`AZURE_TENANT_ID`). */
  appTenantId?: string;
  isReady: boolean;
  operationState?: string;
  finding: Finding;
  credentialSource: CredentialSource;
  credential?: CredentialInUse;
  /** End of the credential in use (ISO), when known. */
  secretExpiresAt?: string;
  /** `accesstoken` present with a null or empty value. */
  accessTokenBroken: boolean;
  diagnosis?: Diagnosis;
  /** The connection needs a secret it does not have working: expired, expiring, rejected, or none exists. */
  needsNewSecret: boolean;
  /** Entra ID or Azure DevOps says the stored secret is bad (invalid, expired, missing). */
  secretRejected: boolean;
  pending?: PendingRotation;
  /**
   * Key Vault holds a secret this service verified for this connection whose credential still
   * exists on the app and is valid: a connection that lost it can get it back without a new one.
   */
  verifiedSecret?: { rotationId: string; keyId: string; expiresAt: string };
  /**
   * For a certificate connection: Key Vault holds a certificate (with its key) this service verified
   * for it whose keyCredential still exists on the app and is valid — what a conversion falls back on.
   */
  verifiedCertificate?: { rotationId: string; keyId: string; expiresAt: string };
  /** Credentials marked for this connection that no rotation record accounts for (crash between Graph and Key Vault). */
  orphanKeyIds: string[];
  /**
   * Credentials the connection is known to use now (recorded, marked, or the only one of a working
   * connection): a rotation supersedes them. Empty when only guessed.
   */
  previousKeyIds: string[];
  /** The usable Key Vault record (same connection and app), if any. */
  record?: RotationRecord;
  passwordPolicy?: PasswordPolicy;
  /** Facts worth showing an operator (ignored record, orphan, policy cap, …). */
  notes: string[];
  /**
   * The rotation state is missing (DESIGN invariant 10): `soft-deleted` until a run recovers it,
   * `lost` when marked credentials of the connection are live and no record accounts for them.
   */
  recordState?: 'soft-deleted' | 'lost';
  /** For `lost`: the marked credentials no record accounts for (never removed). */
  lostKeyIds?: string[];
  /** The connection's tenant when it is not this service's: its app is out of reach (never retired). */
  foreignTenant?: string;
  /**
   * A certificate-based connection (`authenticationType: spnCertificate`): the certificate of its
   * app it is judged by (the earliest-ending one still valid, else the latest-ending), when any.
   */
  certificate?: {
    keyId: string;
    thumbprint: string | null;
    endDateTime: string | null;
    state: CredentialState;
    daysLeft?: number;
  };
}

/**
 * The organization name from its URL, as config derives it: `https://dev.azure.com/contoso` →
 * `contoso`, `https://contoso.visualstudio.com` → `contoso`, otherwise the last path segment.
 * (Kept here, not imported from config, so the pure core loads no validation library.)
 */
export function organizationName(organizationUrl: string): string {
  let url: URL;
  try {
    url = new URL(organizationUrl);
  } catch {
    return organizationUrl;
  }
  const host = url.hostname.toLowerCase();
  const segments = url.pathname.split('/').filter((s) => s !== '');
  const raw = host.endsWith('.visualstudio.com')
    ? host.slice(0, -'.visualstudio.com'.length)
    : host === 'dev.azure.com'
      ? segments[0]
      : segments[segments.length - 1];
  if (raw === undefined || raw === '') return organizationUrl;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * Assesses one connection. `healthy` only with evidence of a credential lasting past the window.
 * Decides, in this order:
 * 1. the connection's tenant is neither this service's tenant nor one of `additionalTenantIds` →
 *    `unsupported`, naming both tenants,
 *    whatever its scheme or state (its app is out of reach; never app-missing, never retired);
 * 2. a certificate connection → judged by its app's certificates (`assessCertificate`); workload
 *    identity federation or managed identity → `healthy` when ready, else `unsupported`; any other
 *    scheme, authentication type or connection type → `unsupported` (no evidence it works);
 * 3. the app cannot be read → `error`; does not exist (or the connection names none) → `app-missing`;
 * 4. (`assessSecret`) which credential the connection uses: exactly, from the Key Vault record
 *    when this service rotated it (the previous one while a rotation is only `created`); otherwise inferred — a
 *    credential marked for this connection, else the only one, else the earliest-ending valid one — ignoring
 *    credentials marked for other connections and orphans, and flagged `inferred`;
 * 5. `expired` (credential ended, or Entra says AADSTS7000222) → `not-ready` (not ready, a failed
 *    Verify, a broken `accesstoken`, a rejected secret, or no credential at all) → `expiring`
 *    (ends within `rotateDaysBeforeExpiry` days) → `healthy`;
 * 6. a new secret is needed but the app's policy forbids new passwords → `blocked-by-policy`
 *    (unless a rotation already created its credential, or a verified Key Vault secret can be
 *    re-applied instead).
 * Alongside: a rotation in phase created/applied/verified is reported as `pending` (resume or
 * clean up), orphans of a crash between Graph and Key Vault are listed, and the credentials known to
 * be in use are listed as `previousKeyIds` for the rotation to supersede.
 */
export function assess(input: AssessInput): Assessment {
  const { connection, settings } = input;
  const scheme = connection.authorization.scheme;
  const authenticationType = connectionParam(connection, 'authenticationType');
  const appId = connectionParam(connection, 'serviceprincipalid') ?? null;
  const connectionTenantId = connectionParam(connection, 'tenantid');
  const accessTokenBroken = hasBrokenAccessToken(connection);
  const diagnosis = diagnoseConnection(connection, input.test);
  const notes: string[] = [];

  const base: Assessment = {
    organization: input.organization ?? organizationName(input.organizationUrl),
    organizationUrl: input.organizationUrl,
    projects: input.projects,
    connectionId: connection.id,
    connectionName: connection.name,
    scheme,
    authenticationType,
    creationMode: connectionDataField(connection, 'creationMode'),
    appId,
    connectionTenantId,
    appTenantId:
      settings.tenantId !== undefined &&
      connectionTenantId !== undefined &&
      GUID.test(connectionTenantId) &&
      !sameId(settings.tenantId, connectionTenantId)
        ? connectionTenantId
        : undefined,
    isReady: connection.isReady,
    operationState: connection.operationStatus?.state,
    finding: 'healthy',
    credentialSource: 'unknown',
    accessTokenBroken,
    diagnosis,
    needsNewSecret: false,
    secretRejected: false,
    orphanKeyIds: [],
    previousKeyIds: [],
    passwordPolicy: input.passwordPolicy,
    notes,
  };
  const done = (a: Partial<Assessment>): Assessment => dropUndefined({ ...base, ...a });

  // 1. Another tenant's app is out of this service's reach, whatever the connection's scheme or
  // state: never healthy (nothing here can see its credential), never app-missing (this tenant's
  // Graph not finding it says nothing), never retired (see `foreignTenant`).
  if (
    settings.tenantId !== undefined &&
    connectionTenantId !== undefined &&
    GUID.test(settings.tenantId) &&
    GUID.test(connectionTenantId) &&
    !sameId(settings.tenantId, connectionTenantId) &&
    !isConfiguredTenant(connectionTenantId, settings.additionalTenantIds)
  ) {
    notes.push(
      `The connection's app lives in tenant ${connectionTenantId}; this service manages apps in tenant ${settings.tenantId} only.`,
    );
    return done({
      finding: 'unsupported',
      foreignTenant: connectionTenantId,
      diagnosis: otherTenantDiagnosis(connectionTenantId, settings.tenantId),
    });
  }

  // 2. Only client-secret connections can be rotated. Certificates are judged by their end date;
  // workload identity federation and managed identity have no credential that ends (healthy while
  // ready); anything unfamiliar is unsupported, never healthy: there is no evidence it works.
  const type = connection.type.toLowerCase();
  const schemeName = scheme.toLowerCase();
  const authType = authenticationType?.toLowerCase();
  const certificateBased =
    type === 'azurerm' && schemeName === 'serviceprincipal' && authType === 'spncertificate';
  const secretBased =
    type === 'azurerm' &&
    schemeName === 'serviceprincipal' &&
    (authType === undefined || authType === 'spnkey');
  if (certificateBased)
    notes.push('Uses a certificate: rotated through a Key Vault certificate when it expires.');
  else if (!secretBased) {
    const familiar =
      type === 'azurerm' &&
      (schemeName === 'workloadidentityfederation' || schemeName === 'managedserviceidentity');
    const what =
      type !== 'azurerm'
        ? `type '${connection.type}'`
        : schemeName === 'serviceprincipal'
          ? `authentication type '${authenticationType ?? ''}'`
          : `scheme '${scheme}'`;
    notes.push(`Uses ${what}: no client secret to rotate.`);
    if (familiar) return done({ finding: connection.isReady ? 'healthy' : 'unsupported' });
    return done({
      finding: 'unsupported',
      diagnosis: diagnosis ?? diagnosisOf('unsupported-authentication'),
    });
  }

  // 3. The app, which certificate and secret connections alike are judged by (the notes on a
  // missing or unreadable app have only ever been a secret-based connection's).
  if (appId === null) {
    if (secretBased) notes.push('The connection names no service principal id (serviceprincipalid).');
    return done({ finding: 'app-missing', diagnosis: diagnosis ?? diagnosisOf('app-not-found') });
  }
  if (isAppLookupError(input.app)) {
    if (secretBased) notes.push('The app could not be read through Microsoft Graph.');
    // In another configured tenant an Entra error is about the service's own token there (consent),
    // not about the connection's app.
    const aadsts = /AADSTS\d+/.exec(`${input.app.error.code ?? ''} ${input.app.error.message}`)?.[0];
    if (
      aadsts &&
      connectionTenantId &&
      !sameId(settings.tenantId, connectionTenantId) &&
      isConfiguredTenant(connectionTenantId, settings.additionalTenantIds)
    )
      return done({ finding: 'error', diagnosis: tenantAccessDiagnosis(connectionTenantId, aadsts) });
    return done({ finding: 'error', diagnosis: diagnoseError(input.app.error) });
  }
  const app = input.app;
  if (app === undefined) {
    const d = diagnosis?.kind === 'app-not-found' ? diagnosis : diagnosisOf('app-not-found');
    return done({ finding: 'app-missing', diagnosis: d });
  }
  base.applicationObjectId = app.id;

  // 4.–6. The credential it is judged by.
  const found: AppFound = { input, base, done, app, diagnosis };
  return certificateBased ? assessCertificate(found) : assessSecret(found);
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
