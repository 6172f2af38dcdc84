/**
 * HTTP plumbing shared by the API functions (`connectionsApi`, `runsApi`, `retiredApi`, all
 * `authLevel: function`): JSON responses, JSON errors, bounded body reading, query validation and
 * role enforcement from App Service Authentication's `x-ms-client-principal` (`Remediation.Reader`
 * reads, `Remediation.Operator` writes; fail closed: without App Service Authentication every call
 * is a 401 unless key-only access is explicitly allowed). POST only as `application/json`.
 *
 * Inputs are validated before anything is called: a bad id is a 400, an organization that is not
 * configured a 404 (no request leaves for it), a large body a 413, malformed JSON a 400.
 * Every answer is JSON (`{ "error": { "code", "message" } }` on failure), redacted, and never a
 * 5xx for bad input; an unexpected failure is a 500 that names the invocation, never the cause.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { errorMessage, redactor } from '../telemetry';
import { services, withInvocation } from './context';
import { GUID } from '../guid';

/** App roles (app registration `appRoles`) a signed-in caller needs. */
export const ROLES = { reader: 'Remediation.Reader', operator: 'Remediation.Operator' } as const;
type Role = (typeof ROLES)[keyof typeof ROLES];

/** Largest request body accepted (the API's bodies are a few bytes). */
const MAX_BODY_BYTES = 4096;
const MAX_PRINCIPAL_CHARS = 16 * 1024;

/**
 * Claim types an app role arrives in. App Service passes Entra ID app roles as claims of type
 * `roles`, while its principal declares `role_typ` as the long role URI (Azure/azure-functions-host
 * #3898, AzureAD/microsoft-identity-web #2166). The long URI (what .NET claim mapping makes of
 * `roles`) is accepted too: no public source shows App Service sending it, but being fixed it widens
 * nothing. Both are constants: a principal's own `role_typ` never chooses which claims count.
 */
const ROLE_CLAIM_TYPES: ReadonlySet<string> = new Set([
  'roles',
  'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
]);

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const BASE_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: redactor.redactValue(body), headers: { ...BASE_HEADERS, ...headers } };
}

function errorResponse(
  status: number,
  code: string,
  message: string,
  details?: Record<string, unknown>,
): HttpResponseInit {
  return json(status, { error: { code, message: redactor.redact(message), ...details } });
}

/**
 * The caller's app roles from App Service Authentication's `x-ms-client-principal` (base64 JSON
 * `{ auth_typ, claims: [{ typ, val }], name_typ, role_typ }`, "Work with user identities in Azure
 * App Service authentication", https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities):
 * the values of its role claims (`ROLE_CLAIM_TYPES`). Undefined when the header is not such a
 * principal. Static Web Apps' `userRoles` are not app roles and are not read.
 */
function principalRoles(header: string): string[] | undefined {
  if (header.length > MAX_PRINCIPAL_CHARS) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const claims = (data as { claims?: unknown }).claims;
  if (!Array.isArray(claims)) return undefined;
  const roles = new Set<string>();
  for (const claim of claims) {
    if (!claim || typeof claim !== 'object') continue;
    const { typ, val } = claim as { typ?: unknown; val?: unknown };
    if (typeof typ === 'string' && typeof val === 'string' && ROLE_CLAIM_TYPES.has(typ)) roles.add(val);
  }
  return [...roles];
}

/** How callers are authenticated (`FunctionSettings`). */
export interface ApiAccess {
  /** App Service Authentication fronts the app (`WEBSITE_AUTH_ENABLED`, set by the platform). */
  authEnabled: boolean;
  /** `API_UNSAFE_ALLOW_KEY_ONLY_ACCESS`: without App Service Authentication, a function key alone is enough. */
  keyOnlyAccess: boolean;
}

