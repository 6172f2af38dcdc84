/**
 * Validation of scenario files: the JSON schema (`scenario.schema.json`, shape and values) and then
 * the references between parts (a connection's app, secret, projects and creator; owners; members),
 * which a schema cannot express. Every problem is reported at once, each with where it is.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { Scenario } from './scenario';
import schema from './scenario.schema.json';

export class ScenarioValidationError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(
      `Scenario ${source} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'ScenarioValidationError';
  }
}

let compiled: ValidateFunction<Scenario> | undefined;

function validator(): ValidateFunction<Scenario> {
  compiled ??= new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile<Scenario>(schema);
  return compiled;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `/organizations/0/connections/2` → `/organizations/0 (contoso)/connections/2 (web-sandbox)`: names help. */
function describePath(root: unknown, pointer: string): string {
  if (!pointer) return '(scenario)';
  let node: unknown = root;
  const parts: string[] = [];
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = Array.isArray(node) ? node[Number(segment)] : isObject(node) ? node[segment] : undefined;
    const label = isObject(node) ? (node['key'] ?? node['name'] ?? node['identity']) : undefined;
    parts.push(typeof label === 'string' && /^\d+$/.test(segment) ? `${segment} (${label})` : segment);
  }
  return `/${parts.join('/')}`;
}

function describeSchemaError(root: unknown, e: ErrorObject): string {
  const where = describePath(root, e.instancePath);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${where}: unknown property '${String(params['additionalProperty'])}'`;
    case 'required':
      return `${where}: missing required property '${String(params['missingProperty'])}'`;
    case 'enum':
      return `${where}: must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `${where}: ${JSON.stringify(valueAt(root, e.instancePath))} does not match ${String(params['pattern'])}`;
    default:
      return `${where}: ${e.message ?? e.keyword}`;
  }
}

function valueAt(root: unknown, pointer: string): unknown {
  let node: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = Array.isArray(node) ? node[Number(segment)] : isObject(node) ? node[segment] : undefined;
  }
  return node;
}

function duplicates(values: string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const v of values) (seen.has(v) ? dup : seen).add(v);
  return [...dup];
}

