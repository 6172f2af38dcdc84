/**
 * Workload identity federation, the pure part: the federated credential Azure DevOps expects for a
 * connection, which connections can be converted and how, and the PUT bodies of a conversion, a
 * revert and a retirement.
 *
 * The federated credential (issuer + subject + audience `api://AzureADTokenExchange`) comes in two
 * formats, and the service decides which one a connection gets; the engine reads it from
 * `authorization.parameters.workloadIdentityFederationIssuer`/`…Subject` of the service's answer
 * and never assumes one:
 * - Microsoft Entra issuer, for new connections since 2025 (Azure DevOps release notes, sprint 253,
 *   "Workload identity federation uses Entra issuer"; Learn "Convert service connections from the
 *   Azure DevOps issuer to the Microsoft Entra issuer"):
 *     issuer  `https://login.microsoftonline.com/{tenantId}/v2.0`
 *     subject `/eid1/c/pub/t/{b64(tenantId)}/a/{b64(499b84ac-1321-427f-aa17-267ca6975798)}/sc/{organizationId}/{connectionId}`
 *   with `b64` = base64url (no padding) of the GUID's .NET byte order; Azure DevOps' application id
 *   encodes to `rISbSSETf0KqFyZ8ppdXmA` (as seen in every published subject).
 * - Azure DevOps issuer, the older format (retired for public-cloud single-tenant apps on
 *   1 July 2027): issuer `https://vstoken.dev.azure.com/{organizationId}`, subject
 *   `sc://{organization}/{project}/{connection name}`.
 */
import type { Assessment } from './assess';
import type { ConversionPath, ServiceConnection } from './ports';
import {
  connectionDataField,
  connectionParam,
  MANUAL_REJECTED_DATA_FIELDS,
  toManualCertificateUpdateBody,
  toManualUpdateBody,
} from './transform';

/** Azure DevOps' first-party application id. */
const AZURE_DEVOPS_APP_ID = '499b84ac-1321-427f-aa17-267ca6975798';
/** The audience of every Azure DevOps federated credential. */
export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
/** `operation` of Azure DevOps' own conversion (and of its revert, with the scheme the other way). */
export const CONVERT_OPERATION = 'ConvertAuthenticationScheme';
const WIF_SCHEME = 'WorkloadIdentityFederation';
const ISSUER_PARAMETER = 'workloadIdentityFederationIssuer';
const SUBJECT_PARAMETER = 'workloadIdentityFederationSubject';
/** `data` field Azure DevOps sets on its own conversion: until then it can be reverted (seven days). */
const REVERT_DEADLINE_FIELD = 'revertSchemeDeadline';

/** A GUID as base64url of its .NET byte order (first three groups little-endian), without padding. */
export function guidToBase64Url(guid: string): string {
  const hex = guid.replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new Error(`Not a GUID: '${guid}'.`);
  const bytes = Buffer.from(hex, 'hex');
  return Buffer.concat([
    Buffer.from(bytes.subarray(0, 4)).reverse(),
    Buffer.from(bytes.subarray(4, 6)).reverse(),
    Buffer.from(bytes.subarray(6, 8)).reverse(),
    bytes.subarray(8),
  ]).toString('base64url');
}

/** The Microsoft Entra issuer format (2025): what Azure DevOps generates for a connection now. */
export function entraFederation(
  tenantId: string,
  organizationId: string,
  connectionId: string,
): { issuer: string; subject: string } {
  return {
    issuer: `https://login.microsoftonline.com/${tenantId}/v2.0`,
    subject: `/eid1/c/pub/t/${guidToBase64Url(tenantId)}/a/${guidToBase64Url(AZURE_DEVOPS_APP_ID)}/sc/${organizationId}/${connectionId}`,
  };
}

/** The older Azure DevOps issuer format. */
export function azureDevOpsIssuerFederation(
  organizationId: string,
  organization: string,
  project: string,
  connectionName: string,
): { issuer: string; subject: string } {
  return {
    issuer: `https://vstoken.dev.azure.com/${organizationId}`,
    subject: `sc://${organization}/${project}/${connectionName}`,
  };
}

function deleteKeys(record: Record<string, unknown>, test: (lowerKey: string) => boolean): void {
  for (const key of Object.keys(record)) if (test(key.toLowerCase())) delete record[key];
}

