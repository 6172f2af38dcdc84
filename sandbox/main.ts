/**
 * Runs the sandbox tenant until Ctrl+C, and writes a dotenv file that points the product at it.
 *
 *   npm run sandbox -- --scenario default --write-env .sandbox/sandbox.env [--seed s] [--port-base n] [--storage]
 *   set -a; . .sandbox/sandbox.env; set +a
 *   npm run cli -- scan
 *
 * The env file holds the product identity's client secret: it is written with mode 0600, never
 * printed, and removed when the sandbox stops. Exit codes: 0 stopped cleanly, 1 failed, 2 bad usage.
 */
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { startAzurite, type Azurite } from './azurite';
import { startSandbox, type Sandbox } from './index';
import type { AppRecord, EndpointRecord, TenantState } from './model';

interface MainOptions {
  scenario: string;
  writeEnv: string;
  seed?: string;
  portBase?: number;
  storage: boolean;
}

/** Exit codes. */
const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

const DAY_MS = 24 * 3600 * 1000;
/** Same default as the product's ROTATE_DAYS_BEFORE_EXPIRY, for the summary only. */
const EXPIRING_WITHIN_DAYS = 30;

function availableScenarios(): string[] {
  return readdirSync(join(__dirname, 'scenarios'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => basename(f, '.json'))
    .sort();
}

function parsePortBase(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1024 || n > 65532)
    throw new InvalidArgumentError(
      'must be a whole number from 1024 to 65532 (four ports from it are used).',
    );
  return n;
}

function parseScenarioName(value: string): string {
  const names = availableScenarios();
  if (!names.includes(value))
    throw new InvalidArgumentError(`no scenario '${value}' (available: ${names.join(', ')}).`);
  return value;
}

function buildProgram(): Command {
  return new Command()
    .name('npm run sandbox --')
    .description(
      'Starts the simulated tenant (Entra ID, Graph, Azure DevOps, Key Vault over HTTPS on 127.0.0.1), ' +
        'writes a dotenv file pointing sc-remediator at it, and runs until Ctrl+C.',
    )
    .addOption(
      new Option('--scenario <name>', 'scenario from sandbox/scenarios/')
        .default('default')
        .argParser(parseScenarioName),
    )
    .addOption(
      new Option('--write-env <path>', 'dotenv file to write (mode 0600, removed on stop)').default(
        relative(process.cwd(), resolve(__dirname, '..', '.sandbox', 'sandbox.env')) ||
          '.sandbox/sandbox.env',
      ),
    )
    .option('--seed <seed>', 'seed for fault injection, to replay a run')
    .addOption(
      new Option(
        '--port-base <port>',
        'first of four fixed ports (Entra ID, Graph, Azure DevOps, Key Vault); default: free ports',
      ).argParser(parsePortBase),
    )
    .option('--storage', 'also start Azurite (npm) and add AzureWebJobsStorage')
    .allowExcessArguments(false)
    .showHelpAfterError()
    .exitOverride();
}

class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Parses the command line (without node and script). Throws UsageError (help: exit code 0). */
function parseArguments(
  argv: string[],
  errorOutput: (s: string) => void = (s) => process.stderr.write(s),
): MainOptions {
  const program = buildProgram().configureOutput({ writeErr: errorOutput });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      const help = err.code === 'commander.helpDisplayed' || err.code === 'commander.version';
      throw new UsageError(err.message, help ? EXIT_OK : EXIT_USAGE);
    }
    throw err;
  }
  const o = program.opts<{
    scenario: string;
    writeEnv: string;
    seed?: string;
    portBase?: number;
    storage?: boolean;
  }>();
  if (!o.writeEnv.trim()) {
    errorOutput(`error: --write-env needs a path.\n\n${program.helpInformation()}`);
    throw new UsageError('--write-env needs a path.', EXIT_USAGE);
  }
  return {
    scenario: o.scenario,
    writeEnv: resolve(o.writeEnv),
    seed: o.seed,
    portBase: o.portBase,
    storage: o.storage ?? false,
  };
}

