/**
 * Pure parts of conversion, retirement and policy, table-driven: the federated credential format,
 * the PUT bodies, which connections are convertible, the policy file, rule matching and the final
 * decision for one connection.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';
import { assess, type AssessInput } from '../../src/remediation/assess';
import {
  azureDevOpsIssuerFederation,
  conversionEligibility,
  entraFederation,
  guidToBase64Url,
  toAzureDevOpsConversionBody,
  toAzureDevOpsRevertBody,
  toCertificateBody,
  toSecretBody,
  toWorkloadIdentityBody,
  withoutSecrets,
} from '../../src/remediation/federation';
import { plan } from '../../src/remediation/plan';
import { decide, type DecisionInput } from '../../src/remediation/policy';
import {
  DEFAULT_POLICY,
  matchesPattern,
  parsePolicy,
  resolvePolicy,
  type RemediationPolicy,
} from '../../src/remediation/policyFile';
import type { ConversionRecord, ServiceConnection } from '../../src/remediation/ports';

const NOW = new Date('2026-03-01T00:00:00Z');
const TENANT = 'ff882432-09b0-437b-bd22-ca13c0037ded';
const APP = '11111111-2222-4333-8444-555555555555';
const SECRET = 'abc8Q~do-not-print-this-value-000000000000';

function connection(
  overrides: Partial<ServiceConnection> = {},
  data: Record<string, string> = {},
): ServiceConnection {
  return {
    id: 'c0ffee00-0000-4000-8000-000000000001',
    name: 'web-prod',
    type: 'azurerm',
    url: 'https://management.azure.com/',
    data: { subscriptionId: 's', creationMode: 'Manual', ...data },
    authorization: {
      scheme: 'ServicePrincipal',
      parameters: {
        tenantid: TENANT,
        serviceprincipalid: APP,
        authenticationType: 'spnKey',
        serviceprincipalkey: null,
      },
    },
    isReady: true,
    serviceEndpointProjectReferences: [{ projectReference: { id: 'p1', name: 'web' }, name: 'web-prod' }],
    ...overrides,
  };
}

describe('the federated credential Azure DevOps expects', () => {
  test.each([
    // Published subjects (Entra issuer, 2025): tenant ff882432-… encodes to MiSI_7AJe0O9IsoTwAN97Q.
    [TENANT, 'MiSI_7AJe0O9IsoTwAN97Q'],
    // Azure DevOps' own application id: the `/a/` segment of every published subject.
    ['499b84ac-1321-427f-aa17-267ca6975798', 'rISbSSETf0KqFyZ8ppdXmA'],
  ])('%s → %s (.NET byte order, base64url, no padding)', (guid, expected) => {
    expect(guidToBase64Url(guid)).toBe(expected);
  });

  test('Entra issuer format: issuer per tenant, subject /eid1/c/pub/t/…/a/…/sc/{organizationId}/{connectionId}', () => {
    expect(
      entraFederation(TENANT, '0ca3ddd9-f0b0-4635-a98c-5866526961b6', '64171687-7a59-4fce-b2c8-823278dcf176'),
    ).toEqual({
      issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`,
      subject:
        '/eid1/c/pub/t/MiSI_7AJe0O9IsoTwAN97Q/a/rISbSSETf0KqFyZ8ppdXmA/sc/0ca3ddd9-f0b0-4635-a98c-5866526961b6/64171687-7a59-4fce-b2c8-823278dcf176',
    });
  });

  test('the older Azure DevOps issuer format', () => {
    expect(azureDevOpsIssuerFederation('org-id', 'contoso', 'web', 'web-prod')).toEqual({
      issuer: 'https://vstoken.dev.azure.com/org-id',
      subject: 'sc://contoso/web/web-prod',
    });
  });

  test('not a GUID is refused', () => {
    expect(() => guidToBase64Url('contoso')).toThrow(/Not a GUID/);
  });
});

describe('PUT bodies', () => {
  const automatic = connection(
    {
      authorization: {
        scheme: 'ServicePrincipal',
        parameters: {
          tenantid: TENANT,
          serviceprincipalid: APP,
          serviceprincipalkey: null,
          accesstoken: null,
        },
      },
    },
    {
      creationMode: 'Automatic',
      spnObjectId: 'o',
      appObjectId: 'a',
      azureSpnRoleAssignmentId: 'r',
      revertSchemeDeadline: 'x',
    },
  );

  test("Azure DevOps' conversion: as read, scheme WorkloadIdentityFederation, no revertSchemeDeadline (Microsoft's script)", () => {
    const body = toAzureDevOpsConversionBody(automatic);
    expect(body.authorization.scheme).toBe('WorkloadIdentityFederation');
    expect(body.data).toEqual({
      subscriptionId: 's',
      creationMode: 'Automatic',
      spnObjectId: 'o',
      appObjectId: 'a',
      azureSpnRoleAssignmentId: 'r',
    });
    expect(toAzureDevOpsRevertBody(automatic).authorization.scheme).toBe('ServicePrincipal');
    expect(automatic.authorization.scheme).toBe('ServicePrincipal'); // input untouched
  });

  test('federated-credential conversion: Manual, no secret, no authenticationType, no issuer/subject of our own', () => {
    const body = toWorkloadIdentityBody({
      ...automatic,
      authorization: {
        scheme: 'ServicePrincipal',
        parameters: { ...automatic.authorization.parameters, workloadIdentityFederationSubject: 'stale' },
      },
    });
    expect(body.data).toEqual({ subscriptionId: 's', creationMode: 'Manual' });
    expect(body.authorization).toEqual({
      scheme: 'WorkloadIdentityFederation',
      parameters: { tenantid: TENANT, serviceprincipalid: APP },
    });
  });

  test('back on the secret: ServicePrincipal, spnKey, Manual, the secret, no federation parameters', () => {
    const wif = toWorkloadIdentityBody(automatic);
    wif.authorization.parameters['workloadIdentityFederationIssuer'] = 'i';
    const body = toSecretBody(wif, SECRET);
    expect(body.authorization.scheme).toBe('ServicePrincipal');
    expect(body.authorization.parameters).toEqual({
      tenantid: TENANT,
      serviceprincipalid: APP,
      authenticationType: 'spnKey',
      serviceprincipalkey: SECRET,
    });
  });

  test('back on the certificate: ServicePrincipal, spnCertificate, Manual, the PEM, no key, no federation parameters', () => {
    const certificateConnection = {
      ...automatic,
      authorization: {
        scheme: 'ServicePrincipal',
        parameters: { tenantid: TENANT, serviceprincipalid: APP, authenticationType: 'spnCertificate' },
      },
    };
    const wif = toWorkloadIdentityBody(certificateConnection);
    expect(wif.authorization.parameters).toEqual({ tenantid: TENANT, serviceprincipalid: APP });
    wif.authorization.parameters['workloadIdentityFederationIssuer'] = 'i';
    wif.authorization.parameters['workloadIdentityFederationSubject'] = 's';
    const pem =
      '-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n';
    const body = toCertificateBody(wif, pem);
    expect(body.data).toEqual({ subscriptionId: 's', creationMode: 'Manual' });
    expect(body.authorization).toEqual({
      scheme: 'ServicePrincipal',
      parameters: {
        tenantid: TENANT,
        serviceprincipalid: APP,
        authenticationType: 'spnCertificate',
        servicePrincipalCertificate: pem,
      },
    });
    // Never a PEM without its key (Azure DevOps signs with it).
    expect(() =>
      toCertificateBody(wif, '-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----'),
    ).toThrow();
  });

  test('the ledger keeps the definition without anything that looks like a credential', () => {
    const kept = withoutSecrets(
      connection({
        authorization: {
          scheme: 'ServicePrincipal',
          parameters: {
            tenantid: TENANT,
            serviceprincipalid: APP,
            serviceprincipalkey: SECRET,
            servicePrincipalCertificate: 'PEM',
            accesstoken: 'tok',
            somePassword: 'p',
            clientSecret: 's',
          },
        },
      }),
    );
    expect(kept.authorization.parameters).toEqual({ tenantid: TENANT, serviceprincipalid: APP });
    expect(JSON.stringify(kept)).not.toContain(SECRET);
    expect(kept.name).toBe('web-prod');
  });
});

/** `'gone'`: Graph finds no such app. */
function assessed(
  c: ServiceConnection,
  given: AssessInput['app'] | 'gone' = { id: 'obj', appId: APP, displayName: 'a', passwordCredentials: [] },
) {
  const app = given === 'gone' ? undefined : given;
  return assess({
    connection: c,
    organizationUrl: 'https://dev.azure.com/contoso',
    projects: c.serviceEndpointProjectReferences.map((r) => ({
      id: r.projectReference.id,
      name: r.projectReference.name ?? '',
    })),
    app,
    record: undefined,
    settings: { rotateDaysBeforeExpiry: 30, oldSecretRetentionHours: 24, tenantId: TENANT },
    now: NOW,
  });
}

