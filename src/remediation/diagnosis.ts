/**
 * Diagnosis (pure): turns what the services say — a connection's `operationStatus.statusMessage`,
 * a TestConnection `errorMessage`, an Entra ID token error, a Graph error — into a cause, whether
 * this service fixes it by itself, and a concrete next step for an operator. One entry per
 * troubleshooting case of `background/`.
 *
 * Entra ID errors are classified by their `AADSTS` number only, never by their wording (Microsoft
 * rewords descriptions; the numbers are stable). Azure DevOps' own messages carry no code, so those
 * are recognised by their text.
 */
import type { Diagnosis, DiagnosisKind } from './report';
import type { ServiceConnection, TestConnectionResult, TokenProbeResult } from './ports';

import { DIAGNOSES } from './diagnosisCatalog';

/** Entra ID errors by AADSTS number. */
const ENTRA_CODES: Record<string, DiagnosisKind> = {
  '7000215': 'invalid-secret',
  '7000222': 'expired-secret',
  '7000216': 'missing-secret',
  '700016': 'app-not-found',
  '7000112': 'app-disabled',
  '7000229': 'service-principal-missing',
  '90002': 'tenant-not-found',
};

/** Azure DevOps / ARM messages without an AADSTS code, in the order they are tried. */
const TEXT_PATTERNS: { pattern: RegExp; kind: DiagnosisKind; code?: string }[] = [
  {
    pattern: /failed to get azure devops service access token|cache value is invalid/i,
    kind: 'access-token-invalid',
  },
  // Before AuthorizationFailed: the creation failure quotes the creator's own AuthorizationFailed
  // (no roleAssignments/write), which says nothing about the service principal's role.
  { pattern: /failed to assign (the )?contributor role/i, kind: 'role-assignment-failed' },
  {
    pattern: /\bAuthorizationFailed\b|does not have authorization to perform action/i,
    kind: 'missing-role-assignment',
    code: 'AuthorizationFailed',
  },
  { pattern: /only guest permission/i, kind: 'guest-permission' },
  { pattern: /(isn'?t|not) authorized to add applications/i, kind: 'not-authorized-to-add-applications' },
  {
    pattern: /failed to obtain an access token|valid refresh token (wasn'?t|was not) found/i,
    kind: 'user-session-expired',
  },
  {
    pattern:
      /subscription (isn'?t|is not) listed|(don'?t|do not) (appear to )?have an active azure subscription/i,
    kind: 'subscription-not-listed',
  },
  { pattern: /resource not authorized/i, kind: 'pipeline-not-authorized' },
  { pattern: /invalid client id or client secret/i, kind: 'invalid-secret' },
];

/** A connection whose app lives in another tenant: the diagnosis names both tenants. */
export function otherTenantDiagnosis(connectionTenantId: string, serviceTenantId: string): Diagnosis {
  return {
    ...diagnosisOf('other-tenant'),
    cause: `The connection's app lives in tenant ${connectionTenantId}; this service manages apps in tenant ${serviceTenantId} (AZURE_TENANT_ID) only, so it cannot read or change the app's credentials.`,
  };
}

/**
 * The service's own token in a configured other tenant failed (AADSTS700016: the multi-tenant app is
 * not consented there; 70021x: no federated credential matches): the diagnosis names the tenant.
 * Never `app-not-found`: the connection's app was not even looked up.
 */
export function tenantAccessDiagnosis(tenantId: string, aadsts: string | undefined): Diagnosis {
  const base = diagnosisOf('tenant-access', aadsts);
  return {
    ...base,
    cause: `The service could not get a token in tenant ${tenantId} (ADDITIONAL_TENANT_IDS) as the multi-tenant app (MULTI_TENANT_APP_CLIENT_ID)${aadsts === 'AADSTS700016' ? ': the app is not consented in that tenant (no service principal there)' : ''}; the connection's app was not read.`,
    nextStep: base.nextStep.replace('{tenant}', tenantId),
  };
}

/** The diagnosis for a known case, by its kind (the engine uses it for failures it detects itself). */
export function diagnosisOf(kind: DiagnosisKind, code?: string): Diagnosis {
  const entry = DIAGNOSES[kind];
  return code === undefined ? { kind, ...entry } : { kind, ...entry, code };
}

/** The first `AADSTS<number>` in a text (`AADSTS7000215`), or undefined. */
export function aadstsCode(text: string | null | undefined): string | undefined {
  const m = /AADSTS(\d+)/.exec(text ?? '');
  return m ? `AADSTS${m[1]}` : undefined;
}

/**
 * Classifies an Entra ID error by its AADSTS number alone (`7000215`, `'AADSTS7000215'`): the
 * known cases of `background/`, else a generic `entra-error` pointing at the error lookup page.
 */
export function diagnoseEntraCode(code: string | number): Diagnosis {
  const digits = String(code).replace(/^AADSTS/i, '');
  const kind = ENTRA_CODES[digits];
  if (kind) return diagnosisOf(kind, `AADSTS${digits}`);
  const generic = diagnosisOf('entra-error', `AADSTS${digits}`);
  return {
    ...generic,
    nextStep: `Look the code up at https://login.microsoftonline.com/error?code=${digits} and fix it in the Entra admin center.`,
  };
}

/** Hides anything shaped like a client secret or a token before a message is quoted. */
function redactSecrets(text: string): string {
  return text
    .replace(/\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[redacted-token]')
    .replace(/[A-Za-z0-9_.~-]{3}\dQ~[A-Za-z0-9_.~-]{20,}/g, '[redacted-secret]');
}

/**
 * Classifies a message from Azure DevOps (`operationStatus.statusMessage`, TestConnection
 * `errorMessage`, a creation error): by AADSTS code when it carries one, else by the known Azure
 * DevOps texts. Undefined for an empty message; `unknown` (quoting a redacted excerpt) otherwise.
 */
export function diagnoseMessage(message: string | null | undefined): Diagnosis | undefined {
  const text = (message ?? '').trim();
  if (text === '') return undefined;
  const code = aadstsCode(text);
  if (code) return diagnoseEntraCode(code);
  for (const p of TEXT_PATTERNS) if (p.pattern.test(text)) return diagnosisOf(p.kind, p.code);
  const excerpt = redactSecrets(text.length > 300 ? `${text.slice(0, 297)}...` : text);
  return { ...diagnosisOf('unknown'), cause: `Unrecognised error from the service: "${excerpt}"` };
}

/** Classifies a failed token probe of a secret (by its AADSTS code); undefined when the probe succeeded. */
export function diagnoseTokenProbe(result: TokenProbeResult): Diagnosis | undefined {
  if (result.ok) return undefined;
  const code = result.aadsts ?? aadstsCode(result.message);
  return code ? diagnoseEntraCode(code) : diagnoseMessage(result.message);
}

/** The error shape adapters throw (`ServiceError`): only the fields diagnosis reads. */
interface ErrorLike {
  message?: string;
  status?: number;
  code?: string;
  service?: string;
}

/**
 * Why Graph refused `addPassword` with a 400, by its error code (never by the message alone):
 * - `CredentialTypeNotAllowedAsPerAppPolicy`: an app management policy forbids new passwords;
 * - `CredentialInvalidLifetimeAsPerAppPolicy`: the requested end date exceeds the policy's cap;
 * - the Microsoft-account limit of 2 passwords: its code is not public (only the message "Not
 *   allowed to add 3 passwords. You can only add a maximum of 2 passwords." is, relayed by the
 *   Azure CLI); recognised as a `Request_BadRequest`/`BadRequest` (or no code) with that message.
 * Undefined for any other answer (an unknown 400 is an error, not a policy).
 */
export function addPasswordRefusal(
  err: ErrorLike,
): 'password-policy' | 'password-lifetime' | 'password-limit' | undefined {
  if (err.status !== 400) return undefined;
  if (err.code === 'CredentialTypeNotAllowedAsPerAppPolicy') return 'password-policy';
  if (err.code === 'CredentialInvalidLifetimeAsPerAppPolicy') return 'password-lifetime';
  const genericCode = err.code === undefined || /^(Request_)?BadRequest$/i.test(err.code);
  if (genericCode && /maximum of \d+ passwords/i.test(err.message ?? '')) return 'password-limit';
  return undefined;
}

/**
 * Classifies an error thrown by an adapter: an AADSTS code (in `code` or the message) goes to the
 * Entra table; Graph codes `Authorization_RequestDenied` (403) and `Request_ResourceNotFound` (404)
 * and throttling (429/503/504) are recognised by code or status; anything else by its message.
 */
export function diagnoseError(err: ErrorLike): Diagnosis {
  const aadsts = aadstsCode(err.code) ?? aadstsCode(err.message);
  if (aadsts) return diagnoseEntraCode(aadsts);
  if (err.code === 'Authorization_RequestDenied' || (err.service === 'graph' && err.status === 403))
    return diagnosisOf('graph-permission-denied', err.code ?? 'HTTP 403');
  if (err.service === 'azure-devops' && err.status === 403)
    return diagnosisOf('devops-permission-denied', err.code ?? 'HTTP 403');
  if (err.service === 'key-vault' && err.status === 403)
    return diagnosisOf('key-vault-permission-denied', err.code ?? 'HTTP 403');
  const refusal = err.service === 'graph' ? addPasswordRefusal(err) : undefined;
  if (refusal) return diagnosisOf(refusal, err.code ?? 'HTTP 400');
  if (err.code === 'Request_ResourceNotFound' || (err.service === 'graph' && err.status === 404))
    return diagnosisOf('app-not-found', err.code ?? 'HTTP 404');
  if (err.code === 'TooManyRequests' || err.status === 429 || err.status === 503 || err.status === 504)
    return diagnosisOf('throttled', err.code ?? `HTTP ${err.status ?? 429}`);
  const fromText = diagnoseMessage(err.message);
  if (fromText && fromText.kind !== 'unknown') return err.code ? { ...fromText, code: err.code } : fromText;
  const base = fromText ?? diagnosisOf('unknown');
  return err.code || err.status !== undefined ? { ...base, code: err.code ?? `HTTP ${err.status}` } : base;
}

/**
 * Whether the connection carries the `accesstoken` parameter with a null or empty value — the UI
 * bug that breaks a connection ("cache value is invalid"). A non-empty value is left alone.
 */
export function hasBrokenAccessToken(connection: Pick<ServiceConnection, 'authorization'>): boolean {
  return Object.entries(connection.authorization.parameters).some(
    ([key, value]) =>
      key.toLowerCase() === 'accesstoken' && (value === null || value === undefined || value.trim() === ''),
  );
}

/**
 * The single most useful diagnosis of a connection, or undefined when nothing is wrong: a failed
 * TestConnection (freshest) or the `operationStatus` message when recognised; otherwise the broken
 * `accesstoken`; otherwise an operation still in progress; otherwise, for a connection that is not
 * ready, `unknown` (quoting what the service said, if anything).
 */
export function diagnoseConnection(
  connection: Pick<ServiceConnection, 'authorization' | 'isReady' | 'operationStatus'>,
  test?: TestConnectionResult,
): Diagnosis | undefined {
  const fromTest =
    test && !test.ok ? (diagnoseMessage(test.errorMessage) ?? testStatusDiagnosis(test)) : undefined;
  // A ready connection's status message is history; it only counts while the connection is broken.
  const failed = !connection.isReady || connection.operationStatus?.state?.toLowerCase() === 'failed';
  const fromStatus = failed ? diagnoseMessage(connection.operationStatus?.statusMessage) : undefined;
  const known = [fromTest, fromStatus].find((d) => d !== undefined && d.kind !== 'unknown');
  if (known) return known;
  if (hasBrokenAccessToken(connection)) return diagnosisOf('access-token-invalid');
  if (connection.operationStatus?.state?.toLowerCase() === 'inprogress')
    return diagnosisOf('operation-in-progress');
  if (fromTest) return fromTest;
  if (!connection.isReady) return fromStatus ?? diagnosisOf('unknown');
  return undefined;
}

function testStatusDiagnosis(test: TestConnectionResult): Diagnosis {
  return {
    ...diagnosisOf('unknown'),
    code: test.statusCode || undefined,
    cause: `Verify failed with status '${test.statusCode}' and no message.`,
  };
}
