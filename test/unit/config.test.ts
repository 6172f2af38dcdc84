import {
  AZURE_DEVOPS_SCOPE,
  cloudOfAuthorityHost,
  cloudOfGraphEndpoint,
  cloudOfKeyVaultUrl,
  isPublicAuthorityHost,
  resolveCloudEndpoints,
} from '../../src/clients/cloud';
import type { Config } from '../../src/config';
import {
  ConfigError,
  loadConfig,
  loadFunctionSettings,
  parseOrganizationUrl,
  redactedConfig,
} from '../../src/config';
import { DEFAULT_LOCK_SECONDS } from '../../src/remediation/engine';

const BASE = {
  AZDO_ORGANIZATION_URLS: 'https://dev.azure.com/contoso',
  KEY_VAULT_URL: 'https://kv-contoso.vault.azure.net',
};

function load(extra: Record<string, string | undefined>): Config {
  return loadConfig({ ...BASE, ...extra });
}

function problemsOf(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig: defaults', () => {
  it('fills every default from the public contract', () => {
    const c = load({});
    expect(c.organizations).toEqual([{ url: 'https://dev.azure.com/contoso', name: 'contoso' }]);
    expect(c.projects).toBeUndefined();
    expect(c.keyVaultUrl).toBe('https://kv-contoso.vault.azure.net');
    expect(c.cloud).toBe('AzureCloud');
    expect(c.rotateDaysBeforeExpiry).toBe(30);
    expect(c.secretLifetimeDays).toBe(90);
    expect(c.oldSecretRetentionHours).toBe(24);
    expect(c.dryRun).toBe(false);
    expect(c.schedule).toBe('0 0 2 * * *');
    expect(c.maxConcurrency).toBe(8);
    expect(c.lockSeconds).toBe(60);
    expect(c.lockSeconds).toBe(DEFAULT_LOCK_SECONDS);
    expect(c.storage).toBeUndefined();
    expect(c.notifyWebhookUrl).toBeUndefined();
    expect(c.endpoints).toMatchObject({
      authorityHost: 'https://login.microsoftonline.com',
      graphEndpoint: 'https://graph.microsoft.com',
      graphScope: 'https://graph.microsoft.com/.default',
      azureDevOpsScope: AZURE_DEVOPS_SCOPE,
      disableInstanceDiscovery: false,
    });
  });

  it('treats empty and blank values as unset', () => {
    const c = load({ AZURE_CLIENT_ID: '', AZURE_CLIENT_SECRET: '  ', DRY_RUN: '', AZDO_PROJECTS: ' , ' });
    expect(c.clientId).toBeUndefined();
    expect(c.clientSecret).toBeUndefined();
    expect(c.dryRun).toBe(false);
    expect(c.projects).toBeUndefined();
  });

  it('accepts the settings the sandbox writes', () => {
    const c = loadConfig({
      AZDO_ORGANIZATION_URLS: 'https://127.0.0.1:50001/contoso,https://127.0.0.1:50001/fabrikam',
      KEY_VAULT_URL: 'https://127.0.0.1:50002/',
      GRAPH_ENDPOINT: 'https://127.0.0.1:50003',
      AZURE_AUTHORITY_HOST: 'https://127.0.0.1:50004',
      AZURE_TENANT_ID: '0b0e6f2a-1111-4222-a333-444455556666',
      AZURE_CLIENT_ID: '7f0e6f2a-1111-4222-a333-444455556666',
      AZURE_CLIENT_SECRET: 'abc8Q~xyz',
      NODE_EXTRA_CA_CERTS: '/tmp/ca.pem',
    });
    expect(c.organizations.map((o) => o.name)).toEqual(['contoso', 'fabrikam']);
    expect(c.keyVaultUrl).toBe('https://127.0.0.1:50002');
    expect(c.endpoints.graphEndpoint).toBe('https://127.0.0.1:50003');
    expect(c.endpoints.graphScope).toBe('https://graph.microsoft.com/.default');
    expect(c.endpoints.disableInstanceDiscovery).toBe(true);
  });
});

