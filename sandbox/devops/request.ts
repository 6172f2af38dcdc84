/** Request parsing and common answers: query parameters, api-version, the caller, projects. */
import type { Request, Response } from 'express';
import type { IdentityRecord, OrganizationRecord, OrgMember, ProjectRecord } from '../model';
import { sendError, TYPE, wrapped, type WrappedException } from './errors';
import { lower } from './fields';

/** Newest REST API version the simulated server supports (7.2 is still preview). */
const LATEST_VERSION = { major: 7, minor: 2 };

export function csv(value: unknown): string[] {
  if (typeof value !== 'string') return [];
  return value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

export function queryString(req: Request, name: string): string | undefined {
  // Query parameter names are case-insensitive in Azure DevOps.
  for (const [k, v] of Object.entries(req.query))
    if (lower(k) === lower(name) && typeof v === 'string') return v;
  return undefined;
}

export function queryBool(req: Request, name: string): boolean {
  return lower(queryString(req, name) ?? '') === 'true';
}

function isGuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
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

export interface Caller {
  identity: IdentityRecord;
  org: OrganizationRecord;
  member: OrgMember;
}

export const callerOf = (res: Response): Caller => res.locals['devopsCaller'] as Caller;

/** Checks api-version; answers and returns false when it is missing or unsupported. */
export function versioned(req: Request, res: Response, gaFrom: { major: number; minor: number }): boolean {
  const check = checkApiVersion(req, gaFrom);
  if (!check.ok) {
    sendError(res, 400, check.body);
    return false;
  }
  res.locals['apiVersion'] = check.version;
  return true;
}

export function sendJson(res: Response, status: number, body: unknown): void {
  const version = (res.locals['apiVersion'] as string | undefined) ?? '7.1';
  res
    .status(status)
    .setHeader('Content-Type', `application/json; charset=utf-8; api-version=${version}`)
    .send(JSON.stringify(body));
}

export function resolveProject(
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

export function requireAdministrator(res: Response, caller: Caller): boolean {
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

export function endpointNotFound(res: Response, endpointId: string): void {
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
