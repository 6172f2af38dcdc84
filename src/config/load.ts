/**
 * Reads the settings table's rows from an environment, once at start-up (DESIGN "Public
 * contracts"). Every bad or missing setting is collected into one `ConfigError` so an operator fixes
 * them all in one go; secret values never appear in it.
 */
import { z } from 'zod';
import {
  type AzureCloudName,
  cloudOfAuthorityHost,
  cloudOfGraphEndpoint,
  cloudOfKeyVaultUrl,
  resolveCloudEndpoints,
} from '../clients/cloud';
import { GUID } from '../guid';
import { type Check, gotValue } from './checks';
import type { Setting } from './row';
import { type Config, type FunctionSettings, SETTINGS } from './settings';

/** One bad or missing setting. */
interface ConfigProblem {
  setting: string;
  /** What is wrong (never the value of a secret setting). */
  problem: string;
  /** What a valid value looks like. */
  expected: string;
}

/** Every bad or missing setting at once. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const lines = problems.map((p) => `  - ${p.setting}: ${p.problem}; expected ${p.expected}.`);
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
    );
    this.problems = problems;
  }
}

type Env = NodeJS.ProcessEnv | Record<string, string | undefined>;
type Values = Record<string, unknown>;
/** Adds a problem found across settings. */
type AddProblem = (setting: string, problem: string, expected: string) => void;

/**
 * A zod schema for one row: trims, treats empty as unset, runs the row's parser, and turns every
 * `fail` into a custom issue carrying the expectation. Values never go into the issue.
 */
function rowSchema(row: Setting) {
  const got = row.secret ? () => '' : gotValue;
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const value = raw?.trim() === '' ? undefined : raw?.trim();
      let failed = false;
      const check: Check = {
        fail: (problem, expected) => {
          failed = true;
          ctx.addIssue({ code: 'custom', message: problem, params: { expected } });
        },
        got,
      };
      const result = row.parse(value, check);
      return failed ? z.NEVER : result;
    });
}

/**
 * Parses `rows` from `env`, then `across` checks rules between settings (a value that failed its
 * own check arrives as an aborted marker, so each rule checks the type of what it reads). Problems
 * come in the rows' order.
 */
function readRows(rows: readonly Setting[], env: Env, across?: (s: Values, add: AddProblem) => void): Values {
  const schema = z
    .object(Object.fromEntries(rows.map((r) => [r.name, rowSchema(r)])))
    .superRefine(
      (s, ctx) =>
        across?.(s, (setting, problem, expected) =>
          ctx.addIssue({ code: 'custom', path: [setting], message: problem, params: { expected } }),
        ),
      { when: () => true },
    );
  const input: Record<string, string | undefined> = {};
  for (const { name } of rows) {
    const value = env[name];
    input[name] = typeof value === 'string' ? value : undefined;
  }
  const result = schema.safeParse(input);
  if (!result.success) throw new ConfigError(toProblems(result.error.issues, rows));
  return result.data;
}

function toProblems(issues: readonly z.core.$ZodIssue[], rows: readonly Setting[]): ConfigProblem[] {
  const problems = issues.map((issue): ConfigProblem => {
    const setting = typeof issue.path[0] === 'string' ? issue.path[0] : '(settings)';
    const params = issue.code === 'custom' ? (issue.params as { expected?: unknown } | undefined) : undefined;
    const expected = typeof params?.expected === 'string' ? params.expected : 'a valid value';
    // Zod's own messages never carry the input; custom ones are ours and never carry a secret.
    return { setting, problem: issue.message, expected };
  });
  const order = (s: string) => {
    const i = rows.findIndex((r) => r.name === s);
    return i === -1 ? rows.length : i;
  };
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => order(a.p.setting) - order(b.p.setting) || a.i - b.i)
    .map(({ p }) => p);
}

const ENGINE_ROWS: readonly Setting[] = SETTINGS.filter((s) => s.app === 'engine');
const FUNCTION_ROWS: readonly Setting[] = SETTINGS.filter((s) => s.app === 'functions');

