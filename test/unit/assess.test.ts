import { parseOrganizationUrl } from '../../src/config';
import type { AssessInput } from '../../src/remediation/assess';
import { assess, organizationName } from '../../src/remediation/assess';
import { credentialState } from '../../src/remediation/credentialInUse';
import type { CertificateCredentialInfo, ServiceConnection } from '../../src/remediation/ports';
import { credentialMarker } from '../../src/remediation/transform';
import {
  app,
  APP_ID,
  connection,
  CONNECTION_ID,
  DAY_MS,
  inDays,
  NOW,
  ORG_URL,
  password,
  record,
  TENANT_ID,
  withParams,
} from '../helpers/remediationFixtures';

const SETTINGS = { rotateDaysBeforeExpiry: 30, oldSecretRetentionHours: 24 };
const mine = (rotationId: string) => credentialMarker(CONNECTION_ID, rotationId);
const theirs = credentialMarker('99999999-9999-4999-8999-999999999999', 'zz');

function input(overrides: Partial<AssessInput> = {}): AssessInput {
  return {
    connection: connection(),
    organizationUrl: ORG_URL,
    projects: [{ id: 'p1', name: 'Web' }],
    app: app([password('k1', 200)]),
    record: undefined,
    settings: SETTINGS,
    now: NOW,
    ...overrides,
  };
}

function failed(statusMessage: string, extra: Partial<ServiceConnection> = {}): ServiceConnection {
  return connection({ isReady: false, operationStatus: { state: 'Failed', statusMessage }, ...extra });
}

function scheme(
  name: string,
  isReady: boolean,
  params: Record<string, string | null> = {},
): ServiceConnection {
  const c = connection({ isReady });
  return { ...c, authorization: { scheme: name, parameters: { tenantid: TENANT_ID, ...params } } };
}

describe('assess: connections without a client secret', () => {
  it.each([
    [
      'WorkloadIdentityFederation, ready',
      scheme('WorkloadIdentityFederation', true, { serviceprincipalid: APP_ID }),
      'healthy',
    ],
    [
      'WorkloadIdentityFederation, not ready',
      scheme('WorkloadIdentityFederation', false, { serviceprincipalid: APP_ID }),
      'unsupported',
    ],
    ['ManagedServiceIdentity, ready', scheme('ManagedServiceIdentity', true), 'healthy'],
    ['ManagedServiceIdentity, not ready', scheme('ManagedServiceIdentity', false), 'unsupported'],
    ['PublishProfile, not ready', scheme('PublishProfile', false), 'unsupported'],
    // Unfamiliar: no evidence the credential works, so never healthy even when it reads ready.
    ['PublishProfile, ready', scheme('PublishProfile', true), 'unsupported'],
    ['an unknown scheme, ready', scheme('SomethingNew', true), 'unsupported'],
    [
      'an unknown authenticationType, ready',
      withParams({ authenticationType: 'spnSomethingNew' }),
      'unsupported',
    ],
    ['not azurerm, not ready', connection({ type: 'generic', isReady: false }), 'unsupported'],
    ['not azurerm, ready', connection({ type: 'generic' }), 'unsupported'],
  ])('%s → %s', (_label, c, finding) => {
    const a = assess(input({ connection: c, app: undefined }));
    expect(a.finding).toBe(finding);
    expect(a.credentialSource).toBe('unknown');
    expect(a.needsNewSecret).toBe(false);
    expect(a.notes[0]).toMatch(/no client secret to rotate/);
  });

  it('diagnoses a broken unsupported connection', () => {
    const c = {
      ...scheme('WorkloadIdentityFederation', false),
      operationStatus: { state: 'Failed', statusMessage: 'AADSTS700016: gone' },
    };
    expect(assess(input({ connection: c })).diagnosis?.kind).toBe('app-not-found');
  });
});

