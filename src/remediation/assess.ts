/**
 * Assessment (pure): what state one discovered connection is in, which credential of its app it
 * uses, when that credential ends, and why it is broken. No I/O: the caller reads the connection,
 * the app (Graph), the rotation record (Key Vault) and optionally the password policy and a
 * TestConnection result, then decides here. `plan` turns the result into an action.
 */
import {
  diagnoseConnection,
  diagnoseError,
  diagnosisOf,
  hasBrokenAccessToken,
  otherTenantDiagnosis,
} from './diagnosis';
import { judgeMarked } from './orphans';
import type {
  ApplicationInfo,
  CertificateCredentialInfo,
  RecordState,
  PasswordCredentialInfo,
  PasswordPolicy,
  ProjectRef,
  RotationPhase,
  RotationRecord,
  ServiceConnection,
  TestConnectionResult,
} from './ports';
import type { CredentialSource, Diagnosis, DiagnosisKind, Finding } from './report';
import { connectionDataField, connectionParam, isMarkedFor, parseMarker } from './transform';

const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;

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

/** How the credential in use was identified. */
export type CredentialBasis =
  /** The Key Vault record's key id (this service rotated it). */
  | 'record'
  /** A credential marked for this connection by this service (record lost). */
  | 'marker'
  /** The only credential of the app the connection could use. */
  | 'only-credential'
  /**
   * Several could be in use: the earliest-ending one still valid (a pessimistic guess: judging a
   * connection healthy on another consumer's longer-lived password would let it expire unnoticed,
   * while an unneeded rotation costs nothing). All ended: the latest-ending.
   */
  | 'earliest-unexpired';

export type CredentialState = 'valid' | 'expiring' | 'expired';

