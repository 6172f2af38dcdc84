/**
 * The interfaces the remediation core owns. Adapters in `src/clients/` implement them with the
 * official SDKs; tests implement them with plain objects. No SDK type appears here.
 */

/** An Azure DevOps project. */
export interface ProjectRef {
  id: string;
  name: string;
}

export interface ServiceEndpointProjectReference {
  projectReference: { id: string; name?: string };
  name: string;
  description?: string;
}

/**
 * A service connection body as Azure DevOps returns it. Kept whole (extra fields included) because
 * the update is a full PUT of what was read, changed only where it must be.
 */
export interface ServiceConnection {
  id: string;
  name: string;
  type: string;
  url?: string;
  description?: string;
  owner?: string;
  data: Record<string, string>;
  authorization: { scheme: string; parameters: Record<string, string | null | undefined> };
  isReady: boolean;
  isShared?: boolean;
  operationStatus?: { state?: string; statusMessage?: string } | null;
  serviceEndpointProjectReferences: ServiceEndpointProjectReference[];
  [extra: string]: unknown;
}

/** Result of the endpointproxy `TestConnection` data source (the UI's Verify button). */
export interface TestConnectionResult {
  ok: boolean;
  /** `ok`, `unauthorized`, `forbidden`, … as Azure DevOps reports it. */
  statusCode: string;
  errorMessage: string;
  /**
   * The Entra ID error code when the sign-in with the stored credential failed, digits only:
   * `7000215` invalid secret, `7000222` expired secret, `700016` app not found, `7000216` no secret.
   */
  aadsts?: string;
}

/** Azure DevOps service endpoints API for one organization URL at a time. */
export interface AzureDevOpsClient {
  listProjects(organizationUrl: string): Promise<ProjectRef[]>;
  /** `type=azurerm&includeFailed=true&includeDetails=true` for one project. */
  listAzureRmConnections(organizationUrl: string, project: string): Promise<ServiceConnection[]>;
  /** GET one connection through a project it is shared with; undefined when it does not exist. */
  getConnection(
    organizationUrl: string,
    project: string,
    connectionId: string,
  ): Promise<ServiceConnection | undefined>;
  /** Organization-level PUT of the full body. */
  updateConnection(
    organizationUrl: string,
    connection: ServiceConnection,
    operation?: string,
  ): Promise<ServiceConnection>;
  deleteConnection(
    organizationUrl: string,
    connectionId: string,
    projectIds: string[],
    deep: boolean,
  ): Promise<void>;
  testConnection(
    organizationUrl: string,
    project: string,
    connection: ServiceConnection,
  ): Promise<TestConnectionResult>;
}

/** A password credential of an app, as Graph lists it (never with its value). */
export interface PasswordCredentialInfo {
  keyId: string;
  displayName: string | null;
  hint: string | null;
  startDateTime: string | null;
  endDateTime: string | null;
}

/**
 * A certificate of an app (Graph `keyCredentials`), without its raw data: what assessment of a
 * certificate-based connection needs.
 */
export interface CertificateCredentialInfo {
  keyId: string;
  displayName: string | null;
  /** `customKeyIdentifier`: the certificate's thumbprint unless set otherwise. */
  thumbprint: string | null;
  endDateTime: string | null;
  /** `AsymmetricX509Cert` for certificates. */
  type: string | null;
  /** `Verify` for certificates the app signs its assertions with. */
  usage: string | null;
}

export interface ApplicationInfo {
  /** Object id. */
  id: string;
  appId: string;
  displayName: string;
  passwordCredentials: PasswordCredentialInfo[];
  /** Certificates; absent when the app has none (or the reader did not ask for them). */
  keyCredentials?: CertificateCredentialInfo[];
}

/** A password just created: the only time its value is seen. */
export interface NewPasswordCredential extends PasswordCredentialInfo {
  secretText: string;
  endDateTime: string;
}

/** Restrictions an app management policy puts on new passwords, as far as the caller can read them. */
export interface PasswordPolicy {
  /** Longest lifetime allowed, in days, when a policy caps it. */
  maxLifetimeDays?: number;
  /** New passwords are refused. */
  additionBlocked: boolean;
}