describe('assess: tenant, app lookup', () => {
  it.each([
    ['another tenant, ready', '00000000-0000-4000-8000-000000000000', true, 'unsupported'],
    ['another tenant, not ready', '00000000-0000-4000-8000-000000000000', false, 'unsupported'],
    ['same tenant, other casing', TENANT_ID.toUpperCase(), false, 'not-ready'],
    ['tenant given as a domain (not compared)', 'contoso.onmicrosoft.com', false, 'not-ready'],
  ])('%s → %s', (_label, tenantId, isReady, finding) => {
    const a = assess(input({ connection: connection({ isReady }), settings: { ...SETTINGS, tenantId } }));
    expect(a.finding).toBe(finding);
  });

  const OTHER = '00000000-0000-4000-8000-000000000000';
  it.each([
    ['ready, its app valid here (same appId)', connection(), app([password('k1', 200)])],
    ['not ready, this tenant has no such app', connection({ isReady: false }), undefined],
    ['expiring secret', connection(), app([password('k1', 5)])],
    [
      'a certificate connection',
      withParams({ authenticationType: 'spnCertificate' }),
      app([password('k1', 200)]),
    ],
    [
      'a workload identity connection, ready',
      scheme('WorkloadIdentityFederation', true, { serviceprincipalid: APP_ID }),
      undefined,
    ],
  ])('another tenant (%s) → unsupported, naming both tenants, never healthy/app-missing', (_l, c, found) => {
    const other = {
      ...c,
      authorization: { ...c.authorization, parameters: { ...c.authorization.parameters, tenantid: OTHER } },
    };
    const a = assess(
      input({ connection: other, app: found, settings: { ...SETTINGS, tenantId: TENANT_ID } }),
    );
    expect(a.finding).toBe('unsupported');
    expect(a.foreignTenant).toBe(OTHER);
    expect(a.diagnosis?.kind).toBe('other-tenant');
    expect(a.diagnosis?.cause).toContain(OTHER);
    expect(a.diagnosis?.cause).toContain(TENANT_ID);
    expect(a.needsNewSecret).toBe(false);
  });

  describe('a configured other tenant (ADDITIONAL_TENANT_IDS)', () => {
    const inOther = (c: ServiceConnection): ServiceConnection => ({
      ...c,
      authorization: { ...c.authorization, parameters: { ...c.authorization.parameters, tenantid: OTHER } },
    });
    const settings = { ...SETTINGS, tenantId: TENANT_ID, additionalTenantIds: [OTHER.toUpperCase()] };

    it('is assessed like the home tenant: an expiring secret is expiring and needs a new one', () => {
      const a = assess(input({ connection: inOther(connection()), app: app([password('k1', 5)]), settings }));
      expect(a.finding).toBe('expiring');
      expect(a.needsNewSecret).toBe(true);
      expect(a.foreignTenant).toBeUndefined();
    });

    it('its app not found in its own tenant is app-missing (that tenant is the one that knows)', () => {
      const a = assess(
        input({ connection: inOther(connection({ isReady: false })), app: undefined, settings }),
      );
      expect(a.finding).toBe('app-missing');
    });

    it("the service's own token failing there → error naming the tenant (tenant-access), never app-not-found", () => {
      const a = assess(
        input({
          connection: inOther(connection()),
          app: {
            error: {
              message:
                "AADSTS700016: Application with identifier 'x' was not found in the directory 'fabrikam'.",
              service: 'graph',
            },
          },
          settings,
        }),
      );
      expect(a.finding).toBe('error');
      expect(a.diagnosis).toMatchObject({ kind: 'tenant-access', code: 'AADSTS700016' });
      expect(a.diagnosis?.cause).toContain(OTHER);
      expect(a.diagnosis?.nextStep).toContain(`https://login.microsoftonline.com/${OTHER}/adminconsent`);
    });

    it('a tenant not in the list stays unsupported', () => {
      const a = assess(
        input({
          connection: inOther(connection()),
          settings: { ...settings, additionalTenantIds: ['11111111-1111-4111-8111-111111111111'] },
        }),
      );
      expect(a.finding).toBe('unsupported');
      expect(a.diagnosis?.kind).toBe('other-tenant');
    });
  });

  it('app lookup failure → error with a Graph diagnosis', () => {
    const a = assess(
      input({
        app: {
          error: {
            message: 'Insufficient privileges',
            status: 403,
            code: 'Authorization_RequestDenied',
            service: 'graph',
          },
        },
      }),
    );
    expect(a.finding).toBe('error');
    expect(a.diagnosis).toMatchObject({ kind: 'graph-permission-denied', fixableByService: false });
  });

  it('app not found → app-missing', () => {
    const a = assess(input({ app: undefined, connection: failed('AADSTS700016: Application not found') }));
    expect(a).toMatchObject({ finding: 'app-missing', appId: APP_ID, credentialSource: 'unknown' });
    expect(a.diagnosis).toMatchObject({ kind: 'app-not-found', code: 'AADSTS700016' });
  });

  it('app not found while the connection still reads ready → app-missing anyway', () => {
    expect(assess(input({ app: undefined })).finding).toBe('app-missing');
  });

  it('no serviceprincipalid → app-missing', () => {
    expect(assess(input({ connection: withParams({ serviceprincipalid: null }) })).finding).toBe(
      'app-missing',
    );
  });
});

