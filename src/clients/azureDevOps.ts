/**
 * Azure DevOps adapter: projects and service endpoints (REST 7.1) through `@azure/core-rest-pipeline`.
 *
 * - Auth: an Entra ID token for Azure DevOps (`499b84ac-1321-427f-aa17-267ca6975798/.default`) from
 *   a `TokenCredential`, or a PAT sent as `Authorization: Basic base64(":" + pat)`.
 * - Retries: only the pipeline's own retry policy (429/503 with `Retry-After`, other 5xx but 501/505,
 *   408, dropped connections). 400/401/403/404 are never retried.
 * - Pacing (Learn, "Rate and usage limits" for Azure DevOps): a `Retry-After` on any answer, a 200
 *   included, holds every following request for that long; `X-RateLimit-Delay` (how long the
 *   service delayed this request) halves the requests kept in flight (not below 8), widened again
 *   one by one as answers come undelayed. `X-RateLimit-Reset` is when usage would fall to zero if all requests
 *   stopped, not a time to wait for: it is never waited on.
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
  /** Clock of the rate-limit pacing (tests inject one that records the waits instead of sleeping). */
  pacingClock?: PacingClock;
  /** Filled with the waits the pacing imposed (for tests and the bench). */
  pacingStats?: PacingStats;
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

/** Time source of the pacing policy. */
export interface PacingClock {
  now(): number;
  sleep(ms: number, signal?: PipelineRequest['abortSignal']): Promise<void>;
}

/** What the pacing policy did: every clock wait it imposed before a request, and the concurrency cuts. */
export interface PacingStats {
  waits: { ms: number; reason: 'retry-after' }[];
  totalWaitMs: number;
  /** Times the in-flight limit was halved after a delayed answer. */
  concurrencyCuts: number;
  /** Lowest in-flight limit reached (Infinity: never limited). */
  lowestConcurrency: number;
}

const realClock: PacingClock = { now: () => Date.now(), sleep };

/** Above this in-flight limit the pacing lets the caller's own concurrency decide again. */
const UNLIMITED_ABOVE = 64;
/** The in-flight limit is never cut below this: the service's own delay does the rest. */
const MIN_IN_FLIGHT = 8;

/** `Retry-After` in ms: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or bad. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * Paces requests the way Azure DevOps asks to (Learn, "Rate and usage limits", Azure DevOps):
 * - `Retry-After` (on a 429, and on a 200 of a delayed request as well): no request starts before
 *   it has passed. The retry policy retries the 429 itself; this holds the other requests too.
 * - `X-RateLimit-Delay` ("how long the request was delayed"): the service is already slowing each
 *   request down; the client adds no sleep of its own but halves how many requests it keeps in
 *   flight (at most once per delay period, never below 8), and widens it again by one per
 *   undelayed answer (additive increase, multiplicative decrease), so a throttled run slows down
 *   without stalling. (Measured on the sandbox, 1,500 lists against a 150/s budget with 500 ms
 *   delays: 10.9 s with these settings, 11.5 s waiting for the reset as before, 59 s with a floor
 *   of 1: cutting deeper only loses throughput the service's own delay already takes care of.)
 * - `X-RateLimit-Reset` ("time at which, if all resource consumption stopped immediately, tracked
 *   usage would return to 0") is not a wait: waiting for it stalled whole runs.
 * Placed after the retry policy, so retries are paced too. One policy (one state) per client.
 */
