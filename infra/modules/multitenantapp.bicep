// The multi-tenant app registration through which the service acts in other tenants
// (ADDITIONAL_TENANT_IDS), with no secret: a federated identity credential makes the managed identity
// its credential (Learn, "Configure an application to trust a managed identity": issuer the home
// tenant's `<login endpoint><tenant>/v2.0`, subject the identity's object (principal) id, audience
// `api://AzureADTokenExchange`). An administrator of each other tenant then consents to it (admin
// consent URL in docs/deploy.md), which creates its service principal there, and makes it an owner
// of the apps it rotates there.
//
// Its own module, not entra.bicep: the function app needs its client id as an app setting, while
// entra.bicep needs the function app's host name (sign-in redirect URI); one module would be a cycle.
extension microsoftGraphV1

@description('Object (principal) id of the user-assigned managed identity the app trusts.')
param identityPrincipalId string

@description('Immutable client-provided key of the app registration (Graph uniqueName).')
param appUniqueName string

@description('Display name of the app registration.')
param appDisplayName string

// Token exchange audience of federated credentials, per cloud.
var tokenExchangeAudience = environment().name == 'AzureUSGovernment' ? 'api://AzureADTokenExchangeUSGov' : (environment().name == 'AzureChinaCloud' ? 'api://AzureADTokenExchangeChina' : 'api://AzureADTokenExchange')

// Microsoft Graph's well-known application id, and Application.ReadWrite.OwnedBy's id (an
// application permission): what each tenant's administrator consents to.
var graphAppId = '00000003-0000-0000-c000-000000000000'
var ownedByRoleId = '18a4783c-866b-4cc7-a460-3d5e5662c884'

resource multiTenantApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: appUniqueName
  displayName: appDisplayName
  // Consentable in other organizations' tenants.
  signInAudience: 'AzureADMultipleOrgs'
  requiredResourceAccess: [
    {
      resourceAppId: graphAppId
      resourceAccess: [
        {
          id: ownedByRoleId
          type: 'Role'
        }
      ]
    }
  ]
}

resource managedIdentityCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${multiTenantApp.uniqueName}/sc-remediator-managed-identity'
  description: 'The sc-remediator function app signs in as this app, in each other tenant, with its managed identity.'
  issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
  subject: identityPrincipalId
  audiences: [tokenExchangeAudience]
}

@description('Client id of the multi-tenant app (MULTI_TENANT_APP_CLIENT_ID of the function app).')
output appClientId string = multiTenantApp.appId
