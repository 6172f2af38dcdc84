/**
 * Preflight (`sc-remediator check`): with the configured identity, checks every prerequisite of a
 * rotation and says exactly what is missing and how to add it. Nothing is written anywhere: every
 * check is a read (or a token request), so it is safe to run at any time, before the first deploy
 * or after a permission change.
 *
 * What it checks, and how:
 * - identity: a Microsoft Graph token can be had; its `roles` claim holds
 *   Application.ReadWrite.OwnedBy (needed) and Policy.Read.All (optional).
 * - each organization: reachable, and the identity is a user there (the project list).
 * - each organization: the identity holds the Administrator role on every AzureRM connection. Read
 *   only: the connections listed with `actionFilter=manage` (Azure DevOps 7.1 spec,
 *   `ServiceEndpointActionFilter`) are the ones the caller may administer; the rest lack the role.
 *   That filter also passes a project-level Administrator, whose organization-level PUT then gets
 *   403, so for each listed connection the organization-level role assignments are read as well
 *   (`securityroles`, scope `distributedtask.collection.serviceendpointrole`, resource
 *   `collection_{id}`): only the role held there lets the service update the connection.
 * - each app a secret-based connection uses: readable through Graph, and owned by the identity
 *   (`GET /applications/{id}/owners`), which Application.ReadWrite.OwnedBy requires to add passwords.
 * - Key Vault: a GET of a name the service never writes. Key Vault authorizes before it looks the
 *   name up, so 404 proves data-plane read access and reachability, 403 a missing role. Write access
 *   cannot be proven without writing; the fix names the role that grants both.
 * - storage (lease locks): whether the lock container exists, a read of the account.
 */
import pLimit from 'p-limit';
import { AuthenticationError, ServiceError } from '../errors';
import { errorMessage } from '../telemetry';
import type { ApplicationInfo, ProjectRef, ServiceConnection } from './ports';

export type CheckStatus = 'ok' | 'missing' | 'warning' | 'skipped';
export type CheckArea = 'identity' | 'azure-devops' | 'entra-id' | 'key-vault' | 'storage';

/** One prerequisite and what was found. */
export interface PreflightCheck {
  area: CheckArea;
  /** What was checked, e.g. `service connection Administrator`. */
  name: string;
  /** Where: an organization URL, an app, the vault. */
  target: string;
  status: CheckStatus;
  detail: string;
  /** The exact step that adds what is missing (set for `missing` and `warning`). */
  fix?: string;
}

export interface PreflightReport {
  /** No check is `missing` (warnings and skipped checks do not count). */
  ok: boolean;
  checkedAt: string;
  identity: { objectId?: string; appId?: string; graphRoles: string[] };
  summary: Record<CheckStatus, number>;
  checks: PreflightCheck[];
}

/** The Azure DevOps reads preflight needs (the REST adapter implements them). */
export interface PreflightDevOps {
  listProjects(organizationUrl: string): Promise<ProjectRef[]>;
  listAzureRmConnections(
    organizationUrl: string,
    project: string,
    options?: { actionFilter?: 'manage' },
  ): Promise<ServiceConnection[]>;
  /**
   * The caller's roles on a connection at organization level (direct assignments), and the groups
   * holding Administrator there. Optional: without it, `actionFilter=manage` is taken at its word.
   */
  connectionRoles?(
    organizationUrl: string,
    connectionId: string,
    level: { organization: true },
  ): Promise<{ callerRoles: string[]; groupAdministrators: string[] }>;
}

/** The Graph reads preflight needs (the Graph adapter implements them). */
export interface PreflightGraph {
  callerIdentity(): Promise<{ objectId?: string; appId?: string; roles: string[] }>;
  getApplicationByAppId(appId: string): Promise<ApplicationInfo | undefined>;
  listOwnerIds(applicationObjectId: string): Promise<string[]>;
}

export interface PreflightDeps {
  devops: PreflightDevOps;
  graph: PreflightGraph;
  vault: { url: string; checkAccess(): Promise<void> };
  /** Undefined when no storage is configured (the CLI then locks within its own process). */
  storage?: { checkAccess(): Promise<{ containerExists: boolean; url: string }> };
  /** Requests in flight at once. */
  concurrency: number;
  now?: () => Date;
}

export interface PreflightSettings {
  organizations: { url: string; name: string }[];
  /** AZDO_PROJECTS: only these projects (names or ids). */
  projects?: string[];
}

