/**
 * The simulated tenant's state: one object shared by every sandbox service (Entra ID, Graph,
 * Azure DevOps, Key Vault), so that a secret added through Graph is what Entra ID checks and what
 * Azure DevOps' TestConnection tries. Tests read and change it directly through `Sandbox.state`.
 *
 * Nothing here imports from `src/`: the sandbox stands for the real services, not for our code.
 */
import { randomUUID } from 'node:crypto';

/** A password credential as Entra ID keeps it. `secretText` is kept only so the token endpoint can check it. */
export interface PasswordCredentialRecord {
  keyId: string;
  displayName: string | null;
  hint: string;
  secretText: string;
  startDateTime: string;
  endDateTime: string;
  customKeyIdentifier: null;
  /** Sandbox clock (ms) when the password was added; replication lag counts from here. */
  addedAt: number;
}

/**
 * A certificate credential as Graph lists it in `keyCredentials` (keyCredential resource, Graph
 * v1.0): the public part only; `customKeyIdentifier` is the certificate's SHA-1 thumbprint (base64).
 */
export interface KeyCredentialRecord {
  keyId: string;
  displayName: string | null;
  customKeyIdentifier: string | null;
  startDateTime: string;
  endDateTime: string;
  /** `AsymmetricX509Cert` for certificates. */
  type: string;
  /** `Verify` for certificates an app signs its assertions with. */
  usage: string;
  /** The certificate's raw data, base64 (public; Graph returns it only when selected on one app). */
  key: string;
}

export interface FederatedIdentityCredentialRecord {
  id: string;
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
  description: string | null;
}

/**
 * App management policy restrictions: the tenant default's (`TenantState.tenantPolicy`) or an app's
 * own (`AppRecord.policy`). One applies to an app, never both merged (see `restrictionsFor`).
 */
export interface AppManagementRestrictions {
  /** ISO 8601 duration, e.g. `P90D`: addPassword with a later end date is refused. */
  passwordLifetimeMax?: string;
  /** addPassword is refused outright. */
  passwordAdditionBlocked?: boolean;
}

export type SignInAudience =
  'AzureADMyOrg' | 'AzureADMultipleOrgs' | 'AzureADandPersonalMicrosoftAccount' | 'PersonalMicrosoftAccount';

export interface AppRecord {
  /** Object id (`id` in Graph). */
  id: string;
  appId: string;
  displayName: string;
  signInAudience: SignInAudience;
  /** Disabled for sign-in: token requests get AADSTS7000112. */
  disabled: boolean;
  /** Deleted apps stay in the map (tests inspect them) but every service treats them as absent. */
  deleted: boolean;
  passwordCredentials: PasswordCredentialRecord[];
  federatedIdentityCredentials: FederatedIdentityCredentialRecord[];
  /** Principal keys (identity keys) that own the app. */
  owners: string[];
  /**
   * The app management policy assigned to this app, if any: it replaces the tenant default for this
   * app entirely (`{}`: assigned, restricting nothing, i.e. exempt from the tenant default).
   */
  policy?: AppManagementRestrictions;
  /** Certificates (`keyCredentials`), as Graph lists them; absent: none. */
  keyCredentials?: KeyCredentialRecord[];
  /** Whether the app's service principal holds a role on the connections' subscriptions (ARM read works). */
  hasSubscriptionRole: boolean;
}

export type GraphPermission =
  | 'Application.ReadWrite.OwnedBy'
  | 'Application.ReadWrite.All'
  | 'Application.Read.All'
  /** Reads app management policies (tenant default and per-app). */
  | 'Policy.Read.All';

/** A caller: the remediator's own identity, or another user/service principal. */
export interface IdentityRecord {
  key: string;
  displayName: string;
  kind: 'servicePrincipal' | 'user';
  /** For service principals: the client id they authenticate with. */
  appId?: string;
  /** For service principals: a client secret the token endpoint accepts. */
  clientSecret?: string;
  graphPermissions: GraphPermission[];
  /** Personal access tokens (plain values) that act as this identity in Azure DevOps. */
  pats: string[];
  /** Object id of the principal (tokens carry it as `oid`). */
  objectId: string;
}

