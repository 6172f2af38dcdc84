// The one identity sc-remediator runs as: a user-assigned managed identity, attached to the
// function app and used for everything (storage, Key Vault, Application Insights ingestion,
// Microsoft Graph, Azure DevOps). User-assigned, so its object id exists before the app does and
// survives a re-creation of the app: Entra ID ownerships and Azure DevOps memberships stay valid.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region of the identity.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('Resource id, for the function app identity and Flex deployment storage authentication.')
output id string = identity.id

@description('Client id: AZURE_CLIENT_ID and AzureWebJobsStorage__clientId.')
output clientId string = identity.properties.clientId

@description('Object (principal) id: role assignments, Graph app role, app ownership, Azure DevOps user.')
output principalId string = identity.properties.principalId

@description('Name of the identity (its display name in Entra ID and Azure DevOps).')
output name string = identity.name
