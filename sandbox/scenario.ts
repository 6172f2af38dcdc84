/**
 * Declarative scenarios: organizations, projects, apps and their credentials (dates relative to
 * now), connections with scheme, creationMode and state, and which identity owns which app and is
 * endpoint administrator where. `loadScenario` turns one into a TenantState.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  AppManagementRestrictions,
  AppRecord,
  EndpointRecord,
  GraphPermission,
  OperationStatus,
  SignInAudience,
} from './model';
import { TenantState } from './model';
import { federationFor, TOKEN_EXCHANGE_AUDIENCE } from './federation';
import { validateScenario } from './scenarioSchema';
import { mintCertificate, scenarioKeyPair } from './certificates';

export interface ScenarioPassword {
  /** Local name, referenced by connections' `secret`. */
  key: string;
  displayName?: string;
  /** Days from now (negative: in the past). Default: 300 days ago. */
  startInDays?: number;
  /** Days from now the password expires (negative: already expired). */
  endInDays: number;
  /** The secret value; generated when absent. */
  secret?: string;
}

/**
 * A certificate of an app (`keyCredentials`): a real self-signed certificate minted for its dates,
 * so a connection that stores it (`ScenarioConnection.certificate`) signs in with it.
 */
export interface ScenarioCertificate {
  key: string;
  displayName?: string;
  /** Days from now (negative: in the past). Default: 300 days ago. */
  startInDays?: number;
  /** Days from now the certificate expires (negative: already expired). */
  endInDays: number;
}

export interface ScenarioApp {
  key: string;
  displayName: string;
  appId?: string;
  objectId?: string;
  signInAudience?: SignInAudience;
  disabled?: boolean;
  deleted?: boolean;
  /** Identity keys that own the app. */
  owners?: string[];
  passwords?: ScenarioPassword[];
  certificates?: ScenarioCertificate[];
  /** An app management policy assigned to the app: replaces the tenant default for it (`{}`: exempt). */
  policy?: AppManagementRestrictions;
  /** Default true: the app's service principal can read the connections' subscriptions. */
  hasSubscriptionRole?: boolean;
  /**
   * Identities (keys) the app trusts through a federated identity credential: issuer the home
   * tenant's `https://login.microsoftonline.com/{tenant}/v2.0`, subject the identity's object id,
   * audience `api://AzureADTokenExchange` (a managed identity as the app's credential).
   */
  trustsIdentities?: string[];
}

/** Another Entra tenant: its own apps, and the home apps consented in it. */
export interface ScenarioOtherTenant {
  key: string;
  tenantId?: string;
  tenantDomain?: string;
  /**
   * Home apps (keys) with a service principal here (admin consent), with the Graph application
   * permissions granted to it here. Owners of this tenant's apps name these app keys.
   */
  consents?: { app: string; graphPermissions?: GraphPermission[] }[];
  /** Apps registered in this tenant; connections name them by key like home apps. */
  apps: ScenarioApp[];
}

export interface ScenarioIdentity {
  key: string;
  displayName: string;
  kind: 'servicePrincipal' | 'user';
  appId?: string;
  clientSecret?: string;
  graphPermissions?: GraphPermission[];
  pats?: string[];
  /** Key Vault Secrets Officer on the sandbox vault. */
  vaultWriter?: boolean;
  /** Key Vault Certificates Officer on the sandbox vault (default: as `vaultWriter`, as infra/ assigns both). */
  vaultCertificatesOfficer?: boolean;
}

