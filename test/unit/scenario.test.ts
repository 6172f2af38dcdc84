/**
 * Scenarios: the shipped ones load; the schema and reference checks reject bad input listing every
 * problem; and the default scenario holds a connection for each situation in the field reports and
 * troubleshooting pages (shared/background).
 */
import type { AppRecord, EndpointRecord, PasswordCredentialRecord, TenantState } from '../../sandbox/model';
import { loadScenario, readScenario, type Scenario } from '../../sandbox/scenario';
import { ScenarioValidationError, validateScenario } from '../../sandbox/scenarioSchema';

const DAY_MS = 24 * 3600 * 1000;
const GUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

function problemsOf(value: unknown): string[] {
  try {
    validateScenario(value, "'test'");
  } catch (err) {
    if (err instanceof ScenarioValidationError) return err.problems;
    throw err;
  }
  return [];
}

describe('shipped scenarios', () => {
  test.each(['default', 'minimal'])('%s is valid and loads', (name) => {
    const scenario = readScenario(name);
    expect(scenario.name).toBe(name);
    const state = loadScenario(scenario);
    expect(state.organizations.size).toBeGreaterThan(0);
  });

  test('minimal: one org, one project, an expiring Manual connection and a healthy one', () => {
    const scenario = readScenario('minimal');
    expect(scenario.organizations).toHaveLength(1);
    expect(scenario.organizations[0]!.projects).toHaveLength(1);
    expect(scenario.organizations[0]!.connections.map((c) => c.case).sort()).toEqual([
      'healthy',
      'manual-secret-expiring',
    ]);
  });

  test('unknown or malformed names are refused', () => {
    expect(() => readScenario('no-such-scenario')).toThrow(/Cannot read scenario 'no-such-scenario'/);
    expect(() => readScenario('../package')).toThrow(/Invalid scenario name/);
  });
});

describe('validation', () => {
  test('schema problems are all listed, each with where it is', () => {
    const bad = structuredClone(readScenario('minimal')) as unknown as Record<string, unknown>;
    const orgs = bad['organizations'] as Record<string, unknown>[];
    const connections = orgs[0]!['connections'] as Record<string, unknown>[];
    connections[0]!['scheme'] = 'Certificate';
    connections[0]!['colour'] = 'blue';
    delete connections[1]!['name'];
    connections[1]!['subscriptionId'] = 'not-a-guid';
    (bad['apps'] as Record<string, unknown>[])[0]!['policy'] = { passwordLifetimeMax: '60 days' };
    bad['tenantId'] = 42;

    const problems = problemsOf(bad);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^\/organizations\/0 \(contoso\)\/connections\/0 \(api-deploy\)\/scheme: must be one of/,
        ),
        "/organizations/0 (contoso)/connections/0 (api-deploy): unknown property 'colour'",
        "/organizations/0 (contoso)/connections/1 (api-monitoring): missing required property 'name'",
        expect.stringMatching(
          /connections\/1 \(api-monitoring\)\/subscriptionId: "not-a-guid" does not match/,
        ),
        expect.stringMatching(
          /^\/apps\/0 \(api-deploy\)\/policy\/passwordLifetimeMax: "60 days" does not match/,
        ),
        '/tenantId: must be string',
      ]),
    );
    expect(problems).toHaveLength(6);
    expect(() => validateScenario(bad, "'test'")).toThrow(
      /Scenario 'test' is invalid \(6 problems\):\n {2}- /,
    );
  });

  test('broken references are all listed', () => {
    const bad: Scenario = structuredClone(readScenario('minimal'));
    bad.productIdentity = 'alice';
    bad.apps[0]!.owners = ['remediator', 'nobody'];
    bad.apps.push({ ...bad.apps[1]!, passwords: [{ key: 'p', startInDays: 5, endInDays: 1 }] });
    const [c0, c1] = bad.organizations[0]!.connections;
    c0!.app = 'missing-app';
    c1!.secret = 'missing-secret';
    c1!.projects = ['api', 'nope'];
    c1!.createdBy = 'ghost';
    bad.organizations[0]!.members.push({ identity: 'stranger', endpointAdministrator: false });
    bad.organizations[0]!.connections.push({
      ...c1!,
      secret: undefined,
      scheme: 'WorkloadIdentityFederation',
    });

    expect(problemsOf(bad)).toEqual([
      "/apps: key 'api-healthy' is used more than once",
      "/productIdentity: 'alice' must be a servicePrincipal (it signs in with a secret)",
      "/apps/0 (api-deploy)/owners: 'nobody' is not one of the identities",
      '/apps/2 (api-healthy)/passwords/0 (p): startInDays must be before endInDays',
      "/organizations/0 (contoso)/members/2: 'stranger' is not one of the identities",
      "/organizations/0 (contoso)/connections: key 'api-monitoring' is used more than once",
      "/organizations/0 (contoso)/connections/0 (api-deploy)/app: 'missing-app' is not one of the apps",
      "/organizations/0 (contoso)/connections/1 (api-monitoring)/projects: 'nope' is not a project of 'contoso'",
      "/organizations/0 (contoso)/connections/1 (api-monitoring)/secret: app 'api-healthy' has no password 'missing-secret'",
      "/organizations/0 (contoso)/connections/1 (api-monitoring)/createdBy: 'ghost' is not one of the identities",
      "/organizations/0 (contoso)/connections/2 (api-monitoring)/projects: 'nope' is not a project of 'contoso'",
      "/organizations/0 (contoso)/connections/2 (api-monitoring)/createdBy: 'ghost' is not one of the identities",
    ]);
  });

  test('not an object at all', () => {
    expect(problemsOf([])).toEqual(['(scenario): must be object']);
  });
});

