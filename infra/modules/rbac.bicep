// Every Azure role the managed identity holds, each scoped to the one resource it is for (never the
// resource group or subscription), each named guid(scope, principal, role) so a re-deployment
// finds the same assignment. Built-in role ids are fixed across clouds and tenants.

@description('Object (principal) id of the user-assigned managed identity.')
param principalId string

@description('Name of the function app storage account.')
param storageAccountName string

@description('Name of the key vault.')
param keyVaultName string

@description('Name of the Application Insights component.')
param appInsightsName string

// Storage Blob Data Owner: the Functions host's identity-based AzureWebJobsStorage requires it
// (host locks, timer schedule monitor, key storage, container creation), the Flex Consumption
// deployment package is read from the deployment container with it, and the app's own blob use
// (rotation lease locks in sc-remediator-locks, the run ledger in sc-remediator-runs) is a subset.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'

// Storage Queue Data Contributor: the remediateConnection queue trigger reads and deletes messages,
// the nightly run's output binding adds them, and the host creates and writes the poison queue.
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'

// Key Vault Secrets Officer: the rotation state store gets, sets, updates (tags) and recovers
// secrets (src/clients/keyVaultStateStore.ts), and the app resolves the NOTIFY_WEBHOOK_URL Key
// Vault reference. No narrower built-in role allows set and recover; the vault holds nothing else.
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

// Key Vault Certificates Officer: certificate connections are rotated with a certificate Key Vault
// creates (certificates/create and get); its PEM is read through the secret of the same name.
var keyVaultCertificatesOfficer = 'a4417e6f-fecd-4de8-b567-7b0420556985'

// Monitoring Metrics Publisher: Application Insights has local auth off, so telemetry is ingested
// with an Entra token of the identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Storage Blob Data Owner on the storage account (host storage, deployment package, locks, ledger).
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'sc-remediator: Functions host storage, Flex deployment package, rotation locks, run ledger'
  }
}

// Storage Queue Data Contributor on the storage account (work queue and its poison queue).
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'sc-remediator: remediateConnection queue trigger, fan-out output binding, poison queue'
  }
}

// Key Vault Secrets Officer on the vault (rotation secrets and state; Key Vault references).
resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'sc-remediator: rotation secrets and state (get, set, update tags, recover)'
  }
}

// Key Vault Certificates Officer on the vault (new certificates for certificate connections).
resource certificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultCertificatesOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCertificatesOfficer)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'sc-remediator: certificates for certificate-based connections (create, get)'
  }
}

// Monitoring Metrics Publisher on the Application Insights component (Entra ID ingestion).
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'sc-remediator: telemetry ingestion with Entra ID (local auth is off)'
  }
}
