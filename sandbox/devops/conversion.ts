/** Azure DevOps' own conversion to workload identity federation, its delayed landing and its revert. */
import { randomUUID } from 'node:crypto';
import { federationFor, TOKEN_EXCHANGE_AUDIENCE } from '../federation';
import type { EndpointRecord, OrganizationRecord, TenantState } from '../model';
import { argumentErrorBody, wrapped, type WrappedException } from './errors';
import { CONFIDENTIAL_PARAMETERS, DAY_MS, dataValue, lower, paramValue } from './fields';
import type { Caller } from './request';
import { computeStatus } from './status';

/** The outcome of a PUT (plain update or conversion): done, or the error body to answer 400 with. */
export type UpdateResult = { ok: true } | { ok: false; body: WrappedException };

export function argumentError(message: string, parameter: string): UpdateResult {
  return { ok: false, body: argumentErrorBody(message, parameter) };
}

/**
 * `operation=ConvertAuthenticationScheme` to workload identity federation, as Azure DevOps' own
 * conversion does it: only for a connection it created (Automatic, so it may add a federated
 * credential to the app) that one project uses. It adds the credential, keeps the secret (and the
 * app's password) so the conversion can be reverted for seven days (`revertSchemeDeadline`).
 * The refusal messages are inferred: the real wording is not public.
 */
export function convertToWorkloadIdentity(
  state: TenantState,
  caller: Caller,
  ep: EndpointRecord,
): UpdateResult {
  if (lower(dataValue(ep.data, 'creationMode') ?? '') !== 'automatic')
    return argumentError(
      'Only service connections created automatically by Azure DevOps can be converted: Azure DevOps has no permission to add a federated credential to an app registration it did not create. Add the federated credential to the app registration and update the service connection instead.',
      'endpoint.Data.creationMode',
    );
  if (ep.serviceEndpointProjectReferences.length > 1)
    return argumentError(
      'Service connections shared with more than one project cannot be converted.',
      'endpoint.ServiceEndpointProjectReferences',
    );
  const appId = paramValue(ep.authorization.parameters, 'serviceprincipalid') ?? '';
  const app = state.appByAppId(appId);
  if (!app || app.disabled)
    return argumentError(
      `The app registration '${appId}' of the service connection was not found or is disabled: the federated credential cannot be added.`,
      'serviceprincipalid',
    );
  // Whether a service principal or managed identity may run Azure DevOps' own conversion is not
  // settled by a public Microsoft source found here (a third-party note says Automatic mode is not
  // supported for non-user principals). Scenario-controlled (`conversionRequiresUser`) so the
  // product is tested under both readings; message guessed.
  if (caller.org.conversionRequiresUser && caller.identity.kind !== 'user')
    return {
      ok: false,
      body: wrapped(
        'Converting the authentication scheme of an automatically created service connection is not supported for a service principal or managed identity. Sign in as a user to convert it.',
        'Microsoft.VisualStudio.Services.ServiceEndpoints.WebApi.ServiceEndpointException, Microsoft.VisualStudio.Services.ServiceEndpoints.WebApi',
        'ServiceEndpointException',
        0,
      ),
    };
  // Learn (Connect to Azure with an ARM service connection, "Convert an existing service
  // connection"): "The conversion might take a few minutes." With a delay the answer still shows
  // the secret scheme, `operationStatus.state: InProgress` (statusMessage `converting_scheme`:
  // wording not public, guessed); the conversion lands once the delay has passed.
  if ((caller.org.conversionDelayMs ?? 0) > 0) {
    ep.pendingConversion = {
      completesAt: state.now().getTime() + (caller.org.conversionDelayMs ?? 0),
      ...(caller.org.conversionFails ? { fails: true } : {}),
    };
    ep.operationStatus = { state: 'InProgress', statusMessage: 'converting_scheme' };
    return { ok: true };
  }
  applyConversion(state, caller.org, ep);
  return { ok: true };
}

