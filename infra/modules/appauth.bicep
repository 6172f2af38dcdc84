// App Service Authentication (Entra ID, authsettingsV2) of the function app, applied once the API
// app registration exists. Its app roles reach the functions in x-ms-client-principal.

@description('Name of the function app.')
param siteName string

@description('Client id of the API app registration whose tokens the app accepts.')
param authClientId string

@description('What App Service Authentication does with an unauthenticated request (the status page is a browser page: RedirectToLoginPage; API-only deployments may prefer Return401).')
@allowed([
  'RedirectToLoginPage'
  'Return401'
  'Return403'
])
param authUnauthenticatedAction string = 'RedirectToLoginPage'

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

// App Service Authentication in front of everything but /api/health. The HTTP API and the status
// page read the caller's app roles (Remediation.Reader, Remediation.Operator) from the
// x-ms-client-principal header this sets; function keys (authLevel function) still apply.
resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: authUnauthenticatedAction
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/api/health'
      ]
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
        }
        validation: {
          allowedAudiences: [
            authClientId
            'api://${authClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}