/**
 * Fails closed. With App Service Authentication in front, the caller must present its principal
 * (401 without one or with a malformed one) holding `role` (403 without it; `Remediation.Operator`
 * includes reading). App Service sets `x-ms-client-principal` itself and does not let external
 * requests set it (Learn, "Work with user identities in Azure App Service authentication"), so it
 * is trusted only then: without App Service Authentication anyone holding a function key could
 * forge it. There every call is a 401, unless `API_UNSAFE_ALLOW_KEY_ONLY_ACCESS` makes the function
 * key the only gate (every key holder an operator; the header is ignored).
 */
export function authorize(request: HttpRequest, role: Role, access: ApiAccess): void {
  if (!access.authEnabled) {
    if (access.keyOnlyAccess) return;
    throw new HttpError(
      401,
      'authentication-required',
      'App Service Authentication is not enabled on this app, so no caller can be signed in (see docs/functions.md, "Access").',
    );
  }
  const header = request.headers.get('x-ms-client-principal');
  if (header === null)
    throw new HttpError(401, 'unauthenticated', 'Sign-in required: no client principal was presented.');
  const roles = principalRoles(header);
  if (!roles) throw new HttpError(401, 'invalid-principal', 'The x-ms-client-principal header is not valid.');
  const ok = roles.includes(role) || (role === ROLES.reader && roles.includes(ROLES.operator));
  if (!ok) throw new HttpError(403, 'forbidden', `This operation requires the app role '${role}'.`);
}

/** Rejects query parameters other than `allowed` (and the function key, `code`). */
export function checkQuery(request: HttpRequest, allowed: readonly string[]): void {
  const unknown = [...new Set([...request.query.keys()])].filter((k) => k !== 'code' && !allowed.includes(k));
  if (unknown.length > 0)
    throw new HttpError(
      400,
      'invalid-query',
      `Unknown query parameter(s): ${unknown.map((k) => k.slice(0, 40)).join(', ')}. Allowed: ${allowed.join(', ') || 'none'}.`,
    );
}

/** A boolean query parameter (`true`/`false`); undefined when absent. */
export function booleanQuery(request: HttpRequest, name: string): boolean | undefined {
  const values = request.query.getAll(name);
  if (values.length === 0) return undefined;
  const value = values[0]?.toLowerCase();
  if (values.length > 1 || (value !== 'true' && value !== 'false' && value !== '1' && value !== '0'))
    throw new HttpError(400, 'invalid-query', `Query parameter '${name}' must be true or false.`);
  return value === 'true' || value === '1';
}

/** The `limit` query parameter: a whole number from 1 to 100, `fallback` when absent. */
export function limitQuery(request: HttpRequest, fallback: number): number {
  const raw = request.query.get('limit');
  if (raw === null) return fallback;
  if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > 100)
    throw new HttpError(
      400,
      'invalid-query',
      "Query parameter 'limit' must be a whole number from 1 to 100.",
    );
  return Number(raw);
}

const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i;

/**
 * Every POST declares `Content-Type: application/json`, with a body or without (415 otherwise). A
 * browser sends a cross-site form (`application/x-www-form-urlencoded`, `multipart/form-data`,
 * `text/plain`) without asking; a JSON content type needs a CORS preflight, which this app never
 * grants, so no other site can make a signed-in browser act on the API.
 */
function requireJsonContentType(request: HttpRequest): void {
  const type = request.headers.get('content-type');
  if (type === null || !JSON_CONTENT_TYPE.test(type.trim()))
    throw new HttpError(
      415,
      'unsupported-media-type',
      'POST requests must be sent with Content-Type: application/json (also without a body).',
    );
}

/**
 * Reads the body as JSON: undefined when empty; 413 past `maxBytes` (by Content-Length or while
 * reading), 415 for a non-JSON content type, 400 for malformed JSON.
 */
