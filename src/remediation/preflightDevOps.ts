/**
 * Preflight of each Azure DevOps organization (preflight.ts): reachable, the identity a user there
 * (the project list), and the identity holding the Administrator role on every AzureRM connection
 * at organization level (see preflight.ts for how that is read without writing).
 */
import { AuthenticationError } from '../errors';
import { errorMessage } from '../telemetry';
import type { CheckStatus, PreflightCheck, PreflightRun } from './preflight';
import { count, fixes, names, statusOf, type Who } from './preflightFixes';
import type { ProjectRef, ServiceConnection } from './ports';

export interface OrgScan {
  organizationUrl: string;
  /** Unique connections by id, with every project they were seen in. */
  connections: Map<string, { connection: ServiceConnection; manageable: boolean }>;
}

/** Where the organization-level Administrator role of a manageable connection stands. */
type OrgRole = 'administrator' | 'project-only' | { viaGroups: string[] } | { unreadable: string };

/** The checks of one organization; the scan (its connections) when its projects could be listed. */
export async function checkOrganization(
  run: PreflightRun,
  org: { url: string; name: string },
): Promise<OrgScan | undefined> {
  const { deps, settings, limit, add, who } = run;
  const wanted = settings.projects?.map((p) => p.toLowerCase());
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
    detail: `${count(projects.length, 'project')} visible${wanted ? `, ${selected.length} selected by AZDO_PROJECTS` : ''}`,
  });
  const scan: OrgScan = { organizationUrl: org.url, connections: new Map() };
  await Promise.all(
    selected.map(async (project) => {
      try {
        const [all, manageable] = await Promise.all([
          limit(() => deps.devops.listAzureRmConnections(org.url, project.id)),
          limit(() => deps.devops.listAzureRmConnections(org.url, project.id, { actionFilter: 'manage' })),
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
            const found = await limit(() => connectionRoles(org.url, connection.id, { organization: true }));
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
  // A fix for what is missing or doubtful, as every preflight row.
  const row = (name: string, status: CheckStatus, detail: string): PreflightCheck => ({
    area: 'azure-devops',
    name,
    target: org.url,
    status,
    detail,
    ...(status === 'missing' || status === 'warning' ? { fix: fixes.administrator(org.url, who) } : {}),
  });
  const orgLevel = 'connection Administrator (organization level)';
  if (projectOnly.length > 0)
    add(
      row(
        orgLevel,
        'missing',
        `Administrator of ${count(projectOnly.length, 'connection')} at project level only (listed by actionFilter=manage, but the organization-level update would answer 403): ${names(projectOnly)}`,
      ),
    );
  if (viaGroups.length > 0)
    add(
      row(
        orgLevel,
        'warning',
        `not an organization-level Administrator in its own name on ${count(viaGroups.length, 'connection')}; a group holds the role and may include the identity (not expanded): ${names(viaGroups)}`,
      ),
    );
  if (unreadable.length > 0)
    add(
      row(
        orgLevel,
        'warning',
        `the organization-level role assignments could not be read for ${count(unreadable.length, 'connection')}, so a project-level Administrator cannot be told from an organization-level one: ${names(unreadable)}`,
      ),
    );
  const anyLevel = 'connection Administrator';
  if (all.length === 0) add(row(anyLevel, 'skipped', 'no Azure Resource Manager connection to check'));
  else if (notManaged.length === 0)
    add(
      projectOnly.length > 0
        ? row(
            anyLevel,
            'missing',
            `may manage all ${count(all.length, 'Azure Resource Manager connection')}, but ${projectOnly.length} only at project level (see the organization-level row)`,
          )
        : row(
            anyLevel,
            'ok',
            `Administrator of all ${count(all.length, 'Azure Resource Manager connection')}${connectionRoles && viaGroups.length === 0 && unreadable.length === 0 ? ' (organization level)' : ''}`,
          ),
    );
  else
    add(
      row(
        anyLevel,
        'missing',
        `not Administrator of ${notManaged.length} of ${all.length} connections: ${names(notManaged)}`,
      ),
    );
  return scan;
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
