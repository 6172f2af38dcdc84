import {
  addPasswordRefusal,
  aadstsCode,
  diagnoseConnection,
  diagnoseEntraCode,
  diagnoseError,
  diagnoseMessage,
  diagnoseTokenProbe,
  diagnosisOf,
  hasBrokenAccessToken,
} from '../../src/remediation/diagnosis';
import type { DiagnosisKind } from '../../src/remediation/report';
import { connection, withParams } from '../helpers/remediationFixtures';

const JWT_PREFIX =
  'Failed to obtain the Json Web Token(JWT) using service principal client ID. Exception message:';

describe('diagnoseMessage: one entry per troubleshooting case', () => {
  it.each<[string, string, DiagnosisKind, string | undefined, boolean]>([
    [
      'AADSTS7000215 invalid secret',
      `${JWT_PREFIX} AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.`,
      'invalid-secret',
      'AADSTS7000215',
      true,
    ],
    [
      'AADSTS7000222 expired',
      "AADSTS7000222: The provided client secret keys for app '***' are expired.",
      'expired-secret',
      'AADSTS7000222',
      true,
    ],
    [
      'AADSTS700016 app not found',
      `${JWT_PREFIX} AADSTS700016: Application with identifier 'x' was not found in the directory 'contoso'.`,
      'app-not-found',
      'AADSTS700016',
      false,
    ],
    [
      'AADSTS7000112 app disabled',
      `${JWT_PREFIX} AADSTS7000112: Application is disabled.`,
      'app-disabled',
      'AADSTS7000112',
      false,
    ],
    [
      'AADSTS7000216 no secret',
      "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
      'missing-secret',
      'AADSTS7000216',
      true,
    ],
    [
      'accesstoken null',
      'Failed to get Azure DevOps Service access token, cache value is invalid.',
      'access-token-invalid',
      undefined,
      true,
    ],
    [
      'AuthorizationFailed on Verify',
      `Failed to query service connection API: 'https://management.azure.com/subscriptions/x?api-version=2016-06-01'. Status Code: 'Forbidden', Response from server: '{"error":{"code":"AuthorizationFailed","message":"The client 'a' with object id 'b' does not have authorization to perform action 'Microsoft.Resources/subscriptions/read' over scope '/subscriptions/x'."}}'`,
      'missing-role-assignment',
      'AuthorizationFailed',
      false,
    ],
    [
      'AuthorizationFailed in a pipeline',
      "AuthorizationFailed: The client 'c' with object id 'o' does not have authorization to perform action 'Microsoft.Web/sites/write' over scope '/subscriptions/s/rg'",
      'missing-role-assignment',
      'AuthorizationFailed',
      false,
    ],
    [
      'Failed to assign Contributor role',
      'Failed to assign Contributor role',
      'role-assignment-failed',
      undefined,
      false,
    ],
    [
      "Failed to assign Contributor role, quoting the creator's AuthorizationFailed",
      "Failed to assign Contributor role to the service principal on subscription 'Web' (s). Error code: Forbidden, inner error code: AuthorizationFailed, inner error message: The client 'alice@contoso.onmicrosoft.com' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '/subscriptions/s' or the scope is invalid.",
      'role-assignment-failed',
      undefined,
      false,
    ],
    [
      'guest-only permission',
      'The user has only guest permission in the directory',
      'guest-permission',
      undefined,
      false,
    ],
    [
      'not authorized to add applications',
      "The user isn't authorized to add applications in the directory",
      'not-authorized-to-add-applications',
      undefined,
      false,
    ],
    [
      'session expired (access token)',
      'Failed to obtain an access token',
      'user-session-expired',
      undefined,
      false,
    ],
    [
      'session expired (refresh token)',
      "A valid refresh token wasn't found",
      'user-session-expired',
      undefined,
      false,
    ],
    [
      'subscription not listed',
      "You don't appear to have an active Azure subscription",
      'subscription-not-listed',
      undefined,
      false,
    ],
    [
      "subscription isn't listed",
      "Subscription isn't listed when creating a service connection",
      'subscription-not-listed',
      undefined,
      false,
    ],
    [
      'pipeline not authorized',
      'Resource not authorized. You need to authorize the resource before it can be used.',
      'pipeline-not-authorized',
      undefined,
      false,
    ],
    [
      'Invalid client id or client secret',
      'Invalid client id or client secret',
      'invalid-secret',
      undefined,
      true,
    ],
    [
      'AADSTS7000229 no service principal',
      'AADSTS7000229: missing service principal',
      'service-principal-missing',
      'AADSTS7000229',
      false,
    ],
    [
      'AADSTS90002 tenant not found',
      "AADSTS90002: Tenant 'x' not found.",
      'tenant-not-found',
      'AADSTS90002',
      false,
    ],
  ])('%s', (_label, message, kind, code, fixable) => {
    const d = diagnoseMessage(message);
    expect(d).toMatchObject({ kind, fixableByService: fixable });
    expect(d?.code).toBe(code);
    expect(d?.cause.length).toBeGreaterThan(20);
    expect(d?.nextStep.length).toBeGreaterThan(40);
  });

  it('classifies Entra errors by code, never by wording', () => {
    // The wording says "expired", the code says invalid secret: the code wins.
    expect(diagnoseMessage('AADSTS7000215: the secret has expired and the app is disabled')?.kind).toBe(
      'invalid-secret',
    );
    // Wording of a known case without its code is not an Entra classification.
    expect(diagnoseMessage('The provided client secret keys are expired')?.kind).toBe('unknown');
    // A code inside a longer wrapper (MSAL's "Error(s): … Description: AADSTS…").
    expect(
      diagnoseMessage('Error(s): 7000222 - Timestamp: x - Description: AADSTS7000222: whatever')?.kind,
    ).toBe('expired-secret');
  });

  it('gives an unknown AADSTS code a lookup link', () => {
    const d = diagnoseMessage('AADSTS50126: Error validating credentials');
    expect(d).toMatchObject({ kind: 'entra-error', code: 'AADSTS50126', fixableByService: false });
    expect(d?.nextStep).toContain('https://login.microsoftonline.com/error?code=50126');
  });

  it.each([[''], ['   '], [null], [undefined]])('has nothing to say about %p', (message) => {
    expect(diagnoseMessage(message)).toBeUndefined();
  });

  it('quotes an unrecognised message, with secrets and tokens redacted', () => {
    const d = diagnoseMessage(
      'Something odd: secret Qx98Q~abcdefghijklmnopqrstuvwxyz012 token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig',
    );
    expect(d?.kind).toBe('unknown');
    expect(d?.cause).toContain('Something odd');
    expect(d?.cause).not.toContain('Qx98Q~abcdefghijklmnopqrstuvwxyz012');
    expect(d?.cause).not.toContain('eyJhbGciOiJIUzI1NiJ9');
  });

  it('shortens a long unrecognised message', () => {
    expect(diagnoseMessage('x'.repeat(2000))!.cause.length).toBeLessThan(400);
  });
});