/**
 * A certificate to add to an app's `keyCredentials`: its public part only (the private key stays in
 * Key Vault and in the connection). `keyId` is chosen by the caller, `displayName` is the marker.
 */
export interface NewCertificateCredential {
  keyId: string;
  displayName: string;
  /** The certificate's DER, base64 (Graph `key`). */
  derBase64: string;
}

export interface GraphApplicationsClient {
  /** Undefined when no application has that client id (deleted or never existed). */
  getApplicationByAppId(appId: string): Promise<ApplicationInfo | undefined>;
  addPassword(
    applicationObjectId: string,
    credential: { displayName: string; endDateTime: string },
  ): Promise<NewPasswordCredential>;
  removePassword(applicationObjectId: string, keyId: string): Promise<void>;
  /** The password restrictions in force for the app; `{ additionBlocked: false }` when none can be read. */
  getPasswordPolicy(applicationObjectId: string): Promise<PasswordPolicy>;
  /**
   * Adds a certificate to the app's `keyCredentials`, keeping every certificate the app has when it
   * is written (read again right before the write, and checked after it). Absent: certificates are
   * not rotated.
   */
  addCertificate?(applicationObjectId: string, credential: NewCertificateCredential): Promise<void>;
  /** Removes one certificate, keeping all others; one already gone is not an error. */
  removeCertificate?(applicationObjectId: string, keyId: string): Promise<void>;
}

/** Rotation phases, persisted as Key Vault tags (DESIGN: created → applied → verified → completed). */
export type RotationPhase = 'created' | 'applied' | 'verified' | 'completed';

/** What the state store keeps for one connection (tags on its Key Vault secret). */
export interface RotationRecord {
  connectionId: string;
  organization: string;
  phase: RotationPhase;
  appId: string;
  keyId: string;
  rotationId: string;
  /** Credentials the connection used before this rotation (to remove after retention). */
  previousKeyIds: string[];
  originalCreationMode: string;
  /** ISO time of the credential's end. */
  expiresAt: string;
  /** ISO times of phase changes. */
  createdAt: string;
  appliedAt?: string;
  verifiedAt?: string;
  completedAt?: string;
  /** Key Vault version of this record. */
  version?: string;
  /**
   * A certificate rotation: the Key Vault certificate (name and version) whose PEM the connection
   * is given; absent for a client secret.
   */
  certificate?: { name: string; version: string };
  /**
   * A rotation that was about to add a credential when this record was last written (noted before
   * `addPassword`): a credential marked with its rotation id that no record stores is an orphan.
   */
  intent?: RotationIntent;
}

/**
 * Written to Key Vault before a credential is added through Graph: the evidence that tells an
 * orphan (its value never reached Key Vault) from a credential whose record was lost.
 */
export interface RotationIntent {
  rotationId: string;
  /** ISO time it was noted. */
  at: string;
}

/** What Key Vault holds for a connection: its live record, or what stands in for a missing one. */
export interface RecordState {
  /** The connection's secret is soft-deleted (recoverable): recover it before deciding anything. */
  softDeleted: boolean;
  /** The record it holds, live or soft-deleted (tags only, never the value), when it is one. */
  record?: RotationRecord;
  /** The intent it holds: a rotation that was about to add a credential; with no record, none was ever stored. */
  intent?: RotationIntent;
}

