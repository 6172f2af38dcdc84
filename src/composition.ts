/**
 * The one composition root: builds every adapter from the validated config, so the core sees only
 * its interfaces. Used by the CLI and the Functions alike.
 */
import type { TokenCredential } from '@azure/core-auth';
import { AzureDevOpsRestClient, createAzureDevOpsClient } from './clients/azureDevOps';
import { BlobLeaseLockProvider } from './clients/blobLeaseLock';
import { createCredential } from './clients/identity';
import { GraphApplicationsAdapter } from './clients/graph';
import { KeyVaultBindingStore } from './clients/keyVaultBindingStore';
import { KeyVaultCertificates } from './clients/keyVaultCertificates';
import { KeyVaultConversionStore } from './clients/keyVaultConversionStore';
import { KeyVaultStateStore } from './clients/keyVaultStateStore';
import { blobServiceFor, sharedRunLedger } from './clients/runLedgerFromConfig';
import { MemoryLockProvider } from './clients/memoryLock';
import { createTenantCredential } from './clients/tenantCredential';
import { EntraTokenProbe } from './clients/tokenProbe';
import type { Config } from './config';
import type { Clock, LockProvider } from './remediation/ports';
import type { PreflightDeps, PreflightSettings } from './remediation/preflight';
import type { EngineDeps } from './remediation/engine';
import type { RunSettings } from './remediation/run';
import { redactor, type Logger } from './telemetry';

const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** The lease lock in the function's storage account, or an in-process lock when none is configured. */
function createLockProvider(config: Config, credential: TokenCredential, log: Logger): LockProvider {
  const storage = config.storage;
  if (!storage) {
    log.warn('No storage configured (AzureWebJobsStorage): rotations are locked within this process only.');
    return new MemoryLockProvider();
  }
  if (storage.connectionString) redactor.register(storage.connectionString);
  return new BlobLeaseLockProvider(blobServiceFor(storage, credential), {
    onLost: (key, reason) => log.warn('A rotation lock was lost', { key, reason }),
  });
}

/** The tenant's default app management policy is read once per ten minutes, not once per app. */
const TENANT_POLICY_TTL_MS = 10 * 60_000;

export interface Engine {
  deps: EngineDeps;
  settings: RunSettings;
  credential: TokenCredential;
}

/** Builds the engine's dependencies and settings from config. */
export function buildEngine(config: Config, log: Logger, clock: Clock = systemClock): Engine {
  const credential = createCredential(config);
  if (config.azdoPat) redactor.register(config.azdoPat);
  const store = new KeyVaultStateStore({ vaultUrl: config.keyVaultUrl, credential });
  const deps: EngineDeps = {
    devops: createAzureDevOpsClient({ credential, pat: config.azdoPat }),
    graph: new GraphApplicationsAdapter({
      credential,
      endpoint: config.endpoints.graphEndpoint,
      scope: config.endpoints.graphScope,
      tenantPolicyTtlMs: TENANT_POLICY_TTL_MS,
      maxConcurrency: config.maxConcurrency,
    }),
    store,
    locks: createLockProvider(config, credential, log),
    tokenProbe: new EntraTokenProbe({ authorityHost: config.endpoints.authorityHost }),
    clock,
    log,
  };
  // The Graph adapter also manages federated credentials; conversions keep their state in Key Vault;
  // retirements need the run ledger (the storage account), so without storage nothing is retired.
  if (deps.graph instanceof GraphApplicationsAdapter) deps.federation = deps.graph;
  const tenants = buildTenantClients(config, credential, TENANT_POLICY_TTL_MS);
  if (tenants.size > 0)
    deps.tenants = new Map([...tenants].map(([id, graph]) => [id, { graph, federation: graph }]));
  deps.conversions = new KeyVaultConversionStore({ vaultUrl: config.keyVaultUrl, credential });
  deps.bindings = new KeyVaultBindingStore({ client: store.client });
  // Certificate connections get their new certificate from Key Vault's certificates.
  deps.certificates = new KeyVaultCertificates({
    vaultUrl: config.keyVaultUrl,
    credential,
    secrets: store.client,
  });
  const ledger = sharedRunLedger(config, { now: () => clock.now(), credential });
  if (ledger) deps.retirements = ledger;
  const settings: RunSettings = {
    organizations: config.organizations.map((o) => ({ url: o.url, name: o.name })),
    projects: config.projects,
    rotateDaysBeforeExpiry: config.rotateDaysBeforeExpiry,
    secretLifetimeDays: config.secretLifetimeDays,
    oldSecretRetentionHours: config.oldSecretRetentionHours,
    tenantId: config.tenantId,
    ...(config.additionalTenantIds ? { additionalTenantIds: config.additionalTenantIds } : {}),
    maxConcurrency: config.maxConcurrency,
    lockSeconds: config.lockSeconds,
    dryRun: config.dryRun,
    retirement: { enabled: config.enableRetirement, failedAfterDays: config.retireFailedAfterDays },
  };
  if (config.policy) settings.policy = config.policy;
  return { deps, settings, credential };
}