describe('aadstsCode / diagnoseEntraCode', () => {
  it.each([
    ['AADSTS7000215: x', 'AADSTS7000215'],
    ['prefix AADSTS700016: y AADSTS7000112', 'AADSTS700016'],
    ['no code', undefined],
    [null, undefined],
  ])('aadstsCode(%p) = %p', (text, code) => {
    expect(aadstsCode(text)).toBe(code);
  });

  it.each([
    [7000215, 'invalid-secret'],
    ['7000222', 'expired-secret'],
    ['AADSTS700016', 'app-not-found'],
    ['aadsts7000112', 'app-disabled'],
    [12345, 'entra-error'],
  ])('diagnoseEntraCode(%p) → %s', (code, kind) => {
    expect(diagnoseEntraCode(code).kind).toBe(kind);
  });
});

describe('diagnoseTokenProbe', () => {
  it.each([
    [{ ok: false as const, aadsts: '7000215', message: 'whatever' }, 'invalid-secret'],
    [{ ok: false as const, aadsts: 'AADSTS7000222', message: 'whatever' }, 'expired-secret'],
    [{ ok: false as const, message: 'AuthenticationRequiredError: AADSTS700016: nope' }, 'app-not-found'],
    [{ ok: false as const, message: 'socket hang up' }, 'unknown'],
  ])('%p → %s', (probe, kind) => {
    expect(diagnoseTokenProbe(probe)?.kind).toBe(kind);
  });

  it('is undefined for a working secret', () => {
    expect(diagnoseTokenProbe({ ok: true })).toBeUndefined();
  });
});

