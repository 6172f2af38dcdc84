// Entra ID objects, through the Microsoft Graph Bicep extension (see bicepconfig.json):
// 1. the Microsoft Graph application permissions of the managed identity (app role assignments);
// 2. the API app registration App Service Authentication validates tokens for, with the app roles
//    the HTTP API and the status page check (Remediation.Reader, Remediation.Operator), a service
//    principal that only assigned users and apps may sign in to, and a federated credential so the
//    sign-in flow uses the managed identity instead of a client secret.
//
// The deploying user needs, in Entra ID: Application.ReadWrite.All (Application Developer is
// enough for a new app) and AppRoleAssignment.ReadWrite.All + DelegatedPermissionGrant.ReadWrite.All
// (Privileged Role Administrator) to grant Graph permissions. Tenants where that is not possible
// deploy with manageEntraObjects=false and follow docs/deploy.md ("Without the Graph extension").
extension microsoftGraphV1

@description('Object (principal) id of the user-assigned managed identity that receives the Graph permissions.')
param identityPrincipalId string

@description('Immutable client-provided key of the API app registration (Graph uniqueName).')
param apiAppUniqueName string

@description('Display name of the API app registration.')
param apiAppDisplayName string

@description('Default host name of the function app, for the sign-in redirect URI.')
param functionAppHostName string

@description('Also grant Policy.Read.All (optional): lets the service read app management policies and respect a password lifetime cap or ban before calling addPassword.')
param grantPolicyReadAll bool = true

@description('Object ids of users, groups or service principals given the Remediation.Operator app role (may start runs and fixes; includes reading).')
param operatorPrincipalIds array = []

@description('Object ids of users, groups or service principals given the Remediation.Reader app role (reports and the status page).')
param readerPrincipalIds array = []

// Microsoft Graph's well-known application id: the same in every tenant and cloud.
var graphAppId = '00000003-0000-0000-c000-000000000000'

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

// Application permissions are looked up by name among Graph's app roles (an application role, not
// the delegated scope of the same name).
var graphAppRoles = graph.appRoles

// Application.ReadWrite.OwnedBy (id 18a4783c-866b-4cc7-a460-3d5e5662c884): addPassword and
// removePassword on the apps the identity owns (and reading apps and their owners). The least
// privilege that can rotate a secret: the identity must be an owner of every app it rotates
// (scripts/add-owner.sh); Application.ReadWrite.All would let it change every app in the tenant.
var ownedByRole = filter(graphAppRoles, role => role.value == 'Application.ReadWrite.OwnedBy' && contains(role.allowedMemberTypes, 'Application'))[0]

// Policy.Read.All (id 246dd0d5-5bd0-4def-940b-0421030a5b68), optional: read app management
// policies (tenant default and per app), so a lifetime cap shortens the new secret up front and a
// ban on passwords is reported instead of tried.
var policyReadRole = filter(graphAppRoles, role => role.value == 'Policy.Read.All' && contains(role.allowedMemberTypes, 'Application'))[0]

resource identityOwnedBy 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: ownedByRole.id
  principalId: identityPrincipalId
  resourceId: graph.id
}

resource identityPolicyRead 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (grantPolicyReadAll) {
  appRoleId: policyReadRole.id
  principalId: identityPrincipalId
  resourceId: graph.id
}

// --- The API app registration (App Service Authentication) ---------------------------------------

// App role ids: stable per registration, so re-deploying keeps existing assignments.
var readerRoleId = guid(apiAppUniqueName, 'Remediation.Reader')
var operatorRoleId = guid(apiAppUniqueName, 'Remediation.Operator')

// Token exchange audience of federated credentials, per cloud.
var tokenExchangeAudience = environment().name == 'AzureUSGovernment' ? 'api://AzureADTokenExchangeUSGov' : (environment().name == 'AzureChinaCloud' ? 'api://AzureADTokenExchangeChina' : 'api://AzureADTokenExchange')

// Delegated permissions the sign-in asks for (well-known ids of Microsoft Graph's scopes).
var signInScopes = [
  {
    id: '37f7f235-527c-4136-accd-4a02d197296e' // openid
    type: 'Scope'
  }
  {
    id: '14dad69e-099b-42c9-810b-d002981feec1' // profile
    type: 'Scope'
  }
  {
    id: '64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0' // email
    type: 'Scope'
  }
  {
    id: 'e1fe6dd8-ba31-4d61-89e7-88639da4683d' // User.Read
    type: 'Scope'
  }
]

resource apiApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: apiAppUniqueName
  displayName: apiAppDisplayName
  signInAudience: 'AzureADMyOrg'
  // v2 access tokens: their audience is the client id, so no identifier URI is needed.
  api: {
    requestedAccessTokenVersion: 2
  }
  appRoles: [
    {
      id: readerRoleId
      value: 'Remediation.Reader'
      displayName: 'Remediation reader'
      description: 'Read service connection reports, run history and the status page.'
      allowedMemberTypes: ['User', 'Application']
      isEnabled: true
    }
    {
      id: operatorRoleId
      value: 'Remediation.Operator'
      displayName: 'Remediation operator'
      description: 'Start runs and fix one service connection on demand; includes reading.'
      allowedMemberTypes: ['User', 'Application']
      isEnabled: true
    }
  ]
  web: {
    redirectUris: ['https://${functionAppHostName}/.auth/login/aad/callback']
    implicitGrantSettings: {
      enableAccessTokenIssuance: false
      enableIdTokenIssuance: false
    }
  }
  requiredResourceAccess: [
    {
      resourceAppId: graphAppId
      resourceAccess: signInScopes
    }
  ]
}

// The sign-in flow authenticates as the app with a token of the managed identity (App Service
// setting OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID): no client secret exists.
resource apiAppManagedIdentityCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${apiApp.uniqueName}/app-service-auth-managed-identity'
  description: 'App Service Authentication of the sc-remediator function app signs in with its managed identity.'
  issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
  subject: identityPrincipalId
  audiences: [tokenExchangeAudience]
}

resource apiSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: apiApp.appId
  // Only users, groups and apps given one of the app roles may get a token for the API.
  appRoleAssignmentRequired: true
}

// Admin consent for the sign-in scopes, so users with a role are not asked to consent.
resource signInConsent 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = {
  clientId: apiSp.id
  consentType: 'AllPrincipals'
  resourceId: graph.id
  scope: 'openid profile email User.Read'
}

resource operators 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for principal in operatorPrincipalIds: {
    appRoleId: operatorRoleId
    principalId: principal
    resourceId: apiSp.id
  }
]

resource readers 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for principal in readerPrincipalIds: {
    appRoleId: readerRoleId
    principalId: principal
    resourceId: apiSp.id
  }
]

@description('Client id of the API app registration (App Service Authentication).')
output apiAppClientId string = apiApp.appId

@description('Object id of the API service principal (assign Remediation.* roles to it).')
output apiServicePrincipalId string = apiSp.id

@description('Graph app roles granted to the managed identity.')
output grantedGraphPermissions array = grantPolicyReadAll ? ['Application.ReadWrite.OwnedBy', 'Policy.Read.All'] : ['Application.ReadWrite.OwnedBy']
