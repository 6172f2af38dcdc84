/**
 * Settings, loaded and validated once at start-up (DESIGN "Public contracts"). Every bad or missing
 * setting is collected into one `ConfigError` so an operator fixes them all in one go. Secret
 * values (client secret, PAT, storage connection string, webhook URL) never appear in an error.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parsePolicy, type RemediationPolicy } from './remediation/policy';
import {
  type AzureCloudName,
  type CloudEndpoints,
  AZURE_CLOUDS,
  cloudOfAuthorityHost,
  cloudOfGraphEndpoint,
  cloudOfKeyVaultUrl,
  parseCloudName,
  resolveCloudEndpoints,
} from './clients/cloud';

export type { AzureCloudName, CloudEndpoints } from './clients/cloud';

/** One Azure DevOps organization to scan. */
export interface OrganizationSetting {
  /** Normalised organization URL, no trailing slash, e.g. `https://dev.azure.com/contoso`. */
  url: string;
  /** Organization name, e.g. `contoso` (from the path, or the `*.visualstudio.com` subdomain). */
  name: string;
}

/** `AzureWebJobsStorage` (connection string) or its identity-based `AzureWebJobsStorage__*` form. */
export interface StorageSettings {
  /** `AzureWebJobsStorage`: a connection string (may hold an account key: a secret). */
  connectionString?: string;
  /** `AzureWebJobsStorage__accountName`. */
  accountName?: string;
  /** `AzureWebJobsStorage__blobServiceUri`. */
  blobServiceUri?: string;
  /** `AzureWebJobsStorage__queueServiceUri`. */
  queueServiceUri?: string;
  /** `AzureWebJobsStorage__credential` (`managedidentity`). */
  credential?: string;
  /** `AzureWebJobsStorage__clientId` (user-assigned identity). */
  clientId?: string;
}

export interface Config {
  /** `AZDO_ORGANIZATION_URLS`, normalised and deduplicated, in the given order. */
  organizations: OrganizationSetting[];
  /** `AZDO_PROJECTS` (names or ids, deduplicated case-insensitively); undefined = every project. */
  projects: string[] | undefined;
  /** `KEY_VAULT_URL`, normalised to `https://host[:port]` (no trailing slash). */
  keyVaultUrl: string;
  /** `AZURE_CLOUD`. */
  cloud: AzureCloudName;
  /** Authority host, Graph endpoint and scopes of `cloud`, with `AZURE_AUTHORITY_HOST`/`GRAPH_ENDPOINT` applied. */
  endpoints: CloudEndpoints;
  /** `AZURE_TENANT_ID`. */
  tenantId?: string;
  /** `AZURE_CLIENT_ID` (app registration, or the user-assigned managed identity in Azure). */
  clientId?: string;
  /** `AZURE_CLIENT_SECRET`. Secret: never log. */
  clientSecret?: string;
  /** `AZDO_PAT`. Secret: never log. */
  azdoPat?: string;
  /** `ROTATE_DAYS_BEFORE_EXPIRY` (30): a secret ending within this many days is rotated. */
  rotateDaysBeforeExpiry: number;
  /** `SECRET_LIFETIME_DAYS` (90): lifetime of the secrets the service creates. */
  secretLifetimeDays: number;
  /** `OLD_SECRET_RETENTION_HOURS` (24): how long a superseded secret stays after verification. */
  oldSecretRetentionHours: number;
  /** `DRY_RUN` (false): assess and plan only; no write to any service. */
  dryRun: boolean;
  /** `REMEDIATION_SCHEDULE` (`0 0 2 * * *`): 6-field NCRONTAB or `%AppSetting%`. */
  schedule: string;
  /** `MAX_CONCURRENCY` (8): connections worked on at once. */
  maxConcurrency: number;
  /** `AzureWebJobsStorage[__*]`; undefined when not set. */
  storage: StorageSettings | undefined;
  /** `NOTIFY_WEBHOOK_URL`. Treated as a secret (webhook URLs usually embed a token). */
  notifyWebhookUrl?: string;
  /** `REMEDIATION_POLICY` (JSON) or `REMEDIATION_POLICY_FILE`; undefined: rotate everything, convert nothing. */
  policy?: RemediationPolicy;
  /** `ENABLE_RETIREMENT` (false): delete unrecoverable connections (definition kept in the run ledger). */
  enableRetirement: boolean;
  /** `RETIRE_FAILED_AFTER_DAYS` (0 = never for age): also retire connections failing this long. */
  retireFailedAfterDays: number;
}

