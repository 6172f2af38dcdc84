/**
 * The caller's role assignments on a service connection (`securityroles`), read only: which roles
 * the caller holds directly, and which groups hold Administrator.
 */
import { ServiceError } from '../errors';
import { trimSlash, type AzureDevOpsTransport } from './azureDevOpsTransport';

/** `securityroles` is still a preview resource. */
const SECURITY_ROLES_API_VERSION = '7.1-preview.1';

export class ConnectionRolesReader {
  constructor(private readonly rest: AzureDevOpsTransport) {}

  /**
   * The caller's role assignments on one connection, read only: `organization` reads scope
   * `distributedtask.collection.serviceendpointrole` (resource `collection_{id}`, the role the
   * organization-level PUT and DELETE check), `project` reads `distributedtask.serviceendpointrole`
   * (resource `{projectId}_{id}`). Returns the role names assigned directly to the caller (its
   * Azure DevOps identity from `connectionData`), and whether any group holds Administrator (a
   * role the caller may hold through that group cannot be seen here).
   */
  async connectionRoles(
    organizationUrl: string,
    connectionId: string,
    level: { organization: true } | { projectId: string },
  ): Promise<{ callerRoles: string[]; groupAdministrators: string[] }> {
    const callerId = await this.callerIdentityId(organizationUrl);
    const [scope, resource] =
      'organization' in level
        ? ['distributedtask.collection.serviceendpointrole', `collection_${connectionId}`]
        : ['distributedtask.serviceendpointrole', `${level.projectId}_${connectionId}`];
    const answer = await this.rest.send(
      'GET',
      this.rest.url(
        organizationUrl,
        ['_apis', 'securityroles', 'scopes', scope, 'roleassignments', 'resources', resource],
        {},
        SECURITY_ROLES_API_VERSION,
      ),
    );
    const body = answer.body as
      | { value?: { identity?: { id?: string; displayName?: string }; role?: { name?: string } }[] }
      | undefined;
    const callerRoles: string[] = [];
    const groupAdministrators: string[] = [];
    for (const assignment of body?.value ?? []) {
      const role = assignment.role?.name ?? '';
      if (assignment.identity?.id?.toLowerCase() === callerId.toLowerCase()) callerRoles.push(role);
      // Groups show as "[scope]\\Name" (e.g. "[contoso]\\Project Collection Administrators").
      else if (role === 'Administrator' && /^\[[^\]]+\]\\/.test(assignment.identity?.displayName ?? ''))
        groupAdministrators.push(assignment.identity?.displayName ?? '');
    }
    return { callerRoles, groupAdministrators };
  }

  private readonly callerIds = new Map<string, Promise<string>>();

  /** The caller's Azure DevOps identity id (`_apis/connectionData` → `authenticatedUser.id`). */
  private callerIdentityId(organizationUrl: string): Promise<string> {
    const key = trimSlash(organizationUrl).toLowerCase();
    let id = this.callerIds.get(key);
    if (!id) {
      id = this.rest
        .send('GET', this.rest.url(organizationUrl, ['_apis', 'connectionData']))
        .then((answer) => {
          const found = (answer.body as { authenticatedUser?: { id?: string } } | undefined)
            ?.authenticatedUser?.id;
          if (!found)
            throw new ServiceError(
              'azure-devops',
              'Azure DevOps connectionData named no authenticated user.',
              {
                status: answer.status,
              },
            );
          return found;
        });
      id.catch(() => this.callerIds.delete(key));
      this.callerIds.set(key, id);
    }
    return id;
  }
}