/** Lands a conversion answered InProgress once its time has come (called on every read). */
export function settleConversion(
  state: TenantState,
  org: OrganizationRecord,
  ep: EndpointRecord,
): EndpointRecord {
  const pending = ep.pendingConversion;
  if (!pending || state.now().getTime() < pending.completesAt) return ep;
  delete ep.pendingConversion;
  if (pending.fails) {
    // Still on its secret; the failure shows in operationStatus (wording guessed).
    computeStatus(state, ep);
    ep.operationStatus = {
      state: 'Failed',
      statusMessage:
        'Failed to convert the authentication scheme: the federated credential could not be added to the app registration.',
    };
    return ep;
  }
  applyConversion(state, org, ep);
  return ep;
}

/** The conversion itself: the federated credential on the app, the secret kept for the revert. */
function applyConversion(state: TenantState, org: OrganizationRecord, ep: EndpointRecord): void {
  const appId = paramValue(ep.authorization.parameters, 'serviceprincipalid') ?? '';
  const app = state.appByAppId(appId);
  if (!app) return;
  const { issuer, subject } = federationFor(state, org, ep);
  let fic = app.federatedIdentityCredentials.find((f) => f.issuer === issuer && f.subject === subject);
  if (!fic) {
    const project = ep.serviceEndpointProjectReferences[0]?.projectReference.name ?? '';
    fic = {
      id: randomUUID(),
      name: `${org.name}-${project}-${ep.id}`,
      issuer,
      subject,
      audiences: [TOKEN_EXCHANGE_AUDIENCE],
      description: null,
    };
    app.federatedIdentityCredentials.push(fic);
  }
  const deadline = new Date(state.now().getTime() + 7 * DAY_MS).toISOString();
  ep.revertStash = {
    scheme: ep.authorization.scheme,
    parameters: { ...ep.authorization.parameters },
    deadline,
    federatedCredentialId: fic.id,
  };
  const parameters: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(ep.authorization.parameters))
    if (!CONFIDENTIAL_PARAMETERS.has(lower(k)) && lower(k) !== 'authenticationtype') parameters[k] = v;
  parameters['workloadIdentityFederationIssuer'] = issuer;
  parameters['workloadIdentityFederationSubject'] = subject;
  ep.authorization = { scheme: 'WorkloadIdentityFederation', parameters };
  ep.data = { ...ep.data, revertSchemeDeadline: deadline };
  computeStatus(state, ep);
}

/**
 * `operation=ConvertAuthenticationScheme` back to ServicePrincipal: Azure DevOps' revert, possible
 * only for its own conversion and until `revertSchemeDeadline` (seven days). It restores the
 * secret it kept and removes the federated credential it added. Messages inferred.
 */
export function revertConversion(state: TenantState, ep: EndpointRecord): UpdateResult {
  const stash = ep.revertStash;
  if (!stash)
    return argumentError(
      'The service connection was not converted by Azure DevOps: there is no earlier authentication scheme to revert to.',
      'operation',
    );
  if (Date.parse(stash.deadline) <= state.now().getTime())
    return argumentError(
      `The conversion can no longer be reverted: the revert deadline ${stash.deadline} has passed. Create a new secret for the app registration instead.`,
      'operation',
    );
  const appId = paramValue(stash.parameters, 'serviceprincipalid') ?? '';
  const app = state.appByAppId(appId);
  if (app && stash.federatedCredentialId)
    app.federatedIdentityCredentials = app.federatedIdentityCredentials.filter(
      (f) => f.id !== stash.federatedCredentialId,
    );
  ep.authorization = { scheme: stash.scheme, parameters: { ...stash.parameters } };
  const data = { ...ep.data };
  for (const k of Object.keys(data)) if (lower(k) === 'revertschemedeadline') delete data[k];
  ep.data = data;
  delete ep.revertStash;
  computeStatus(state, ep);
  return { ok: true };
}
