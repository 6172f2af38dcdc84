/**
 * Simulated Azure DevOps Services: projects and the service endpoints REST API (7.1 spec,
 * `specs/azure-devops/7.1/serviceEndpoint.json`) for the organizations of the scenario, at
 * `/{organization}`. It reproduces the behaviours that make service connections hard to repair:
 *
 * - the list hides failed connections unless `includeFailed=true`;
 * - confidential parameters (`serviceprincipalkey`) never come back; a PUT without them keeps them;
 * - a PUT of a connection still `creationMode: Automatic` makes Azure DevOps rotate the app secret
 *   itself and remove every other password on the app;
 * - with `creationMode: Manual`, `azureSpnRoleAssignmentId`, `spnObjectId`, `appObjectId` are refused;
 * - `authorization.parameters.accesstoken: null` (or `''`) breaks the connection;
 * - isReady follows the stored credential through the shared Entra ID rule; TestConnection tests
 *   what is sent (a confidential key sent null means the stored value, one left out means none);
 * - a Manual spnKey PUT must carry `serviceprincipalkey` (null keeps the stored one, absent is a 400);
 * - PUT/DELETE are organization-level and need the organization-level Administrator role;
 *   `actionFilter=manage` also lists connections to project-level Administrators; DELETE needs
 *   `projectIds`; role assignments can be read per scope (`securityroles`);
 * - a caller who may not view a connection's details gets only `{id, name}` from GET;
 * - `ConvertAuthenticationScheme` may answer while the conversion is still InProgress;
 * - a bad PAT gets HTTP 203 with an HTML sign-in page, anonymous calls 401 TF400813;
 * - every call needs an `api-version` (query or Accept header).
 *
 * Error bodies use Azure DevOps' WrappedException JSON (`$id`, `message`, `typeName`, `typeKey`, …).
 */
import { randomUUID } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { checkClientSecret, checkFederatedCredential, type CredentialCheck } from './credentials';
import { federationFor, TOKEN_EXCHANGE_AUDIENCE } from './federation';
import type { SandboxContext } from './index';
import type {
  EndpointRecord,
  IdentityRecord,
  OrganizationRecord,
  OrgMember,
  PasswordCredentialRecord,
  ProjectRecord,
  TenantState,
} from './model';
import { generateSecretText, stableGuid, takeComputedEndpoints } from './scenario';
import type { ServiceDefinition } from './server';
import { AUDIENCES } from './tokens';

const DAY_MS = 24 * 3600 * 1000;

/** Parameters Azure DevOps never returns (input descriptors with `isConfidential`). Lower-case. */
const CONFIDENTIAL_PARAMETERS = new Set([
  'serviceprincipalkey',
  'serviceprincipalcertificate',
  'accesstoken',
  'password',
  'apitoken',
  'certificate',
]);

/** Data fields Azure DevOps records for objects it created; refused on a Manual connection. */
const AUTOMATIC_ONLY_DATA_FIELDS = ['azureSpnRoleAssignmentId', 'spnObjectId', 'appObjectId'];

/** Failure status text Azure DevOps shows for a broken `accesstoken` (troubleshoot-verify doc). */
export const ACCESS_TOKEN_INVALID_MESSAGE =
  'Failed to get Azure DevOps Service access token, cache value is invalid.';

/** Prefix of the JWT failure Azure DevOps reports for a service principal it cannot sign in as. */
export const JWT_FAILURE_PREFIX =
  'Failed to obtain the Json Web Token(JWT) using service principal client ID. Exception message: ';

/** Newest REST API version the simulated server supports (7.2 is still preview). */
const LATEST_VERSION = { major: 7, minor: 2 };

// ---------------------------------------------------------------------------------------------
// Error bodies

interface WrappedException {
  $id: '1';
  innerException: null;
  message: string;
  typeName: string;
  typeKey: string;
  errorCode: 0;
  eventId: number;
}

function wrapped(message: string, typeName: string, typeKey: string, eventId = 3000): WrappedException {
  return { $id: '1', innerException: null, message, typeName, typeKey, errorCode: 0, eventId };
}

const TYPE = {
  unauthorized:
    'Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, Microsoft.TeamFoundation.Framework.Server',
  accessCheck:
    'Microsoft.VisualStudio.Services.Security.AccessCheckException, Microsoft.VisualStudio.Services.WebApi',
  argument: 'System.ArgumentException, mscorlib',
  argumentNull: 'System.ArgumentNullException, mscorlib',
  requestBlocked:
    'Microsoft.TeamFoundation.Framework.Server.RequestBlockedException, Microsoft.TeamFoundation.Framework.Server',
  projectByName:
    'Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistWithNameException, Microsoft.TeamFoundation.Core.WebApi',
  projectById:
    'Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistException, Microsoft.TeamFoundation.Core.WebApi',
  endpointNotFound:
    'Microsoft.VisualStudio.Services.ServiceEndpoints.WebApi.ServiceEndpointNotFoundException, Microsoft.VisualStudio.Services.ServiceEndpoints.WebApi',
  versionNotSpecified:
    'Microsoft.VisualStudio.Services.WebApi.VssVersionNotSpecifiedException, Microsoft.VisualStudio.Services.WebApi',
  versionOutOfRange:
    'Microsoft.VisualStudio.Services.WebApi.VssVersionOutOfRangeException, Microsoft.VisualStudio.Services.WebApi',
  invalidPreview:
    'Microsoft.VisualStudio.Services.WebApi.VssInvalidPreviewVersionException, Microsoft.VisualStudio.Services.WebApi',
  invalidVersion:
    'Microsoft.VisualStudio.Services.WebApi.VssInvalidApiResourceVersionException, Microsoft.VisualStudio.Services.WebApi',
  resourceNotFound:
    'Microsoft.VisualStudio.Services.WebApi.VssResourceNotFoundException, Microsoft.VisualStudio.Services.WebApi',
  hostNotFound:
    'Microsoft.TeamFoundation.Framework.Server.HostDoesNotExistException, Microsoft.TeamFoundation.Framework.Server',
} as const;

function sendError(res: Response, status: number, body: WrappedException): void {
  res.status(status).json(body);
}