describe('diagnoseError (adapter errors)', () => {
  it.each([
    [
      {
        service: 'graph',
        status: 403,
        code: 'Authorization_RequestDenied',
        message: 'Insufficient privileges',
      },
      'graph-permission-denied',
      'Authorization_RequestDenied',
    ],
    [{ service: 'graph', status: 403, message: 'Forbidden' }, 'graph-permission-denied', 'HTTP 403'],
    [
      { service: 'graph', status: 404, code: 'Request_ResourceNotFound' },
      'app-not-found',
      'Request_ResourceNotFound',
    ],
    [{ service: 'graph', status: 429, code: 'TooManyRequests' }, 'throttled', 'TooManyRequests'],
    [{ service: 'azure-devops', status: 503 }, 'throttled', 'HTTP 503'],
    [{ service: 'entra-id', code: 'AADSTS7000222', message: 'expired' }, 'expired-secret', 'AADSTS7000222'],
    [{ service: 'entra-id', message: 'AADSTS7000112: disabled' }, 'app-disabled', 'AADSTS7000112'],
    [{ service: 'azure-devops', status: 400, code: 'X', message: 'weird' }, 'unknown', 'X'],
  ])('%p → %s', (err, kind, code) => {
    expect(diagnoseError(err)).toMatchObject({ kind, code });
  });
});

describe('addPasswordRefusal: 400s from addPassword told apart by code', () => {
  const limitMessage = 'Not allowed to add 3 passwords. You can only add a maximum of 2 passwords.';
  it.each<[string, { status?: number; code?: string; message?: string }, string | undefined]>([
    [
      'policy forbids passwords',
      { status: 400, code: 'CredentialTypeNotAllowedAsPerAppPolicy' },
      'password-policy',
    ],
    [
      'lifetime over the cap',
      { status: 400, code: 'CredentialInvalidLifetimeAsPerAppPolicy' },
      'password-lifetime',
    ],
    [
      'personal-account cap (code not public)',
      { status: 400, code: 'Request_BadRequest', message: limitMessage },
      'password-limit',
    ],
    ['personal-account cap without a code', { status: 400, message: limitMessage }, 'password-limit'],
    [
      'an unknown 400',
      { status: 400, code: 'Request_BadRequest', message: 'Invalid value specified' },
      undefined,
    ],
    [
      'an unknown code quoting the limit text',
      { status: 400, code: 'SomethingElse', message: limitMessage },
      undefined,
    ],
    [
      'a policy code on another status',
      { status: 403, code: 'CredentialTypeNotAllowedAsPerAppPolicy' },
      undefined,
    ],
    ['no status', { code: 'CredentialTypeNotAllowedAsPerAppPolicy' }, undefined],
  ])('%s → %s', (_label, err, kind) => {
    expect(addPasswordRefusal(err)).toBe(kind);
    const d = diagnoseError({ ...err, service: 'graph' });
    if (kind) expect(d).toMatchObject({ kind, fixableByService: false });
    else expect(d.kind).not.toMatch(/^password-/);
  });
});

