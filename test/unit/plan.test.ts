import type { AssessInput, Assessment } from '../../src/remediation/assess';
import { assess } from '../../src/remediation/assess';
import type { Plan, PlanSettings } from '../../src/remediation/plan';
import { plan, plannedReport } from '../../src/remediation/plan';
import { planSteps } from '../../src/remediation/planSteps';
import type { ServiceConnection } from '../../src/remediation/ports';
import { credentialMarker } from '../../src/remediation/transform';
import {
  app,
  APP_ID,
  connection,
  CONNECTION_ID,
  inDays,
  NOW,
  ORG_URL,
  password,
  record,
  TENANT_ID,
  withParams,
} from '../helpers/remediationFixtures';

const SETTINGS: PlanSettings = {
  rotateDaysBeforeExpiry: 30,
  secretLifetimeDays: 90,
  oldSecretRetentionHours: 24,
};
const mine = (rotationId: string) => credentialMarker(CONNECTION_ID, rotationId);

function assessed(overrides: Partial<AssessInput> = {}): Assessment {
  return assess({
    connection: connection(),
    organizationUrl: ORG_URL,
    projects: [{ id: 'p1', name: 'Web' }],
    app: app([password('k1', 200)]),
    record: undefined,
    settings: { rotateDaysBeforeExpiry: 30, oldSecretRetentionHours: 24 },
    now: NOW,
    ...overrides,
  });
}

function failed(statusMessage: string, extra: Partial<ServiceConnection> = {}): ServiceConnection {
  return connection({ isReady: false, operationStatus: { state: 'Failed', statusMessage }, ...extra });
}

function wif(isReady: boolean): ServiceConnection {
  const c = connection({ isReady });
  return {
    ...c,
    authorization: { scheme: 'WorkloadIdentityFederation', parameters: { tenantid: TENANT_ID } },
  };
}

type Row = [string, Partial<AssessInput>, Plan['action'], Partial<Plan>?];

/** Pads every row to four cells: with fewer, jest would pass its `done` callback as the fourth. */
const pad = (rows: Row[]): [string, Plan['action'], Partial<AssessInput>, Partial<Plan>][] =>
  rows.map(([label, overrides, action, extra]) => [label, action, overrides, extra ?? {}]);

