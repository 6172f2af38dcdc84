/**
 * Azure DevOps adapter: projects and service endpoints (REST 7.1) through `@azure/core-rest-pipeline`.
 *
 * - Auth: an Entra ID token for Azure DevOps (`499b84ac-1321-427f-aa17-267ca6975798/.default`) from
 *   a `TokenCredential`, or a PAT sent as `Authorization: Basic base64(":" + pat)`.
 * - Retries: only the pipeline's own retry policy (429/503 with `Retry-After`, other 5xx but 501/505,
 *   408, dropped connections). 400/401/403/404 are never retried.
 * - Pacing: after an answer with `X-RateLimit-Remaining: 0`, the next request waits until
 *   `X-RateLimit-Reset` (or `X-RateLimit-Delay` seconds), so a long run slows down instead of
 *   being blocked.
 * - A 2xx answer that is not JSON is Azure DevOps' sign-in page (HTTP 203): an authentication
 *   failure, reported as such.
 *
 * No secret value (PAT, token, `serviceprincipalkey`) is ever put in an error or a log line.
 */
import type { TokenCredential } from '@azure/core-auth';
import {
  bearerTokenAuthenticationPolicy,
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineFromOptions,
  createPipelineRequest,
  isRestError,
  type HttpClient,
  type HttpMethods,
  type Pipeline,
  type PipelinePolicy,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import { AuthenticationError, PreconditionError, ServiceError } from '../errors';
import type {
  AzureDevOpsClient,
  ProjectRef,
  ServiceConnection,
  TestConnectionResult,
} from '../remediation/ports';

/** Entra ID scope of Azure DevOps (its first-party application id). */
export const AZURE_DEVOPS_SCOPE = '499b84ac-1321-427f-aa17-267ca6975798/.default';
export const AZURE_DEVOPS_API_VERSION = '7.1';

/** Parameters Azure DevOps treats as confidential: never returned, kept when a PUT leaves them out. */
const CONFIDENTIAL_PARAMETERS = new Set([
  'serviceprincipalkey',
  'serviceprincipalcertificate',
  'accesstoken',
]);

export interface AzureDevOpsClientOptions {
  /** Entra ID credential (managed identity, client secret, …). Used unless `pat` is given. */
  credential?: TokenCredential;
  /** Personal access token; takes precedence over `credential`. */
  pat?: string;
  retry?: {
    /** Retries after the first attempt (default 3). */
    maxRetries?: number;
    /** Base delay of the exponential back-off for 5xx and dropped connections (default 1000 ms). */
    retryDelayInMs?: number;
    maxRetryDelayInMs?: number;
  };
  /** Longest wait the rate-limit pacing imposes before one request (default 60 s). */
  maxPaceMs?: number;
  /** Replaces the default HTTP client (tests). */
  httpClient?: HttpClient;
}

/** Azure DevOps' error JSON (WrappedException). */
interface WrappedException {
  message?: string;
  typeKey?: string;
}

interface Answer {
  status: number;
  headers: PipelineResponse['headers'];
  body: unknown;
}

export const rateLimitPacingPolicyName = 'azureDevOpsRateLimitPacingPolicy';

/**
 * Paces requests after Azure DevOps says the caller's budget is used up (`X-RateLimit-Remaining: 0`):
 * the next request waits until `X-RateLimit-Reset` (epoch seconds), or `X-RateLimit-Delay` seconds
 * when no reset time is given. Placed after the retry policy, so retries are paced too.
 */
export function rateLimitPacingPolicy(maxPaceMs = 60_000): PipelinePolicy {
  let notBefore = 0;
  return {
    name: rateLimitPacingPolicyName,
    async sendRequest(request, next) {
      const wait = Math.min(notBefore - Date.now(), maxPaceMs);
      if (wait > 0) await sleep(wait, request.abortSignal);
      const response = await next(request);
      const remaining = Number(response.headers.get('x-ratelimit-remaining'));
      if (response.headers.has('x-ratelimit-remaining') && Number.isFinite(remaining) && remaining <= 0) {
        const now = Date.now();
        const reset = Number(response.headers.get('x-ratelimit-reset'));
        const delaySeconds = Number(response.headers.get('x-ratelimit-delay'));
        const until =
          Number.isFinite(reset) && reset * 1000 > now
            ? reset * 1000
            : now + (Number.isFinite(delaySeconds) && delaySeconds > 0 ? delaySeconds * 1000 : 1000);
        notBefore = Math.max(notBefore, Math.min(until, now + maxPaceMs));
      }
      return response;
    },
  };
}

function sleep(ms: number, signal?: PipelineRequest['abortSignal']): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('The operation was aborted.'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('The operation was aborted.'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Sends `Authorization: Basic base64(":" + pat)` (the PAT is kept in this closure only). */
function patAuthenticationPolicy(pat: string): PipelinePolicy {
  const header = `Basic ${Buffer.from(`:${pat}`, 'utf8').toString('base64')}`;
  return {
    name: 'azureDevOpsPatAuthenticationPolicy',
    sendRequest(request, next) {
      request.headers.set('Authorization', header);
      return next(request);
    },
  };
}

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

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** Implements the core's `AzureDevOpsClient` against the Azure DevOps REST API 7.1. */
export class AzureDevOpsRestClient implements AzureDevOpsClient {
  private readonly pipeline: Pipeline;
  private readonly httpClient: HttpClient;
  private readonly authKind: 'pat' | 'entra';

  constructor(options: AzureDevOpsClientOptions) {
    if (!options.pat && !options.credential)
      throw new PreconditionError('Azure DevOps needs a credential: an Entra ID TokenCredential or a PAT.');
    this.pipeline = createPipelineFromOptions({
      retryOptions: {
        maxRetries: options.retry?.maxRetries ?? 3,
        retryDelayInMs: options.retry?.retryDelayInMs,
        maxRetryDelayInMs: options.retry?.maxRetryDelayInMs,
      },
      userAgentOptions: { userAgentPrefix: 'sc-remediator' },
    });
    this.pipeline.addPolicy(rateLimitPacingPolicy(options.maxPaceMs), { afterPhase: 'Retry' });
    if (options.pat) {
      this.authKind = 'pat';
      this.pipeline.addPolicy(patAuthenticationPolicy(options.pat), { phase: 'Sign' });
    } else {
      this.authKind = 'entra';
      this.pipeline.addPolicy(
        bearerTokenAuthenticationPolicy({ credential: options.credential, scopes: AZURE_DEVOPS_SCOPE }),
        { phase: 'Sign' },
      );
    }
    this.httpClient = options.httpClient ?? createDefaultHttpClient();
  }

  /** All projects of the organization, following `x-ms-continuationtoken`. Needs `vso.project`. */
  async listProjects(organizationUrl: string): Promise<ProjectRef[]> {
    const projects: ProjectRef[] = [];
    let continuationToken: string | undefined;
    const seen = new Set<string>();
    do {
      const query: Record<string, string> = { $top: '100' };
      if (continuationToken) query['continuationToken'] = continuationToken;
      const answer = await this.send('GET', this.url(organizationUrl, ['_apis', 'projects'], query));
      const body = answer.body as { value?: { id: string; name: string }[] } | undefined;
      for (const p of body?.value ?? []) projects.push({ id: p.id, name: p.name });
      continuationToken = answer.headers.get('x-ms-continuationtoken') ?? undefined;
      if (continuationToken && seen.has(continuationToken)) break; // a server repeating itself
      if (continuationToken) seen.add(continuationToken);
    } while (continuationToken);
    return projects;
  }

  /**
   * The project's Azure Resource Manager connections, failed ones included
   * (`type=azurerm&includeFailed=true&includeDetails=true`). Needs `vso.serviceendpoint`.
   * `actionFilter: 'manage'` keeps only the connections the caller may administer (the spec's
   * `ServiceEndpointActionFilter`): a read-only way to learn where it holds the Administrator role.
   */
  async listAzureRmConnections(
    organizationUrl: string,
    project: string,
    options: { actionFilter?: 'manage' } = {},
  ): Promise<ServiceConnection[]> {
    const query: Record<string, string> = { type: 'azurerm', includeFailed: 'true', includeDetails: 'true' };
    if (options.actionFilter) query['actionFilter'] = options.actionFilter;
    const answer = await this.send(
      'GET',
      this.url(organizationUrl, [project, '_apis', 'serviceendpoint', 'endpoints'], query),
    );
    const body = answer.body as { value?: ServiceConnection[] } | undefined;
    return body?.value ?? [];
  }

  /** One connection through a project it is shared with; undefined when it does not exist there. */
  async getConnection(
    organizationUrl: string,
    project: string,
    connectionId: string,
  ): Promise<ServiceConnection | undefined> {
    try {
      const answer = await this.send(
        'GET',
        this.url(organizationUrl, [project, '_apis', 'serviceendpoint', 'endpoints', connectionId]),
      );
      const body = answer.body as ServiceConnection | null | undefined;
      // An unknown id answers 200 with an empty (null) body.
      return body && typeof body === 'object' && body.id ? body : undefined;
    } catch (err) {
      if (
        err instanceof ServiceError &&
        err.status === 404 &&
        err.code === 'ServiceEndpointNotFoundException'
      )
        return undefined;
      throw err;
    }
  }

  /**
   * Organization-level PUT of the whole connection. Confidential parameters left out (or null)
   * keep their stored value. Needs the Administrator role on the connection and
   * `vso.serviceendpoint_manage`.
   */
  async updateConnection(
    organizationUrl: string,
    connection: ServiceConnection,
    operation?: string,
  ): Promise<ServiceConnection> {
    const query: Record<string, string> = {};
    if (operation) query['operation'] = operation;
    const answer = await this.send(
      'PUT',
      this.url(organizationUrl, ['_apis', 'serviceendpoint', 'endpoints', connection.id], query),
      connection,
    );
    const body = answer.body as ServiceConnection | undefined;
    if (!body || typeof body !== 'object')
      throw new ServiceError(
        'azure-devops',
        `Azure DevOps answered the update of ${connection.id} without a body.`,
        {
          status: answer.status,
        },
      );
    return body;
  }

  /**
   * Removes the connection from `projectIds` (from all of them: deletes it). `deep: false` leaves
   * the app registration alone. Needs the Administrator role and `vso.serviceendpoint_manage`.
   */
  async deleteConnection(
    organizationUrl: string,
    connectionId: string,
    projectIds: string[],
    deep: boolean,
  ): Promise<void> {
    if (projectIds.length === 0)
      throw new PreconditionError(`Deleting connection ${connectionId} needs at least one project id.`);
    await this.send(
      'DELETE',
      this.url(organizationUrl, ['_apis', 'serviceendpoint', 'endpoints', connectionId], {
        projectIds: projectIds.join(','),
        deep: String(deep),
      }),
    );
  }

  /**
   * The UI's Verify: the `TestConnection` data source through the endpoint proxy. Confidential
   * parameters are not sent, so Azure DevOps tests the credential it has stored. The proxy call
   * itself answers 200; the outcome is in `statusCode`/`errorMessage`. Needs `vso.serviceendpoint_query`.
   */
  async testConnection(
    organizationUrl: string,
    project: string,
    connection: ServiceConnection,
  ): Promise<TestConnectionResult> {
    const parameters: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(connection.authorization?.parameters ?? {}))
      if (!CONFIDENTIAL_PARAMETERS.has(k.toLowerCase()) && v !== undefined) parameters[k] = v;
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
    const answer = await this.send(
      'POST',
      this.url(organizationUrl, [project, '_apis', 'serviceendpoint', 'endpointproxy'], {
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
    return { ok: statusCode.toLowerCase() === 'ok', statusCode, errorMessage };
  }

  // -------------------------------------------------------------------------------------------

  private url(organizationUrl: string, segments: string[], query: Record<string, string> = {}): string {
    const path = segments.map((s) => encodeURIComponent(s)).join('/');
    const params = new URLSearchParams({ ...query, 'api-version': AZURE_DEVOPS_API_VERSION });
    return `${trimSlash(organizationUrl)}/${path}?${params.toString()}`;
  }

  private async send(method: HttpMethods, url: string, body?: unknown): Promise<Answer> {
    const what = `${method} ${new URL(url).pathname}`;
    const request = createPipelineRequest({
      url,
      method,
      headers: createHttpHeaders({
        Accept: 'application/json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let response: PipelineResponse;
    try {
      response = await this.pipeline.sendRequest(this.httpClient, request);
    } catch (err) {
      throw this.transportError(what, err);
    }
    const text = response.bodyAsText ?? '';
    const contentType = response.headers.get('content-type') ?? '';
    const isJson = /\bjson\b/i.test(contentType);

    if (response.status >= 200 && response.status < 300) {
      if (response.status === 203 || (text.trim() !== '' && !isJson))
        throw this.signInPage(what, response.status);
      if (text.trim() === '') return { status: response.status, headers: response.headers, body: undefined };
      try {
        return { status: response.status, headers: response.headers, body: JSON.parse(text) as unknown };
      } catch {
        throw new ServiceError('azure-devops', `Azure DevOps answered ${what} with malformed JSON.`, {
          status: response.status,
          transient: false,
        });
      }
    }

    let error: WrappedException = {};
    if (isJson)
      try {
        error = JSON.parse(text) as WrappedException;
      } catch {
        // keep the status alone
      }
    const code = error.typeKey;
    const detail = error.message ? `: ${error.message}` : '';
    const message = `Azure DevOps ${what} failed with ${response.status}${code ? ` ${code}` : ''}${detail}`;
    if (response.status === 401)
      throw new AuthenticationError('azure-devops', message, { status: 401, code });
    throw new ServiceError('azure-devops', message, { status: response.status, code });
  }

  private signInPage(what: string, status: number): AuthenticationError {
    const reason =
      this.authKind === 'pat'
        ? 'Azure DevOps answered with a sign-in page: the PAT is invalid or expired'
        : 'Azure DevOps answered with a sign-in page: the Entra ID token was not accepted';
    return new AuthenticationError('azure-devops', `${reason} (${what}, HTTP ${status}).`, {
      status,
      code: 'SignInPage',
    });
  }

  /** No answer at all (dropped connection after the retries), or no token could be obtained. */
  private transportError(what: string, err: unknown): Error {
    if (isRestError(err)) {
      const code = err.code ?? 'NoResponse';
      return new ServiceError('azure-devops', `Azure DevOps ${what} got no answer (${code}).`, {
        status: err.statusCode,
        code,
        transient: true,
      });
    }
    const e = err as { name?: string; message?: string };
    const aadsts = /AADSTS\d+/.exec(e.message ?? '')?.[0];
    if (aadsts || /Authentication|CredentialUnavailable/i.test(e.name ?? ''))
      return new AuthenticationError(
        'azure-devops',
        `Could not get an Entra ID token for Azure DevOps${aadsts ? ` (${aadsts})` : ''}: ${firstLine(e.message)}`,
        { code: aadsts ?? e.name },
      );
    return new ServiceError('azure-devops', `Azure DevOps ${what} failed: ${firstLine(e.message)}`, {
      transient: true,
    });
  }
}

function firstLine(message: string | undefined): string {
  return (message ?? 'unknown error').split(/\r?\n/)[0] ?? 'unknown error';
}

/** The adapter as the core sees it. */
export function createAzureDevOpsClient(options: AzureDevOpsClientOptions): AzureDevOpsClient {
  return new AzureDevOpsRestClient(options);
}
