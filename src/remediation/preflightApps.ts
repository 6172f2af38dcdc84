/**
 * Preflight of the apps behind secret-based connections (preflight.ts): each readable through
 * Microsoft Graph and owned by the identity (`GET /applications/{id}/owners`), which
 * Application.ReadWrite.OwnedBy requires to add passwords.
 */
import { errorMessage } from '../telemetry';
import type { PreflightCheck, PreflightGraph, PreflightRun } from './preflight';
import type { CallerIdentity } from './preflightIdentity';
import type { OrgScan } from './preflightDevOps';
import { count, fixes, names, type Who } from './preflightFixes';
import type { ApplicationInfo } from './ports';

const APP_OWNED = { area: 'entra-id', name: 'app owned by identity' } as const;

/** Checks the app of every secret-based connection the organizations' scans found. */
export async function checkApps(
  run: PreflightRun,
  scans: readonly (OrgScan | undefined)[],
  identity: CallerIdentity | undefined,
): Promise<void> {
  const { deps, settings, limit, add, who } = run;
  // Apps of the other configured tenants are checked in their own tenant (preflightTenants.ts).
  const others = new Set((settings.additionalTenantIds ?? []).map((t) => t.toLowerCase()));
  const apps = appsOfConnections(
    settings,
    scans,
    (tenantId) => tenantId === undefined || !others.has(tenantId),
  );
  await addAppChecks({ limit, add }, deps.graph, apps, identity, who, {
    fineDetail: 'readable, and the identity is an owner',
    sortProblems: true,
  });
  if (apps.size === 0 && identity)
    add({
      ...APP_OWNED,
      target: 'no secret-based connection',
      status: 'skipped',
      detail: 'no app to check',
    });
}

/**
 * Checks `apps` through `graph` (at most `limit` at once) and adds the rows: the apps that are fine in
 * one row, so 10,000 connections stay readable; each problem in a row of its own. `where` is appended
 * to every target (`in tenant …` for another tenant's apps).
 */
export async function addAppChecks(
  { limit, add }: Pick<PreflightRun, 'limit' | 'add'>,
  graph: PreflightGraph,
  apps: ReadonlyMap<string, { appId: string; connections: string[] }>,
  identity: { objectId?: string } | undefined,
  who: Who,
  rows: { fineDetail: string; where?: string; sortProblems?: boolean },
): Promise<void> {
  const checks = await Promise.all(
    [...apps.values()].map(({ appId, connections }) =>
      limit(() => checkApp(graph, appId, connections, identity, who)),
    ),
  );
  const where = rows.where ? ` ${rows.where}` : '';
  const fine = checks.filter((c) => c.status === 'ok');
  if (fine.length)
    add({
      ...APP_OWNED,
      target: `${count(fine.length, 'app')}${where}`,
      status: 'ok',
      detail: rows.fineDetail,
    });
  const problems = checks.filter((c) => c.status !== 'ok');
  if (rows.sortProblems) problems.sort((a, b) => a.target.localeCompare(b.target));
  for (const c of problems) add({ ...c, target: `${c.target}${where}` });
}

/** The apps of the secret-based connections the scans found whose tenant (lower-cased `tenantid`) `inTenant` accepts. */
export function appsOfConnections(
  settings: PreflightRun['settings'],
  scans: readonly (OrgScan | undefined)[],
  inTenant: (tenantId: string | undefined) => boolean,
): Map<string, { appId: string; connections: string[] }> {
  const apps = new Map<string, { appId: string; connections: string[] }>();
  for (const scan of scans) {
    if (!scan) continue;
    const orgName =
      settings.organizations.find((o) => o.url === scan.organizationUrl)?.name ?? scan.organizationUrl;
    for (const { connection } of scan.connections.values()) {
      const appId = connection.authorization?.parameters?.['serviceprincipalid'];
      if (connection.authorization?.scheme !== 'ServicePrincipal' || !appId) continue;
      if (!inTenant(connection.authorization.parameters['tenantid']?.toLowerCase() ?? undefined)) continue;
      const entry = apps.get(appId.toLowerCase()) ?? { appId, connections: [] };
      entry.connections.push(`${orgName}/${connection.name}`);
      apps.set(appId.toLowerCase(), entry);
    }
  }
  return apps;
}

async function checkApp(
  graph: PreflightGraph,
  appId: string,
  connections: string[],
  identity: { objectId?: string } | undefined,
  who: Who,
): Promise<PreflightCheck> {
  const base = { ...APP_OWNED, target: `${appId} (${names(connections)})` };
  if (!identity) return { ...base, status: 'skipped', detail: 'no Graph token (see the identity check)' };
  let app: ApplicationInfo | undefined;
  try {
    app = await graph.getApplicationByAppId(appId);
  } catch (err) {
    return { ...base, status: 'missing', detail: errorMessage(err), fix: fixes.graphRead(err, who) };
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
      fix: fixes.graphRead(err, who),
    };
  }
  const objectId = identity.objectId.toLowerCase();
  if (owners.some((o) => o.toLowerCase() === objectId))
    return { ...base, target, status: 'ok', detail: 'readable, and the identity is an owner' };
  return {
    ...base,
    target,
    status: 'missing',
    detail: `the identity is not an owner (${count(owners.length, 'other owner')}): Application.ReadWrite.OwnedBy cannot add a password to it`,
    fix: fixes.owner(appId, who),
  };
}
