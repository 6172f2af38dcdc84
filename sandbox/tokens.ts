/**
 * Access tokens of the simulated Entra ID: JWT-shaped, HMAC-signed with a per-sandbox key, bound to
 * the calling app and one audience, so Graph, Azure DevOps and Key Vault can check who calls and for what.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { GraphPermission, TenantState } from './model';

export const AUDIENCES = {
  graph: 'https://graph.microsoft.com',
  devops: '499b84ac-1321-427f-aa17-267ca6975798',
  keyvault: 'https://vault.azure.net',
  arm: 'https://management.azure.com/',
  /** A managed identity's token for this audience is another app's client assertion (federated credential). */
  tokenExchange: 'api://AzureADTokenExchange',
} as const;

export interface TokenClaims {
  aud: string;
  iss: string;
  tid: string;
  appid: string;
  oid: string;
  idtyp: 'app';
  roles: GraphPermission[];
  iat: number;
  nbf: number;
  exp: number;
  /** Subject: the principal's object id (set on tokens meant as client assertions). */
  sub?: string;
  /** Identity key in the sandbox (an identity's key, or `app:<appId>` for a connection's app). */
  sbx: string;
}

type BearerCheck =
  | { ok: true; claims: TokenClaims }
  | {
      ok: false;
      reason: 'missing' | 'malformed' | 'signature' | 'expired' | 'audience' | 'tenant';
      message: string;
    };

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

export class TokenIssuer {
  private readonly key = randomBytes(32);
  /** Tokens whose signature was checked (a client sends the same token many times); bounded. */
  private readonly verified = new Map<string, TokenClaims>();

  constructor(private readonly state: TenantState) {}

  /**
   * Issues a token; `tid` (default the home tenant) for a token of another tenant. A token for the
   * token-exchange audience carries the v2.0 issuer and `sub` = the principal's object id: what a
   * federated identity credential trusting a managed identity matches (Learn, "Configure an
   * application to trust a managed identity": issuer `https://login.microsoftonline.com/{tenant}/v2.0`,
   * subject the identity's object id).
   */
  issue(
    claims: Omit<TokenClaims, 'iat' | 'nbf' | 'exp' | 'iss' | 'tid'> & { tid?: string },
    lifetimeSeconds = 3599,
  ): string {
    const now = Math.floor(this.state.now().getTime() / 1000);
    const tid = claims.tid ?? this.state.tenantId;
    const exchange = claims.aud === AUDIENCES.tokenExchange;
    const full: TokenClaims = {
      ...claims,
      ...(exchange ? { sub: claims.oid } : {}),
      iss: exchange ? `https://login.microsoftonline.com/${tid}/v2.0` : `https://sts.windows.net/${tid}/`,
      tid,
      iat: now,
      nbf: now - 300,
      exp: now + lifetimeSeconds,
    };
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = b64url(JSON.stringify(full));
    const signature = createHmac('sha256', this.key).update(`${header}.${payload}`).digest('base64url');
    return `${header}.${payload}.${signature}`;
  }

  /** Checks an `Authorization: Bearer …` header for one audience. */
  verifyBearer(authorization: string | undefined, audience: string, anyKnownTenant = false): BearerCheck {
    if (!authorization || !/^Bearer\s+/i.test(authorization))
      return { ok: false, reason: 'missing', message: 'Bearer token missing.' };
    const token = authorization.replace(/^Bearer\s+/i, '').trim();
    const known = this.verified.get(token);
    if (known) return this.checkClaims(known, audience, anyKnownTenant);
    const parts = token.split('.');
    if (parts.length !== 3) return { ok: false, reason: 'malformed', message: 'Malformed token.' };
    const [header, payload, signature] = parts as [string, string, string];
    const expected = createHmac('sha256', this.key).update(`${header}.${payload}`).digest();
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return { ok: false, reason: 'signature', message: 'Invalid token signature.' };
    let claims: TokenClaims;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    } catch {
      return { ok: false, reason: 'malformed', message: 'Malformed token.' };
    }
    if (this.verified.size >= 1000) this.verified.clear();
    this.verified.set(token, claims);
    return this.checkClaims(claims, audience, anyKnownTenant);
  }

  /** Lifetime, tenant and audience: checked on every use, whether the signature was checked before or not. */
  private checkClaims(claims: TokenClaims, audience: string, anyKnownTenant: boolean): BearerCheck {
    const now = Math.floor(this.state.now().getTime() / 1000);
    if (claims.exp <= now)
      return { ok: false, reason: 'expired', message: 'Lifetime validation failed, the token is expired.' };
    // Graph is one service for every tenant (`anyKnownTenant`); Azure DevOps and Key Vault are the home tenant's.
    const knownTenant = anyKnownTenant && this.state.otherTenants.has(claims.tid.toLowerCase());
    if (claims.tid !== this.state.tenantId && !knownTenant)
      return { ok: false, reason: 'tenant', message: 'Token issued for another tenant.' };
    if (claims.aud !== audience && claims.aud !== `${audience}/`)
      return { ok: false, reason: 'audience', message: `Invalid audience '${claims.aud}'.` };
    return { ok: true, claims };
  }
}