describe('loadConfig: AZDO_ORGANIZATION_URLS', () => {
  it.each([
    ['https://dev.azure.com/contoso', 'https://dev.azure.com/contoso', 'contoso'],
    ['https://dev.azure.com/contoso/', 'https://dev.azure.com/contoso', 'contoso'],
    ['https://dev.azure.com/contoso///', 'https://dev.azure.com/contoso', 'contoso'],
    ['  https://dev.azure.com/contoso  ', 'https://dev.azure.com/contoso', 'contoso'],
    ['https://DEV.AZURE.COM/contoso', 'https://dev.azure.com/contoso', 'contoso'],
    ['https://contoso.visualstudio.com', 'https://contoso.visualstudio.com', 'contoso'],
    ['https://contoso.visualstudio.com/', 'https://contoso.visualstudio.com', 'contoso'],
    [
      'https://contoso.visualstudio.com/DefaultCollection',
      'https://contoso.visualstudio.com/DefaultCollection',
      'contoso',
    ],
    [
      'https://tfs.corp.example/tfs/DefaultCollection',
      'https://tfs.corp.example/tfs/DefaultCollection',
      'DefaultCollection',
    ],
    ['https://127.0.0.1:8443/contoso', 'https://127.0.0.1:8443/contoso', 'contoso'],
    ['https://dev.azure.com/my%20org', 'https://dev.azure.com/my%20org', 'my org'],
  ])('%s → %s (%s)', (input, url, name) => {
    expect(parseOrganizationUrl(input)).toEqual({ url, name });
    expect(load({ AZDO_ORGANIZATION_URLS: input }).organizations).toEqual([{ url, name }]);
  });

  it('splits and trims', () => {
    const c = load({
      AZDO_ORGANIZATION_URLS: 'https://dev.azure.com/contoso, ,,https://fabrikam.visualstudio.com ',
    });
    expect(c.organizations).toEqual([
      { url: 'https://dev.azure.com/contoso', name: 'contoso' },
      { url: 'https://fabrikam.visualstudio.com', name: 'fabrikam' },
    ]);
  });

  it.each([
    ['https://dev.azure.com/contoso', 'https://contoso.visualstudio.com'],
    ['https://contoso.visualstudio.com/DefaultCollection', 'https://dev.azure.com/contoso'],
    ['https://dev.azure.com/contoso', 'https://dev.azure.com/Contoso'],
    ['https://dev.azure.com/contoso', 'https://dev.azure.com/contoso/'],
    ['https://dev.azure.com/contoso', 'https://dev.azure.com/contoso'],
    ['https://dev.azure.com/contoso', 'https://CONTOSO.visualstudio.com/'],
    ['https://dev.azure.com/my%20org', 'https://dev.azure.com/My%20Org/'],
  ])('rejects one organization listed twice: %s and %s, naming both', (first, second) => {
    const err = problemsOf({
      ...BASE,
      AZDO_ORGANIZATION_URLS: `${first},https://dev.azure.com/fabrikam,${second}`,
      KEY_VAULT_URL: 'http://kv.example',
    });
    const orgProblems = err.problems.filter((p) => p.setting === 'AZDO_ORGANIZATION_URLS');
    expect(orgProblems).toHaveLength(1);
    expect(orgProblems[0]?.problem).toContain(`'${first}' and '${second}'`);
    expect(orgProblems[0]?.problem).toMatch(/names organization '.+' twice/);
    // Reported together with the other settings' problems.
    expect(err.problems.map((p) => p.setting)).toContain('KEY_VAULT_URL');
    expect(err.message).toContain(second);
  });

  it('tells apart organizations whose names only look alike', () => {
    const c = load({
      AZDO_ORGANIZATION_URLS: 'https://dev.azure.com/contoso,https://dev.azure.com/contoso-eu',
    });
    expect(c.organizations.map((o) => o.name)).toEqual(['contoso', 'contoso-eu']);
  });

  it.each([
    ['http://dev.azure.com/contoso', /must use https/],
    ['https://dev.azure.com/', /has no organization/],
    ['https://dev.azure.com/contoso/project', /without a project/],
    ['https://contoso.visualstudio.com/project', /without a project/],
    ['https://example.com', /has no organization or collection/],
    ['dev.azure.com/contoso', /is not a valid URL/],
    ['https://dev.azure.com/contoso?x=1', /query string/],
    ['https://user:pw@dev.azure.com/contoso', /must not contain credentials/],
  ])('rejects %s', (input, message) => {
    const err = problemsOf({ ...BASE, AZDO_ORGANIZATION_URLS: input });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatchObject({ setting: 'AZDO_ORGANIZATION_URLS' });
    expect(err.problems[0]?.problem).toMatch(message);
    expect(err.problems[0]?.expected).toMatch(/https:\/\/dev\.azure\.com\/contoso/);
  });

  it('never echoes credentials embedded in a URL', () => {
    const err = problemsOf({ ...BASE, AZDO_ORGANIZATION_URLS: 'https://user:hunter2@dev.azure.com/contoso' });
    expect(err.message).not.toContain('hunter2');
  });

  it('reports each bad URL of the list', () => {
    const err = problemsOf({
      ...BASE,
      AZDO_ORGANIZATION_URLS: 'http://a.example/x,https://dev.azure.com/ok,nope',
    });
    expect(err.problems.map((p) => p.setting)).toEqual(['AZDO_ORGANIZATION_URLS', 'AZDO_ORGANIZATION_URLS']);
  });
});

