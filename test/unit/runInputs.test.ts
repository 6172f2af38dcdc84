/**
 * The run's app lookups (runInputs.ts): one per app and tenant. A multi-tenant app has one client id
 * in every tenant, but each tenant's Graph answers for its own directory, so one tenant's answer must
 * never be reused for a connection of another (it would be judged, rotated or retired on the wrong app).
 */
import pLimit from 'p-limit';
import type { DiscoveredConnection } from '../../src/remediation/discovery';
import type { EngineDeps } from '../../src/remediation/engine';
import type { ApplicationInfo } from '../../src/remediation/ports';
import type { AppLookup } from '../../src/remediation/assess';
import { appCacheKey, lookupApp, readAppAhead } from '../../src/remediation/runInputs';

const APP_ID = '3f9b6c1e-2a4d-4e8f-9b7a-1c2d3e4f5a6b';
const HOME = '11111111-2222-4333-8444-555555555555';
const FABRIKAM = '5f0c2f4e-8d0a-4a43-9d5e-2f6b1c7a9e01';

function connection(id: string, tenantId: string): DiscoveredConnection {
  return {
    organizationUrl: 'https://dev.azure.com/contoso',
    projects: [],
    connection: {
      id,
      name: id,
      type: 'azurerm',
      data: {},
      authorization: {
        scheme: 'ServicePrincipal',
        parameters: { serviceprincipalid: APP_ID, tenantid: tenantId },
      },
      isReady: true,
      serviceEndpointProjectReferences: [],
    },
  };
}

/** Deps whose Graph answers as one tenant would, recording what it was asked. */
function tenantDeps(app: ApplicationInfo | undefined, asked: string[]): EngineDeps {
  return {
    graph: {
      getApplicationByAppId: (appId: string) => {
        asked.push(appId);
        return Promise.resolve(app);
      },
    },
    clock: { now: () => new Date('2026-12-01T00:00:00Z') },
  } as unknown as EngineDeps;
}

const homeApp = {
  id: 'object-in-home',
  appId: APP_ID,
  passwordCredentials: [],
} as unknown as ApplicationInfo;

test('the same client id in two tenants: two lookups, each from its own tenant', async () => {
  const apps = new Map<string, Promise<AppLookup>>();
  const homeAsked: string[] = [];
  const fabrikamAsked: string[] = [];
  const home = connection('c-home', HOME);
  const fabrikam = connection('c-fabrikam', FABRIKAM);
  expect(appCacheKey(home.connection)).not.toBe(appCacheKey(fabrikam.connection));

  const reads = pLimit(2);
  await readAppAhead(home, apps, tenantDeps(homeApp, homeAsked), reads);
  await readAppAhead(fabrikam, apps, tenantDeps(undefined, fabrikamAsked), reads);

  expect(homeAsked).toEqual([APP_ID]);
  expect(fabrikamAsked).toEqual([APP_ID]);
  expect(await apps.get(appCacheKey(home.connection)!)).toBe(homeApp);
  expect(await apps.get(appCacheKey(fabrikam.connection)!)).toBeUndefined();
  // The plan's lookup finds each tenant's own answer, and asks no one again.
  const key = appCacheKey(fabrikam.connection)!;
  expect(await lookupApp(apps, key, APP_ID, tenantDeps(homeApp, homeAsked))).toBeUndefined();
  expect(homeAsked).toHaveLength(1);
});

test('a connection seen again in its own tenant shares the lookup, whatever the case of the ids', async () => {
  const apps = new Map<string, Promise<AppLookup>>();
  const asked: string[] = [];
  const first = connection('c-1', FABRIKAM);
  const second = connection('c-2', FABRIKAM.toUpperCase());
  const deps = tenantDeps(undefined, asked);
  await readAppAhead(first, apps, deps, pLimit(1));
  await readAppAhead(second, apps, deps, pLimit(1));
  expect(asked).toHaveLength(1);
});