/** The federated credential the service gave the connection, when it says. */
export function federationOf(connection: ServiceConnection): { issuer: string; subject: string } | undefined {
  const issuer = connectionParam(connection, ISSUER_PARAMETER);
  const subject = connectionParam(connection, SUBJECT_PARAMETER);
  return issuer && subject ? { issuer, subject } : undefined;
}

/** Azure DevOps' revert deadline of its own conversion, when it set one. */
export function revertDeadlineOf(connection: ServiceConnection): string | undefined {
  return connectionDataField(connection, REVERT_DEADLINE_FIELD);
}

export function isWorkloadIdentity(connection: ServiceConnection): boolean {
  return connection.authorization.scheme.toLowerCase() === WIF_SCHEME.toLowerCase();
}

/**
 * Name of the federated credential this service adds for a connection (3–120 characters, letters,
 * digits, `-` and `_`): it marks the credential as ours, like the password marker (invariant 3).
 */
export function federatedCredentialName(connectionId: string): string {
  return `sc-remediator-${connectionId.replace(/[^0-9A-Za-z_-]/g, '-')}`.slice(0, 120);
}

/** Whether and how a connection can be converted, from its assessment. */
type Eligibility = { path: ConversionPath } | { reason: string };

const NOT_CONVERTIBLE_DIAGNOSES = new Set([
  'app-disabled',
  'app-not-found',
  'service-principal-missing',
  'tenant-not-found',
]);

/**
 * A connection can leave its secret (or certificate) behind when it is an `azurerm` client-secret
 * or certificate connection whose app this service can read in its own tenant and that is not
 * disabled. Azure DevOps' own conversion takes a secret connection when Azure DevOps created it
 * (Automatic) and one project uses it, as Microsoft's script requires; every other one (Manual,
 * shared) is converted by adding the federated credential through Graph, which needs the app to be
 * owned by this service.
 *
 * A certificate connection always takes the Graph path. Learn ("Connect to Azure with an Azure
 * Resource Manager service connection", section "Convert an existing service connection to use
 * workload identity federation") offers the conversion tool to convert a connection "to use workload
 * identity federation for authentication instead of a secret" and only when "Azure DevOps originally
 * created the service connection"; Azure DevOps creates connections with a secret only (its
 * automatic options are a secret or workload identity federation), so a certificate connection was
 * always made by hand. No public source says the tool converts certificate connections: the Graph
 * path is the one that is safe under both readings (it needs nothing from Azure DevOps but a plain
 * update, and its fallback is a certificate this service keeps).
 */
export function conversionEligibility(a: Assessment): Eligibility {
  if (a.scheme.toLowerCase() !== 'serviceprincipal')
    return { reason: `it authenticates with ${a.scheme}, not a client secret or certificate` };
  const authenticationType = a.authenticationType?.toLowerCase() ?? 'spnkey';
  const certificate = authenticationType === 'spncertificate';
  if (authenticationType !== 'spnkey' && !certificate)
    return {
      reason: `it authenticates with '${a.authenticationType ?? ''}', not a client secret or certificate`,
    };
  if (a.applicationObjectId === undefined)
    return {
      reason:
        a.finding === 'app-missing'
          ? 'its app registration does not exist'
          : 'its app registration could not be read in this tenant',
    };
  if (a.diagnosis && NOT_CONVERTIBLE_DIAGNOSES.has(a.diagnosis.kind)) return { reason: a.diagnosis.cause };
  const automatic = a.creationMode?.toLowerCase() === 'automatic';
  return {
    path: automatic && a.projects.length === 1 && !certificate ? 'azure-devops' : 'federated-credential',
  };
}

/**
 * Body of Azure DevOps' own conversion (`operation=ConvertAuthenticationScheme`), as Microsoft's
 * script builds it: the connection as read with `authorization.scheme = WorkloadIdentityFederation`
 * and without `data.revertSchemeDeadline`.
 */
export function toAzureDevOpsConversionBody(connection: ServiceConnection): ServiceConnection {
  const body = structuredClone(connection);
  const data = { ...(body.data ?? {}) };
  deleteKeys(data, (k) => k === REVERT_DEADLINE_FIELD.toLowerCase());
  body.data = data;
  body.authorization = { ...body.authorization, scheme: WIF_SCHEME };
  return body;
}