describe('assess: certificate-based connections (keyCredentials)', () => {
  const cert = (keyId: string, days: number | null, extra: Partial<CertificateCredentialInfo> = {}) => ({
    keyId,
    displayName: `CN=${keyId}`,
    thumbprint: `THUMB-${keyId}`,
    endDateTime: days === null ? null : inDays(days),
    type: 'AsymmetricX509Cert',
    usage: 'Verify',
    ...extra,
  });
  const certApp = (certs: CertificateCredentialInfo[]) => ({
    ...app([password('p1', 200)]),
    keyCredentials: certs,
  });
  const certConnection = (isReady = true) =>
    withParams({ authenticationType: 'spnCertificate', serviceprincipalkey: null }, { isReady });
  it.each<[string, CertificateCredentialInfo[], boolean, string, string | undefined, string | undefined]>([
    ['one certificate past the window', [cert('c1', 200)], true, 'healthy', undefined, 'c1'],
    ['one certificate within the window', [cert('c1', 10)], true, 'expiring', 'certificate-expiring', 'c1'],
    [
      'one certificate on the window boundary',
      [cert('c1', 30)],
      true,
      'expiring',
      'certificate-expiring',
      'c1',
    ],
    ['one certificate ended', [cert('c1', -1)], false, 'expired', 'certificate-expired', 'c1'],
    [
      'ended, the connection still reads ready',
      [cert('c1', -1)],
      true,
      'expired',
      'certificate-expired',
      'c1',
    ],
    // Which certificate the connection holds is unknown: the earliest-ending valid one decides.
    [
      'an old one expiring and a new one',
      [cert('old', 10), cert('new', 300)],
      true,
      'expiring',
      'certificate-expiring',
      'old',
    ],
    ['one ended and one valid', [cert('old', -5), cert('new', 300)], true, 'healthy', undefined, 'new'],
    ['no certificate, ready', [], true, 'unsupported', 'certificate-missing', undefined],
    ['no certificate, not ready', [], false, 'not-ready', 'certificate-missing', undefined],
    // An encryption certificate (usage Sign would be for signing tokens to the app) is not a sign-in credential.
    [
      'only a non-Verify key',
      [cert('enc', 300, { usage: 'Sign' })],
      true,
      'unsupported',
      'certificate-missing',
      undefined,
    ],
    ['valid certificate, connection not ready', [cert('c1', 200)], false, 'not-ready', 'unknown', 'c1'],
  ])('%s → %s', (_label, certs, isReady, finding, diagnosisKind, judgedBy) => {
    const a = assess(input({ connection: certConnection(isReady), app: certApp(certs) }));
    expect(a.finding).toBe(finding);
    expect(a.diagnosis?.kind).toBe(diagnosisKind);
    expect(a.certificate?.keyId).toBe(judgedBy);
    // The app's password is never taken for the certificate connection's credential.
    expect(a.credential).toBeUndefined();
    expect(a.needsNewSecret).toBe(false);
    if (judgedBy) expect(a.secretExpiresAt).toBe(certs.find((c) => c.keyId === judgedBy)?.endDateTime);
  });

  it('the diagnosis names the certificate and its end; unreadable or missing apps are not healthy', () => {
    const a = assess(input({ connection: certConnection(), app: certApp([cert('c1', 10)]) }));
    expect(a.diagnosis?.cause).toContain('THUMB-c1');
    expect(a.diagnosis?.cause).toContain(inDays(10));
    expect(assess(input({ connection: certConnection(), app: undefined })).finding).toBe('app-missing');
    expect(
      assess(input({ connection: certConnection(), app: { error: { message: 'throttled', status: 429 } } }))
        .finding,
    ).toBe('error');
  });
});

