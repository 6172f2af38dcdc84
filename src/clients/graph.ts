/**
 * Microsoft Graph adapter for the core's `GraphApplicationsClient`, over
 * `@microsoft/microsoft-graph-client`. The client's middleware does the retrying (RetryHandler:
 * 429/503/504, honouring Retry-After, within a time budget) and the slowing down while throttled
 * (`ThrottleGate`, graphThrottle.ts); this file adds no retry loop of its own.
 *
 * Permissions (application): `Application.ReadWrite.OwnedBy` (apps the identity owns) or
 * `Application.ReadWrite.All`; `Policy.Read.All` to read app management policies (optional: without
 * it the policy reads as "no restriction known" and addPassword itself reports a policy refusal).
 */
import type { TokenCredential } from '@azure/core-auth';
import {
  AuthenticationHandler,
  Client,
  GraphError,
  HTTPMessageHandler,
  RedirectHandler,
  RedirectHandlerOptions,
  RetryHandler,
  RetryHandlerOptions,
  TelemetryHandler,
} from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials';
import { AuthenticationError, ServiceError, isTransientStatus } from '../errors';
import { requestLine, ResendWithoutAnswer, retryAfterMs, ThrottleGate } from './graphThrottle';
import type {
  ApplicationInfo,
  CertificateCredentialInfo,
  FederatedCredentialInfo,
  FederatedCredentialsClient,
  GraphApplicationsClient,
  NewPasswordCredential,
  PasswordCredentialInfo,
  PasswordPolicy,
} from '../remediation/ports';

export interface GraphClientOptions {
  credential: TokenCredential;
  /** Graph root without version, e.g. `https://graph.microsoft.com` (GRAPH_ENDPOINT). */
  endpoint: string;
  /**
   * Token scope of the cloud's Graph resource, e.g. `https://graph.microsoft.com/.default`. Passed in,
   * never derived from `endpoint`: a proxy or sandbox endpoint still needs the cloud's audience.
   */
  scope: string;
  /**
   * How long the tenant's default app management policy is reused once read (it is the same for
   * every app, and changes rarely): 0 (default) reads it for every app.
   */
  tenantPolicyTtlMs?: number;
  /**
   * How long one request may keep being retried after throttling (429/503/504, each wait per
   * Retry-After), from its first attempt: default 120 s. Past it the error surfaces (transient).
   */
  retryBudgetMs?: number;
  /** Graph requests of one kind (reads, writes) in flight at most; the gate halves it on 429s. Default 64. */
  maxConcurrency?: number;
}

/** Certificates are read too: a certificate connection is assessed from them (never their raw data, see below). */
const APP_SELECT = 'id,appId,displayName,passwordCredentials,keyCredentials';
const DEFAULT_RETRY_BUDGET_MS = 120_000;
/** Seconds the retry handler waits when an answer carries no Retry-After (its own default, 3). */
const RETRY_DELAY_SECONDS = 3;
const DAY_MS = 24 * 3600 * 1000;

interface GraphPassword {
  keyId?: string;
  displayName?: string | null;
  hint?: string | null;
  startDateTime?: string | null;
  endDateTime?: string | null;
  secretText?: string | null;
}

interface GraphKeyCredential {
  keyId?: string;
  displayName?: string | null;
  customKeyIdentifier?: string | null;
  endDateTime?: string | null;
  type?: string | null;
  usage?: string | null;
}

interface GraphApplication {
  id: string;
  appId: string;
  displayName?: string | null;
  passwordCredentials?: GraphPassword[];
  keyCredentials?: GraphKeyCredential[];
}

interface PasswordRestriction {
  restrictionType?: string;
  state?: string | null;
  maxLifetime?: string | null;
}

interface AppManagementPolicyJson {
  isEnabled?: boolean;
  restrictions?: { passwordCredentials?: PasswordRestriction[] };
}

interface TenantAppManagementPolicyJson {
  isEnabled?: boolean;
  applicationRestrictions?: { passwordCredentials?: PasswordRestriction[] };
}

function toPasswordInfo(p: GraphPassword): PasswordCredentialInfo {
  return {
    keyId: p.keyId ?? '',
    displayName: p.displayName ?? null,
    hint: p.hint ?? null,
    startDateTime: p.startDateTime ?? null,
    endDateTime: p.endDateTime ?? null,
  };
}