describe('plan: decision table', () => {
  it.each(
    pad([
      // nothing to do
      ['healthy', {}, 'none'],
      ['unsupported but ready (WIF)', { connection: wif(true) }, 'none'],
      [
        'Azure DevOps still working on it',
        {
          connection: connection({
            isReady: false,
            operationStatus: { state: 'InProgress', statusMessage: '' },
          }),
        },
        'none',
      ],
      [
        'verified rotation within retention',
        {
          app: app([password('k-old', 5), password('k-new', 89, mine('r1'))]),
          record: record({ phase: 'verified', verifiedAt: inDays(-0.2) }),
        },
        'none',
      ],
      // report only
      ['unsupported and broken (WIF)', { connection: wif(false) }, 'report'],
      [
        'a certificate ending within the window (a new certificate, never a new secret)',
        {
          connection: withParams({ authenticationType: 'spnCertificate' }),
          app: {
            ...app([password('k1', 3)]),
            keyCredentials: [
              {
                keyId: 'c1',
                displayName: null,
                thumbprint: 'T1',
                endDateTime: inDays(10),
                type: 'AsymmetricX509Cert',
                usage: 'Verify',
              },
            ],
          },
        },
        'rotate-secret',
      ],
      [
        'an app of another tenant, ready',
        {
          connection: withParams({ tenantid: '00000000-0000-4000-8000-0000000000aa' }),
          app: app([password('k1', 3)]),
          settings: { rotateDaysBeforeExpiry: 30, oldSecretRetentionHours: 24, tenantId: TENANT_ID },
        },
        'report',
      ],
      ['app missing', { app: undefined }, 'report'],
      ['app unreadable', { app: { error: { message: 'denied', status: 403, service: 'graph' } } }, 'report'],
      ['app disabled', { connection: failed('AADSTS7000112: Application is disabled.') }, 'report'],
      [
        'app disabled and its secret expired',
        { connection: failed('AADSTS7000112: disabled'), app: app([password('k1', -2)]) },
        'report',
      ],
      ['missing role assignment', { connection: failed('AuthorizationFailed: no access') }, 'report'],
      [
        'connection points at a deleted app (AADSTS700016) though Graph finds one',
        { connection: failed('AADSTS700016: not found') },
        'report',
      ],
      [
        'creation failed: guest permission',
        { connection: failed('The user has only guest permission in the directory') },
        'report',
      ],
      [
        'creation failed: Contributor role',
        { connection: failed('Failed to assign Contributor role') },
        'report',
      ],
      ['not ready for an unknown reason, secret fine', { connection: failed('something odd') }, 'report'],
      [
        'blocked by policy',
        { app: app([password('k1', 10)]), passwordPolicy: { additionBlocked: true } },
        'report',
      ],
      // repair
      [
        'accesstoken null, secret fine',
        { connection: withParams({ accesstoken: null }) },
        'repair',
        { repair: 'drop-access-token' },
      ],
      [
        'secret rejected, verified Key Vault secret still valid',
        {
          connection: failed('AADSTS7000215: invalid'),
          app: app([password('k-new', 80, mine('r1'))]),
          record: record(),
        },
        'repair',
        { repair: 'reapply-verified-secret' },
      ],
      [
        'healthy with an orphan credential',
        {
          app: app([password('k-new', 80, mine('r1')), password('k-orphan', 90, mine('r2'))]),
          record: record({ intent: { rotationId: 'r2', at: inDays(-1) } }),
        },
        'repair',
        { repair: 'remove-orphans', orphanKeyIds: ['k-orphan'] },
      ],
      // rotate
      [
        'expiring',
        { app: app([password('k1', 10)]) },
        'rotate-secret',
        { secretLifetimeDays: 90, previousKeyIds: ['k1'] },
      ],
      ['expired', { app: app([password('k1', -1)]) }, 'rotate-secret', { previousKeyIds: ['k1'] }],
      [
        'rejected secret (AADSTS7000215)',
        { connection: failed('AADSTS7000215: invalid') },
        'rotate-secret',
        { previousKeyIds: [] },
      ],
      [
        'expired secret per Entra (AADSTS7000222)',
        { connection: failed('AADSTS7000222: expired') },
        'rotate-secret',
      ],
      [
        'no secret stored (AADSTS7000216)',
        { connection: failed('AADSTS7000216: required') },
        'rotate-secret',
      ],
      [
        '"Invalid client id or client secret"',
        { connection: failed('Invalid client id or client secret') },
        'rotate-secret',
      ],
      [
        'accesstoken null and the secret expiring: rotation does both',
        { connection: withParams({ accesstoken: '' }), app: app([password('k1', 10)]) },
        'rotate-secret',
      ],
      ['the app has no passwords', { app: app([]) }, 'rotate-secret'],
      [
        'failed Verify with an invalid secret',
        { test: { ok: false, statusCode: 'unauthorized', errorMessage: 'AADSTS7000215: x' } },
        'rotate-secret',
      ],
      [
        'policy caps the lifetime',
        { app: app([password('k1', 10)]), passwordPolicy: { additionBlocked: false, maxLifetimeDays: 60 } },
        'rotate-secret',
        { secretLifetimeDays: 60 },
      ],
      // resume
      [
        'rotation stopped after created',
        {
          app: app([password('k-old', 10), password('k-new', 90, mine('r1'))]),
          record: record({ phase: 'created' }),
        },
        'rotate-secret',
        { resumeFrom: 'created', previousKeyIds: ['k-old'] },
      ],
      [
        'rotation stopped after applied',
        {
          connection: failed('AADSTS7000215: not replicated yet'),
          app: app([password('k-old', 10), password('k-new', 90, mine('r1'))]),
          record: record({ phase: 'applied' }),
        },
        'rotate-secret',
        { resumeFrom: 'applied' },
      ],
      [
        'rotation created although the policy now blocks additions',
        {
          app: app([password('k-old', 10), password('k-new', 90, mine('r1'))]),
          record: record({ phase: 'created' }),
          passwordPolicy: { additionBlocked: true },
        },
        'rotate-secret',
        { resumeFrom: 'created' },
      ],
      [
        'verified rotation past retention: clean up',
        {
          app: app([password('k-old', 5), password('k-new', 89, mine('r1'))]),
          record: record({ phase: 'verified', verifiedAt: inDays(-2) }),
        },
        'rotate-secret',
        { resumeFrom: 'verified', previousKeyIds: ['k-old'] },
      ],
    ]),
  )('%s → %s', (_label, action, overrides, extra) => {
    const p = plan(assessed(overrides), SETTINGS);
    expect(p.action).toBe(action);
    expect(p).toMatchObject(extra);
    expect(p.reason.length).toBeGreaterThan(5);
    if (action !== 'none') expect(p.steps.length).toBeGreaterThan(0);
  });

  it('never plans a conversion or a deletion', () => {
    const cases: Partial<AssessInput>[] = [
      { app: undefined },
      { connection: wif(false) },
      { connection: failed('AADSTS700016: gone') },
      { connection: failed('Failed to assign Contributor role') },
    ];
    for (const c of cases)
      expect(['convert-to-wif', 'delete']).not.toContain(plan(assessed(c), SETTINGS).action);
  });
});