export interface ProjectRecord {
  id: string;
  name: string;
}

export interface OrgMember {
  identity: string;
  /** Service connection Administrator at organization level: may update and delete connections. */
  endpointAdministrator: boolean;
  /**
   * Projects (names) where the member is Administrator of the service connections at project level
   * only: `actionFilter=manage` lists them, but the organization-level PUT/DELETE answer 403.
   */
  projectAdministratorOf?: string[];
  /** False: the member may not view connection details; a GET answers only `{id, name}`. */
  viewConnections?: boolean;
}

export interface OperationStatus {
  state: 'Ready' | 'Failed' | 'InProgress';
  statusMessage: string;
}

/**
 * A service endpoint as Azure DevOps stores it. `authorization.parameters` holds confidential values
 * (serviceprincipalkey) that are never returned.
 */
export interface EndpointRecord {
  id: string;
  name: string;
  type: string;
  url: string;
  description: string;
  owner: string;
  data: Record<string, string>;
  authorization: { scheme: string; parameters: Record<string, string | null> };
  isReady: boolean;
  isShared: boolean;
  operationStatus: OperationStatus;
  serviceEndpointProjectReferences: {
    projectReference: { id: string; name: string };
    name: string;
    description: string;
  }[];
  createdBy: { id: string; displayName: string };
  /**
   * Set by `operation=ConvertAuthenticationScheme` on an Automatic connection: what Azure DevOps
   * keeps so the conversion can be reverted until `deadline` (the old scheme's parameters, the
   * secret included, and the federated credential it added). Never returned by the API.
   */
  revertStash?: {
    scheme: string;
    parameters: Record<string, string | null>;
    deadline: string;
    federatedCredentialId?: string;
  };
  /**
   * A `ConvertAuthenticationScheme` still in progress: until `completesAt` (sandbox clock, ms) the
   * connection stays on its secret with `operationStatus.state: InProgress`; then the conversion is
   * applied (or, with `fails`, the connection goes back to Ready on its secret with a Failed status).
   */
  pendingConversion?: { completesAt: number; fails?: boolean };
}

export interface OrganizationRecord {
  /** The organization's id (Azure DevOps' `instanceId`); the Entra-issuer subject names it. */
  id: string;
  name: string;
  projects: ProjectRecord[];
  members: OrgMember[];
  endpoints: Map<string, EndpointRecord>;
  /**
   * How long Azure DevOps' own conversion (`ConvertAuthenticationScheme`) takes (sandbox clock, ms;
   * default 0: done in the answer). Learn: "The conversion might take a few minutes."
   */
  conversionDelayMs?: number;
  /** Conversions answered InProgress that end Failed instead (tests of the failure path). */
  conversionFails?: boolean;
  /** Refuse `ConvertAuthenticationScheme` from a service principal or managed identity (see devops/conversion.ts). */
  conversionRequiresUser?: boolean;
}

export interface VaultSecretVersion {
  version: string;
  value: string;
  contentType?: string;
  tags: Record<string, string>;
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  /** Set on the secret Key Vault keeps for a certificate: `managed: true` and the key's id. */
  managedKid?: string;
}

export interface VaultSecret {
  /** The name as first written (Key Vault names are case-insensitive; the map key is lower-case). */
  name: string;
  versions: VaultSecretVersion[];
  /** Set while soft-deleted. */
  deleted?: { deletedDate: number; scheduledPurgeDate: number };
}

/** One version of a Key Vault certificate (its secret of the same name and version holds the PEM). */
export interface VaultCertificateVersion {
  version: string;
  /** DER, base64. */
  cer: string;
  /** SHA-1 thumbprint of the DER, base64url (`x5t`). */
  x5t: string;
  nbf: number;
  exp: number;
  created: number;
  updated: number;
  tags: Record<string, string>;
  /** The policy it was created with, as sent (snake_case, Key Vault's wire shape). */
  policy: Record<string, unknown>;
}

export interface VaultCertificate {
  name: string;
  versions: VaultCertificateVersion[];
  /** The last creation operation (`/certificates/{name}/pending`). */
  operation?: { requestId: string; status: 'inProgress' | 'completed'; version: string; issuer: string };
}