describe('assess: expiry boundaries (rotateDaysBeforeExpiry = 30)', () => {
  const MS = 1 / DAY_MS;
  it.each([
    ['ends in 200 days', 200, 'healthy', 'valid'],
    ['ends in 30 days + 1 ms', 30 + MS, 'healthy', 'valid'],
    ['ends in exactly 30 days', 30, 'expiring', 'expiring'],
    ['ends in 29 days', 29, 'expiring', 'expiring'],
    ['ends in 1 ms', MS, 'expiring', 'expiring'],
    ['ends exactly now', 0, 'expired', 'expired'],
    ['ended 1 ms ago', -MS, 'expired', 'expired'],
    ['ended 100 days ago', -100, 'expired', 'expired'],
  ])('%s → %s', (_label, days, finding, state) => {
    const a = assess(input({ app: app([password('k1', days)]) }));
    expect(a.finding).toBe(finding);
    expect(a.credential?.state).toBe(state);
    expect(a.secretExpiresAt).toBe(inDays(days));
    expect(a.needsNewSecret).toBe(finding !== 'healthy');
  });

  it('a credential that never ends is healthy', () => {
    const a = assess(input({ app: app([password('k1', null)]) }));
    expect(a.finding).toBe('healthy');
    expect(a.secretExpiresAt).toBeUndefined();
  });

  it('rotateDaysBeforeExpiry = 0 flags only expired credentials', () => {
    const settings = { ...SETTINGS, rotateDaysBeforeExpiry: 0 };
    expect(assess(input({ settings, app: app([password('k1', 1 / DAY_MS)]) })).finding).toBe('healthy');
    expect(assess(input({ settings, app: app([password('k1', 0)]) })).finding).toBe('expired');
  });

  it.each([
    [inDays(10.5), { state: 'expiring', daysLeft: 10 }],
    [inDays(-0.5), { state: 'expired', daysLeft: -1 }],
    [null, { state: 'valid' }],
    ['garbage', { state: 'expired' }],
  ])('credentialState(%p)', (end, expected) => {
    expect(credentialState(end, NOW, 30)).toEqual(expected);
  });
});

