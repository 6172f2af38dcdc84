/**
 * Tries a client secret against Entra ID: does it get a token (yet)? A new `ClientSecretCredential`
 * per call, because credentials cache tokens per instance and each probe is about one secret.
 * Failures are classified by the `AADSTS<code>` in the message (7000215 invalid or not yet
 * replicated, 7000222 expired, 700016 app not found, 7000112 app disabled), never by class name.
 */
import { ClientSecretCredential } from '@azure/identity';
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

export interface TokenProbeOptions {
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

export class EntraTokenProbe implements TokenProbe {
  private readonly authorityHost: string;
  private readonly scope: string;

  constructor(options: TokenProbeOptions = {}) {
    this.authorityHost = options.authorityHost ?? 'https://login.microsoftonline.com';
    this.scope = options.scope ?? 'https://management.azure.com/.default';
  }

  async tryClientSecret(tenantId: string, appId: string, secret: string): Promise<TokenProbeResult> {
    try {
      const credential = new ClientSecretCredential(tenantId, appId, secret, {
        authorityHost: this.authorityHost,
        // Instance discovery always asks login.microsoftonline.com; a private authority must skip it.
        disableInstanceDiscovery: !isPublicEntraHost(this.authorityHost),
      });
      await credential.getToken(this.scope);
      return { ok: true };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const aadsts = /AADSTS(\d+)/.exec(message)?.[1];
      const result: TokenProbeResult = { ok: false, message: describe(message, secret) };
      if (aadsts) result.aadsts = aadsts;
      return result;
    }
  }
}
