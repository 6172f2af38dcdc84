/** The status page Function handler, invoked directly (`@azure/functions` test mode). */
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { createMemoryRunLedger } from '../../src/clients/runLedger';
import { STATUS_ROLE, createStatusPageHandler, type StatusPageDeps } from '../../src/functions/statusPage';
import { redactor } from '../../src/telemetry';
import { STATUS_NOW, allFindingsConnections, ledgerWithHistory, reportOf } from '../helpers/statusFixtures';

function request(headers: Record<string, string> = {}): HttpRequest {
  return new HttpRequest({ method: 'GET', url: 'https://func.example/api/status', headers });
}

function context(): InvocationContext {
  return new InvocationContext({ functionName: 'statusPage', logHandler: () => undefined });
}

function principal(roles: string[], roleType = 'roles'): string {
  const claims = [
    { typ: 'name', val: 'someone@contoso.example' },
    ...roles.map((val) => ({ typ: roleType, val })),
  ];
  return Buffer.from(
    JSON.stringify({ auth_typ: 'aad', claims, name_typ: 'name', role_typ: roleType }),
  ).toString('base64');
}

function bodyOf(response: HttpResponseInit): string {
  if (typeof response.body !== 'string') throw new Error('expected a string body');
  return response.body;
}

function header(response: HttpResponseInit, name: string): string | null {
  return new Headers(response.headers).get(name);
}

async function call(
  deps: Partial<StatusPageDeps>,
  headers: Record<string, string> = {},
): Promise<HttpResponseInit> {
  const handler = createStatusPageHandler({
    access: () => Promise.resolve({ authEnabled: false, keyOnlyAccess: true }),
    now: () => STATUS_NOW,
    ...deps,
  });
  return handler(request(headers), context());
}

const report = reportOf(allFindingsConnections());

describe('statusPage handler', () => {
  test('200: the page of the latest report and runs, with strict headers', async () => {
    const ledger = await ledgerWithHistory(report);
    const response = await call({ ledger: () => Promise.resolve(ledger) });
    expect(response.status).toBe(200);
    expect(header(response, 'content-type')).toBe('text/html; charset=utf-8');
    expect(header(response, 'content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'");
    expect(header(response, 'x-content-type-options')).toBe('nosniff');
    expect(header(response, 'cache-control')).toBe('no-store');
    const body = bodyOf(response);
    expect(body).toContain('id="needs-a-person"');
    expect(body).toContain('data-ml-workspace');
    expect(body.split('data-testid="run-row"')).toHaveLength(5);
  });

  test('an empty ledger: "No run yet"', async () => {
    const ledger = createMemoryRunLedger();
    const response = await call({ ledger: () => Promise.resolve(ledger) });
    expect(response.status).toBe(200);
    expect(bodyOf(response)).toContain('No run yet');
  });

  test('503 with a readable page when the ledger cannot be read; no secret in it', async () => {
    const secret = 'AccountKey=c2VjcmV0LXN0b3JhZ2Uta2V5LXZhbHVl';
    redactor.register(secret);
    const response = await call({
      ledger: () => Promise.reject(new Error(`This request is not authorized (${secret})`)),
    });
    expect(response.status).toBe(503);
    expect(header(response, 'content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'");
    expect(header(response, 'retry-after')).toBe('60');
    const body = bodyOf(response);
    expect(body).toContain('Status unavailable');
    expect(body).toContain('This request is not authorized');
    expect(body).not.toContain(secret);
  });

  describe('behind App Service Authentication', () => {
    const ledger = createMemoryRunLedger();
    const deps: Partial<StatusPageDeps> = {
      access: () => Promise.resolve({ authEnabled: true, keyOnlyAccess: false }),
      ledger: () => Promise.resolve(ledger),
    };

    test('no signed-in caller: 401', async () => {
      expect((await call(deps)).status).toBe(401);
    });

    test(`a caller without ${STATUS_ROLE}: 403`, async () => {
      const response = await call(deps, { 'x-ms-client-principal': principal(['Something.Else']) });
      expect(response.status).toBe(403);
      expect(bodyOf(response)).toContain(STATUS_ROLE);
    });

    test(`a caller with ${STATUS_ROLE}: 200`, async () => {
      const response = await call(deps, { 'x-ms-client-principal': principal([STATUS_ROLE]) });
      expect(response.status).toBe(200);
    });

    test('Remediation.Operator includes reading: 200', async () => {
      const response = await call(deps, { 'x-ms-client-principal': principal(['Remediation.Operator']) });
      expect(response.status).toBe(200);
    });

    test('an unreadable principal header: 401', async () => {
      const response = await call(deps, { 'x-ms-client-principal': '%%%not-base64-json' });
      expect(response.status).toBe(401);
      expect(header(response, 'content-type')).toBe('text/plain; charset=utf-8');
    });
  });

  test('without App Service Authentication: 401 (fail closed), even with a forged principal holding the role', async () => {
    const ledger = createMemoryRunLedger();
    const deps: Partial<StatusPageDeps> = {
      access: () => Promise.resolve({ authEnabled: false, keyOnlyAccess: false }),
      ledger: () => Promise.resolve(ledger),
    };
    expect((await call(deps)).status).toBe(401);
    const forged = await call(deps, { 'x-ms-client-principal': principal([STATUS_ROLE]) });
    expect(forged.status).toBe(401);
    expect(bodyOf(forged)).toContain('App Service Authentication is not enabled');
  });

  test('key-only access explicitly allowed (unsafe): the function key decides, a presented principal is ignored', async () => {
    const ledger = createMemoryRunLedger();
    const deps = { ledger: () => Promise.resolve(ledger) };
    expect((await call(deps)).status).toBe(200);
    expect((await call(deps, { 'x-ms-client-principal': principal(['Something.Else']) })).status).toBe(200);
  });

  test('invalid app settings: 500 without details', async () => {
    const response = await call({
      access: () => Promise.reject(new Error('REMEDIATION_JITTER_SECONDS is bad')),
    });
    expect(response.status).toBe(500);
    expect(bodyOf(response)).not.toContain('JITTER');
  });
});
