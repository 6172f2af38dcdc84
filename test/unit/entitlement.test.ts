/**
 * The entitlement rule (DESIGN invariant 8), pure parts: what a TestConnection answer proves, which
 * plans need entitlement, what a binding and an approval cover, and the gate that turns a plan into
 * a report; then `establishEntitlement` with plain-object ports (which evidence it reads, in order).
 */
import { assess } from '../../src/remediation/assess';
import {
  approvalFor,
  bindingMatches,
  establishEntitlement,
  gateEntitlement,
  needsEntitlement,
  NOT_BOUND,
  proofFromTest,
  recordProves,
} from '../../src/remediation/entitlement';
import { plan } from '../../src/remediation/plan';
import { parsePolicy } from '../../src/remediation/policyFile';
import type {
  Binding,
  BindingStore,
  RotationRecord,
  TestConnectionResult,
} from '../../src/remediation/ports';
import {
  app,
  APP_ID,
  connection,
  CONNECTION_ID,
  NOW,
  ORG_URL,
  password,
  record,
  TENANT_ID,
} from '../helpers/remediationFixtures';

const OTHER_APP = '55555555-5555-4555-8555-555555555555';
const failed = (errorMessage: string): TestConnectionResult => ({
  ok: false,
  statusCode: 'unauthorized',
  errorMessage,
});
const JWT = 'Failed to obtain the Json Web Token(JWT) using service principal client ID. Exception Message: ';

describe('proofFromTest', () => {
  test.each([
    ['success', { ok: true, statusCode: 'ok', errorMessage: '' }, 'proof:test-connection-ok'],
    [
      'AADSTS7000222 for this app',
      failed(`${JWT}AADSTS7000222: The provided client secret keys for app '${APP_ID}' are expired.`),
      'proof:expired-secret-7000222',
    ],
    [
      'AADSTS7000222 without an app named',
      failed(`${JWT}AADSTS7000222: keys are expired.`),
      'proof:expired-secret-7000222',
    ],
    [
      'AADSTS7000222 naming another app',
      failed(`${JWT}AADSTS7000222: The provided client secret keys for app '${OTHER_APP}' are expired.`),
      undefined,
    ],
    [
      'AADSTS7000215 invalid secret',
      failed(`${JWT}AADSTS7000215: Invalid client secret provided.`),
      undefined,
    ],
    ['AADSTS700016 no such app', failed(`${JWT}AADSTS700016: Application not found.`), undefined],
    ['AADSTS7000112 disabled', failed(`${JWT}AADSTS7000112: Application is disabled.`), undefined],
    ['two codes', failed(`${JWT}AADSTS7000222 then AADSTS7000215`), undefined],
    ['no code', failed('The remote name could not be resolved'), undefined],
    ['no answer', undefined, undefined],
  ] as const)('%s', (_name, test, expected) => {
    expect(proofFromTest(test, APP_ID)).toBe(expected);
  });
});

