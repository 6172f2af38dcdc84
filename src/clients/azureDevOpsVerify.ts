/**
 * The UI's Verify of a connection (the `TestConnection` data source through the endpoint proxy), sent
 * the way the portal sends it, and its answer read into the core's `TestConnectionResult`.
 */
import type { ServiceConnection, TestConnectionResult } from '../remediation/ports';
import type { AzureDevOpsTransport } from './azureDevOpsTransport';

/** Parameters Azure DevOps treats as confidential: never returned, kept when a PUT leaves them out. */
const CONFIDENTIAL_PARAMETERS = new Set([
  'serviceprincipalkey',
  'serviceprincipalcertificate',
  'accesstoken',
]);

/** `HttpStatusCode` names as ServiceEndpointRequestResult spells them, for numeric answers. */
const STATUS_NAMES: Record<number, string> = {
  200: 'ok',
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'notFound',
  408: 'requestTimeout',
  429: 'tooManyRequests',
  500: 'internalServerError',
  502: 'badGateway',
  503: 'serviceUnavailable',
  504: 'gatewayTimeout',
};

/**
 * The UI's Verify: the `TestConnection` data source through the endpoint proxy, sent the way the
 * portal sends it (Learn, "Troubleshoot issues related to verifying Azure Resource Manager service
 * connections"): the parameters as read, each confidential one present and null. Azure DevOps
 * fills in its stored value only for a confidential key that is present and null, so this tests
 * the STORED credential; a key left out would test no secret at all. An `accesstoken` goes as read
 * (null), as the portal sends it: a connection broken by it then fails Verify, as it fails in the
 * portal (never a pass for a broken connection). The proxy call itself answers 200; the
 * outcome is in `statusCode`/`errorMessage`, and `aadsts` carries the Entra ID code of a failed
 * sign-in (7000215 invalid secret, 7000222 expired). Needs `vso.serviceendpoint_query`.
 */
export async function testConnection(
  rest: AzureDevOpsTransport,
  organizationUrl: string,
  project: string,
  connection: ServiceConnection,
): Promise<TestConnectionResult> {
  const parameters = storedCredentialParameters(connection);
  const request = {
    dataSourceDetails: {
      dataSourceName: 'TestConnection',
      dataSourceUrl: '',
      headers: [],
      requestContent: '',
      requestVerb: '',
      resourceUrl: '',
      parameters: {},
      resultSelector: '',
      initialContextTemplate: '',
    },
    resultTransformationDetails: {
      resultTemplate: '',
      callbackContextTemplate: '',
      callbackRequiredTemplate: '',
    },
    serviceEndpointDetails: {
      data: connection.data,
      authorization: { scheme: connection.authorization?.scheme, parameters },
      type: connection.type,
      url: connection.url,
    },
  };
  const answer = await rest.send(
    'POST',
    rest.url(organizationUrl, [project, '_apis', 'serviceendpoint', 'endpointproxy'], {
      endpointId: connection.id,
    }),
    request,
  );
  const body = (answer.body ?? {}) as { statusCode?: unknown; errorMessage?: unknown };
  const statusCode =
    typeof body.statusCode === 'number'
      ? (STATUS_NAMES[body.statusCode] ?? String(body.statusCode))
      : typeof body.statusCode === 'string'
        ? body.statusCode
        : 'unknown';
  const errorMessage = typeof body.errorMessage === 'string' ? body.errorMessage : '';
  const aadsts = /AADSTS(\d+)/.exec(errorMessage)?.[1];
  return {
    ok: statusCode.toLowerCase() === 'ok',
    statusCode,
    errorMessage,
    ...(aadsts ? { aadsts } : {}),
  };
}

/**
 * The parameters as read with every confidential one present and null (the portal's Verify body):
 * Azure DevOps then tests its stored secret or certificate. A secret-based connection whose GET
 * left `serviceprincipalkey` out gets it back as null, so the stored secret is still what is tested.
 */
function storedCredentialParameters(connection: ServiceConnection): Record<string, string | null> {
  const parameters: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(connection.authorization?.parameters ?? {})) {
    if (CONFIDENTIAL_PARAMETERS.has(k.toLowerCase())) parameters[k] = null;
    else if (v !== undefined) parameters[k] = v;
  }
  const has = (name: string): boolean => Object.keys(parameters).some((k) => k.toLowerCase() === name);
  if (connection.authorization?.scheme?.toLowerCase() === 'serviceprincipal') {
    const type = Object.entries(parameters).find(([k]) => k.toLowerCase() === 'authenticationtype')?.[1];
    const confidential =
      (type ?? 'spnKey').toLowerCase() === 'spncertificate'
        ? 'serviceprincipalcertificate'
        : 'serviceprincipalkey';
    if (!has(confidential)) parameters[confidential] = null;
  }
  return parameters;
}