describe('loadConfig: scalar settings', () => {
  it.each([
    ['DRY_RUN', 'true', 'dryRun', true],
    ['DRY_RUN', 'TRUE', 'dryRun', true],
    ['DRY_RUN', '1', 'dryRun', true],
    ['DRY_RUN', 'yes', 'dryRun', true],
    ['DRY_RUN', 'false', 'dryRun', false],
    ['DRY_RUN', '0', 'dryRun', false],
    ['DRY_RUN', 'No', 'dryRun', false],
    ['ROTATE_DAYS_BEFORE_EXPIRY', '0', 'rotateDaysBeforeExpiry', 0],
    ['ROTATE_DAYS_BEFORE_EXPIRY', '14', 'rotateDaysBeforeExpiry', 14],
    ['SECRET_LIFETIME_DAYS', '180', 'secretLifetimeDays', 180],
    ['OLD_SECRET_RETENTION_HOURS', '0', 'oldSecretRetentionHours', 0],
    ['MAX_CONCURRENCY', '16', 'maxConcurrency', 16],
    ['LOCK_LEASE_SECONDS', '15', 'lockSeconds', 15],
    ['LOCK_LEASE_SECONDS', '60', 'lockSeconds', 60],
    ['REMEDIATION_SCHEDULE', '%RemediationSchedule%', 'schedule', '%RemediationSchedule%'],
    ['REMEDIATION_SCHEDULE', '0 */30 * * * *', 'schedule', '0 */30 * * * *'],
    ['REMEDIATION_SCHEDULE', '0 30 9 * Jan Mon', 'schedule', '0 30 9 * Jan Mon'],
    ['REMEDIATION_SCHEDULE', '0 30 9 * * 1-5', 'schedule', '0 30 9 * * 1-5'],
    ['REMEDIATION_SCHEDULE', '0  0   2 * * *', 'schedule', '0 0 2 * * *'],
    ['REMEDIATION_SCHEDULE', '0 0 7,18 1-15/2 * sun,sat', 'schedule', '0 0 7,18 1-15/2 * sun,sat'],
    ['AZDO_PROJECTS', 'Web, api ,WEB', 'projects', ['Web', 'api']],
    [
      'GRAPH_ENDPOINT',
      'https://graph.microsoft.com/v1.0/',
      'endpoints',
      expect.objectContaining({ graphEndpoint: 'https://graph.microsoft.com' }),
    ],
    ['KEY_VAULT_URL', 'https://kv.vault.azure.net/', 'keyVaultUrl', 'https://kv.vault.azure.net'],
    ['NOTIFY_WEBHOOK_URL', 'https://hooks.example/abc', 'notifyWebhookUrl', 'https://hooks.example/abc'],
    [
      'AzureWebJobsStorage',
      'UseDevelopmentStorage=true',
      'storage',
      { connectionString: 'UseDevelopmentStorage=true' },
    ],
    ['AzureWebJobsStorage__accountName', 'stcontoso', 'storage', { accountName: 'stcontoso' }],
  ])('%s=%s → %s', (name, value, key, expected) => {
    expect(load({ [name]: value })[key as keyof Config]).toEqual(expected);
  });

  it.each([
    ['ROTATE_DAYS_BEFORE_EXPIRY', 'abc', /not a whole number/],
    ['ROTATE_DAYS_BEFORE_EXPIRY', '1.5', /not a whole number/],
    ['ROTATE_DAYS_BEFORE_EXPIRY', '-1', /out of range/],
    ['SECRET_LIFETIME_DAYS', '0', /out of range/],
    ['SECRET_LIFETIME_DAYS', '731', /out of range/],
    ['OLD_SECRET_RETENTION_HOURS', '8761', /out of range/],
    ['MAX_CONCURRENCY', '0', /out of range/],
    ['MAX_CONCURRENCY', '65', /out of range/],
    // A blob lease is 15 to 60 seconds (or infinite, which a crashed holder would never give back).
    ['LOCK_LEASE_SECONDS', '14', /out of range/],
    ['LOCK_LEASE_SECONDS', '61', /out of range/],
    ['LOCK_LEASE_SECONDS', '-1', /out of range/],
    ['LOCK_LEASE_SECONDS', '30s', /not a whole number/],
    ['DRY_RUN', 'maybe', /not a boolean/],
    ['AZURE_CLOUD', 'AzureGermanCloud', /not a supported cloud/],
    ['REMEDIATION_SCHEDULE', '0 2 * * *', /5 fields.*seconds/],
    ['REMEDIATION_SCHEDULE', '0 0 2 * * * *', /7 fields/],
    ['REMEDIATION_SCHEDULE', '00:05:00', /TimeSpan/],
    ['REMEDIATION_SCHEDULE', '0 60 2 * * *', /minute field: '60' is outside 0-59/],
    ['REMEDIATION_SCHEDULE', '0 0 24 * * *', /hour field/],
    ['REMEDIATION_SCHEDULE', '0 0 2 0 * *', /day field/],
    ['REMEDIATION_SCHEDULE', '0 0 2 * 13 *', /month field/],
    ['REMEDIATION_SCHEDULE', '0 0 2 * * 7', /day-of-week field/],
    ['REMEDIATION_SCHEDULE', '0 0 2 * * Funday', /day-of-week field/],
    ['REMEDIATION_SCHEDULE', '0 0 5-2 * * *', /runs backwards/],
    ['REMEDIATION_SCHEDULE', '0 */0 * * * *', /step/],
    ['REMEDIATION_SCHEDULE', '0 0 2 ? * *', /not a value/],
    ['REMEDIATION_SCHEDULE', '%Bad Name%', /fields/],
    ['KEY_VAULT_URL', 'http://kv.vault.azure.net', /https/],
    ['KEY_VAULT_URL', 'https://kv.vault.azure.net/secrets/x', /must not have a path/],
    ['GRAPH_ENDPOINT', 'graph.microsoft.com', /not a valid URL/],
    ['AZURE_AUTHORITY_HOST', 'http://login.microsoftonline.com', /https/],
    ['AZURE_TENANT_ID', 'contoso tenant', /not a valid tenant id/],
    ['AZURE_CLIENT_ID', 'not-a-guid', /not a GUID/],
    ['AzureWebJobsStorage__accountName', 'Bad_Name', /storage account name/],
    ['AzureWebJobsStorage__blobServiceUri', 'ftp://x', /https/],
  ])('%s=%s is rejected', (name, value, message) => {
    const err = problemsOf({ ...BASE, [name]: value });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]?.setting).toBe(name);
    expect(err.problems[0]?.problem).toMatch(message);
    expect(err.problems[0]?.expected.length).toBeGreaterThan(5);
  });

  it('LOCK_LEASE_SECONDS outside a blob lease range: a config error naming the setting and the range', () => {
    const err = problemsOf({ ...BASE, LOCK_LEASE_SECONDS: '300' });
    expect(err.problems).toEqual([
      expect.objectContaining({
        setting: 'LOCK_LEASE_SECONDS',
        expected: 'a whole number of seconds from 15 to 60',
      }),
    ]);
    expect(err.message).toContain('LOCK_LEASE_SECONDS');
  });

  it.each([
    ['azureusgovernment', 'AzureUSGovernment', 'https://kv.vault.usgovcloudapi.net'],
    ['AzureChinaCloud', 'AzureChinaCloud', 'https://kv.vault.azure.cn'],
    ['AZURECLOUD', 'AzureCloud', 'https://kv.vault.azure.net'],
  ])('AZURE_CLOUD=%s → %s', (value, cloud, vault) => {
    expect(load({ AZURE_CLOUD: value, KEY_VAULT_URL: vault }).cloud).toBe(cloud);
  });

  it('allows http for a loopback storage endpoint (Azurite)', () => {
    expect(
      load({ AzureWebJobsStorage__blobServiceUri: 'http://127.0.0.1:10000/devstoreaccount1' }).storage,
    ).toEqual({
      blobServiceUri: 'http://127.0.0.1:10000/devstoreaccount1',
    });
  });
});