export async function readJsonBody(request: HttpRequest, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const declared = request.headers.get('content-length');
  if (declared !== null && (!/^\d+$/.test(declared) || Number(declared) > maxBytes))
    throw new HttpError(413, 'body-too-large', `The request body must be at most ${maxBytes} bytes.`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const body = request.body;
  if (body) {
    const reader = body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new HttpError(413, 'body-too-large', `The request body must be at most ${maxBytes} bytes.`);
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  const type = request.headers.get('content-type');
  if (type !== null && !JSON_CONTENT_TYPE.test(type.trim()))
    throw new HttpError(415, 'unsupported-media-type', 'The request body must be JSON (application/json).');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'invalid-json', 'The request body is not valid JSON.');
  }
}

/** `{ dryRun?: boolean }` or nothing; any other shape is a 400. */
export function parseRunBody(body: unknown): { dryRun?: boolean } {
  if (body === undefined) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new HttpError(400, 'invalid-body', 'The request body must be a JSON object like {"dryRun": true}.');
  const entries = Object.entries(body as Record<string, unknown>);
  const unknown = entries.filter(([k]) => k !== 'dryRun').map(([k]) => k.slice(0, 40));
  if (unknown.length > 0)
    throw new HttpError(400, 'invalid-body', `Unknown field(s) in the request body: ${unknown.join(', ')}.`);
  const dryRun = (body as { dryRun?: unknown }).dryRun;
  if (dryRun !== undefined && typeof dryRun !== 'boolean')
    throw new HttpError(400, 'invalid-body', "'dryRun' must be true or false.");
  return dryRun === undefined ? {} : { dryRun };
}

const ORGANIZATION = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/;

export function guidParam(request: HttpRequest, name: string, code: string, what: string): string {
  const value = request.params[name] ?? '';
  if (!GUID.test(value)) throw new HttpError(400, code, `The ${what} must be a GUID.`);
  return value.toLowerCase();
}

/** The organization route parameter, checked against the configured ones before anything else. */
export async function organizationParam(request: HttpRequest): Promise<{ url: string; name: string }> {
  const value = request.params['organization'] ?? '';
  if (!ORGANIZATION.test(value))
    throw new HttpError(
      400,
      'invalid-organization',
      'The organization must be an Azure DevOps organization name.',
    );
  const config = await services().config();
  const wanted = value.toLowerCase();
  const match = config.organizations.find((o) => o.name.toLowerCase() === wanted);
  // Never a request to a host that is not configured.
  if (!match)
    throw new HttpError(
      404,
      'organization-not-configured',
      `Organization '${value}' is not one of the configured organizations (AZDO_ORGANIZATION_URLS).`,
    );
  return match;
}

type ApiHandler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

/**
 * Wraps an API handler: runs it as the invocation, enforces `role` (unless anonymous) and a JSON
 * content type on POST, maps
 * `HttpError` and `ConfigError` to JSON answers and anything else to a 500 that names the
 * invocation, and flushes telemetry.
 */
export function apiHandler(role: Role | 'anonymous', handler: ApiHandler): ApiHandler {
  return (request, context) =>
    withInvocation(context, async () => {
      const svc = services();
      try {
        if (role !== 'anonymous') authorize(request, role, await svc.functionSettings());
        if (request.method.toUpperCase() === 'POST') requireJsonContentType(request);
        return await handler(request, context);
      } catch (err) {
        if (err instanceof HttpError) return errorResponse(err.status, err.code, err.message, err.details);
        if (err instanceof Error && err.name === 'ConfigError') {
          context.error(errorMessage(err));
          const problems = (err as Error & { problems?: unknown }).problems;
          return errorResponse(503, 'configuration-invalid', 'The app settings are invalid; see problems.', {
            problems,
          });
        }
        context.error(`Unexpected failure: ${errorMessage(err)}`);
        return errorResponse(
          500,
          'internal-error',
          `An unexpected error occurred; the logs of invocation ${context.invocationId} say more.`,
        );
      } finally {
        await (await svc.telemetry().catch(() => undefined))?.flush();
      }
    });
}