interface VaultState {
  /** Lower-cased secret name → secret. */
  secrets: Map<string, VaultSecret>;
  /** Lower-cased certificate name → certificate (its key and secret share the name). */
  certificates: Map<string, VaultCertificate>;
  recoverableDays: number;
  /** Identity keys allowed to read and write secrets (Key Vault Secrets Officer). */
  writers: string[];
  /** Identity keys allowed to create and read certificates (Key Vault Certificates Officer). */
  certificateOfficers: string[];
}

/** One request as a service saw it, for tests and the bench. Never holds a secret value. */
export interface RequestLogEntry {
  service: ServiceName;
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** Identity key of the caller, when the request carried a valid credential. */
  caller?: string;
  /** True for requests that change state (any method but GET/HEAD/OPTIONS, except read-only POSTs). */
  write: boolean;
  /** Set when fault injection answered instead of the service. */
  fault?: string;
  at: number;
  durationMs: number;
}

export type ServiceName = 'entra' | 'graph' | 'devops' | 'keyvault';

/**
 * One request with its answer, bodies included, handed to `TenantState.onExchange` (contract tests
 * validate these against the official specs). Holds secret values: never log or print it.
 */
export interface HttpExchange {
  service: ServiceName;
  method: string;
  /** Path and query as the client sent them (`req.originalUrl`). */
  url: string;
  requestHeaders: Record<string, string | string[] | undefined>;
  /** The parsed request body, when the service parsed one. */
  requestBody?: unknown;
  status: number;
  responseHeaders: Record<string, string | string[] | number | undefined>;
  /** The response body as sent, as text ('' when none). */
  responseBody: string;
}

/** The whole simulated tenant. */
export class TenantState {
  readonly tenantId: string;
  readonly tenantDomain: string;
  readonly apps = new Map<string, AppRecord>();
  readonly identities = new Map<string, IdentityRecord>();
  readonly organizations = new Map<string, OrganizationRecord>();
  readonly vault: VaultState = {
    secrets: new Map(),
    certificates: new Map(),
    recoverableDays: 90,
    writers: [],
    certificateOfficers: [],
  };
  tenantPolicy: AppManagementRestrictions = {};
  readonly requestLog: RequestLogEntry[] = [];
  /**
   * Which issuer Azure DevOps gives workload identity federation connections: the Microsoft Entra
   * issuer (since 2025, the default) or the older Azure DevOps issuer (`vstoken.dev.azure.com`).
   */
  federationIssuer: 'entra' | 'azure-devops' = 'entra';
  /** Seconds a newly added password takes before Entra ID accepts it (Graph replication lag). */
  passwordReplicationDelaySeconds = 0;
  /** Offset added to the wall clock, so tests can move time forward (expiry, retention). */
  clockOffsetMs = 0;
  /** Optional hook: called once per answered request with both bodies (contract tests). Unset by default. */
  onExchange?: (exchange: HttpExchange) => void;
  /**
   * Optional hook: called once per request right after it was handled — its effect applied, its
   * answer about to be written (or, dropped unanswered, its connection closed: status 0) — with its
   * request log entry (recorded in `requestLog` once the answer is sent). Crash tests SIGKILL a client
   * here: it dies at that exact point, without reading the answer. Unset by default; must not throw.
   */
  onRequestHandled?: (entry: RequestLogEntry) => void;

  /**
   * Other Entra tenants (lower-cased id → tenant): their own apps, and as `identities` the service
   * principals of home apps consented there. Entra's token endpoint serves each at its own
   * authority; Graph shows a caller only the apps of the tenant its token was issued in. Azure
   * DevOps and Key Vault stay the home tenant's.
   */
  readonly otherTenants = new Map<string, TenantState>();
  /** For another tenant: the home tenant, whose clock it shares. */
  private home?: TenantState;

  constructor(tenantId: string = randomUUID(), tenantDomain = 'contoso.onmicrosoft.com') {
    this.tenantId = tenantId;
    this.tenantDomain = tenantDomain;
  }

