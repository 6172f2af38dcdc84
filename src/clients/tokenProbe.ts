/**
 * Tries a client secret against Entra ID: does it get a token (yet)? One client-credentials token
 * request (`POST {authority}/{tenant}/oauth2/v2.0/token`, exactly what MSAL sends), through one
 * shared pipeline: no MSAL application and no metadata request per probe, and the TLS connection to
 * Entra ID is reused. Entra ID's 429 and 5xx are retried by the pipeline (Retry-After honoured).
 * Failures are classified by the `AADSTS<code>` of the answer (7000215 invalid or not yet replicated,
 * 7000222 expired, 700016 app not found, 7000112 app disabled), never by wording.
 */
import {
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineFromOptions,
  createPipelineRequest,
  type HttpClient,
  type Pipeline,
} from '@azure/core-rest-pipeline';
import { constants, createHash, createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import type { TokenProbe, TokenProbeResult } from '../remediation/ports';

/** Entra ID hosts of the public and national clouds: MSAL's instance discovery knows them. */
const PUBLIC_ENTRA_HOSTS = new Set([
  'login.microsoftonline.com',
  'login.microsoft.com',
  'login.windows.net',
  'sts.windows.net',
  'login.microsoftonline.us',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
  'login.microsoftonline.de',
]);

interface TokenProbeOptions {
  /** AZURE_AUTHORITY_HOST; default the public cloud. */
  authorityHost?: string;
  /** Resource to ask a token for; default Azure Resource Manager, what a service connection uses. */
  scope?: string;
}

/** True for hosts MSAL's instance discovery (hard-wired to login.microsoftonline.com) can vouch for. */
export function isPublicEntraHost(authorityHost: string): boolean {
  try {
    return PUBLIC_ENTRA_HOSTS.has(new URL(authorityHost).hostname.toLowerCase());
  } catch {
    return false;
  }
}

/** The `AADSTS…: description` line, without trace ids; the secret is cut out should it ever appear. */
function describe(message: string, secret: string): string {
  const redacted = secret ? message.split(secret).join('[REDACTED]') : message;
  const line = /AADSTS\d+:[^\r\n]*/.exec(redacted)?.[0] ?? redacted.split(/\r?\n/)[0] ?? '';
  return (line.replace(/\s*Trace ID:.*$/, '').trim() || 'Token request failed.').slice(0, 500);
}

/** A client assertion signed with the PEM's private key for its (first) certificate, valid ten minutes. */
function clientAssertion(pem: string, appId: string, audience: string): string {
  const certificate = new X509Certificate(pem);
  const now = Math.floor(Date.now() / 1000);
  const encode = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = encode({
    alg: 'PS256',
    typ: 'JWT',
    'x5t#S256': createHash('sha256').update(certificate.raw).digest('base64url'),
  });
  const payload = encode({
    aud: audience,
    iss: appId,
    sub: appId,
    jti: randomUUID(),
    nbf: now,
    exp: now + 600,
  });
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), {
    key: createPrivateKey(pem),
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  });
  return `${header}.${payload}.${signature.toString('base64url')}`;
}

/** A tenant id or verified domain: the only thing put in the token URL's path. */
const TENANT = /^[0-9A-Za-z][0-9A-Za-z.-]{0,254}$/;

export class EntraTokenProbe implements TokenProbe {
  private readonly authorityHost: string;
  private readonly scope: string;
  private readonly pipeline: Pipeline;
  private readonly httpClient: HttpClient;

  constructor(options: TokenProbeOptions = {}) {
    this.authorityHost = (options.authorityHost ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
    this.scope = options.scope ?? 'https://management.azure.com/.default';
    this.pipeline = createPipelineFromOptions({
      retryOptions: { maxRetries: 3 },
      userAgentOptions: { userAgentPrefix: 'sc-remediator' },
    });
    this.httpClient = createDefaultHttpClient();
  }

  async tryClientSecret(tenantId: string, appId: string, secret: string): Promise<TokenProbeResult> {
    return this.tryToken(tenantId, { client_id: appId, client_secret: secret }, secret);
  }

  /**
   * Tries a certificate: a client assertion (RFC 7523) signed with its private key, in the shape
   * MSAL sends (Learn, "Microsoft identity platform certificate credentials": header `alg` PS256
   * with `x5t#S256`, claims `aud` = the token endpoint, `iss` = `sub` = the client id, `jti`,
   * `nbf`, `exp`). Written here rather than through MSAL for the reason the secret probe is: one
   * request per probe, no application object and metadata request each time.
   */
  async tryClientCertificate(tenantId: string, appId: string, pem: string): Promise<TokenProbeResult> {
    let assertion: string;
    try {
      assertion = clientAssertion(pem, appId, `${this.authorityHost}/${tenantId}/oauth2/v2.0/token`);
    } catch {
      return { ok: false, message: 'The certificate could not be read (PEM with its private key expected).' };
    }
    return this.tryToken(
      tenantId,
      {
        client_id: appId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      },
      pem,
    );
  }

  private async tryToken(
    tenantId: string,
    credential: Record<string, string>,
    secret: string,
  ): Promise<TokenProbeResult> {
    if (!TENANT.test(tenantId))
      return { ok: false, message: 'The connection names no valid tenant id; no token was requested.' };
    try {
      const response = await this.pipeline.sendRequest(
        this.httpClient,
        createPipelineRequest({
          url: `${this.authorityHost}/${tenantId}/oauth2/v2.0/token`,
          method: 'POST',
          headers: createHttpHeaders({
            'Content-Type': 'application/x-www-form-urlencoded',
            Accept: 'application/json',
          }),
          body: new URLSearchParams({
            ...credential,
            scope: this.scope,
            grant_type: 'client_credentials',
          }).toString(),
        }),
      );
      let body: { access_token?: unknown; error_description?: unknown; error_codes?: unknown } = {};
      try {
        body = JSON.parse(response.bodyAsText ?? '{}') as typeof body;
      } catch {
        // not JSON: classified by status below
      }
      if (response.status === 200 && typeof body.access_token === 'string') return { ok: true };
      const description =
        typeof body.error_description === 'string'
          ? body.error_description
          : `Entra ID answered ${response.status}.`;
      const code = Array.isArray(body.error_codes) ? (body.error_codes as unknown[])[0] : undefined;
      const aadsts = typeof code === 'number' ? String(code) : /AADSTS(\d+)/.exec(description)?.[1];
      const result: TokenProbeResult = { ok: false, message: describe(description, secret) };
      if (aadsts) result.aadsts = aadsts;
      return result;
    } catch (err) {
      // No answer (after the pipeline's retries): nothing to classify.
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, message: describe(message, secret) };
    }
  }
}
