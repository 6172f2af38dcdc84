/**
 * The federated credential Azure DevOps expects for a workload identity federation connection:
 * issuer and subject, in either of the two formats the real service gives out.
 *
 * - Microsoft Entra issuer (new connections since 2025; Azure DevOps release notes, sprint 253,
 *   "Workload identity federation uses Entra issuer"):
 *     issuer  `https://login.microsoftonline.com/{tenantId}/v2.0`
 *     subject `/eid1/c/pub/t/{tenantId}/a/{Azure DevOps app id}/sc/{organizationId}/{connectionId}`
 *   where both ids in the `/eid1/c/pub/` prefix are base64url-encoded GUIDs in .NET byte order
 *   (Azure DevOps' app id `499b84ac-1321-427f-aa17-267ca6975798` is `rISbSSETf0KqFyZ8ppdXmA`).
 * - Azure DevOps issuer (older connections; retired for public-cloud single-tenant apps on
 *   1 July 2027): issuer `https://vstoken.dev.azure.com/{organizationId}`, subject
 *   `sc://{organization}/{project}/{connection name}`.
 */
import type { EndpointRecord, OrganizationRecord, TenantState } from './model';

/** Azure DevOps' first-party application id (the token exchange is done as this app). */
const AZURE_DEVOPS_APP_ID = '499b84ac-1321-427f-aa17-267ca6975798';
/** The audience every Azure DevOps federated credential carries. */
export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

/** A GUID as base64url of its .NET byte order (first three groups little-endian), no padding. */
export function guidToBase64Url(guid: string): string {
  const hex = guid.replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new Error(`Not a GUID: '${guid}'.`);
  const bytes = Buffer.from(hex, 'hex');
  const swapped = Buffer.concat([
    Buffer.from(bytes.subarray(0, 4)).reverse(),
    Buffer.from(bytes.subarray(4, 6)).reverse(),
    Buffer.from(bytes.subarray(6, 8)).reverse(),
    bytes.subarray(8),
  ]);
  return swapped.toString('base64url');
}

/** Issuer and subject Azure DevOps generates for `ep` in `org`, in the tenant's current format. */
export function federationFor(
  state: TenantState,
  org: OrganizationRecord,
  ep: Pick<EndpointRecord, 'id' | 'name' | 'serviceEndpointProjectReferences'>,
): { issuer: string; subject: string } {
  if (state.federationIssuer === 'azure-devops') {
    const project = ep.serviceEndpointProjectReferences[0]?.projectReference.name ?? '';
    return {
      issuer: `https://vstoken.dev.azure.com/${org.id}`,
      subject: `sc://${org.name}/${project}/${ep.name}`,
    };
  }
  const prefix = `/eid1/c/pub/t/${guidToBase64Url(state.tenantId)}/a/${guidToBase64Url(AZURE_DEVOPS_APP_ID)}`;
  return {
    issuer: `https://login.microsoftonline.com/${state.tenantId}/v2.0`,
    subject: `${prefix}/sc/${org.id}/${ep.id}`,
  };
}
