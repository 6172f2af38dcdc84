/** The endpoint proxy: the UI's "Verify" (dataSourceName TestConnection). */
import type { Express } from 'express';
import { checkClientCertificate, checkClientSecret, checkFederatedCredential } from '../credentials';
import type { SandboxContext } from '../index';
import type { EndpointRecord, TenantState } from '../model';
import { stableGuid } from '../scenario';
import { sendError, TYPE, wrapped } from './errors';
import { settleConversion } from './conversion';
import { CONFIDENTIAL_PARAMETERS, dataValue, findEndpoint, lower, paramKey, paramValue } from './fields';
import { callerOf, queryString, resolveProject, sendJson, versioned } from './request';
import { aadstsFirstLine, ACCESS_TOKEN_INVALID_MESSAGE, JWT_FAILURE_PREFIX } from './status';

export function mountEndpointProxy(app: Express, ctx: SandboxContext): void {
  const state = ctx.state;
  // Endpoint proxy: the UI's "Verify" (dataSourceName TestConnection). Always HTTP 200.
  app.post('/:org/:project/_apis/serviceendpoint/endpointproxy', (req, res) => {
    if (!versioned(req, res, { major: 7, minor: 1 })) return;
    const caller = callerOf(res);
    const project = resolveProject(res, caller.org, String(req.params['project']));
    if (!project) return;
    const body = (req.body ?? {}) as {
      dataSourceDetails?: { dataSourceName?: string };
      serviceEndpointDetails?: {
        authorization?: { scheme?: string; parameters?: Record<string, string | null> };
        data?: Record<string, string>;
      };
    };
    const endpointId = queryString(req, 'endpointId') ?? '';
    const stored = endpointId ? findEndpoint(caller.org, endpointId) : undefined;
    if (stored) settleConversion(state, caller.org, stored);
    const details = body.serviceEndpointDetails;
    if (!stored && !details?.authorization)
      return sendError(
        res,
        400,
        wrapped(
          'Value cannot be null.\r\nParameter name: endpointId',
          TYPE.argumentNull,
          'ArgumentNullException',
        ),
      );
    const dataSource = body.dataSourceDetails?.dataSourceName ?? '';
    if (lower(dataSource) !== 'testconnection')
      return sendJson(res, 200, {
        result: [],
        statusCode: 'badRequest',
        errorMessage: `Data source '${dataSource}' is not supported by this sandbox.`,
      });
    sendJson(res, 200, testConnection(state, stored, details));
  });
}