const OWNED_BY = 'Application.ReadWrite.OwnedBy';
const READ_WRITE_ALL = 'Application.ReadWrite.All';
const POLICY_READ = 'Policy.Read.All';
/** Connection names listed in one row before "+N more". */
const MAX_NAMES = 8;

function statusOf(err: unknown): number | undefined {
  return err instanceof ServiceError ? err.status : undefined;
}

function names(list: string[]): string {
  const shown = list.slice(0, MAX_NAMES).join(', ');
  return list.length > MAX_NAMES ? `${shown} (+${list.length - MAX_NAMES} more)` : shown;
}

/** The vault's name from its URL (`https://name.vault.azure.net` → `name`). */
function vaultName(url: string): string {
  try {
    return new URL(url).hostname.split('.')[0] ?? url;
  } catch {
    return url;
  }
}

interface Who {
  objectId: string;
  appId: string;
}

const fixes = {
  graphToken: (): string =>
    'Check AZURE_TENANT_ID and AZURE_CLIENT_ID (and AZURE_CLIENT_SECRET outside Azure); in Azure the user-assigned managed identity must be attached to the function app and AZURE_CLIENT_ID must be its client id.',
  graphPermission: (who: Who, role: string): string =>
    `Grant the Microsoft Graph application permission ${role} to the identity (object id ${who.objectId}): deploy infra/ with manageEntraObjects=true, or run scripts/grant-graph-permissions.sh ${who.objectId}${role === POLICY_READ ? ' --with-policy-read' : ''} as a Privileged Role Administrator. A managed identity keeps a cached token with its old roles for up to 24 hours.`,
  orgAccess: (org: string, who: Who): string =>
    `Add the identity (client id ${who.appId}) to ${org} as a user with an access level (Basic; Stakeholder can be enough with the roles): Organization settings → Users → Add users, search the managed identity or service principal by its display name.`,
  orgUrl: (org: string): string =>
    `Check ${org} in AZDO_ORGANIZATION_URLS: the organization does not exist, or the identity's tenant is not the one the organization is connected to.`,
  pat: (): string =>
    'AZDO_PAT is invalid or expired: create a new personal access token with the scopes Service Connections (Read, query & manage) and Project and Team (Read), or remove AZDO_PAT to use the Entra ID identity.',
  devopsToken: (): string =>
    'The identity cannot get an Entra ID token for Azure DevOps: check the identity settings (AZURE_TENANT_ID, AZURE_CLIENT_ID) and that the tenant allows it.',
  projectAccess: (org: string, project: string, who: Who): string =>
    `Give the identity (client id ${who.appId}) access to project ${project} in ${org} (Project settings → Permissions → Readers), or leave the project out of AZDO_PROJECTS.`,
  administrator: (org: string, who: Who): string =>
    `In ${org}, give the identity (client id ${who.appId}) the Administrator role on these service connections at organization level: on each connection, ⋮ → Security → User permissions → Add → role Administrator (for every connection of a project: Project settings → Service connections → ⋮ → Security). Project Administrators membership is not enough: project administrators cannot change a connection's credentials.`,
  owner: (appId: string, who: Who): string =>
    `Make the identity an owner of the app: scripts/add-owner.sh --owner ${who.objectId} ${appId} (runs az ad app owner add --id ${appId} --owner-object-id ${who.objectId}); needs an existing owner of the app or a Cloud Application Administrator.`,
  appRead: (who: Who): string => fixes.graphPermission(who, OWNED_BY),
  vaultRole: (url: string, who: Who): string =>
    `Assign the Key Vault Secrets Officer role on the vault to the identity: az role assignment create --role "Key Vault Secrets Officer" --assignee-object-id ${who.objectId} --assignee-principal-type ServicePrincipal --scope "$(az keyvault show --name ${vaultName(url)} --query id -o tsv)". The vault must use Azure RBAC (enableRbacAuthorization: true); the Bicep in infra/ assigns this role.`,
  vaultReach: (url: string): string =>
    `Check KEY_VAULT_URL (${url}) and the vault's network rules (public network access or a private endpoint reachable from where this runs).`,
  storageRole: (url: string, who: Who): string =>
    `Assign the Storage Blob Data Owner role on the storage account to the identity: az role assignment create --role "Storage Blob Data Owner" --assignee-object-id ${who.objectId} --assignee-principal-type ServicePrincipal --scope <storage account resource id> (account of ${url}); the Bicep in infra/ assigns it.`,
  storageReach: (): string =>
    'Check AzureWebJobsStorage / AzureWebJobsStorage__blobServiceUri and the account network rules.',
  storageMissing: (): string =>
    'Set AzureWebJobsStorage__blobServiceUri (identity-based, recommended) or AzureWebJobsStorage, so rotations are locked across processes; the Functions app always has it.',
};