/** Error JSON for injected faults (429 gets Azure DevOps' own throttling text). */
function formatError(status: number, code: string, message: string): WrappedException {
  if (status === 429)
    return wrapped(
      "TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource 'Core' in namespace 'User'. For more information on why your request was blocked, see the topic \"Rate limits\" on the Microsoft Web site (https://go.microsoft.com/fwlink/?LinkId=823950).",
      TYPE.requestBlocked,
      'RequestBlockedException',
    );
  return wrapped(
    message,
    `Microsoft.VisualStudio.Services.WebApi.${code}Exception, Microsoft.VisualStudio.Services.WebApi`,
    `${code}Exception`,
  );
}

// ---------------------------------------------------------------------------------------------
// The HTML Azure DevOps serves instead of a 401 to a request with a bad PAT.

const SIGN_IN_PAGE = `<!DOCTYPE html>
<html lang="en-US">
<head>
  <meta charset="utf-8">
  <title>Azure DevOps Services | Sign In</title>
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
</head>
<body>
  <div id="signin">
    <h1>Azure DevOps</h1>
    <p>Sign in to your account to continue.</p>
    <a href="https://app.vssps.visualstudio.com/_signin?realm=dev.azure.com">Sign in</a>
  </div>
</body>
</html>
`;

// ---------------------------------------------------------------------------------------------
// Helpers

function lower(value: string): string {
  return value.toLowerCase();
}

function csv(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  return value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

function queryString(req: Request, name: string): string | undefined {
  // Query parameter names are case-insensitive in Azure DevOps.
  for (const [k, v] of Object.entries(req.query))
    if (lower(k) === lower(name) && typeof v === 'string') return v;
  return undefined;
}

function queryBool(req: Request, name: string): boolean {
  return lower(queryString(req, name) ?? '') === 'true';
}

function isGuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}

function paramKey(parameters: Record<string, string | null>, name: string): string | undefined {
  return Object.keys(parameters).find((k) => lower(k) === lower(name));
}

function paramValue(parameters: Record<string, string | null>, name: string): string | null | undefined {
  const key = paramKey(parameters, name);
  return key === undefined ? undefined : parameters[key];
}

/** Endpoint ids are GUIDs, compared case-insensitively. */
function findEndpoint(org: OrganizationRecord, id: string): EndpointRecord | undefined {
  const direct = org.endpoints.get(id);
  if (direct) return direct;
  for (const ep of org.endpoints.values()) if (lower(ep.id) === lower(id)) return ep;
  return undefined;
}

function dataValue(data: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(data).find((k) => lower(k) === lower(name));
  return key === undefined ? undefined : data[key];
}

/** First line of an Entra ID error description ("AADSTS7000215: Invalid client secret provided. …"). */
function aadstsFirstLine(check: Extract<CredentialCheck, { ok: false }>): string {
  return check.body.error_description.split(/\r?\n/)[0] ?? check.body.error_description;
}

// ---------------------------------------------------------------------------------------------
// api-version

type VersionCheck = { ok: true; version: string } | { ok: false; body: WrappedException };

/**
 * Reads `api-version` from the query or the Accept header and checks it like the real server
 * (`GitHub.Services.WebApi` resource strings). `gaFrom`: the first GA version of the resource.
 */
function checkApiVersion(req: Request, gaFrom: { major: number; minor: number }): VersionCheck {
  let raw = queryString(req, 'api-version');
  if (raw === undefined) {
    const accept = req.headers.accept ?? '';
    const match = /api-version\s*=\s*([^;,\s]+)/i.exec(accept);
    raw = match?.[1];
  }
  if (raw === undefined || raw === '')
    return {
      ok: false,
      body: wrapped(
        `No api-version was supplied for the "${req.method}" request. The version must be supplied either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a query parameter (e.g. "?api-version=1.0").`,
        TYPE.versionNotSpecified,
        'VssVersionNotSpecifiedException',
      ),
    };
  const match = /^(\d+)\.(\d+)(-preview(\.\d+)?)?$/i.exec(raw);
  if (!match)
    return {
      ok: false,
      body: wrapped(
        `Invalid api version string: "${raw}". Api version string must be in the format: {Major}.{Minor}[-preview[.{ResourceVersion}]].`,
        TYPE.invalidVersion,
        'VssInvalidApiResourceVersionException',
      ),
    };
  const major = Number(match[1]);
  const minor = Number(match[2]);
  const preview = match[3] !== undefined;
  const cmp = (a: { major: number; minor: number }): number =>
    major !== a.major ? major - a.major : minor - a.minor;
  if (cmp(LATEST_VERSION) > 0)
    return {
      ok: false,
      body: wrapped(
        `The requested REST API version of ${major}.${minor} is out of range for this server. The latest REST API version this server supports is ${LATEST_VERSION.major}.${LATEST_VERSION.minor}.`,
        TYPE.versionOutOfRange,
        'VssVersionOutOfRangeException',
      ),
    };
  const isGa = cmp(gaFrom) >= 0 && cmp(LATEST_VERSION) < 0;
  if (!preview && !isGa)
    return {
      ok: false,
      body: wrapped(
        `The requested version "${major}.${minor}" of the resource is under preview. The -preview flag must be supplied in the api-version for such requests. For example: "${major}.${minor}-preview"`,
        TYPE.invalidPreview,
        'VssInvalidPreviewVersionException',
      ),
    };
  return { ok: true, version: raw };
}

// ---------------------------------------------------------------------------------------------
// The service

interface Caller {
  identity: IdentityRecord;
  org: OrganizationRecord;
  member: OrgMember;
}

/** The Azure DevOps identity id of a member (not its Entra object id), as connectionData gives it. */
function devopsIdentityId(identity: IdentityRecord): string {
  return stableGuid('ado-identity', identity.key);
}

/** Whether the member administers the connections of `projectName` (organization or project level). */
function administersProject(member: OrgMember, projectName: string): boolean {
  return (
    member.endpointAdministrator ||
    (member.projectAdministratorOf ?? []).some((p) => lower(p) === lower(projectName))
  );
}