export interface ScenarioConnection {
  key: string;
  /** The situation this connection stands for (documentation and tests; the sandbox ignores it). */
  case?: string;
  id?: string;
  name: string;
  /** Project names; the first is the owning project. More than one: a shared connection. */
  projects: string[];
  scheme: 'ServicePrincipal' | 'WorkloadIdentityFederation' | 'ManagedServiceIdentity';
  creationMode: 'Automatic' | 'Manual';
  /** App key the connection authenticates as. */
  app?: string;
  /** Password key (of `app`) whose value the connection stores. */
  secret?: string;
  /** `authorization.parameters.authenticationType` of a ServicePrincipal connection (default `spnKey`). */
  authenticationType?: 'spnKey' | 'spnCertificate';
  /**
   * Certificate key (of `app`) whose PEM, private key included, a `spnCertificate` connection stores
   * (`servicePrincipalCertificate`). Without it the connection stores none the sandbox knows.
   */
  certificate?: string;
  /** `authorization.parameters.tenantid` (default: the sandbox tenant): an app of another tenant. */
  tenantId?: string;
  /**
   * A literal value the connection stores instead (a wrong secret, as anyone who may create a
   * connection can type one): Entra ID answers AADSTS7000215 unless it happens to be a password.
   */
  storedSecret?: string;
  /** `authorization.parameters.accesstoken` set to null (the UI bug that breaks connections). */
  accessTokenNull?: boolean;
  /**
   * The state the service reports. `computed` (default): Ready when the stored credential gets a
   * token, otherwise Failed with the Entra ID error. An explicit state keeps the given message.
   */
  state?: 'computed' | 'Ready' | 'Failed';
  statusMessage?: string;
  subscriptionId?: string;
  subscriptionName?: string;
  description?: string;
  /** Identity key of the creator. */
  createdBy?: string;
}

export interface ScenarioOrganization {
  name: string;
  projects: { name: string; id?: string }[];
  members: {
    identity: string;
    endpointAdministrator: boolean;
    /** Project names where the member administers connections at project level only. */
    projectAdministratorOf?: string[];
    /** False: GET of a connection answers only `{id, name}` to this member. */
    viewConnections?: boolean;
  }[];
  connections: ScenarioConnection[];
  /** Seconds Azure DevOps' ConvertAuthenticationScheme stays InProgress (default 0). */
  conversionDelaySeconds?: number;
  /** Azure DevOps refuses ConvertAuthenticationScheme from a non-user caller (default false). */
  conversionRequiresUser?: boolean;
}

export interface Scenario {
  name: string;
  description?: string;
  tenantId?: string;
  tenantDomain?: string;
  tenantPolicy?: AppManagementRestrictions;
  /** The identity the product runs as; its credentials go into the env file. */
  productIdentity: string;
  identities: ScenarioIdentity[];
  apps: ScenarioApp[];
  organizations: ScenarioOrganization[];
  /** Seconds before a new password works at the token endpoint (Graph replication lag). */
  passwordReplicationDelaySeconds?: number;
  /** Other tenants (a connection of one of their apps carries that tenant's id). */
  otherTenants?: ScenarioOtherTenant[];
}

const DAY_MS = 24 * 3600 * 1000;

/** A deterministic GUID from a name, so scenario ids are stable between runs. */
export function stableGuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('|')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A secret value shaped like Entra ID's (40 characters, with the `~` that real ones carry). */
export function generateSecretText(): string {
  const raw = randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '');
  return `${raw.slice(0, 3)}8Q~${raw.slice(3, 40)}`;
}

/** Loads a named scenario from `sandbox/scenarios/<name>.json` and validates it. */
export function readScenario(name: string): Scenario {
  if (!/^[a-z0-9-]+$/i.test(name)) throw new Error(`Invalid scenario name '${name}'.`);
  const path = join(__dirname, 'scenarios', `${name}.json`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`Cannot read scenario '${name}' (${path}): ${(err as Error).message}`);
  }
  // Shape (scenario.schema.json) and references between parts; every problem listed at once.
  return validateScenario(parsed, `'${name}' (${path})`);
}