describe('default scenario: one connection per background situation', () => {
  const scenario = readScenario('default');
  const state: TenantState = loadScenario(scenario);
  const now = Date.now();

  interface Case {
    org: string;
    ep: EndpointRecord;
    app?: AppRecord;
    password?: PasswordCredentialRecord;
    daysLeft?: number;
  }

  function byCase(name: string): Case {
    for (const org of scenario.organizations) {
      const c = org.connections.find((x) => x.case === name);
      if (!c) continue;
      const ep = [...state.organization(org.name)!.endpoints.values()].find((e) => e.name === c.name)!;
      const appId = ep.authorization.parameters['serviceprincipalid'];
      const app = [...state.apps.values()].find((a) => a.appId === appId);
      const key = ep.authorization.parameters['serviceprincipalkey'];
      const password = app?.passwordCredentials.find((p) => p.secretText === key);
      const daysLeft = password ? (Date.parse(password.endDateTime) - now) / DAY_MS : undefined;
      return { org: org.name, ep, app, password, daysLeft };
    }
    throw new Error(`no connection for case '${name}'`);
  }

  test('the product identity: Application.ReadWrite.OwnedBy and Policy.Read.All, Key Vault writer, endpoint administrator in contoso and fabrikam only', () => {
    const product = state.identities.get(scenario.productIdentity)!;
    expect(product.kind).toBe('servicePrincipal');
    expect(product.graphPermissions).toEqual(['Application.ReadWrite.OwnedBy', 'Policy.Read.All']);
    expect(state.vault.writers).toContain(product.key);
    for (const name of ['contoso', 'fabrikam'])
      expect(state.organization(name)!.members).toContainEqual({
        identity: product.key,
        endpointAdministrator: true,
      });
    // A member of northwind, but not service connection Administrator there (preflight reports it).
    expect(state.organization('northwind')!.members).toContainEqual({
      identity: product.key,
      endpointAdministrator: false,
    });
    expect(state.organization('contoso')!.projects.map((p) => p.name)).toEqual(['web', 'data', 'platform']);
    expect(state.organization('fabrikam')!.projects.map((p) => p.name)).toEqual(['payments']);
    expect(state.organization('northwind')!.projects.map((p) => p.name)).toEqual(['ops']);
  });

  test('field report: three Failed connections in one project beside one that works', () => {
    const failed = ['failed-secret-expired', 'failed-app-disabled', 'failed-no-subscription-role'].map(
      byCase,
    );
    for (const c of failed) {
      expect(c.ep.isReady).toBe(false);
      expect(c.ep.operationStatus.state).toBe('Failed');
      expect(c.ep.serviceEndpointProjectReferences.map((r) => r.projectReference.name)).toEqual(['web']);
    }
    const [expired, disabled, noRole] = failed;
    expect(expired!.ep.data['creationMode']).toBe('Automatic');
    expect(expired!.daysLeft).toBeLessThan(0);
    expect(expired!.ep.operationStatus.statusMessage).toMatch(
      new RegExp(
        `^Failed to obtain the Json Web Token\\(JWT\\).*AADSTS7000222: .*'${expired!.app!.appId}' are expired`,
      ),
    );
    expect(disabled!.app!.disabled).toBe(true);
    expect(disabled!.daysLeft).toBeGreaterThan(0);
    expect(disabled!.ep.operationStatus.statusMessage).toContain(
      `AADSTS7000112: Application '${disabled!.app!.appId}'`,
    );
    expect(noRole!.app!.hasSubscriptionRole).toBe(false);
    expect(noRole!.ep.operationStatus.statusMessage).toMatch(/^Failed to assign Contributor role/);
    expect(byCase('healthy').ep.serviceEndpointProjectReferences[0]!.projectReference.name).toBe('web');
  });

  test('an Automatic connection expiring in 7 days whose app holds another consumer’s password', () => {
    const c = byCase('automatic-expiring-other-password');
    expect(c.ep.data['creationMode']).toBe('Automatic');
    expect(c.ep.data['spnObjectId']).toBeDefined();
    expect(c.daysLeft).toBeCloseTo(7, 0);
    const others = c.app!.passwordCredentials.filter((p) => p !== c.password);
    expect(others).toHaveLength(1);
    expect(Date.parse(others[0]!.endDateTime)).toBeGreaterThan(now + 300 * DAY_MS);
  });

  test('accesstoken: null on an otherwise valid connection', () => {
    const c = byCase('accesstoken-null');
    expect(c.ep.authorization.parameters).toHaveProperty('accesstoken', null);
    expect(c.daysLeft).toBeGreaterThan(30);
    expect(c.app!.disabled).toBe(false);
  });

  test('an app that was deleted', () => {
    const c = byCase('app-deleted');
    expect(c.app!.deleted).toBe(true);
    expect(state.appByAppId(c.app!.appId)).toBeUndefined();
  });

  test('a Manual connection whose secret has expired', () => {
    const c = byCase('manual-secret-expired');
    expect(c.ep.data['creationMode']).toBe('Manual');
    expect(c.ep.data['spnObjectId']).toBeUndefined();
    expect(c.daysLeft).toBeLessThan(0);
  });

  test('workload identity federation and managed identity: no secret', () => {
    const wif = byCase('workload-identity');
    expect(wif.ep.authorization.scheme).toBe('WorkloadIdentityFederation');
    expect(wif.ep.authorization.parameters['serviceprincipalkey']).toBeUndefined();
    expect(byCase('managed-identity').ep.authorization.scheme).toBe('ManagedServiceIdentity');
  });

  test('a connection shared across two projects, expiring in 20 days', () => {
    const c = byCase('shared-across-projects');
    expect(c.ep.isShared).toBe(true);
    expect(c.ep.serviceEndpointProjectReferences).toHaveLength(2);
    expect(c.daysLeft).toBeCloseTo(20, 0);
  });

  test('a healthy connection with 200 days left', () => {
    const c = byCase('healthy');
    expect(c.daysLeft).toBeCloseTo(200, 0);
    expect(c.app!.owners).toContain(scenario.productIdentity);
  });

  test('app management policies: a lifetime cap on an expiring connection, and a block on new passwords', () => {
    const capped = byCase('policy-lifetime-cap');
    expect(state.restrictionsFor(capped.app!).passwordLifetimeMax).toBe('P60D');
    expect(capped.daysLeft).toBeLessThan(30);
    const blocked = byCase('policy-blocks-passwords');
    expect(state.restrictionsFor(blocked.app!).passwordAdditionBlocked).toBe(true);
  });

  test('a personal-account app at its two-password limit, and an app the product does not own', () => {
    const personal = byCase('personal-account-password-limit');
    expect(personal.app!.signInAudience).toBe('AzureADandPersonalMicrosoftAccount');
    expect(personal.app!.passwordCredentials).toHaveLength(2);
    const notOwned = byCase('app-not-owned');
    expect(notOwned.app!.owners).not.toContain(scenario.productIdentity);
    expect(notOwned.daysLeft).toBeLessThan(30);
  });

  test('the product owns every other app', () => {
    for (const app of state.apps.values())
      if (app.displayName !== byCase('app-not-owned').app!.displayName)
        expect(app.owners).toContain(scenario.productIdentity);
  });

  test('every case is different and every password has a realistic name', () => {
    const cases = scenario.organizations.flatMap((o) => o.connections.map((c) => c.case));
    expect(cases.every(Boolean)).toBe(true);
    expect(new Set(cases).size).toBe(cases.length);
    for (const org of state.organizations.values())
      for (const ep of org.endpoints.values()) {
        if (ep.data['creationMode'] !== 'Automatic' || ep.authorization.scheme !== 'ServicePrincipal')
          continue;
        const project = ep.serviceEndpointProjectReferences[0]!.projectReference.name;
        const app = [...state.apps.values()].find(
          (a) => a.appId === ep.authorization.parameters['serviceprincipalid'],
        );
        const key = ep.authorization.parameters['serviceprincipalkey'];
        // Azure DevOps names what it creates <organization>-<project>-<guid>.
        expect(app!.displayName).toMatch(new RegExp(`^${org.name}-${project}-${GUID}$`));
        expect(app!.passwordCredentials.find((p) => p.secretText === key)!.displayName).toMatch(
          new RegExp(`^${org.name}-${project}-${GUID}$`),
        );
      }
    for (const app of state.apps.values())
      for (const p of app.passwordCredentials) {
        expect(p.displayName).toBeTruthy();
        expect(p.displayName).not.toMatch(/^sc-remediator /);
      }
  });
});

