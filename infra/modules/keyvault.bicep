// The vault that keeps each connection's client secret and rotation state (secrets named
// sc-remediator-<connectionId>, phase in their tags). Azure RBAC only (no access policies), soft
// delete and purge protection on: a rotated secret can never be lost to a delete, and the state
// store already recovers soft-deleted names.

@description('Name of the key vault (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the vault.')
param location string

@description('Tags applied to the vault.')
param tags object = {}

@description('Days a deleted secret stays recoverable (7 to 90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

// Purge protection keeps a deleted vault's name reserved for softDeleteRetentionInDays, and the name
// is fixed per environment: after `azd down`, `azd up` with the same environment must recover the
// soft-deleted vault instead of creating it. ARM offers no "create or recover": `default` fails on a
// soft-deleted vault of the same name, `recover` fails when there is none (Microsoft.KeyVault/vaults
// properties.createMode). docs/deploy.md, "Remove and deploy again", has the steps.
@description('default: create the vault (fails while a soft-deleted vault has this name); recover: recover the soft-deleted vault of this name with its secrets (after `azd down`).')
@allowed([
  'default'
  'recover'
])
param createMode string = 'default'

@description('Webhook URL for failure notifications (NOTIFY_WEBHOOK_URL). Stored as the secret notify-webhook-url and read by the app through a Key Vault reference; empty: no secret.')
@secure()
param notifyWebhookUrl string = ''

@description('Remediation policy (REMEDIATION_POLICY, JSON). Stored as the secret remediation-policy and read by the app through a Key Vault reference; empty: no policy (rotate everything, convert nothing).')
param remediationPolicy string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    createMode: createMode
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Not named sc-remediator-*: the rotation state store never touches it.
var webhookSecretName = 'notify-webhook-url'

resource notifySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(notifyWebhookUrl)) {
  parent: vault
  name: webhookSecretName
  properties: {
    value: notifyWebhookUrl
    contentType: 'text/plain; webhook URL'
  }
}

// Not named sc-remediator-*: the state stores never touch it. Not a secret, but kept with the
// vault's history and audit, and changed without redeploying the app.
var policySecretName = 'remediation-policy'

resource policySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(remediationPolicy)) {
  parent: vault
  name: policySecretName
  properties: {
    value: remediationPolicy
    contentType: 'application/json; sc-remediator policy'
  }
}

@description('Name of the vault.')
output name string = vault.name

@description('Resource id of the vault.')
output id string = vault.id

@description('Vault URI (KEY_VAULT_URL).')
output uri string = vault.properties.vaultUri

@description('Name of the secret that holds the remediation policy when one is given (it exists only then).')
output policySecretName string = policySecretName

@description('Name of the secret that holds the notify webhook URL when one is given (it exists only then).')
output notifySecretName string = webhookSecretName