describe('assess: which credential the connection uses', () => {
  it.each([
    ['the only credential', [password('k1', 200)], undefined, 'k1', 'inferred', 'only-credential'],
    [
      'the earliest-ending valid one of several (pessimistic)',
      [password('k1', 10), password('k2', 200), password('k3', -5)],
      undefined,
      'k1',
      'inferred',
      'earliest-unexpired',
    ],
    [
      'one that never ends counts as latest',
      [password('k1', 300), password('k2', null)],
      undefined,
      'k1',
      'inferred',
      'earliest-unexpired',
    ],
    [
      'ties broken by the latest start',
      [password('k1', 100, null, -50), password('k2', 100, null, -10)],
      undefined,
      'k2',
      'inferred',
      'earliest-unexpired',
    ],
    [
      'all ended: the latest-ending',
      [password('k1', -100), password('k2', -3)],
      undefined,
      'k2',
      'inferred',
      'earliest-unexpired',
    ],
    [
      'a credential marked for this connection, record lost, nothing else alive',
      [password('k1', -30), password('k2', 100, mine('r9'))],
      undefined,
      'k2',
      'inferred',
      'marker',
    ],
    [
      // No evidence that k2 never reached Key Vault (no intent): not an orphan, the marker decides.
      'a marked credential without record nor intent, while an unmarked one is alive',
      [password('k1', 300), password('k2', 100, mine('r9'))],
      undefined,
      'k2',
      'inferred',
      'marker',
    ],
    [
      'credentials marked for another connection are ignored',
      [password('k1', 100), password('k2', 300, theirs)],
      undefined,
      'k1',
      'inferred',
      'only-credential',
    ],
    [
      'the record of a completed rotation',
      [password('k-old', -1), password('k-new', 80, mine('r1'))],
      record(),
      'k-new',
      'recorded',
      'record',
    ],
    [
      'the record even when another credential ends later',
      [password('k-new', 80, mine('r1')), password('k-other', 600)],
      record(),
      'k-new',
      'recorded',
      'record',
    ],
  ])('%s', (_label, passwords, rec, keyId, source, basis) => {
    const a = assess(input({ app: app(passwords), record: rec }));
    expect(a.credential).toMatchObject({ keyId, source, basis });
    expect(a.credentialSource).toBe(source);
  });

  it('flags inferred credentials in the notes', () => {
    const a = assess(input({ app: app([password('k1', 10), password('k2', 200)]) }));
    expect(a.notes.join(' ')).toMatch(/inferred: k1, the earliest-ending valid one of 2 credentials/);
  });

  it('falls back to inference when the recorded credential is gone', () => {
    const a = assess(input({ app: app([password('k-other', 200)]), record: record() }));
    expect(a.credential).toMatchObject({ keyId: 'k-other', source: 'inferred' });
    expect(a.notes.join(' ')).toMatch(/recorded credential k-new no longer exists/);
  });

  it('ignores a record of another app', () => {
    const a = assess(input({ app: app([password('k1', 200)]), record: record({ appId: 'other-app' }) }));
    expect(a.record).toBeUndefined();
    expect(a.credential).toMatchObject({ keyId: 'k1', source: 'inferred' });
    expect(a.notes.join(' ')).toMatch(/Ignored the Key Vault record/);
  });

  it('while a rotation is only created, the connection still uses the recorded previous credential', () => {
    const a = assess(
      input({
        app: app([password('k-old', 10), password('k-new', 90, mine('r1'))]),
        record: record({
          phase: 'created',
          appliedAt: undefined,
          verifiedAt: undefined,
          completedAt: undefined,
        }),
      }),
    );
    expect(a.credential).toMatchObject({ keyId: 'k-old', source: 'recorded', state: 'expiring' });
    expect(a.finding).toBe('expiring');
    expect(a.pending).toMatchObject({
      phase: 'created',
      rotationId: 'r1',
      keyId: 'k-new',
      cleanupDue: false,
    });
  });

  it('while a rotation is created and its previous credential is gone, the new one is not taken for the one in use', () => {
    const a = assess(
      input({
        app: app([password('k-new', 90, mine('r1')), password('k-x', 40)]),
        record: record({ phase: 'created', previousKeyIds: ['k-gone'] }),
      }),
    );
    expect(a.credential).toMatchObject({ keyId: 'k-x', source: 'inferred' });
  });

  it('lists the credentials known to be in use for the rotation to supersede', () => {
    expect(
      assess(input({ app: app([password('k-new', 80, mine('r1'))]), record: record() })).previousKeyIds,
    ).toEqual(['k-new']);
    expect(assess(input({ app: app([password('k1', 10)]) })).previousKeyIds).toEqual(['k1']);
    expect(assess(input({ app: app([password('k1', 10), password('k2', 20)]) })).previousKeyIds).toEqual([]);
    // Only credential of a broken connection: not known to be the one it holds.
    expect(assess(input({ app: app([password('k1', 10)]), connection: failed('') })).previousKeyIds).toEqual(
      [],
    );
  });
});