interface OrgScan {
  organizationUrl: string;
  /** Unique connections by id, with every project they were seen in. */
  connections: Map<string, { connection: ServiceConnection; manageable: boolean }>;
}

/** Where the organization-level Administrator role of a manageable connection stands. */
type OrgRole = 'administrator' | 'project-only' | { viaGroups: string[] } | { unreadable: string };

/** Runs every check; never throws for a failed check (each becomes a row), only for a bug. */
export async function runPreflight(
  deps: PreflightDeps,
  settings: PreflightSettings,
): Promise<PreflightReport> {
  const limit = pLimit(Math.max(1, deps.concurrency));
  const checks: PreflightCheck[] = [];
  const add = (check: PreflightCheck): void => {
    checks.push(check);
  };

  // --- identity -----------------------------------------------------------------------------
  let identity: { objectId?: string; appId?: string; roles: string[] } | undefined;
  try {
    identity = await deps.graph.callerIdentity();
    add({
      area: 'identity',
      name: 'Graph token',
      target: 'Microsoft Graph',
      status: 'ok',
      detail: `object id ${identity.objectId ?? 'unknown'}, client id ${identity.appId ?? 'unknown'}`,
    });
  } catch (err) {
    add({
      area: 'identity',
      name: 'Graph token',
      target: 'Microsoft Graph',
      status: 'missing',
      detail: errorMessage(err),
      fix: fixes.graphToken(),
    });
  }
  const who: Who = {
    objectId: identity?.objectId ?? '<object id of the identity>',
    appId: identity?.appId ?? '<client id of the identity>',
  };
  if (identity) {
    const roles = identity.roles;
    if (roles.includes(OWNED_BY))
      add({
        area: 'identity',
        name: `Graph ${OWNED_BY}`,
        target: 'Microsoft Graph',
        status: 'ok',
        detail: 'granted (add and remove passwords of the apps the identity owns)',
      });
    else if (roles.includes(READ_WRITE_ALL))
      add({
        area: 'identity',
        name: `Graph ${OWNED_BY}`,
        target: 'Microsoft Graph',
        status: 'warning',
        detail: `${READ_WRITE_ALL} is granted instead: it works, but lets the identity change every app in the tenant`,
        fix: `Grant ${OWNED_BY} and remove ${READ_WRITE_ALL}: ${fixes.graphPermission(who, OWNED_BY)}`,
      });
    else
      add({
        area: 'identity',
        name: `Graph ${OWNED_BY}`,
        target: 'Microsoft Graph',
        status: 'missing',
        detail: `not in the token's roles (${roles.length ? roles.join(', ') : 'none'})`,
        fix: fixes.graphPermission(who, OWNED_BY),
      });
    add(
      roles.includes(POLICY_READ)
        ? {
            area: 'identity',
            name: `Graph ${POLICY_READ}`,
            target: 'Microsoft Graph',
            status: 'ok',
            detail: 'granted (app management policy caps are respected up front)',
          }
        : {
            area: 'identity',
            name: `Graph ${POLICY_READ}`,
            target: 'Microsoft Graph',
            status: 'warning',
            detail:
              'optional, not granted: a lifetime cap or a ban on passwords is only learnt when addPassword refuses',
            fix: fixes.graphPermission(who, POLICY_READ),
          },
    );
  }

  // --- Azure DevOps ---------------------------------------------------------------------------
  const wanted = settings.projects?.map((p) => p.toLowerCase());
  const scans = await Promise.all(
    settings.organizations.map(async (org): Promise<OrgScan | undefined> => {
      let projects: ProjectRef[];
      try {
        projects = await limit(() => deps.devops.listProjects(org.url));
      } catch (err) {
        add(organizationProblem(org.url, err, who));
        return undefined;
      }
      const selected = wanted
        ? projects.filter((p) => wanted.includes(p.name.toLowerCase()) || wanted.includes(p.id.toLowerCase()))
        : projects;
      add({
        area: 'azure-devops',
        name: 'organization access',
        target: org.url,
        status: 'ok',
        detail: `${projects.length} project${projects.length === 1 ? '' : 's'} visible${wanted ? `, ${selected.length} selected by AZDO_PROJECTS` : ''}`,
      });
      const scan: OrgScan = { organizationUrl: org.url, connections: new Map() };
      await Promise.all(
        selected.map(async (project) => {
          try {
            const [all, manageable] = await Promise.all([
              limit(() => deps.devops.listAzureRmConnections(org.url, project.id)),
              limit(() =>
                deps.devops.listAzureRmConnections(org.url, project.id, { actionFilter: 'manage' }),
              ),
            ]);
            const canManage = new Set(manageable.map((c) => c.id.toLowerCase()));
            for (const connection of all) {
              const key = connection.id.toLowerCase();
              const seen = scan.connections.get(key);
              const mine = canManage.has(key);
              if (!seen) scan.connections.set(key, { connection, manageable: mine });
              else seen.manageable ||= mine;
            }
          } catch (err) {
            add({
              area: 'azure-devops',
              name: 'list service connections',
              target: `${org.url}/${project.name}`,
              status: 'missing',
              detail: errorMessage(err),
              fix: fixes.projectAccess(org.url, project.name, who),
            });
          }
        }),
      );
      const all = [...scan.connections.values()];
      const notManaged = all
        .filter((c) => !c.manageable)
        .map((c) => c.connection.name)
        .sort((a, b) => a.localeCompare(b));
      // actionFilter=manage passes project-level Administrators too: ask for the organization level.
      const roles = new Map<string, OrgRole>();
      const connectionRoles = deps.devops.connectionRoles?.bind(deps.devops);
      if (connectionRoles)
        await Promise.all(
          all
            .filter((c) => c.manageable)
            .map(async ({ connection }) => {
              let role: OrgRole;
              try {
                const found = await limit(() =>
                  connectionRoles(org.url, connection.id, { organization: true }),
                );
                role = found.callerRoles.includes('Administrator')
                  ? 'administrator'
                  : found.groupAdministrators.length > 0
                    ? { viaGroups: found.groupAdministrators }
                    : 'project-only';
              } catch (err) {
                role = { unreadable: errorMessage(err) };
              }
              roles.set(connection.id.toLowerCase(), role);
            }),
        );
      const byRole = (test: (r: OrgRole) => boolean): string[] =>
        all
          .filter((c) => c.manageable)
          .filter((c) => {
            const r = roles.get(c.connection.id.toLowerCase());
            return r !== undefined && test(r);
          })
          .map((c) => c.connection.name)
          .sort((a, b) => a.localeCompare(b));
      const projectOnly = byRole((r) => r === 'project-only');
      const viaGroups = byRole((r) => typeof r === 'object' && 'viaGroups' in r);
      const unreadable = byRole((r) => typeof r === 'object' && 'unreadable' in r);
      if (projectOnly.length > 0)
        add({
          area: 'azure-devops',
          name: 'connection Administrator (organization level)',
          target: org.url,
          status: 'missing',
          detail: `Administrator of ${projectOnly.length} connection${projectOnly.length === 1 ? '' : 's'} at project level only (listed by actionFilter=manage, but the organization-level update would answer 403): ${names(projectOnly)}`,
          fix: fixes.administrator(org.url, who),
        });
      if (viaGroups.length > 0)
        add({
          area: 'azure-devops',
          name: 'connection Administrator (organization level)',
          target: org.url,
          status: 'warning',
          detail: `not an organization-level Administrator in its own name on ${viaGroups.length} connection${viaGroups.length === 1 ? '' : 's'}; a group holds the role and may include the identity (not expanded): ${names(viaGroups)}`,
          fix: fixes.administrator(org.url, who),
        });
      if (unreadable.length > 0)
        add({
          area: 'azure-devops',
          name: 'connection Administrator (organization level)',
          target: org.url,
          status: 'warning',
          detail: `the organization-level role assignments could not be read for ${unreadable.length} connection${unreadable.length === 1 ? '' : 's'}, so a project-level Administrator cannot be told from an organization-level one: ${names(unreadable)}`,
          fix: fixes.administrator(org.url, who),
        });
      if (all.length === 0)
        add({
          area: 'azure-devops',
          name: 'connection Administrator',
          target: org.url,
          status: 'skipped',
          detail: 'no Azure Resource Manager connection to check',
        });
      else if (notManaged.length === 0)
        add({
          area: 'azure-devops',
          name: 'connection Administrator',
          target: org.url,
          status: projectOnly.length > 0 ? 'missing' : 'ok',
          detail:
            projectOnly.length > 0
              ? `may manage all ${all.length} Azure Resource Manager connection${all.length === 1 ? '' : 's'}, but ${projectOnly.length} only at project level (see the organization-level row)`
              : `Administrator of all ${all.length} Azure Resource Manager connection${all.length === 1 ? '' : 's'}${connectionRoles && viaGroups.length === 0 && unreadable.length === 0 ? ' (organization level)' : ''}`,
          ...(projectOnly.length > 0 ? { fix: fixes.administrator(org.url, who) } : {}),
        });
      else
        add({
          area: 'azure-devops',
          name: 'connection Administrator',
          target: org.url,
          status: 'missing',
          detail: `not Administrator of ${notManaged.length} of ${all.length} connections: ${names(notManaged)}`,
          fix: fixes.administrator(org.url, who),
        });
      return scan;
    }),
  );

  // --- Entra ID: the apps behind secret-based connections -----------------------------------
  const apps = new Map<string, { appId: string; connections: string[] }>();
  for (const scan of scans) {
    if (!scan) continue;
    const orgName =
      settings.organizations.find((o) => o.url === scan.organizationUrl)?.name ?? scan.organizationUrl;
    for (const { connection } of scan.connections.values()) {
      const appId = connection.authorization?.parameters?.['serviceprincipalid'];
      if (connection.authorization?.scheme !== 'ServicePrincipal' || !appId) continue;
      const entry = apps.get(appId.toLowerCase()) ?? { appId, connections: [] };
      entry.connections.push(`${orgName}/${connection.name}`);
      apps.set(appId.toLowerCase(), entry);
    }
  }
  const appChecks = await Promise.all(
    [...apps.values()].map(({ appId, connections }) =>
      limit(() => checkApp(deps.graph, appId, connections, identity, who)),
    ),
  );
  // Problems one row each; the apps that are fine in one row, so 10,000 connections stay readable.
  const fine = appChecks.filter((c) => c.status === 'ok');
  if (fine.length)
    add({
      area: 'entra-id',
      name: 'app owned by identity',
      target: `${fine.length} app${fine.length === 1 ? '' : 's'}`,
      status: 'ok',
      detail: 'readable, and the identity is an owner',
    });
  for (const c of appChecks.filter((c) => c.status !== 'ok').sort((a, b) => a.target.localeCompare(b.target)))
    add(c);
  if (apps.size === 0 && identity)
    add({
      area: 'entra-id',
      name: 'app owned by identity',
      target: 'no secret-based connection',
      status: 'skipped',
      detail: 'no app to check',
    });

  // --- Key Vault --------------------------------------------------------------------------------
  try {
    await deps.vault.checkAccess();
    add({
      area: 'key-vault',
      name: 'vault access',
      target: deps.vault.url,
      status: 'ok',
      detail:
        'a GET of a missing secret answered 404: the identity passed authorization; write access is not provable without writing and comes with the same role',
    });
  } catch (err) {
    const status = statusOf(err);
    add({
      area: 'key-vault',
      name: 'vault access',
      target: deps.vault.url,
      status: 'missing',
      detail: errorMessage(err),
      fix:
        status === 403
          ? fixes.vaultRole(deps.vault.url, who)
          : err instanceof AuthenticationError
            ? fixes.graphToken()
            : fixes.vaultReach(deps.vault.url),
    });
  }

  // --- storage --------------------------------------------------------------------------------
  if (!deps.storage)
    add({
      area: 'storage',
      name: 'lock storage',
      target: 'AzureWebJobsStorage',
      status: 'warning',
      detail: 'not configured: rotations are locked within this process only',
      fix: fixes.storageMissing(),
    });
  else
    try {
      const { containerExists, url } = await deps.storage.checkAccess();
      add({
        area: 'storage',
        name: 'lock storage',
        target: url,
        status: 'ok',
        detail: containerExists
          ? 'lock container readable'
          : 'account readable; the lock container is created on first use',
      });
    } catch (err) {
      const e = err as { statusCode?: unknown; message?: unknown };
      const code = typeof e.statusCode === 'number' ? e.statusCode : undefined;
      add({
        area: 'storage',
        name: 'lock storage',
        target: 'AzureWebJobsStorage',
        status: 'missing',
        detail: code
          ? `storage answered ${code}: ${errorMessage(err).split('\n')[0] ?? ''}`
          : errorMessage(err),
        fix: code === 403 ? fixes.storageRole('AzureWebJobsStorage', who) : fixes.storageReach(),
      });
    }

  const summary: Record<CheckStatus, number> = { ok: 0, missing: 0, warning: 0, skipped: 0 };
  for (const c of checks) summary[c.status] += 1;
  // Areas in a fixed order; organizations in configured order (their checks finish in any order).
  const areas: CheckArea[] = ['identity', 'azure-devops', 'entra-id', 'key-vault', 'storage'];
  const orgIndex = (c: PreflightCheck): number =>
    c.area === 'azure-devops'
      ? settings.organizations.findIndex((o) => c.target === o.url || c.target.startsWith(`${o.url}/`))
      : 0;
  checks.sort((a, b) => areas.indexOf(a.area) - areas.indexOf(b.area) || orgIndex(a) - orgIndex(b));
  return {
    ok: summary.missing === 0,
    checkedAt: (deps.now?.() ?? new Date()).toISOString(),
    identity: { objectId: identity?.objectId, appId: identity?.appId, graphRoles: identity?.roles ?? [] },
    summary,
    checks,
  };
}