describe('plan: steps', () => {
  it('a new rotation walks through every phase, in order, naming the marker', () => {
    const p = plan(assessed({ app: app([password('k1', 10)]) }), SETTINGS);
    expect(p.steps).toHaveLength(5);
    expect(p.steps[0]).toContain(`sc-remediator ${CONNECTION_ID} <rotationId>`);
    expect(p.steps[0]).toContain(`90 days to app ${APP_ID}`);
    expect(p.steps[1]).toMatch(/Key Vault before using it anywhere \(phase created\)/);
    expect(p.steps[2]).toMatch(/switched from Automatic to Manual.*\(phase applied\)/);
    expect(p.steps[3]).toMatch(/Verify.*isReady: true \(phase verified\)/);
    expect(p.steps[4]).toMatch(/24 h retention.*k1/);
  });

  it('a Manual connection stays Manual', () => {
    const p = plan(
      assessed({
        connection: connection({ data: { creationMode: 'Manual' } }),
        app: app([password('k1', 5)]),
      }),
      SETTINGS,
    );
    expect(p.steps.join('\n')).toContain('creationMode kept Manual');
  });

  it('an orphan is removed before anything else', () => {
    const p = plan(
      assessed({
        app: app([password('k-ado', 10), password('k-orphan', 90, mine('r1'))]),
        missingRecord: { softDeleted: false, intent: { rotationId: 'r1', at: inDays(-1) } },
      }),
      SETTINGS,
    );
    expect(p.action).toBe('rotate-secret');
    expect(p.steps[0]).toMatch(/Remove orphan credential\(s\) k-orphan/);
    expect(p.orphanKeyIds).toEqual(['k-orphan']);
  });

  it('a lost rotation state is reported, never rotated nor cleaned up', () => {
    const p = plan(
      assessed({ app: app([password('k-ado', 10), password('k-mine', 20, mine('r1'))]) }),
      SETTINGS,
    );
    expect(p).toMatchObject({ action: 'report', orphanKeyIds: [], previousKeyIds: [] });
  });

  it('a soft-deleted record is recovered before anything else', () => {
    const p = plan(
      assessed({
        app: app([password('k-new', 10, mine('r1'))]),
        missingRecord: { softDeleted: true, record: record() },
      }),
      SETTINGS,
    );
    expect(p).toMatchObject({ action: 'repair', repair: 'recover-record' });
  });

  it('resuming from created starts at the PUT', () => {
    const p = plan(
      assessed({
        app: app([password('k-old', 10), password('k-new', 90, mine('r1'))]),
        record: record({ phase: 'created' }),
      }),
      SETTINGS,
    );
    expect(p.steps[0]).toMatch(/^PUT the connection .* rotation r1 read from Key Vault/);
  });

  it('repairing an accesstoken keeps the stored secret', () => {
    const p = plan(assessed({ connection: withParams({ accesstoken: null }) }), SETTINGS);
    expect(p.steps[0]).toMatch(/no secret \(Azure DevOps keeps the stored one\)/);
  });

  it('report steps are the operator next step', () => {
    const p = plan(assessed({ connection: failed('AADSTS7000112: disabled') }), SETTINGS);
    expect(p.steps[0]).toMatch(/Enabled for users to sign-in/);
  });
});