describe('which connections can be converted', () => {
  const shared = connection({
    serviceEndpointProjectReferences: [
      { projectReference: { id: 'p1', name: 'web' }, name: 'n' },
      { projectReference: { id: 'p2', name: 'data' }, name: 'n' },
    ],
  });
  test.each<[string, ServiceConnection, AssessInput['app'] | 'gone' | 'default', object]>([
    ['Manual, one project', connection(), 'default', { path: 'federated-credential' }],
    [
      'Automatic, one project',
      connection({}, { creationMode: 'Automatic' }),
      'default',
      { path: 'azure-devops' },
    ],
    [
      'Automatic, shared',
      { ...shared, data: { creationMode: 'Automatic' } },
      'default',
      { path: 'federated-credential' },
    ],
    ['app gone', connection(), 'gone', { reason: 'its app registration does not exist' }],
    [
      'workload identity already',
      connection({
        authorization: { scheme: 'WorkloadIdentityFederation', parameters: { serviceprincipalid: APP } },
      }),
      'default',
      { reason: 'it authenticates with WorkloadIdentityFederation, not a client secret or certificate' },
    ],
    [
      'certificate',
      connection({
        authorization: {
          scheme: 'ServicePrincipal',
          parameters: { serviceprincipalid: APP, authenticationType: 'spnCertificate' },
        },
      }),
      'default',
      { path: 'federated-credential' },
    ],
    [
      // Azure DevOps' own conversion is documented for connections it created with a secret only.
      'certificate, Automatic, one project',
      connection(
        {
          authorization: {
            scheme: 'ServicePrincipal',
            parameters: { serviceprincipalid: APP, authenticationType: 'spnCertificate' },
          },
        },
        { creationMode: 'Automatic' },
      ),
      'default',
      { path: 'federated-credential' },
    ],
    [
      'another authentication type',
      connection({
        authorization: {
          scheme: 'ServicePrincipal',
          parameters: { serviceprincipalid: APP, authenticationType: 'spnSomethingElse' },
        },
      }),
      'default',
      { reason: "it authenticates with 'spnSomethingElse', not a client secret or certificate" },
    ],
  ])('%s', (_label, c, app, expected) => {
    const a = app === 'default' ? assessed(c) : assessed(c, app);
    expect(conversionEligibility(a)).toEqual(expected);
  });
});

