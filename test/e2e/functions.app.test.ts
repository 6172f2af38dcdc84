/**
 * The Functions app as the host sees it: what each file registers (names, triggers, routes,
 * methods, auth levels, queue names, outputs), host.json's queue settings, the package.json `main`
 * glob against the build output, local.settings.sample.json, and that loading every function file
 * loads no heavy SDK (cold start: they are imported when a function first needs them).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as ContextModule from '../../src/functions/context';

const ROOT = resolve(__dirname, '..', '..');
const registered: { kind: string; name: string; options: Record<string, unknown> }[] = [];

jest.mock('@azure/functions', () => {
  const actual: Record<string, unknown> = jest.requireActual('@azure/functions');
  const record =
    (kind: string) =>
    (name: string, options: Record<string, unknown>): void => {
      registered.push({ kind, name, options });
    };
  return {
    ...actual,
    app: { http: record('http'), timer: record('timer'), storageQueue: record('storageQueue') },
  };
});

const FUNCTION_FILES = [
  'nightlyRemediation',
  'remediateConnection',
  'connectionsApi',
  'runsApi',
  'retiredApi',
  'health',
];

beforeAll(() => {
  for (const file of FUNCTION_FILES) jest.requireActual(`../../src/functions/${file}`);
});

function reg(name: string) {
  const r = registered.find((x) => x.name === name);
  if (!r) throw new Error(`${name} is not registered`);
  return r;
}

test('every function is registered with its trigger, in the file that exports its handler', () => {
  const timer = reg('nightlyRemediation');
  expect(timer.kind).toBe('timer');
  expect(timer.options).toMatchObject({ schedule: '%REMEDIATION_SCHEDULE%', runOnStartup: false });
  expect(timer.options['extraOutputs']).toEqual([
    expect.objectContaining({
      type: 'queue',
      queueName: 'sc-remediator-work',
      connection: 'AzureWebJobsStorage',
    }),
  ]);
  expect(reg('remediateConnection')).toMatchObject({
    kind: 'storageQueue',
    options: { queueName: 'sc-remediator-work', connection: 'AzureWebJobsStorage' },
  });
  expect(reg('remediateConnectionPoison')).toMatchObject({
    kind: 'storageQueue',
    options: { queueName: 'sc-remediator-work-poison', connection: 'AzureWebJobsStorage' },
  });
  const routes = registered
    .filter((r) => r.kind === 'http')
    .map((r) => [
      r.name,
      (r.options['methods'] as string[]).join(','),
      r.options['route'],
      r.options['authLevel'],
    ]);
  expect(routes).toEqual(
    expect.arrayContaining([
      ['listConnections', 'GET', 'connections', 'function'],
      ['getConnection', 'GET', 'connections/{organization}/{connectionId}', 'function'],
      ['remediateConnectionNow', 'POST', 'connections/{organization}/{connectionId}/remediate', 'function'],
      ['startRun', 'POST', 'runs', 'function'],
      ['listRuns', 'GET', 'runs', 'function'],
      ['getRun', 'GET', 'runs/{runId}', 'function'],
      ['health', 'GET', 'health', 'anonymous'],
    ]),
  );
  expect(reg('startRun').options['extraOutputs']).toEqual([
    expect.objectContaining({ queueName: 'sc-remediator-work' }),
  ]);
  for (const r of registered) expect(typeof r.options['handler']).toBe('function');
});

test('host.json: queue retries and poison after maxDequeueCount, base64 messages, timeout', () => {
  const host = JSON.parse(readFileSync(join(ROOT, 'host.json'), 'utf8')) as {
    version: string;
    functionTimeout: string;
    extensions: { queues: Record<string, unknown>; http: Record<string, unknown> };
    logging: Record<string, unknown>;
  };
  const { MAX_DEQUEUE_COUNT } = jest.requireActual<typeof ContextModule>('../../src/functions/context');
  expect(host.version).toBe('2.0');
  expect(host.extensions.queues).toMatchObject({
    maxDequeueCount: MAX_DEQUEUE_COUNT,
    messageEncoding: 'base64',
    visibilityTimeout: expect.stringMatching(/^\d\d:\d\d:\d\d$/),
    batchSize: expect.any(Number),
  });
  expect(host.extensions.http['routePrefix']).toBe('api');
  // 30 minutes (the Flex Consumption default): the nightly run at 10,000 connections, with its jitter
  // and Azure DevOps pacing, does not fit in 10.
  expect(host.functionTimeout).toBe('00:30:00');
  expect(host.logging).toHaveProperty('logLevel');
});

test('package.json main covers every function file as tsconfig.build.json emits it', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string };
  const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  const base = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: { outDir: string; rootDir: string };
  };
  expect(build.include).toContain('src');
  expect(base.compilerOptions).toMatchObject({ outDir: 'dist', rootDir: '.' });
  expect(pkg.main).toBe('dist/src/functions/*.js');
  const files = readdirSync(join(ROOT, 'src', 'functions')).filter((f) => f.endsWith('.ts'));
  for (const f of FUNCTION_FILES) expect(files).toContain(`${f}.ts`);
});

test('local.settings.sample.json names every setting, with placeholders', () => {
  const sample = JSON.parse(readFileSync(join(ROOT, 'local.settings.sample.json'), 'utf8')) as {
    IsEncrypted: boolean;
    Values: Record<string, string>;
  };
  expect(sample.IsEncrypted).toBe(false);
  expect(sample.Values).toMatchObject({
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    FUNCTIONS_WORKER_RUNTIME: 'node',
  });
  for (const key of [
    'AZDO_ORGANIZATION_URLS',
    'AZDO_PROJECTS',
    'KEY_VAULT_URL',
    'AZURE_CLOUD',
    'GRAPH_ENDPOINT',
    'AZURE_AUTHORITY_HOST',
    'AZURE_TENANT_ID',
    'AZURE_CLIENT_ID',
    'AZURE_CLIENT_SECRET',
    'AZDO_PAT',
    'ROTATE_DAYS_BEFORE_EXPIRY',
    'SECRET_LIFETIME_DAYS',
    'OLD_SECRET_RETENTION_HOURS',
    'DRY_RUN',
    'REMEDIATION_SCHEDULE',
    'REMEDIATION_JITTER_SECONDS',
    'MAX_CONCURRENCY',
    'NOTIFY_WEBHOOK_URL',
    'APPLICATIONINSIGHTS_CONNECTION_STRING',
    'WEBSITE_AUTH_ENABLED',
    'API_UNSAFE_ALLOW_KEY_ONLY_ACCESS',
  ])
    expect(sample.Values).toHaveProperty(key);
});

test('loading every function file loads no Azure SDK, Graph client or Application Insights', () => {
  const script = `
    for (const f of ${JSON.stringify(FUNCTION_FILES)}) require('./src/functions/' + f + '.ts');
    const heavy = Object.keys(require.cache).filter((p) =>
      /node_modules[\\\\/](@azure[\\\\/](identity|keyvault-secrets|storage-blob|storage-queue|msal-node|monitor-opentelemetry)|@microsoft[\\\\/]microsoft-graph-client|applicationinsights|zod)[\\\\/]/.test(p));
    process.stdout.write(JSON.stringify({ heavy: [...new Set(heavy.map((p) => p.replace(/.*node_modules[\\\\/]/, '').split(/[\\\\/]/).slice(0, 2).join('/')))] }));
  `;
  const result = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(result.status).toBe(0);
  const out = JSON.parse(result.stdout) as { heavy: string[] };
  expect(out.heavy).toEqual([]);
});