describe('loadConfig: one error listing every problem', () => {
  const SECRET = 'Qx98Q~verySecretValue_ThatMustNeverLeak.123';
  const PAT = 'patvalue with space';
  const STORAGE = 'not a connection string but has AccountKey SECRETKEY';
  const WEBHOOK = 'http://hooks.example/T0KEN';

  const err = problemsOf({
    AZDO_ORGANIZATION_URLS: 'http://dev.azure.com/contoso',
    AZDO_PROJECTS: 'a,b',
    AZURE_CLOUD: 'Mars',
    GRAPH_ENDPOINT: 'nope',
    AZURE_AUTHORITY_HOST: 'http://login',
    AZURE_CLIENT_SECRET: SECRET,
    AZDO_PAT: PAT,
    ROTATE_DAYS_BEFORE_EXPIRY: 'x',
    SECRET_LIFETIME_DAYS: '0',
    OLD_SECRET_RETENTION_HOURS: '-3',
    DRY_RUN: 'perhaps',
    REMEDIATION_SCHEDULE: '* * *',
    MAX_CONCURRENCY: '1000',
    AzureWebJobsStorage: STORAGE,
    NOTIFY_WEBHOOK_URL: WEBHOOK,
  });

  it('reports all of them at once, in contract order', () => {
    expect(err.problems.map((p) => p.setting)).toEqual([
      'AZDO_ORGANIZATION_URLS',
      'KEY_VAULT_URL',
      'AZURE_CLOUD',
      'GRAPH_ENDPOINT',
      'AZURE_AUTHORITY_HOST',
      'AZURE_TENANT_ID',
      'AZURE_CLIENT_ID',
      'AZDO_PAT',
      'ROTATE_DAYS_BEFORE_EXPIRY',
      'SECRET_LIFETIME_DAYS',
      'OLD_SECRET_RETENTION_HOURS',
      'DRY_RUN',
      'REMEDIATION_SCHEDULE',
      'MAX_CONCURRENCY',
      'AzureWebJobsStorage',
      'NOTIFY_WEBHOOK_URL',
    ]);
    expect(err.message).toMatch(/^Invalid configuration \(16 problems\):/);
    for (const p of err.problems)
      expect(err.message).toContain(`${p.setting}: ${p.problem}; expected ${p.expected}.`);
    expect(err.name).toBe('ConfigError');
  });

  it.each([
    ['AZURE_CLIENT_SECRET', SECRET],
    ['AZDO_PAT', PAT],
    ['AzureWebJobsStorage', 'SECRETKEY'],
    ['NOTIFY_WEBHOOK_URL', 'T0KEN'],
  ])('never shows the value of %s', (_name, value) => {
    expect(err.message).not.toContain(value);
    expect(JSON.stringify(err.problems)).not.toContain(value);
  });

  it('says what is missing when nothing is set', () => {
    const none = problemsOf({});
    expect(none.problems.map((p) => [p.setting, p.problem])).toEqual([
      ['AZDO_ORGANIZATION_URLS', 'is missing'],
      ['KEY_VAULT_URL', 'is missing'],
    ]);
  });
});