function organizationProblem(url: string, err: unknown, who: Who): PreflightCheck {
  const base = {
    area: 'azure-devops' as const,
    name: 'organization access',
    target: url,
    status: 'missing' as const,
    detail: errorMessage(err),
  };
  if (err instanceof AuthenticationError) {
    if (err.code === 'SignInPage' && /PAT/.test(err.message)) return { ...base, fix: fixes.pat() };
    if (err.status === undefined) return { ...base, fix: fixes.devopsToken() };
    return { ...base, fix: fixes.orgAccess(url, who) };
  }
  const status = statusOf(err);
  if (status === 403) return { ...base, fix: fixes.orgAccess(url, who) };
  if (status === 404) return { ...base, fix: fixes.orgUrl(url) };
  return {
    ...base,
    fix: `Check that ${url} is reachable from where this runs (network, proxy), then run the check again.`,
  };
}

async function checkApp(
  graph: PreflightGraph,
  appId: string,
  connections: string[],
  identity: { objectId?: string } | undefined,
  who: Who,
): Promise<PreflightCheck> {
  const base = {
    area: 'entra-id' as const,
    name: 'app owned by identity',
    target: `${appId} (${names(connections)})`,
  };
  if (!identity) return { ...base, status: 'skipped', detail: 'no Graph token (see the identity check)' };
  let app: ApplicationInfo | undefined;
  try {
    app = await graph.getApplicationByAppId(appId);
  } catch (err) {
    const status = statusOf(err);
    return {
      ...base,
      status: 'missing',
      detail: errorMessage(err),
      fix:
        status === 403
          ? fixes.appRead(who)
          : 'Check that Microsoft Graph is reachable, then run the check again.',
    };
  }
  if (!app)
    return {
      ...base,
      status: 'warning',
      detail:
        'no such app in the tenant (deleted, or registered in another tenant): no permission can fix this connection; sc-remediator scan reports it as app-missing',
      fix: 'Recreate the connection with a live app registration (or delete it); see the scan report for the next step.',
    };
  const target = `${app.displayName} ${appId} (${names(connections)})`;
  if (!identity.objectId)
    return {
      ...base,
      target,
      status: 'skipped',
      detail: 'the Graph token carries no object id to compare owners with',
    };
  let owners: string[];
  try {
    owners = await graph.listOwnerIds(app.id);
  } catch (err) {
    return {
      ...base,
      target,
      status: 'missing',
      detail: `cannot read the owners: ${errorMessage(err)}`,
      fix:
        statusOf(err) === 403
          ? fixes.appRead(who)
          : 'Check that Microsoft Graph is reachable, then run the check again.',
    };
  }
  const objectId = identity.objectId.toLowerCase();
  if (owners.some((o) => o.toLowerCase() === objectId))
    return { ...base, target, status: 'ok', detail: 'readable, and the identity is an owner' };
  return {
    ...base,
    target,
    status: 'missing',
    detail: `the identity is not an owner (${owners.length} other owner${owners.length === 1 ? '' : 's'}): Application.ReadWrite.OwnedBy cannot add a password to it`,
    fix: fixes.owner(appId, who),
  };
}
