/**
 * HTTP plumbing shared by the API functions: JSON responses, JSON errors, bounded body reading,
 * query validation and role enforcement from App Service Authentication's `x-ms-client-principal`.
 *
 * Every answer is JSON (`{ "error": { "code", "message" } }` on failure), redacted, and never a
 * 5xx for bad input; an unexpected failure is a 500 that names the invocation, never the cause.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { errorMessage, redactor } from '../telemetry';
import { services, withInvocation } from './context';

/** App roles (app registration `appRoles`) checked when App Service Authentication is on. */
export const ROLES = { reader: 'Remediation.Reader', operator: 'Remediation.Operator' } as const;
export type Role = (typeof ROLES)[keyof typeof ROLES];

/** Largest request body accepted (the API's bodies are a few bytes). */
export const MAX_BODY_BYTES = 4096;
const MAX_PRINCIPAL_CHARS = 16 * 1024;

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

export function errorResponse(
  status: number,
  code: string,
  message: string,
  details?: Record<string, unknown>,
): HttpResponseInit {
  return json(status, { error: { code, message: redactor.redact(message), ...details } });
}

/** The caller's roles from `x-ms-client-principal` (App Service or Static Web Apps shape). */
export function principalRoles(header: string): string[] | undefined {
  if (header.length > MAX_PRINCIPAL_CHARS) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const p = data as { claims?: unknown; role_typ?: unknown; userRoles?: unknown };
  const roles = new Set<string>();
  if (Array.isArray(p.userRoles)) for (const r of p.userRoles) if (typeof r === 'string') roles.add(r);
  if (Array.isArray(p.claims)) {
    const roleTypes = new Set([
      'roles',
      'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
      ...(typeof p.role_typ === 'string' ? [p.role_typ] : []),
    ]);
    for (const claim of p.claims) {
      if (!claim || typeof claim !== 'object') continue;
      const { typ, val } = claim as { typ?: unknown; val?: unknown };
      if (typeof typ === 'string' && typeof val === 'string' && roleTypes.has(typ)) roles.add(val);
    }
  } else if (!Array.isArray(p.userRoles)) {
    return undefined;
  }
  return [...roles];
}

/**
 * Enforces `role` when App Service Authentication fronts the app (or a principal is presented):
 * 401 without a valid principal, 403 without the role. `Remediation.Operator` includes reading.
 */
export function authorize(request: HttpRequest, role: Role, authEnabled: boolean): void {
  const header = request.headers.get('x-ms-client-principal');
  if (header === null) {
    if (authEnabled)
      throw new HttpError(401, 'unauthenticated', 'Sign-in required: no client principal was presented.');
    return; // The function key is the gate.
  }
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
  if (type !== null && !/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(type.trim()))
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

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
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

export type ApiHandler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

/**
 * Wraps an API handler: runs it as the invocation, enforces `role` (unless anonymous), maps
 * `HttpError` and `ConfigError` to JSON answers and anything else to a 500 that names the
 * invocation, and flushes telemetry.
 */
export function apiHandler(role: Role | 'anonymous', handler: ApiHandler): ApiHandler {
  return (request, context) =>
    withInvocation(context, async () => {
      const svc = services();
      try {
        if (role !== 'anonymous') authorize(request, role, (await svc.functionSettings()).authEnabled);
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
