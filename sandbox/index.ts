/**
 * The sandbox: one simulated tenant (Entra ID, Microsoft Graph, Azure DevOps, Key Vault), each
 * service on its own HTTPS port on 127.0.0.1, talked to by the real SDK clients.
 *
 *   const sandbox = await startSandbox({ scenario: 'default' });
 *   // sandbox.env points the product at it; sandbox.state is the tenant to inspect.
 *   await sandbox.stop();
 */
import { devopsService } from './devops';
import { entraService } from './entra';
import { FaultInjector, type FaultRule } from './faults';
import { graphService } from './graph';
import { keyVaultService } from './keyvault';
import type { TenantState } from './model';
import { loadScenario, readScenario, stableGuid, type Scenario } from './scenario';
import { startService, type ServiceHost } from './server';
import { ensureDevCa, issueServerCertificate } from './tls';
import { TokenIssuer } from './tokens';

export interface SandboxUrls {
  /** Entra ID authority host (AZURE_AUTHORITY_HOST). */
  authority: string;
  /** Microsoft Graph root (GRAPH_ENDPOINT), without `/v1.0`. */
  graph: string;
  /** Azure DevOps root; organizations live at `${devops}/${org}`. */
  devops: string;
  /** Key Vault URL (KEY_VAULT_URL). */
  keyVault: string;
}

/** What every service gets: the shared state, the token issuer, and the others' URLs. */
export interface SandboxContext {
  state: TenantState;
  tokens: TokenIssuer;
  /** Filled in once every service listens. */
  urls: SandboxUrls;
}

export interface SandboxOptions {
  /** A scenario name from `sandbox/scenarios/` or a scenario object. Default `default`. */
  scenario?: string | Scenario;
  /** Seed for fault injection (and anything random the sandbox decides). */
  seed?: string;
  faults?: FaultRule[];
  /** Folder of the development CA (default `.sandbox/ca`). */
  caDir?: string;
  /** Fixed ports: Entra ID on portBase, Graph +1, Azure DevOps +2, Key Vault +3 (default: free ports). */
  portBase?: number;
}

export interface Sandbox {
  state: TenantState;
  faults: FaultInjector;
  tokens: TokenIssuer;
  urls: SandboxUrls;
  scenario: Scenario;
  /** `${urls.devops}/${org}` for every organization of the scenario. */
  organizationUrls: string[];
  caCertPath: string;
  /** Settings that point the product at this sandbox, as the product's identity. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const scenario =
    typeof options.scenario === 'object' ? options.scenario : readScenario(options.scenario ?? 'default');
  const state = loadScenario(scenario);
  const faults = new FaultInjector(options.seed ?? 'sandbox', options.faults ?? []);
  const tokens = new TokenIssuer(state);
  const ca = await ensureDevCa(options.caDir);
  const tls = await issueServerCertificate(ca);
  const ctx: SandboxContext = { state, tokens, urls: { authority: '', graph: '', devops: '', keyVault: '' } };

  const port = (offset: number): number => (options.portBase ? options.portBase + offset : 0);
  const hosts: ServiceHost[] = [];
  try {
    const entra = await startService(entraService(ctx), state, faults, tls, port(0));
    hosts.push(entra);
    const graph = await startService(graphService(ctx), state, faults, tls, port(1));
    hosts.push(graph);
    const devops = await startService(devopsService(ctx), state, faults, tls, port(2));
    hosts.push(devops);
    const keyVault = await startService(keyVaultService(ctx), state, faults, tls, port(3));
    hosts.push(keyVault);
    Object.assign(ctx.urls, {
      authority: entra.url,
      graph: graph.url,
      devops: devops.url,
      keyVault: `${keyVault.url}/`,
    });
  } catch (err) {
    await Promise.all(hosts.map((h) => h.close()));
    throw err;
  }

  const product = state.identities.get(scenario.productIdentity);
  const organizationUrls = scenario.organizations.map((o) => `${ctx.urls.devops}/${o.name}`);
  const env: Record<string, string> = {
    AZDO_ORGANIZATION_URLS: organizationUrls.join(','),
    KEY_VAULT_URL: ctx.urls.keyVault,
    GRAPH_ENDPOINT: ctx.urls.graph,
    AZURE_AUTHORITY_HOST: ctx.urls.authority,
    AZURE_TENANT_ID: state.tenantId,
    AZURE_CLIENT_ID: product?.appId ?? '',
    AZURE_CLIENT_SECRET: product?.clientSecret ?? '',
    NODE_EXTRA_CA_CERTS: ca.certPath,
  };
  // Other tenants: the product acts in each through the home app that trusts its identity
  // (a multi-tenant app with a federated identity credential), as deployed by infra/modules/entra.bicep.
  const multiTenantApp = scenario.apps.find(
    (a) =>
      a.signInAudience === 'AzureADMultipleOrgs' && a.trustsIdentities?.includes(scenario.productIdentity),
  );
  const multiTenantAppId = multiTenantApp
    ? (multiTenantApp.appId ?? stableGuid('app', multiTenantApp.key))
    : undefined;
  if (state.otherTenants.size > 0 && multiTenantAppId) {
    env['ADDITIONAL_TENANT_IDS'] = [...state.otherTenants.values()].map((t) => t.tenantId).join(',');
    env['MULTI_TENANT_APP_CLIENT_ID'] = multiTenantAppId;
  }

  return {
    state,
    faults,
    tokens,
    urls: ctx.urls,
    scenario,
    organizationUrls,
    caCertPath: ca.certPath,
    env,
    stop: async () => {
      await Promise.all(hosts.map((h) => h.close()));
    },
  };
}

export type { FaultRule } from './faults';
export type { Scenario } from './scenario';
export { TenantState } from './model';
