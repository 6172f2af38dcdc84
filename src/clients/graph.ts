/**
 * Microsoft Graph adapter for the core's `GraphApplicationsClient`, over
 * `@microsoft/microsoft-graph-client`. The client's middleware does the retrying (RetryHandler:
 * 429/503/504, honouring Retry-After, within a time budget) and the slowing down while throttled
 * (`ThrottleGate`, graphThrottle.ts), set up in graphClient.ts; this file adds no retry loop of its
 * own. Around it: graphApplicationJson.ts (Graph's application JSON), graphPasswordPolicy.ts (the
 * password restrictions in force), graphErrors.ts (errors).
 *
 * Permissions (application): `Application.ReadWrite.OwnedBy` (apps the identity owns) or
 * `Application.ReadWrite.All`; `Policy.Read.All` to read app management policies (optional: without
 * it the policy reads as "no restriction known" and addPassword itself reports a policy refusal).
 */
import type { TokenCredential } from '@azure/core-auth';
import { GraphError, type Client } from '@microsoft/microsoft-graph-client';
import { AuthenticationError, ServiceError } from '../errors';
import type {
  ApplicationInfo,
  FederatedCredentialInfo,
  FederatedCredentialsClient,
  GraphApplicationsClient,
  NewCertificateCredential,
  NewPasswordCredential,
  PasswordPolicy,
} from '../remediation/ports';
import {
  APP_SELECT,
  toApplicationInfo,
  toPasswordInfo,
  type GraphApplication,
  type GraphPassword,
} from './graphApplicationJson';
import { allPages, createGraphClient, type GraphClientOptions } from './graphClient';
import { shortMessage, toGraphServiceError } from './graphErrors';
import { addKeyCredential, removeKeyCredential } from './graphKeyCredentials';
import { PasswordPolicyReader } from './graphPasswordPolicy';

/**
 * Reads and changes application passwords through Microsoft Graph v1.0.
 */
export class GraphApplicationsAdapter implements GraphApplicationsClient, FederatedCredentialsClient {
  private readonly client: Client;
  private readonly credential: TokenCredential;
  private readonly scope: string;
  private readonly policies: PasswordPolicyReader;

  constructor(options: GraphClientOptions) {
    this.credential = options.credential;
    this.scope = options.scope;
    this.client = createGraphClient(options);
    this.policies = new PasswordPolicyReader(this.client, options.tenantPolicyTtlMs ?? 0);
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
    let found: FederatedCredentialInfo[];
    try {
      found = await allPages<FederatedCredentialInfo>(
        this.client,
        this.client.api(
          `/applications/${encodeURIComponent(applicationObjectId)}/federatedIdentityCredentials`,
        ),
      );
    } catch (err) {
      throw toGraphServiceError(err, 'Listing federated identity credentials');
    }
    return found.map((f) => ({
      id: f.id,
      name: f.name,
      issuer: f.issuer,
      subject: f.subject,
      audiences: f.audiences ?? [],
      description: f.description ?? null,
    }));
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
    let owners: { id?: string }[];
    try {
      owners = await allPages<{ id?: string }>(
        this.client,
        this.client.api(`/applications/${encodeURIComponent(applicationObjectId)}/owners`).select('id'),
      );
    } catch (err) {
      throw toGraphServiceError(err, 'Reading application owners');
    }
    return owners.flatMap((owner) => (owner.id ? [owner.id] : []));
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

  /** The password restrictions in force for the app (graphPasswordPolicy.ts); never fails. */
  getPasswordPolicy(applicationObjectId: string): Promise<PasswordPolicy> {
    return this.policies.read(applicationObjectId);
  }

  /** Adds a certificate to `keyCredentials`, keeping the others (graphKeyCredentials.ts: why PATCH). */
  addCertificate(applicationObjectId: string, credential: NewCertificateCredential): Promise<void> {
    return addKeyCredential(this.client, applicationObjectId, credential);
  }

  /** Removes one certificate from `keyCredentials`, keeping the others. */
  removeCertificate(applicationObjectId: string, keyId: string): Promise<void> {
    return removeKeyCredential(this.client, applicationObjectId, keyId);
  }
}