export interface CredentialInUse {
  keyId: string;
  displayName: string | null;
  hint: string | null;
  endDateTime: string | null;
  source: Exclude<CredentialSource, 'unknown'>;
  basis: CredentialBasis;
  /** Why this credential, in words. */
  reason: string;
  state: CredentialState;
  /** Whole days until it ends (negative when it has ended); undefined when it never ends. */
  daysLeft?: number;
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

const SECRET_PROBLEMS: readonly DiagnosisKind[] = ['invalid-secret', 'expired-secret', 'missing-secret'];

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

function endMs(c: PasswordCredentialInfo): number {
  if (c.endDateTime === null) return Number.POSITIVE_INFINITY;
  const t = Date.parse(c.endDateTime);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/** The earliest-ending credential still valid at `now`, else the latest-ending (ties: latest start). */
function earliestUnexpired(
  creds: readonly PasswordCredentialInfo[],
  now: Date,
): PasswordCredentialInfo | undefined {
  const alive = creds.filter((c) => endMs(c) > now.getTime());
  if (alive.length === 0) return latestEnding(creds);
  return [...alive].sort(
    (a, b) =>
      endMs(a) - endMs(b) ||
      Date.parse(b.startDateTime ?? '') - Date.parse(a.startDateTime ?? '') ||
      a.keyId.localeCompare(b.keyId),
  )[0];
}

/** The latest-ending credential (no end counts as latest; ties: latest start). */
function latestEnding(creds: readonly PasswordCredentialInfo[]): PasswordCredentialInfo | undefined {
  return [...creds].sort(
    (a, b) =>
      endMs(b) - endMs(a) ||
      Date.parse(b.startDateTime ?? '') - Date.parse(a.startDateTime ?? '') ||
      a.keyId.localeCompare(b.keyId),
  )[0];
}

/**
 * Where a credential stands: `expired` when its end is at or before `now`; `expiring` when it ends
 * within `rotateDays` days (the boundary itself included); `valid` otherwise, or when it never ends.
 */
export function credentialState(
  endDateTime: string | null,
  now: Date,
  rotateDays: number,
): { state: CredentialState; daysLeft?: number } {
  if (endDateTime === null) return { state: 'valid' };
  const end = Date.parse(endDateTime);
  if (Number.isNaN(end)) return { state: 'expired' };
  const left = end - now.getTime();
  const daysLeft = Math.floor(left / DAY_MS);
  if (left <= 0) return { state: 'expired', daysLeft };
  if (left <= rotateDays * DAY_MS) return { state: 'expiring', daysLeft };
  return { state: 'valid', daysLeft };
}

function inUse(
  c: PasswordCredentialInfo,
  source: 'recorded' | 'inferred',
  basis: CredentialBasis,
  reason: string,
  now: Date,
  rotateDays: number,
): CredentialInUse {
  return {
    keyId: c.keyId,
    displayName: c.displayName,
    hint: c.hint,
    endDateTime: c.endDateTime,
    source,
    basis,
    reason,
    ...credentialState(c.endDateTime, now, rotateDays),
  };
}

const sameId = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Assesses one connection. `healthy` only with evidence of a credential lasting past the window.
 * Decides, in this order:
 * 1. the connection's tenant is not this service's tenant → `unsupported`, naming both tenants,
 *    whatever its scheme or state (its app is out of reach; never app-missing, never retired);
 * 2. a certificate connection → judged by its app's certificates (`assessCertificate`); workload
 *    identity federation or managed identity → `healthy` when ready, else `unsupported`; any other
 *    scheme, authentication type or connection type → `unsupported` (no evidence it works);
 * 3. the app cannot be read → `error`; does not exist (or the connection names none) → `app-missing`;
 * 4. which credential the connection uses: exactly, from the Key Vault record when this service
 *    rotated it (the previous one while a rotation is only `created`); otherwise inferred — a
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
  const { connection, settings, now } = input;
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
    !sameId(settings.tenantId, connectionTenantId)
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
  if (type === 'azurerm' && schemeName === 'serviceprincipal' && authType === 'spncertificate')
    return assessCertificate(input, base, done, appId, diagnosis);
  const secretBased =
    type === 'azurerm' &&
    schemeName === 'serviceprincipal' &&
    (authType === undefined || authType === 'spnkey');
  if (!secretBased) {
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

  // 3. The app.
  if (appId === null) {
    notes.push('The connection names no service principal id (serviceprincipalid).');
    return done({ finding: 'app-missing', diagnosis: diagnosis ?? diagnosisOf('app-not-found') });
  }
  if (isAppLookupError(input.app)) {
    notes.push('The app could not be read through Microsoft Graph.');
    return done({ finding: 'error', diagnosis: diagnoseError(input.app.error) });
  }
  const app = input.app;
  if (app === undefined) {
    const d = diagnosis?.kind === 'app-not-found' ? diagnosis : diagnosisOf('app-not-found');
    return done({ finding: 'app-missing', diagnosis: d });
  }
  base.applicationObjectId = app.id;

  // 4. The rotation record, if it is about this connection and app.
  let record = input.record;
  if (record && (!sameId(record.connectionId, connection.id) || !sameId(record.appId, app.appId))) {
    notes.push(
      `Ignored the Key Vault record of rotation ${record.rotationId}: it is for app ${record.appId}, the connection now uses app ${app.appId}.`,
    );
    record = undefined;
  }
  const creds = app.passwordCredentials;
  const byKey = (keyId: string) => creds.find((c) => sameId(c.keyId, keyId));
  const rotateDays = settings.rotateDaysBeforeExpiry;

  let pending: PendingRotation | undefined;
  if (record && record.phase !== 'completed') {
    if (byKey(record.keyId)) {
      const verifiedAt = record.verifiedAt ?? record.appliedAt ?? record.createdAt;
      const dueMs = Date.parse(verifiedAt) + settings.oldSecretRetentionHours * HOUR_MS;
      pending = {
        phase: record.phase,
        rotationId: record.rotationId,
        keyId: record.keyId,
        expiresAt: record.expiresAt,
        cleanupDue: record.phase === 'verified' && !(now.getTime() < dueMs),
        ...(record.phase === 'verified' && !Number.isNaN(dueMs)
          ? { cleanupDueAt: new Date(dueMs).toISOString() }
          : {}),
      };
    } else {
      notes.push(
        `Rotation ${record.rotationId} stopped in phase '${record.phase}', but its credential ${record.keyId} no longer exists on the app: it cannot be resumed.`,
      );
    }
  }

  // Orphans: marked for this connection, and provably never stored in Key Vault (see orphans.ts);
  // other marked credentials with no record are a lost state, never orphans.
  const marked = creds.filter((c) => isMarkedFor(c.displayName, connection.id));
  const foreign = creds.filter(
    (c) => parseMarker(c.displayName) !== undefined && !isMarkedFor(c.displayName, connection.id),
  );
  const judged = judgeMarked(creds, connection.id, {
    record: input.record,
    intent: input.missingRecord?.intent,
    softDeleted: input.missingRecord?.softDeleted,
    now,
  });
  const orphans = judged.orphans;
  if (orphans.length > 0)
    notes.push(
      `Credential(s) ${orphans.map((c) => c.keyId).join(', ')} carry this connection's marker but no rotation record accounts for them (an interrupted rotation).`,
    );

  // 5. The credential in use.
  let credential: CredentialInUse | undefined;
  if (record) {
    if (record.phase === 'created') {
      const previous = latestEnding(
        record.previousKeyIds.map(byKey).filter((c): c is PasswordCredentialInfo => c !== undefined),
      );
      if (previous)
        credential = inUse(
          previous,
          'recorded',
          'record',
          `recorded as in use before rotation ${record.rotationId}, which is not applied yet`,
          now,
          rotateDays,
        );
    } else {
      const current = byKey(record.keyId);
      if (current)
        credential = inUse(
          current,
          'recorded',
          'record',
          `written by rotation ${record.rotationId}`,
          now,
          rotateDays,
        );
      else notes.push(`The recorded credential ${record.keyId} no longer exists on the app.`);
    }
  }
  if (!credential) {
    const orphanKeys = new Set(orphans.map((c) => c.keyId));
    const pendingKey = pending?.phase === 'created' ? pending.keyId.toLowerCase() : undefined;
    const candidates = creds.filter(
      (c) => !foreign.includes(c) && !orphanKeys.has(c.keyId) && c.keyId.toLowerCase() !== pendingKey,
    );
    const ours = candidates.filter((c) => marked.includes(c));
    const pick =
      ours.length > 0
        ? {
            c: latestEnding(ours),
            basis: 'marker' as const,
            reason: 'created by this service for this connection',
          }
        : candidates.length === 1
          ? { c: candidates[0], basis: 'only-credential' as const, reason: 'the only credential of the app' }
          : {
              c: earliestUnexpired(candidates, now),
              basis: 'earliest-unexpired' as const,
              reason: `the earliest-ending valid one of ${candidates.length} credentials (a pessimistic guess)`,
            };
    if (pick.c) credential = inUse(pick.c, 'inferred', pick.basis, pick.reason, now, rotateDays);
  }

  // What the connection is known to use (a rotation supersedes these).
  const previousKeyIds =
    credential &&
    (credential.source === 'recorded' ||
      credential.basis === 'marker' ||
      (credential.basis === 'only-credential' && connection.isReady && !accessTokenBroken))
      ? [credential.keyId]
      : [];

  // A verified Key Vault secret whose credential is alive and not due for rotation.
  let verifiedSecret: Assessment['verifiedSecret'];
  if (record && (record.phase === 'verified' || record.phase === 'completed')) {
    const c = byKey(record.keyId);
    if (c && credentialState(c.endDateTime, now, rotateDays).state === 'valid')
      verifiedSecret = { rotationId: record.rotationId, keyId: record.keyId, expiresAt: record.expiresAt };
  }

  const secretRejected = diagnosis !== undefined && SECRET_PROBLEMS.includes(diagnosis.kind);
  const noCredential = credential === undefined;
  const testFailed = input.test !== undefined && !input.test.ok;
  const expired = credential?.state === 'expired' || diagnosis?.kind === 'expired-secret';
  const notReady = !connection.isReady || testFailed || accessTokenBroken || secretRejected || noCredential;

  let finding: Finding = expired
    ? 'expired'
    : notReady
      ? 'not-ready'
      : credential?.state === 'expiring'
        ? 'expiring'
        : 'healthy';
  let findingDiagnosis = diagnosis;
  if (noCredential && !findingDiagnosis) {
    findingDiagnosis = {
      ...diagnosisOf('missing-secret'),
      cause: 'The app has no client secret this connection could be using.',
    };
  }

  const needsNewSecret =
    expired ||
    noCredential ||
    credential?.state === 'expiring' ||
    (secretRejected && verifiedSecret === undefined);
  const creationPending = pending !== undefined && pending.phase !== 'verified';

  // 6. Policy.
  const policy = input.passwordPolicy;
  if (needsNewSecret && !creationPending && policy?.additionBlocked) {
    finding = 'blocked-by-policy';
    findingDiagnosis = diagnosisOf('password-policy');
  }
  if (policy?.maxLifetimeDays !== undefined && policy.maxLifetimeDays <= rotateDays)
    notes.push(
      `The app's policy caps new secrets at ${policy.maxLifetimeDays} days, not more than ROTATE_DAYS_BEFORE_EXPIRY (${rotateDays}): every new secret will be due for rotation at once.`,
    );
  if (credential?.source === 'inferred')
    notes.push(`Credential in use inferred: ${credential.keyId}, ${credential.reason}.`);

  // Missing state is unknown state (invariant 10): neither healthy nor a reason to act on inference.
  let recordState: Assessment['recordState'];
  if (input.missingRecord?.softDeleted) {
    recordState = 'soft-deleted';
    finding = 'error';
    findingDiagnosis = diagnosisOf('rotation-state-deleted');
    notes.push("The connection's Key Vault record is soft-deleted; it is recovered before anything else.");
  } else if (judged.lost.length > 0) {
    recordState = 'lost';
    finding = 'error';
    const ids = judged.lost.map((c) => c.keyId).join(', ');
    const rotations = judged.lost.map((c) => parseMarker(c.displayName)?.rotationId ?? '?').join(', ');
    const d = diagnosisOf('rotation-state-lost');
    findingDiagnosis = {
      ...d,
      cause: `Rotation state lost: credential(s) ${ids} carry this service's marker for this connection (rotation ${rotations}) but no Key Vault record exists (deleted and purged, or another vault). Whether the connection uses them cannot be told, so nothing is removed or rotated.`,
      nextStep: d.nextStep
        .replace('<connectionId>', connection.id)
        .replace('<appId>', app.appId)
        .replace('<keyId>', judged.lost[0]?.keyId ?? ''),
    };
  }

  return done({
    ...(recordState ? { recordState } : {}),
    ...(recordState === 'lost' ? { lostKeyIds: judged.lost.map((c) => c.keyId) } : {}),
    finding,
    credentialSource: credential?.source ?? 'unknown',
    credential,
    secretExpiresAt: credential?.endDateTime ?? undefined,
    diagnosis: findingDiagnosis,
    needsNewSecret,
    secretRejected,
    pending,
    verifiedSecret,
    orphanKeyIds: orphans.map((c) => c.keyId),
    previousKeyIds,
    record,
  });
}

/** Certificates an app signs its client assertions with (Graph keyCredential `type`/`usage`). */
function signingCertificates(app: ApplicationInfo): CertificateCredentialInfo[] {
  return (app.keyCredentials ?? []).filter(
    (k) =>
      (k.type === null || k.type.toLowerCase() === 'asymmetricx509cert') &&
      (k.usage === null || k.usage.toLowerCase() === 'verify'),
  );
}

/**
 * A certificate-based connection, judged by its app's certificates (`keyCredentials`). Azure DevOps
 * never returns the certificate a connection holds, so the pessimistic guess of the passwords
 * applies: the earliest-ending certificate still valid, else the latest-ending. Healthy only when
 * that one lasts past the window and the connection is ready; expiring or expired → `report` with
 * a diagnosis (this service does not rotate certificates); no certificate → never healthy.
 */
function assessCertificate(
  input: AssessInput,
  base: Assessment,
  done: (a: Partial<Assessment>) => Assessment,
  appId: string | null,
  diagnosis: Diagnosis | undefined,
): Assessment {
  const { connection, settings, now } = input;
  base.notes.push('Uses a certificate: this service does not rotate certificates (yet); it reports on them.');
  if (appId === null)
    return done({ finding: 'app-missing', diagnosis: diagnosis ?? diagnosisOf('app-not-found') });
  if (isAppLookupError(input.app))
    return done({ finding: 'error', diagnosis: diagnoseError(input.app.error) });
  if (input.app === undefined)
    return done({
      finding: 'app-missing',
      diagnosis: diagnosis?.kind === 'app-not-found' ? diagnosis : diagnosisOf('app-not-found'),
    });
  base.applicationObjectId = input.app.id;
  const certs = signingCertificates(input.app);
  const asPasswords = certs.map((k) => ({ ...k, hint: null, startDateTime: null }));
  const pick = earliestUnexpired(asPasswords, now);
  if (!pick)
    return done({
      finding: connection.isReady ? 'unsupported' : 'not-ready',
      diagnosis: diagnosisOf('certificate-missing'),
    });
  const { state, daysLeft } = credentialState(pick.endDateTime, now, settings.rotateDaysBeforeExpiry);
  const certificate = dropUndefined({
    keyId: pick.keyId,
    thumbprint: certs.find((k) => k.keyId === pick.keyId)?.thumbprint ?? null,
    endDateTime: pick.endDateTime,
    state,
    daysLeft,
  });
  const which = `certificate ${certificate.thumbprint ?? pick.keyId}${
    certs.length > 1 ? ` (the earliest-ending valid one of ${certs.length}: a pessimistic guess)` : ''
  }`;
  const ends = pick.endDateTime ?? 'never';
  const common = {
    certificate,
    credentialSource: 'inferred' as const,
    secretExpiresAt: pick.endDateTime ?? undefined,
  };
  if (state === 'expired')
    return done({
      ...common,
      finding: 'expired',
      diagnosis: {
        ...diagnosisOf('certificate-expired'),
        cause: `The ${which} ended at ${ends}; this service does not rotate certificates (yet).`,
      },
    });
  if (state === 'expiring')
    return done({
      ...common,
      finding: 'expiring',
      diagnosis: {
        ...diagnosisOf('certificate-expiring'),
        cause: `The ${which} ends at ${ends}, within ${settings.rotateDaysBeforeExpiry} days; this service does not rotate certificates (yet).`,
      },
    });
  const testFailed = input.test !== undefined && !input.test.ok;
  if (!connection.isReady || testFailed)
    return done({ ...common, finding: 'not-ready', diagnosis: diagnosis ?? diagnosisOf('unknown') });
  base.notes.push(`Judged by ${which}, ending ${ends}.`);
  return done({ ...common, finding: 'healthy' });
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