/** Body of Azure DevOps' revert: the same operation with the scheme back to `ServicePrincipal`. */
export function toAzureDevOpsRevertBody(connection: ServiceConnection): ServiceConnection {
  const body = toAzureDevOpsConversionBody(connection);
  body.authorization = { ...body.authorization, scheme: 'ServicePrincipal' };
  return body;
}

function manualData(connection: ServiceConnection): Record<string, string> {
  const data: Record<string, string> = { ...(connection.data ?? {}) };
  const drop = new Set<string>([
    ...MANUAL_REJECTED_DATA_FIELDS.map((f) => f.toLowerCase()),
    REVERT_DEADLINE_FIELD.toLowerCase(),
    'creationmode',
  ]);
  deleteKeys(data, (k) => drop.has(k));
  data['creationMode'] = 'Manual';
  return data;
}

/**
 * Body of the update that makes a connection use workload identity federation without Azure
 * DevOps' conversion tool: `Manual` (an Automatic save would make Azure DevOps rotate the secret),
 * without the fields `Manual` rejects, scheme `WorkloadIdentityFederation`, and no secret,
 * `authenticationType` or `accesstoken`; the issuer and subject are Azure DevOps' to generate, so
 * none are sent. Name, description, project references, scope and url stay as read.
 */
export function toWorkloadIdentityBody(connection: ServiceConnection): ServiceConnection {
  const body = structuredClone(connection);
  body.data = manualData(connection);
  const parameters = { ...body.authorization.parameters };
  deleteKeys(
    parameters,
    (k) =>
      CONFIDENTIAL_PARAMETERS.has(k) ||
      k === 'authenticationtype' ||
      k.startsWith('workloadidentityfederation'),
  );
  body.authorization = { scheme: WIF_SCHEME, parameters };
  return body;
}

/**
 * Body that puts a converted connection back on a client secret (`ServicePrincipal`, `spnKey`,
 * `Manual`) with `secret`. The returned body holds a secret: never log it.
 */
export function toSecretBody(connection: ServiceConnection, secret: string): ServiceConnection {
  const body = structuredClone(connection);
  const parameters = { ...body.authorization.parameters };
  deleteKeys(parameters, (k) => k.startsWith('workloadidentityfederation'));
  body.data = manualData(connection);
  body.authorization = { scheme: 'ServicePrincipal', parameters };
  return toManualUpdateBody(body, secret);
}

/**
 * Body that puts a converted certificate connection back on its certificate (`ServicePrincipal`,
 * `spnCertificate`, `Manual`) with `pem` (certificate and private key), without the
 * `workloadIdentityFederation*` parameters. The returned body holds a private key: never log it.
 */
export function toCertificateBody(connection: ServiceConnection, pem: string): ServiceConnection {
  const body = structuredClone(connection);
  const parameters = { ...body.authorization.parameters };
  deleteKeys(parameters, (k) => k.startsWith('workloadidentityfederation'));
  body.data = manualData(connection);
  body.authorization = { scheme: 'ServicePrincipal', parameters };
  return toManualCertificateUpdateBody(body, pem);
}

/** Parameters Azure DevOps treats as confidential (lower case). */
const CONFIDENTIAL_PARAMETERS: ReadonlySet<string> = new Set([
  'serviceprincipalkey',
  'serviceprincipalcertificate',
  'accesstoken',
  'password',
  'apitoken',
  'certificate',
]);

/** Any parameter name that may hold a credential, confidential or not (defence in depth). */
const SECRET_LIKE = /key|secret|password|token|certificate|credential/i;

/**
 * The connection's definition without anything that could be a credential: what the run ledger
 * keeps of a retired connection. Every `authorization.parameters` entry whose name looks like a
 * credential is dropped, whatever its value; everything else is kept so the connection could be
 * recreated by hand.
 */
export function withoutSecrets(connection: ServiceConnection): ServiceConnection {
  const body = structuredClone(connection);
  const parameters = { ...(body.authorization?.parameters ?? {}) };
  deleteKeys(parameters, (k) => CONFIDENTIAL_PARAMETERS.has(k) || SECRET_LIKE.test(k));
  body.authorization = { ...body.authorization, parameters };
  return body;
}