describe('loadConfig: rules across settings', () => {
  it('needs tenant and client id with a client secret', () => {
    const err = problemsOf({ ...BASE, AZURE_CLIENT_SECRET: 's3cret' });
    expect(err.problems.map((p) => p.setting)).toEqual(['AZURE_TENANT_ID', 'AZURE_CLIENT_ID']);
    expect(err.message).not.toContain('s3cret');
  });

  it.each([
    ['30', '30', true],
    ['31', '30', true],
    ['29', '30', false],
  ])('ROTATE_DAYS_BEFORE_EXPIRY=%s vs SECRET_LIFETIME_DAYS=%s → error %s', (rotate, lifetime, bad) => {
    const env = { ...BASE, ROTATE_DAYS_BEFORE_EXPIRY: rotate, SECRET_LIFETIME_DAYS: lifetime };
    if (bad) expect(problemsOf(env).problems[0]?.setting).toBe('ROTATE_DAYS_BEFORE_EXPIRY');
    else expect(loadConfig(env).rotateDaysBeforeExpiry).toBe(Number(rotate));
  });

  it.each([
    ['GRAPH_ENDPOINT', 'https://graph.microsoft.us', 'AzureUSGovernment'],
    ['AZURE_AUTHORITY_HOST', 'https://login.chinacloudapi.cn', 'AzureChinaCloud'],
    ['KEY_VAULT_URL', 'https://kv.vault.usgovcloudapi.net', 'AzureUSGovernment'],
  ])('%s of another cloud is refused', (name, value, other) => {
    const err = problemsOf({ ...BASE, [name]: value });
    expect(err.problems).toEqual([
      expect.objectContaining({
        setting: name,
        problem: `belongs to ${other} but AZURE_CLOUD is AzureCloud`,
      }),
    ]);
  });

  it('accepts a government setup end to end', () => {
    const c = load({
      AZURE_CLOUD: 'AzureUSGovernment',
      KEY_VAULT_URL: 'https://kv.vault.usgovcloudapi.net',
      GRAPH_ENDPOINT: 'https://dod-graph.microsoft.us',
    });
    expect(c.endpoints).toMatchObject({
      authorityHost: 'https://login.microsoftonline.us',
      graphEndpoint: 'https://dod-graph.microsoft.us',
      graphScope: 'https://dod-graph.microsoft.us/.default',
      disableInstanceDiscovery: false,
    });
  });
});