describe('what a record, a binding and an approval cover', () => {
  test('a verified or completed rotation of the same app in this connection', () => {
    expect(recordProves(record({ phase: 'verified' }), CONNECTION_ID, APP_ID)).toBe(true);
    expect(recordProves(record({ phase: 'completed' }), CONNECTION_ID, APP_ID.toUpperCase())).toBe(true);
    for (const phase of ['created', 'applied'] as const)
      expect(recordProves(record({ phase }), CONNECTION_ID, APP_ID)).toBe(false);
    expect(recordProves(record({ phase: 'completed' }), CONNECTION_ID, OTHER_APP)).toBe(false);
    expect(recordProves(undefined, CONNECTION_ID, APP_ID)).toBe(false);
  });

  test('a binding counts for its connection, organization, app and tenant only', () => {
    const b: Binding = {
      connectionId: CONNECTION_ID,
      organization: `${ORG_URL}/`,
      appId: APP_ID,
      tenantId: TENANT_ID,
      how: 'approved:cli:ann',
      at: NOW.toISOString(),
    };
    const subject = {
      organizationUrl: ORG_URL,
      connectionId: CONNECTION_ID,
      appId: APP_ID,
      tenantId: TENANT_ID,
    };
    expect(bindingMatches(b, subject)).toBe(true);
    expect(bindingMatches(b, { ...subject, appId: OTHER_APP })).toBe(false);
    expect(bindingMatches(b, { ...subject, tenantId: OTHER_APP })).toBe(false);
    expect(bindingMatches(b, { ...subject, organizationUrl: 'https://dev.azure.com/fabrikam' })).toBe(false);
    expect(bindingMatches(b, { ...subject, connectionId: OTHER_APP })).toBe(false);
    expect(bindingMatches(undefined, subject)).toBe(false);
  });

  test('an approval names both ids exactly; the organization when given', () => {
    const subject = {
      organization: 'contoso',
      organizationUrl: ORG_URL,
      connectionId: CONNECTION_ID,
      appId: APP_ID,
    };
    expect(approvalFor([{ connectionId: CONNECTION_ID, appId: APP_ID }], subject)).toBeDefined();
    expect(
      approvalFor([{ connectionId: CONNECTION_ID, appId: APP_ID, organization: ORG_URL }], subject),
    ).toBeDefined();
    expect(approvalFor([{ connectionId: CONNECTION_ID, appId: OTHER_APP }], subject)).toBeUndefined();
    expect(
      approvalFor([{ connectionId: CONNECTION_ID, appId: APP_ID, organization: 'fabrikam' }], subject),
    ).toBeUndefined();
    expect(approvalFor(undefined, subject)).toBeUndefined();
  });

  test('policy approvals parse with both GUIDs required; junk is reported', () => {
    const ok = parsePolicy(
      JSON.stringify({ rules: [], approvals: [{ connectionId: CONNECTION_ID, appId: APP_ID }] }),
    );
    expect(ok).toEqual({
      policy: { default: 'rotate', rules: [], approvals: [{ connectionId: CONNECTION_ID, appId: APP_ID }] },
    });
    const bad = parsePolicy(
      JSON.stringify({
        approvals: [
          { connectionId: 'web-*', appId: APP_ID },
          { connectionId: CONNECTION_ID },
          { appId: APP_ID, x: 1 },
          3,
        ],
      }),
    );
    expect('problems' in bad && bad.problems).toEqual([
      'approval 1: "connectionId" must be a service connection id (a GUID)',
      'approval 2: "appId" must be the app\'s client id (a GUID)',
      "approval 3 has an unknown property 'x' (expected connectionId, appId, organization)",
      'approval 3: "connectionId" must be a service connection id (a GUID)',
      'approval 4 must be an object',
    ]);
    expect(parsePolicy(JSON.stringify({ approvals: {} }))).toEqual({
      problems: ['"approvals" must be an array'],
    });
  });
});

describe('the gate', () => {
  const SETTINGS = { rotateDaysBeforeExpiry: 30, secretLifetimeDays: 90, oldSecretRetentionHours: 24 };
  const expired = () =>
    assess({
      connection: connection(),
      organizationUrl: ORG_URL,
      projects: [{ id: 'p1', name: 'Web' }],
      app: app([password('k1', -3)]),
      record: undefined,
      settings: { rotateDaysBeforeExpiry: 30, oldSecretRetentionHours: 24 },
      now: NOW,
    });

  test('a new rotation without entitlement becomes a report with the approve command; the finding stays', () => {
    const a = expired();
    const p = plan(a, SETTINGS);
    expect(p.action).toBe('rotate-secret');
    expect(needsEntitlement(p)).toBe(true);
    const gated = gateEntitlement(p, a, { appId: APP_ID, bound: false, detail: 'nothing proves it' });
    expect(gated.action).toBe('report');
    expect(gated.reason).toContain(NOT_BOUND);
    expect(gated.steps[0]).toBe(
      `If the connection is legitimate: sc-remediator approve --connection ${CONNECTION_ID} --organization ${ORG_URL} --app ${APP_ID}`,
    );
    expect(a.finding).toBe('expired');
    expect(gateEntitlement(p, a, { appId: APP_ID, bound: true, how: 'verified-rotation', detail: '' })).toBe(
      p,
    );
    expect(gateEntitlement(p, a, undefined).action).toBe('report');
  });

  test('only plans that give a new credential need it', () => {
    const base = { reason: '', steps: [], previousKeyIds: [], orphanKeyIds: [], warnings: [] };
    expect(needsEntitlement({ ...base, action: 'rotate-secret' })).toBe(true);
    expect(needsEntitlement({ ...base, action: 'rotate-secret', resumeFrom: 'created' })).toBe(false);
    expect(
      needsEntitlement({
        ...base,
        action: 'convert-to-wif',
        conversion: { kind: 'convert', path: 'azure-devops' },
      }),
    ).toBe(true);
    expect(
      needsEntitlement({
        ...base,
        action: 'convert-to-wif',
        conversion: { kind: 'revert', path: 'azure-devops' },
      }),
    ).toBe(false);
    for (const action of ['none', 'report', 'repair', 'delete'] as const)
      expect(needsEntitlement({ ...base, action })).toBe(false);
  });
});

