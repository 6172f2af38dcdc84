/**
 * The service's own identity, apart from the rest of the composition root so a caller that needs
 * only a token (the Functions app's run ledger on identity-based storage) does not load every SDK.
 */
import type { TokenCredential } from '@azure/core-auth';
import { ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import type { Config } from '../config';
import { redactor } from '../telemetry';
import { CachingTokenCredential } from './cachedCredential';

/**
 * The identity the service runs as: a client secret when one is configured (CLI, local runs), the
 * user-assigned managed identity in Azure, otherwise whatever DefaultAzureCredential finds locally.
 * Wrapped so every client shares one token per resource (and concurrent requests wait for one).
 */
export function createCredential(config: Config): TokenCredential {
  return new CachingTokenCredential(identityCredential(config));
}

function identityCredential(config: Config): TokenCredential {
  const authorityHost = config.endpoints.authorityHost;
  const disableInstanceDiscovery = config.endpoints.disableInstanceDiscovery;
  if (config.clientSecret && config.tenantId && config.clientId) {
    redactor.register(config.clientSecret);
    return new ClientSecretCredential(config.tenantId, config.clientId, config.clientSecret, {
      authorityHost,
      disableInstanceDiscovery,
    });
  }
  const inAzure = Boolean(process.env['IDENTITY_ENDPOINT'] ?? process.env['MSI_ENDPOINT']);
  if (inAzure) return new ManagedIdentityCredential(config.clientId ? { clientId: config.clientId } : {});
  return new DefaultAzureCredential({
    authorityHost,
    tenantId: config.tenantId,
    managedIdentityClientId: config.clientId,
  });
}