export function devopsService(ctx: SandboxContext): ServiceDefinition {
  const state: TenantState = ctx.state;

  // Connections whose state the scenario left to the service: settle them now, once.
  for (const ref of takeComputedEndpoints(state)) {
    const [orgName, endpointId] = ref.split('/') as [string, string];
    const org = state.organization(orgName);
    const endpoint = org?.endpoints.get(endpointId);
    if (endpoint) computeStatus(state, endpoint);
  }

  const orgUrl = (org: OrganizationRecord): string => `${ctx.urls.devops}/${org.name}`;

  // --- authentication ------------------------------------------------------------------------

  function challenge(res: Response): void {
    res.setHeader('WWW-Authenticate', [
      `Bearer authorization_uri=${ctx.urls.authority}/${state.tenantId}`,
      `Basic realm="${ctx.urls.devops}/"`,
      'TFS-Federated',
    ]);
  }

  function anonymous(res: Response): void {
    challenge(res);
    sendError(
      res,
      401,
      wrapped(
        'TF400813: Resource not available for anonymous access. Client authentication required.',
        TYPE.unauthorized,
        'UnauthorizedRequestException',
      ),
    );
  }

  function identify(req: Request, res: Response): IdentityRecord | undefined {
    const authorization = req.headers.authorization;
    if (!authorization) {
      anonymous(res);
      return undefined;
    }
    if (/^Basic\s+/i.test(authorization)) {
      const decoded = Buffer.from(authorization.replace(/^Basic\s+/i, '').trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const pat = colon >= 0 ? decoded.slice(colon + 1) : decoded;
      const identity = pat ? state.identityByPat(pat) : undefined;
      if (identity) return identity;
      // The real service answers a bad or expired PAT with its sign-in page (HTTP 203), unless the
      // client asked for a plain 401 with `X-TFS-FedAuthRedirect: Suppress`.
      if (lower(String(req.headers['x-tfs-fedauthredirect'] ?? '')) === 'suppress') {
        anonymous(res);
        return undefined;
      }
      res.status(203).type('text/html; charset=utf-8').send(SIGN_IN_PAGE);
      return undefined;
    }
    const check = ctx.tokens.verifyBearer(authorization, AUDIENCES.devops);
    if (!check.ok) {
      anonymous(res);
      return undefined;
    }
    const identity =
      state.identities.get(check.claims.sbx) ??
      (check.claims.appid ? state.identityByAppId(check.claims.appid) : undefined);
    if (!identity) {
      challenge(res);
      sendError(
        res,
        401,
        wrapped(
          `TF400813: The user '${check.claims.tid}\\${check.claims.oid}' is not authorized to access this resource.`,
          TYPE.unauthorized,
          'UnauthorizedRequestException',
        ),
      );
      return undefined;
    }
    return identity;
  }

  /** Authenticates the caller for the organization in the first path segment. */
  function authenticate(req: Request, res: Response, next: NextFunction): void {
    const identity = identify(req, res);
    if (!identity) return;
    res.locals['caller'] = identity.key;
    let orgName = req.path.split('/')[1] ?? '';
    try {
      orgName = decodeURIComponent(orgName);
    } catch {
      // keep it as sent
    }
    const org = state.organization(orgName);
    if (!org) {
      sendError(
        res,
        404,
        wrapped(
          `TF400813: The organization '${orgName}' does not exist or you do not have access to it.`,
          TYPE.hostNotFound,
          'HostDoesNotExistException',
        ),
      );
      return;
    }
    const member = org.members.find((m) => m.identity === identity.key);
    if (!member) {
      challenge(res);
      sendError(
        res,
        401,
        wrapped(
          `TF400813: The user '${state.tenantId}\\${identity.objectId}' is not authorized to access this resource.`,
          TYPE.unauthorized,
          'UnauthorizedRequestException',
        ),
      );
      return;
    }
    const caller: Caller = { identity, org, member };
    res.locals['devopsCaller'] = caller;
    next();
  }

  const callerOf = (res: Response): Caller => res.locals['devopsCaller'] as Caller;

  /** Checks api-version; answers and returns false when it is missing or unsupported. */
  function versioned(req: Request, res: Response, gaFrom: { major: number; minor: number }): boolean {
    const check = checkApiVersion(req, gaFrom);
    if (!check.ok) {
      sendError(res, 400, check.body);
      return false;
    }
    res.locals['apiVersion'] = check.version;
    return true;
  }

  function sendJson(res: Response, status: number, body: unknown): void {
    const version = (res.locals['apiVersion'] as string | undefined) ?? '7.1';
    res
      .status(status)
      .setHeader('Content-Type', `application/json; charset=utf-8; api-version=${version}`)
      .send(JSON.stringify(body));
  }

  function resolveProject(
    res: Response,
    org: OrganizationRecord,
    nameOrId: string,
  ): ProjectRecord | undefined {
    const project = org.projects.find(
      (p) => lower(p.id) === lower(nameOrId) || lower(p.name) === lower(nameOrId),
    );
    if (project) return project;
    if (isGuid(nameOrId))
      sendError(
        res,
        404,
        wrapped(
          `VS800075: The project with id 'vstfs:///Classification/TeamProject/${nameOrId}' does not exist, or you do not have permission to access it.`,
          TYPE.projectById,
          'ProjectDoesNotExistException',
        ),
      );
    else
      sendError(
        res,
        404,
        wrapped(
          `TF200016: The following project does not exist: ${nameOrId}. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.`,
          TYPE.projectByName,
          'ProjectDoesNotExistWithNameException',
        ),
      );
    return undefined;
  }

  function requireAdministrator(res: Response, caller: Caller): boolean {
    if (caller.member.endpointAdministrator) return true;
    sendError(
      res,
      403,
      wrapped(
        'You need to be an organization/collection level Administrator of the service endpoint to perform this operation.',
        TYPE.accessCheck,
        'AccessCheckException',
      ),
    );
    return false;
  }

  function endpointNotFound(res: Response, endpointId: string): void {
    sendError(
      res,
      404,
      wrapped(
        `Service connection with id '${endpointId}' could not be found.`,
        TYPE.endpointNotFound,
        'ServiceEndpointNotFoundException',
      ),
    );
  }

  // --- views -----------------------------------------------------------------------------------

  /** An endpoint as Azure DevOps returns it: confidential values null (GET) or left out (list). */
  function view(org: OrganizationRecord, ep: EndpointRecord, mode: 'get' | 'list'): Record<string, unknown> {
    const parameters: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(ep.authorization.parameters)) {
      // The list leaves confidential values out; GET gives them as null. A stored `accesstoken`
      // shows as null in both (it is what the UI then sends back and breaks the connection with).
      if (CONFIDENTIAL_PARAMETERS.has(lower(k))) {
        if (mode === 'get' || lower(k) === 'accesstoken') parameters[k] = null;
      } else parameters[k] = v;
    }
    return {
      data: { ...ep.data },
      id: ep.id,
      name: ep.name,
      type: ep.type,
      url: ep.url,
      createdBy: {
        displayName: ep.createdBy.displayName,
        url: `${orgUrl(org)}/_apis/Identities/${ep.createdBy.id}`,
        id: ep.createdBy.id,
      },
      description: ep.description,
      authorization: { parameters, scheme: ep.authorization.scheme },
      isShared: ep.isShared,
      isReady: ep.isReady,
      owner: ep.owner,
      serviceEndpointProjectReferences: ep.serviceEndpointProjectReferences.map((r) => ({
        projectReference: { ...r.projectReference },
        name: r.name,
        description: r.description,
      })),
      operationStatus: { ...ep.operationStatus },
    };
  }

  function projectView(org: OrganizationRecord, p: ProjectRecord): Record<string, unknown> {
    return {
      id: p.id,
      name: p.name,
      url: `${orgUrl(org)}/_apis/projects/${p.id}`,
      state: 'wellFormed',
      revision: parseInt(p.id.replace(/-/g, '').slice(0, 6), 16) % 1000,
      visibility: 'private',
      lastUpdateTime: '2024-01-15T09:30:00.000Z',
    };
  }

  const isFailed = (ep: EndpointRecord): boolean => !ep.isReady || ep.operationStatus.state === 'Failed';
  const inProject = (ep: EndpointRecord, project: ProjectRecord): boolean =>
    ep.serviceEndpointProjectReferences.some((r) => lower(r.projectReference.id) === lower(project.id));

  // --- routes ------------------------------------------------------------------------------------

  function mount(app: Express): void {
    app.use(authenticate);
    app.use(express.json({ limit: '1mb', type: ['application/json', 'application/*+json', 'text/json'] }));

    // Projects: paged with $top / continuationToken, `x-ms-continuationtoken` when more remain.
    app.get('/:org/_apis/projects', (req, res) => {
      if (!versioned(req, res, { major: 1, minor: 0 })) return;
      const { org } = callerOf(res);
      const top = Math.max(1, Math.min(Number(queryString(req, '$top') ?? '100') || 100, 1000));
      const skip =
        Number(queryString(req, 'continuationToken') ?? '0') || Number(queryString(req, '$skip') ?? '0') || 0;
      const page = org.projects.slice(skip, skip + top);
      if (skip + top < org.projects.length) res.setHeader('x-ms-continuationtoken', String(skip + top));
      sendJson(res, 200, { count: page.length, value: page.map((p) => projectView(org, p)) });
    });

    app.get('/:org/_apis/projects/:projectId', (req, res) => {
      if (!versioned(req, res, { major: 1, minor: 0 })) return;
      const { org } = callerOf(res);
      const project = resolveProject(res, org, String(req.params['projectId']));
      if (project) sendJson(res, 200, projectView(org, project));
    });

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
        .map((ep) => settleConversion(caller.org, ep))
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
        .map((ep) => view(caller.org, ep, 'list'));
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
      settleConversion(caller.org, ep);
      // A caller without the right to view the connection's details gets its id and name only
      // (public report: microsoft/terraform-provider-azuredevops#1445, a Reader's read of an AzureRM
      // connection comes back without its details). Exact shape inferred: `{id, name}`.
      if (caller.member.viewConnections === false) {
        sendJson(res, 200, { id: ep.id, name: ep.name });
        return;
      }
      sendJson(res, 200, view(caller.org, ep, 'get'));
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

    // Update — organization level.
    app.put('/:org/_apis/serviceendpoint/endpoints/:endpointId', (req, res) => {
      if (!versioned(req, res, { major: 7, minor: 1 })) return;
      const caller = callerOf(res);
      const endpointId = String(req.params['endpointId']);
      const ep = findEndpoint(caller.org, endpointId);
      if (!ep) return endpointNotFound(res, endpointId);
      if (!requireAdministrator(res, caller)) return;
      settleConversion(caller.org, ep);
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
      const result = applyUpdate(caller, ep, req.body, queryString(req, 'operation') ?? '');
      if (!result.ok) return sendError(res, 400, result.body);
      sendJson(res, 200, view(caller.org, ep, 'get'));
    });

    // Share with more projects — organization level.
    app.patch('/:org/_apis/serviceendpoint/endpoints/:endpointId', (req, res) => {
      if (!versioned(req, res, { major: 7, minor: 1 })) return;
      const caller = callerOf(res);
      const endpointId = String(req.params['endpointId']);
      const ep = findEndpoint(caller.org, endpointId);
      if (!ep) return endpointNotFound(res, endpointId);
      if (!requireAdministrator(res, caller)) return;
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
        const project = caller.org.projects.find(
          (p) => lower(p.id) === lower(raw.projectReference?.id ?? ''),
        );
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
      const ep = findEndpoint(caller.org, endpointId);
      if (!ep) return endpointNotFound(res, endpointId);
      if (!requireAdministrator(res, caller)) return;
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

    // Endpoint proxy: the UI's "Verify" (dataSourceName TestConnection). Always HTTP 200.
    app.post('/:org/:project/_apis/serviceendpoint/endpointproxy', (req, res) => {
      if (!versioned(req, res, { major: 7, minor: 1 })) return;
      const caller = callerOf(res);
      const project = resolveProject(res, caller.org, String(req.params['project']));
      if (!project) return;
      const body = (req.body ?? {}) as {
        dataSourceDetails?: { dataSourceName?: string };
        serviceEndpointDetails?: {
          authorization?: { scheme?: string; parameters?: Record<string, string | null> };
          data?: Record<string, string>;
        };
      };
      const endpointId = queryString(req, 'endpointId') ?? '';
      const stored = endpointId ? findEndpoint(caller.org, endpointId) : undefined;
      if (stored) settleConversion(caller.org, stored);
      const details = body.serviceEndpointDetails;
      if (!stored && !details?.authorization)
        return sendError(
          res,
          400,
          wrapped(
            'Value cannot be null.\r\nParameter name: endpointId',
            TYPE.argumentNull,
            'ArgumentNullException',
          ),
        );
      const dataSource = body.dataSourceDetails?.dataSourceName ?? '';
      if (lower(dataSource) !== 'testconnection')
        return sendJson(res, 200, {
          result: [],
          statusCode: 'badRequest',
          errorMessage: `Data source '${dataSource}' is not supported by this sandbox.`,
        });
      sendJson(res, 200, testConnection(stored, details));
    });

    // Anything else under an organization: Azure DevOps' "not registered" answer.
    app.use((req: Request, res: Response) => {
      sendError(
        res,
        404,
        wrapped(
          `API resource location ${req.method} ${req.path} is not registered on ${ctx.urls.devops}/.`,
          TYPE.resourceNotFound,
          'VssResourceNotFoundException',
        ),
      );
    });

    // Malformed JSON bodies and other thrown errors.
    app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) return next(err);
      const status = (err as { status?: number }).status ?? 500;
      sendError(
        res,
        status,
        status === 400
          ? wrapped('The request body could not be parsed as JSON.', TYPE.argument, 'ArgumentException')
          : wrapped('TF400898: An Internal Error Occurred.', TYPE.argument, 'InternalServerErrorException'),
      );
    });
  }

  // --- update ------------------------------------------------------------------------------------

  type UpdateResult = { ok: true } | { ok: false; body: WrappedException };

  function argumentErrorBody(message: string, parameter: string): WrappedException {
    return wrapped(`${message}\r\nParameter name: ${parameter}`, TYPE.argument, 'ArgumentException', 0);
  }

  function argumentError(message: string, parameter: string): UpdateResult {
    return { ok: false, body: argumentErrorBody(message, parameter) };
  }

  function applyUpdate(caller: Caller, ep: EndpointRecord, raw: unknown, operation: string): UpdateResult {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      return {
        ok: false,
        body: wrapped(
          'Value cannot be null.\r\nParameter name: endpoint',
          TYPE.argumentNull,
          'ArgumentNullException',
        ),
      };
    const body = raw as {
      id?: unknown;
      name?: unknown;
      description?: unknown;
      url?: unknown;
      data?: unknown;
      authorization?: { scheme?: unknown; parameters?: unknown } | null;
      serviceEndpointProjectReferences?: unknown;
    };
    if (typeof body.id === 'string' && body.id !== '' && lower(body.id) !== lower(ep.id))
      return argumentError(
        `The endpoint id '${body.id}' in the request body does not match the endpoint id '${ep.id}' in the URL.`,
        'endpoint.Id',
      );

    // data: a map of strings; what the body sends replaces what was stored.
    let data: Record<string, string> = { ...ep.data };
    if (body.data && typeof body.data === 'object' && !Array.isArray(body.data)) {
      data = {};
      for (const [k, v] of Object.entries(body.data as Record<string, unknown>)) {
        if (v === null || v === undefined) continue;
        data[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
    }
    const creationMode = lower(dataValue(data, 'creationMode') ?? '');
    if (creationMode === 'manual')
      for (const field of AUTOMATIC_ONLY_DATA_FIELDS)
        if (dataValue(data, field) !== undefined)
          return argumentError(
            `The field '${field}' in the service endpoint data is not supported for an endpoint with creationMode 'Manual'. Remove it from the request.`,
            field,
          );

    // authorization: confidential values absent or null keep what is stored; accesstoken does not
    // (present-but-empty is the UI bug that breaks the connection, absent is the documented fix).
    let scheme = ep.authorization.scheme;
    let parameters: Record<string, string | null> = { ...ep.authorization.parameters };
    if (body.authorization && typeof body.authorization === 'object') {
      if (typeof body.authorization.scheme === 'string' && body.authorization.scheme)
        scheme = body.authorization.scheme;
      const given =
        body.authorization.parameters && typeof body.authorization.parameters === 'object'
          ? (body.authorization.parameters as Record<string, unknown>)
          : {};
      // `serviceprincipalkey` is a required input of the AzureRM ServicePrincipal scheme (spnKey):
      // a Manual update that leaves it out is refused; present and null (or empty) keeps the stored
      // value on an update. Source: the public decompilation of Azure DevOps Server 2022's
      // ServiceEndpointValidator.ValidateEndpointFields (required and absent → ArgumentException
      // EndpointFieldNotSpecified; present and empty tolerated for a confidential input on update).
      // The resource text of EndpointFieldNotSpecified is not public: the message below is guessed.
      const spnKeyScheme =
        lower(scheme) === 'serviceprincipal' &&
        lower(
          paramValue(given as Record<string, string | null>, 'authenticationType') ??
            paramValue(ep.authorization.parameters, 'authenticationType') ??
            'spnkey',
        ) === 'spnkey';
      if (
        lower(operation) !== 'convertauthenticationscheme' &&
        lower(ep.type) === 'azurerm' &&
        spnKeyScheme &&
        lower(dataValue(data, 'creationMode') ?? '') === 'manual' &&
        paramKey(given as Record<string, string | null>, 'serviceprincipalkey') === undefined
      )
        return {
          ok: false,
          body: wrapped(
            'The required field is not specified.\r\nParameter name: endpoint.Authorization.Parameters[serviceprincipalkey]',
            TYPE.argument,
            'ArgumentException',
            0,
          ),
        };
      parameters = {};
      for (const [k, v] of Object.entries(given)) {
        const value = v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
        if (CONFIDENTIAL_PARAMETERS.has(lower(k)) && lower(k) !== 'accesstoken' && value === null) continue;
        parameters[k] = value;
      }
      if (lower(scheme) === lower(ep.authorization.scheme))
        for (const [k, v] of Object.entries(ep.authorization.parameters))
          if (CONFIDENTIAL_PARAMETERS.has(lower(k)) && lower(k) !== 'accesstoken' && !paramKey(parameters, k))
            parameters[k] = v;
    }

    const fromScheme = lower(ep.authorization.scheme);
    const toScheme = lower(scheme);
    if (lower(operation) === 'convertauthenticationscheme') {
      if (fromScheme === 'serviceprincipal' && toScheme === 'workloadidentityfederation')
        return convertToWorkloadIdentity(caller, ep);
      if (fromScheme === 'workloadidentityfederation' && toScheme === 'serviceprincipal')
        return revertConversion(ep);
      return argumentError(
        `The service connection uses the authentication scheme '${ep.authorization.scheme}'; ConvertAuthenticationScheme converts between ServicePrincipal and WorkloadIdentityFederation only.`,
        'endpoint.Authorization.Scheme',
      );
    }
    if (toScheme === 'workloadidentityfederation') {
      // Azure DevOps generates the federated credential it expects: values sent are replaced, and a
      // workload identity connection keeps no secret.
      for (const k of Object.keys(parameters))
        if (
          CONFIDENTIAL_PARAMETERS.has(lower(k)) ||
          lower(k) === 'authenticationtype' ||
          lower(k).startsWith('workloadidentityfederation')
        )
          delete parameters[k];
      const { issuer, subject } = federationFor(state, caller.org, {
        id: ep.id,
        name: typeof body.name === 'string' && body.name ? body.name : ep.name,
        serviceEndpointProjectReferences: ep.serviceEndpointProjectReferences,
      });
      parameters['workloadIdentityFederationIssuer'] = issuer;
      parameters['workloadIdentityFederationSubject'] = subject;
      // Changed by a plain update (not Azure DevOps' own conversion): nothing to revert to.
      if (fromScheme !== toScheme) delete ep.revertStash;
    } else {
      for (const k of Object.keys(parameters))
        if (lower(k).startsWith('workloadidentityfederation')) delete parameters[k];
      if (fromScheme !== toScheme) delete ep.revertStash;
    }

    if (typeof body.name === 'string' && body.name) ep.name = body.name;
    if (typeof body.description === 'string') ep.description = body.description;
    if (typeof body.url === 'string' && body.url) ep.url = body.url;
    if (Array.isArray(body.serviceEndpointProjectReferences))
      for (const r of body.serviceEndpointProjectReferences as {
        projectReference?: { id?: string };
        name?: string;
        description?: string;
      }[]) {
        const stored = ep.serviceEndpointProjectReferences.find(
          (s) => lower(s.projectReference.id) === lower(r.projectReference?.id ?? ''),
        );
        if (!stored) continue;
        if (typeof r.name === 'string' && r.name) stored.name = r.name;
        if (typeof r.description === 'string') stored.description = r.description;
      }
    ep.data = data;
    ep.authorization = { scheme, parameters };

    const spnKey =
      lower(scheme) === 'serviceprincipal' &&
      lower(paramValue(parameters, 'authenticationType') ?? 'spnkey') === 'spnkey';
    if (creationMode === 'automatic' && spnKey && rotateAutomaticSecret(caller.org, ep)) return { ok: true };
    computeStatus(state, ep);
    return { ok: true };
  }

  /**
   * What Azure DevOps does on any save of an Automatic secret-based connection: it creates a new
   * password on the app (valid three months, per "Rotate secret" in the troubleshooting docs),
   * stores it, and removes every other password on the app. Returns false when the app is gone.
   */
  function rotateAutomaticSecret(org: OrganizationRecord, ep: EndpointRecord): boolean {
    const appId = paramValue(ep.authorization.parameters, 'serviceprincipalid') ?? '';
    const app = state.appByAppId(appId);
    if (!app || app.disabled) return false;
    const now = state.now();
    const secretText = generateSecretText();
    const project = ep.serviceEndpointProjectReferences[0]?.projectReference.name ?? '';
    const password: PasswordCredentialRecord = {
      keyId: randomUUID(),
      displayName: `${org.name}-${project}-${ep.id}`,
      hint: secretText.slice(0, 3),
      secretText,
      startDateTime: now.toISOString(),
      endDateTime: new Date(now.getTime() + 90 * DAY_MS).toISOString(),
      customKeyIdentifier: null,
      addedAt: now.getTime(),
    };
    app.passwordCredentials = [password];
    const key = paramKey(ep.authorization.parameters, 'serviceprincipalkey') ?? 'serviceprincipalkey';
    ep.authorization.parameters[key] = secretText;
    ep.isReady = true;
    ep.operationStatus = { state: 'Ready', statusMessage: '' };
    if (paramKey(ep.authorization.parameters, 'accesstoken') !== undefined) computeStatus(state, ep);
    return true;
  }

  /**
   * `operation=ConvertAuthenticationScheme` to workload identity federation, as Azure DevOps' own
   * conversion does it: only for a connection it created (Automatic, so it may add a federated
   * credential to the app) that one project uses. It adds the credential, keeps the secret (and the
   * app's password) so the conversion can be reverted for seven days (`revertSchemeDeadline`).
   * The refusal messages are inferred: the real wording is not public.
   */
  function convertToWorkloadIdentity(caller: Caller, ep: EndpointRecord): UpdateResult {
    if (lower(dataValue(ep.data, 'creationMode') ?? '') !== 'automatic')
      return argumentError(
        'Only service connections created automatically by Azure DevOps can be converted: Azure DevOps has no permission to add a federated credential to an app registration it did not create. Add the federated credential to the app registration and update the service connection instead.',
        'endpoint.Data.creationMode',
      );
    if (ep.serviceEndpointProjectReferences.length > 1)
      return argumentError(
        'Service connections shared with more than one project cannot be converted.',
        'endpoint.ServiceEndpointProjectReferences',
      );
    const appId = paramValue(ep.authorization.parameters, 'serviceprincipalid') ?? '';
    const app = state.appByAppId(appId);
    if (!app || app.disabled)
      return argumentError(
        `The app registration '${appId}' of the service connection was not found or is disabled: the federated credential cannot be added.`,
        'serviceprincipalid',
      );
    // Whether a service principal or managed identity may run Azure DevOps' own conversion is not
    // settled by a public Microsoft source found here (a third-party note says Automatic mode is not
    // supported for non-user principals). Scenario-controlled (`conversionRequiresUser`) so the
    // product is tested under both readings; message guessed.
    if (caller.org.conversionRequiresUser && caller.identity.kind !== 'user')
      return {
        ok: false,
        body: wrapped(
          'Converting the authentication scheme of an automatically created service connection is not supported for a service principal or managed identity. Sign in as a user to convert it.',
          'Microsoft.VisualStudio.Services.ServiceEndpoints.WebApi.ServiceEndpointException, Microsoft.VisualStudio.Services.ServiceEndpoints.WebApi',
          'ServiceEndpointException',
          0,
        ),
      };
    // Learn (Connect to Azure with an ARM service connection, "Convert an existing service
    // connection"): "The conversion might take a few minutes." With a delay the answer still shows
    // the secret scheme, `operationStatus.state: InProgress` (statusMessage `converting_scheme`:
    // wording not public, guessed); the conversion lands once the delay has passed.
    if ((caller.org.conversionDelayMs ?? 0) > 0) {
      ep.pendingConversion = {
        completesAt: state.now().getTime() + (caller.org.conversionDelayMs ?? 0),
        ...(caller.org.conversionFails ? { fails: true } : {}),
      };
      ep.operationStatus = { state: 'InProgress', statusMessage: 'converting_scheme' };
      return { ok: true };
    }
    applyConversion(caller.org, ep);
    return { ok: true };
  }

  /** Lands a conversion answered InProgress once its time has come (called on every read). */
  function settleConversion(org: OrganizationRecord, ep: EndpointRecord): EndpointRecord {
    const pending = ep.pendingConversion;
    if (!pending || state.now().getTime() < pending.completesAt) return ep;
    delete ep.pendingConversion;
    if (pending.fails) {
      // Still on its secret; the failure shows in operationStatus (wording guessed).
      computeStatus(state, ep);
      ep.operationStatus = {
        state: 'Failed',
        statusMessage:
          'Failed to convert the authentication scheme: the federated credential could not be added to the app registration.',
      };
      return ep;
    }
    applyConversion(org, ep);
    return ep;
  }

  /** The conversion itself: the federated credential on the app, the secret kept for the revert. */
  function applyConversion(org: OrganizationRecord, ep: EndpointRecord): void {
    const appId = paramValue(ep.authorization.parameters, 'serviceprincipalid') ?? '';
    const app = state.appByAppId(appId);
    if (!app) return;
    const { issuer, subject } = federationFor(state, org, ep);
    let fic = app.federatedIdentityCredentials.find((f) => f.issuer === issuer && f.subject === subject);
    if (!fic) {
      const project = ep.serviceEndpointProjectReferences[0]?.projectReference.name ?? '';
      fic = {
        id: randomUUID(),
        name: `${org.name}-${project}-${ep.id}`,
        issuer,
        subject,
        audiences: [TOKEN_EXCHANGE_AUDIENCE],
        description: null,
      };
      app.federatedIdentityCredentials.push(fic);
    }
    const deadline = new Date(state.now().getTime() + 7 * DAY_MS).toISOString();
    ep.revertStash = {
      scheme: ep.authorization.scheme,
      parameters: { ...ep.authorization.parameters },
      deadline,
      federatedCredentialId: fic.id,
    };
    const parameters: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(ep.authorization.parameters))
      if (!CONFIDENTIAL_PARAMETERS.has(lower(k)) && lower(k) !== 'authenticationtype') parameters[k] = v;
    parameters['workloadIdentityFederationIssuer'] = issuer;
    parameters['workloadIdentityFederationSubject'] = subject;
    ep.authorization = { scheme: 'WorkloadIdentityFederation', parameters };
    ep.data = { ...ep.data, revertSchemeDeadline: deadline };
    computeStatus(state, ep);
  }

  /**
   * `operation=ConvertAuthenticationScheme` back to ServicePrincipal: Azure DevOps' revert, possible
   * only for its own conversion and until `revertSchemeDeadline` (seven days). It restores the
   * secret it kept and removes the federated credential it added. Messages inferred.
   */
  function revertConversion(ep: EndpointRecord): UpdateResult {
    const stash = ep.revertStash;
    if (!stash)
      return argumentError(
        'The service connection was not converted by Azure DevOps: there is no earlier authentication scheme to revert to.',
        'operation',
      );
    if (Date.parse(stash.deadline) <= state.now().getTime())
      return argumentError(
        `The conversion can no longer be reverted: the revert deadline ${stash.deadline} has passed. Create a new secret for the app registration instead.`,
        'operation',
      );
    const appId = paramValue(stash.parameters, 'serviceprincipalid') ?? '';
    const app = state.appByAppId(appId);
    if (app && stash.federatedCredentialId)
      app.federatedIdentityCredentials = app.federatedIdentityCredentials.filter(
        (f) => f.id !== stash.federatedCredentialId,
      );
    ep.authorization = { scheme: stash.scheme, parameters: { ...stash.parameters } };
    const data = { ...ep.data };
    for (const k of Object.keys(data)) if (lower(k) === 'revertschemedeadline') delete data[k];
    ep.data = data;
    delete ep.revertStash;
    computeStatus(state, ep);
    return { ok: true };
  }

  // --- TestConnection -----------------------------------------------------------------------

  function testConnection(
    stored: EndpointRecord | undefined,
    details:
      | {
          authorization?: { scheme?: string; parameters?: Record<string, string | null> };
          data?: Record<string, string>;
        }
      | undefined,
  ): { result: unknown[]; statusCode: string; errorMessage: string } {
    // The service tests what is sent. The portal's Verify sends the parameters as read, with
    // `"serviceprincipalkey": null` present (Learn, "Troubleshoot issues related to verifying Azure
    // Resource Manager service connections", the POST body in the trace): only a confidential key
    // present and null is filled in with the stored value. A key left out is tested as absent (no
    // secret: Entra ID answers AADSTS7000216); a value is tested as sent. Without
    // serviceEndpointDetails the stored connection is tested.
    const scheme = details?.authorization?.scheme ?? stored?.authorization.scheme ?? '';
    const storedParams = stored?.authorization.parameters ?? {};
    let parameters: Record<string, string | null> = { ...storedParams };
    if (details?.authorization) {
      parameters = {};
      for (const [k, v] of Object.entries(details.authorization.parameters ?? {})) {
        if (CONFIDENTIAL_PARAMETERS.has(lower(k)) && lower(k) !== 'accesstoken' && v === null)
          parameters[k] = paramValue(storedParams, k) ?? null;
        else parameters[k] = v === null || v === undefined ? null : String(v);
      }
    }
    const data = { ...(stored?.data ?? {}), ...(details?.data ?? {}) };
    const fail = (statusCode: string, errorMessage: string) => ({ result: [], statusCode, errorMessage });

    const accessToken = paramKey(parameters, 'accesstoken');
    if (accessToken !== undefined && !parameters[accessToken])
      return fail('badRequest', ACCESS_TOKEN_INVALID_MESSAGE);

    const appId = paramValue(parameters, 'serviceprincipalid') ?? '';
    let principal: { appId: string; objectId: string } | undefined;
    if (lower(scheme) === 'serviceprincipal') {
      const check = checkClientSecret(
        state,
        appId,
        paramValue(parameters, 'serviceprincipalkey') ?? undefined,
      );
      if (!check.ok)
        return fail(
          check.status === 401 ? 'unauthorized' : 'badRequest',
          JWT_FAILURE_PREFIX + aadstsFirstLine(check),
        );
      principal = { appId, objectId: stableGuid('spn-object', appId) };
      if (check.app && !check.app.hasSubscriptionRole) return forbidden(principal, data);
    } else if (lower(scheme) === 'workloadidentityfederation') {
      // Azure DevOps presents its token with the issuer and subject it generated (the stored ones):
      // Entra ID exchanges it only for an app holding a matching federated credential.
      const check = checkFederatedCredential(
        state,
        appId,
        paramValue(storedParams, 'workloadIdentityFederationIssuer') ??
          paramValue(parameters, 'workloadIdentityFederationIssuer') ??
          undefined,
        paramValue(storedParams, 'workloadIdentityFederationSubject') ??
          paramValue(parameters, 'workloadIdentityFederationSubject') ??
          undefined,
      );
      if (!check.ok)
        return fail(
          check.status === 401 ? 'unauthorized' : 'badRequest',
          JWT_FAILURE_PREFIX + aadstsFirstLine(check),
        );
      if (check.app && !check.app.hasSubscriptionRole)
        return forbidden({ appId, objectId: stableGuid('spn-object', appId) }, data);
    }
    const subscriptionId = dataValue(data, 'subscriptionId') ?? '';
    return {
      result: [
        {
          id: `/subscriptions/${subscriptionId}`,
          authorizationSource: 'RoleBased',
          managedByTenants: [],
          subscriptionId,
          tenantId: state.tenantId,
          displayName: dataValue(data, 'subscriptionName') ?? '',
          state: 'Enabled',
          subscriptionPolicies: {
            locationPlacementId: 'Public_2014-09-01',
            quotaId: 'PayAsYouGo_2014-09-01',
            spendingLimit: 'Off',
          },
        },
      ],
      statusCode: 'ok',
      errorMessage: '',
    };
  }

  /** The ARM AuthorizationFailed answer Verify reports (troubleshoot-verify doc, "manual" section). */
  function forbidden(
    principal: { appId: string; objectId: string },
    data: Record<string, string>,
  ): { result: unknown[]; statusCode: string; errorMessage: string } {
    const subscriptionId = dataValue(data, 'subscriptionId') ?? '';
    const url = `https://management.azure.com/subscriptions/${subscriptionId}?api-version=2016-06-01`;
    const armError = JSON.stringify({
      error: {
        code: 'AuthorizationFailed',
        message: `The client '${principal.appId}' with object id '${principal.objectId}' does not have authorization to perform action 'Microsoft.Resources/subscriptions/read' over scope '/subscriptions/${subscriptionId}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      },
    });
    return {
      result: [],
      statusCode: 'forbidden',
      errorMessage: `Failed to query service connection API: '${url}'. Status Code: 'Forbidden', Response from server: '${armError}'`,
    };
  }

  return {
    name: 'devops',
    mount,
    formatError,
    rateLimitHeaders: true,
    isReadOnly: (req) =>
      req.method === 'POST' && /\/_apis\/serviceendpoint\/endpointproxy\/?$/i.test(req.path),
  };
}

/**
 * isReady / operationStatus as Azure DevOps computes them when a connection is saved: a broken
 * `accesstoken` fails; a secret-based service principal is Ready only if its stored secret gets a
 * token from Entra ID; a workload identity connection is Ready if its app exists.
 */
export function computeStatus(state: TenantState, ep: EndpointRecord): void {
  const set = (ok: boolean, message = ''): void => {
    ep.isReady = ok;
    ep.operationStatus = { state: ok ? 'Ready' : 'Failed', statusMessage: message };
  };
  const parameters = ep.authorization.parameters;
  const accessToken = paramKey(parameters, 'accesstoken');
  if (accessToken !== undefined && !parameters[accessToken]) return set(false, ACCESS_TOKEN_INVALID_MESSAGE);
  const scheme = lower(ep.authorization.scheme);
  const appId = paramValue(parameters, 'serviceprincipalid') ?? '';
  if (scheme === 'serviceprincipal') {
    if (lower(paramValue(parameters, 'authenticationType') ?? 'spnkey') !== 'spnkey') return set(true);
    const check = checkClientSecret(state, appId, paramValue(parameters, 'serviceprincipalkey') ?? undefined);
    return check.ok ? set(true) : set(false, JWT_FAILURE_PREFIX + aadstsFirstLine(check));
  }
  if (scheme === 'workloadidentityfederation') {
    const app = state.appByAppId(appId);
    if (app) return set(true);
    const check = checkClientSecret(state, appId, undefined);
    return check.ok ? set(true) : set(false, JWT_FAILURE_PREFIX + aadstsFirstLine(check));
  }
  return set(true);
}
