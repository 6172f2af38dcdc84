/** Field-level rules shared by the endpoint routes, updates, conversion and TestConnection. */
import type { EndpointRecord, OrganizationRecord, ProjectRecord } from '../model';

export const DAY_MS = 24 * 3600 * 1000;

/** Parameters Azure DevOps never returns (input descriptors with `isConfidential`). Lower-case. */
export const CONFIDENTIAL_PARAMETERS = new Set([
  'serviceprincipalkey',
  'serviceprincipalcertificate',
  'accesstoken',
  'password',
  'apitoken',
  'certificate',
]);

/** Data fields Azure DevOps records for objects it created; refused on a Manual connection. */
export const AUTOMATIC_ONLY_DATA_FIELDS = ['azureSpnRoleAssignmentId', 'spnObjectId', 'appObjectId'];

export function lower(value: string): string {
  return value.toLowerCase();
}

export function paramKey(parameters: Record<string, string | null>, name: string): string | undefined {
  return Object.keys(parameters).find((k) => lower(k) === lower(name));
}

export function paramValue(
  parameters: Record<string, string | null>,
  name: string,
): string | null | undefined {
  const key = paramKey(parameters, name);
  return key === undefined ? undefined : parameters[key];
}

/** Endpoint ids are GUIDs, compared case-insensitively. */
export function findEndpoint(org: OrganizationRecord, id: string): EndpointRecord | undefined {
  const direct = org.endpoints.get(id);
  if (direct) return direct;
  for (const ep of org.endpoints.values()) if (lower(ep.id) === lower(id)) return ep;
  return undefined;
}

export function dataValue(data: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(data).find((k) => lower(k) === lower(name));
  return key === undefined ? undefined : data[key];
}

export const isFailed = (ep: EndpointRecord): boolean => !ep.isReady || ep.operationStatus.state === 'Failed';
export const inProject = (ep: EndpointRecord, project: ProjectRecord): boolean =>
  ep.serviceEndpointProjectReferences.some((r) => lower(r.projectReference.id) === lower(project.id));