describe('other tenants', () => {
  it('loads each tenant with its own apps, consents as service principals there, and the trust on the home app', () => {
    const scenario = readScenario('multi-tenant');
    const state = loadScenario(scenario);
    const fabrikam = state.tenant('fabrikam.onmicrosoft.com')!;
    const northwind = state.tenant('northwind.onmicrosoft.com')!;
    expect(fabrikam).not.toBe(state);
    const multiTenant = [...state.apps.values()].find((a) => a.signInAudience === 'AzureADMultipleOrgs')!;
    expect(multiTenant.federatedIdentityCredentials).toEqual([
      expect.objectContaining({
        issuer: `https://login.microsoftonline.com/${state.tenantId}/v2.0`,
        subject: state.identities.get('remediator')!.objectId,
        audiences: ['api://AzureADTokenExchange'],
      }),
    ]);
    expect(fabrikam.identityByAppId(multiTenant.appId)?.graphPermissions).toEqual([
      'Application.ReadWrite.OwnedBy',
    ]);
    expect(northwind.identityByAppId(multiTenant.appId)).toBeUndefined();
    const fabrikamApp = [...fabrikam.apps.values()][0]!;
    expect(state.appByAppId(fabrikamApp.appId)).toBeUndefined();
    const endpoint = [...state.organization('contoso')!.endpoints.values()].find(
      (e) => e.name === 'fabrikam-deploy',
    )!;
    expect(endpoint.authorization.parameters['tenantid']).toBe(fabrikam.tenantId);
    // The other tenant shares the home clock.
    state.advanceClock(3_600_000);
    expect(Math.abs(fabrikam.now().getTime() - state.now().getTime())).toBeLessThan(50);
  });

  it('lists consents of unknown apps and owners that are not consented there', () => {
    const bad: Scenario = structuredClone(readScenario('multi-tenant'));
    bad.otherTenants![0]!.consents = [{ app: 'no-such-app' }];
    expect(problemsOf(bad)).toEqual([
      "/otherTenants/0 (fabrikam)/consents: 'no-such-app' is not one of the home apps",
      "/otherTenants/0 (fabrikam)/apps (fabrikam-deploy)/owners: 'remediator-multi-tenant' is not an app consented in this tenant",
    ]);
  });
});