describe('assess: rotations in progress', () => {
  it.each([
    ['created', {}, 'created', false],
    ['applied', {}, 'applied', false],
    ['verified, retention running', { verifiedAt: inDays(-0.5) }, 'verified', false],
    ['verified, retention exactly over', { verifiedAt: inDays(-1) }, 'verified', true],
    ['verified, retention long over', { verifiedAt: inDays(-3) }, 'verified', true],
  ] as const)('%s', (phase, extra, expectedPhase, cleanupDue) => {
    const rec = record({ phase: expectedPhase, ...extra });
    const a = assess(
      input({ app: app([password('k-old', 5), password('k-new', 90, mine('r1'))]), record: rec }),
    );
    expect(a.pending).toMatchObject({ phase: expectedPhase, cleanupDue });
    if (phase.startsWith('verified'))
      expect(a.pending?.cleanupDueAt).toBe(new Date(Date.parse(rec.verifiedAt!) + DAY_MS).toISOString());
  });

  it('a completed rotation is not pending', () => {
    expect(
      assess(input({ app: app([password('k-new', 80, mine('r1'))]), record: record() })).pending,
    ).toBeUndefined();
  });

  it('cannot resume when the new credential was removed', () => {
    const a = assess(input({ app: app([password('k-old', 5)]), record: record({ phase: 'applied' }) }));
    expect(a.pending).toBeUndefined();
    expect(a.notes.join(' ')).toMatch(/cannot be resumed/);
  });
});

describe('assess: orphans (crash between Graph and Key Vault)', () => {
  const intent = (rotationId: string) => ({ rotationId, at: inDays(-1) });

  it('with a record: a marked credential of the rotation it noted as intended, never stored, is an orphan', () => {
    const a = assess(
      input({
        app: app([password('k-new', 80, mine('r1')), password('k-orphan', 90, mine('r2'))]),
        record: record({ intent: intent('r2') }),
      }),
    );
    expect(a.orphanKeyIds).toEqual(['k-orphan']);
    expect(a.credential?.keyId).toBe('k-new');
  });

  it("with a record: a marked credential it does not know, without the intent's evidence, is kept (no orphan)", () => {
    const a = assess(
      input({
        app: app([password('k-new', 80, mine('r1')), password('k-earlier', 90, mine('r0'))]),
        record: record(),
      }),
    );
    expect(a.orphanKeyIds).toEqual([]);
    expect(a.recordState).toBeUndefined();
  });

  it('with a record: recorded previous credentials are not orphans', () => {
    const a = assess(
      input({
        app: app([password('k-old', 5, mine('r0')), password('k-new', 80, mine('r1'))]),
        record: record({ phase: 'verified', intent: intent('r0') }),
      }),
    );
    expect(a.orphanKeyIds).toEqual([]);
  });

  it("without a record: the first rotation's intent proves its credential never reached Key Vault", () => {
    const a = assess(
      input({
        app: app([password('k-ado', 20), password('k-orphan', 90, mine('r1'))]),
        missingRecord: { softDeleted: false, intent: intent('r1') },
      }),
    );
    expect(a.orphanKeyIds).toEqual(['k-orphan']);
    expect(a.credential).toMatchObject({ keyId: 'k-ado', basis: 'only-credential' });
    expect(a.finding).toBe('expiring');
  });

  it('without a record nor intent: even a credential younger than the lock window is no orphan (its record may have been purged)', () => {
    const young = { ...password('k-mine', 90, mine('r1')), startDateTime: inDays(-20 / 86_400) };
    const a = assess(input({ app: app([password('k-ado', 20), young]) }));
    expect(a.orphanKeyIds).toEqual([]);
    expect(a.recordState).toBe('lost');
  });

  it('without a record nor intent: a live marked credential is a lost state, reported, never healthy nor removed', () => {
    for (const ready of [true, false]) {
      const a = assess(
        input({
          connection: ready ? connection() : failed('AADSTS7000215: invalid'),
          app: app([password('k-ado', -20), password('k-mine', 60, mine('r1'))]),
        }),
      );
      expect(a.orphanKeyIds).toEqual([]);
      expect(a).toMatchObject({ finding: 'error', recordState: 'lost', lostKeyIds: ['k-mine'] });
      expect(a.diagnosis?.kind).toBe('rotation-state-lost');
      expect(a.diagnosis?.cause).toContain('k-mine');
      expect(a.diagnosis?.nextStep).toContain(`sc-remediator-${CONNECTION_ID}`);
    }
  });

  it('without a record: expired marked credentials are harmless (no lost state)', () => {
    const a = assess(input({ app: app([password('k-ado', 200), password('k-mine', -2, mine('r1'))]) }));
    expect(a.recordState).toBeUndefined();
    expect(a.finding).not.toBe('error');
  });

  it('a soft-deleted record: not healthy, nothing judged until it is recovered', () => {
    const a = assess(
      input({
        app: app([password('k-new', 80, mine('r1')), password('k-x', 90, mine('r2'))]),
        missingRecord: { softDeleted: true, record: record() },
      }),
    );
    expect(a).toMatchObject({ finding: 'error', recordState: 'soft-deleted', orphanKeyIds: [] });
    expect(a.diagnosis?.kind).toBe('rotation-state-deleted');
  });

  it("never counts another connection's credentials as orphans", () => {
    expect(
      assess(input({ app: app([password('k1', 200), password('k2', 90, theirs)]) })).orphanKeyIds,
    ).toEqual([]);
  });
});

