/**
 * Azure DevOps adapter: projects and service endpoints (REST 7.1) through `@azure/core-rest-pipeline`.
 *
 * The endpoint reads and writes are here; around them:
 * - azureDevOpsTransport.ts: auth (Entra ID token or PAT), retries, answers and errors (the 203
 *   sign-in page an authentication failure);
 * - azureDevOpsPacing.ts: pacing by `Retry-After` and `X-RateLimit-Delay` (Learn, "Rate and usage
 *   limits" for Azure DevOps);
 * - azureDevOpsVerify.ts: the UI's Verify (`testConnection`);
 * - azureDevOpsSecurityRoles.ts: the caller's roles on a connection (`connectionRoles`).
 *
 * No secret value (PAT, token, `serviceprincipalkey`) is ever put in an error or a log line.
 */
import { PreconditionError, ServiceError } from '../errors';
import type {
  AzureDevOpsClient,
  ProjectRef,
  ServiceConnection,
  TestConnectionResult,
} from '../remediation/ports';
import { ConnectionRolesReader } from './azureDevOpsSecurityRoles';
import { AzureDevOpsTransport, type AzureDevOpsClientOptions } from './azureDevOpsTransport';
import { testConnection } from './azureDevOpsVerify';

/** Implements the core's `AzureDevOpsClient` against the Azure DevOps REST API 7.1. */
export class AzureDevOpsRestClient implements AzureDevOpsClient {
  private readonly rest: AzureDevOpsTransport;
  private readonly roles: ConnectionRolesReader;

  constructor(options: AzureDevOpsClientOptions) {
    this.rest = new AzureDevOpsTransport(options);
    this.roles = new ConnectionRolesReader(this.rest);
  }

  /** All projects of the organization, following `x-ms-continuationtoken`. Needs `vso.project`. */
  async listProjects(organizationUrl: string): Promise<ProjectRef[]> {
    const projects: ProjectRef[] = [];
    let continuationToken: string | undefined;
    const seen = new Set<string>();
    do {
      const query: Record<string, string> = { $top: '100' };
      if (continuationToken) query['continuationToken'] = continuationToken;
      const answer = await this.rest.send(
        'GET',
        this.rest.url(organizationUrl, ['_apis', 'projects'], query),
      );
      const body = answer.body as { value?: { id: string; name: string }[] } | undefined;
      for (const p of body?.value ?? []) projects.push({ id: p.id, name: p.name });
      continuationToken = answer.headers.get('x-ms-continuationtoken') ?? undefined;
      if (continuationToken && seen.has(continuationToken)) break; // a server repeating itself
      if (continuationToken) seen.add(continuationToken);
    } while (continuationToken);
    return projects;
  }

  /**
   * The project's Azure Resource Manager connections, failed ones included
   * (`type=azurerm&includeFailed=true&includeDetails=true`). Needs `vso.serviceendpoint`.
   * `actionFilter: 'manage'` keeps only the connections the caller may administer (the spec's
   * `ServiceEndpointActionFilter`): a read-only way to learn where it holds the Administrator role.
   */
  async listAzureRmConnections(
    organizationUrl: string,
    project: string,
    options: { actionFilter?: 'manage' } = {},
  ): Promise<ServiceConnection[]> {
    const query: Record<string, string> = { type: 'azurerm', includeFailed: 'true', includeDetails: 'true' };
    if (options.actionFilter) query['actionFilter'] = options.actionFilter;
    const answer = await this.rest.send(
      'GET',
      this.rest.url(organizationUrl, [project, '_apis', 'serviceendpoint', 'endpoints'], query),
    );
    const body = answer.body as { value?: ServiceConnection[] } | undefined;
    return body?.value ?? [];
  }