function testConnection(
  state: TenantState,
  stored: EndpointRecord | undefined,
  details:
    | {
        authorization?: { scheme?: string; parameters?: Record<string, string | null> };
        data?: Record<string, string>;
      }
    | undefined,
): { result: unknown[]; statusCode: string; errorMessage: string } {
  // The service tests what is sent. The portal's Verify sends the parameters as read, with
  // `"serviceprincipalkey": null` present (Learn, "Troubleshoot issues related to verifying Azure
  // Resource Manager service connections", the POST body in the trace): only a confidential key
  // present and null is filled in with the stored value. A key left out is tested as absent (no
  // secret: Entra ID answers AADSTS7000216); a value is tested as sent. Without
  // serviceEndpointDetails the stored connection is tested.
  const scheme = details?.authorization?.scheme ?? stored?.authorization.scheme ?? '';
  const storedParams = stored?.authorization.parameters ?? {};
  let parameters: Record<string, string | null> = { ...storedParams };
  if (details?.authorization) {
    parameters = {};
    for (const [k, v] of Object.entries(details.authorization.parameters ?? {})) {
      if (CONFIDENTIAL_PARAMETERS.has(lower(k)) && lower(k) !== 'accesstoken' && v === null)
        parameters[k] = paramValue(storedParams, k) ?? null;
      else parameters[k] = v === null || v === undefined ? null : String(v);
    }
  }
  const data = { ...(stored?.data ?? {}), ...(details?.data ?? {}) };
  const fail = (statusCode: string, errorMessage: string) => ({ result: [], statusCode, errorMessage });

  const accessToken = paramKey(parameters, 'accesstoken');
  if (accessToken !== undefined && !parameters[accessToken])
    return fail('badRequest', ACCESS_TOKEN_INVALID_MESSAGE);

  const appId = paramValue(parameters, 'serviceprincipalid') ?? '';
  let principal: { appId: string; objectId: string } | undefined;
  if (lower(scheme) === 'serviceprincipal') {
    // Signed in at the connection's own tenant (its `tenantid`), as Azure DevOps does; an unknown
    // tenant is looked up in the home tenant, as before other tenants existed in the sandbox. A
    // certificate connection signs in with the PEM it stores (certificate and private key).
    const tenant = state.tenant(paramValue(parameters, 'tenantid')) ?? state;
    const check =
      lower(paramValue(parameters, 'authenticationType') ?? 'spnkey') === 'spncertificate'
        ? checkClientCertificate(
            tenant,
            appId,
            paramValue(parameters, 'servicePrincipalCertificate') ?? undefined,
          )
        : checkClientSecret(tenant, appId, paramValue(parameters, 'serviceprincipalkey') ?? undefined);
    if (!check.ok)
      return fail(
        check.status === 401 ? 'unauthorized' : 'badRequest',
        JWT_FAILURE_PREFIX + aadstsFirstLine(check),
      );
    principal = { appId, objectId: stableGuid('spn-object', appId) };
    if (check.app && !check.app.hasSubscriptionRole) return forbidden(principal, data);
  } else if (lower(scheme) === 'workloadidentityfederation') {
    // Azure DevOps presents its token with the issuer and subject it generated (the stored ones):
    // Entra ID exchanges it only for an app holding a matching federated credential.
    const check = checkFederatedCredential(
      state,
      appId,
      paramValue(storedParams, 'workloadIdentityFederationIssuer') ??
        paramValue(parameters, 'workloadIdentityFederationIssuer') ??
        undefined,
      paramValue(storedParams, 'workloadIdentityFederationSubject') ??
        paramValue(parameters, 'workloadIdentityFederationSubject') ??
        undefined,
    );
    if (!check.ok)
      return fail(
        check.status === 401 ? 'unauthorized' : 'badRequest',
        JWT_FAILURE_PREFIX + aadstsFirstLine(check),
      );
    if (check.app && !check.app.hasSubscriptionRole)
      return forbidden({ appId, objectId: stableGuid('spn-object', appId) }, data);
  }
  const subscriptionId = dataValue(data, 'subscriptionId') ?? '';
  return {
    result: [
      {
        id: `/subscriptions/${subscriptionId}`,
        authorizationSource: 'RoleBased',
        managedByTenants: [],
        subscriptionId,
        tenantId: state.tenantId,
        displayName: dataValue(data, 'subscriptionName') ?? '',
        state: 'Enabled',
        subscriptionPolicies: {
          locationPlacementId: 'Public_2014-09-01',
          quotaId: 'PayAsYouGo_2014-09-01',
          spendingLimit: 'Off',
        },
      },
    ],
    statusCode: 'ok',
    errorMessage: '',
  };
}

/** The ARM AuthorizationFailed answer Verify reports (troubleshoot-verify doc, "manual" section). */
function forbidden(
  principal: { appId: string; objectId: string },
  data: Record<string, string>,
): { result: unknown[]; statusCode: string; errorMessage: string } {
  const subscriptionId = dataValue(data, 'subscriptionId') ?? '';
  const url = `https://management.azure.com/subscriptions/${subscriptionId}?api-version=2016-06-01`;
  const armError = JSON.stringify({
    error: {
      code: 'AuthorizationFailed',
      message: `The client '${principal.appId}' with object id '${principal.objectId}' does not have authorization to perform action 'Microsoft.Resources/subscriptions/read' over scope '/subscriptions/${subscriptionId}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    },
  });
  return {
    result: [],
    statusCode: 'forbidden',
    errorMessage: `Failed to query service connection API: '${url}'. Status Code: 'Forbidden', Response from server: '${armError}'`,
  };
}