/**
 * The certificate's facts assessment needs. `key` (the certificate's raw data, which Graph returns
 * for a single application read with `$select=keyCredentials`) is deliberately not kept: public, but
 * a kilobyte or more per certificate, for every app of a run.
 */
function toCertificateInfo(k: GraphKeyCredential): CertificateCredentialInfo {
  return {
    keyId: k.keyId ?? '',
    displayName: k.displayName ?? null,
    thumbprint: k.customKeyIdentifier ?? null,
    endDateTime: k.endDateTime ?? null,
    type: k.type ?? null,
    usage: k.usage ?? null,
  };
}

function toApplicationInfo(app: GraphApplication): ApplicationInfo {
  const info: ApplicationInfo = {
    id: app.id,
    appId: app.appId,
    displayName: app.displayName ?? '',
    passwordCredentials: (app.passwordCredentials ?? []).map(toPasswordInfo),
  };
  if (app.keyCredentials && app.keyCredentials.length > 0)
    info.keyCredentials = app.keyCredentials.map(toCertificateInfo);
  return info;
}

/** ISO 8601 duration in whole days (rounded down, so a derived end date never exceeds the cap). */
export function isoDurationToDays(duration: string): number | undefined {
  const m =
    /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(
      duration,
    );
  if (!m || duration === 'P' || /T$/i.test(duration)) return undefined;
  const n = (i: number): number => Number(m[i] ?? 0);
  const ms =
    (n(1) * 365 + n(2) * 30 + n(3) * 7 + n(4)) * DAY_MS + n(5) * 3600_000 + n(6) * 60_000 + n(7) * 1000;
  return Math.floor(ms / DAY_MS);
}

/** Folds enabled password restrictions into the core's view; undefined when none applies. */
function foldRestrictions(restrictions: PasswordRestriction[]): Partial<PasswordPolicy> {
  const out: Partial<PasswordPolicy> = {};
  for (const r of restrictions) {
    if (r.state === 'disabled') continue;
    if (r.restrictionType === 'passwordAddition') out.additionBlocked = true;
    if (r.restrictionType === 'passwordLifetime' && r.maxLifetime) {
      const days = isoDurationToDays(r.maxLifetime);
      if (days !== undefined) out.maxLifetimeDays = Math.min(out.maxLifetimeDays ?? days, days);
    }
  }
  return out;
}

function toPolicy(folded: Partial<PasswordPolicy>): PasswordPolicy {
  const policy: PasswordPolicy = { additionBlocked: folded.additionBlocked ?? false };
  if (folded.maxLifetimeDays !== undefined) policy.maxLifetimeDays = folded.maxLifetimeDays;
  return policy;
}

/** Graph's message can echo request input; keep it to one line and never longer than needed. */
function shortMessage(message: string): string {
  const first = message.split(/\r?\n/)[0] ?? '';
  return first.length > 500 ? `${first.slice(0, 500)}…` : first;
}

/** Maps what the Graph client throws to the service error taxonomy. */
export function toGraphServiceError(err: unknown, operation: string): ServiceError {
  if (err instanceof ServiceError) return err;
  if (err instanceof GraphError) {
    const status = err.statusCode > 0 ? err.statusCode : undefined;
    const code = err.code ?? undefined;
    // Status -1: no HTTP answer; the token credential or the network failed before Graph replied.
    if (status === undefined && code && /Authentication|Credential/i.test(code)) {
      const aadsts = /AADSTS(\d+)/.exec(err.message)?.[1];
      return new AuthenticationError(
        'graph',
        `${operation}: cannot get a Graph token: ${shortMessage(err.message)}`,
        {
          code: aadsts ? `AADSTS${aadsts}` : code,
          cause: err,
        },
      );
    }
    const text = shortMessage(err.message || code || 'no error body');
    const message = `${operation} failed: Graph ${status ?? 'no response'}${code ? ` ${code}` : ''}: ${text}`;
    if (status === 401) return new AuthenticationError('graph', message, { status, code, cause: err });
    return new ServiceError('graph', message, {
      status,
      code,
      transient: isTransientStatus(status),
      cause: err,
    });
  }
  const message = err instanceof Error ? shortMessage(err.message) : String(err);
  return new ServiceError('graph', `${operation} failed: ${message}`, { cause: err });
}