describe('plan: warnings', () => {
  it('warns when the new secret would be due again at once', () => {
    const p = plan(
      assessed({
        app: app([password('k1', 10)]),
        passwordPolicy: { additionBlocked: false, maxLifetimeDays: 20 },
      }),
      SETTINGS,
    );
    expect(p.secretLifetimeDays).toBe(20);
    expect(p.warnings.join(' ')).toMatch(/rotated again on the next run/);
  });

  it('warns that an inferred credential is kept', () => {
    const p = plan(assessed({ app: app([password('k1', 10), password('k2', 15)]) }), SETTINGS);
    expect(p.previousKeyIds).toEqual([]);
    expect(p.warnings.join(' ')).toMatch(/only inferred; it is kept/);
  });
});

describe('plannedReport', () => {
  it.each([
    ['healthy', {}, 'none', 'skipped'],
    ['expiring', { app: app([password('k1', 10)]) }, 'rotate-secret', 'planned'],
    ['app missing', { app: undefined }, 'report', 'skipped'],
    ['accesstoken', { connection: withParams({ accesstoken: null }) }, 'repair', 'planned'],
  ] as const)('%s', (_label, overrides, action, outcome) => {
    const a = assessed(overrides);
    const r = plannedReport(a, plan(a, SETTINGS));
    expect(r).toMatchObject({
      organization: 'contoso',
      organizationUrl: ORG_URL,
      projects: ['Web'],
      connectionId: CONNECTION_ID,
      connectionName: 'prod-subscription',
      appId: APP_ID,
      finding: a.finding,
      action,
      outcome,
      scheme: 'ServicePrincipal',
      creationMode: 'Automatic',
    });
  });

  it('carries the diagnosis, expiry and phase when relevant', () => {
    const a = assessed({
      connection: failed('AADSTS7000215: bad'),
      app: app([password('k-old', 10), password('k-new', 90, mine('r1'))]),
      record: record({ phase: 'applied' }),
    });
    const r = plannedReport(a, plan(a, SETTINGS));
    expect(r.diagnosis?.kind).toBe('invalid-secret');
    expect(r.secretExpiresAt).toBe(inDays(90));
    expect(r.phase).toBe('applied');
    expect(r.credentialSource).toBe('recorded');
  });
});

describe('plannedReport: which credential, and whose tenant', () => {
  const OTHER_TENANT = '7f0a4c2e-5b1d-4e8a-9c3f-2d6b8e1a0f47';
  it.each([
    ['a client secret (no authenticationType)', connection(), 'secret'],
    ['a client secret (spnKey)', withParams({ authenticationType: 'spnKey' }), 'secret'],
    ['a certificate', withParams({ authenticationType: 'spnCertificate' }), 'certificate'],
    ['workload identity federation', wif(true), undefined],
  ] as const)('%s', (_label, c, kind) => {
    const a = assessed({ connection: c });
    expect(plannedReport(a, plan(a, SETTINGS)).credentialKind).toBe(kind);
  });

  it('names the app tenant only when it is not the home tenant', () => {
    const settings = { rotateDaysBeforeExpiry: 30, oldSecretRetentionHours: 24, tenantId: TENANT_ID };
    const home = assessed({ connection: withParams({ tenantid: TENANT_ID }), settings });
    expect(plannedReport(home, plan(home, SETTINGS)).appTenantId).toBeUndefined();
    const other = assessed({ connection: withParams({ tenantid: OTHER_TENANT }), settings });
    expect(plannedReport(other, plan(other, SETTINGS)).appTenantId).toBe(OTHER_TENANT);
  });
});

