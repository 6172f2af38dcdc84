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
 * - each other tenant (`ADDITIONAL_TENANT_IDS`): a token of the multi-tenant app there (consent) with
 *   its Graph permission, and the apps of that tenant's connections owned by it (preflightTenants.ts).
 *
 * Here: the runner and the report. The checks by area: preflightIdentity.ts, preflightDevOps.ts,
 * preflightApps.ts, preflightStores.ts; the step that adds each missing prerequisite:
 * preflightFixes.ts.
 */
import pLimit from 'p-limit';
import { checkApps } from './preflightApps';
import { checkOrganization } from './preflightDevOps';
import { checkIdentity } from './preflightIdentity';
import type { Who } from './preflightFixes';
import { certificateConnections, checkStorage, checkVault, checkVaultCertificates } from './preflightStores';
import { checkTenants, type PreflightTenant } from './preflightTenants';
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
  vault: {
    url: string;
    checkAccess(): Promise<void>;
    /** Key Vault certificates (certificate-based connections), when the service can create them. */
    checkCertificateAccess?(): Promise<void>;
  };
  /** Undefined when no storage is configured (the CLI then locks within its own process). */
  storage?: { checkAccess(): Promise<{ containerExists: boolean; url: string }> };
  /** Graph in each other tenant (`ADDITIONAL_TENANT_IDS`), as the multi-tenant app. */
  tenants?: PreflightTenant[];
  /** Requests in flight at once. */
  concurrency: number;
  now?: () => Date;
}

export interface PreflightSettings {
  organizations: { url: string; name: string }[];
  /** AZDO_PROJECTS: only these projects (names or ids). */
  projects?: string[];
  /** ADDITIONAL_TENANT_IDS: their connections' apps are checked in their own tenant. */
  additionalTenantIds?: string[];
}

/** Adds one row to the report. */
export type AddCheck = (check: PreflightCheck) => void;

/** What every check of one preflight run shares. */
export interface PreflightRun {
  deps: PreflightDeps;
  settings: PreflightSettings;
  /** Bounds the requests in flight (`concurrency`). */
  limit: pLimit.Limit;
  add: AddCheck;
  /** The identity, as fixes name it. */
  who: Who;
}

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

  const { identity, who } = await checkIdentity(deps.graph, add);
  const run: PreflightRun = { deps, settings, limit, add, who };

  const scans = await Promise.all(settings.organizations.map((org) => checkOrganization(run, org)));
  await checkApps(run, scans, identity);
  if (deps.tenants?.length) await checkTenants(run, scans, deps.tenants);
  await checkVault(deps.vault, add, who);
  await checkVaultCertificates(deps.vault, add, who, certificateConnections(scans));
  await checkStorage(deps.storage, add, who);

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