export const DEFAULTS = {
  rotateDaysBeforeExpiry: 30,
  secretLifetimeDays: 90,
  oldSecretRetentionHours: 24,
  dryRun: false,
  schedule: '0 0 2 * * *',
  maxConcurrency: 8,
  cloud: 'AzureCloud' as AzureCloudName,
  enableRetirement: false,
  retireFailedAfterDays: 0,
} as const;

/** Settings whose values must never be shown, in errors or anywhere else. */
export const SECRET_SETTINGS: ReadonlySet<string> = new Set([
  'AZURE_CLIENT_SECRET',
  'AZDO_PAT',
  'AzureWebJobsStorage',
  'NOTIFY_WEBHOOK_URL',
]);

/** One bad or missing setting. */
export interface ConfigProblem {
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

/** Reports a problem with the setting being parsed; the parser then returns `z.NEVER`. */
type Fail = (problem: string, expected: string) => void;

/** Every setting the loader reads, in the order problems are reported (infra tests check the Bicep sets them). */
export const SETTING_ORDER = [
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
  'MAX_CONCURRENCY',
  'AzureWebJobsStorage',
  'AzureWebJobsStorage__accountName',
  'AzureWebJobsStorage__blobServiceUri',
  'AzureWebJobsStorage__queueServiceUri',
  'AzureWebJobsStorage__credential',
  'AzureWebJobsStorage__clientId',
  'NOTIFY_WEBHOOK_URL',
  'REMEDIATION_POLICY',
  'REMEDIATION_POLICY_FILE',
  'ENABLE_RETIREMENT',
  'RETIRE_FAILED_AFTER_DAYS',
] as const;

/** Shows a value in an error, shortened; never for a secret setting. */
function clip(value: string): string {
  return value.length > 80 ? `${value.slice(0, 77)}...` : value;
}

function shown(setting: string, value: string): string {
  if (SECRET_SETTINGS.has(setting)) return '';
  return ` (got '${clip(value)}')`;
}

/**
 * A zod schema for one setting: trims, treats empty as unset, runs `parse`, and turns every `fail`
 * into a custom issue carrying the expectation. Values never go into the issue.
 */
function setting<T>(name: string, parse: (value: string | undefined, fail: Fail) => T) {
  return z
    .string()
    .optional()
    .transform((raw, ctx): T => {
      const value = raw?.trim() === '' ? undefined : raw?.trim();
      let failed = false;
      const result = parse(value, (problem, expected) => {
        failed = true;
        ctx.addIssue({ code: 'custom', message: problem, params: { expected } });
      });
      return failed ? z.NEVER : result;
    });
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** `@azure/identity`'s own tenant id check. */
const TENANT_ID = /^[0-9a-zA-Z-.]+$/;

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host.endsWith('.localhost');
}

/**
 * Checks an https URL setting and returns it without trailing slashes; `allowPath` false also
 * refuses any path. Credentials in the URL are refused without echoing them.
 */
function httpsUrl(
  name: string,
  value: string,
  fail: Fail,
  expected: string,
  opts: { allowPath: boolean; allowLoopbackHttp?: boolean },
): string | undefined {
  const url = parseUrl(value);
  if (!url) {
    fail(`is not a valid URL${shown(name, value)}`, expected);
    return undefined;
  }
  if (url.username || url.password) {
    fail('must not contain credentials (user:password@)', expected);
    return undefined;
  }
  const httpOk = opts.allowLoopbackHttp === true && url.protocol === 'http:' && isLoopback(url.hostname);
  if (url.protocol !== 'https:' && !httpOk) {
    fail(`must use https${shown(name, value)}`, expected);
    return undefined;
  }
  if (url.search || url.hash) {
    fail(`must not have a query string or fragment${shown(name, value)}`, expected);
    return undefined;
  }
  const path = url.pathname.replace(/\/+$/, '');
  if (!opts.allowPath && path !== '') {
    fail(`must not have a path${shown(name, value)}`, expected);
    return undefined;
  }
  return `${url.protocol}//${url.host}${path}`;
}

function integer(
  name: string,
  value: string | undefined,
  fail: Fail,
  def: number,
  min: number,
  max: number,
  unit: string,
): number {
  if (value === undefined) return def;
  if (!/^[+-]?\d+$/.test(value)) {
    fail(`is not a whole number${shown(name, value)}`, `a whole number of ${unit} from ${min} to ${max}`);
    return def;
  }
  const n = Number(value);
  if (n < min || n > max)
    fail(`is out of range${shown(name, value)}`, `a whole number of ${unit} from ${min} to ${max}`);
  return n;
}

const ORG_EXPECTED =
  'comma-separated https Azure DevOps organization URLs, e.g. https://dev.azure.com/contoso,https://fabrikam.visualstudio.com';

/**
 * Parses one organization URL. `https://dev.azure.com/{org}` must name exactly the organization (a
 * project in the path is a mistake); `https://{org}.visualstudio.com` takes the name from the
 * subdomain (an optional `/DefaultCollection` is kept); any other host (Azure DevOps Server
 * collection, the sandbox) takes the name from the last path segment.
 */
export function parseOrganizationUrl(value: string): OrganizationSetting | { problem: string } {
  const name = 'AZDO_ORGANIZATION_URLS';
  let problem: string | undefined;
  const url = httpsUrl(name, value, (p) => (problem ??= p), ORG_EXPECTED, { allowPath: true });
  if (url === undefined) return { problem: problem ?? `is not a valid URL${shown(name, value)}` };
  const parsed = new URL(url);
  const host = parsed.hostname.toLowerCase();
  const segments = parsed.pathname.split('/').filter((s) => s !== '');
  if (host === 'dev.azure.com') {
    const org = segments[0];
    if (org === undefined) return { problem: `has no organization in its path${shown(name, value)}` };
    if (segments.length > 1)
      return {
        problem: `must be the organization URL, without a project or other path${shown(name, value)}`,
      };
    return { url: `https://dev.azure.com/${org}`, name: safeDecode(org) };
  }
  if (host.endsWith('.visualstudio.com')) {
    const org = host.slice(0, -'.visualstudio.com'.length);
    if (org === '' || org.includes('.'))
      return { problem: `has no organization subdomain${shown(name, value)}` };
    const rest = segments.length === 0 ? '' : `/${segments.join('/')}`;
    if (rest !== '' && rest.toLowerCase() !== '/defaultcollection')
      return {
        problem: `must be the organization URL, without a project or other path${shown(name, value)}`,
      };
    return { url: `https://${host}${rest}`, name: org };
  }
  const last = segments[segments.length - 1];
  if (last === undefined)
    return { problem: `has no organization or collection in its path${shown(name, value)}` };
  return { url, name: safeDecode(last) };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Six NCRONTAB fields: name, lowest, highest, and optional names (index = value). */
const CRON_FIELDS: { field: string; min: number; max: number; names?: string[] }[] = [
  { field: 'second', min: 0, max: 59 },
  { field: 'minute', min: 0, max: 59 },
  { field: 'hour', min: 0, max: 23 },
  { field: 'day', min: 1, max: 31 },
  {
    field: 'month',
    min: 1,
    max: 12,
    names: ['', 'jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  { field: 'day-of-week', min: 0, max: 6, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];

const SCHEDULE_EXPECTED =
  "a 6-field NCRONTAB expression '{second} {minute} {hour} {day} {month} {day-of-week}' (e.g. '0 0 2 * * *') or '%AppSettingName%'";

/** Why an NCRONTAB field is invalid, or undefined when it is valid. */
function cronFieldProblem(text: string, spec: (typeof CRON_FIELDS)[number]): string | undefined {
  const value = (token: string): number | undefined => {
    if (/^\d+$/.test(token)) return Number(token);
    const i = spec.names?.indexOf(token.toLowerCase()) ?? -1;
    return i >= 0 && spec.names?.[i] !== '' ? i : undefined;
  };
  for (const item of text.split(',')) {
    const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(item);
    if (!m) return `'${item}' is not a value, range, list or step`;
    const [, range = '', step] = m;
    if (step !== undefined && Number(step) < 1) return `step '/${step}' must be at least 1`;
    if (range === '*') continue;
    const bounds = range.split('-').map(value);
    if (bounds.some((b) => b === undefined || b < spec.min || b > spec.max))
      return `'${range}' is outside ${spec.min}-${spec.max}`;
    const [from, to] = bounds as [number, number | undefined];
    if (to !== undefined && to < from) return `range '${range}' runs backwards`;
  }
  return undefined;
}

function parseSchedule(value: string | undefined, fail: Fail): string {
  if (value === undefined) return DEFAULTS.schedule;
  if (/^%[A-Za-z_][A-Za-z0-9_.:-]*%$/.test(value)) return value;
  if (/^\d{1,2}:\d{2}:\d{2}$/.test(value)) {
    fail(
      `'${value}' is a TimeSpan, which only works on App Service plans and not on Consumption/Flex plans`,
      SCHEDULE_EXPECTED,
    );
    return value;
  }
  const fields = value.split(/\s+/);
  if (fields.length !== 6) {
    fail(
      `'${value}' has ${fields.length} field${fields.length === 1 ? '' : 's'}${
        fields.length === 5 ? ' (a 5-field cron lacks the leading seconds field)' : ''
      }`,
      SCHEDULE_EXPECTED,
    );
    return value;
  }
  const problems = fields.flatMap((f, i) => {
    const spec = CRON_FIELDS[i];
    const p = spec && cronFieldProblem(f, spec);
    return p && spec ? [`${spec.field} field: ${p}`] : [];
  });
  if (problems.length > 0) fail(`'${value}' is invalid (${problems.join('; ')})`, SCHEDULE_EXPECTED);
  return fields.join(' ');
}

function parseBoolean(name: string, value: string | undefined, fail: Fail, def: boolean): boolean {
  if (value === undefined) return def;
  const v = value.toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  fail(`is not a boolean${shown(name, value)}`, 'true/false, 1/0 or yes/no');
  return def;
}

function commaList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function parseOrganizations(value: string | undefined, fail: Fail): OrganizationSetting[] {
  const items = commaList(value);
  if (items.length === 0) {
    fail('is missing', ORG_EXPECTED);
    return [];
  }
  // By name: `https://dev.azure.com/contoso` and `https://contoso.visualstudio.com` are one
  // organization, and the API, the run ledger and the reports tell organizations apart by name. Two
  // entries for one name would scan it twice or act on the wrong one: refused, naming both.
  const seen = new Map<string, string>();
  const orgs: OrganizationSetting[] = [];
  for (const item of items) {
    const org = parseOrganizationUrl(item);
    if ('problem' in org) {
      fail(org.problem, ORG_EXPECTED);
      continue;
    }
    const key = org.name.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      fail(
        `names organization '${org.name}' twice: '${clip(first)}' and '${clip(item)}' (list each organization once)`,
        ORG_EXPECTED,
      );
      continue;
    }
    seen.set(key, item);
    orgs.push(org);
  }
  return orgs;
}

function parseProjects(value: string | undefined): string[] | undefined {
  const seen = new Set<string>();
  const projects = commaList(value).filter((p) => {
    const key = p.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return projects.length > 0 ? projects : undefined;
}

function optionalUrl(name: string, expected: string, allowPath: boolean, allowLoopbackHttp = false) {
  return setting(name, (v, fail) =>
    v === undefined ? undefined : httpsUrl(name, v, fail, expected, { allowPath, allowLoopbackHttp }),
  );
}

const POLICY_EXPECTED =
  'a JSON policy {"default": "rotate", "rules": [{"organization": "…", "project": "…", "connection": "name-*", "action": "rotate|convert-to-wif|report-only|exclude"}]} (docs/settings.md)';

function policyFrom(text: string, fail: Fail, where: string): RemediationPolicy | undefined {
  if (/^@Microsoft\.KeyVault\(/i.test(text.trim())) {
    fail(`${where} is an unresolved Key Vault reference (the app cannot read the secret)`, POLICY_EXPECTED);
    return undefined;
  }
  const parsed = parsePolicy(text);
  if ('problems' in parsed) {
    fail(`${where} ${parsed.problems.join('; ')}`, POLICY_EXPECTED);
    return undefined;
  }
  return parsed.policy;
}

const KV_EXPECTED = 'the https URL of the vault, e.g. https://myvault.vault.azure.net';
const GRAPH_EXPECTED = 'the https Microsoft Graph root without a version, e.g. https://graph.microsoft.com';
const AUTHORITY_EXPECTED = 'an https Entra ID authority host, e.g. https://login.microsoftonline.com';

const schema = z
  .object({
    AZDO_ORGANIZATION_URLS: setting('AZDO_ORGANIZATION_URLS', parseOrganizations),
    AZDO_PROJECTS: setting('AZDO_PROJECTS', (v) => parseProjects(v)),
    KEY_VAULT_URL: setting('KEY_VAULT_URL', (v, fail) => {
      if (v === undefined) {
        fail('is missing', KV_EXPECTED);
        return '';
      }
      return httpsUrl('KEY_VAULT_URL', v, fail, KV_EXPECTED, { allowPath: false }) ?? '';
    }),
    AZURE_CLOUD: setting('AZURE_CLOUD', (v, fail): AzureCloudName => {
      if (v === undefined) return DEFAULTS.cloud;
      const cloud = parseCloudName(v);
      if (!cloud)
        fail(`is not a supported cloud${shown('AZURE_CLOUD', v)}`, `one of ${AZURE_CLOUDS.join(', ')}`);
      return cloud ?? DEFAULTS.cloud;
    }),
    GRAPH_ENDPOINT: setting('GRAPH_ENDPOINT', (v, fail) => {
      if (v === undefined) return undefined;
      const url = httpsUrl('GRAPH_ENDPOINT', v, fail, GRAPH_EXPECTED, { allowPath: true });
      // The Graph client adds the version itself; accept a root given with it.
      return url?.replace(/\/(v1\.0|beta)$/i, '');
    }),
    AZURE_AUTHORITY_HOST: optionalUrl('AZURE_AUTHORITY_HOST', AUTHORITY_EXPECTED, false),
    AZURE_TENANT_ID: setting('AZURE_TENANT_ID', (v, fail) => {
      if (v !== undefined && !TENANT_ID.test(v))
        fail(
          `is not a valid tenant id${shown('AZURE_TENANT_ID', v)}`,
          'a directory (tenant) GUID or domain, e.g. contoso.onmicrosoft.com',
        );
      return v;
    }),
    AZURE_CLIENT_ID: setting('AZURE_CLIENT_ID', (v, fail) => {
      if (v !== undefined && !GUID.test(v))
        fail(
          `is not a GUID${shown('AZURE_CLIENT_ID', v)}`,
          'the application (client) id or the managed identity client id, a GUID',
        );
      return v;
    }),
    AZURE_CLIENT_SECRET: setting('AZURE_CLIENT_SECRET', (v) => v),
    AZDO_PAT: setting('AZDO_PAT', (v, fail) => {
      if (v !== undefined && /\s/.test(v))
        fail('contains whitespace', 'an Azure DevOps personal access token (a single token, no spaces)');
      return v;
    }),
    ROTATE_DAYS_BEFORE_EXPIRY: setting('ROTATE_DAYS_BEFORE_EXPIRY', (v, fail) =>
      integer('ROTATE_DAYS_BEFORE_EXPIRY', v, fail, DEFAULTS.rotateDaysBeforeExpiry, 0, 365, 'days'),
    ),
    SECRET_LIFETIME_DAYS: setting('SECRET_LIFETIME_DAYS', (v, fail) =>
      integer('SECRET_LIFETIME_DAYS', v, fail, DEFAULTS.secretLifetimeDays, 1, 730, 'days'),
    ),
    OLD_SECRET_RETENTION_HOURS: setting('OLD_SECRET_RETENTION_HOURS', (v, fail) =>
      integer('OLD_SECRET_RETENTION_HOURS', v, fail, DEFAULTS.oldSecretRetentionHours, 0, 8760, 'hours'),
    ),
    DRY_RUN: setting('DRY_RUN', (v, fail) => parseBoolean('DRY_RUN', v, fail, DEFAULTS.dryRun)),
    REMEDIATION_SCHEDULE: setting('REMEDIATION_SCHEDULE', parseSchedule),
    MAX_CONCURRENCY: setting('MAX_CONCURRENCY', (v, fail) =>
      integer('MAX_CONCURRENCY', v, fail, DEFAULTS.maxConcurrency, 1, 64, 'connections'),
    ),
    AzureWebJobsStorage: setting('AzureWebJobsStorage', (v, fail) => {
      if (v === undefined) return undefined;
      const ok =
        /^UseDevelopmentStorage=true;?$/i.test(v) ||
        v.split(';').every((part) => part === '' || /^[A-Za-z]+=.+$/.test(part));
      if (!ok)
        fail(
          'is not a storage connection string',
          "'DefaultEndpointsProtocol=https;AccountName=…;…', 'UseDevelopmentStorage=true', or the identity-based AzureWebJobsStorage__accountName",
        );
      return v;
    }),
    AzureWebJobsStorage__accountName: setting('AzureWebJobsStorage__accountName', (v, fail) => {
      if (v !== undefined && !/^[a-z0-9]{3,24}$/.test(v))
        fail(
          `is not a storage account name${shown('AzureWebJobsStorage__accountName', v)}`,
          '3-24 lowercase letters and digits',
        );
      return v;
    }),
    AzureWebJobsStorage__blobServiceUri: optionalUrl(
      'AzureWebJobsStorage__blobServiceUri',
      'an https blob service URI, e.g. https://account.blob.core.windows.net',
      true,
      true,
    ),
    AzureWebJobsStorage__queueServiceUri: optionalUrl(
      'AzureWebJobsStorage__queueServiceUri',
      'an https queue service URI, e.g. https://account.queue.core.windows.net',
      true,
      true,
    ),
    AzureWebJobsStorage__credential: setting('AzureWebJobsStorage__credential', (v) => v),
    AzureWebJobsStorage__clientId: setting('AzureWebJobsStorage__clientId', (v, fail) => {
      if (v !== undefined && !GUID.test(v))
        fail(
          `is not a GUID${shown('AzureWebJobsStorage__clientId', v)}`,
          'the managed identity client id, a GUID',
        );
      return v;
    }),
    // Webhook URLs carry their token in the path or the query string (Teams Workflows: `?…&sig=`):
    // both are kept; the value is a secret and never shown.
    NOTIFY_WEBHOOK_URL: setting('NOTIFY_WEBHOOK_URL', (v, fail): string | undefined => {
      if (v === undefined) return undefined;
      const url = parseUrl(v);
      const problem = !url
        ? 'is not a valid URL'
        : url.username || url.password
          ? 'must not contain credentials (user:password@)'
          : url.protocol !== 'https:'
            ? 'must use https'
            : undefined;
      if (problem !== undefined || !url) {
        fail(problem ?? 'is not a valid URL', 'an https webhook URL');
        return undefined;
      }
      return url.toString();
    }),
    REMEDIATION_POLICY: setting('REMEDIATION_POLICY', (v, fail) =>
      v === undefined ? undefined : policyFrom(v, fail, 'the policy'),
    ),
    REMEDIATION_POLICY_FILE: setting('REMEDIATION_POLICY_FILE', (v, fail) => {
      if (v === undefined) return undefined;
      let text: string;
      try {
        text = readFileSync(v, 'utf8');
      } catch (err) {
        fail(
          `cannot be read${shown('REMEDIATION_POLICY_FILE', v)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
          'the path of a readable JSON policy file',
        );
        return undefined;
      }
      return policyFrom(text, fail, 'the policy file');
    }),
    ENABLE_RETIREMENT: setting('ENABLE_RETIREMENT', (v, fail) =>
      parseBoolean('ENABLE_RETIREMENT', v, fail, DEFAULTS.enableRetirement),
    ),
    RETIRE_FAILED_AFTER_DAYS: setting('RETIRE_FAILED_AFTER_DAYS', (v, fail) =>
      integer('RETIRE_FAILED_AFTER_DAYS', v, fail, DEFAULTS.retireFailedAfterDays, 0, 3650, 'days'),
    ),
  })
  .superRefine(
    (s, ctx) => {
      // Cross-setting rules. A value that failed its own check arrives as an aborted marker, so
      // every rule first checks the type of what it reads.
      const add = (setting: string, problem: string, expected: string) =>
        ctx.addIssue({ code: 'custom', path: [setting], message: problem, params: { expected } });
      const str = (v: unknown): v is string => typeof v === 'string';
      const num = (v: unknown): v is number => typeof v === 'number';

      if (str(s.AZURE_CLIENT_SECRET)) {
        if (s.AZURE_TENANT_ID === undefined)
          add('AZURE_TENANT_ID', 'is missing while AZURE_CLIENT_SECRET is set', 'the directory (tenant) id');
        if (s.AZURE_CLIENT_ID === undefined)
          add(
            'AZURE_CLIENT_ID',
            'is missing while AZURE_CLIENT_SECRET is set',
            'the application (client) id',
          );
      }
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
    },
    { when: () => true },
  );

function toProblems(issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  const problems = issues.map((issue): ConfigProblem => {
    const setting = typeof issue.path[0] === 'string' ? issue.path[0] : '(settings)';
    const params = issue.code === 'custom' ? (issue.params as { expected?: unknown } | undefined) : undefined;
    const expected = typeof params?.expected === 'string' ? params.expected : 'a valid value';
    // Zod's own messages never carry the input; custom ones are ours and never carry a secret.
    return { setting, problem: issue.message, expected };
  });
  const order = (s: string) => {
    const i = (SETTING_ORDER as readonly string[]).indexOf(s);
    return i === -1 ? SETTING_ORDER.length : i;
  };
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => order(a.p.setting) - order(b.p.setting) || a.i - b.i)
    .map(({ p }) => p);
}

/**
 * Loads and validates every setting of the public contract from `env` (process.env, a dotenv
 * file's contents, a test's object). Empty values count as unset. Throws one `ConfigError` listing
 * every bad or missing setting; secret values never appear in it.
 */
export function loadConfig(env: Env): Config {
  const input: Record<string, string | undefined> = {};
  for (const key of SETTING_ORDER) {
    const value = env[key];
    input[key] = typeof value === 'string' ? value : undefined;
  }
  const result = schema.safeParse(input);
  if (!result.success) throw new ConfigError(toProblems(result.error.issues));
  const s = result.data;

  const storage: StorageSettings = {
    connectionString: s.AzureWebJobsStorage,
    accountName: s.AzureWebJobsStorage__accountName,
    blobServiceUri: s.AzureWebJobsStorage__blobServiceUri,
    queueServiceUri: s.AzureWebJobsStorage__queueServiceUri,
    credential: s.AzureWebJobsStorage__credential,
    clientId: s.AzureWebJobsStorage__clientId,
  };
  const hasStorage = Object.values(storage).some((v) => v !== undefined);

  return dropUndefined({
    organizations: s.AZDO_ORGANIZATION_URLS,
    projects: s.AZDO_PROJECTS,
    keyVaultUrl: s.KEY_VAULT_URL,
    cloud: s.AZURE_CLOUD,
    endpoints: resolveCloudEndpoints(
      s.AZURE_CLOUD,
      dropUndefined({ graphEndpoint: s.GRAPH_ENDPOINT, authorityHost: s.AZURE_AUTHORITY_HOST }),
    ),
    tenantId: s.AZURE_TENANT_ID,
    clientId: s.AZURE_CLIENT_ID,
    clientSecret: s.AZURE_CLIENT_SECRET,
    azdoPat: s.AZDO_PAT,
    rotateDaysBeforeExpiry: s.ROTATE_DAYS_BEFORE_EXPIRY,
    secretLifetimeDays: s.SECRET_LIFETIME_DAYS,
    oldSecretRetentionHours: s.OLD_SECRET_RETENTION_HOURS,
    dryRun: s.DRY_RUN,
    schedule: s.REMEDIATION_SCHEDULE,
    maxConcurrency: s.MAX_CONCURRENCY,
    storage: hasStorage ? dropUndefined(storage) : undefined,
    notifyWebhookUrl: s.NOTIFY_WEBHOOK_URL,
    policy: s.REMEDIATION_POLICY ?? s.REMEDIATION_POLICY_FILE,
    enableRetirement: s.ENABLE_RETIREMENT,
    retireFailedAfterDays: s.RETIRE_FAILED_AFTER_DAYS,
  });
}

/**
 * A copy of the config safe to log or show (`config show`, start-up telemetry): secret settings
 * are replaced by `'(set)'`, so an operator can still see whether they are present.
 */
export function redactedConfig(config: Config): Record<string, unknown> {
  const hidden = (v: string | undefined) => (v === undefined ? undefined : '(set)');
  return dropUndefined({
    ...config,
    clientSecret: hidden(config.clientSecret),
    azdoPat: hidden(config.azdoPat),
    notifyWebhookUrl: hidden(config.notifyWebhookUrl),
    storage: config.storage && {
      ...config.storage,
      connectionString: hidden(config.storage.connectionString),
    },
  });
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