/** One `KEY='value'` line per setting; single quotes read the same in dotenv and in a POSIX shell. */
function formatEnvFile(env: Record<string, string>, header: string[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const [key, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      throw new Error(`Setting name '${key}' cannot go in an env file.`);
    if (/['\n\r]/.test(value)) throw new Error(`Setting ${key} has a quote or line break; cannot write it.`);
    lines.push(`${key}='${value}'`);
  }
  return `${lines.join('\n')}\n`;
}

/** Writes the file atomically with mode 0600 (a new file, renamed over any old one). */
function writePrivateFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`);
  writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
}

type Category = 'expired' | 'expiring' | 'not-ready' | 'app-missing' | 'unsupported' | 'healthy';

interface ConnectionView {
  org: string;
  projects: string[];
  name: string;
  creationMode: string;
  category: Category;
  notes: string[];
}

function findApp(state: TenantState, appId: string | null | undefined): AppRecord | undefined {
  if (!appId) return undefined;
  for (const app of state.apps.values()) if (app.appId === appId) return app;
  return undefined;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The sandbox's own reading of a connection, for the summary (the product decides for itself). */
function describeConnection(
  state: TenantState,
  org: string,
  ep: EndpointRecord,
  product: string,
): ConnectionView {
  const notes: string[] = [];
  const params = ep.authorization.parameters;
  const app = findApp(state, params['serviceprincipalid']);
  const now = state.now().getTime();
  let category: Category = 'healthy';

  if (ep.authorization.scheme !== 'ServicePrincipal') {
    category = 'unsupported';
    notes.push(
      ep.authorization.scheme === 'WorkloadIdentityFederation'
        ? 'workload identity federation, no secret'
        : `${ep.authorization.scheme}, no secret`,
    );
  } else if (!app || app.deleted) {
    category = 'app-missing';
    notes.push(app ? 'app deleted' : 'no such app');
  } else {
    const key = params['serviceprincipalkey'];
    const password = key ? app.passwordCredentials.find((p) => p.secretText === key) : undefined;
    const days = password ? Math.round((Date.parse(password.endDateTime) - now) / DAY_MS) : undefined;
    if (days === undefined) {
      category = 'not-ready';
      notes.push('stored secret is not a password of the app');
    } else if (days < 0) {
      category = 'expired';
      notes.push(`secret expired ${plural(-days, 'day')} ago`);
    } else {
      notes.push(`secret valid ${plural(days, 'more day')}`);
      if (days <= EXPIRING_WITHIN_DAYS) category = 'expiring';
    }
    if (app.disabled) notes.push('app disabled');
    if (!app.hasSubscriptionRole) notes.push('no role on the subscription');
    if (!app.owners.includes(product)) notes.push('app not owned by the product');
    const others = app.passwordCredentials.filter((p) => p !== password).length;
    if (others > 0) notes.push(`app has ${plural(others, 'other password')}`);
    const restrictions = state.restrictionsFor(app);
    if (restrictions.passwordAdditionBlocked) notes.push('policy blocks new passwords');
    if (restrictions.passwordLifetimeMax)
      notes.push(`policy caps lifetime at ${restrictions.passwordLifetimeMax}`);
    if (app.signInAudience.includes('Personal')) notes.push('personal-account app (2 passwords at most)');
  }
  if ('accesstoken' in params && !params['accesstoken']) {
    notes.push('accesstoken: null');
    if (category === 'healthy' || category === 'expiring') category = 'not-ready';
  }
  if (!ep.isReady) {
    notes.push('Failed: listed only with includeFailed=true');
    if (category === 'healthy' || category === 'expiring') category = 'not-ready';
  }
  if (ep.serviceEndpointProjectReferences.length > 1) notes.push('shared across projects');
  return {
    org,
    projects: ep.serviceEndpointProjectReferences.map((r) => r.projectReference.name),
    name: ep.name,
    creationMode: ep.data['creationMode'] ?? '',
    category,
    notes,
  };
}

const CATEGORY_ORDER: Category[] = [
  'expired',
  'expiring',
  'not-ready',
  'app-missing',
  'unsupported',
  'healthy',
];
const CATEGORY_TITLE: Record<Category, string> = {
  expired: 'secret expired',
  expiring: `secret expires within ${EXPIRING_WITHIN_DAYS} days`,
  'not-ready': 'not ready',
  'app-missing': 'app missing',
  unsupported: 'no secret to rotate',
  healthy: 'healthy',
};

function pad(s: string, n: number): string {
  return s.length >= n ? `${s} ` : s + ' '.repeat(n - s.length);
}

/** The readable summary: services, organizations, connections by state, how to use the env file. No secrets. */
function formatSummary(
  sandbox: Sandbox,
  options: MainOptions,
  timings: { sandboxMs: number; storageMs?: number },
  storage?: Azurite,
): string {
  const { state, urls, scenario } = sandbox;
  const out: string[] = [];
  const product = state.identities.get(scenario.productIdentity);
  out.push(
    `sc-remediator sandbox: scenario '${scenario.name}', seed '${sandbox.faults.seed}', started in ${timings.sandboxMs} ms` +
      (timings.storageMs !== undefined ? ` (Azurite ${timings.storageMs} ms)` : ''),
    '',
    `Services (HTTPS on 127.0.0.1; trust ${sandbox.caCertPath} through NODE_EXTRA_CA_CERTS)`,
    `  ${pad('Entra ID', 17)}${urls.authority}`,
    `  ${pad('Microsoft Graph', 17)}${urls.graph}`,
    `  ${pad('Azure DevOps', 17)}${urls.devops}`,
    `  ${pad('Key Vault', 17)}${urls.keyVault}`,
  );
  if (storage)
    out.push(
      `  ${pad('Storage', 17)}${storage.blobEndpoint} (Azurite blob, queue: ${storage.queueEndpoint})`,
    );
  out.push(
    '',
    `Tenant ${state.tenantId} (${state.tenantDomain}); product identity '${product?.displayName ?? scenario.productIdentity}', client id ${product?.appId ?? '?'}`,
    '',
    'Organizations',
  );
  const views: ConnectionView[] = [];
  for (const org of state.organizations.values()) {
    out.push(
      `  ${pad(org.name, 10)}${urls.devops}/${org.name}   projects: ${org.projects.map((p) => p.name).join(', ')}; ${plural(org.endpoints.size, 'connection')}`,
    );
    for (const ep of org.endpoints.values())
      views.push(describeConnection(state, org.name, ep, scenario.productIdentity));
  }
  out.push('', `Connections (the sandbox's reading; the product decides for itself)`);
  const nameWidth = Math.max(...views.map((v) => v.name.length), 4) + 2;
  const whereWidth = Math.max(...views.map((v) => `${v.org}/${v.projects.join('+')}`.length), 4) + 2;
  for (const category of CATEGORY_ORDER) {
    const inCategory = views.filter((v) => v.category === category);
    if (inCategory.length === 0) continue;
    out.push(`  ${CATEGORY_TITLE[category]} (${inCategory.length})`);
    for (const v of inCategory)
      out.push(
        `    ${pad(`${v.org}/${v.projects.join('+')}`, whereWidth)}${pad(v.name, nameWidth)}${pad(v.creationMode, 10)}${v.notes.join('; ')}`,
      );
  }
  const rel = relative(process.cwd(), options.writeEnv);
  const envPath = rel && !rel.startsWith('..') ? rel : options.writeEnv;
  out.push(
    '',
    `Settings written to ${envPath} (mode 0600: it holds the product's client secret; removed on stop).`,
    'Use them in another terminal:',
    `  set -a; . ${envPath}; set +a`,
    '  npm run cli -- scan',
    '',
    'Ctrl+C stops the sandbox.',
    '',
  );
  return out.join('\n');
}

function removeIfOurs(path: string, content: string): void {
  try {
    if (existsSync(path) && readFileSync(path, 'utf8') === content) unlinkSync(path);
  } catch {
    // Best effort: a file we cannot read or remove is not ours to worry about.
  }
}

async function main(argv: string[]): Promise<number> {
  let options: MainOptions;
  try {
    options = parseArguments(argv);
  } catch (err) {
    if (err instanceof UsageError) return err.exitCode;
    throw err;
  }

  let sandbox: Sandbox | undefined;
  let storage: Azurite | undefined;
  let envContent: string | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (envContent !== undefined) removeIfOurs(options.writeEnv, envContent);
      await Promise.allSettled([storage?.stop(), sandbox?.stop()]);
    })();
    return stopping;
  };

  try {
    const started = Date.now();
    sandbox = await startSandbox({
      scenario: options.scenario,
      seed: options.seed,
      portBase: options.portBase,
    });
    const sandboxMs = Date.now() - started;
    const env: Record<string, string> = { ...sandbox.env };
    let storageMs: number | undefined;
    if (options.storage) {
      storage = await startAzurite({ blob: true, queue: true });
      storageMs = storage.startupMs;
      env['AzureWebJobsStorage'] = storage.connectionString;
    }
    envContent = formatEnvFile(env, [
      `sc-remediator sandbox: scenario '${options.scenario}', pid ${process.pid}, ${new Date().toISOString()}`,
      'Holds the product identity client secret: keep it private. Removed when the sandbox stops.',
      `Use: set -a; . ${options.writeEnv}; set +a`,
    ]);
    writePrivateFile(options.writeEnv, envContent);
    process.stdout.write(formatSummary(sandbox, options, { sandboxMs, storageMs }, storage));
  } catch (err) {
    process.stderr.write(`sandbox: ${err instanceof Error ? err.message : String(err)}\n`);
    await stop();
    return EXIT_FAILED;
  }

  return new Promise<number>((resolveExit) => {
    let firstSignalAt = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // Wrappers (npm, tsx) relay the terminal's signal, so one Ctrl+C can arrive twice: only a
        // later signal means "stop waiting".
        if (Date.now() - firstSignalAt < 2000) return;
        process.stderr.write(`sandbox: ${signal} again, exiting now.\n`);
        process.exit(EXIT_FAILED);
      }
      firstSignalAt = Date.now();
      process.stdout.write(`\n${signal}: stopping the sandbox...\n`);
      void stop().then(() => {
        process.stdout.write('Sandbox stopped.\n');
        resolveExit(EXIT_OK);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`sandbox: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(EXIT_FAILED);
    },
  );
}
