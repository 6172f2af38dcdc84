/** The service endpoints routes: list, get, update, share and delete. */
import type { Express, Response } from 'express';
import type { EndpointRecord } from '../model';
import type { SandboxContext } from '../index';
import { administersProject } from './auth';
import { settleConversion } from './conversion';
import { argumentErrorBody, sendError, TYPE, wrapped } from './errors';
import { dataValue, findEndpoint, inProject, isFailed, lower, paramValue } from './fields';
import {
  callerOf,
  type Caller,
  csv,
  endpointNotFound,
  queryBool,
  queryString,
  requireAdministrator,
  resolveProject,
  sendJson,
  versioned,
} from './request';
import { applyUpdate } from './update';
import { view } from './views';

/**
 * The endpoint a write names, when the caller may write it: otherwise the 404 (unknown id) or the
 * 403 (not an Administrator) is sent and undefined returned.
 */
function administeredEndpoint(res: Response, caller: Caller, endpointId: string): EndpointRecord | undefined {
  const ep = findEndpoint(caller.org, endpointId);
  if (!ep) {
    endpointNotFound(res, endpointId);
    return undefined;
  }
  return requireAdministrator(res, caller) ? ep : undefined;
}

export function mountEndpointRoutes(app: Express, ctx: SandboxContext): void {
  const state = ctx.state;
  // List (and "by names") — project level.
  app.get('/:org/:project/_apis/serviceendpoint/endpoints', (req, res) => {
    if (!versioned(req, res, { major: 7, minor: 1 })) return;
    const caller = callerOf(res);
    const project = resolveProject(res, caller.org, String(req.params['project']));
    if (!project) return;
    const type = queryString(req, 'type');
    const schemes = csv(queryString(req, 'authSchemes')).map(lower);
    const ids = csv(queryString(req, 'endpointIds')).map(lower);
    const names = csv(queryString(req, 'endpointNames')).map(lower);
    const owner = queryString(req, 'owner');
    const includeFailed = queryBool(req, 'includeFailed');
    const actionFilter = lower(queryString(req, 'actionFilter') ?? 'none');
    // `manage` keeps what the caller may administer, and a project-level Administrator of the
    // connections may administer them in the project: the filter passes them too, although the
    // organization-level PUT/DELETE then answer 403. Sources: Learn, "Configure service connection
    // security in Azure Pipelines" (roles at project and object level); field report "Be careful
    // with service connections" (bzzzt.io, 2021): a project administrator's save of a new secret
    // is refused with "You need to be an organisation/collection level Administrator of the
    // service endpoint", project-level admins may only rename, describe and share.
    const manages = administersProject(caller.member, project.name);
    const value = [...caller.org.endpoints.values()]
      .filter((ep) => inProject(ep, project))
      .map((ep) => settleConversion(state, caller.org, ep))
      .filter((ep) => !type || lower(ep.type) === lower(type))
      .filter((ep) => schemes.length === 0 || schemes.includes(lower(ep.authorization.scheme)))
      .filter((ep) => ids.length === 0 || ids.includes(lower(ep.id)))
      .filter(
        (ep) =>
          names.length === 0 ||
          names.includes(lower(ep.name)) ||
          ep.serviceEndpointProjectReferences.some((r) => names.includes(lower(r.name))),
      )
      .filter((ep) => !owner || lower(ep.owner) === lower(owner))
      .filter((ep) => includeFailed || !isFailed(ep))
      .filter(() => actionFilter !== 'manage' || manages)
      .map((ep) => view(ctx.urls.devops, caller.org, ep, 'list'));
    sendJson(res, 200, { count: value.length, value });
  });

  // Get one — project level. An unknown id answers 200 with a null body, as the real service.
  app.get('/:org/:project/_apis/serviceendpoint/endpoints/:endpointId', (req, res) => {
    if (!versioned(req, res, { major: 7, minor: 1 })) return;
    const caller = callerOf(res);
    const project = resolveProject(res, caller.org, String(req.params['project']));
    if (!project) return;
    const ep = findEndpoint(caller.org, String(req.params['endpointId']));
    if (!ep || !inProject(ep, project)) {
      sendJson(res, 200, null);
      return;
    }
    settleConversion(state, caller.org, ep);
    // A caller without the right to view the connection's details gets its id and name only
    // (public report: microsoft/terraform-provider-azuredevops#1445, a Reader's read of an AzureRM
    // connection comes back without its details). Exact shape inferred: `{id, name}`.
    if (caller.member.viewConnections === false) {
      sendJson(res, 200, { id: ep.id, name: ep.name });
      return;
    }
    sendJson(res, 200, view(ctx.urls.devops, caller.org, ep, 'get'));
  });

  // Update — organization level.
  app.put('/:org/_apis/serviceendpoint/endpoints/:endpointId', (req, res) => {
    if (!versioned(req, res, { major: 7, minor: 1 })) return;
    const caller = callerOf(res);
    const endpointId = String(req.params['endpointId']);
    const ep = administeredEndpoint(res, caller, endpointId);
    if (!ep) return;
    settleConversion(state, caller.org, ep);
    if (ep.pendingConversion)
      // No public source for this refusal; chosen because it cannot lose the conversion in flight.
      return sendError(
        res,
        400,
        argumentErrorBody(
          'The service connection is being converted to another authentication scheme; try again when the conversion has completed.',
          'endpoint',
        ),
      );
    const result = applyUpdate(state, caller, ep, req.body, queryString(req, 'operation') ?? '');
    if (!result.ok) return sendError(res, 400, result.body);
    sendJson(res, 200, view(ctx.urls.devops, caller.org, ep, 'get'));
  });

  // Share with more projects — organization level.
  app.patch('/:org/_apis/serviceendpoint/endpoints/:endpointId', (req, res) => {
    if (!versioned(req, res, { major: 7, minor: 1 })) return;
    const caller = callerOf(res);
    const endpointId = String(req.params['endpointId']);
    const ep = administeredEndpoint(res, caller, endpointId);
    if (!ep) return;
    const refs: unknown = req.body;
    if (!Array.isArray(refs))
      return sendError(
        res,
        400,
        wrapped(
          'Value cannot be null.\r\nParameter name: endpointProjectReferences',
          TYPE.argumentNull,
          'ArgumentNullException',
        ),
      );
    for (const raw of refs as {
      projectReference?: { id?: string };
      name?: string;
      description?: string;
    }[]) {
      const project = caller.org.projects.find((p) => lower(p.id) === lower(raw.projectReference?.id ?? ''));
      if (!project) continue;
      if (!inProject(ep, project))
        ep.serviceEndpointProjectReferences.push({
          projectReference: { id: project.id, name: project.name },
          name: raw.name ?? ep.name,
          description: raw.description ?? '',
        });
    }
    ep.isShared = ep.serviceEndpointProjectReferences.length > 1;
    res.status(204).end();
  });

  // Delete — organization level, `projectIds` required; removing some projects only unshares.
  app.delete('/:org/_apis/serviceendpoint/endpoints/:endpointId', (req, res) => {
    if (!versioned(req, res, { major: 7, minor: 1 })) return;
    const caller = callerOf(res);
    const endpointId = String(req.params['endpointId']);
    const projectIds = csv(queryString(req, 'projectIds')).map(lower);
    if (projectIds.length === 0)
      return sendError(
        res,
        400,
        wrapped(
          'Value cannot be null.\r\nParameter name: projectIds',
          TYPE.argumentNull,
          'ArgumentNullException',
        ),
      );
    const ep = administeredEndpoint(res, caller, endpointId);
    if (!ep) return;
    // A deep delete of an Automatic connection makes Azure DevOps undo what it created in Azure (the
    // role assignment of the app's service principal); with the app gone that fails, which is why
    // the UI cannot delete such connections (field report "Deleting failed service connections").
    // `deep=false` leaves Azure and the app alone (spec: deep = "delete the spn created by
    // endpoint"), so it deletes directly. Message inferred.
    const remaining = ep.serviceEndpointProjectReferences.filter(
      (r) => !projectIds.includes(lower(r.projectReference.id)),
    );
    const spn = paramValue(ep.authorization.parameters, 'serviceprincipalid');
    if (
      queryBool(req, 'deep') &&
      remaining.length === 0 &&
      lower(dataValue(ep.data, 'creationMode') ?? '') === 'automatic' &&
      spn &&
      !state.appByAppId(spn)
    )
      return sendError(
        res,
        400,
        wrapped(
          `Failed to remove the Azure role assignment created for service connection '${ep.name}': the service principal of application '${spn}' was not found in the directory.`,
          TYPE.argument,
          'ArgumentException',
        ),
      );
    ep.serviceEndpointProjectReferences = remaining;
    ep.isShared = ep.serviceEndpointProjectReferences.length > 1;
    if (ep.serviceEndpointProjectReferences.length === 0) {
      for (const [key, value] of caller.org.endpoints) if (value === ep) caller.org.endpoints.delete(key);
      // deep=true: "delete the spn created by endpoint" — only an app Azure DevOps created (and
      // recorded in data.appObjectId) is deleted; deep=false leaves the app registration alone.
      if (queryBool(req, 'deep') && lower(dataValue(ep.data, 'creationMode') ?? '') === 'automatic') {
        const appObjectId = dataValue(ep.data, 'appObjectId');
        const spnId = paramValue(ep.authorization.parameters, 'serviceprincipalid');
        const app =
          (appObjectId ? state.appById(appObjectId) : undefined) ??
          (spnId ? state.appByAppId(spnId) : undefined);
        if (app) app.deleted = true;
      }
    }
    res.status(204).end();
  });
}