/** Checks between parts of a schema-valid scenario. */
function referenceProblems(s: Scenario): string[] {
  const problems: string[] = [];
  const identities = new Map(s.identities.map((i) => [i.key, i]));
  const otherApps = (s.otherTenants ?? []).flatMap((t) => t.apps);
  const apps = new Map([...s.apps, ...otherApps].map((a) => [a.key, a]));

  for (const key of duplicates(s.identities.map((i) => i.key)))
    problems.push(`/identities: key '${key}' is used more than once`);
  for (const key of duplicates([...s.apps, ...otherApps].map((a) => a.key)))
    problems.push(`/apps: key '${key}' is used more than once`);
  (s.otherTenants ?? []).forEach((t, i) => {
    const at = `/otherTenants/${i} (${t.key})`;
    const consented = new Set((t.consents ?? []).map((c) => c.app));
    for (const c of t.consents ?? [])
      if (!s.apps.some((a) => a.key === c.app))
        problems.push(`${at}/consents: '${c.app}' is not one of the home apps`);
    for (const app of t.apps)
      for (const owner of app.owners ?? [])
        if (!consented.has(owner))
          problems.push(`${at}/apps (${app.key})/owners: '${owner}' is not an app consented in this tenant`);
  });
  for (const name of duplicates(s.organizations.map((o) => o.name.toLowerCase())))
    problems.push(`/organizations: organization '${name}' appears more than once`);

  const product = identities.get(s.productIdentity);
  if (!product) problems.push(`/productIdentity: '${s.productIdentity}' is not one of the identities`);
  else if (product.kind !== 'servicePrincipal')
    problems.push(
      `/productIdentity: '${s.productIdentity}' must be a servicePrincipal (it signs in with a secret)`,
    );

  s.apps.forEach((app, i) => {
    const at = `/apps/${i} (${app.key})`;
    for (const key of app.trustsIdentities ?? [])
      if (!identities.has(key))
        problems.push(`${at}/trustsIdentities: '${key}' is not one of the identities`);
    for (const owner of app.owners ?? [])
      if (!identities.has(owner)) problems.push(`${at}/owners: '${owner}' is not one of the identities`);
    for (const key of duplicates((app.passwords ?? []).map((p) => p.key)))
      problems.push(`${at}/passwords: key '${key}' is used more than once`);
    (app.passwords ?? []).forEach((p, j) => {
      if ((p.startInDays ?? -300) >= p.endInDays)
        problems.push(`${at}/passwords/${j} (${p.key}): startInDays must be before endInDays`);
    });
  });

  s.organizations.forEach((org, i) => {
    const at = `/organizations/${i} (${org.name})`;
    const projects = new Set(org.projects.map((p) => p.name));
    for (const name of duplicates(org.projects.map((p) => p.name.toLowerCase())))
      problems.push(`${at}/projects: project '${name}' appears more than once`);
    org.members.forEach((m, j) => {
      if (!identities.has(m.identity))
        problems.push(`${at}/members/${j}: '${m.identity}' is not one of the identities`);
    });
    for (const key of duplicates(org.connections.map((c) => c.key)))
      problems.push(`${at}/connections: key '${key}' is used more than once`);
    for (const id of duplicates(org.connections.flatMap((c) => (c.id ? [c.id.toLowerCase()] : []))))
      problems.push(`${at}/connections: id '${id}' is used more than once`);

    org.connections.forEach((c, j) => {
      const cat = `${at}/connections/${j} (${c.key})`;
      for (const p of c.projects)
        if (!projects.has(p)) problems.push(`${cat}/projects: '${p}' is not a project of '${org.name}'`);
      const app = c.app ? apps.get(c.app) : undefined;
      if (c.app && !app) problems.push(`${cat}/app: '${c.app}' is not one of the apps`);
      if (c.secret) {
        if (!c.app) problems.push(`${cat}/secret: a secret needs an app`);
        else if (app && !(app.passwords ?? []).some((p) => p.key === c.secret))
          problems.push(`${cat}/secret: app '${c.app}' has no password '${c.secret}'`);
        if (c.scheme !== 'ServicePrincipal')
          problems.push(
            `${cat}/secret: only ServicePrincipal connections store a secret (scheme is ${c.scheme})`,
          );
      }
      if (c.storedSecret !== undefined) {
        if (c.secret)
          problems.push(`${cat}/storedSecret: a connection stores either 'secret' or 'storedSecret'`);
        if (c.scheme !== 'ServicePrincipal')
          problems.push(
            `${cat}/storedSecret: only ServicePrincipal connections store a secret (scheme is ${c.scheme})`,
          );
      }
      // An app of another tenant (`tenantId`) is not one of this tenant's apps.
      if (c.scheme === 'ServicePrincipal' && !c.app && !c.tenantId)
        problems.push(
          `${cat}/app: a ServicePrincipal connection needs an app (or a tenantId of another tenant)`,
        );
      if (c.createdBy && !identities.has(c.createdBy))
        problems.push(`${cat}/createdBy: '${c.createdBy}' is not one of the identities`);
    });
  });
  return problems;
}

/**
 * Validates parsed scenario JSON; returns it typed, or throws a ScenarioValidationError listing
 * every problem. `source` names the scenario in the message (e.g. `'default' (path)`).
 */
export function validateScenario(value: unknown, source: string): Scenario {
  const validate = validator();
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map((e) => describeSchemaError(value, e));
    throw new ScenarioValidationError(source, [...new Set(problems)]);
  }
  const problems = referenceProblems(value);
  if (problems.length > 0) throw new ScenarioValidationError(source, problems);
  return value;
}
