/** isReady / operationStatus of a saved connection, and the failure texts Azure DevOps shows. */
import { checkClientCertificate, checkClientSecret, type CredentialCheck } from '../credentials';
import type { EndpointRecord, TenantState } from '../model';
import { lower, paramKey, paramValue } from './fields';

/** Failure status text Azure DevOps shows for a broken `accesstoken` (troubleshoot-verify doc). */
export const ACCESS_TOKEN_INVALID_MESSAGE =
  'Failed to get Azure DevOps Service access token, cache value is invalid.';

/** Prefix of the JWT failure Azure DevOps reports for a service principal it cannot sign in as. */
export const JWT_FAILURE_PREFIX =
  'Failed to obtain the Json Web Token(JWT) using service principal client ID. Exception message: ';

/** First line of an Entra ID error description ("AADSTS7000215: Invalid client secret provided. …"). */
export function aadstsFirstLine(check: Extract<CredentialCheck, { ok: false }>): string {
  return check.body.error_description.split(/\r?\n/)[0] ?? check.body.error_description;
}

/**
 * isReady / operationStatus as Azure DevOps computes them when a connection is saved: a broken
 * `accesstoken` fails; a secret-based service principal is Ready only if its stored secret gets a
 * token from Entra ID; a workload identity connection is Ready if its app exists.
 */
export function computeStatus(state: TenantState, ep: EndpointRecord): void {
  const set = (ok: boolean, message = ''): void => {
    ep.isReady = ok;
    ep.operationStatus = { state: ok ? 'Ready' : 'Failed', statusMessage: message };
  };
  const parameters = ep.authorization.parameters;
  const accessToken = paramKey(parameters, 'accesstoken');
  if (accessToken !== undefined && !parameters[accessToken]) return set(false, ACCESS_TOKEN_INVALID_MESSAGE);
  const scheme = lower(ep.authorization.scheme);
  const appId = paramValue(parameters, 'serviceprincipalid') ?? '';
  if (scheme === 'serviceprincipal') {
    const authenticationType = lower(paramValue(parameters, 'authenticationType') ?? 'spnkey');
    // A certificate connection is Ready when its stored certificate signs in; one whose certificate
    // the sandbox never saw (a scenario's stand-in) keeps the old answer (Ready).
    const pem = paramValue(parameters, 'servicePrincipalCertificate');
    if (authenticationType === 'spncertificate' && !pem) return set(true);
    if (authenticationType !== 'spnkey' && authenticationType !== 'spncertificate') return set(true);
    // Signed in at the connection's own tenant (its `tenantid`), as Azure DevOps does; an unknown
    // tenant is looked up in the home tenant, as before other tenants existed in the sandbox.
    const tenant = state.tenant(paramValue(parameters, 'tenantid')) ?? state;
    const check =
      authenticationType === 'spncertificate'
        ? checkClientCertificate(tenant, appId, pem ?? undefined)
        : checkClientSecret(tenant, appId, paramValue(parameters, 'serviceprincipalkey') ?? undefined);
    return check.ok ? set(true) : set(false, JWT_FAILURE_PREFIX + aadstsFirstLine(check));
  }
  if (scheme === 'workloadidentityfederation') {
    const app = state.appByAppId(appId);
    if (app) return set(true);
    const check = checkClientSecret(state, appId, undefined);
    return check.ok ? set(true) : set(false, JWT_FAILURE_PREFIX + aadstsFirstLine(check));
  }
  return set(true);
}
