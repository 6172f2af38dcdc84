/**
 * The one rule every sandbox service uses to decide whether a client secret works: the token
 * endpoint, Azure DevOps' TestConnection and its isReady computation all ask here, so a secret
 * added or removed through Graph changes all of them at once. Errors are Entra ID's own.
 */
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { certificateOfPem, decodeJwt, pemHoldsKeyOf, thumbprintsOf, verifiesWith } from './certificates';
import type { AppRecord, IdentityRecord, TenantState } from './model';

export interface EntraErrorBody {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
  error_uri: string;
}

export type CredentialCheck =
  | { ok: true; app?: AppRecord; identity?: IdentityRecord; principalKey: string; appId: string }
  | { ok: false; status: number; aadsts: number; body: EntraErrorBody };

/** Builds Entra ID's error JSON (the description carries the AADSTS code, trace and correlation ids). */
export function entraError(
  state: TenantState,
  error: string,
  code: number,
  description: string,
): EntraErrorBody {
  const now = state.now();
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = now
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  return {
    error,
    error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
}

/** A refusal as Entra ID answers it (`entraError` body), for the checks below. */
function failure(state: TenantState) {
  return (status: number, error: string, code: number, description: string): CredentialCheck => ({
    ok: false,
    status,
    aadsts: code,
    body: entraError(state, error, code, description),
  });
}

/**
 * The app a grant signs in, or what every grant for an app refuses first: an app this tenant does not
 * know (AADSTS700016, also an app not consented here) or a disabled one (AADSTS7000112).
 */
function appThatMaySignIn(
  state: TenantState,
  clientId: string,
): { app: AppRecord } | { refused: CredentialCheck } {
  const fail = failure(state);
  const app = state.appByAppId(clientId);
  if (!app)
    return {
      refused: fail(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${state.tenantDomain}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      ),
    };
  if (app.disabled)
    return {
      refused: fail(
        400,
        'unauthorized_client',
        7000112,
        `Application '${app.appId}'(${app.displayName}) is disabled.`,
      ),
    };
  return { app };
}

/** Decides whether `secret` is a current password credential of the app `clientId` in this tenant. */
export function checkClientSecret(
  state: TenantState,
  clientId: string,
  secret: string | undefined,
): CredentialCheck {
  const fail = failure(state);

  // The product's own identity (and other scenario service principals) authenticate with their secret.
  const identity = state.identityByAppId(clientId);
  if (identity) {
    if (!secret)
      return fail(
        401,
        'invalid_client',
        7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
      );
    if (identity.clientSecret && secret === identity.clientSecret)
      return { ok: true, identity, principalKey: identity.key, appId: clientId };
    return fail(
      401,
      'invalid_client',
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
    );
  }

  const found = appThatMaySignIn(state, clientId);
  if ('refused' in found) return found.refused;
  const { app } = found;
  if (!secret)
    return fail(
      401,
      'invalid_client',
      7000216,
      "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
    );

  // A value matching none of the app's passwords: AADSTS7000215 (invalid secret); matching one that
  // has ended: AADSTS7000222 (expired keys). Entra ID's error code reference (learn.microsoft.com,
  // "Microsoft Entra authentication and authorization error codes": InvalidClientSecretExpiredKeysProvided
  // vs. invalid client secret) and the answers in shared/reference/api-facts.md §4. The product's
  // entitlement rule relies on it: only a holder of an (expired) secret of the app can get 7000222.
  const now = state.now().getTime();
  const match = app.passwordCredentials.find((p) => p.secretText === secret);
  const replicated = match && now - match.addedAt >= state.passwordReplicationDelaySeconds * 1000;
  if (!match || !replicated || Date.parse(match.startDateTime) > now)
    return fail(
      401,
      'invalid_client',
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.appId}'.`,
    );
  if (Date.parse(match.endDateTime) <= now)
    return fail(
      401,
      'invalid_client',
      7000222,
      `The provided client secret keys for app '${app.appId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
    );
  return { ok: true, app, principalKey: `app:${app.appId}`, appId: app.appId };
}

/**
 * Decides whether Entra ID would exchange Azure DevOps' token for a connection (issuer, subject,
 * audience `api://AzureADTokenExchange`) for an access token of the app `clientId`: the app must
 * exist, be enabled, and hold a federated identity credential matching all three. The AADSTS codes
 * are Entra ID's (700211 issuer, 700213 subject, 700212 audience; `invalid_client` is inferred).
 */
export function checkFederatedCredential(
  state: TenantState,
  clientId: string,
  issuer: string | undefined,
  subject: string | undefined,
  audience = 'api://AzureADTokenExchange',
): CredentialCheck {
  const fail = failure(state);
  const found = appThatMaySignIn(state, clientId);
  if ('refused' in found) return found.refused;
  const { app } = found;
  const hint =
    'Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation';
  const byIssuer = app.federatedIdentityCredentials.filter((f) => f.issuer === issuer);
  if (!issuer || byIssuer.length === 0)
    return fail(
      401,
      'invalid_client',
      700211,
      `No matching federated identity record found for presented assertion issuer '${issuer ?? ''}'. ${hint}`,
    );
  const bySubject = byIssuer.filter((f) => f.subject === subject);
  if (!subject || bySubject.length === 0)
    return fail(
      401,
      'invalid_client',
      700213,
      `No matching federated identity record found for presented assertion subject '${subject ?? ''}'. ${hint}`,
    );
  if (!bySubject.some((f) => f.audiences.includes(audience)))
    return fail(
      401,
      'invalid_client',
      700212,
      `No matching federated identity record found for presented assertion audience '${audience}'. ${hint}`,
    );
  return { ok: true, app, principalKey: `app:${app.appId}`, appId: app.appId };
}

/**
 * Decides whether a client assertion (RFC 7523 JWT, `client_assertion_type` jwt-bearer) signs the
 * app `clientId` in: the header names a certificate by `x5t` (SHA-1) or `x5t#S256` (SHA-256, what
 * MSAL sends now), that certificate is in the app's `keyCredentials` (type AsymmetricX509Cert, usage
 * Verify) and not expired, the signature (RS256 or PS256) verifies with it, and `iss` = `sub` =
 * the client id. Learn, "Microsoft identity platform certificate credentials" (the assertion's
 * header and claims); the error for a certificate not registered (or expired) is AADSTS700027
 * "The certificate with identifier used to sign the client assertion is not registered on
 * application. [Reason - The key was not found.…" (public Q&A threads quote it). Audience and
 * lifetime claims are not checked here (no public source says which mismatch gives which code).
 */
export function checkCertificateAssertion(
  state: TenantState,
  clientId: string,
  assertion: string | undefined,
): CredentialCheck {
  const fail = failure(state);
  const found = appThatMaySignIn(state, clientId);
  if ('refused' in found) return found.refused;
  const { app } = found;
  const jwt = assertion ? decodeJwt(assertion) : undefined;
  if (!jwt) return fail(401, 'invalid_client', 50027, 'JWT token is invalid or malformed.');
  const { header, payload } = jwt;
  if (payload['iss'] !== clientId || payload['sub'] !== clientId)
    // Inferred wording: the assertion must be issued by and about the client.
    return fail(
      401,
      'invalid_client',
      700021,
      "Client assertion application identifier doesn't match 'client_id' parameter.",
    );
  const now = state.now().getTime();
  const key = (app.keyCredentials ?? []).find((k) => {
    if (k.type.toLowerCase() !== 'asymmetricx509cert' || k.usage.toLowerCase() !== 'verify') return false;
    const t = thumbprintsOf(k.key);
    return header['x5t#S256'] === t.x5tS256 || header['x5t'] === t.x5t;
  });
  const notFound = `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${app.appId}'.]`;
  if (!key || Date.parse(key.endDateTime) <= now || Date.parse(key.startDateTime) > now)
    return fail(401, 'invalid_client', 700027, notFound);
  if (!verifiesWith(key.key, header['alg'], jwt.signed, jwt.signature))
    return fail(401, 'invalid_client', 700027, 'Client assertion failed signature validation.');
  return { ok: true, app, principalKey: `app:${app.appId}`, appId: app.appId };
}

/**
 * Decides whether a certificate connection's stored PEM (certificate and private key together, as
 * Azure DevOps' `servicePrincipalCertificate` holds it) signs the app in: Azure DevOps builds the
 * client assertion from it, so this is `checkClientAssertion` with the certificate it names. No
 * PEM, or one without its private key, is AADSTS7000216 like a missing secret (inferred).
 */
export function checkClientCertificate(
  state: TenantState,
  clientId: string,
  pem: string | undefined,
): CredentialCheck {
  const cert = pem ? certificateOfPem(pem) : undefined;
  if (!pem || !cert || !pemHoldsKeyOf(pem, cert)) return checkClientSecret(state, clientId, undefined);
  const header = Buffer.from(
    JSON.stringify({ alg: 'RS256', typ: 'JWT', x5t: thumbprintsOf(cert.raw.toString('base64')).x5t }),
  ).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ iss: clientId, sub: clientId })).toString('base64url');
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), createPrivateKey(pem)).toString(
    'base64url',
  );
  return checkCertificateAssertion(state, clientId, `${header}.${payload}.${signature}`);
}
