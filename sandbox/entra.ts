/**
 * Simulated Entra ID (login.microsoftonline.com): OpenID metadata and the client-credentials token
 * endpoint as MSAL Node (under `@azure/identity`'s ClientSecretCredential) uses them, with Entra's
 * own error JSON (`error`, `error_description` carrying `AADSTS<code>`, `error_codes`, trace ids).
 *
 * Whether a client secret works is decided by `checkClientSecret` (credentials.ts), the one rule
 * every sandbox service shares. Error codes beyond its own, with public evidence: 90002 invalid_tenant
 * (Azure/azure-cli #22145), 50059 no tenant on /common|/organizations (MicrosoftDocs/azure-docs
 * #24064), 900023 malformed tenant (microsoft/Analysis-Services #194); 1002012, 70003, 900144,
 * 500011 and 90033 follow Entra's published AADSTS texts.
 */
import express, { type Request, type Response } from 'express';
import type { SandboxContext } from './index';
import {
  checkCertificateAssertion,
  checkClientSecret,
  checkFederatedCredential,
  entraError,
  type CredentialCheck,
} from './credentials';
import { decodeJwt } from './certificates';
import type { TenantState } from './model';
import { stableGuid } from './scenario';
import type { ServiceDefinition } from './server';
import { AUDIENCES } from './tokens';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Tenant-independent authorities: metadata works, but client credentials need a tenant. */
const MULTI_TENANT = new Set(['organizations', 'common']);
/** Scopes MSAL may add; they name no resource. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

type TenantMatch =
  { kind: 'tenant'; segment: string; tenant: TenantState } | { kind: 'multi'; segment: string };

/** The home tenant or one of the other tenants (`TenantState.otherTenants`), each at its own authority. */
function resolveTenant(state: TenantState, segment: string): TenantMatch | undefined {
  const lower = segment.toLowerCase();
  const tenant = state.tenant(lower);
  if (tenant) return { kind: 'tenant', segment, tenant };
  if (MULTI_TENANT.has(lower)) return { kind: 'multi', segment: lower };
  return undefined;
}

/** The authority as the client addressed it: MSAL checks the issuer's origin against its own. */
function origin(req: Request, ctx: SandboxContext): string {
  const host = req.headers.host;
  return host ? `https://${host}` : ctx.urls.authority;
}

function sendEntraError(
  res: Response,
  state: TenantState,
  status: number,
  error: string,
  code: number,
  description: string,
): void {
  res
    .status(status)
    .set('Cache-Control', 'no-store, no-cache')
    .json(entraError(state, error, code, description));
}

