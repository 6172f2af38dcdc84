/**
 * Azure DevOps over HTTP (REST 7.1, `@azure/core-rest-pipeline`): the pipeline, URLs, and answers
 * turned into JSON or the product's errors. The endpoint calls are in azureDevOps.ts.
 *
 * - Auth: an Entra ID token for Azure DevOps (`499b84ac-1321-427f-aa17-267ca6975798/.default`) from
 *   a `TokenCredential`, or a PAT sent as `Authorization: Basic base64(":" + pat)`.
 * - Retries: only the pipeline's own retry policy (429/503 with `Retry-After`, other 5xx but 501/505,
 *   408, dropped connections). 400/401/403/404 are never retried.
 * - Pacing: `rateLimitPacingPolicy` (azureDevOpsPacing.ts), after the retry policy.
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
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import { AuthenticationError, PreconditionError, ServiceError } from '../errors';
import { rateLimitPacingPolicy, type PacingClock, type PacingStats } from './azureDevOpsPacing';
import { AZURE_DEVOPS_SCOPE } from './cloud';

const AZURE_DEVOPS_API_VERSION = '7.1';

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

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** Sends requests to Azure DevOps and reads their answers; one pipeline (one pacing state) per client. */
export class AzureDevOpsTransport {
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

  url(
    organizationUrl: string,
    segments: string[],
    query: Record<string, string> = {},
    apiVersion = AZURE_DEVOPS_API_VERSION,
  ): string {
    const path = segments.map((s) => encodeURIComponent(s)).join('/');
    const params = new URLSearchParams({ ...query, 'api-version': apiVersion });
    return `${trimSlash(organizationUrl)}/${path}?${params.toString()}`;
  }

  async send(method: HttpMethods, url: string, body?: unknown): Promise<Answer> {
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