/**
 * Reads and changes application passwords through Microsoft Graph v1.0.
 */
export class GraphApplicationsAdapter implements GraphApplicationsClient, FederatedCredentialsClient {
  private readonly client: Client;
  private readonly credential: TokenCredential;
  private readonly scope: string;
  private readonly tenantPolicyTtlMs: number;
  private tenantPolicy: { read: Promise<TenantAppManagementPolicyJson>; at: number } | undefined;

  constructor(options: GraphClientOptions) {
    this.credential = options.credential;
    this.scope = options.scope;
    this.tenantPolicyTtlMs = options.tenantPolicyTtlMs ?? 0;
    const authProvider = new TokenCredentialAuthenticationProvider(options.credential, {
      scopes: [options.scope],
    });
    const endpoint = options.endpoint.replace(/\/+$/, '');
    const gate = new ThrottleGate({ maxConcurrency: options.maxConcurrency ?? 64 });
    const budgetMs = options.retryBudgetMs ?? DEFAULT_RETRY_BUDGET_MS;
    // The client's default chain (MiddlewareFactory.getDefaultMiddlewareChain), with the retry
    // handler allowed its maximum of 10 retries within the time budget, and the gate after it so
    // every attempt passes the gate.
    const retry = new RetryHandler(
      new RetryHandlerOptions(
        RETRY_DELAY_SECONDS,
        10,
        (_delay, _attempt, request, fetchOptions, response) => {
          const { method, url } = requestLine(request, fetchOptions);
          // A 503/504 to addPassword may come after the password was added: a retry would add a
          // second one, the first one's value lost (an orphan). Only 429 (refused, nothing done) is.
          if (response.status !== 429 && method === 'POST' && /\/addPassword$/i.test(url)) return false;
          const wait = retryAfterMs(response) ?? RETRY_DELAY_SECONDS * 1000;
          return gate.elapsedMs(fetchOptions) + wait <= budgetMs;
        },
      ),
    );
    const middleware = [
      new AuthenticationHandler(authProvider),
      retry,
      new ResendWithoutAnswer(),
      gate,
      new RedirectHandler(new RedirectHandlerOptions()),
      new TelemetryHandler(),
      new HTTPMessageHandler(),
    ];
    this.client = Client.initWithMiddleware({
      middleware,
      // The client joins baseUrl + defaultVersion + path, so the endpoint carries no version.
      baseUrl: endpoint,
      defaultVersion: 'v1.0',
      // The auth middleware only attaches tokens to known Graph hosts or these (hostname, no port).
      customHosts: new Set([new URL(endpoint).hostname]),
    });
  }

  /** The raw Graph client, for callers that need an API this adapter does not wrap. */
  get graph(): Client {
    return this.client;
  }

  /** Requires Application.Read.All (or either ReadWrite permission). */
  async getApplicationByAppId(appId: string): Promise<ApplicationInfo | undefined> {
    try {
      const app = (await this.client
        .api(`/applications(appId='${encodeURIComponent(appId)}')`)
        .select(APP_SELECT)
        .get()) as GraphApplication;
      return toApplicationInfo(app);
    } catch (err) {
      if (err instanceof GraphError && err.statusCode === 404) return undefined;
      throw toGraphServiceError(err, 'Reading application');
    }
  }

  /**
   * Adds a password and returns it with its value, the only time Graph shows it. Requires
   * Application.ReadWrite.OwnedBy (owned apps) or Application.ReadWrite.All.
   */
  async addPassword(
    applicationObjectId: string,
    credential: { displayName: string; endDateTime: string },
  ): Promise<NewPasswordCredential> {
    let created: GraphPassword;
    try {
      created = (await this.client
        .api(`/applications/${encodeURIComponent(applicationObjectId)}/addPassword`)
        .post({
          passwordCredential: { displayName: credential.displayName, endDateTime: credential.endDateTime },
        })) as GraphPassword;
    } catch (err) {
      throw toGraphServiceError(err, 'Adding a password');
    }
    if (!created.secretText || !created.keyId)
      throw new ServiceError('graph', 'Adding a password: Graph returned no secret value', { status: 200 });
    return {
      ...toPasswordInfo(created),
      secretText: created.secretText,
      endDateTime: created.endDateTime ?? credential.endDateTime,
    };
  }