/** Rules between the engine's settings. */
function engineRules(s: Values, add: AddProblem): void {
  const str = (v: unknown): v is string => typeof v === 'string';
  const num = (v: unknown): v is number => typeof v === 'number';

  if (str(s.AZURE_CLIENT_SECRET)) {
    if (s.AZURE_TENANT_ID === undefined)
      add('AZURE_TENANT_ID', 'is missing while AZURE_CLIENT_SECRET is set', 'the directory (tenant) id');
    if (s.AZURE_CLIENT_ID === undefined)
      add('AZURE_CLIENT_ID', 'is missing while AZURE_CLIENT_SECRET is set', 'the application (client) id');
  }
  const tenants = Array.isArray(s.ADDITIONAL_TENANT_IDS) ? (s.ADDITIONAL_TENANT_IDS as string[]) : [];
  if (tenants.length > 0 && s.MULTI_TENANT_APP_CLIENT_ID === undefined)
    add(
      'MULTI_TENANT_APP_CLIENT_ID',
      'is missing while ADDITIONAL_TENANT_IDS is set',
      'the client id of the multi-tenant app that trusts the managed identity (infra output MULTI_TENANT_APP_CLIENT_ID)',
    );
  if (str(s.AZURE_TENANT_ID) && tenants.includes(s.AZURE_TENANT_ID.toLowerCase()))
    add(
      'ADDITIONAL_TENANT_IDS',
      `lists the home tenant ${s.AZURE_TENANT_ID} (AZURE_TENANT_ID)`,
      'only tenants other than AZURE_TENANT_ID',
    );
  // The home tenant tells configured tenants from unknown ones (assess) and is the issuer the
  // multi-tenant app trusts; a domain would not compare with the GUIDs connections carry.
  if (tenants.length > 0 && !(str(s.AZURE_TENANT_ID) && GUID.test(s.AZURE_TENANT_ID)))
    add(
      'AZURE_TENANT_ID',
      `is ${s.AZURE_TENANT_ID === undefined ? 'missing' : 'not a GUID'} while ADDITIONAL_TENANT_IDS is set`,
      'the home directory (tenant) GUID',
    );
  if (
    num(s.ROTATE_DAYS_BEFORE_EXPIRY) &&
    num(s.SECRET_LIFETIME_DAYS) &&
    s.ROTATE_DAYS_BEFORE_EXPIRY >= s.SECRET_LIFETIME_DAYS
  )
    add(
      'ROTATE_DAYS_BEFORE_EXPIRY',
      `is ${s.ROTATE_DAYS_BEFORE_EXPIRY}, not below SECRET_LIFETIME_DAYS (${s.SECRET_LIFETIME_DAYS}), so every new secret would be due for rotation at once`,
      'fewer days than SECRET_LIFETIME_DAYS',
    );
  if (s.REMEDIATION_POLICY !== undefined && s.REMEDIATION_POLICY_FILE !== undefined)
    add(
      'REMEDIATION_POLICY_FILE',
      'is set together with REMEDIATION_POLICY',
      'one of REMEDIATION_POLICY (JSON) and REMEDIATION_POLICY_FILE (a path), not both',
    );
  const cloud = s.AZURE_CLOUD;
  if (str(cloud)) {
    const mismatch = (setting: string, value: unknown, of: (u: string) => AzureCloudName | undefined) => {
      if (!str(value) || value === '') return;
      const other = of(value);
      if (other !== undefined && other !== cloud)
        add(setting, `belongs to ${other} but AZURE_CLOUD is ${cloud}`, `an endpoint of ${cloud}`);
    };
    mismatch('GRAPH_ENDPOINT', s.GRAPH_ENDPOINT, cloudOfGraphEndpoint);
    mismatch('AZURE_AUTHORITY_HOST', s.AZURE_AUTHORITY_HOST, cloudOfAuthorityHost);
    mismatch('KEY_VAULT_URL', s.KEY_VAULT_URL, cloudOfKeyVaultUrl);
  }
}

/**
 * Puts each keyed row's value at its key (`a` or `a.b`), and each `derived` value where its first
 * input row stands (so `Config` keeps the table's order); unset values are left out.
 */
function byKey(
  rows: readonly Setting[],
  values: Values,
  derived: Record<string, [key: string, value: unknown]> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const row of rows) {
    const [key, value] =
      row.key === undefined ? (derived[row.name] ?? ['', undefined]) : [row.key, values[row.name]];
    if (value === undefined || key in out) continue;
    const [first = '', second] = key.split('.');
    if (second === undefined) out[first] = value;
    else ((out[first] ??= {}) as Record<string, unknown>)[second] = value;
  }
  return out;
}

/**
 * Loads and validates every setting of the public contract from `env` (process.env, a dotenv
 * file's contents, a test's object). Empty values count as unset. Throws one `ConfigError` listing
 * every bad or missing setting; secret values never appear in it.
 */
export function loadConfig(env: Env): Config {
  const s = readRows(ENGINE_ROWS, env, engineRules);
  const graphEndpoint = s.GRAPH_ENDPOINT as string | undefined;
  const authorityHost = s.AZURE_AUTHORITY_HOST as string | undefined;
  const cloud = s.AZURE_CLOUD as AzureCloudName;
  const endpoints = resolveCloudEndpoints(cloud, {
    ...(graphEndpoint === undefined ? {} : { graphEndpoint }),
    ...(authorityHost === undefined ? {} : { authorityHost }),
  });
  const policy = s.REMEDIATION_POLICY ?? s.REMEDIATION_POLICY_FILE;
  return byKey(ENGINE_ROWS, s, {
    GRAPH_ENDPOINT: ['endpoints', endpoints],
    REMEDIATION_POLICY: ['policy', policy],
    REMEDIATION_POLICY_FILE: ['policy', policy],
  }) as Config;
}

/** The Functions app's own settings (throws `ConfigError` listing every bad one). */
export function loadFunctionSettings(env: Env): FunctionSettings {
  return byKey(FUNCTION_ROWS, readRows(FUNCTION_ROWS, env)) as FunctionSettings;
}

/** The value at a row's key in `config`, if set. */
function valueAt(config: object, key: string): unknown {
  return key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], config);
}

/** Every secret value set in `config`, to register with the redactor. */
export function secretValues(config: Config): string[] {
  return ENGINE_ROWS.filter((r) => r.secret && r.key !== undefined)
    .map((r) => valueAt(config, r.key!))
    .filter((v): v is string => typeof v === 'string');
}

/**
 * A copy of the config safe to log or show (`config show`, start-up telemetry): secret settings
 * are replaced by `'(set)'`, so an operator can still see whether they are present.
 */
export function redactedConfig(config: Config): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...config };
  if (config.storage) copy.storage = { ...config.storage };
  for (const row of ENGINE_ROWS) {
    if (!row.secret || row.key === undefined || valueAt(copy, row.key) === undefined) continue;
    const [first = '', second] = row.key.split('.');
    if (second === undefined) copy[first] = '(set)';
    else (copy[first] as Record<string, unknown>)[second] = '(set)';
  }
  return copy;
}
