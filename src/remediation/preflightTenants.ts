/**
 * Preflight of the other tenants (`ADDITIONAL_TENANT_IDS`, preflight.ts): per tenant, one row for
 * the multi-tenant app's token there (its service principal exists, i.e. an administrator of that
 * tenant consented, and the federated credential trusts the identity) and its Graph permission,
 * then the app of each connection of that tenant, read and owned there (`checkApp`, as at home but
 * as the multi-tenant app's service principal in that tenant).
 */
import { errorMessage } from '../telemetry';
import type { PreflightGraph, PreflightRun } from './preflight';
import { addAppChecks, appsOfConnections } from './preflightApps';
import type { OrgScan } from './preflightDevOps';
import { OWNED_BY, READ_WRITE_ALL } from './preflightFixes';

/** Graph in one other tenant, as the multi-tenant app. */
export interface PreflightTenant {
  tenantId: string;
  /** Client id of the multi-tenant app (`MULTI_TENANT_APP_CLIENT_ID`). */
  appClientId: string;
  graph: PreflightGraph;
}

const CONSENT = { area: 'entra-id', name: 'tenant consent' } as const;

/** The admin consent URL of the multi-tenant app in a tenant (Learn, "Grant tenant-wide admin consent to an application"). */
function adminConsentUrl(tenantId: string, appClientId: string): string {
  return `https://login.microsoftonline.com/${tenantId}/adminconsent?client_id=${appClientId}`;
}

export async function checkTenants(
  run: PreflightRun,
  scans: readonly (OrgScan | undefined)[],
  tenants: readonly PreflightTenant[],
): Promise<void> {
  const { add, limit } = run;
  for (const tenant of tenants) {
    const consentFix = `An administrator of tenant ${tenant.tenantId} grants admin consent to the multi-tenant app (${adminConsentUrl(tenant.tenantId, tenant.appClientId)}) with the Microsoft Graph application permission ${OWNED_BY}; check that the app's federated identity credential trusts this service's managed identity (infra/modules/entra.bicep).`;
    let identity: { objectId?: string; appId?: string; roles: string[] };
    try {
      identity = await tenant.graph.callerIdentity();
    } catch (err) {
      add({
        ...CONSENT,
        target: `tenant ${tenant.tenantId}`,
        status: 'missing',
        detail: `no token of the multi-tenant app ${tenant.appClientId} in this tenant: ${errorMessage(err)}`,
        fix: consentFix,
      });
      continue;
    }
    const roles = identity.roles;
    const canWrite = roles.includes(OWNED_BY) || roles.includes(READ_WRITE_ALL);
    add({
      ...CONSENT,
      target: `tenant ${tenant.tenantId}`,
      status: canWrite ? 'ok' : 'missing',
      detail: canWrite
        ? `token obtained as the multi-tenant app ${tenant.appClientId} (roles: ${roles.join(', ')})`
        : `token obtained, but the multi-tenant app holds no ${OWNED_BY} in this tenant (roles: ${roles.join(', ') || 'none'})`,
      ...(canWrite ? {} : { fix: consentFix }),
    });
    const apps = appsOfConnections(
      run.settings,
      scans,
      (tenantId) => tenantId === tenant.tenantId.toLowerCase(),
    );
    const who = {
      objectId: identity.objectId ?? '<object id of the multi-tenant app in this tenant>',
      appId: tenant.appClientId,
    };
    await addAppChecks({ limit, add }, tenant.graph, apps, identity, who, {
      fineDetail: 'readable there, and the multi-tenant app is an owner',
      where: `in tenant ${tenant.tenantId}`,
    });
  }
}