  /**
   * Same permissions as addPassword. A credential already gone is not an error: it is the end state
   * asked for (and what a request sent again after a lost answer finds).
   */
  async removePassword(applicationObjectId: string, keyId: string): Promise<void> {
    try {
      await this.client
        .api(`/applications/${encodeURIComponent(applicationObjectId)}/removePassword`)
        .post({ keyId });
    } catch (err) {
      // An unknown keyId: a 400 whose wording is not public (the sandbox's is inferred). Recognised
      // by that wording only, so any other answer stays an error: safe under both readings.
      if (
        err instanceof GraphError &&
        err.statusCode === 400 &&
        /no password credential found/i.test(err.message)
      )
        return;
      throw toGraphServiceError(err, 'Removing a password');
    }
  }

  /**
   * The app's federated identity credentials (`GET /applications/{id}/federatedIdentityCredentials`).
   * Requires Application.Read.All or either ReadWrite permission.
   */
  async listFederatedCredentials(applicationObjectId: string): Promise<FederatedCredentialInfo[]> {
    const out: FederatedCredentialInfo[] = [];
    try {
      let page = (await this.client
        .api(`/applications/${encodeURIComponent(applicationObjectId)}/federatedIdentityCredentials`)
        .get()) as { value?: FederatedCredentialInfo[]; '@odata.nextLink'?: string };
      for (;;) {
        for (const f of page.value ?? [])
          out.push({
            id: f.id,
            name: f.name,
            issuer: f.issuer,
            subject: f.subject,
            audiences: f.audiences ?? [],
            description: f.description ?? null,
          });
        const next = page['@odata.nextLink'];
        if (!next) break;
        page = (await this.client.api(next).get()) as typeof page;
      }
    } catch (err) {
      throw toGraphServiceError(err, 'Listing federated identity credentials');
    }
    return out;
  }

  /**
   * Adds a federated identity credential (`POST /applications/{id}/federatedIdentityCredentials`).
   * Requires Application.ReadWrite.OwnedBy (owned apps) or Application.ReadWrite.All.
   */
  async addFederatedCredential(
    applicationObjectId: string,
    credential: Omit<FederatedCredentialInfo, 'id'>,
  ): Promise<FederatedCredentialInfo> {
    try {
      const created = (await this.client
        .api(`/applications/${encodeURIComponent(applicationObjectId)}/federatedIdentityCredentials`)
        .post({
          name: credential.name,
          issuer: credential.issuer,
          subject: credential.subject,
          audiences: credential.audiences,
          ...(credential.description ? { description: credential.description } : {}),
        })) as FederatedCredentialInfo;
      return { ...credential, id: created.id, audiences: created.audiences ?? credential.audiences };
    } catch (err) {
      throw toGraphServiceError(err, 'Adding a federated identity credential');
    }
  }

  /** Removes a federated identity credential; one already gone (404) is not an error. Same permissions. */
  async removeFederatedCredential(applicationObjectId: string, id: string): Promise<void> {
    try {
      await this.client
        .api(
          `/applications/${encodeURIComponent(applicationObjectId)}/federatedIdentityCredentials/${encodeURIComponent(id)}`,
        )
        .delete();
    } catch (err) {
      if (err instanceof GraphError && err.statusCode === 404) return;
      throw toGraphServiceError(err, 'Removing a federated identity credential');
    }
  }

  /**
   * Object ids of the app's owners (`GET /applications/{id}/owners?$select=id`). Reading works with
   * Application.Read.All or either ReadWrite permission (OwnedBy reads apps it does not own too).
   */
  async listOwnerIds(applicationObjectId: string): Promise<string[]> {
    const ids: string[] = [];
    try {
      let page = (await this.client
        .api(`/applications/${encodeURIComponent(applicationObjectId)}/owners`)
        .select('id')
        .get()) as { value?: { id?: string }[]; '@odata.nextLink'?: string };
      for (;;) {
        for (const owner of page.value ?? []) if (owner.id) ids.push(owner.id);
        const next = page['@odata.nextLink'];
        if (!next) break;
        page = (await this.client.api(next).get()) as typeof page;
      }
    } catch (err) {
      throw toGraphServiceError(err, 'Reading application owners');
    }
    return ids;
  }