describe('diagnoseConnection', () => {
  it('is undefined for a ready connection', () => {
    expect(diagnoseConnection(connection())).toBeUndefined();
  });

  it('ignores a stale status message on a ready connection', () => {
    expect(
      diagnoseConnection(
        connection({ operationStatus: { state: 'Ready', statusMessage: 'AADSTS7000222: old' } }),
      ),
    ).toBeUndefined();
  });

  it.each<
    [
      string,
      Parameters<typeof diagnoseConnection>[0],
      Parameters<typeof diagnoseConnection>[1],
      DiagnosisKind,
    ]
  >([
    ['accesstoken null', withParams({ accesstoken: null }), undefined, 'access-token-invalid'],
    ["accesstoken ''", withParams({ accesstoken: '' }), undefined, 'access-token-invalid'],
    [
      'failed with AADSTS7000222',
      connection({
        isReady: false,
        operationStatus: { state: 'Failed', statusMessage: 'AADSTS7000222: expired' },
      }),
      undefined,
      'expired-secret',
    ],
    [
      'TestConnection beats the status message',
      connection({
        isReady: false,
        operationStatus: { state: 'Failed', statusMessage: 'AADSTS7000222: expired' },
      }),
      { ok: false, statusCode: 'unauthorized', errorMessage: 'AADSTS7000215: invalid' },
      'invalid-secret',
    ],
    [
      'a failed Verify on a ready connection',
      connection(),
      { ok: false, statusCode: 'forbidden', errorMessage: '{"error":{"code":"AuthorizationFailed"}}' },
      'missing-role-assignment',
    ],
    [
      'a recognised message beats the accesstoken',
      withParams(
        { accesstoken: null },
        { isReady: false, operationStatus: { state: 'Failed', statusMessage: 'AADSTS7000112: disabled' } },
      ),
      undefined,
      'app-disabled',
    ],
    [
      'accesstoken beats an unrecognised message',
      withParams(
        { accesstoken: null },
        { isReady: false, operationStatus: { state: 'Failed', statusMessage: 'boom' } },
      ),
      undefined,
      'access-token-invalid',
    ],
    [
      'in progress',
      connection({ isReady: false, operationStatus: { state: 'InProgress', statusMessage: '' } }),
      undefined,
      'operation-in-progress',
    ],
    [
      'failed without a message',
      connection({ isReady: false, operationStatus: { state: 'Failed', statusMessage: '' } }),
      undefined,
      'unknown',
    ],
    [
      'failed with no operationStatus',
      connection({ isReady: false, operationStatus: null }),
      undefined,
      'unknown',
    ],
    [
      'a failed Verify without a message',
      connection(),
      { ok: false, statusCode: 'unauthorized', errorMessage: '' },
      'unknown',
    ],
  ])('%s', (_label, c, test, kind) => {
    expect(diagnoseConnection(c, test)?.kind).toBe(kind);
  });

  it('a successful Verify adds nothing', () => {
    expect(
      diagnoseConnection(connection(), { ok: true, statusCode: 'ok', errorMessage: '' }),
    ).toBeUndefined();
  });
});

describe('hasBrokenAccessToken', () => {
  it.each([
    [{ accesstoken: null }, true],
    [{ accesstoken: '' }, true],
    [{ accesstoken: '  ' }, true],
    [{ AccessToken: null }, true],
    [{ accesstoken: '9a0e7f8c-0000-4000-8000-000000000000' }, false],
    [{}, false],
  ])('%p → %s', (params, broken) => {
    expect(hasBrokenAccessToken(withParams(params))).toBe(broken);
  });
});

describe('diagnosisOf', () => {
  it('gives every kind a cause and a next step', () => {
    const kinds: DiagnosisKind[] = [
      'invalid-secret',
      'expired-secret',
      'missing-secret',
      'app-not-found',
      'app-disabled',
      'service-principal-missing',
      'tenant-not-found',
      'access-token-invalid',
      'missing-role-assignment',
      'role-assignment-failed',
      'guest-permission',
      'not-authorized-to-add-applications',
      'user-session-expired',
      'subscription-not-listed',
      'pipeline-not-authorized',
      'graph-permission-denied',
      'password-policy',
      'throttled',
      'operation-in-progress',
      'entra-error',
      'unknown',
    ];
    for (const kind of kinds) {
      const d = diagnosisOf(kind);
      expect(d.kind).toBe(kind);
      expect(d.cause).not.toBe('');
      expect(d.nextStep).not.toBe('');
    }
    expect(diagnosisOf('app-disabled', 'AADSTS7000112').code).toBe('AADSTS7000112');
  });
});