/** Unknown or malformed tenant segment, answered the way Entra does (400, AADSTS90002 / 900023). */
function tenantError(res: Response, state: TenantState, segment: string, error: string): void {
  if (!GUID.test(segment) && !segment.includes('.'))
    return sendEntraError(
      res,
      state,
      400,
      'invalid_request',
      900023,
      `Specified tenant identifier '${segment}' is neither a valid DNS name, nor a valid external domain.`,
    );
  sendEntraError(
    res,
    state,
    400,
    error,
    90002,
    `Tenant '${segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
  );
}

/** v2.0 metadata. Real Entra resolves a domain to the tenant id in every URL; MSAL relies on that. */
function openIdConfigurationV2(
  base: string,
  state: TenantState,
  match: TenantMatch,
): Record<string, unknown> {
  const t = match.kind === 'tenant' ? match.tenant.tenantId : match.segment;
  const issuerTenant = match.kind === 'tenant' ? match.tenant.tenantId : '{tenantid}';
  return {
    token_endpoint: `${base}/${t}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/${t}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${base}/${issuerTenant}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    authorization_endpoint: `${base}/${t}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/${t}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/${t}/oauth2/v2.0/logout`,
    claims_supported: [
      'sub',
      'iss',
      'cloud_instance_name',
      'cloud_instance_host_name',
      'cloud_graph_host_name',
    ],
    kerberos_endpoint: `${base}/${t}/kerberos`,
    tenant_region_scope: match.kind === 'tenant' ? 'WW' : null,
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

/** v1 metadata (`/{tenant}/.well-known/openid-configuration`): v1 endpoints and the sts.windows.net issuer. */
function openIdConfigurationV1(
  base: string,
  state: TenantState,
  match: TenantMatch,
): Record<string, unknown> {
  const t = match.kind === 'tenant' ? match.tenant.tenantId : match.segment;
  return {
    token_endpoint: `${base}/${t}/oauth2/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/common/discovery/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
    scopes_supported: ['openid'],
    issuer: `https://sts.windows.net/${match.kind === 'tenant' ? match.tenant.tenantId : '{tenantid}'}/`,
    microsoft_multi_refresh_token: true,
    authorization_endpoint: `${base}/${t}/oauth2/authorize`,
    device_authorization_endpoint: `${base}/${t}/oauth2/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/${t}/oauth2/logout`,
    check_session_iframe: `${base}/${t}/oauth2/checksession`,
    userinfo_endpoint: `${base}/${t}/openid/userinfo`,
    tenant_region_scope: match.kind === 'tenant' ? 'WW' : null,
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

/**
 * Maps a resource (scope without `/.default`, or v1 `resource`) to the token audience the target
 * service checks. Undefined: no such resource principal in the tenant (AADSTS500011).
 */
function audienceFor(state: TenantState, resource: string): string | undefined {
  const trimmed = resource.replace(/\/+$/, '');
  for (const aud of Object.values(AUDIENCES)) if (aud.replace(/\/+$/, '') === trimmed) return aud;
  if (trimmed === 'https://app.vssps.visualstudio.com') return AUDIENCES.devops;
  // Tokens for another app of the tenant, by client id or `api://<client id>`.
  const appId = trimmed.replace(/^api:\/\//, '');
  if (state.appByAppId(appId) || state.identityByAppId(appId)) return appId;
  return undefined;
}

interface TokenParams {
  grantType?: string;
  clientId?: string;
  clientSecret?: string;
  /** The resource, from `scope` (v2) or `resource` (v1). */
  resource?: string;
  scope?: string;
  clientAssertionType?: string;
  clientAssertion?: string;
}

function form(req: Request): Record<string, string> {
  const body: unknown = req.body;
  const out: Record<string, string> = {};
  if (!body || typeof body !== 'object') return out;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Client secret from the form or from HTTP Basic (client_secret_basic). */
function clientAuth(req: Request, body: Record<string, string>): { id?: string; secret?: string } {
  const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (basic?.[1]) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0)
      return {
        id: decodeURIComponent(decoded.slice(0, i)),
        secret: decodeURIComponent(decoded.slice(i + 1)),
      };
  }
  return { id: body['client_id'], secret: body['client_secret'] };
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * A client-credentials grant whose client assertion is a token of the home tenant (workload identity
 * federation with a managed identity as the credential; Learn, "Configure an application to trust a
 * managed identity"). The app is found where it is registered (the home tenant here: a multi-tenant
 * app), its federated identity credential must match the assertion's issuer, subject and audience
 * (AADSTS700211 / 700213 / 700212, `checkFederatedCredential`), and it must have a service principal
 * in the tenant asked for, i.e. be consented there, else AADSTS700016 "Application with identifier
 * '…' was not found in the directory '…'. This can happen if the application has not been installed
 * by the administrator of the tenant or consented to by any user in the tenant." (Azure SDK
 * TROUBLESHOOTING, Azure/azure-sdk-for-net #26716: "For multi-tenant apps, ensure the application has
 * been added to the desired tenant by a tenant admin"). A single-tenant app is found only in its own
 * tenant (the same 700016). An assertion that is no valid sandbox token: AADSTS50027 (invalid JWT;
 * the code from Entra's published list, its use here inferred).
 */
function checkClientAssertion(
  ctx: SandboxContext,
  tenant: TenantState,
  clientId: string,
  assertionType: string | undefined,
  assertion: string,
): CredentialCheck {
  const { state, tokens } = ctx;
  const fail = (status: number, error: string, code: number, description: string): CredentialCheck => ({
    ok: false,
    status,
    aadsts: code,
    body: entraError(tenant, error, code, description),
  });
  if (assertionType !== JWT_BEARER)
    return fail(
      400,
      'invalid_request',
      50027,
      `Invalid client_assertion_type '${assertionType ?? ''}'; expected '${JWT_BEARER}'.`,
    );
  const verified = tokens.verifyBearer(`Bearer ${assertion}`, AUDIENCES.tokenExchange);
  if (!verified.ok)
    return fail(401, 'invalid_client', 50027, `JWT token is invalid or malformed (${verified.message})`);
  const claims = verified.claims;
  const app = state.appByAppId(clientId);
  const notFound = (): CredentialCheck =>
    fail(
      400,
      'unauthorized_client',
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${tenant.tenantDomain}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    );
  if (!app) return notFound();
  const federated = checkFederatedCredential(state, clientId, claims.iss, claims.sub, claims.aud);
  if (!federated.ok) return { ...federated, body: { ...federated.body } };
  if (tenant === state) return { ok: true, app, principalKey: `app:${app.appId}`, appId: app.appId };
  const servicePrincipal =
    app.signInAudience === 'AzureADMyOrg' ? undefined : tenant.identityByAppId(clientId);
  if (!servicePrincipal) return notFound();
  return { ok: true, identity: servicePrincipal, principalKey: servicePrincipal.key, appId: clientId };
}

function handleToken(ctx: SandboxContext, version: 'v1' | 'v2', req: Request, res: Response): void {
  const { state, tokens } = ctx;
  const segment = String(req.params['tenant']);
  const match = resolveTenant(state, segment);
  if (!match) return tenantError(res, state, segment, 'invalid_request');

  const body = form(req);
  const auth = clientAuth(req, body);
  const p: TokenParams = {
    grantType: body['grant_type'],
    clientId: auth.id,
    clientSecret: auth.secret,
    scope: body['scope'],
    clientAssertionType: body['client_assertion_type'],
    clientAssertion: body['client_assertion'],
  };
  const missing = (name: string): void =>
    sendEntraError(
      res,
      state,
      400,
      'invalid_request',
      900144,
      `The request body must contain the following parameter: '${name}'.`,
    );
  if (!p.grantType) return missing('grant_type');
  if (p.grantType !== 'client_credentials')
    return sendEntraError(
      res,
      state,
      400,
      'unsupported_grant_type',
      70003,
      `The app requested an unsupported grant type '${p.grantType}'.`,
    );
  if (!p.clientId) return missing('client_id');
  if (match.kind === 'multi')
    return sendEntraError(
      res,
      state,
      400,
      'invalid_request',
      50059,
      'No tenant-identifying information found in either the request or implied by any provided credentials.',
    );

  if (version === 'v2') {
    if (!p.scope) return missing('scope');
    const resources = p.scope.split(/\s+/).filter((s) => s && !OIDC_SCOPES.has(s.toLowerCase()));
    const only = resources.length === 1 ? resources[0] : undefined;
    if (!only?.endsWith('/.default'))
      return sendEntraError(
        res,
        state,
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${p.scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    p.resource = only.slice(0, -'/.default'.length);
  } else {
    p.resource = body['resource'];
    if (!p.resource) return missing('resource');
  }

  const tenant = match.tenant;
  // A client assertion is a federated token (workload identity) or, when its header names a
  // certificate (`x5t`/`x5t#S256`), signed by a certificate of the app (RFC 7523; Learn, "Microsoft
  // identity platform certificate credentials").
  const header = p.clientAssertion !== undefined ? decodeJwt(p.clientAssertion)?.header : undefined;
  const check =
    p.clientAssertion === undefined
      ? checkClientSecret(tenant, p.clientId, p.clientSecret)
      : header && (header['x5t'] !== undefined || header['x5t#S256'] !== undefined)
        ? checkCertificateAssertion(tenant, p.clientId, p.clientAssertion)
        : checkClientAssertion(ctx, tenant, p.clientId, p.clientAssertionType, p.clientAssertion);
  if (!check.ok) {
    res.status(check.status).set('Cache-Control', 'no-store, no-cache').json(check.body);
    return;
  }

  const aud = audienceFor(tenant, p.resource);
  if (!aud)
    return sendEntraError(
      res,
      state,
      400,
      'invalid_resource',
      500011,
      `The resource principal named ${p.resource} was not found in the tenant named ${tenant.tenantDomain}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
    );

  // App roles exist only in Graph tokens: the identity's granted application permissions.
  const roles = aud === AUDIENCES.graph && check.identity ? [...check.identity.graphPermissions] : [];
  const oid = check.identity?.objectId ?? stableGuid('spn-object', check.appId);
  const lifetime = 3599;
  const accessToken = tokens.issue(
    { aud, appid: check.appId, oid, idtyp: 'app', roles, sbx: check.principalKey, tid: tenant.tenantId },
    lifetime,
  );
  res.locals['caller'] = check.principalKey;
  res.set('Cache-Control', 'no-store, no-cache').set('Pragma', 'no-cache');
  if (version === 'v2') {
    res.status(200).json({
      token_type: 'Bearer',
      expires_in: lifetime,
      ext_expires_in: lifetime,
      access_token: accessToken,
    });
    return;
  }
  const now = Math.floor(state.now().getTime() / 1000);
  res.status(200).json({
    token_type: 'Bearer',
    expires_in: String(lifetime),
    ext_expires_in: String(lifetime),
    expires_on: String(now + lifetime),
    not_before: String(now - 300),
    resource: p.resource,
    access_token: accessToken,
  });
}

const TOKEN_PATH = /^\/[^/]+\/oauth2\/(v2\.0\/)?token\/?$/i;

export function entraService(ctx: SandboxContext): ServiceDefinition {
  const { state } = ctx;
  return {
    name: 'entra',
    // Token requests change nothing in the tenant.
    isReadOnly: (req) => req.method === 'POST' && TOKEN_PATH.test(req.path),
    formatError: (status, _code, message) =>
      // Entra reports throttling and outages as a transient error (AADSTS90033) in its usual shape.
      entraError(
        state,
        status === 429 || status >= 500 ? 'temporarily_unavailable' : 'invalid_request',
        90033,
        `A transient error has occurred. Please try again. (${message})`,
      ),
    mount: (app) => {
      const urlencoded = express.urlencoded({ extended: false, limit: '64kb' });

      // Instance discovery: MSAL sends it to login.microsoftonline.com only, but other clients may ask here.
      app.get('/common/discovery/instance', (req, res) => {
        const base = origin(req, ctx);
        const host = new URL(base).host;
        res.json({
          tenant_discovery_endpoint: `${base}/${state.tenantId}/v2.0/.well-known/openid-configuration`,
          'api-version': '1.1',
          metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
        });
      });

      app.get('/:tenant/v2.0/.well-known/openid-configuration', (req, res) => {
        const segment = String(req.params['tenant']);
        const match = resolveTenant(state, segment);
        if (!match) return tenantError(res, state, segment, 'invalid_tenant');
        res.json(openIdConfigurationV2(origin(req, ctx), state, match));
      });

      app.get('/:tenant/.well-known/openid-configuration', (req, res) => {
        const segment = String(req.params['tenant']);
        const match = resolveTenant(state, segment);
        if (!match) return tenantError(res, state, segment, 'invalid_tenant');
        res.json(openIdConfigurationV1(origin(req, ctx), state, match));
      });

      // Sandbox tokens are HMAC-signed for the sandbox's own services; no public key to publish.
      const jwks = (req: Request, res: Response): void => {
        const segment = String(req.params['tenant']);
        if (!resolveTenant(state, segment)) return tenantError(res, state, segment, 'invalid_tenant');
        res.json({ keys: [] });
      };
      app.get('/:tenant/discovery/v2.0/keys', jwks);
      app.get('/:tenant/discovery/keys', jwks);

      app.post('/:tenant/oauth2/v2.0/token', urlencoded, (req, res) => handleToken(ctx, 'v2', req, res));
      app.post('/:tenant/oauth2/token', urlencoded, (req, res) => handleToken(ctx, 'v1', req, res));

      app.use((req, res) => {
        if (TOKEN_PATH.test(req.path))
          return sendEntraError(
            res,
            state,
            400,
            'invalid_request',
            900561,
            `The endpoint only accepts POST, OPTIONS requests. Received a ${req.method} request.`,
          );
        res.status(404).type('text/plain').send('Not Found');
      });
    },
  };
}
