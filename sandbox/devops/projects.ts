/** Projects, the caller's connectionData and the role assignments of service connections. */
import type { Express } from 'express';
import type { SandboxContext } from '../index';
import type { IdentityRecord, OrgMember } from '../model';
import { administersProject, devopsIdentityId } from './auth';
import { findEndpoint, inProject, lower } from './fields';
import { callerOf, endpointNotFound, queryString, resolveProject, sendJson, versioned } from './request';
import { projectView } from './views';

export function mountProjectRoutes(app: Express, ctx: SandboxContext): void {
  const state = ctx.state;
  // Projects: paged with $top / continuationToken, `x-ms-continuationtoken` when more remain.
  app.get('/:org/_apis/projects', (req, res) => {
    if (!versioned(req, res, { major: 1, minor: 0 })) return;
    const { org } = callerOf(res);
    const top = Math.max(1, Math.min(Number(queryString(req, '$top') ?? '100') || 100, 1000));
    const skip =
      Number(queryString(req, 'continuationToken') ?? '0') || Number(queryString(req, '$skip') ?? '0') || 0;
    const page = org.projects.slice(skip, skip + top);
    if (skip + top < org.projects.length) res.setHeader('x-ms-continuationtoken', String(skip + top));
    sendJson(res, 200, { count: page.length, value: page.map((p) => projectView(ctx.urls.devops, org, p)) });
  });

  app.get('/:org/_apis/projects/:projectId', (req, res) => {
    if (!versioned(req, res, { major: 1, minor: 0 })) return;
    const { org } = callerOf(res);
    const project = resolveProject(res, org, String(req.params['projectId']));
    if (project) sendJson(res, 200, projectView(ctx.urls.devops, org, project));
  });

  // The caller's own Azure DevOps identity (its id is what role assignments name).
  app.get('/:org/_apis/connectionData', (req, res) => {
    const { identity, org } = callerOf(res);
    const id = devopsIdentityId(identity);
    const user = { id, descriptor: `aad.${id}`, providerDisplayName: identity.displayName, isActive: true };
    sendJson(res, 200, {
      authenticatedUser: user,
      authorizedUser: user,
      instanceId: org.id,
      deploymentType: 'hosted',
    });
  });

  // Role assignments of service connections (`securityroles`, 7.1-preview.1). Two scopes matter:
  // `distributedtask.collection.serviceendpointrole` with resource `collection_{endpointId}` (the
  // organization-level roles the PUT/DELETE check) and `distributedtask.serviceendpointrole` with
  // `{projectId}_{endpointId}` (project level). Scope ids from the public decompilation of
  // Microsoft.Azure.DevOps.ServiceEndpoints.Server (ServiceEndpointCollectionRoleScopeId) and
  // scripts using them (e.g. AzSK.ADO); the answer shape follows RoleAssignment (identity, role,
  // access). Only direct assignments are modelled.
  app.get('/:org/_apis/securityroles/scopes/:scope/roleassignments/resources/:resource', (req, res) => {
    if (!versioned(req, res, { major: 99, minor: 0 })) return;
    const caller = callerOf(res);
    const scope = lower(String(req.params['scope']));
    const resource = String(req.params['resource']);
    let holders: { member: OrgMember; identity: IdentityRecord }[] = [];
    const members = caller.org.members
      .map((member) => ({ member, identity: state.identities.get(member.identity) }))
      .filter((m): m is { member: OrgMember; identity: IdentityRecord } => m.identity !== undefined);
    if (scope === 'distributedtask.collection.serviceendpointrole' && /^collection_/i.test(resource)) {
      const ep = findEndpoint(caller.org, resource.replace(/^collection_/i, ''));
      if (ep) holders = members.filter((m) => m.member.endpointAdministrator);
    } else if (scope === 'distributedtask.serviceendpointrole' && resource.includes('_')) {
      const [projectPart, endpointPart] = resource.split('_') as [string, string];
      const project = caller.org.projects.find((p) => lower(p.id) === lower(projectPart));
      const ep = findEndpoint(caller.org, endpointPart);
      if (project && ep && inProject(ep, project))
        holders = members.filter((m) => administersProject(m.member, project.name));
    } else return endpointNotFound(res, resource);
    const value = holders.map(({ identity }) => ({
      identity: {
        displayName: identity.displayName,
        id: devopsIdentityId(identity),
        uniqueName: identity.displayName,
      },
      role: {
        allowPermissions: 3,
        denyPermissions: 0,
        identifier: `${scope}.Administrator`,
        description: 'Administrator can use and manage the service connection.',
        name: 'Administrator',
        displayName: 'Administrator',
        scope,
      },
      access: 'assigned',
      accessDisplayName: 'Assigned',
    }));
    sendJson(res, 200, { count: value.length, value });
  });
}
