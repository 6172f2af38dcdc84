// sc-remediator on Azure: a Flex Consumption function app running as one user-assigned managed
// identity, its storage, Key Vault and monitoring, the identity's Azure roles and Microsoft Graph
// permissions, App Service Authentication for the HTTP API, and alerts. `azd up` provisions it with
// main.bicepparam and deploys the code (azure.yaml). See docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and seeds the resource token of every name.')
param environmentName string

@minLength(1)
@description('Azure region of every resource (one where the Flex Consumption plan is offered).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the deploying user (azd sets it): given the Remediation.Operator app role of the API so the status page and API work right after deployment. Empty: nobody.')
param principalId string = ''

@description('AZDO_ORGANIZATION_URLS: comma-separated Azure DevOps organization URLs, e.g. https://dev.azure.com/contoso.')
@minLength(1)
param azdoOrganizationUrls string

@description('AZDO_PROJECTS: comma-separated project names or ids to limit discovery to; empty: every project.')
param azdoProjects string = ''

@description('ROTATE_DAYS_BEFORE_EXPIRY: a secret ending within this many days is rotated.')
@minValue(0)
@maxValue(365)
param rotateDaysBeforeExpiry int = 30

@description('SECRET_LIFETIME_DAYS: lifetime of the secrets the service creates (clamped to an app management policy cap).')
@minValue(1)
@maxValue(730)
param secretLifetimeDays int = 90

@description('OLD_SECRET_RETENTION_HOURS: how long a superseded secret stays on the app after the new one is verified.')
@minValue(0)
@maxValue(8760)
param oldSecretRetentionHours int = 24

@description('DRY_RUN: assess and plan only; no write to any service (a safe first deployment).')
param dryRun bool = false

@description('REMEDIATION_SCHEDULE: the nightly timer, 6-field NCRONTAB in UTC ({second} {minute} {hour} {day} {month} {day-of-week}).')
param remediationSchedule string = '0 0 2 * * *'

@description('REMEDIATION_JITTER_SECONDS: random delay before the nightly run starts, 0 to 300.')
@minValue(0)
@maxValue(300)
param remediationJitterSeconds int = 120

@description('MAX_CONCURRENCY: connections worked on at once per run.')
@minValue(1)
@maxValue(64)
param maxConcurrency int = 8

@description('GRAPH_ENDPOINT: Microsoft Graph root; empty: the default of the cloud this is deployed to.')
param graphEndpoint string = ''

@description('Other Entra tenants (comma-separated GUIDs) whose service connections the service rotates, through a multi-tenant app that trusts the managed identity (ADDITIONAL_TENANT_IDS). Empty: the home tenant only, and no multi-tenant app is created.')
param additionalTenantIds string = ''

@description('Client id of an existing multi-tenant app that trusts the managed identity, for additionalTenantIds when manageEntraObjects is false (docs/deploy.md, "Other tenants").')
param multiTenantAppClientId string = ''

@description('REMEDIATION_POLICY: JSON policy (rotate, convert-to-wif, report-only, exclude per organization, project and connection pattern); kept in Key Vault. Empty: rotate everything, convert nothing.')
param remediationPolicy string = ''

@description('ENABLE_RETIREMENT: delete connections whose app is gone (or failing past RETIRE_FAILED_AFTER_DAYS), their definition kept in the run ledger.')
param enableRetirement bool = false

@description('RETIRE_FAILED_AFTER_DAYS: with retirement enabled, also retire connections failing this many days; 0: only those whose app is gone.')
@minValue(0)
@maxValue(3650)
param retireFailedAfterDays int = 0

@description('Webhook for failure and needs-a-person notifications from the service itself (NOTIFY_WEBHOOK_URL); kept in Key Vault. Empty: none.')
@secure()
param notifyWebhookUrl string = ''

@description('Comma-separated email addresses that receive the Azure Monitor alerts.')
param alertEmailAddresses string = ''

@description('Webhook that receives the Azure Monitor alerts (common alert schema). Empty: none.')
@secure()
param alertWebhookUrl string = ''

@description('A secret ending within this many days that is still not rotated raises an alert.')
@minValue(1)
@maxValue(30)
param expiringAlertDays int = 7

@description('Hours without a completed nightly run before the "run died silently" alert fires.')
@minValue(25)
@maxValue(48)
param missedRunAlertHours int = 26

@description('KEY_VAULT_CREATE_MODE: default creates the Key Vault; recover recovers the soft-deleted vault of the same name (after `azd down`; docs/deploy.md).')
@allowed([
  'default'
  'recover'
])
param keyVaultCreateMode string = 'default'

@description('Deploy the rotation history workbook.')
param deployWorkbook bool = true

@description('Create the Entra ID objects with the Microsoft Graph Bicep extension: the identity\'s Graph permissions and the API app registration. False: a tenant administrator does it by hand (docs/deploy.md, "Without the Graph extension") and passes apiAppClientId.')
param manageEntraObjects bool = true

@description('Also grant Graph Policy.Read.All (optional) so app management policy caps are respected before addPassword is called.')
param grantPolicyReadAll bool = true

@description('Client id of an existing API app registration, used for App Service Authentication when manageEntraObjects is false. Empty with manageEntraObjects false: no App Service Authentication (the API then rejects every call for lack of a role).')
param apiAppClientId string = ''

@description('What App Service Authentication does with an unauthenticated request.')
@allowed([
  'RedirectToLoginPage'
  'Return401'
  'Return403'
])
param authUnauthenticatedAction string = 'RedirectToLoginPage'