/** Key Vault: the secret value and the rotation state of each connection. */
export interface SecretStateStore {
  /** The latest record for a connection, with no value; undefined when there is none. */
  getRecord(connectionId: string): Promise<RotationRecord | undefined>;
  /** The secret value of the latest version. Requires secrets/get. */
  getSecretValue(connectionId: string): Promise<string | undefined>;
  /** Writes a new version: the value first, with its record as tags and `expires`. */
  putSecret(record: RotationRecord, value: string): Promise<RotationRecord>;
  /** Changes the record (tags) of the latest version; the value stays. */
  updateRecord(record: RotationRecord): Promise<RotationRecord>;
  /**
   * Notes, before a credential is added, which rotation is about to add it: on `current` (the live
   * record) when there is one, else as a record holding only the intent (no value of use). Never
   * over a soft-deleted record (that one is recovered first).
   */
  recordIntent(
    connectionId: string,
    organization: string,
    intent: RotationIntent,
    current: RotationRecord | undefined,
  ): Promise<void>;
  /**
   * The connection's state in one or two reads: its live record, a live intent only, or (when
   * nothing is live and `lookForDeleted` is not false) its soft-deleted secret. Requires secrets/get.
   */
  readState(connectionId: string, options?: { lookForDeleted?: boolean }): Promise<RecordState>;
  /** Recovers a soft-deleted record and returns it (undefined when there was none). Requires secrets/recover. */
  recoverRecord(connectionId: string): Promise<RotationRecord | undefined>;
  /**
   * Every connection's record, page by page as a paged listing returns them, by lower-cased
   * connection id (an `Error` for one that cannot be read as a record): a run reads all records in
   * one call per 25 instead of one each. Optional; records read this way are for planning only (a
   * rotation reads its own again under the lock).
   */
  listRecords?(): AsyncIterable<Map<string, RotationRecord | Error>>;
}

export interface Lease {
  release(): Promise<void>;
  /**
   * Whether this holder still has the lock, asked of the lock's store now (a blob lease: renewed,
   * so a lease broken, or expired and taken by another holder, answers false). False too when that
   * cannot be confirmed. Asked before each write phase: a holder that lost its lock writes nothing
   * more.
   */
  stillHeld(): Promise<boolean>;
}

/** One rotation per connection at a time. */
export interface LockProvider {
  /** Undefined when another holder has the lock. */
  tryAcquire(key: string, seconds: number): Promise<Lease | undefined>;
}

export type TokenProbeResult = { ok: true } | { ok: false; aadsts?: string; message: string };

/** Tries a client secret against Entra ID (does the new secret get a token yet?). */
export interface TokenProbe {
  tryClientSecret(tenantId: string, appId: string, secret: string): Promise<TokenProbeResult>;
  /** Tries a certificate (PEM with its private key): a client assertion signed with it. */
  tryClientCertificate?(tenantId: string, appId: string, pem: string): Promise<TokenProbeResult>;
}

/** Clock and sleep, injected so tests can control time. */
export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

/** A federated identity credential of an app (workload identity federation). */
export interface FederatedCredentialInfo {
  id: string;
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
  description?: string | null;
}

/** Graph's federated identity credentials of applications (`Application.ReadWrite.OwnedBy`). */
export interface FederatedCredentialsClient {
  listFederatedCredentials(applicationObjectId: string): Promise<FederatedCredentialInfo[]>;
  addFederatedCredential(
    applicationObjectId: string,
    credential: Omit<FederatedCredentialInfo, 'id'>,
  ): Promise<FederatedCredentialInfo>;
  /** Removes one; a credential that is already gone is not an error. */
  removeFederatedCredential(applicationObjectId: string, id: string): Promise<void>;
}

/** How a connection is converted to workload identity federation. */
export type ConversionPath =
  /** Azure DevOps' own conversion (`operation=ConvertAuthenticationScheme`): Automatic, one project. */
  | 'azure-devops'
  /** This service adds the federated credential to the app through Graph, then updates the connection. */
  | 'federated-credential';

export type ConversionPhase =
  /** Recorded before the connection is changed (a crash here resumes or starts over). */
  | 'started'
  /** The connection uses workload identity federation; not verified yet. */
  | 'converted'
  /** TestConnection succeeded with the federated credential; the old secret stays for the retention period. */
  | 'verified'
  /** The old secret is removed from the app. */
  | 'completed'
  /** Reverted to the secret (on request, or because the conversion failed). */
  | 'reverted'
  /** The conversion failed and the connection was put back on its secret. */
  | 'failed';

