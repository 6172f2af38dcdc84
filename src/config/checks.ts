/**
 * The checks the settings table's parsers are built from. A parser gets the trimmed value
 * (undefined when unset or blank) and a `Check`: it reports problems through `fail` and quotes a
 * value only through `got`, which shows nothing for a secret setting.
 */
import { GUID } from '../guid';
import { readFileSync } from 'node:fs';
import { parsePolicy, type RemediationPolicy } from '../remediation/policyFile';

export interface Check {
  /** Reports a problem with this setting; the loader collects every one. */
  fail(problem: string, expected: string): void;
  /** ` (got '…')` to append to a problem, or '' for a secret setting. */
  got(value: string): string;
}

/** One Azure DevOps organization to scan. */
interface OrganizationSetting {
  /** Normalised organization URL, no trailing slash, e.g. `https://dev.azure.com/contoso`. */
  url: string;
  /** Organization name, e.g. `contoso` (from the path, or the `*.visualstudio.com` subdomain). */
  name: string;
}

/** Shows a value in an error, shortened. */
function clip(value: string): string {
  return value.length > 80 ? `${value.slice(0, 77)}...` : value;
}

/** `got` of a setting that is not secret. */
export function gotValue(value: string): string {
  return ` (got '${clip(value)}')`;
}

/** `@azure/identity`'s own tenant id check. */
export const TENANT_ID = /^[0-9a-zA-Z-.]+$/;

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
export function httpsUrl(
  value: string,
  c: Check,
  expected: string,
  opts: { allowPath: boolean; allowLoopbackHttp?: boolean },
): string | undefined {
  const url = parseUrl(value);
  if (!url) {
    c.fail(`is not a valid URL${c.got(value)}`, expected);
    return undefined;
  }
  if (url.username || url.password) {
    c.fail('must not contain credentials (user:password@)', expected);
    return undefined;
  }
  const httpOk = opts.allowLoopbackHttp === true && url.protocol === 'http:' && isLoopback(url.hostname);
  if (url.protocol !== 'https:' && !httpOk) {
    c.fail(`must use https${c.got(value)}`, expected);
    return undefined;
  }
  if (url.search || url.hash) {
    c.fail(`must not have a query string or fragment${c.got(value)}`, expected);
    return undefined;
  }
  const path = url.pathname.replace(/\/+$/, '');
  if (!opts.allowPath && path !== '') {
    c.fail(`must not have a path${c.got(value)}`, expected);
    return undefined;
  }
  return `${url.protocol}//${url.host}${path}`;
}

export function integer(
  value: string | undefined,
  c: Check,
  def: number,
  min: number,
  max: number,
  unit: string,
): number {
  if (value === undefined) return def;
  if (!/^[+-]?\d+$/.test(value)) {
    c.fail(`is not a whole number${c.got(value)}`, `a whole number of ${unit} from ${min} to ${max}`);
    return def;
  }
  const n = Number(value);
  if (n < min || n > max)
    c.fail(`is out of range${c.got(value)}`, `a whole number of ${unit} from ${min} to ${max}`);
  return n;
}

export function parseBoolean(value: string | undefined, c: Check, def: boolean): boolean {
  if (value === undefined) return def;
  const v = value.toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  c.fail(`is not a boolean${c.got(value)}`, 'true/false, 1/0 or yes/no');
  return def;
}

