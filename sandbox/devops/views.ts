/** Connections and projects as Azure DevOps returns them. */
import type { EndpointRecord, OrganizationRecord, ProjectRecord } from '../model';
import { CONFIDENTIAL_PARAMETERS, lower } from './fields';

const orgUrl = (devopsUrl: string, org: OrganizationRecord): string => `${devopsUrl}/${org.name}`;

/** An endpoint as Azure DevOps returns it: confidential values null (GET) or left out (list). */
export function view(
  devopsUrl: string,
  org: OrganizationRecord,
  ep: EndpointRecord,
  mode: 'get' | 'list',
): Record<string, unknown> {
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
      url: `${orgUrl(devopsUrl, org)}/_apis/Identities/${ep.createdBy.id}`,
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

export function projectView(
  devopsUrl: string,
  org: OrganizationRecord,
  p: ProjectRecord,
): Record<string, unknown> {
  return {
    id: p.id,
    name: p.name,
    url: `${orgUrl(devopsUrl, org)}/_apis/projects/${p.id}`,
    state: 'wellFormed',
    revision: parseInt(p.id.replace(/-/g, '').slice(0, 6), 16) % 1000,
    visibility: 'private',
    lastUpdateTime: '2024-01-15T09:30:00.000Z',
  };
}