describe('loadConfig: other tenants', () => {
  const HOME = '11111111-1111-4111-8111-111111111111';
  const OTHER = '22222222-2222-4222-8222-222222222222';
  const THIRD = '33333333-3333-4333-8333-333333333333';
  const APP = '44444444-4444-4444-8444-444444444444';

  it('are none unless listed', () => {
    const c = load({ AZURE_TENANT_ID: HOME });
    expect(c.additionalTenantIds).toBeUndefined();
    expect(c.multiTenantAppClientId).toBeUndefined();
  });

  it('parses the list (trimmed, lower-cased) with the multi-tenant app', () => {
    const c = load({
      AZURE_TENANT_ID: HOME,
      ADDITIONAL_TENANT_IDS: ` ${OTHER.toUpperCase()} , ${THIRD}`,
      MULTI_TENANT_APP_CLIENT_ID: APP,
    });
    expect(c.additionalTenantIds).toEqual([OTHER, THIRD]);
    expect(c.multiTenantAppClientId).toBe(APP);
  });

  it.each([
    ['not a GUID', 'contoso.onmicrosoft.com', 'ADDITIONAL_TENANT_IDS', /not a tenant GUID/],
    ['a duplicate', `${OTHER},${OTHER.toUpperCase()}`, 'ADDITIONAL_TENANT_IDS', /twice/],
    ['the home tenant', `${OTHER},${HOME}`, 'ADDITIONAL_TENANT_IDS', /home tenant/],
  ])('refuses %s', (_what, value, setting, problem) => {
    const err = problemsOf({
      ...BASE,
      AZURE_TENANT_ID: HOME,
      ADDITIONAL_TENANT_IDS: value,
      MULTI_TENANT_APP_CLIENT_ID: APP,
    });
    expect(err.problems).toEqual([
      expect.objectContaining({ setting, problem: expect.stringMatching(problem) }),
    ]);
  });

  it('needs the multi-tenant app when tenants are listed', () => {
    const err = problemsOf({ ...BASE, AZURE_TENANT_ID: HOME, ADDITIONAL_TENANT_IDS: OTHER });
    expect(err.problems).toEqual([
      expect.objectContaining({
        setting: 'MULTI_TENANT_APP_CLIENT_ID',
        problem: 'is missing while ADDITIONAL_TENANT_IDS is set',
      }),
    ]);
  });
});

describe('loadFunctionSettings: ENGINE_HEAP_MB', () => {
  it.each([
    [undefined, 192],
    ['0', 0],
    ['64', 64],
    ['4096', 4096],
  ])('%s gives %d', (value, expected) => {
    expect(loadFunctionSettings({ ENGINE_HEAP_MB: value }).engineHeapMb).toBe(expected);
  });

  it.each([
    ['10', /out of range/],
    ['5000', /out of range/],
    ['big', /not a whole number/],
  ])('%s: a config error naming the setting', (value, message) => {
    let caught: unknown;
    try {
      loadFunctionSettings({ ENGINE_HEAP_MB: value });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).message).toContain('ENGINE_HEAP_MB');
    expect((caught as ConfigError).message).toMatch(message);
  });
});