export function rateLimitPacingPolicy(
  options: { maxWaitMs?: number; clock?: PacingClock; stats?: PacingStats } = {},
): PipelinePolicy {
  const clock = options.clock ?? realClock;
  const maxWaitMs = options.maxWaitMs ?? 60_000;
  const stats = options.stats;
  let notBefore = 0;
  let limit = Number.POSITIVE_INFINITY;
  let inFlight = 0;
  let lastCut = Number.NEGATIVE_INFINITY;
  const queue: (() => void)[] = [];

  const admit = (): void => {
    while (inFlight < limit && queue.length > 0) {
      inFlight += 1;
      queue.shift()?.();
    }
  };
  const acquire = (): Promise<void> => {
    if (inFlight < limit && queue.length === 0) {
      inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => queue.push(resolve));
  };

  return {
    name: rateLimitPacingPolicyName,
    async sendRequest(request, next) {
      await acquire();
      let response: PipelineResponse;
      try {
        const now = clock.now();
        const wait = Math.min(notBefore, now + maxWaitMs) - now;
        if (wait > 0) {
          stats?.waits.push({ ms: wait, reason: 'retry-after' });
          if (stats) stats.totalWaitMs += wait;
          await clock.sleep(wait, request.abortSignal);
        }
        response = await next(request);
      } finally {
        inFlight -= 1;
        admit();
      }
      const answeredAt = clock.now();
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'), answeredAt);
      if (retryAfter !== undefined && retryAfter > 0)
        notBefore = Math.max(notBefore, answeredAt + Math.min(retryAfter, maxWaitMs));
      const delayMs = Number(response.headers.get('x-ratelimit-delay') ?? '') * 1000;
      if (Number.isFinite(delayMs) && delayMs > 0) {
        if (answeredAt - lastCut >= delayMs) {
          limit = Math.max(MIN_IN_FLIGHT, Math.floor(Math.min(limit, inFlight + 1) / 2));
          lastCut = answeredAt;
          if (stats) {
            stats.concurrencyCuts += 1;
            stats.lowestConcurrency = Math.min(stats.lowestConcurrency, limit);
          }
        }
      } else if (Number.isFinite(limit)) {
        limit = limit + 1 > UNLIMITED_ABOVE ? Number.POSITIVE_INFINITY : limit + 1;
      }
      admit();
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
    this.pipeline.addPolicy(
      rateLimitPacingPolicy({
        maxWaitMs: options.maxPaceMs,
        clock: options.pacingClock,
        stats: options.pacingStats,
      }),
      { afterPhase: 'Retry' },
    );
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
      if (!body || typeof body !== 'object' || !body.id) return undefined;
      // A caller who may not view the connection's details gets `{id, name}` only: no data, no
      // authorization. Said plainly here rather than failing later on a missing field.
      if (!isDetailed(body))
        throw new ServiceError(
          'azure-devops',
          `Azure DevOps returned connection ${body.id} without its details (only id and name): the identity may not view this connection. Give it the Administrator role on the connection (Project settings → Service connections → the connection → ⋮ → Security), at organization level to let it update the connection.`,
          { status: 403, code: 'ConnectionDetailsHidden', transient: false },
        );
      return body;
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
   * The UI's Verify: the `TestConnection` data source through the endpoint proxy, sent the way the
   * portal sends it (Learn, "Troubleshoot issues related to verifying Azure Resource Manager service
   * connections"): the parameters as read, each confidential one present and null. Azure DevOps
   * fills in its stored value only for a confidential key that is present and null, so this tests
   * the STORED credential; a key left out would test no secret at all. An `accesstoken` goes as read
   * (null), as the portal sends it: a connection broken by it then fails Verify, as it fails in the
   * portal (never a pass for a broken connection). The proxy call itself answers 200; the
   * outcome is in `statusCode`/`errorMessage`, and `aadsts` carries the Entra ID code of a failed
   * sign-in (7000215 invalid secret, 7000222 expired). Needs `vso.serviceendpoint_query`.
   */
  async testConnection(
    organizationUrl: string,
    project: string,
    connection: ServiceConnection,
  ): Promise<TestConnectionResult> {
    const parameters = storedCredentialParameters(connection);
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
    const aadsts = /AADSTS(\d+)/.exec(errorMessage)?.[1];
    return {
      ok: statusCode.toLowerCase() === 'ok',
      statusCode,
      errorMessage,
      ...(aadsts ? { aadsts } : {}),
    };
  }

  /**
   * The caller's role assignments on one connection, read only: `organization` reads scope
   * `distributedtask.collection.serviceendpointrole` (resource `collection_{id}`, the role the
   * organization-level PUT and DELETE check), `project` reads `distributedtask.serviceendpointrole`
   * (resource `{projectId}_{id}`). Returns the role names assigned directly to the caller (its
   * Azure DevOps identity from `connectionData`), and whether any group holds Administrator (a
   * role the caller may hold through that group cannot be seen here).
   */
  async connectionRoles(
    organizationUrl: string,
    connectionId: string,
    level: { organization: true } | { projectId: string },
  ): Promise<{ callerRoles: string[]; groupAdministrators: string[] }> {
    const callerId = await this.callerIdentityId(organizationUrl);
    const [scope, resource] =
      'organization' in level
        ? ['distributedtask.collection.serviceendpointrole', `collection_${connectionId}`]
        : ['distributedtask.serviceendpointrole', `${level.projectId}_${connectionId}`];
    const answer = await this.send(
      'GET',
      this.url(
        organizationUrl,
        ['_apis', 'securityroles', 'scopes', scope, 'roleassignments', 'resources', resource],
        {},
        SECURITY_ROLES_API_VERSION,
      ),
    );
    const body = answer.body as
      | { value?: { identity?: { id?: string; displayName?: string }; role?: { name?: string } }[] }
      | undefined;
    const callerRoles: string[] = [];
    const groupAdministrators: string[] = [];
    for (const assignment of body?.value ?? []) {
      const role = assignment.role?.name ?? '';
      if (assignment.identity?.id?.toLowerCase() === callerId.toLowerCase()) callerRoles.push(role);
      // Groups show as "[scope]\\Name" (e.g. "[contoso]\\Project Collection Administrators").
      else if (role === 'Administrator' && /^\[[^\]]+\]\\/.test(assignment.identity?.displayName ?? ''))
        groupAdministrators.push(assignment.identity?.displayName ?? '');
    }
    return { callerRoles, groupAdministrators };
  }

  private readonly callerIds = new Map<string, Promise<string>>();

  /** The caller's Azure DevOps identity id (`_apis/connectionData` → `authenticatedUser.id`). */
  private callerIdentityId(organizationUrl: string): Promise<string> {
    const key = trimSlash(organizationUrl).toLowerCase();
    let id = this.callerIds.get(key);
    if (!id) {
      id = this.send('GET', this.url(organizationUrl, ['_apis', 'connectionData'])).then((answer) => {
        const found = (answer.body as { authenticatedUser?: { id?: string } } | undefined)?.authenticatedUser
          ?.id;
        if (!found)
          throw new ServiceError('azure-devops', 'Azure DevOps connectionData named no authenticated user.', {
            status: answer.status,
          });
        return found;
      });
      id.catch(() => this.callerIds.delete(key));
      this.callerIds.set(key, id);
    }
    return id;
  }

  // -------------------------------------------------------------------------------------------

  private url(
    organizationUrl: string,
    segments: string[],
    query: Record<string, string> = {},
    apiVersion = AZURE_DEVOPS_API_VERSION,
  ): string {
    const path = segments.map((s) => encodeURIComponent(s)).join('/');
    const params = new URLSearchParams({ ...query, 'api-version': apiVersion });
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

/** `securityroles` is still a preview resource. */
const SECURITY_ROLES_API_VERSION = '7.1-preview.1';

/** Whether a GET answer carries the connection's details (a view-less caller gets `{id, name}`). */
function isDetailed(body: ServiceConnection): boolean {
  const authorization = body.authorization as ServiceConnection['authorization'] | undefined;
  return (
    typeof authorization === 'object' &&
    authorization !== null &&
    typeof authorization.scheme === 'string' &&
    typeof body.data === 'object' &&
    body.data !== null
  );
}

/**
 * The parameters as read with every confidential one present and null (the portal's Verify body):
 * Azure DevOps then tests its stored secret or certificate. A secret-based connection whose GET
 * left `serviceprincipalkey` out gets it back as null, so the stored secret is still what is tested.
 */
export function storedCredentialParameters(connection: ServiceConnection): Record<string, string | null> {
  const parameters: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(connection.authorization?.parameters ?? {})) {
    if (CONFIDENTIAL_PARAMETERS.has(k.toLowerCase())) parameters[k] = null;
    else if (v !== undefined) parameters[k] = v;
  }
  const has = (name: string): boolean => Object.keys(parameters).some((k) => k.toLowerCase() === name);
  if (connection.authorization?.scheme?.toLowerCase() === 'serviceprincipal') {
    const type = Object.entries(parameters).find(([k]) => k.toLowerCase() === 'authenticationtype')?.[1];
    const confidential =
      (type ?? 'spnKey').toLowerCase() === 'spncertificate'
        ? 'serviceprincipalcertificate'
        : 'serviceprincipalkey';
    if (!has(confidential)) parameters[confidential] = null;
  }
  return parameters;
}

function firstLine(message: string | undefined): string {
  return (message ?? 'unknown error').split(/\r?\n/)[0] ?? 'unknown error';
}

/** The adapter as the core sees it. */
export function createAzureDevOpsClient(options: AzureDevOpsClientOptions): AzureDevOpsClient {
  return new AzureDevOpsRestClient(options);
}