/**
 * Graph in each of `ADDITIONAL_TENANT_IDS`, as the multi-tenant app (`MULTI_TENANT_APP_CLIENT_ID`)
 * whose client assertion is the service's own token (tenantCredential.ts): no secret anywhere.
 */
function buildTenantClients(
  config: Config,
  home: TokenCredential,
  tenantPolicyTtlMs?: number,
): Map<string, GraphApplicationsAdapter> {
  const tenants = new Map<string, GraphApplicationsAdapter>();
  const appClientId = config.multiTenantAppClientId;
  if (!appClientId) return tenants;
  for (const tenantId of config.additionalTenantIds ?? []) {
    const credential = createTenantCredential({
      home,
      tenantId,
      appClientId,
      cloud: config.cloud,
      authorityHost: config.endpoints.authorityHost,
      disableInstanceDiscovery: config.endpoints.disableInstanceDiscovery,
    });
    tenants.set(
      tenantId.toLowerCase(),
      new GraphApplicationsAdapter({
        credential,
        endpoint: config.endpoints.graphEndpoint,
        scope: config.endpoints.graphScope,
        ...(tenantPolicyTtlMs === undefined ? {} : { tenantPolicyTtlMs }),
        maxConcurrency: config.maxConcurrency,
      }),
    );
  }
  return tenants;
}

/**
 * The adapters `sc-remediator check` reads through, as the configured identity. Storage is built
 * only when a check runs, so a bad storage setting becomes a failed check rather than a crash.
 */
export function buildPreflight(config: Config): { deps: PreflightDeps; settings: PreflightSettings } {
  const credential = createCredential(config);
  if (config.azdoPat) redactor.register(config.azdoPat);
  const vault = new KeyVaultStateStore({ vaultUrl: config.keyVaultUrl, credential });
  const certificates = new KeyVaultCertificates({
    vaultUrl: config.keyVaultUrl,
    credential,
    secrets: vault.client,
  });
  const storage = config.storage;
  if (storage?.connectionString) redactor.register(storage.connectionString);
  const deps: PreflightDeps = {
    devops: new AzureDevOpsRestClient({ credential, pat: config.azdoPat }),
    graph: new GraphApplicationsAdapter({
      credential,
      endpoint: config.endpoints.graphEndpoint,
      scope: config.endpoints.graphScope,
    }),
    vault: {
      url: config.keyVaultUrl,
      checkAccess: () => vault.checkAccess(),
      checkCertificateAccess: () => certificates.checkAccess(),
    },
    storage: storage && {
      checkAccess: () => new BlobLeaseLockProvider(blobServiceFor(storage, credential)).checkAccess(),
    },
    concurrency: config.maxConcurrency,
  };
  const tenants = buildTenantClients(config, credential);
  if (tenants.size > 0 && config.multiTenantAppClientId) {
    const appClientId = config.multiTenantAppClientId;
    deps.tenants = [...tenants].map(([tenantId, graph]) => ({ tenantId, appClientId, graph }));
  }
  return {
    deps,
    settings: {
      organizations: config.organizations.map((o) => ({ url: o.url, name: o.name })),
      projects: config.projects,
      ...(config.additionalTenantIds ? { additionalTenantIds: config.additionalTenantIds } : {}),
    },
  };
}