function commaList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
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
  let problem: string | undefined;
  const check: Check = { fail: (p) => (problem ??= p), got: gotValue };
  const url = httpsUrl(value, check, ORG_EXPECTED, { allowPath: true });
  if (url === undefined) return { problem: problem ?? `is not a valid URL${gotValue(value)}` };
  const parsed = new URL(url);
  const host = parsed.hostname.toLowerCase();
  const segments = parsed.pathname.split('/').filter((s) => s !== '');
  if (host === 'dev.azure.com') {
    const org = segments[0];
    if (org === undefined) return { problem: `has no organization in its path${gotValue(value)}` };
    if (segments.length > 1)
      return {
        problem: `must be the organization URL, without a project or other path${gotValue(value)}`,
      };
    return { url: `https://dev.azure.com/${org}`, name: safeDecode(org) };
  }
  if (host.endsWith('.visualstudio.com')) {
    const org = host.slice(0, -'.visualstudio.com'.length);
    if (org === '' || org.includes('.'))
      return { problem: `has no organization subdomain${gotValue(value)}` };
    const rest = segments.length === 0 ? '' : `/${segments.join('/')}`;
    if (rest !== '' && rest.toLowerCase() !== '/defaultcollection')
      return {
        problem: `must be the organization URL, without a project or other path${gotValue(value)}`,
      };
    return { url: `https://${host}${rest}`, name: org };
  }
  const last = segments[segments.length - 1];
  if (last === undefined)
    return { problem: `has no organization or collection in its path${gotValue(value)}` };
  return { url, name: safeDecode(last) };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function parseOrganizations(value: string | undefined, c: Check): OrganizationSetting[] {
  const items = commaList(value);
  if (items.length === 0) {
    c.fail('is missing', ORG_EXPECTED);
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
      c.fail(org.problem, ORG_EXPECTED);
      continue;
    }
    const key = org.name.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      c.fail(
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

export function parseProjects(value: string | undefined): string[] | undefined {
  const seen = new Set<string>();
  const projects = commaList(value).filter((p) => {
    const key = p.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return projects.length > 0 ? projects : undefined;
}

const POLICY_EXPECTED =
  'a JSON policy {"default": "rotate", "rules": [{"organization": "…", "project": "…", "connection": "name-*", "action": "rotate|convert-to-wif|report-only|exclude"}]} (docs/settings.md)';

function policyFrom(text: string, c: Check, where: string): RemediationPolicy | undefined {
  if (/^@Microsoft\.KeyVault\(/i.test(text.trim())) {
    c.fail(`${where} is an unresolved Key Vault reference (the app cannot read the secret)`, POLICY_EXPECTED);
    return undefined;
  }
  const parsed = parsePolicy(text);
  if ('problems' in parsed) {
    c.fail(`${where} ${parsed.problems.join('; ')}`, POLICY_EXPECTED);
    return undefined;
  }
  return parsed.policy;
}

export function policyFromJson(value: string | undefined, c: Check): RemediationPolicy | undefined {
  return value === undefined ? undefined : policyFrom(value, c, 'the policy');
}

export function policyFromFile(value: string | undefined, c: Check): RemediationPolicy | undefined {
  if (value === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(value, 'utf8');
  } catch (err) {
    c.fail(
      `cannot be read${c.got(value)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      'the path of a readable JSON policy file',
    );
    return undefined;
  }
  return policyFrom(text, c, 'the policy file');
}

export function storageConnectionString(v: string | undefined, c: Check): string | undefined {
  if (v === undefined) return undefined;
  const ok =
    /^UseDevelopmentStorage=true;?$/i.test(v) ||
    v.split(';').every((part) => part === '' || /^[A-Za-z]+=.+$/.test(part));
  if (!ok)
    c.fail(
      'is not a storage connection string',
      "'DefaultEndpointsProtocol=https;AccountName=…;…', 'UseDevelopmentStorage=true', or the identity-based AzureWebJobsStorage__accountName",
    );
  return v;
}

/** An https webhook URL, kept whole: its token may be in the path or the query string. */
export function webhookUrl(v: string | undefined, c: Check): string | undefined {
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
    c.fail(problem ?? 'is not a valid URL', 'an https webhook URL');
    return undefined;
  }
  return url.toString();
}

/** `REMEDIATION_JITTER_SECONDS`: 0 to 300. */
export function jitterSeconds(v: string | undefined, c: Check, def: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || Number(v) > 300) {
    c.fail(
      `is not a whole number from 0 to 300 (got '${v.slice(0, 20)}')`,
      'a whole number of seconds from 0 to 300',
    );
    return def;
  }
  return Number(v);
}

/** `API_UNSAFE_ALLOW_KEY_ONLY_ACCESS`: a boolean, with its own message. */
export function keyOnlyAccess(raw: string | undefined, c: Check, def: boolean): boolean {
  if (raw === undefined) return def;
  const v = raw.toLowerCase();
  if (!['true', 'false', '1', '0', 'yes', 'no'].includes(v))
    c.fail(`is not a boolean (got '${v.slice(0, 20)}')`, 'true or false (default false)');
  return ['true', '1', 'yes'].includes(v);
}

/** A parser of an optional GUID setting. */
export function guid(expected: string) {
  return (v: string | undefined, c: Check): string | undefined => {
    if (v !== undefined && !GUID.test(v)) c.fail(`is not a GUID${c.got(v)}`, expected);
    return v;
  };
}

/** Comma-separated tenant GUIDs, each once (case-insensitive); undefined when none. */
export function parseTenantIds(v: string | undefined, c: Check): string[] | undefined {
  if (v === undefined) return undefined;
  const ids = v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const seen = new Set<string>();
  for (const id of ids) {
    if (!GUID.test(id))
      c.fail(`names '${id}', which is not a tenant GUID`, 'comma-separated directory (tenant) GUIDs');
    else if (seen.has(id.toLowerCase())) c.fail(`lists ${id} twice`, 'each tenant once');
    seen.add(id.toLowerCase());
  }
  return ids.length > 0 ? ids.map((id) => id.toLowerCase()) : undefined;
}