describe('the policy file', () => {
  test('a valid policy', () => {
    expect(
      parsePolicy(
        JSON.stringify({
          default: 'report-only',
          rules: [{ organization: 'contoso', project: 'web', connection: 'web-*', action: 'convert-to-wif' }],
        }),
      ),
    ).toEqual({
      policy: {
        default: 'report-only',
        rules: [{ organization: 'contoso', project: 'web', connection: 'web-*', action: 'convert-to-wif' }],
      },
    });
  });

  test('every problem at once', () => {
    const result = parsePolicy(
      JSON.stringify({
        default: 'delete',
        rulez: [],
        rules: [{ action: 'rotate', team: 'x' }, { connection: '' }, 'x'],
      }),
    );
    expect(result).toEqual({
      problems: [
        "has an unknown property 'rulez'",
        '"default" must be one of rotate, convert-to-wif, report-only, exclude',
        "rule 1 has an unknown property 'team' (expected organization, project, connection, action)",
        'rule 2: "action" must be one of rotate, convert-to-wif, report-only, exclude',
        'rule 3 must be an object',
      ],
    });
    expect(parsePolicy('{')).toEqual({ problems: [expect.stringMatching(/^is not valid JSON/)] });
  });

  test.each([
    ['web-*', 'web-prod', true],
    ['WEB-*', 'web-prod', true],
    ['web-?rod', 'web-prod', true],
    ['web', 'web-prod', false],
    ['a.b', 'axb', false],
  ])('pattern %s vs %s → %s', (pattern, value, expected) => {
    expect(matchesPattern(pattern, value)).toBe(expected);
  });

  const policy: RemediationPolicy = {
    default: 'rotate',
    rules: [
      { connection: 'legacy-*', action: 'exclude' },
      { organization: 'fabrikam', action: 'report-only' },
      { organization: 'https://dev.azure.com/contoso', project: 'web', action: 'convert-to-wif' },
      { project: 'platform', action: 'report-only' },
    ],
  };
  test.each([
    [
      'no rule: the default',
      { organization: 'contoso', projects: ['data'], connectionName: 'x' },
      'rotate',
      undefined,
    ],
    [
      'first match wins',
      { organization: 'fabrikam', projects: ['web'], connectionName: 'legacy-1' },
      'exclude',
      1,
    ],
    [
      'organization by name',
      { organization: 'fabrikam', projects: ['p'], connectionName: 'x' },
      'report-only',
      2,
    ],
    [
      'organization by URL, and project',
      {
        organization: 'contoso',
        organizationUrl: 'https://dev.azure.com/contoso',
        projects: ['web'],
        connectionName: 'x',
      },
      'convert-to-wif',
      3,
    ],
    [
      'shared: the most careful project wins',
      {
        organization: 'contoso',
        organizationUrl: 'https://dev.azure.com/contoso',
        projects: ['web', 'platform'],
        connectionName: 'x',
      },
      'report-only',
      4,
    ],
  ])('%s', (_label, subject, choice, rule) => {
    const d = resolvePolicy(policy, subject);
    expect(d.choice).toBe(choice);
    expect(d.rule).toBe(rule);
  });

  test('no policy at all: rotate, from no rule', () => {
    expect(resolvePolicy(DEFAULT_POLICY, { organization: 'o', projects: [], connectionName: 'c' })).toEqual({
      choice: 'rotate',
      source: 'the default (no policy)',
    });
  });
});