/** Builds the tenant state a scenario describes. */
export function loadScenario(scenario: Scenario): TenantState {
  const tenantId = scenario.tenantId ?? stableGuid('tenant', scenario.name);
  const state = new TenantState(tenantId, scenario.tenantDomain ?? 'contoso.onmicrosoft.com');
  state.tenantPolicy = scenario.tenantPolicy ?? {};
  state.passwordReplicationDelaySeconds = scenario.passwordReplicationDelaySeconds ?? 0;
  const now = Date.now();
  const computed = new Set<string>();
  let certificatesMinted = 0;

  for (const identity of scenario.identities) {
    state.identities.set(identity.key, {
      key: identity.key,
      displayName: identity.displayName,
      kind: identity.kind,
      appId:
        identity.appId ??
        (identity.kind === 'servicePrincipal' ? stableGuid('identity', identity.key) : undefined),
      clientSecret:
        identity.clientSecret ?? (identity.kind === 'servicePrincipal' ? generateSecretText() : undefined),
      graphPermissions: identity.graphPermissions ?? [],
      pats: identity.pats ?? [],
      objectId: stableGuid('identity-object', identity.key),
    });
    if (identity.vaultWriter) state.vault.writers.push(identity.key);
    if (identity.vaultCertificatesOfficer ?? identity.vaultWriter)
      state.vault.certificateOfficers.push(identity.key);
  }
  if (!state.identities.has(scenario.productIdentity))
    throw new Error(
      `Scenario '${scenario.name}': productIdentity '${scenario.productIdentity}' is not an identity.`,
    );

  const appsByKey = new Map<string, AppRecord>();
  const secretsByKey = new Map<string, string>();
  const certificatesByKey = new Map<string, string>();
  /** The tenant of each app key that is not the home tenant's. */
  const tenantOfApp = new Map<string, TenantState>();
  const addApp = (target: TenantState, app: ScenarioApp): void => {
    const record: AppRecord = {
      id: app.objectId ?? stableGuid('app-object', app.key),
      appId: app.appId ?? stableGuid('app', app.key),
      displayName: app.displayName,
      signInAudience: app.signInAudience ?? 'AzureADMyOrg',
      disabled: app.disabled ?? false,
      deleted: app.deleted ?? false,
      owners: app.owners ?? [],
      policy: app.policy,
      keyCredentials: (app.certificates ?? []).map((c) => {
        const minted = mintCertificate(
          `${app.displayName} ${c.key}`,
          new Date(now + (c.startInDays ?? -300) * DAY_MS),
          new Date(now + c.endInDays * DAY_MS),
          scenarioKeyPair(certificatesMinted++),
        );
        certificatesByKey.set(`${app.key}/${c.key}`, `${minted.keyPem}${minted.certPem}`);
        return {
          keyId: stableGuid('certificate', app.key, c.key),
          displayName: c.displayName ?? `CN=${app.displayName}`,
          customKeyIdentifier: minted.thumbprint,
          startDateTime: minted.notBefore.toISOString(),
          endDateTime: minted.notAfter.toISOString(),
          type: 'AsymmetricX509Cert',
          usage: 'Verify',
          key: minted.derBase64,
        };
      }),
      hasSubscriptionRole: app.hasSubscriptionRole ?? true,
      federatedIdentityCredentials: [],
      passwordCredentials: (app.passwords ?? []).map((p) => {
        const secretText = p.secret ?? generateSecretText();
        secretsByKey.set(`${app.key}/${p.key}`, secretText);
        return {
          keyId: stableGuid('password', app.key, p.key),
          displayName: p.displayName ?? null,
          hint: secretText.slice(0, 3),
          secretText,
          startDateTime: new Date(now + (p.startInDays ?? -300) * DAY_MS).toISOString(),
          endDateTime: new Date(now + p.endInDays * DAY_MS).toISOString(),
          customKeyIdentifier: null,
          addedAt: now - 300 * DAY_MS,
        };
      }),
    };
    for (const key of app.trustsIdentities ?? []) {
      const identity = state.identities.get(key);
      if (!identity) throw new Error(`App '${app.key}': unknown identity '${key}'.`);
      record.federatedIdentityCredentials.push({
        id: stableGuid('federated-credential', app.key, key),
        name: `managed-identity-${key}`,
        issuer: `https://login.microsoftonline.com/${state.tenantId}/v2.0`,
        subject: identity.objectId,
        audiences: [TOKEN_EXCHANGE_AUDIENCE],
        description: null,
      });
    }
    appsByKey.set(app.key, record);
    target.apps.set(record.id, record);
    if (target !== state) tenantOfApp.set(app.key, target);
  };
  for (const app of scenario.apps) addApp(state, app);
  for (const t of scenario.otherTenants ?? []) {
    const other = state.addOtherTenant(
      t.tenantId ?? stableGuid('tenant', scenario.name, t.key),
      t.tenantDomain ?? `${t.key}.onmicrosoft.com`,
    );
    // A consented home app is a service principal of the other tenant: an identity there, keyed
    // by the app's key, with the permissions granted there (no secret: it signs in by assertion).
    for (const consent of t.consents ?? []) {
      const home = appsByKey.get(consent.app);
      if (!home) throw new Error(`Tenant '${t.key}': unknown consented app '${consent.app}'.`);
      other.identities.set(consent.app, {
        key: consent.app,
        displayName: home.displayName,
        kind: 'servicePrincipal',
        appId: home.appId,
        graphPermissions: consent.graphPermissions ?? [],
        pats: [],
        objectId: stableGuid('service-principal', other.tenantId, home.appId),
      });
    }
    for (const app of t.apps) addApp(other, app);
  }

  for (const org of scenario.organizations) {
    const orgId = stableGuid('organization', org.name);
    const projects = org.projects.map((p) => ({
      id: p.id ?? stableGuid('project', org.name, p.name),
      name: p.name,
    }));
    const endpoints = new Map<string, EndpointRecord>();
    for (const c of org.connections) {
      const app = c.app ? appsByKey.get(c.app) : undefined;
      if (c.app && !app) throw new Error(`Connection '${c.key}': unknown app '${c.app}'.`);
      const refs = c.projects.map((name) => {
        const project = projects.find((p) => p.name === name);
        if (!project) throw new Error(`Connection '${c.key}': unknown project '${name}'.`);
        return {
          projectReference: { id: project.id, name: project.name },
          name: c.name,
          description: c.description ?? '',
        };
      });
      const subscriptionId = c.subscriptionId ?? stableGuid('subscription', org.name, c.key);
      const data: Record<string, string> = {
        environment: 'AzureCloud',
        scopeLevel: 'Subscription',
        subscriptionId,
        subscriptionName: c.subscriptionName ?? `Subscription ${c.key}`,
        creationMode: c.creationMode,
      };
      if (c.creationMode === 'Automatic' && app) {
        // Azure DevOps records the objects it created for an automatic connection.
        data['azureSpnRoleAssignmentId'] = stableGuid('role-assignment', c.key);
        data['spnObjectId'] = stableGuid('spn-object', app.appId);
        data['appObjectId'] = app.id;
        data['azureSpnPermissions'] = JSON.stringify([
          {
            roleAssignmentId: data['azureSpnRoleAssignmentId'],
            resourceProvider: 'Microsoft.RoleAssignment',
            provisioned: true,
          },
        ]);
      }
      const appTenant = c.app ? tenantOfApp.get(c.app) : undefined;
      const parameters: Record<string, string | null> = {
        tenantid: c.tenantId ?? appTenant?.tenantId ?? state.tenantId,
      };
      if (c.scheme === 'ServicePrincipal' && c.authenticationType === 'spnCertificate') {
        // A certificate connection stores the PEM (servicePrincipalCertificate), never returned.
        parameters['serviceprincipalid'] = app?.appId ?? stableGuid('missing-app', c.key);
        parameters['authenticationType'] = 'spnCertificate';
        const pem = c.certificate && c.app ? certificatesByKey.get(`${c.app}/${c.certificate}`) : undefined;
        if (c.certificate && !pem)
          throw new Error(`Connection '${c.key}': unknown certificate '${c.certificate}'.`);
        parameters['servicePrincipalCertificate'] = pem ?? null;
      } else if (c.scheme === 'ServicePrincipal') {
        parameters['serviceprincipalid'] = app?.appId ?? stableGuid('missing-app', c.key);
        parameters['authenticationType'] = 'spnKey';
        const secret = c.secret && c.app ? secretsByKey.get(`${c.app}/${c.secret}`) : undefined;
        if (c.secret && !secret) throw new Error(`Connection '${c.key}': unknown secret '${c.secret}'.`);
        parameters['serviceprincipalkey'] = secret ?? c.storedSecret ?? null;
      } else if (c.scheme === 'WorkloadIdentityFederation') {
        parameters['serviceprincipalid'] = app?.appId ?? stableGuid('missing-app', c.key);
        // The federated credential Azure DevOps generated, and (a working connection) the app's match.
        const { issuer, subject } = federationFor(
          state,
          { id: orgId, name: org.name, projects, members: [], endpoints: new Map() },
          {
            id: c.id ?? stableGuid('endpoint', org.name, c.key),
            name: c.name,
            serviceEndpointProjectReferences: refs,
          },
        );
        parameters['workloadIdentityFederationIssuer'] = issuer;
        parameters['workloadIdentityFederationSubject'] = subject;
        if (app && !app.federatedIdentityCredentials.some((f) => f.subject === subject))
          app.federatedIdentityCredentials.push({
            id: stableGuid('federated-credential', org.name, c.key),
            name: `${org.name}-${c.projects[0] ?? ''}-${c.key}`,
            issuer,
            subject,
            audiences: [TOKEN_EXCHANGE_AUDIENCE],
            description: null,
          });
      }
      if (c.accessTokenNull) parameters['accesstoken'] = null;
      const operationStatus: OperationStatus = {
        state: c.state === 'Failed' ? 'Failed' : 'Ready',
        statusMessage: c.statusMessage ?? '',
      };
      const creator = state.identities.get(c.createdBy ?? scenario.productIdentity);
      endpoints.set(c.id ?? stableGuid('endpoint', org.name, c.key), {
        id: c.id ?? stableGuid('endpoint', org.name, c.key),
        name: c.name,
        type: 'azurerm',
        url: 'https://management.azure.com/',
        description: c.description ?? '',
        owner: 'library',
        data,
        authorization: { scheme: c.scheme, parameters },
        isReady: operationStatus.state === 'Ready',
        isShared: refs.length > 1,
        operationStatus,
        serviceEndpointProjectReferences: refs,
        createdBy: {
          id: creator?.objectId ?? stableGuid('creator'),
          displayName: creator?.displayName ?? 'someone',
        },
      });
      // `computed` states are settled by the Azure DevOps service once it is up (it owns that rule).
      if ((c.state ?? 'computed') === 'computed')
        computed.add(`${org.name.toLowerCase()}/${c.id ?? stableGuid('endpoint', org.name, c.key)}`);
    }
    state.organizations.set(org.name.toLowerCase(), {
      id: orgId,
      name: org.name,
      projects,
      members: org.members,
      endpoints,
      ...(org.conversionDelaySeconds ? { conversionDelayMs: org.conversionDelaySeconds * 1000 } : {}),
      ...(org.conversionRequiresUser ? { conversionRequiresUser: true } : {}),
    });
  }
  computedStates.set(state, computed);
  return state;
}

// Endpoints whose state the Azure DevOps service computes from their credential when it starts.
const computedStates = new WeakMap<TenantState, Set<string>>();

/** Endpoints (`org/endpointId`) whose isReady must be computed from their credential. */
export function takeComputedEndpoints(state: TenantState): Set<string> {
  const set = computedStates.get(state) ?? new Set<string>();
  computedStates.delete(state);
  return set;
}
