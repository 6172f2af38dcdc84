// The function app on the Flex Consumption plan (Linux, Node 22), running as the user-assigned
// managed identity, with every setting of the public contract (DESIGN.md "Public contracts") set
// from parameters, HTTPS only, and FTP and basic publishing credentials off. App Service
// Authentication is configured by appauth.bicep once the API app registration exists (its
// redirect URI needs this app's host name).

@description('Name of the function app.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app (the app also gets azd-service-name).')
param tags object = {}

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Name of the storage account (host storage, deployment package, queues, locks, ledger).')
param storageAccountName string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Key vault URI (KEY_VAULT_URL).')
param keyVaultUri string

@description('Name of the key vault (for the NOTIFY_WEBHOOK_URL Key Vault reference).')
param keyVaultName string

@description('Name of the Key Vault secret holding the notify webhook URL; empty: NOTIFY_WEBHOOK_URL is not set.')
param notifySecretName string = ''

@description('AZDO_ORGANIZATION_URLS: comma-separated Azure DevOps organization URLs.')
param azdoOrganizationUrls string

@description('AZDO_PROJECTS: comma-separated project names or ids to limit discovery to; empty: every project.')
param azdoProjects string = ''

@description('ROTATE_DAYS_BEFORE_EXPIRY: a secret ending within this many days is rotated.')
param rotateDaysBeforeExpiry int

@description('SECRET_LIFETIME_DAYS: lifetime of the secrets the service creates.')
param secretLifetimeDays int

@description('OLD_SECRET_RETENTION_HOURS: how long a superseded secret stays after the new one is verified.')
param oldSecretRetentionHours int

@description('DRY_RUN: assess and plan only, no write to any service.')
param dryRun bool

@description('REMEDIATION_SCHEDULE: the nightly timer, 6-field NCRONTAB in UTC.')
param remediationSchedule string

@description('REMEDIATION_JITTER_SECONDS: random delay before the nightly run starts (0 to 300).')
param remediationJitterSeconds int

@description('MAX_CONCURRENCY: connections worked on at once per run.')
param maxConcurrency int

@description('GRAPH_ENDPOINT: Microsoft Graph root; empty: the cloud default (AZURE_CLOUD decides).')
param graphEndpoint string = ''

@description('ADDITIONAL_TENANT_IDS: other tenants whose connections are rotated (empty: none).')
param additionalTenantIds string = ''

@description('MULTI_TENANT_APP_CLIENT_ID: the multi-tenant app that trusts the managed identity (empty without other tenants).')
param multiTenantAppClientId string = ''

@description('Key Vault secret holding the remediation policy (REMEDIATION_POLICY); empty: no policy.')
param policySecretName string = ''

@description('ENABLE_RETIREMENT: delete unrecoverable connections (definition kept in the run ledger).')
param enableRetirement bool

@description('RETIRE_FAILED_AFTER_DAYS: also retire connections failing this many days; 0: only those whose app is gone.')
param retireFailedAfterDays int

@description('App Service Authentication will be configured (appauth.bicep): sets the settings its secretless sign-in needs.')
param enableAuth bool = true

// A range, not @allowed([512, 2048, 4096]): main.bicepparam reads the size from the environment with
// int(), whose type is `int`, and the compiler refuses an `int` where only those literals are allowed
// (BCP033). Flex Consumption rejects any other size at deployment.
@description('Memory of each instance in MB: 512, 2048 or 4096 (the Flex Consumption instance sizes).')
@minValue(512)
@maxValue(4096)
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to (Flex Consumption: 40 to 1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references (NOTIFY_WEBHOOK_URL) resolve with the same identity.
    keyVaultReferenceIdentity: identityId
    // No ftpsState: FTP does not exist on Flex Consumption, and Flex sites in some regions (West
    // Europe included) reject the property outright ("The following list of site configuration
    // properties (Site.SiteConfig.FtpsState, ...) for Flex Consumption sites is invalid",
    // microsoft/azure-pipelines-tasks#21032). Publishing credentials are off below.
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// Identity-based host storage: no connection string, no key.
var storageSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
}

// Entra ID ingestion: the connection string only locates the component; local auth is off, so
// the instrumentation key inside it cannot ingest anything on its own.
var telemetrySettings = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// DESIGN.md "Public contracts". AZURE_CLIENT_SECRET and AZDO_PAT are never set in Azure: the
// managed identity (AZURE_CLIENT_ID) authenticates to every service, Azure DevOps included.
var contractSettings = {
  AZDO_ORGANIZATION_URLS: azdoOrganizationUrls
  AZDO_PROJECTS: azdoProjects
  KEY_VAULT_URL: keyVaultUri
  AZURE_CLOUD: environment().name
  GRAPH_ENDPOINT: graphEndpoint
  AZURE_AUTHORITY_HOST: environment().authentication.loginEndpoint
  AZURE_TENANT_ID: tenant().tenantId
  AZURE_CLIENT_ID: identityClientId
  ADDITIONAL_TENANT_IDS: additionalTenantIds
  MULTI_TENANT_APP_CLIENT_ID: multiTenantAppClientId
  ROTATE_DAYS_BEFORE_EXPIRY: string(rotateDaysBeforeExpiry)
  SECRET_LIFETIME_DAYS: string(secretLifetimeDays)
  OLD_SECRET_RETENTION_HOURS: string(oldSecretRetentionHours)
  DRY_RUN: dryRun ? 'true' : 'false'
  REMEDIATION_SCHEDULE: remediationSchedule
  REMEDIATION_JITTER_SECONDS: string(remediationJitterSeconds)
  MAX_CONCURRENCY: string(maxConcurrency)
  // The policy lives in Key Vault (REMEDIATION_POLICY_FILE is the CLI's way: a local path).
  REMEDIATION_POLICY: empty(policySecretName) ? '' : '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${policySecretName})'
  ENABLE_RETIREMENT: enableRetirement ? 'true' : 'false'
  RETIRE_FAILED_AFTER_DAYS: string(retireFailedAfterDays)
  // Never key-only in Azure: without App Service Authentication the API answers 401 (fail closed).
  API_UNSAFE_ALLOW_KEY_ONLY_ACCESS: 'false'
}

// The webhook URL embeds a token: it lives in Key Vault, the app setting only references it.
var notifySettings = empty(notifySecretName) ? {} : {
  NOTIFY_WEBHOOK_URL: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${notifySecretName})'
}

// Sign-in without a client secret: the managed identity's token is the client assertion.
var authSettings = !enableAuth ? {} : {
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identityClientId
  WEBSITE_AUTH_AAD_ALLOWED_TENANTS: tenant().tenantId
}

// The Node worker's memory allocator (glibc reads it at start; the host passes its environment to the
// worker). By default every thread gets its own malloc arena, up to 8 per core, and each keeps what it
// freed: on Node 22 the worker with its engine thread peaked 15 MB higher at 10,000 connections
// (docs/performance.md). Two arenas, the value Heroku sets for every new app
// (https://devcenter.heroku.com/articles/tuning-glibc-memory-behavior; M_ARENA_MAX in mallopt(3)).
// npm run bench applies this value to the Functions path it measures.
var runtimeSettings = {
  MALLOC_ARENA_MAX: '2'
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(storageSettings, telemetrySettings, contractSettings, notifySettings, authSettings, runtimeSettings)
}

resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

@description('Name of the function app.')
output name string = site.name

@description('Default host name of the function app.')
output defaultHostName string = site.properties.defaultHostName

@description('Resource id of the function app.')
output id string = site.id