describe('assess: broken connections', () => {
  it.each([
    [
      'accesstoken null, secret fine',
      withParams({ accesstoken: null }),
      [password('k1', 200)],
      'not-ready',
      'access-token-invalid',
      false,
    ],
    [
      "accesstoken '', secret expiring",
      withParams({ accesstoken: '' }),
      [password('k1', 10)],
      'not-ready',
      'access-token-invalid',
      true,
    ],
    [
      'accesstoken null, secret expired',
      withParams({ accesstoken: null }),
      [password('k1', -1)],
      'expired',
      'access-token-invalid',
      true,
    ],
    [
      'failed with AADSTS7000215',
      failed('AADSTS7000215: Invalid client secret'),
      [password('k1', 200)],
      'not-ready',
      'invalid-secret',
      true,
    ],
    [
      'failed with AADSTS7000222 (inferred credential still valid)',
      failed('AADSTS7000222: expired'),
      [password('k1', 200)],
      'expired',
      'expired-secret',
      true,
    ],
    [
      'failed with AADSTS7000216 (no secret stored)',
      failed('AADSTS7000216: client_secret is required'),
      [password('k1', 200)],
      'not-ready',
      'missing-secret',
      true,
    ],
    [
      'failed with AADSTS7000112',
      failed('AADSTS7000112: Application is disabled.'),
      [password('k1', 200)],
      'not-ready',
      'app-disabled',
      false,
    ],
    [
      'failed with AuthorizationFailed',
      failed('{"error":{"code":"AuthorizationFailed"}}'),
      [password('k1', 200)],
      'not-ready',
      'missing-role-assignment',
      false,
    ],
    ['failed without a message', failed(''), [password('k1', 200)], 'not-ready', 'unknown', false],
    ['ready but its credential expired', connection(), [password('k1', -3)], 'expired', undefined, true],
    ['the app has no passwords', connection(), [], 'not-ready', 'missing-secret', true],
    [
      'only passwords of other connections',
      connection(),
      [password('k1', 90, theirs)],
      'not-ready',
      'missing-secret',
      true,
    ],
  ])('%s → %s', (_label, c, passwords, finding, kind, needsNewSecret) => {
    const a = assess(input({ connection: c, app: app(passwords) }));
    expect(a.finding).toBe(finding);
    expect(a.diagnosis?.kind).toBe(kind);
    expect(a.needsNewSecret).toBe(needsNewSecret);
  });

  it('a failed Verify makes a ready connection not-ready', () => {
    const a = assess(
      input({ test: { ok: false, statusCode: 'unauthorized', errorMessage: 'AADSTS7000215: bad' } }),
    );
    expect(a).toMatchObject({ finding: 'not-ready', secretRejected: true, needsNewSecret: true });
  });

  it('a rejected secret with a verified Key Vault secret still valid needs no new secret', () => {
    const a = assess(
      input({
        connection: failed('AADSTS7000215: Invalid client secret'),
        app: app([password('k-new', 80, mine('r1'))]),
        record: record(),
      }),
    );
    expect(a).toMatchObject({ finding: 'not-ready', secretRejected: true, needsNewSecret: false });
    expect(a.verifiedSecret).toEqual({ rotationId: 'r1', keyId: 'k-new', expiresAt: record().expiresAt });
  });

  it('a verified Key Vault secret that is expiring is not offered for re-use', () => {
    const a = assess(
      input({
        connection: failed('AADSTS7000215: x'),
        app: app([password('k-new', 5, mine('r1'))]),
        record: record(),
      }),
    );
    expect(a.verifiedSecret).toBeUndefined();
    expect(a.needsNewSecret).toBe(true);
  });
});