describe('redactedConfig', () => {
  it('hides secret settings but shows they are set', () => {
    const c = load({
      AZURE_TENANT_ID: 'contoso.onmicrosoft.com',
      AZURE_CLIENT_ID: '7f0e6f2a-1111-4222-a333-444455556666',
      AZURE_CLIENT_SECRET: 'cs-value',
      AZDO_PAT: 'pat-value',
      AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=key-value',
      NOTIFY_WEBHOOK_URL: 'https://hooks.example/hook-value',
    });
    const shown = JSON.stringify(redactedConfig(c));
    for (const v of ['cs-value', 'pat-value', 'key-value', 'hook-value']) expect(shown).not.toContain(v);
    expect(redactedConfig(c)).toMatchObject({
      clientSecret: '(set)',
      azdoPat: '(set)',
      tenantId: 'contoso.onmicrosoft.com',
    });
  });
});

describe('cloud endpoints', () => {
  it.each([
    [
      'AzureCloud',
      'https://login.microsoftonline.com',
      'https://graph.microsoft.com',
      'https://graph.microsoft.com/.default',
      'vault.azure.net',
    ],
    [
      'AzureUSGovernment',
      'https://login.microsoftonline.us',
      'https://graph.microsoft.us',
      'https://graph.microsoft.us/.default',
      'vault.usgovcloudapi.net',
    ],
    [
      'AzureChinaCloud',
      'https://login.chinacloudapi.cn',
      'https://microsoftgraph.chinacloudapi.cn',
      'https://microsoftgraph.chinacloudapi.cn/.default',
      'vault.azure.cn',
    ],
  ] as const)('%s', (cloud, authorityHost, graphEndpoint, graphScope, keyVaultSuffix) => {
    expect(resolveCloudEndpoints(cloud)).toMatchObject({
      name: cloud,
      authorityHost,
      graphEndpoint,
      graphScope,
      keyVaultSuffix,
      azureDevOpsScope: '499b84ac-1321-427f-aa17-267ca6975798/.default',
      disableInstanceDiscovery: false,
    });
  });

  it.each([
    ['AzureCloud', 'https://graph.microsoft.com/.default'],
    ['AzureUSGovernment', 'https://graph.microsoft.us/.default'],
    ['AzureChinaCloud', 'https://microsoftgraph.chinacloudapi.cn/.default'],
  ] as const)('overrides move %s endpoints but keep its Graph scope', (cloud, scope) => {
    const e = resolveCloudEndpoints(cloud, {
      graphEndpoint: 'https://127.0.0.1:9000/',
      authorityHost: 'https://127.0.0.1:9001/',
    });
    expect(e).toMatchObject({
      graphEndpoint: 'https://127.0.0.1:9000',
      authorityHost: 'https://127.0.0.1:9001',
      graphScope: scope,
      disableInstanceDiscovery: true,
    });
  });

  it.each([
    ['https://login.microsoftonline.com', true],
    ['https://login.microsoftonline.com/', true],
    ['https://LOGIN.MICROSOFTONLINE.US', true],
    ['https://login.chinacloudapi.cn', true],
    ['https://login.microsoftonline.de', false],
    ['https://adfs.contoso.com/adfs', false],
    ['https://127.0.0.1:8443', false],
    ['not a url', false],
  ])('isPublicAuthorityHost(%s) = %s', (url, expected) => {
    expect(isPublicAuthorityHost(url)).toBe(expected);
  });

  it('tells which cloud a public host belongs to', () => {
    expect(cloudOfAuthorityHost('https://login.microsoftonline.us')).toBe('AzureUSGovernment');
    expect(cloudOfGraphEndpoint('https://dod-graph.microsoft.us')).toBe('AzureUSGovernment');
    expect(cloudOfGraphEndpoint('https://127.0.0.1:1')).toBeUndefined();
    expect(cloudOfKeyVaultUrl('https://kv.vault.azure.cn')).toBe('AzureChinaCloud');
    expect(cloudOfKeyVaultUrl('https://127.0.0.1:1')).toBeUndefined();
  });
});
