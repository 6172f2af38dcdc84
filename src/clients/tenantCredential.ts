/**
 * Tokens in another tenant without a secret: the multi-tenant app (`MULTI_TENANT_APP_CLIENT_ID`,
 * registered in the home tenant) trusts the service's managed identity through a federated identity
 * credential, so the identity's own token for the token-exchange audience is the app's client
 * assertion, in any tenant where the app is consented (has a service principal).
 *
 * Source: Microsoft Learn, "Configure an application to trust a managed identity"
 * (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity):
 * issuer `https://login.microsoftonline.com/{home tenant}/v2.0`, subject the managed identity's
 * object (principal) id, audience `api://AzureADTokenExchange` (`…USGov` and `…China` in those
 * clouds); the app then signs in with `ClientAssertionCredential(tenantId, appClientId, getAssertion)`
 * whose assertion is the identity's token for `api://AzureADTokenExchange/.default`. Also the
 * announcement "Access cloud resources across tenants without secrets"
 * (https://devblogs.microsoft.com/identity/access-cloud-resources-across-tenants-without-secrets).
 */
import type { TokenCredential } from '@azure/core-auth';
import { ClientAssertionCredential, CredentialUnavailableError } from '@azure/identity';
import { CachingTokenCredential } from './cachedCredential';
import type { AzureCloudName } from './cloud';

/** The audience a managed identity's token must carry to serve as an assertion, per cloud. */
const TOKEN_EXCHANGE_AUDIENCE: Record<AzureCloudName, string> = {
  AzureCloud: 'api://AzureADTokenExchange',
  AzureUSGovernment: 'api://AzureADTokenExchangeUSGov',
  AzureChinaCloud: 'api://AzureADTokenExchangeChina',
};

function tokenExchangeScope(cloud: AzureCloudName): string {
  return `${TOKEN_EXCHANGE_AUDIENCE[cloud]}/.default`;
}

interface TenantCredentialOptions {
  /** The service's own identity in its home tenant (the managed identity in Azure). */
  home: TokenCredential;
  /** The tenant to get tokens in. */
  tenantId: string;
  /** Client id of the multi-tenant app that trusts `home`. */
  appClientId: string;
  cloud: AzureCloudName;
  authorityHost?: string;
  disableInstanceDiscovery?: boolean;
}

/**
 * A credential of the multi-tenant app in `tenantId`, whose assertion is the home identity's token
 * (never a secret; the assertion is a short-lived token that goes only to Entra ID). One token per
 * resource, as for the home credential.
 */
export function createTenantCredential(options: TenantCredentialOptions): TokenCredential {
  const scope = tokenExchangeScope(options.cloud);
  const getAssertion = async (): Promise<string> => {
    const token = await options.home.getToken(scope);
    if (!token)
      throw new CredentialUnavailableError(
        `The service's identity got no token for ${scope}, the assertion of the multi-tenant app.`,
      );
    return token.token;
  };
  return new CachingTokenCredential(
    new ClientAssertionCredential(options.tenantId, options.appClientId, getAssertion, {
      authorityHost: options.authorityHost,
      disableInstanceDiscovery: options.disableInstanceDiscovery,
    }),
  );
}