describe('assess: password policy', () => {
  it.each([
    [
      'expiring + addition blocked',
      [password('k1', 10)],
      { additionBlocked: true },
      undefined,
      'blocked-by-policy',
    ],
    [
      'expired + addition blocked',
      [password('k1', -1)],
      { additionBlocked: true },
      undefined,
      'blocked-by-policy',
    ],
    ['healthy + addition blocked', [password('k1', 200)], { additionBlocked: true }, undefined, 'healthy'],
    ['expiring + not blocked', [password('k1', 10)], { additionBlocked: false }, undefined, 'expiring'],
    [
      'expiring + blocked, but the rotation already created its credential',
      [password('k-old', 10), password('k-new', 90, mine('r1'))],
      { additionBlocked: true },
      record({ phase: 'created' }),
      'expiring',
    ],
  ])('%s → %s', (_label, passwords, passwordPolicy, rec, finding) => {
    const a = assess(input({ app: app(passwords), passwordPolicy, record: rec }));
    expect(a.finding).toBe(finding);
    if (finding === 'blocked-by-policy') expect(a.diagnosis?.kind).toBe('password-policy');
  });

  it('notes a lifetime cap that makes every new secret due at once', () => {
    const a = assess(input({ passwordPolicy: { additionBlocked: false, maxLifetimeDays: 30 } }));
    expect(a.notes.join(' ')).toMatch(/caps new secrets at 30 days/);
  });
});

describe('assess: identity fields', () => {
  it('carries what the report needs', () => {
    const a = assess(input());
    expect(a).toMatchObject({
      organization: 'contoso',
      organizationUrl: ORG_URL,
      connectionId: CONNECTION_ID,
      connectionName: 'prod-subscription',
      scheme: 'ServicePrincipal',
      authenticationType: 'spnKey',
      creationMode: 'Automatic',
      appId: APP_ID,
      applicationObjectId: app([]).id,
      connectionTenantId: TENANT_ID,
      isReady: true,
      operationState: 'Ready',
      accessTokenBroken: false,
    });
  });

  it('is pure: same input, same output, input untouched', () => {
    const i = input({ app: app([password('k1', 10), password('k2', 20)]), record: record() });
    const before = structuredClone(i);
    expect(assess(i)).toEqual(assess(i));
    expect(i).toEqual(before);
  });

  it.each([
    ['https://dev.azure.com/contoso', 'contoso'],
    ['https://dev.azure.com/contoso/', 'contoso'],
    ['https://dev.azure.com/my%20org', 'my org'],
    ['https://fabrikam.visualstudio.com', 'fabrikam'],
    ['https://fabrikam.visualstudio.com/DefaultCollection', 'fabrikam'],
    ['https://127.0.0.1:8443/contoso', 'contoso'],
    ['https://tfs.example/tfs/Coll', 'Coll'],
    ['weird', 'weird'],
  ])('organizationName(%s) = %s, as config derives it', (url, name) => {
    expect(organizationName(url)).toBe(name);
    const parsed = parseOrganizationUrl(url);
    if ('name' in parsed) expect(parsed.name).toBe(name);
  });

  it('takes the organization name from the caller when given', () => {
    expect(assess(input({ organization: 'Contoso Ltd' })).organization).toBe('Contoso Ltd');
  });
});
