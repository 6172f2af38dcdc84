/**
 * The PUT-body transformation (pure) and the credential marker.
 *
 * Azure DevOps updates a connection with a full PUT of its body. Sent as read, an `Automatic`
 * connection makes Azure DevOps rotate the app secret itself with the caller's user token and
 * remove every other password on the app, so the body is switched to `Manual`; `Manual` in turn
 * rejects the objects Azure DevOps recorded for the automatic app (400), and an `accesstoken` that
 * is null or empty breaks the connection. Everything else is sent back untouched.
 */
import type { ServiceConnection } from './ports';

/**
 * `data` fields Azure DevOps records for an automatically created app and rejects (400) once the
 * connection is `Manual` (background: "Deleting failed service connections", "Rotating secret of
 * automatic connection"). `azureSpnPermissions` is accepted and kept.
 */
export const MANUAL_REJECTED_DATA_FIELDS = [
  'spnObjectId',
  'appObjectId',
  'azureSpnRoleAssignmentId',
] as const;

function deleteKeyIgnoringCase(record: Record<string, unknown>, name: string): void {
  for (const key of Object.keys(record)) if (key.toLowerCase() === name.toLowerCase()) delete record[key];
}

/**
 * Builds the body of the organization-level PUT that writes a connection back as `Manual`:
 * a deep copy of `connection` (the input is never changed) with `data.creationMode = 'Manual'`,
 * the fields `Manual` rejects removed, `authorization.parameters.accesstoken` removed whatever its
 * value, `authenticationType: 'spnKey'`, and `serviceprincipalkey` set to `newSecret` when given —
 * or null, so Azure DevOps keeps the secret it stores: the key is a required field of the AzureRM
 * ServicePrincipal scheme and an update that leaves it out is refused (400, EndpointFieldNotSpecified),
 * while a confidential field sent null keeps its stored value. Name,
 * description, project references, url and any extra fields stay as read.
 *
 * Only for `ServicePrincipal` connections (a secret); throws for any other scheme, and for an empty
 * `newSecret` (a programming error). The returned body may hold a secret: never log it.
 */
export function toManualUpdateBody(connection: ServiceConnection, newSecret?: string): ServiceConnection {
  if (connection.authorization.scheme.toLowerCase() !== 'serviceprincipal')
    throw new Error(
      `toManualUpdateBody: connection ${connection.id} uses scheme '${connection.authorization.scheme}'; only ServicePrincipal connections hold a client secret.`,
    );
  if (newSecret !== undefined && newSecret === '')
    throw new Error(`toManualUpdateBody: the new secret for connection ${connection.id} is empty.`);

  const { body, parameters } = manualBody(connection);
  deleteKeyIgnoringCase(parameters, 'serviceprincipalkey');
  deleteKeyIgnoringCase(parameters, 'authenticationType');
  parameters['authenticationType'] = 'spnKey';
  parameters['serviceprincipalkey'] = newSecret ?? null;
  body.authorization = { ...body.authorization, parameters };
  return body;
}

/** A deep copy made `Manual`: rejected data fields and `accesstoken` removed (see above). */
function manualBody(connection: ServiceConnection): {
  body: ServiceConnection;
  parameters: Record<string, string | null | undefined>;
} {
  const body = structuredClone(connection);
  const data: Record<string, string> = { ...(body.data ?? {}) };
  for (const field of MANUAL_REJECTED_DATA_FIELDS) deleteKeyIgnoringCase(data, field);
  deleteKeyIgnoringCase(data, 'creationMode');
  data['creationMode'] = 'Manual';
  body.data = data;
  const parameters = { ...body.authorization.parameters };
  deleteKeyIgnoringCase(parameters, 'accesstoken');
  return { body, parameters };
}

/**
 * The PUT body that gives a certificate connection a new certificate: as `toManualUpdateBody`
 * (Manual, rejected fields and `accesstoken` removed, everything else as read), keeping
 * `authenticationType: spnCertificate` and setting `servicePrincipalCertificate` to `pem` — the
 * certificate AND its private key, which Azure DevOps needs to sign its client assertions. No
 * `serviceprincipalkey` is sent. Only for certificate connections of the ServicePrincipal scheme;
 * the returned body holds a private key: never log it.
 */
export function toManualCertificateUpdateBody(connection: ServiceConnection, pem: string): ServiceConnection {
  if (connection.authorization.scheme.toLowerCase() !== 'serviceprincipal')
    throw new Error(
      `toManualCertificateUpdateBody: connection ${connection.id} uses scheme '${connection.authorization.scheme}', not ServicePrincipal.`,
    );
  if (!/-----BEGIN CERTIFICATE-----/.test(pem) || !/PRIVATE KEY-----/.test(pem))
    throw new Error(
      `toManualCertificateUpdateBody: the certificate for connection ${connection.id} is not a PEM with its private key.`,
    );
  const { body, parameters } = manualBody(connection);
  for (const name of ['serviceprincipalkey', 'servicePrincipalCertificate', 'authenticationType'])
    deleteKeyIgnoringCase(parameters, name);
  parameters['authenticationType'] = 'spnCertificate';
  parameters['servicePrincipalCertificate'] = pem;
  body.authorization = { ...body.authorization, parameters };
  return body;
}

/** The prefix of every credential this service creates. */
const MARKER_PREFIX = 'sc-remediator';

/** What a marker says: which connection and which rotation created the credential. */
interface CredentialMarker {
  connectionId: string;
  rotationId: string;
}

const MARKER = /^sc-remediator (\S+) (\S+)$/;

/**
 * The `displayName` of a credential this service creates: `sc-remediator <connectionId>
 * <rotationId>` (invariant 3). It lets the service recognise — and remove — only credentials it
 * created, and find an orphan left by a crash between Graph and Key Vault.
 */
export function credentialMarker(connectionId: string, rotationId: string): string {
  if (!/^\S+$/.test(connectionId) || !/^\S+$/.test(rotationId))
    throw new Error('credentialMarker: connection and rotation ids must be non-empty and contain no spaces.');
  return `${MARKER_PREFIX} ${connectionId} ${rotationId}`;
}

/** Reads a marker back from a credential's `displayName`; undefined for anything else (null, other names). */
export function parseMarker(displayName: string | null | undefined): CredentialMarker | undefined {
  const m = MARKER.exec(displayName ?? '');
  return m?.[1] && m[2] ? { connectionId: m[1], rotationId: m[2] } : undefined;
}

/** Whether a credential's `displayName` marks it as created by this service for `connectionId`. */
export function isMarkedFor(displayName: string | null | undefined, connectionId: string): boolean {
  return parseMarker(displayName)?.connectionId.toLowerCase() === connectionId.toLowerCase();
}

/** An authorization parameter, its name matched in any case; undefined when absent or blank. */
export function connectionParam(connection: ServiceConnection, name: string): string | undefined {
  for (const [key, value] of Object.entries(connection.authorization.parameters))
    if (key.toLowerCase() === name.toLowerCase() && typeof value === 'string' && value.trim() !== '')
      return value.trim();
  return undefined;
}

/** Whether an `authenticationType` is a certificate's (`spnCertificate`, any case). */
export function isCertificateAuthentication(authenticationType: string | undefined): boolean {
  return authenticationType?.toLowerCase() === 'spncertificate';
}

/** A `data` field, its name matched in any case; undefined when absent or empty. */
export function connectionDataField(connection: ServiceConnection, name: string): string | undefined {
  for (const [key, value] of Object.entries(connection.data ?? {}))
    if (key.toLowerCase() === name.toLowerCase() && typeof value === 'string' && value !== '') return value;
  return undefined;
}