/** The state of one connection's conversion, kept in Key Vault (no secret in it). */
export interface ConversionRecord {
  connectionId: string;
  organization: string;
  appId: string;
  path: ConversionPath;
  phase: ConversionPhase;
  /** `data.creationMode` before the conversion. */
  originalCreationMode: string;
  /**
   * What the connection authenticated with before (absent: a client secret, as every record written
   * before certificate connections could be converted): the way back puts one of this kind only.
   */
  credential?: 'secret' | 'certificate';
  /** Credentials the connection used before: removed from the app after verification and retention. */
  previousKeyIds: string[];
  /** The federated credential as Azure DevOps generated it for the connection. */
  issuer?: string;
  subject?: string;
  /** Federated credentials this service added to the app (path `federated-credential`). */
  federatedCredentialIds: string[];
  /** Azure DevOps' `revertSchemeDeadline` (path `azure-devops`). */
  revertDeadline?: string;
  startedAt: string;
  convertedAt?: string;
  verifiedAt?: string;
  completedAt?: string;
  revertedAt?: string;
  failedAt?: string;
  /** Why it failed or was reverted (redacted). */
  note?: string;
}

/** Key Vault: conversion state per connection. */
export interface ConversionStateStore {
  getConversion(connectionId: string): Promise<ConversionRecord | undefined>;
  putConversion(record: ConversionRecord): Promise<ConversionRecord>;
}

/** What the run ledger keeps of a retired (deleted) connection: its whole definition, no secret. */
export interface RetiredConnectionRecord {
  organization: string;
  organizationUrl: string;
  connectionId: string;
  connectionName: string;
  projects: ProjectRef[];
  /** Why it was retired. */
  reason: string;
  runId?: string;
  /** Written before anything is changed. */
  recordedAt: string;
  /** Set once Azure DevOps deleted it. */
  deletedAt?: string;
  /** The connection as Azure DevOps returned it, confidential parameters removed. */
  definition: ServiceConnection;
}

/** Where retirements are recorded (the run ledger in the function's storage account). */
export interface RetirementLedger {
  recordRetired(record: RetiredConnectionRecord): Promise<void>;
  getRetired(organization: string, connectionId: string): Promise<RetiredConnectionRecord | undefined>;
  /** Since when each of these connections has been seen failing (ISO), as far as the ledger knows. */
  failingSince(organization: string, connectionIds: string[]): Promise<Map<string, string>>;
  /**
   * Notes which connections are failing now (first sighting kept) and which are not (forgotten);
   * connections not named are left as they were. Returns since when the failing ones have failed.
   */
  trackFailing(
    organization: string,
    observed: { failing: string[]; healthy: string[] },
    now: Date,
  ): Promise<Map<string, string>>;
}

/**
 * How a connection came to be entitled to an app (DESIGN invariant 8), as recorded in its binding:
 * proof a holder alone can give (`proof:…`), a rotation this service verified, or an operator.
 */
export type BindingHow =
  'proof:test-connection-ok' | 'proof:expired-secret-7000222' | 'verified-rotation' | `approved:${string}`;

/**
 * A connection's entitlement to one app: it may receive new credentials of that app. Kept in Key
 * Vault beside the rotation state; holds nothing secret. A binding counts only for the app it names.
 */
export interface Binding {
  connectionId: string;
  /** Organization URL the connection lives in. */
  organization: string;
  appId: string;
  tenantId?: string;
  how: BindingHow;
  /** ISO time it was recorded. */
  at: string;
}

/** Key Vault: the binding of each connection (`sc-remediator-binding-<connectionId>`). */
export interface BindingStore {
  /** The connection's binding; undefined when there is none. */
  getBinding(connectionId: string): Promise<Binding | undefined>;
  /** Records (replaces) the connection's binding. */
  putBinding(binding: Binding): Promise<Binding>;
}

/** What a remediation policy lets the service do with a connection (docs/settings.md, Remediation policy). */
export const POLICY_CHOICES = ['rotate', 'convert-to-wif', 'report-only', 'exclude'] as const;
export type PolicyChoice = (typeof POLICY_CHOICES)[number];

// The run ledger's interface (runLedgerPort.ts; src/clients/runLedger.ts keeps it in blob storage or memory).
export type { RecordResult, RunLedger, RunRecord, RunTrigger, StartRunMeta } from './runLedgerPort';

// Key Vault certificates (certificateVaultPort.ts; src/clients/keyVaultCertificates.ts implements it).
export type { CertificateVault, VaultCertificateInfo } from './certificateVaultPort';
