/**
 * What preflight says (preflight.ts): the exact step that adds each missing prerequisite, and the
 * wording the checks share.
 */
import { ServiceError } from '../errors';

export const OWNED_BY = 'Application.ReadWrite.OwnedBy';
export const READ_WRITE_ALL = 'Application.ReadWrite.All';
export const POLICY_READ = 'Policy.Read.All';
/** Connection names listed in one row before "+N more". */
const MAX_NAMES = 8;

/** The HTTP status of a service's answer, when the error carries one. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof ServiceError ? err.status : undefined;
}

/** Names for one row: the first few, then how many more. */
export function names(list: string[]): string {
  const shown = list.slice(0, MAX_NAMES).join(', ');
  return list.length > MAX_NAMES ? `${shown} (+${list.length - MAX_NAMES} more)` : shown;
}

/** `1 connection`, `3 connections`. */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** The vault's name from its URL (`https://name.vault.azure.net` → `name`). */
function vaultName(url: string): string {
  try {
    return new URL(url).hostname.split('.')[0] ?? url;
  } catch {
    return url;
  }
}

/** The identity as fixes name it (placeholders when no token was had). */
export interface Who {
  objectId: string;
  appId: string;
}

export const fixes = {
  graphToken: (): string =>
    'Check AZURE_TENANT_ID and AZURE_CLIENT_ID (and AZURE_CLIENT_SECRET outside Azure); in Azure the user-assigned managed identity must be attached to the function app and AZURE_CLIENT_ID must be its client id.',
  graphPermission: (who: Who, role: string): string =>
    `Grant the Microsoft Graph application permission ${role} to the identity (object id ${who.objectId}): deploy infra/ with manageEntraObjects=true, or run scripts/grant-graph-permissions.sh ${who.objectId}${role === POLICY_READ ? ' --with-policy-read' : ''} as a Privileged Role Administrator. A managed identity keeps a cached token with its old roles for up to 24 hours.`,
  orgAccess: (org: string, who: Who): string =>
    `Add the identity (client id ${who.appId}) to ${org} as a user with an access level (Basic; Stakeholder can be enough with the roles): Organization settings → Users → Add users, search the managed identity or service principal by its display name.`,
  orgUrl: (org: string): string =>
    `Check ${org} in AZDO_ORGANIZATION_URLS: the organization does not exist, or the identity's tenant is not the one the organization is connected to.`,
  pat: (): string =>
    'AZDO_PAT is invalid or expired: create a new personal access token with the scopes Service Connections (Read, query & manage) and Project and Team (Read), or remove AZDO_PAT to use the Entra ID identity.',
  devopsToken: (): string =>
    'The identity cannot get an Entra ID token for Azure DevOps: check the identity settings (AZURE_TENANT_ID, AZURE_CLIENT_ID) and that the tenant allows it.',
  projectAccess: (org: string, project: string, who: Who): string =>
    `Give the identity (client id ${who.appId}) access to project ${project} in ${org} (Project settings → Permissions → Readers), or leave the project out of AZDO_PROJECTS.`,
  administrator: (org: string, who: Who): string =>
    `In ${org}, give the identity (client id ${who.appId}) the Administrator role on these service connections at organization level: on each connection, ⋮ → Security → User permissions → Add → role Administrator (for every connection of a project: Project settings → Service connections → ⋮ → Security). Project Administrators membership is not enough: project administrators cannot change a connection's credentials.`,
  owner: (appId: string, who: Who): string =>
    `Make the identity an owner of the app: scripts/add-owner.sh --owner ${who.objectId} ${appId} (runs az ad app owner add --id ${appId} --owner-object-id ${who.objectId}); needs an existing owner of the app or a Cloud Application Administrator.`,
  appRead: (who: Who): string => fixes.graphPermission(who, OWNED_BY),
  graphRead: (err: unknown, who: Who): string =>
    statusOf(err) === 403
      ? fixes.appRead(who)
      : 'Check that Microsoft Graph is reachable, then run the check again.',
  vaultRole: (url: string, who: Who): string =>
    `Assign the Key Vault Secrets Officer role on the vault to the identity: az role assignment create --role "Key Vault Secrets Officer" --assignee-object-id ${who.objectId} --assignee-principal-type ServicePrincipal --scope "$(az keyvault show --name ${vaultName(url)} --query id -o tsv)". The vault must use Azure RBAC (enableRbacAuthorization: true); the Bicep in infra/ assigns this role.`,
  vaultCertificatesRole: (url: string, who: Who): string =>
    `Assign the Key Vault Certificates Officer role on the vault to the identity: az role assignment create --role "Key Vault Certificates Officer" --assignee-object-id ${who.objectId} --assignee-principal-type ServicePrincipal --scope "$(az keyvault show --name ${vaultName(url)} --query id -o tsv)". Certificate permissions are separate from secret permissions; the Bicep in infra/ assigns both roles.`,
  vaultReach: (url: string): string =>
    `Check KEY_VAULT_URL (${url}) and the vault's network rules (public network access or a private endpoint reachable from where this runs).`,
  storageRole: (url: string, who: Who): string =>
    `Assign the Storage Blob Data Owner role on the storage account to the identity: az role assignment create --role "Storage Blob Data Owner" --assignee-object-id ${who.objectId} --assignee-principal-type ServicePrincipal --scope <storage account resource id> (account of ${url}); the Bicep in infra/ assigns it.`,
  storageReach: (): string =>
    'Check AzureWebJobsStorage / AzureWebJobsStorage__blobServiceUri and the account network rules.',
  storageMissing: (): string =>
    'Set AzureWebJobsStorage__blobServiceUri (identity-based, recommended) or AzureWebJobsStorage, so rotations are locked across processes; the Functions app always has it.',
};
