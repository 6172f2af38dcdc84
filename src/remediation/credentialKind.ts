/**
 * The seam between a rotation and the kind of credential it rotates: a client secret (Graph
 * `passwordCredentials`, `serviceprincipalkey`) or a certificate (Graph `keyCredentials`,
 * `servicePrincipalCertificate`). The phases, the lock, the record and the invariants are the
 * rotation's (rotation.ts); what differs — which of the app's credentials count, how one is
 * removed, how the new one is tried against Entra ID, what the connection's PUT carries — is here.
 */
import type { EngineDeps } from './engine';
import { EngineFailure } from './engine';
import type { ApplicationInfo, PasswordCredentialInfo, ServiceConnection, TokenProbeResult } from './ports';
import {
  connectionParam,
  isCertificateAuthentication,
  toManualCertificateUpdateBody,
  toManualUpdateBody,
} from './transform';

export interface CredentialKind {
  /** How steps and messages name it. */
  noun: 'secret' | 'certificate';
  /** The app's credentials of this kind, in the shape orphans and clean-up judge. */
  credentials(app: ApplicationInfo): PasswordCredentialInfo[];
  /** Removes one from the app (one already gone is not an error). */
  remove(deps: EngineDeps, applicationObjectId: string, keyId: string): Promise<void>;
  /** Does the new credential get a token from Entra ID (yet)? */
  probe(deps: EngineDeps, tenantId: string, appId: string, value: string): Promise<TokenProbeResult>;
  /** The PUT body that gives the connection the credential (creationMode Manual). */
  updateBody(connection: ServiceConnection, value: string): ServiceConnection;
}

export const SECRET_KIND: CredentialKind = {
  noun: 'secret',
  credentials: (app) => app.passwordCredentials,
  remove: (deps, id, keyId) => deps.graph.removePassword(id, keyId),
  probe: (deps, tenantId, appId, value) => deps.tokenProbe.tryClientSecret(tenantId, appId, value),
  updateBody: (connection, value) => toManualUpdateBody(connection, value),
};

export const CERTIFICATE_KIND: CredentialKind = {
  noun: 'certificate',
  credentials: (app) =>
    (app.keyCredentials ?? []).map((k) => ({
      keyId: k.keyId,
      displayName: k.displayName,
      endDateTime: k.endDateTime,
      hint: null,
      startDateTime: null,
    })),
  remove: (deps, id, keyId) => {
    if (!deps.graph.removeCertificate)
      throw new EngineFailure('not-configured', 'The Graph client cannot change certificates.');
    return deps.graph.removeCertificate(id, keyId);
  },
  probe: (deps, tenantId, appId, value) => {
    if (!deps.tokenProbe.tryClientCertificate)
      throw new EngineFailure('not-configured', 'The token probe cannot try certificates.');
    return deps.tokenProbe.tryClientCertificate(tenantId, appId, value);
  },
  updateBody: (connection, value) => toManualCertificateUpdateBody(connection, value),
};

/** Whether the connection signs in with a certificate (`authenticationType: spnCertificate`). */
export function isCertificateConnection(connection: ServiceConnection): boolean {
  return isCertificateAuthentication(connectionParam(connection, 'authenticationType'));
}

/** The kind of credential a (ServicePrincipal) connection holds. */
export function credentialKindOf(connection: ServiceConnection): CredentialKind {
  return isCertificateConnection(connection) ? CERTIFICATE_KIND : SECRET_KIND;
}
