/**
 * Connections whose app lives in another tenant (`ADDITIONAL_TENANT_IDS`): their Graph calls go to
 * their own tenant, through the multi-tenant app's credential there; everything else (Azure DevOps,
 * Key Vault, locks, the ledger) stays the home tenant's. Connections of the home tenant, or that name
 * no tenant, keep the home clients unchanged. A tenant neither home nor configured is `unsupported`
 * (assess), so it never gets here with a Graph call.
 */
import { PreconditionError } from '../errors';
import type { EngineDeps } from './engine';
import type { FederatedCredentialsClient, GraphApplicationsClient, ServiceConnection } from './ports';

/** The Graph clients of one other tenant. */
export interface TenantClients {
  graph: GraphApplicationsClient;
  /** Federated identity credentials of that tenant's apps (conversion). */
  federation?: FederatedCredentialsClient;
}

/** Whether `tenantId` is one of the configured other tenants (case-insensitive). */
export function isConfiguredTenant(
  tenantId: string | undefined,
  configured: readonly string[] | undefined,
): boolean {
  if (!tenantId || !configured) return false;
  const wanted = tenantId.toLowerCase();
  return configured.some((t) => t.toLowerCase() === wanted);
}

/**
 * The dependencies to work on `connection` with: the home ones, or, for a connection of a configured
 * other tenant, the same with Graph (and federated credentials) in that tenant. A configured tenant
 * without clients is a wiring fault: failing is safe, while the home tenant's Graph would not find the
 * app and call it missing.
 */
export function depsForConnection(
  deps: EngineDeps,
  connection: ServiceConnection,
  configured: readonly string[] | undefined,
): EngineDeps {
  const tenantId = connection.authorization.parameters['tenantid'] ?? undefined;
  if (!isConfiguredTenant(tenantId, configured)) return deps;
  const clients = deps.tenants?.get(tenantId!.toLowerCase());
  if (!clients)
    throw new PreconditionError(
      `Tenant ${tenantId} is listed in ADDITIONAL_TENANT_IDS but no Graph client was built for it.`,
      'tenant-not-wired',
    );
  const tenantDeps: EngineDeps = { ...deps, graph: clients.graph };
  if (clients.federation) tenantDeps.federation = clients.federation;
  else delete tenantDeps.federation;
  return tenantDeps;
}