// A range, not @allowed: see modules/functionapp.bicep (the value comes from int() in main.bicepparam).
@description('Memory of each function app instance in MB: 512, 2048 or 4096 (Flex Consumption rejects other sizes).')
@minValue(512)
@maxValue(4096)
param instanceMemoryMB int = 2048

@description('Most instances the function app scales out to (40 to 1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Days Log Analytics keeps data.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'sc-remediator'
}
var functionAppName = '${abbrs.webSitesFunctions}sc-remediator-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var emails = filter(map(split(alertEmailAddresses, ','), address => trim(address)), address => !empty(address))
var enableAuth = manageEntraObjects || !empty(apiAppClientId)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}sc-remediator-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    notifyWebhookUrl: notifyWebhookUrl
    remediationPolicy: remediationPolicy
    createMode: keyVaultCreateMode
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: vault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultUri: vault.outputs.uri
    keyVaultName: vault.outputs.name
    notifySecretName: empty(notifyWebhookUrl) ? '' : vault.outputs.notifySecretName
    azdoOrganizationUrls: azdoOrganizationUrls
    azdoProjects: azdoProjects
    rotateDaysBeforeExpiry: rotateDaysBeforeExpiry
    secretLifetimeDays: secretLifetimeDays
    oldSecretRetentionHours: oldSecretRetentionHours
    dryRun: dryRun
    remediationSchedule: remediationSchedule
    remediationJitterSeconds: remediationJitterSeconds
    maxConcurrency: maxConcurrency
    graphEndpoint: graphEndpoint
    additionalTenantIds: additionalTenantIds
    multiTenantAppClientId: empty(additionalTenantIds) ? '' : (manageEntraObjects ? multiTenantApp!.outputs.appClientId : multiTenantAppClientId)
    policySecretName: empty(remediationPolicy) ? '' : vault.outputs.policySecretName
    enableRetirement: enableRetirement
    retireFailedAfterDays: retireFailedAfterDays
    enableAuth: enableAuth
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
  // The host reaches storage, Key Vault and Application Insights with these roles from its first start.
  dependsOn: [
    rbac
  ]
}

// The app through which the service acts in other tenants, only when there are any.
module multiTenantApp 'modules/multitenantapp.bicep' = if (manageEntraObjects && !empty(additionalTenantIds)) {
  name: 'multitenantapp'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    appUniqueName: 'sc-remediator-multi-tenant-${resourceToken}'
    appDisplayName: 'sc-remediator multi-tenant (${environmentName})'
  }
}

module entra 'modules/entra.bicep' = if (manageEntraObjects) {
  name: 'entra'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    apiAppUniqueName: 'sc-remediator-api-${resourceToken}'
    apiAppDisplayName: 'sc-remediator API (${environmentName})'
    functionAppHostName: functionApp.outputs.defaultHostName
    grantPolicyReadAll: grantPolicyReadAll
    operatorPrincipalIds: empty(principalId) ? [] : [
      principalId
    ]
  }
}

module appAuth 'modules/appauth.bicep' = if (enableAuth) {
  name: 'appauth'
  scope: rg
  params: {
    siteName: functionApp.outputs.name
    authClientId: manageEntraObjects ? entra!.outputs.apiAppClientId : apiAppClientId
    authUnauthenticatedAction: authUnauthenticatedAction
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsName: monitoring.outputs.appInsightsName
    actionGroupName: '${abbrs.insightsActionGroups}sc-remediator-${resourceToken}'
    alertNamePrefix: '${abbrs.insightsScheduledQueryRules}sc-remediator-'
    alertEmailAddresses: emails
    alertWebhookUrl: alertWebhookUrl
    expiringAlertDays: expiringAlertDays
    missedRunAlertHours: missedRunAlertHours
    deployWorkbook: deployWorkbook
  }
}

// Outputs azd stores in the environment (.azure/<env>/.env) and prints.
@description('Region of the deployment.')
output AZURE_LOCATION string = location

@description('Tenant of the deployment.')
output AZURE_TENANT_ID string = tenant().tenantId

@description('Resource group holding every resource.')
output AZURE_RESOURCE_GROUP string = rg.name

@description('Function app name (azd deploys the api service to it).')
output SERVICE_API_NAME string = functionApp.outputs.name

@description('Function app base URL.')
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'

@description('KEY_VAULT_URL of the deployment (for sc-remediator check from a workstation).')
output KEY_VAULT_URL string = vault.outputs.uri

@description('Client id of the managed identity (AZURE_CLIENT_ID of the app).')
output AZURE_CLIENT_ID string = identity.outputs.clientId

@description('Object id of the managed identity: make it an owner of each app it rotates (scripts/add-owner.sh) and add it to each Azure DevOps organization.')
output SC_REMEDIATOR_IDENTITY_OBJECT_ID string = identity.outputs.principalId

@description('Display name of the managed identity, as it is searched for in Azure DevOps (Organization settings > Users).')
output SC_REMEDIATOR_IDENTITY_NAME string = identity.outputs.name

@description('Client id of the API app registration (callers request <client id>/.default); empty when App Service Authentication is off.')
output API_APP_CLIENT_ID string = manageEntraObjects ? entra!.outputs.apiAppClientId : apiAppClientId

@description('Client id of the multi-tenant app (MULTI_TENANT_APP_CLIENT_ID): an administrator of each of additionalTenantIds grants it admin consent; empty without other tenants.')
output MULTI_TENANT_APP_CLIENT_ID string = empty(additionalTenantIds) ? '' : (manageEntraObjects ? multiTenantApp!.outputs.appClientId : multiTenantAppClientId)
