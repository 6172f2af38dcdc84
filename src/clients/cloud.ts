/**
 * Cloud endpoints: where to get tokens, where Microsoft Graph and Key Vault live, and which scopes
 * to ask for, for each Azure cloud the product supports. Pure data and pure functions (no SDK), so
 * config validation and the composition root can both use it.
 *
 * Hosts from the `@azure/identity` `AzureAuthorityHosts` enum and the Microsoft Graph "national
 * cloud deployments" page (learn.microsoft.com/graph/deployments).
 */

/** The clouds the product supports; names as Azure DevOps uses them in `data.environment`. */
export const AZURE_CLOUDS = ['AzureCloud', 'AzureUSGovernment', 'AzureChinaCloud'] as const;
export type AzureCloudName = (typeof AZURE_CLOUDS)[number];

/**
 * Azure DevOps' first-party application id as a scope. Azure DevOps is one global service, so the
 * same scope applies whatever cloud the Entra tenant lives in.
 */
export const AZURE_DEVOPS_SCOPE = '499b84ac-1321-427f-aa17-267ca6975798/.default';

/** The fixed facts of one cloud. */
interface CloudProfile {
  name: AzureCloudName;
  /** Entra ID authority host (`AzureAuthorityHosts`), no trailing slash. */
  authorityHost: string;
  /** Microsoft Graph service root, without `/v1.0`. */
  graphEndpoint: string;
  /** `.default` scope for Graph; its domain must be the cloud's Graph domain. */
  graphScope: string;
  /** DNS suffix of vaults, e.g. `vault.azure.net` for `https://myvault.vault.azure.net`. */
  keyVaultSuffix: string;
  /** `.default` scope for Key Vault (the SDK also learns it from the 401 challenge). */
  keyVaultScope: string;
}

const PROFILES: Record<AzureCloudName, CloudProfile> = {
  AzureCloud: {
    name: 'AzureCloud',
    authorityHost: 'https://login.microsoftonline.com',
    graphEndpoint: 'https://graph.microsoft.com',
    graphScope: 'https://graph.microsoft.com/.default',
    keyVaultSuffix: 'vault.azure.net',
    keyVaultScope: 'https://vault.azure.net/.default',
  },
  AzureUSGovernment: {
    name: 'AzureUSGovernment',
    authorityHost: 'https://login.microsoftonline.us',
    graphEndpoint: 'https://graph.microsoft.us',
    graphScope: 'https://graph.microsoft.us/.default',
    keyVaultSuffix: 'vault.usgovcloudapi.net',
    keyVaultScope: 'https://vault.usgovcloudapi.net/.default',
  },
  AzureChinaCloud: {
    name: 'AzureChinaCloud',
    authorityHost: 'https://login.chinacloudapi.cn',
    graphEndpoint: 'https://microsoftgraph.chinacloudapi.cn',
    graphScope: 'https://microsoftgraph.chinacloudapi.cn/.default',
    keyVaultSuffix: 'vault.azure.cn',
    keyVaultScope: 'https://vault.azure.cn/.default',
  },
};

/**
 * Public Graph hosts and the cloud each belongs to. The US Government DoD (L5) deployment has its
 * own host and, per the Graph national-cloud docs, its own scope domain.
 */
const KNOWN_GRAPH_HOSTS: Record<string, { cloud: AzureCloudName; scope: string }> = {
  'graph.microsoft.com': { cloud: 'AzureCloud', scope: PROFILES.AzureCloud.graphScope },
  'graph.microsoft.us': { cloud: 'AzureUSGovernment', scope: PROFILES.AzureUSGovernment.graphScope },
  'dod-graph.microsoft.us': { cloud: 'AzureUSGovernment', scope: 'https://dod-graph.microsoft.us/.default' },
  'microsoftgraph.chinacloudapi.cn': { cloud: 'AzureChinaCloud', scope: PROFILES.AzureChinaCloud.graphScope },
};

