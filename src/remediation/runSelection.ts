/**
 * Which organizations and connections a run works on: the configured organizations only (no request
 * goes anywhere else), within `AZDO_PROJECTS`, one connection when asked for, and not those the
 * policy excludes (listed apart, never read further nor reported).
 */
import { PreconditionError } from '../errors';
import type { EngineDeps } from './engine';
import {
  discoverConnections,
  type DiscoveredConnection,
  type DiscoveryProblem,
  type DiscoveryResult,
} from './discovery';
import type { Intent } from './policy';
import { DEFAULT_POLICY, resolvePolicy, type PolicyDecision } from './policyFile';
import type { RunSettings } from './runInputs';

/** A connection the policy excludes: listed here, never read further nor reported. */
export interface ExcludedConnection {
  organization: string;
  connectionId: string;
  connectionName: string;
  /** Which rule excluded it (1-based), or the policy default. */
  rule?: number;
}

/** What a run remediates, out of what discovery found. */
interface Selection {
  /** In scope and not excluded by the policy, in discovery's order. */
  connections: DiscoveredConnection[];
  /** Discovery problems within the scope. */
  problems: DiscoveryProblem[];
  /** The policy's decision for each selected connection. */
  decisions: Map<DiscoveredConnection, PolicyDecision>;
  excluded: ExcludedConnection[];
  /** The configured name of an organization URL (the URL itself when not configured). */
  orgNameOf: (url: string) => string;
}

/**
 * Narrows what discovery found (maybe more than the run remediates: the usage census lists every
 * configured organization and project) to the run's organizations, `AZDO_PROJECTS`, the one
 * connection asked for, and what the policy does not exclude.
 */
export function selectConnections(
  discovery: Pick<DiscoveryResult, 'connections' | 'problems'>,
  organizations: { url: string; name: string }[],
  settings: Pick<RunSettings, 'projects' | 'policy'>,
  options: { connectionId?: string; intent?: Intent },
): Selection {
  const inScope = scopeFilter(organizations, settings.projects);
  const problems = discovery.problems.filter(
    (p) => inScope.organization(p.organizationUrl) && inScope.project(p.project),
  );
  let connections = discovery.connections.filter(
    (c) => inScope.organization(c.organizationUrl) && c.projects.some((p) => inScope.project(p.name, p.id)),
  );
  if (options.connectionId) {
    const wanted = options.connectionId.toLowerCase();
    connections = connections.filter((c) => c.connection.id.toLowerCase() === wanted);
  }
  const orgNameOf = (url: string): string =>
    organizations.find((o) => o.url.toLowerCase() === url.toLowerCase())?.name ?? url;
  const decisions = new Map<DiscoveredConnection, PolicyDecision>();
  const excluded: ExcludedConnection[] = [];
  connections = connections.filter((d) => {
    const decision = resolvePolicy(settings.policy ?? DEFAULT_POLICY, {
      organization: orgNameOf(d.organizationUrl),
      organizationUrl: d.organizationUrl,
      projects: d.projects.map((p) => p.name),
      connectionName: d.connection.name,
    });
    decisions.set(d, decision);
    // Excluded: not even read further, unless a person asked for this one (then reported as excluded).
    if (decision.choice !== 'exclude' || (options.intent && options.connectionId)) return true;
    excluded.push({
      organization: orgNameOf(d.organizationUrl),
      connectionId: d.connection.id,
      connectionName: d.connection.name,
      ...(decision.rule !== undefined ? { rule: decision.rule } : {}),
    });
    return false;
  });
  return { connections, problems, decisions, excluded, orgNameOf };
}

/**
 * What a run remediates: its organizations, and the projects of `AZDO_PROJECTS` (names or ids) when
 * set. A problem without a project concerns the organization's project listing.
 */
function scopeFilter(
  organizations: { url: string }[],
  projects: string[] | undefined,
): { organization(url: string): boolean; project(name?: string, id?: string): boolean } {
  const orgs = new Set(organizations.map((o) => o.url.toLowerCase()));
  const wanted = projects?.map((p) => p.toLowerCase());
  return {
    organization: (url) => orgs.has(url.toLowerCase()),
    project: (name, id) =>
      !wanted ||
      name === undefined ||
      wanted.includes(name.toLowerCase()) ||
      (id !== undefined && wanted.includes(id.toLowerCase())),
  };
}

/** Finds the configured organization a URL names; throws for anything not configured. */
export function configuredOrganization(
  settings: Pick<RunSettings, 'organizations'>,
  organization: string,
): { url: string; name: string } {
  const wanted = organization.replace(/\/+$/, '').toLowerCase();
  const match = settings.organizations.find(
    (o) => o.url.toLowerCase() === wanted || o.name.toLowerCase() === wanted,
  );
  if (!match)
    throw new PreconditionError(
      `Organization '${organization}' is not configured (AZDO_ORGANIZATION_URLS lists ${settings.organizations.map((o) => o.url).join(', ')}).`,
      'organization-not-configured',
    );
  return match;
}

/** One connection of a configured organization, as discovery finds it (within `AZDO_PROJECTS`). */
export async function findConnection(
  deps: Pick<EngineDeps, 'devops'>,
  settings: Pick<RunSettings, 'organizations' | 'projects' | 'maxConcurrency'>,
  organizationUrl: string,
  connectionId: string,
): Promise<DiscoveredConnection | undefined> {
  const org = configuredOrganization(settings, organizationUrl);
  const { connections } = await discoverConnections([org.url], deps.devops, {
    projects: settings.projects,
    concurrency: settings.maxConcurrency,
  });
  return connections.find((c) => c.connection.id.toLowerCase() === connectionId.toLowerCase());
}
