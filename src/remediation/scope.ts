/**
 * Adapters over the core's ports that let the run loop work on one connection, and watch what it
 * did, without changing the run loop: the queue worker and the HTTP API use them.
 */
import type { AzureDevOpsClient, Lease, LockProvider, ProjectRef, ServiceConnection } from './ports';

/**
 * An Azure DevOps client through which discovery sees exactly one connection, read with one GET
 * through a project it is shared with (`project`: name or id), instead of listing every project
 * and connection of the organization. Every other call goes to `inner` unchanged. The project is
 * reported with its real id and name (from the connection's project references).
 */
export function scopedToConnection(
  inner: AzureDevOpsClient,
  scope: { organizationUrl: string; project: string; connectionId: string },
): AzureDevOpsClient {
  let read: Promise<ServiceConnection | undefined> | undefined;
  const sameOrg = (url: string) => url.toLowerCase() === scope.organizationUrl.toLowerCase();
  const connection = () =>
    (read ??= inner.getConnection(scope.organizationUrl, scope.project, scope.connectionId).then(
      (c) => (c && c.id.toLowerCase() === scope.connectionId.toLowerCase() ? c : undefined),
      (err: unknown) => {
        read = undefined;
        throw err;
      },
    ));
  const projectOf = (c: ServiceConnection): ProjectRef => {
    const wanted = scope.project.toLowerCase();
    const ref = c.serviceEndpointProjectReferences.find(
      (r) =>
        r.projectReference.id.toLowerCase() === wanted || r.projectReference.name?.toLowerCase() === wanted,
    );
    return ref
      ? { id: ref.projectReference.id, name: ref.projectReference.name ?? ref.projectReference.id }
      : { id: scope.project, name: scope.project };
  };
  return {
    listProjects: async (organizationUrl) => {
      if (!sameOrg(organizationUrl)) return [];
      const c = await connection();
      return [c ? projectOf(c) : { id: scope.project, name: scope.project }];
    },
    listAzureRmConnections: async (organizationUrl) => {
      if (!sameOrg(organizationUrl)) return [];
      const c = await connection();
      return c ? [c] : [];
    },
    getConnection: (...args) => inner.getConnection(...args),
    updateConnection: (...args) => inner.updateConnection(...args),
    deleteConnection: (...args) => inner.deleteConnection(...args),
    testConnection: (...args) => inner.testConnection(...args),
  };
}

/**
 * Records, while listing, the first project each connection was found in, so a fan-out message can
 * name a project to read the connection through. Keys: `organizationUrl|connectionId`, lower case.
 */
export function recordingProjects(inner: AzureDevOpsClient): {
  devops: AzureDevOpsClient;
  projects: Map<string, string>;
} {
  const projects = new Map<string, string>();
  return {
    projects,
    devops: {
      listProjects: (...args) => inner.listProjects(...args),
      listAzureRmConnections: async (organizationUrl, project) => {
        const connections = await inner.listAzureRmConnections(organizationUrl, project);
        for (const c of connections) {
          const key = `${organizationUrl.toLowerCase()}|${c.id.toLowerCase()}`;
          if (!projects.has(key)) projects.set(key, project);
        }
        return connections;
      },
      getConnection: (...args) => inner.getConnection(...args),
      updateConnection: (...args) => inner.updateConnection(...args),
      deleteConnection: (...args) => inner.deleteConnection(...args),
      testConnection: (...args) => inner.testConnection(...args),
    },
  };
}

/** A lock provider that remembers whether a lock was refused (another rotation held it). */
export function watchingLocks(inner: LockProvider): { locks: LockProvider; refused: () => boolean } {
  let refused = false;
  return {
    refused: () => refused,
    locks: {
      tryAcquire: async (key: string, seconds: number): Promise<Lease | undefined> => {
        const lease = await inner.tryAcquire(key, seconds);
        if (!lease) refused = true;
        return lease;
      },
    },
  };
}