describe('planSteps: the operations that carry a plan out', () => {
  const base: Plan = {
    action: 'none',
    reason: '',
    steps: [],
    previousKeyIds: [],
    orphanKeyIds: [],
    warnings: [],
  };
  const operations = (p: Plan, appId: string | null = APP_ID) =>
    planSteps(p, appId).map((s) => [s.operation.kind, s.when ?? 'first']);

  it('a rotation is one step, with the lifetime the plan capped', () => {
    const a = assessed({
      app: app([password('k1', 10)]),
      passwordPolicy: { additionBlocked: false, maxLifetimeDays: 20 },
    });
    expect(planSteps(plan(a, SETTINGS), APP_ID)).toEqual([
      { operation: { kind: 'rotate', secretLifetimeDays: 20 } },
    ]);
  });

  it('a conversion without a fallback secret rotates first and converts only once the rotation succeeded', () => {
    const steps = planSteps(
      {
        ...base,
        action: 'convert-to-wif',
        conversion: { kind: 'convert', path: 'federated-credential', needsFallbackSecret: true },
      },
      APP_ID,
    );
    expect(steps).toEqual([
      { operation: { kind: 'rotate' } },
      {
        operation: { kind: 'convert', path: 'federated-credential' },
        when: 'previous-succeeded',
        log: {
          earlierAs: 'rotation',
          ifNotRun: 'not converted: the rotation that provides the fallback secret did not succeed',
        },
      },
    ]);
  });

  it('a conversion with a fallback secret, a resumed one and a revert are one step each', () => {
    const conversion = (kind: 'convert' | 'resume' | 'revert') =>
      operations({ ...base, action: 'convert-to-wif', conversion: { kind, path: 'azure-devops' } });
    expect(conversion('convert')).toEqual([['convert', 'first']]);
    expect(conversion('resume')).toEqual([['convert', 'first']]);
    expect(conversion('revert')).toEqual([['revert-conversion', 'first']]);
  });

  it('a repair that re-saves the connection rotates when its verification fails, if the connection names an app', () => {
    const a = assessed({ connection: withParams({ accesstoken: null }) });
    const p = plan(a, SETTINGS);
    expect(p).toMatchObject({ action: 'repair', repair: 'drop-access-token' });
    expect(planSteps(p, APP_ID)).toEqual([
      { operation: { kind: 'repair-connection' } },
      {
        operation: { kind: 'rotate' },
        when: 'previous-verification-failed',
        log: { before: 'the repair was not enough; rotating the secret' },
      },
    ]);
    expect(operations(p, null)).toEqual([['repair-connection', 'first']]);
  });

  it('orphan removal, record recovery and retirement are one step; none and report have none', () => {
    expect(
      planSteps({ ...base, action: 'repair', repair: 'remove-orphans', orphanKeyIds: ['k-orphan'] }, APP_ID),
    ).toEqual([{ operation: { kind: 'remove-orphans', orphanKeyIds: ['k-orphan'] } }]);
    expect(operations({ ...base, action: 'repair', repair: 'recover-record' })).toEqual([
      ['recover-record', 'first'],
    ]);
    expect(
      planSteps({ ...base, action: 'delete', reason: 'r', retirement: { reason: 'gone' } }, APP_ID),
    ).toEqual([{ operation: { kind: 'retire', reason: 'gone' } }]);
    expect(planSteps({ ...base, action: 'none' }, APP_ID)).toEqual([]);
    expect(planSteps({ ...base, action: 'report' }, APP_ID)).toEqual([]);
  });
});