  /** One connection through a project it is shared with; undefined when it does not exist there. */
  async getConnection(
    organizationUrl: string,
    project: string,
    connectionId: string,
  ): Promise<ServiceConnection | undefined> {
    try {
      const answer = await this.rest.send(
        'GET',
        this.rest.url(organizationUrl, [project, '_apis', 'serviceendpoint', 'endpoints', connectionId]),
      );
      const body = answer.body as ServiceConnection | null | undefined;
      // An unknown id answers 200 with an empty (null) body.
      if (!body || typeof body !== 'object' || !body.id) return undefined;
      // A caller who may not view the connection's details gets `{id, name}` only: no data, no
      // authorization. Said plainly here rather than failing later on a missing field.
      if (!isDetailed(body))
        throw new ServiceError(
          'azure-devops',
          `Azure DevOps returned connection ${body.id} without its details (only id and name): the identity may not view this connection. Give it the Administrator role on the connection (Project settings → Service connections → the connection → ⋮ → Security), at organization level to let it update the connection.`,
          { status: 403, code: 'ConnectionDetailsHidden', transient: false },
        );
      return body;
    } catch (err) {
      if (
        err instanceof ServiceError &&
        err.status === 404 &&
        err.code === 'ServiceEndpointNotFoundException'
      )
        return undefined;
      throw err;
    }
  }

  /**
   * Organization-level PUT of the whole connection. Confidential parameters left out (or null)
   * keep their stored value. Needs the Administrator role on the connection and
   * `vso.serviceendpoint_manage`.
   */
  async updateConnection(
    organizationUrl: string,
    connection: ServiceConnection,
    operation?: string,
  ): Promise<ServiceConnection> {
    const query: Record<string, string> = {};
    if (operation) query['operation'] = operation;
    const answer = await this.rest.send(
      'PUT',
      this.rest.url(organizationUrl, ['_apis', 'serviceendpoint', 'endpoints', connection.id], query),
      connection,
    );
    const body = answer.body as ServiceConnection | undefined;
    if (!body || typeof body !== 'object')
      throw new ServiceError(
        'azure-devops',
        `Azure DevOps answered the update of ${connection.id} without a body.`,
        {
          status: answer.status,
        },
      );
    return body;
  }

  /**
   * Removes the connection from `projectIds` (from all of them: deletes it). `deep: false` leaves
   * the app registration alone. Needs the Administrator role and `vso.serviceendpoint_manage`.
   */
  async deleteConnection(
    organizationUrl: string,
    connectionId: string,
    projectIds: string[],
    deep: boolean,
  ): Promise<void> {
    if (projectIds.length === 0)
      throw new PreconditionError(`Deleting connection ${connectionId} needs at least one project id.`);
    await this.rest.send(
      'DELETE',
      this.rest.url(organizationUrl, ['_apis', 'serviceendpoint', 'endpoints', connectionId], {
        projectIds: projectIds.join(','),
        deep: String(deep),
      }),
    );
  }

  /** The UI's Verify of the stored credential (azureDevOpsVerify.ts). Needs `vso.serviceendpoint_query`. */
  testConnection(
    organizationUrl: string,
    project: string,
    connection: ServiceConnection,
  ): Promise<TestConnectionResult> {
    return testConnection(this.rest, organizationUrl, project, connection);
  }

  /** The caller's role assignments on one connection (azureDevOpsSecurityRoles.ts). */
  connectionRoles(
    organizationUrl: string,
    connectionId: string,
    level: { organization: true } | { projectId: string },
  ): Promise<{ callerRoles: string[]; groupAdministrators: string[] }> {
    return this.roles.connectionRoles(organizationUrl, connectionId, level);
  }
}

/** Whether a GET answer carries the connection's details (a view-less caller gets `{id, name}`). */
function isDetailed(body: ServiceConnection): boolean {
  const authorization = body.authorization as ServiceConnection['authorization'] | undefined;
  return (
    typeof authorization === 'object' &&
    authorization !== null &&
    typeof authorization.scheme === 'string' &&
    typeof body.data === 'object' &&
    body.data !== null
  );
}

/** The adapter as the core sees it. */
export function createAzureDevOpsClient(options: AzureDevOpsClientOptions): AzureDevOpsClient {
  return new AzureDevOpsRestClient(options);
}
