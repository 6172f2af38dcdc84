/**
 * Discovery: every Azure Resource Manager connection of every configured organization, failed ones
 * included (the list hides them otherwise), each listed once even when shared with several projects.
 */
import pLimit from 'p-limit';
import { errorMessage } from '../telemetry';
import type { AzureDevOpsClient, ProjectRef, ServiceConnection } from './ports';

export interface DiscoveredConnection {
  organizationUrl: string;
  /** Projects the connection is shared with (from its project references). */
  projects: ProjectRef[];
  connection: ServiceConnection;
}

export interface DiscoveryProblem {
  organizationUrl: string;
  project?: string;
  message: string;
}

export interface DiscoveryResult {
  connections: DiscoveredConnection[];
  problems: DiscoveryProblem[];
  projectsScanned: number;
}

interface DiscoveryOptions {
  /** Only these projects (names or ids), when set (AZDO_PROJECTS). */
  projects?: string[];
  /** Requests in flight at once across organizations and projects. */
  concurrency: number;
  onProject?: (organizationUrl: string, project: string) => void;
}

/** Lists projects, then the AzureRM connections of each, deduplicated by connection id per organization. */
export async function discoverConnections(
  organizationUrls: string[],
  devops: AzureDevOpsClient,
  options: DiscoveryOptions,
): Promise<DiscoveryResult> {
  const limit = pLimit(Math.max(1, options.concurrency));
  const problems: DiscoveryProblem[] = [];
  const byKey = new Map<string, DiscoveredConnection>();
  let projectsScanned = 0;

  const projectLists = await Promise.all(
    organizationUrls.map((organizationUrl) =>
      limit(async () => {
        try {
          const all = await devops.listProjects(organizationUrl);
          const wanted = options.projects?.map((p) => p.toLowerCase());
          const projects = wanted
            ? all.filter((p) => wanted.includes(p.name.toLowerCase()) || wanted.includes(p.id.toLowerCase()))
            : all;
          return { organizationUrl, projects };
        } catch (err) {
          problems.push({ organizationUrl, message: `listing projects: ${errorMessage(err)}` });
          return { organizationUrl, projects: [] as ProjectRef[] };
        }
      }),
    ),
  );

  await Promise.all(
    projectLists.flatMap(({ organizationUrl, projects }) =>
      projects.map((project) =>
        limit(async () => {
          options.onProject?.(organizationUrl, project.name);
          try {
            const connections = await devops.listAzureRmConnections(organizationUrl, project.id);
            projectsScanned += 1;
            for (const connection of connections) {
              const key = `${organizationUrl.toLowerCase()}|${connection.id.toLowerCase()}`;
              const seen = byKey.get(key);
              const refs = connection.serviceEndpointProjectReferences.map((r) => ({
                id: r.projectReference.id,
                name: r.projectReference.name ?? r.projectReference.id,
              }));
              if (!refs.some((r) => r.id === project.id)) refs.push(project);
              if (!seen) byKey.set(key, { organizationUrl, projects: refs, connection });
              else
                for (const ref of refs)
                  if (!seen.projects.some((p) => p.id === ref.id)) seen.projects.push(ref);
            }
          } catch (err) {
            problems.push({
              organizationUrl,
              project: project.name,
              message: `listing connections: ${errorMessage(err)}`,
            });
          }
        }),
      ),
    ),
  );

  const connections = [...byKey.values()].sort(
    (a, b) =>
      a.organizationUrl.localeCompare(b.organizationUrl) ||
      a.connection.name.localeCompare(b.connection.name),
  );
  return { connections, problems, projectsScanned };
}