  /**
   * Who this adapter calls Graph as, from the claims of its own Graph access token (read locally,
   * never sent or logged): object id (`oid`), client id (`appid`/`azp`) and the application
   * permissions granted to it (`roles`).
   */
  async callerIdentity(): Promise<{ objectId?: string; appId?: string; roles: string[] }> {
    let token: string | undefined;
    try {
      token = (await this.credential.getToken(this.scope))?.token;
    } catch (err) {
      const message = err instanceof Error ? shortMessage(err.message) : String(err);
      const aadsts = /AADSTS\d+/.exec(message)?.[0];
      throw new AuthenticationError('graph', `Cannot get a Graph token: ${message}`, { code: aadsts });
    }
    if (!token)
      throw new AuthenticationError('graph', 'Cannot get a Graph token: the credential returned none.');
    let claims: { oid?: unknown; appid?: unknown; azp?: unknown; roles?: unknown } = {};
    try {
      claims = JSON.parse(
        Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'),
      ) as typeof claims;
    } catch {
      // Not a JWT: nothing to read.
    }
    const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
    return {
      objectId: text(claims.oid),
      appId: text(claims.appid) ?? text(claims.azp),
      roles: Array.isArray(claims.roles)
        ? claims.roles.filter((r): r is string => typeof r === 'string')
        : [],
    };
  }

  /**
   * The password restrictions in force for the app. An app management policy assigned to the app
   * replaces the tenant default for it entirely: "When both the tenant default policy and an app
   * management policy exist, the app management policy takes precedence and the assigned
   * application or service principal doesn't inherit from the tenant default policy" (Graph v1.0,
   * https://learn.microsoft.com/graph/api/resources/applicationauthenticationmethodpolicy). So the
   * tenant default is read only for apps without an enabled policy of their own.
   *
   * An assigned policy that is disabled: no public source says whether the tenant default then
   * applies. Chosen because safe under both readings: its lifetime cap is honoured (a shorter secret
   * than needed costs nothing) but its block is not assumed (assuming it would stop a rotation the
   * directory may allow; if it does apply, addPassword's CredentialTypeNotAllowedAsPerAppPolicy says so).
   * Restrictions are applied whatever their `restrictForAppsCreatedAfterDateTime`: assuming a cap
   * that may not apply only shortens a lifetime, while missing one makes addPassword fail.
   * Requires Policy.Read.All; never fails (a policy refusal still surfaces from addPassword).
   */
  async getPasswordPolicy(applicationObjectId: string): Promise<PasswordPolicy> {
    try {
      const own = (await this.client
        .api(`/applications/${encodeURIComponent(applicationObjectId)}/appManagementPolicies`)
        .get()) as { value?: AppManagementPolicyJson[] };
      const assigned = own.value ?? [];
      const enabled = assigned.filter((p) => p.isEnabled !== false);
      if (enabled.length > 0) {
        const fromApp = foldRestrictions(enabled.flatMap((p) => p.restrictions?.passwordCredentials ?? []));
        return toPolicy(fromApp);
      }
      const tenant = await this.tenantDefaultPolicy();
      const fromTenant =
        tenant.isEnabled === false
          ? {}
          : foldRestrictions(tenant.applicationRestrictions?.passwordCredentials ?? []);
      if (assigned.length > 0) return toPolicy({ maxLifetimeDays: fromTenant.maxLifetimeDays });
      return toPolicy(fromTenant);
    } catch {
      // Forbidden, throttled past retries, or unreachable: unknown policy is reported as none.
      return { additionBlocked: false };
    }
  }

  /** `GET /policies/defaultAppManagementPolicy`, shared for `tenantPolicyTtlMs` (a failed read is not kept). */
  private tenantDefaultPolicy(): Promise<TenantAppManagementPolicyJson> {
    const now = Date.now();
    if (this.tenantPolicy && now - this.tenantPolicy.at < this.tenantPolicyTtlMs)
      return this.tenantPolicy.read;
    const read = this.client
      .api('/policies/defaultAppManagementPolicy')
      .get() as Promise<TenantAppManagementPolicyJson>;
    if (this.tenantPolicyTtlMs > 0) {
      const entry = { read, at: now };
      this.tenantPolicy = entry;
      read.catch(() => {
        if (this.tenantPolicy === entry) this.tenantPolicy = undefined;
      });
    }
    return read;
  }
}