/** Everything the composition root needs to build credentials and clients for one cloud. */
export interface CloudEndpoints extends CloudProfile {
  /** `AZURE_DEVOPS_SCOPE`. */
  azureDevOpsScope: string;
  /**
   * True when the authority host is not one of the three public ones (sandbox, Azure Stack, a
   * proxy): MSAL's instance discovery always calls login.microsoftonline.com and would fail there.
   */
  disableInstanceDiscovery: boolean;
}

/** The fixed endpoints of a cloud. */
function cloudProfile(cloud: AzureCloudName): CloudProfile {
  return { ...PROFILES[cloud] };
}

/** Parses a cloud name case-insensitively (`azurecloud` → `AzureCloud`); undefined when unknown. */
export function parseCloudName(value: string): AzureCloudName | undefined {
  const v = value.trim().toLowerCase();
  return AZURE_CLOUDS.find((c) => c.toLowerCase() === v);
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * Whether `url` is one of the three public Entra authority hosts (`AzureAuthorityHosts`:
 * AzurePublicCloud, AzureGovernment, AzureChina). Any other host gets `disableInstanceDiscovery`.
 */
export function isPublicAuthorityHost(url: string): boolean {
  const host = hostOf(url);
  return host !== undefined && AZURE_CLOUDS.some((c) => hostOf(PROFILES[c].authorityHost) === host);
}

/** The cloud a public authority host belongs to; undefined for any other host. */
export function cloudOfAuthorityHost(url: string): AzureCloudName | undefined {
  const host = hostOf(url);
  return AZURE_CLOUDS.find((c) => hostOf(PROFILES[c].authorityHost) === host);
}

/** The cloud a public Microsoft Graph host belongs to; undefined for any other host. */
export function cloudOfGraphEndpoint(url: string): AzureCloudName | undefined {
  const host = hostOf(url);
  return host === undefined ? undefined : KNOWN_GRAPH_HOSTS[host]?.cloud;
}

/** The cloud whose Key Vault DNS suffix the vault URL's host ends with; undefined for any other host. */
export function cloudOfKeyVaultUrl(url: string): AzureCloudName | undefined {
  const host = hostOf(url);
  return host === undefined
    ? undefined
    : AZURE_CLOUDS.find((c) => host.endsWith(`.${PROFILES[c].keyVaultSuffix}`));
}

/**
 * Resolves the endpoints for a cloud, applying explicit overrides (`GRAPH_ENDPOINT`,
 * `AZURE_AUTHORITY_HOST`). Overrides change where requests go but NOT the Graph scope: a token for
 * a sandbox or a proxy in front of Graph must still be a Graph token of that cloud. The one
 * exception is the public DoD Graph host, whose scope domain differs from its cloud's default.
 * `disableInstanceDiscovery` is true whenever the authority host is not a public one.
 */
export function resolveCloudEndpoints(
  cloud: AzureCloudName,
  overrides: { graphEndpoint?: string; authorityHost?: string } = {},
): CloudEndpoints {
  const profile = cloudProfile(cloud);
  const authorityHost = stripTrailingSlashes(overrides.authorityHost ?? profile.authorityHost);
  const graphEndpoint = stripTrailingSlashes(overrides.graphEndpoint ?? profile.graphEndpoint);
  const graphHost = hostOf(graphEndpoint);
  const knownGraph = graphHost === undefined ? undefined : KNOWN_GRAPH_HOSTS[graphHost];
  const graphScope =
    knownGraph && knownGraph.cloud === cloud && graphHost === 'dod-graph.microsoft.us'
      ? knownGraph.scope
      : profile.graphScope;
  return {
    ...profile,
    authorityHost,
    graphEndpoint,
    graphScope,
    azureDevOpsScope: AZURE_DEVOPS_SCOPE,
    disableInstanceDiscovery: !isPublicAuthorityHost(authorityHost),
  };
}

function stripTrailingSlashes(url: string): string {
  return url.replace(/\/+$/, '');
}