  /** Adds another tenant that shares this tenant's clock. */
  addOtherTenant(tenantId: string, tenantDomain: string): TenantState {
    const other = new TenantState(tenantId, tenantDomain);
    other.home = this;
    this.otherTenants.set(tenantId.toLowerCase(), other);
    return other;
  }

  /** This tenant or one of the other tenants, by id or domain (case-insensitive). */
  tenant(idOrDomain: string | null | undefined): TenantState | undefined {
    if (!idOrDomain) return undefined;
    const wanted = idOrDomain.toLowerCase();
    for (const t of [this, ...this.otherTenants.values()])
      if (t.tenantId.toLowerCase() === wanted || t.tenantDomain.toLowerCase() === wanted) return t;
    return undefined;
  }

  now(): Date {
    return this.home ? this.home.now() : new Date(Date.now() + this.clockOffsetMs);
  }

  advanceClock(ms: number): void {
    this.clockOffsetMs += ms;
  }

  /** Client id → app, filled by lookups and checked on every use (tenants of thousands of apps). */
  private readonly appIdIndex = new Map<string, AppRecord>();

  /** Live (not deleted) app by client id. */
  appByAppId(appId: string): AppRecord | undefined {
    const known = this.appIdIndex.get(appId);
    if (known && known.appId === appId && !known.deleted && this.apps.get(known.id) === known) return known;
    // Not indexed (or changed since): index every app in one pass, the first live one per client id.
    this.appIdIndex.clear();
    for (const app of this.apps.values())
      if (!app.deleted && !this.appIdIndex.has(app.appId)) this.appIdIndex.set(app.appId, app);
    return this.appIdIndex.get(appId);
  }

  /** Live (not deleted) app by object id. */
  appById(id: string): AppRecord | undefined {
    const app = this.apps.get(id);
    return app && !app.deleted ? app : undefined;
  }

  identityByAppId(appId: string): IdentityRecord | undefined {
    for (const identity of this.identities.values()) if (identity.appId === appId) return identity;
    return undefined;
  }

  identityByPat(pat: string): IdentityRecord | undefined {
    for (const identity of this.identities.values()) if (identity.pats.includes(pat)) return identity;
    return undefined;
  }

  organization(name: string): OrganizationRecord | undefined {
    return this.organizations.get(name.toLowerCase());
  }

  /** The app management restrictions in force for one app: its own policy over the tenant default. */
  /**
   * The restrictions in force for an app: its own policy when one is assigned, else the tenant
   * default. Not merged: "When both the tenant default policy and an app management policy exist,
   * the app management policy takes precedence and the assigned application or service principal
   * doesn't inherit from the tenant default policy" (Graph v1.0, applicationAuthenticationMethodPolicy
   * resource, https://learn.microsoft.com/graph/api/resources/applicationauthenticationmethodpolicy).
   */
  restrictionsFor(app: AppRecord): AppManagementRestrictions {
    return app.policy ?? this.tenantPolicy;
  }

  /** Requests that changed state, optionally for one service. */
  writes(service?: ServiceName): RequestLogEntry[] {
    return this.requestLog.filter((e) => e.write && (!service || e.service === service));
  }

  /** Every secret value the tenant knows: for tests that search logs and output for leaks. */
  allSecretValues(): string[] {
    const values = new Set<string>();
    for (const app of this.apps.values()) for (const p of app.passwordCredentials) values.add(p.secretText);
    for (const identity of this.identities.values()) {
      if (identity.clientSecret) values.add(identity.clientSecret);
      for (const pat of identity.pats) values.add(pat);
    }
    for (const org of this.organizations.values())
      for (const ep of org.endpoints.values()) {
        const key = ep.authorization.parameters['serviceprincipalkey'];
        if (key) values.add(key);
        const stashed = ep.revertStash?.parameters['serviceprincipalkey'];
        if (stashed) values.add(stashed);
      }
    for (const secret of this.vault.secrets.values()) for (const v of secret.versions) values.add(v.value);
    for (const other of this.otherTenants.values()) for (const v of other.allSecretValues()) values.add(v);
    return [...values].filter((v) => v.length >= 8);
  }
}