describe('establishEntitlement: cheapest evidence first', () => {
  function ports(binding: Binding | undefined | Error, test: TestConnectionResult) {
    const calls: string[] = [];
    const bindings: BindingStore = {
      getBinding: () => {
        calls.push('getBinding');
        return binding instanceof Error ? Promise.reject(binding) : Promise.resolve(binding);
      },
      putBinding: (b) => {
        calls.push('putBinding');
        return Promise.resolve(b);
      },
    };
    const devops = {
      testConnection: () => {
        calls.push('testConnection');
        return Promise.resolve(test);
      },
    } as unknown as Parameters<typeof establishEntitlement>[1]['devops'];
    return {
      calls,
      deps: {
        devops,
        bindings,
        clock: { now: () => NOW, sleep: () => Promise.resolve() },
        log: { warn: () => undefined },
      },
    };
  }
  const subject = (r: RotationRecord | undefined) => ({
    organization: 'contoso',
    organizationUrl: ORG_URL,
    project: 'p1',
    connection: connection(),
    record: r,
  });
  const invalid = failed(`${JWT}AADSTS7000215: Invalid client secret provided.`);

  test('a verified record: no call at all', async () => {
    const p = ports(undefined, invalid);
    const e = await establishEntitlement(subject(record({ phase: 'completed' })), p.deps, {});
    expect(e).toMatchObject({ bound: true, how: 'verified-rotation', source: 'record' });
    expect(p.calls).toEqual([]);
  });

  test('a policy approval: no call either', async () => {
    const p = ports(undefined, invalid);
    const e = await establishEntitlement(subject(undefined), p.deps, {
      approvals: [{ connectionId: CONNECTION_ID, appId: APP_ID }],
    });
    expect(e).toMatchObject({ bound: true, how: 'approved:policy' });
    expect(p.calls).toEqual([]);
  });

  test('a binding: one read, no probe', async () => {
    const b: Binding = {
      connectionId: CONNECTION_ID,
      organization: ORG_URL,
      appId: APP_ID,
      how: 'approved:cli:ann',
      at: NOW.toISOString(),
    };
    const p = ports(b, invalid);
    const e = await establishEntitlement(subject(undefined), p.deps, {});
    expect(e).toMatchObject({ bound: true, how: 'approved:cli:ann', source: 'binding' });
    expect(p.calls).toEqual(['getBinding']);
  });

  test('no binding: TestConnection; its proof is handed to the engine to record, not written here', async () => {
    const p = ports(
      undefined,
      failed(`${JWT}AADSTS7000222: The provided client secret keys for app '${APP_ID}' are expired.`),
    );
    const e = await establishEntitlement(subject(undefined), p.deps, {});
    expect(e).toMatchObject({ bound: true, how: 'proof:expired-secret-7000222', source: 'probe' });
    expect(e.toRecord).toMatchObject({ connectionId: CONNECTION_ID, appId: APP_ID, organization: ORG_URL });
    expect(p.calls).toEqual(['getBinding', 'testConnection']);
  });

  test('an unreadable binding and AADSTS7000215: not bound', async () => {
    const p = ports(new Error('Key Vault read failed (403)'), invalid);
    const e = await establishEntitlement(
      subject(record({ phase: 'completed', appId: OTHER_APP })),
      p.deps,
      {},
    );
    expect(e).toMatchObject({ bound: false, appId: APP_ID });
    expect(e.detail).toMatch(/no binding could be read.*AADSTS7000215/);
    expect(p.calls).toEqual(['getBinding', 'testConnection']);
  });
});