describe('REMEDIATION_POLICY, REMEDIATION_POLICY_FILE, ENABLE_RETIREMENT, RETIRE_FAILED_AFTER_DAYS', () => {
  const BASE = {
    AZDO_ORGANIZATION_URLS: 'https://dev.azure.com/contoso',
    KEY_VAULT_URL: 'https://kv.vault.azure.net',
  };

  test('defaults: no policy, retirement off, no age', () => {
    const c = loadConfig(BASE);
    expect(c.policy).toBeUndefined();
    expect(c.enableRetirement).toBe(false);
    expect(c.retireFailedAfterDays).toBe(0);
  });

  test('inline and from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    try {
      const file = join(dir, 'policy.json');
      writeFileSync(file, JSON.stringify({ rules: [{ connection: 'x', action: 'exclude' }] }));
      expect(loadConfig({ ...BASE, REMEDIATION_POLICY_FILE: file }).policy).toEqual({
        default: 'rotate',
        rules: [{ connection: 'x', action: 'exclude' }],
      });
      expect(
        loadConfig({
          ...BASE,
          REMEDIATION_POLICY: '{"default":"report-only"}',
          ENABLE_RETIREMENT: 'true',
          RETIRE_FAILED_AFTER_DAYS: '30',
        }),
      ).toMatchObject({
        policy: { default: 'report-only', rules: [] },
        enableRetirement: true,
        retireFailedAfterDays: 30,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every bad one in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        ...BASE,
        REMEDIATION_POLICY: '@Microsoft.KeyVault(VaultName=kv;SecretName=remediation-policy)',
        REMEDIATION_POLICY_FILE: '/no/such/policy.json',
        ENABLE_RETIREMENT: 'maybe',
        RETIRE_FAILED_AFTER_DAYS: '-1',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => [p.setting, p.problem])).toEqual([
      [
        'REMEDIATION_POLICY',
        'the policy is an unresolved Key Vault reference (the app cannot read the secret)',
      ],
      ['REMEDIATION_POLICY_FILE', "cannot be read (got '/no/such/policy.json'): ENOENT"],
      ['REMEDIATION_POLICY_FILE', 'is set together with REMEDIATION_POLICY'],
      ['ENABLE_RETIREMENT', "is not a boolean (got 'maybe')"],
      ['RETIRE_FAILED_AFTER_DAYS', "is out of range (got '-1')"],
    ]);
  });

  test('both the inline policy and a file: refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    try {
      const file = join(dir, 'p.json');
      writeFileSync(file, '{}');
      expect(() => loadConfig({ ...BASE, REMEDIATION_POLICY: '{}', REMEDIATION_POLICY_FILE: file })).toThrow(
        /REMEDIATION_POLICY_FILE: is set together with REMEDIATION_POLICY/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('decide: the final plan for one connection', () => {
  const retirementOff = { enabled: false, ledger: true };
  function input(
    c: ServiceConnection,
    extra: Partial<DecisionInput> = {},
    app: AssessInput['app'] | 'gone' | 'default' = 'default',
  ): DecisionInput {
    const a = app === 'default' ? assessed(c) : assessed(c, app);
    return {
      assessment: a,
      plan: plan(a, { secretLifetimeDays: 90, oldSecretRetentionHours: 24, rotateDaysBeforeExpiry: 30 }),
      connection: c,
      policy: { choice: 'rotate', source: 'the default (no policy)' },
      retirement: retirementOff,
      now: NOW,
      oldSecretRetentionHours: 24,
      ...extra,
    };
  }
  const withPassword = {
    id: 'obj',
    appId: APP,
    displayName: 'a',
    passwordCredentials: [
      {
        keyId: 'k1',
        displayName: null,
        hint: null,
        startDateTime: null,
        endDateTime: '2027-01-01T00:00:00Z',
      },
    ],
  };

  test('rotate (no policy): never converts, notes convertible', () => {
    const d = decide(input(connection(), {}, withPassword));
    expect(d.plan.action).toBe('none');
    expect(d.convertible).toBe('federated-credential');
  });

  test('convert-to-wif by policy: convert; Manual without a verified Key Vault secret rotates first', () => {
    const d = decide(
      input(
        connection(),
        { policy: { choice: 'convert-to-wif', rule: 2, source: 'policy rule 2' } },
        withPassword,
      ),
    );
    expect(d.plan).toMatchObject({
      action: 'convert-to-wif',
      conversion: { kind: 'convert', path: 'federated-credential', needsFallbackSecret: true },
      previousKeyIds: ['k1'],
    });
    expect(d.plan.reason).toMatch(/^Conversion by policy rule 2/);
  });

  test('report-only turns a conversion into a report that says what would be done', () => {
    const d = decide(
      input(
        connection(),
        { policy: { choice: 'report-only', rule: 1, source: 'policy rule 1' }, intent: undefined },
        withPassword,
      ),
    );
    expect(d.plan.action).toBe('none');
    const expired = decide(
      input(
        connection(),
        { policy: { choice: 'report-only', rule: 1, source: 'policy rule 1' } },
        {
          ...withPassword,
          passwordCredentials: [
            { ...withPassword.passwordCredentials[0]!, endDateTime: '2026-01-01T00:00:00Z' },
          ],
        },
      ),
    );
    expect(expired.plan.action).toBe('report');
    expect(expired.plan.reason).toMatch(/^Policy report-only \(policy rule 1\): would rotate-secret: /);
  });

  test('app gone: reported as retirable, retired only when enabled and the ledger is there', () => {
    const off = decide(input(connection(), {}, 'gone'));
    expect(off).toMatchObject({ plan: { action: 'report' }, retirable: true });
    const on = decide(input(connection(), { retirement: { enabled: true, ledger: true } }, 'gone'));
    expect(on.plan).toMatchObject({
      action: 'delete',
      retirement: { reason: `its app registration ${APP} no longer exists` },
    });
    const noLedger = decide(input(connection(), { retirement: { enabled: true, ledger: false } }, 'gone'));
    expect(noLedger.plan.action).toBe('report');
    expect(noLedger.plan.reason).toMatch(/needs the run ledger/);
  });

  test('failing past the age, with the age set: retired', () => {
    const failing = connection({ isReady: false, operationStatus: { state: 'Failed', statusMessage: 'x' } });
    const young = decide(
      input(
        failing,
        {
          retirement: { enabled: true, failedAfterDays: 30, ledger: true },
          failingSince: '2026-02-15T00:00:00Z',
        },
        withPassword,
      ),
    );
    expect(young.plan.action).not.toBe('delete');
    const old = decide(
      input(
        failing,
        {
          retirement: { enabled: true, failedAfterDays: 30, ledger: true },
          failingSince: '2026-01-01T00:00:00Z',
        },
        withPassword,
      ),
    );
    expect(old.plan.action).toBe('delete');
  });

  test('a connection of another tenant is never retired: not when failing long, not when its app is not found here, not on request', () => {
    const other = '00000000-0000-4000-8000-0000000000aa';
    const failing = connection({ isReady: false, operationStatus: { state: 'Failed', statusMessage: 'x' } });
    const foreign = {
      ...failing,
      authorization: {
        ...failing.authorization,
        parameters: { ...failing.authorization.parameters, tenantid: other },
      },
    };
    for (const extra of [
      {
        retirement: { enabled: true, failedAfterDays: 30, ledger: true },
        failingSince: '2026-01-01T00:00:00Z',
      },
      { retirement: { enabled: true, ledger: true } },
      { retirement: { enabled: true, ledger: true }, intent: 'retire' as const },
    ]) {
      const d = decide(input(foreign, extra, 'gone'));
      expect(d.plan.action).toBe('report');
      expect(d.retirable).toBeUndefined();
    }
  });

  test('a conversion under way is resumed; a verified one waits, then finishes', () => {
    const wif = connection({
      authorization: { scheme: 'WorkloadIdentityFederation', parameters: { serviceprincipalid: APP } },
    });
    const record: ConversionRecord = {
      connectionId: wif.id,
      organization: 'o',
      appId: APP,
      path: 'federated-credential',
      phase: 'converted',
      originalCreationMode: 'Manual',
      previousKeyIds: [],
      federatedCredentialIds: [],
      startedAt: '2026-02-28T00:00:00Z',
    };
    expect(decide(input(wif, { conversion: record })).plan).toMatchObject({
      action: 'convert-to-wif',
      conversion: { kind: 'resume' },
    });
    const verified = { ...record, phase: 'verified' as const, verifiedAt: '2026-02-28T12:00:00Z' };
    expect(decide(input(wif, { conversion: verified })).plan.action).toBe('none');
    expect(
      decide(input(wif, { conversion: { ...verified, verifiedAt: '2026-02-27T00:00:00Z' } })).plan.action,
    ).toBe('convert-to-wif');
    expect(decide(input(wif, { conversion: verified, intent: 'revert' })).plan).toMatchObject({
      conversion: { kind: 'revert', path: 'federated-credential' },
    });
  });

  test('a reverted conversion is not redone by policy, but is on request', () => {
    const record: ConversionRecord = {
      connectionId: 'c',
      organization: 'o',
      appId: APP,
      path: 'azure-devops',
      phase: 'reverted',
      originalCreationMode: 'Automatic',
      previousKeyIds: [],
      federatedCredentialIds: [],
      startedAt: '2026-02-20T00:00:00Z',
      revertedAt: '2026-02-21T00:00:00Z',
    };
    const c = connection({}, { creationMode: 'Automatic' });
    const byPolicy = decide(
      input(c, { policy: { choice: 'convert-to-wif', source: 'p' }, conversion: record }, withPassword),
    );
    expect(byPolicy.plan.action).toBe('none');
    expect(byPolicy.plan.reason).toMatch(/Not converted again/);
    expect(decide(input(c, { intent: 'convert', conversion: record }, withPassword)).plan.action).toBe(
      'convert-to-wif',
    );
  });

  test('explicit requests that cannot be done are reported, not attempted', () => {
    expect(decide(input(connection(), { intent: 'retire' }, withPassword)).plan.action).toBe('report');
    expect(decide(input(connection(), { intent: 'revert' }, withPassword)).plan.reason).toMatch(
      /^Nothing to revert/,
    );
    expect(decide(input(connection(), { intent: 'convert' }, 'gone')).plan.reason).toMatch(
      /^Cannot convert: its app registration does not exist/,
    );
    expect(
      decide(
        input(
          connection(),
          { intent: 'convert', policy: { choice: 'exclude', rule: 1, source: 'policy rule 1' } },
          withPassword,
        ),
      ).plan.action,
    ).toBe('report');
  });
});
