/**
 * What the Bicep compiler cannot know about infra/. The real compiler and linter run in
 * `npm run infra:check` (scripts/bicep.ts, part of `npm run check` and CI): syntax, types, the
 * parameter file against the template (undeclared or missing parameters), secure parameter defaults
 * and secrets in outputs (linter rules at error level in bicepconfig.json). Here the templates are
 * read with a small tokenizer (test/helpers/bicepText.ts) and checked against the code that runs on
 * them:
 *
 * - every setting the config loader reads, every app setting and binding expression the functions
 *   read, is set in the function app's app settings (or is deliberately absent, with the reason);
 *   the public contract's settings come from parameters whose defaults are the loader's defaults;
 * - every permission the code relies on is granted: Graph app roles, the Key Vault role, the storage
 *   blob and queue roles, Monitoring Metrics Publisher; each role assignment is named
 *   guid(scope, principal, role), scoped to one resource, commented with its name and reason, and
 *   none is broader than needed;
 * - no key, connection string with a key, or secret appears in a template or parameter file;
 * - every resource type has a pinned API version (no `latest`, no preview), every parameter has a
 *   @description;
 * - the alerts query the events the service really sends.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS, SETTING_ORDER } from '../../src/config';
import { deployedMallocArenaMax } from '../../bench/instanceMemory';
import {
  BicepSyntaxError,
  declarations,
  matching,
  objectProperties,
  resources,
  text,
  tokenize,
  type Declaration,
  type ResourceDeclaration,
  type Token,
} from '../helpers/bicepText';

const ROOT = join(__dirname, '..', '..');
const INFRA = join(ROOT, 'infra');
const read = (...parts: string[]): string => readFileSync(join(ROOT, ...parts), 'utf8');

interface Template {
  file: string;
  source: string;
  tokens: Token[];
  decls: Declaration[];
  resources: ResourceDeclaration[];
}

function load(file: string): Template {
  const source = read('infra', file);
  const tokens = tokenize(source);
  return { file, source, tokens, decls: declarations(tokens), resources: resources(tokens) };
}

const templateFiles = [
  'main.bicep',
  ...readdirSync(join(INFRA, 'modules'))
    .filter((f) => f.endsWith('.bicep'))
    .map((f) => `modules/${f}`),
];
const templates = templateFiles.map(load);
const byFile = (file: string): Template => {
  const t = templates.find((x) => x.file === file);
  if (!t) throw new Error(`no template ${file}`);
  return t;
};
const main = byFile('main.bicep');
const functionApp = byFile('modules/functionapp.bicep');
const rbac = byFile('modules/rbac.bicep');
const entra = byFile('modules/entra.bicep');
const alerts = byFile('modules/alerts.bicep');

/** Source files of the app (what runs on the infrastructure). */
function sources(dir: string): { file: string; text: string }[] {
  return readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: `${dir}/${f}`, text: read(dir, f) }));
}
const functionSources = sources('src/functions');
const clientSources = sources('src/clients');

function decl(t: Template, keyword: string, name: string): Declaration {
  const d = t.decls.find((x) => x.keyword === keyword && x.name === name);
  if (!d) throw new Error(`${t.file}: no ${keyword} ${name}`);
  return d;
}

/** The tokens after the first top-level `=` of a declaration (its value or default). */
function valueOf(d: Declaration): Token[] {
  const eq = d.tokens.findIndex((t) => t.type === 'punct' && t.value === '=');
  return eq === -1 ? [] : d.tokens.slice(eq + 1);
}

function resourceBody(t: Template, r: ResourceDeclaration): Map<string, Token[]> {
  return objectProperties(t.tokens, r.bodyStart);
}

function resourceOf(t: Template, symbol: string): ResourceDeclaration {
  const r = t.resources.find((x) => x.symbol === symbol);
  if (!r) throw new Error(`${t.file}: no resource ${symbol}`);
  return r;
}

/** A property path inside a resource body, e.g. ['properties', 'httpsOnly']. */
function property(t: Template, r: ResourceDeclaration, path: string[]): Token[] | undefined {
  let props = resourceBody(t, r);
  let value: Token[] | undefined;
  for (const [i, key] of path.entries()) {
    value = props.get(key);
    if (!value) return undefined;
    if (i < path.length - 1) {
      const open = value.findIndex((v) => v.value === '{');
      if (open === -1) return undefined;
      props = objectProperties(value, open);
    }
  }
  return value;
}

const valueText = (tokens: Token[] | undefined): string => (tokens ? text(tokens) : '(unset)');

// --- the app settings of the function app -----------------------------------------------------

const appSettingsResource = functionApp.resources.find(
  (r) =>
    r.type.startsWith('Microsoft.Web/sites/config@') &&
    text(resourceBody(functionApp, r).get('name') ?? []) === "'appsettings'",
)!;

/** Setting name → the tokens of its value, from the vars `union(…)`-ed into the appsettings. */
const appSettings: Map<string, Token[]> = (() => {
  const out = new Map<string, Token[]>();
  const value = resourceBody(functionApp, appSettingsResource).get('properties') ?? [];
  const vars = value[0]?.value === 'union' ? value.filter((t) => t.type === 'ident').slice(1) : [];
  for (const v of vars) {
    const tokens = valueOf(decl(functionApp, 'var', v.value));
    for (let k = 0; k < tokens.length; k++)
      if (tokens[k]!.value === '{') for (const [key, val] of objectProperties(tokens, k)) out.set(key, val);
  }
  return out;
})();

/** Settings the loader reads that are deliberately not set in Azure, and why. */
const NOT_IN_AZURE: Record<string, string> = {
  AZURE_CLIENT_SECRET:
    'in Azure the user-assigned managed identity (AZURE_CLIENT_ID) authenticates; no secret',
  AZDO_PAT: 'the managed identity gets Entra ID tokens for Azure DevOps; a PAT would be a long-lived secret',
  AzureWebJobsStorage:
    'a connection string holds an account key; the identity-based AzureWebJobsStorage__* form is set',
  AzureWebJobsStorage__accountName:
    'the blob and queue service URIs are set instead (they work in every cloud)',
  REMEDIATION_POLICY_FILE:
    'a local path is the CLI’s way; in Azure the policy is kept in Key Vault and read through the REMEDIATION_POLICY Key Vault reference',
  LOCK_LEASE_SECONDS:
    'the default (60 s, the longest finite blob lease) is what the app runs with; a shorter lease is a tuning an operator adds as an app setting',
};

/** Public-contract settings that come from a parameter: setting → [parameter, the loader's default]. */
const FROM_PARAMETERS: Record<string, [string, string | number | boolean | undefined]> = {
  AZDO_ORGANIZATION_URLS: ['azdoOrganizationUrls', undefined],
  AZDO_PROJECTS: ['azdoProjects', ''],
  GRAPH_ENDPOINT: ['graphEndpoint', ''],
  ADDITIONAL_TENANT_IDS: ['additionalTenantIds', ''],
  ROTATE_DAYS_BEFORE_EXPIRY: ['rotateDaysBeforeExpiry', DEFAULTS.rotateDaysBeforeExpiry],
  SECRET_LIFETIME_DAYS: ['secretLifetimeDays', DEFAULTS.secretLifetimeDays],
  OLD_SECRET_RETENTION_HOURS: ['oldSecretRetentionHours', DEFAULTS.oldSecretRetentionHours],
  DRY_RUN: ['dryRun', DEFAULTS.dryRun],
  REMEDIATION_SCHEDULE: ['remediationSchedule', DEFAULTS.schedule],
  MAX_CONCURRENCY: ['maxConcurrency', DEFAULTS.maxConcurrency],
  ENABLE_RETIREMENT: ['enableRetirement', DEFAULTS.enableRetirement],
  RETIRE_FAILED_AFTER_DAYS: ['retireFailedAfterDays', DEFAULTS.retireFailedAfterDays],
};

function literal(tokens: Token[]): string | number | boolean | undefined {
  if (tokens.length !== 1) return undefined;
  const t = tokens[0]!;
  if (t.type === 'string') return t.value;
  if (t.type === 'number') return Number(t.value);
  if (t.value === 'true' || t.value === 'false') return t.value === 'true';
  return undefined;
}

// --- role definitions ---------------------------------------------------------------------------

/** Built-in roles by id (the same in every tenant and cloud). */
const ROLES: Record<string, string> = {
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b': 'Storage Blob Data Owner',
  'ba92f5b4-2d11-453d-a403-e96b0029c9fe': 'Storage Blob Data Contributor',
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88': 'Storage Queue Data Contributor',
  'b86a8fe4-44ce-4948-aee5-eccb2c155cd7': 'Key Vault Secrets Officer',
  '4633458b-17de-408a-b874-0445c86b69e6': 'Key Vault Secrets User',
  'a4417e6f-fecd-4de8-b567-7b0420556985': 'Key Vault Certificates Officer',
  '3913510d-42f4-4e42-8a64-420c390055eb': 'Monitoring Metrics Publisher',
};
/** Roles far broader than anything the service needs: never assigned. */
const BROAD_ROLES: Record<string, string> = {
  '8e3af657-a8ff-4c83-a3dc-ca8a9c2a1bd3': 'Owner',
  'b24988ac-6180-42a0-ab88-20f7382dd24c': 'Contributor',
  '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9': 'User Access Administrator',
  '00482a5a-887f-4fb3-b363-3b7fe8e74483': 'Key Vault Administrator',
  '17d1049b-9a84-46fb-8f53-869881c3d3ab': 'Storage Account Contributor',
};
/** A role the code asks for → the roles that grant it (itself or a superset). */
const COVERED_BY: Record<string, string[]> = {
  'Storage Blob Data Contributor': ['Storage Blob Data Contributor', 'Storage Blob Data Owner'],
  'Storage Blob Data Owner': ['Storage Blob Data Owner'],
  'Storage Queue Data Contributor': ['Storage Queue Data Contributor'],
  'Key Vault Secrets Officer': ['Key Vault Secrets Officer'],
  'Key Vault Secrets User': ['Key Vault Secrets User', 'Key Vault Secrets Officer'],
  'Key Vault Certificates Officer': ['Key Vault Certificates Officer'],
  'Monitoring Metrics Publisher': ['Monitoring Metrics Publisher'],
};

interface RoleAssignment {
  symbol: string;
  role: string;
  /** The var holding the role id. */
  roleVar: string;
  roleId: string;
  scope: string;
  name: string;
  comments: string[];
  roleComments: string[];
  principalType: string;
}

const roleAssignments: RoleAssignment[] = rbac.resources
  .filter((r) => r.type.startsWith('Microsoft.Authorization/roleAssignments@'))
  .map((r) => {
    const body = resourceBody(rbac, r);
    const roleDef = property(rbac, r, ['properties', 'roleDefinitionId']) ?? [];
    const roleVar = roleDef.filter((t) => t.type === 'ident').pop()?.value ?? '';
    const roleDecl = decl(rbac, 'var', roleVar);
    const roleId = literal(valueOf(roleDecl));
    return {
      symbol: r.symbol,
      roleVar,
      roleId: typeof roleId === 'string' ? roleId : '',
      role: typeof roleId === 'string' ? (ROLES[roleId] ?? BROAD_ROLES[roleId] ?? `unknown ${roleId}`) : '',
      scope: valueText(body.get('scope')),
      name: valueText(body.get('name')),
      comments: r.comments,
      roleComments: roleDecl.comments,
      principalType: valueText(property(rbac, r, ['properties', 'principalType'])),
    };
  });

// ================================================================================================

describe('the Bicep reader itself', () => {
  test('comments, strings, escapes, interpolation and multi-line strings are told apart', () => {
    const tokens = tokenize(
      [
        "var a = 'it\\'s // not a comment ${concat('}', \"x\")} /* nor this */' // a comment",
        "var b = '''",
        "multi ${not} 'line'",
        "'''",
        '/* block',
        'comment */ var c = 1',
      ].join('\n'),
    );
    const strings = tokens.filter((t) => t.type === 'string');
    expect(strings[0]).toMatchObject({
      value: "it\\'s // not a comment ${concat('}', \"x\")} /* nor this */",
      interpolations: ['concat(\'}\', "x")'],
      line: 1,
    });
    expect(strings[1]).toMatchObject({
      multiline: true,
      value: "\nmulti ${not} 'line'\n",
      interpolations: [],
    });
    expect(tokens.filter((t) => t.type === 'comment').map((t) => [t.value, t.line])).toEqual([
      ['a comment', 1],
      ['block\ncomment', 5],
    ]);
    expect(tokens.find((t) => t.value === 'c')!.line).toBe(6);
  });

  test('declarations carry their decorators and comments; nested and looped resources are found', () => {
    const tokens = tokenize(
      [
        '// why',
        "@description('d')",
        '@minValue(1)',
        'param p int = 2',
        '',
        "resource s 'A.B/c@2024-01-01' = [for x in xs: {",
        '  name: x',
        "  resource: 'a property, not a declaration'",
        "  resource child 'd@2024-01-01' = {",
        "    name: 'n'",
        '  }',
        '}]',
      ].join('\n'),
    );
    const [p, s] = declarations(tokens);
    expect(p).toMatchObject({ keyword: 'param', name: 'p', comments: ['why'] });
    expect(p!.decorators.map((d) => d.name)).toEqual(['description', 'minValue']);
    expect(s).toMatchObject({ keyword: 'resource', name: 's' });
    expect(resources(tokens).map((r) => `${r.symbol} ${r.type}`)).toEqual([
      's A.B/c@2024-01-01',
      'child d@2024-01-01',
    ]);
    expect(() => matching(tokenize('{ [ }'), 0)).toThrow(BicepSyntaxError);
    expect(() => tokenize("var x = 'open")).toThrow(BicepSyntaxError);
  });

  test('every template is read', () => {
    expect(templateFiles.sort()).toEqual(
      [
        'main.bicep',
        'modules/alerts.bicep',
        'modules/appauth.bicep',
        'modules/entra.bicep',
        'modules/functionapp.bicep',
        'modules/identity.bicep',
        'modules/keyvault.bicep',
        'modules/monitoring.bicep',
        'modules/multitenantapp.bicep',
        'modules/rbac.bicep',
        'modules/storage.bicep',
      ].sort(),
    );
    for (const t of templates) expect(t.decls.length).toBeGreaterThan(0);
  });
});

describe('parameters', () => {
  test('every parameter of every template has a @description', () => {
    const missing = templates.flatMap((t) =>
      t.decls
        .filter((d) => d.keyword === 'param' && !d.decorators.some((x) => x.name === 'description'))
        .map((d) => `${t.file}: ${d.name}`),
    );
    expect(missing).toEqual([]);
  });

  // Undeclared or missing parameters are compile errors (build-params in npm run infra:check).
  test('every value in main.bicepparam comes from the environment (azd env or the shell), never a literal', () => {
    const decls = declarations(tokenize(read('infra', 'main.bicepparam')));
    expect(decls.filter((x) => x.keyword === 'param').length).toBeGreaterThan(30);
    for (const d of decls.filter((x) => x.keyword === 'param'))
      expect(`${d.name}: ${text(valueOf(d))}`).toMatch(/readEnvironmentVariable \(/);
  });
});

describe('API versions', () => {
  const all = templates.flatMap((t) => t.resources.map((r) => ({ file: t.file, ...r })));

  test('every resource type has an explicit, GA API version (Microsoft Graph: v1.0)', () => {
    expect(all.length).toBeGreaterThan(25);
    const bad = all.filter((r) => {
      const m = /^([A-Za-z]+\.[A-Za-z]+(?:\/[A-Za-z0-9]+)+)@(.+)$/.exec(r.type);
      if (!m) return true;
      const [, type = '', version = ''] = m;
      return type.startsWith('Microsoft.Graph/') ? version !== 'v1.0' : !/^\d{4}-\d{2}-\d{2}$/.test(version);
    });
    expect(bad.map((r) => `${r.file}:${r.line} ${r.type}`)).toEqual([]);
  });

  test('one API version per resource type across the templates', () => {
    const versions = new Map<string, Set<string>>();
    for (const r of all) {
      const [type = '', version = ''] = r.type.split('@');
      versions.set(type, (versions.get(type) ?? new Set()).add(version));
    }
    expect(
      [...versions].filter(([, v]) => v.size > 1).map(([type, v]) => `${type}: ${[...v].join(', ')}`),
    ).toEqual([]);
  });

  test('no "latest" anywhere, modules are local files, the Graph extension is pinned', () => {
    for (const t of templates) expect(t.source).not.toMatch(/[@:]latest\b/i);
    const modules = templates.flatMap((t) => t.decls.filter((d) => d.keyword === 'module'));
    for (const m of modules)
      expect(m.tokens[2]).toMatchObject({
        type: 'string',
        value: expect.stringMatching(/^modules\/\w+\.bicep$/),
      });
    const config = JSON.parse(read('infra', 'bicepconfig.json').replace(/^\s*\/\/.*$/gm, '')) as {
      extensions: Record<string, string>;
    };
    expect(config.extensions['microsoftGraphV1']).toMatch(
      /^br:mcr\.microsoft\.com\/bicep\/extensions\/microsoftgraph\/v1\.0:\d+\.\d+\.\d+$/,
    );
    expect(text(entra.decls.find((d) => d.keyword === 'extension')!.tokens)).toBe(
      'extension microsoftGraphV1',
    );
  });
});

describe('app settings: everything the code reads is set', () => {
  test('every setting the config loader reads is set, or deliberately absent for a stated reason', () => {
    const missing = SETTING_ORDER.filter((s) => !appSettings.has(s) && !(s in NOT_IN_AZURE));
    expect(missing).toEqual([]);
    // The deliberately absent ones really are absent (no secret, no key in app settings).
    for (const s of Object.keys(NOT_IN_AZURE)) expect(appSettings.has(s)).toBe(false);
    // NOT_IN_AZURE names only settings the loader knows.
    for (const s of Object.keys(NOT_IN_AZURE)) expect(SETTING_ORDER).toContain(s);
  });

  test('every environment variable and %binding% expression the functions read is set (platform WEBSITE_* aside)', () => {
    const names = new Set<string>();
    for (const { text: src } of functionSources) {
      for (const m of src.matchAll(/env\[['"]([A-Za-z0-9_]+)['"]\]/g)) names.add(m[1]!);
      for (const m of src.matchAll(/'%([A-Za-z0-9_]+)%'/g)) names.add(m[1]!);
    }
    expect(names.size).toBeGreaterThan(0);
    const missing = [...names].filter((n) => !n.startsWith('WEBSITE_') && !appSettings.has(n));
    expect(missing).toEqual([]);
  });

  test("the Node worker's allocator is limited to two malloc arenas, and the bench measures with what is deployed", () => {
    expect(valueText(appSettings.get('MALLOC_ARENA_MAX'))).toBe("'2'");
    expect(deployedMallocArenaMax(join(ROOT, 'infra', 'modules', 'functionapp.bicep'))).toBe('2');
  });

  test('host storage is identity-based for the connection the triggers use, with the managed identity', () => {
    const connections = new Set<string>();
    for (const { text: src } of functionSources)
      for (const m of src.matchAll(/STORAGE_CONNECTION\s*=\s*'([^']+)'/g)) connections.add(m[1]!);
    expect([...connections]).toEqual(['AzureWebJobsStorage']);
    expect(valueText(appSettings.get('AzureWebJobsStorage__credential'))).toBe("'managedidentity'");
    expect(valueText(appSettings.get('AzureWebJobsStorage__clientId'))).toBe('identityClientId');
    expect(valueText(appSettings.get('AzureWebJobsStorage__blobServiceUri'))).toMatch(
      /primaryEndpoints \. blob$/,
    );
    expect(valueText(appSettings.get('AzureWebJobsStorage__queueServiceUri'))).toMatch(
      /primaryEndpoints \. queue$/,
    );
  });

  test('the identity and the cloud come from the deployment itself', () => {
    expect(valueText(appSettings.get('AZURE_CLIENT_ID'))).toBe('identityClientId');
    expect(valueText(appSettings.get('AZURE_TENANT_ID'))).toBe('tenant ( ) . tenantId');
    expect(valueText(appSettings.get('AZURE_CLOUD'))).toBe('environment ( ) . name');
    expect(valueText(appSettings.get('AZURE_AUTHORITY_HOST'))).toBe(
      'environment ( ) . authentication . loginEndpoint',
    );
    expect(valueText(appSettings.get('KEY_VAULT_URL'))).toBe('keyVaultUri');
  });

  test('MULTI_TENANT_APP_CLIENT_ID is the multi-tenant app created with other tenants (or the one given), empty without them', () => {
    expect(valueText(appSettings.get('MULTI_TENANT_APP_CLIENT_ID'))).toBe('multiTenantAppClientId');
    const moduleDecl = decl(main, 'module', 'functionApp');
    const open = moduleDecl.tokens.findIndex((t) => t.value === '{');
    const params = objectProperties(moduleDecl.tokens, open).get('params') ?? [];
    expect(valueText(objectProperties(params, 0).get('multiTenantAppClientId'))).toBe(
      "empty ( additionalTenantIds ) ? '' : ( manageEntraObjects ? multiTenantApp !. outputs . appClientId : multiTenantAppClientId )",
    );
    const app = text(decl(main, 'module', 'multiTenantApp').tokens);
    expect(app).toContain('if ( manageEntraObjects && ! empty ( additionalTenantIds ) )');
    const module = read('infra', 'modules', 'multitenantapp.bicep');
    expect(module).toContain("signInAudience: 'AzureADMultipleOrgs'");
    expect(module).toContain(
      "issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'",
    );
    expect(module).toContain('subject: identityPrincipalId');
    expect(module).toContain('audiences: [tokenExchangeAudience]');
  });

  test.each(Object.entries(FROM_PARAMETERS))(
    "%s comes from a parameter, passed from main.bicep, with the loader's default everywhere",
    (setting, [param, loaderDefault]) => {
      expect(valueText(appSettings.get(setting))).toMatch(new RegExp(`\\b${param}\\b`));
      decl(functionApp, 'param', param);
      const mainParam = decl(main, 'param', param);
      const def = literal(valueOf(mainParam));
      expect(def).toEqual(loaderDefault);
      // main passes it through to the function app module.
      const moduleDecl = decl(main, 'module', 'functionApp');
      const open = moduleDecl.tokens.findIndex((t) => t.value === '{');
      const params = objectProperties(moduleDecl.tokens, open).get('params') ?? [];
      expect(valueText(objectProperties(params, 0).get(param))).toBe(param);
      // main.bicepparam reads the same-named setting from the environment, with the same default.
      const bicepparam = declarations(tokenize(read('infra', 'main.bicepparam')));
      const assigned = text(valueOf(bicepparam.find((d) => d.keyword === 'param' && d.name === param)!));
      expect(assigned).toContain(`readEnvironmentVariable ( '${setting}'`);
      if (loaderDefault !== undefined) expect(assigned).toContain(`'${String(loaderDefault)}'`);
      else expect(assigned).toBe(`readEnvironmentVariable ( '${setting}' )`);
    },
  );
});

describe('permissions the code relies on are granted, and no broader', () => {
  test('five role assignments: blob, queue, Key Vault secrets and certificates, Application Insights ingestion', () => {
    expect(roleAssignments.map((r) => `${r.role} @ ${r.scope}`).sort()).toEqual(
      [
        'Key Vault Secrets Officer @ vault',
        'Key Vault Certificates Officer @ vault',
        'Monitoring Metrics Publisher @ appInsights',
        'Storage Blob Data Owner @ storage',
        'Storage Queue Data Contributor @ storage',
      ].sort(),
    );
  });

  test('each is named guid(scope, principal, role), scoped to one resource, to the service principal', () => {
    for (const r of roleAssignments) {
      expect(`${r.symbol}: ${r.name}`).toBe(
        `${r.symbol}: guid ( ${r.scope} . id , principalId , ${r.roleVar} )`,
      );
      expect(['storage', 'vault', 'appInsights']).toContain(r.scope);
      expect(r.principalType).toBe("'ServicePrincipal'");
    }
    // Never at resource group or subscription level.
    expect(rbac.source).not.toMatch(/scope:\s*(resourceGroup|subscription)\(/);
  });

  test('each names its role in a comment, and the role says why it is needed', () => {
    for (const r of roleAssignments) {
      expect(r.comments.join(' ')).toContain(r.role);
      expect(r.roleComments.join(' ')).toContain(`${r.role}:`);
      expect(r.roleComments.join(' ').length).toBeGreaterThan(r.role.length + 40);
    }
  });

  test('no broad role appears anywhere', () => {
    for (const t of templates)
      for (const [id, name] of Object.entries(BROAD_ROLES))
        expect(`${t.file}: ${t.source.includes(id) ? name : ''}`).toBe(`${t.file}: `);
  });

  test('every role the adapters document is covered by an assignment', () => {
    const asked = new Set<string>();
    for (const { text: src } of [...clientSources, ...functionSources])
      for (const m of src.matchAll(
        /(Storage (?:Blob|Queue) Data \w+|Key Vault (?:Secrets|Certificates) (?:Officer|User)|Monitoring Metrics Publisher)/g,
      ))
        asked.add(m[1]!);
    expect(asked).toContain('Key Vault Secrets Officer');
    expect(asked).toContain('Key Vault Certificates Officer');
    expect(asked).toContain('Storage Blob Data Contributor');
    const granted = roleAssignments.map((r) => r.role);
    for (const role of asked)
      expect(`${role}: ${(COVERED_BY[role] ?? []).some((g) => granted.includes(g))}`).toBe(`${role}: true`);
  });

  test('queue triggers and outputs in the functions → Storage Queue Data Contributor', () => {
    expect(functionSources.some((f) => /app\.storageQueue\(|output\.storageQueue\(/.test(f.text))).toBe(true);
    expect(roleAssignments.map((r) => r.role)).toContain('Storage Queue Data Contributor');
  });

  test('Application Insights without local auth → Monitoring Metrics Publisher and Entra ID ingestion', () => {
    const monitoring = byFile('modules/monitoring.bicep');
    expect(
      valueText(
        property(monitoring, resourceOf(monitoring, 'appInsights'), ['properties', 'DisableLocalAuth']),
      ),
    ).toBe('true');
    expect(roleAssignments.find((r) => r.scope === 'appInsights')?.role).toBe('Monitoring Metrics Publisher');
    expect(valueText(appSettings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING'))).toBe(
      "'ClientId=${identityClientId};Authorization=AAD'",
    );
  });

  test('Microsoft Graph: Application.ReadWrite.OwnedBy (and optional Policy.Read.All) for the managed identity', () => {
    const graphCode = read('src', 'clients', 'graph.ts');
    expect(graphCode).toContain('Application.ReadWrite.OwnedBy');
    expect(graphCode).toContain('Policy.Read.All');
    const assignments = entra.resources.filter((r) => r.type === 'Microsoft.Graph/appRoleAssignedTo@v1.0');
    const toIdentity = assignments
      .filter((r) => valueText(resourceBody(entra, r).get('principalId')) === 'identityPrincipalId')
      .map((r) => {
        const roleVar = resourceBody(entra, r).get('appRoleId')?.[0]?.value ?? '';
        const roleValue = text(valueOf(decl(entra, 'var', roleVar)));
        return {
          role: /role \. value == '([\w.]+)'/.exec(roleValue)?.[1],
          resource: valueText(resourceBody(entra, r).get('resourceId')),
          conditional: text(r.head),
        };
      });
    expect(toIdentity).toEqual([
      { role: 'Application.ReadWrite.OwnedBy', resource: 'graph . id', conditional: '=' },
      { role: 'Policy.Read.All', resource: 'graph . id', conditional: '= if ( grantPolicyReadAll )' },
    ]);
    // `graph` is Microsoft Graph's service principal, found by its well-known app id.
    const graphSp = resourceOf(entra, 'graph');
    expect(graphSp).toMatchObject({ type: 'Microsoft.Graph/servicePrincipals@v1.0', existing: true });
    expect(valueText(resourceBody(entra, graphSp).get('appId'))).toBe('graphAppId');
    expect(literal(valueOf(decl(entra, 'var', 'graphAppId')))).toBe('00000003-0000-0000-c000-000000000000');
    // Application permissions, not the delegated scopes of the same name.
    expect(text(valueOf(decl(entra, 'var', 'ownedByRole')))).toContain(
      "contains ( role . allowedMemberTypes , 'Application' )",
    );
  });

  test('the Key Vault role is on a vault that uses RBAC, soft delete and purge protection', () => {
    const kv = byFile('modules/keyvault.bicep');
    const vault = resourceOf(kv, 'vault');
    for (const p of ['enableRbacAuthorization', 'enableSoftDelete', 'enablePurgeProtection'])
      expect(`${p}: ${valueText(property(kv, vault, ['properties', p]))}`).toBe(`${p}: true`);
  });

  test('the vault can be recovered: createMode from KEY_VAULT_CREATE_MODE, default "default"', () => {
    // Purge protection and a fixed name: after `azd down`, the next `azd up` must recover the
    // soft-deleted vault (createMode recover); a plain create fails on the reserved name.
    const kv = byFile('modules/keyvault.bicep');
    expect(valueText(property(kv, resourceOf(kv, 'vault'), ['properties', 'createMode']))).toBe('createMode');
    expect(literal(valueOf(decl(kv, 'param', 'createMode')))).toBe('default');
    expect(literal(valueOf(decl(main, 'param', 'keyVaultCreateMode')))).toBe('default');
    const moduleDecl = decl(main, 'module', 'vault');
    const params = objectProperties(
      moduleDecl.tokens,
      moduleDecl.tokens.findIndex((t) => t.value === '{'),
    ).get('params');
    expect(valueText(objectProperties(params ?? [], 0).get('createMode'))).toBe('keyVaultCreateMode');
    const bicepparam = declarations(tokenize(read('infra', 'main.bicepparam')));
    expect(
      text(valueOf(bicepparam.find((d) => d.keyword === 'param' && d.name === 'keyVaultCreateMode')!)),
    ).toBe("readEnvironmentVariable ( 'KEY_VAULT_CREATE_MODE' , 'default' )");
  });
});

describe('no key, connection string with a key, or secret in a template', () => {
  const files = [
    ...templateFiles.map((f) => `infra/${f}`),
    'infra/main.bicepparam',
    'infra/bicepconfig.json',
    'infra/abbreviations.json',
    'azure.yaml',
  ];
  const FORBIDDEN: [string, RegExp][] = [
    ['storage account key', /AccountKey\s*=/i],
    ['connection string with a key', /DefaultEndpointsProtocol=|SharedAccessKey|SharedAccessSignature/i],
    ['key listing function', /\blist(Keys|Secrets|ConnectionStrings|AccountSas|ServiceSas)\s*\(/i],
    ['instrumentation key literal', /InstrumentationKey\s*=/i],
    ['private key', /-----BEGIN/],
    ['Entra client secret value', /[A-Za-z0-9_\-.]{3}\dQ~[A-Za-z0-9_\-.~]{31,}/],
    ['password literal', /password\s*:\s*'[^']+'/i],
    ['client secret literal', /clientSecret\s*:\s*'[^']+'/i],
    ['SAS token', /[?&]sig=[A-Za-z0-9%]+/],
  ];

  test.each(files)('%s', (file) => {
    const content = read(file);
    const found = FORBIDDEN.filter(([, re]) => re.test(content)).map(([what]) => what);
    expect(found).toEqual([]);
  });

  // Secure parameter defaults and secrets in outputs: linter rules secure-parameter-default and
  // outputs-should-not-contain-secrets, at error level in bicepconfig.json (npm run infra:check).
  test('the linter rules that keep secrets out of defaults and outputs stay at error level', () => {
    const config = read('infra', 'bicepconfig.json');
    for (const rule of [
      'secure-parameter-default',
      'outputs-should-not-contain-secrets',
      'use-secure-value-for-secure-inputs',
    ])
      expect(config).toMatch(new RegExp(`"${rule}": \\{ "level": "error" \\}`));
  });

  test('the webhook secret reaches the app only as a Key Vault reference', () => {
    expect(valueText(appSettings.get('NOTIFY_WEBHOOK_URL'))).toBe(
      "'@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${notifySecretName})'",
    );
  });

  test('storage refuses shared keys; App Insights and Log Analytics refuse local auth', () => {
    const storage = byFile('modules/storage.bicep');
    expect(
      valueText(property(storage, resourceOf(storage, 'storage'), ['properties', 'allowSharedKeyAccess'])),
    ).toBe('false');
    const monitoring = byFile('modules/monitoring.bicep');
    expect(
      valueText(
        property(monitoring, resourceOf(monitoring, 'workspace'), [
          'properties',
          'features',
          'disableLocalAuth',
        ]),
      ),
    ).toBe('true');
  });
});

describe('the function app', () => {
  const site = resourceOf(functionApp, 'site');
  const prop = (...path: string[]): string => valueText(property(functionApp, site, path));

  test('Flex Consumption, Linux, Node 22, HTTPS only, the user-assigned identity', () => {
    const plan = resourceOf(functionApp, 'plan');
    expect(valueText(property(functionApp, plan, ['sku', 'tier']))).toBe("'FlexConsumption'");
    expect(valueText(property(functionApp, plan, ['sku', 'name']))).toBe("'FC1'");
    expect(valueText(property(functionApp, plan, ['properties', 'reserved']))).toBe('true');
    expect(valueText(resourceBody(functionApp, site).get('kind'))).toBe("'functionapp,linux'");
    expect(prop('properties', 'functionAppConfig', 'runtime', 'name')).toBe("'node'");
    expect(prop('properties', 'functionAppConfig', 'runtime', 'version')).toBe("'22'");
    expect(prop('properties', 'httpsOnly')).toBe('true');
    expect(prop('identity', 'type')).toBe("'UserAssigned'");
    expect(prop('properties', 'functionAppConfig', 'deployment', 'storage', 'authentication', 'type')).toBe(
      "'UserAssignedIdentity'",
    );
    // package.json's engines accept Node 22.
    expect((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node).toMatch(/>=22/);
  });

  test('FTP and basic publishing credentials are off', () => {
    const policies = functionApp.resources.filter((r) =>
      r.type.startsWith('Microsoft.Web/sites/basicPublishingCredentialsPolicies@'),
    );
    expect(
      policies
        .map(
          (r) =>
            `${valueText(resourceBody(functionApp, r).get('name'))}=${valueText(property(functionApp, r, ['properties', 'allow']))}`,
        )
        .sort(),
    ).toEqual(["'ftp'=false", "'scm'=false"]);
    // Flex Consumption has no FTP, and its sites in some regions (West Europe) refuse the property
    // outright: the deployment fails (microsoft/azure-pipelines-tasks#21032).
    expect(prop('properties', 'siteConfig', 'ftpsState')).toBe('(unset)');
    expect(prop('properties', 'siteConfig', 'minTlsVersion')).toBe("'1.2'");
  });

  test('App Service Authentication: Entra ID, secretless, /api/health anonymous, the app roles the API checks', () => {
    const appauth = byFile('modules/appauth.bicep');
    const auth = resourceOf(appauth, 'auth');
    const get = (...path: string[]): string => valueText(property(appauth, auth, path));
    expect(valueText(resourceBody(appauth, auth).get('name'))).toBe("'authsettingsV2'");
    expect(get('properties', 'globalValidation', 'requireAuthentication')).toBe('true');
    expect(get('properties', 'globalValidation', 'excludedPaths')).toBe("[ '/api/health' ]");
    expect(
      get(
        'properties',
        'identityProviders',
        'azureActiveDirectory',
        'registration',
        'clientSecretSettingName',
      ),
    ).toBe("'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'");
    expect(valueText(appSettings.get('OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'))).toBe('identityClientId');
    // /api/health is the anonymous health function's route.
    const health = functionSources.find((f) => f.file.endsWith('/health.ts'))!.text;
    expect(health).toMatch(/route: 'health'.*authLevel: 'anonymous'/);
    expect(read('host.json')).toMatch(/"routePrefix": "api"/);
    // The roles the API checks are the app roles of the registration.
    const checked = new Set<string>();
    for (const { text: src } of functionSources)
      for (const m of src.matchAll(/'(Remediation\.\w+)'/g)) checked.add(m[1]!);
    const app = resourceOf(entra, 'apiApp');
    const rolesValue = resourceBody(entra, app).get('appRoles') ?? [];
    const defined = new Set<string>();
    for (let k = 0; k < rolesValue.length; k++)
      if (rolesValue[k]!.value === '{')
        defined.add(String(literal(objectProperties(rolesValue, k).get('value') ?? [])));
    expect([...checked].sort()).toEqual(['Remediation.Operator', 'Remediation.Reader']);
    expect([...defined].sort()).toEqual([...checked].sort());
  });
});

describe('alerts', () => {
  const rules = alerts.resources.filter((r) => r.type.startsWith('Microsoft.Insights/scheduledQueryRules@'));
  const runEvents = new Set(
    [...read('src', 'remediation', 'run.ts').matchAll(/\|\s*'(\w+)'/g)]
      .map((m) => m[1]!)
      .filter((n) => /^[A-Z]/.test(n)),
  );

  function rule(symbol: string) {
    const r = resourceOf(alerts, symbol);
    const criteria = property(alerts, r, ['properties', 'criteria', 'allOf']) ?? [];
    const criterion = objectProperties(
      criteria,
      criteria.findIndex((t) => t.value === '{'),
    );
    const queryVar = criterion.get('query')?.[0]?.value ?? '';
    const queryDecl = decl(alerts, 'var', queryVar);
    let query = text(valueOf(queryDecl));
    const template = /replace \( (\w+) ,/.exec(query)?.[1];
    if (template) query = text(valueOf(decl(alerts, 'var', template)));
    return {
      query,
      operator: valueText(criterion.get('operator')),
      threshold: valueText(criterion.get('threshold')),
      actions: valueText(property(alerts, r, ['properties', 'actions', 'actionGroups'])),
      range: valueText(property(alerts, r, ['properties', 'overrideQueryTimeRange'])),
      dimensions: valueText(criterion.get('dimensions')),
    };
  }

  test('four log alerts, each sending to the action group', () => {
    expect(rules.map((r) => r.symbol).sort()).toEqual([
      'expiringNotRotated',
      'needsAttention',
      'noRun',
      'remediationFailed',
    ]);
    for (const r of rules) expect(rule(r.symbol).actions).toBe('[ actionGroup . id ]');
    const ag = resourceOf(alerts, 'actionGroup');
    expect(valueText(property(alerts, ag, ['properties', 'emailReceivers']))).toMatch(
      /for \( address , i \) in alertEmailAddresses/,
    );
    expect(valueText(property(alerts, ag, ['properties', 'webhookReceivers']))).toMatch(
      /^empty \( alertWebhookUrl \) \? \[ \] :/,
    );
  });

  test('remediation failed, needs a person, secret expiring within N days: per connection, on the real event names', () => {
    expect(rule('remediationFailed')).toMatchObject({ operator: "'GreaterThan'", threshold: '0' });
    expect(rule('remediationFailed').query).toContain('name == "RemediationFailed"');
    expect(rule('needsAttention').query).toContain('name == "ConnectionNeedsAttention"');
    const expiring = rule('expiringNotRotated');
    expect(expiring.query).toContain('name == "SecretExpiringSoon"');
    expect(expiring.query).toContain('daysLeft <= __DAYS__');
    expect(text(valueOf(decl(alerts, 'var', 'expiringQuery')))).toBe(
      "replace ( expiringQueryTemplate , '__DAYS__' , string ( expiringAlertDays ) )",
    );
    expect(literal(valueOf(decl(alerts, 'param', 'expiringAlertDays')))).toBe(7);
    for (const s of ['remediationFailed', 'needsAttention', 'expiringNotRotated'])
      expect(rule(s).dimensions).toBe('perConnection');
  });

  test('no RunCompleted from the timer in 26 hours: fewer than one row over the last 26 hours', () => {
    const noRun = rule('noRun');
    expect(noRun.query).toContain('name == "RunCompleted"');
    expect(noRun.query).toContain('tostring(customDimensions.trigger) == "timer"');
    expect(noRun).toMatchObject({
      operator: "'LessThan'",
      threshold: '1',
      range: "'PT${missedRunAlertHours}H'",
    });
    expect(literal(valueOf(decl(alerts, 'param', 'missedRunAlertHours')))).toBe(26);
    expect(literal(valueOf(decl(main, 'param', 'missedRunAlertHours')))).toBe(26);
    // The RunCompleted of a run carries its trigger (src/functions/context.ts).
    expect(
      functionSources.some((f) => /trackEvent\('RunCompleted', \{[^}]*trigger: run\.trigger/s.test(f.text)),
    ).toBe(true);
  });

  test('every event an alert or the workbook queries is one the service sends', () => {
    expect(runEvents).toEqual(
      new Set([
        'RunStarted',
        'RunCompleted',
        'ConnectionRemediated',
        'RemediationFailed',
        'ConnectionNeedsAttention',
        'SecretExpiringSoon',
      ]),
    );
    const queried = new Set([...alerts.source.matchAll(/name (?:==|in) \(?"(\w+)"/g)].map((m) => m[1]!));
    for (const m of alerts.source.matchAll(/"(\w+)"(?=[,)])/g))
      if (/^[A-Z]\w+$/.test(m[1]!)) queried.add(m[1]!);
    expect(queried.size).toBeGreaterThanOrEqual(5);
    for (const e of queried) expect(`${e}: ${runEvents.has(e)}`).toBe(`${e}: true`);
  });
});

describe('azd', () => {
  test('azure.yaml deploys the api service to the function app with the matching azd-service-name tag', () => {
    const yaml = read('azure.yaml');
    expect(yaml).toMatch(/^services:\n {2}api:\n {4}project: \.\n {4}language: ts\n {4}host: function$/m);
    expect(yaml).toMatch(/^infra:\n {2}provider: bicep\n {2}path: infra\n {2}module: main$/m);
    expect(valueText(resourceBody(functionApp, resourceOf(functionApp, 'site')).get('tags'))).toBe(
      "union ( tags , { 'azd-service-name' : 'api' } )",
    );
  });

  test('names come from abbreviations.json and one resource token', () => {
    const abbrs = JSON.parse(read('infra', 'abbreviations.json')) as Record<string, string>;
    const used = new Set([...main.source.matchAll(/abbrs\.(\w+)/g)].map((m) => m[1]!));
    expect(used.size).toBeGreaterThanOrEqual(8);
    for (const u of used) expect(abbrs).toHaveProperty(u);
    expect(text(valueOf(decl(main, 'var', 'resourceToken')))).toBe(
      'toLower ( uniqueString ( subscription ( ) . id , environmentName , location ) )',
    );
  });

  test('outputs azd stores: location, tenant, resource group, the service name and the identity', () => {
    const outputs = main.decls.filter((d) => d.keyword === 'output').map((d) => d.name);
    for (const o of [
      'AZURE_LOCATION',
      'AZURE_TENANT_ID',
      'AZURE_RESOURCE_GROUP',
      'SERVICE_API_NAME',
      'AZURE_CLIENT_ID',
      'KEY_VAULT_URL',
    ])
      expect(outputs).toContain(o);
    for (const d of main.decls.filter((x) => x.keyword === 'output')) {
      expect(d.name).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(d.decorators.map((x) => x.name)).toContain('description');
    }
  });
});

describe('scripts/add-owner.sh and scripts/grant-graph-permissions.sh (against a recording az stub)', () => {
  const IDENTITY = '0d6c3c5e-9a4b-4f57-8d2e-6f1a2b3c4d5e';
  const OWNED = '11111111-2222-4333-8444-555555555555';
  const NOT_OWNED = '66666666-7777-4888-9999-aaaaaaaaaaaa';
  const GRAPH_SP = 'a0a0a0a0-b1b1-4c2c-8d3d-e4e4e4e4e4e4';
  const OWNED_BY_ID = '18a4783c-866b-4cc7-a460-3d5e5662c884';
  const POLICY_READ_ID = '246dd0d5-5bd0-4def-940b-0421030a5b68';

  /** A fake `az` on PATH that answers what the scripts ask and records every call. */
  function withStubAz(
    script: string,
    args: string[],
    env: Record<string, string> = {},
  ): { status: number; stdout: string; calls: string[] } {
    const dir = mkdtempSync(join(tmpdir(), 'az-stub-'));
    const log = join(dir, 'calls.log');
    writeFileSync(
      join(dir, 'az'),
      [
        '#!/usr/bin/env bash',
        `echo "$*" >> '${log}'`,
        'case "$*" in',
        `  "ad app owner list --id ${OWNED} "*) echo ${IDENTITY} ;;`,
        `  "ad app owner list --id ${NOT_OWNED} "*) echo ffffffff-0000-4000-8000-000000000000 ;;`,
        '  "ad app owner add "*) ;;',
        '  "cloud show "*) echo https://graph.microsoft.com/ ;;',
        `  "ad sp show --id 00000003-0000-0000-c000-000000000000 --query id "*) echo ${GRAPH_SP} ;;`,
        `  *"appRoles[?value=='Application.ReadWrite.OwnedBy'"*) echo ${OWNED_BY_ID} ;;`,
        `  *"appRoles[?value=='Policy.Read.All'"*) echo ${POLICY_READ_ID} ;;`,
        `  "rest --method GET "*) echo ${POLICY_READ_ID} ;;`,
        '  "rest --method POST "*) ;;',
        '  *) echo "unexpected az $*" >&2; exit 3 ;;',
        'esac',
      ].join('\n'),
      { mode: 0o755 },
    );
    const run = spawnSync('bash', [join(ROOT, 'scripts', script), ...args], {
      env: { PATH: `${dir}:${process.env['PATH'] ?? ''}`, HOME: dir, ...env },
      encoding: 'utf8',
    });
    const calls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
    rmSync(dir, { recursive: true, force: true });
    return { status: run.status ?? -1, stdout: run.stdout, calls };
  }

  test('add-owner: adds the identity where it is missing, skips apps it already owns', () => {
    const r = withStubAz('add-owner.sh', ['--owner', IDENTITY, NOT_OWNED]);
    expect(r.status).toBe(0);
    expect(r.calls).toContain(`ad app owner add --id ${NOT_OWNED} --owner-object-id ${IDENTITY}`);
    const again = withStubAz('add-owner.sh', [OWNED, '--owner', IDENTITY]);
    expect(again.stdout).toContain('already owned');
    expect(again.calls.filter((c) => c.startsWith('ad app owner add'))).toEqual([]);
  });

  test('add-owner app1 app2: both are apps, the owner is the identity (never the second app)', () => {
    const r = withStubAz('add-owner.sh', [NOT_OWNED, OWNED], { SC_REMEDIATOR_IDENTITY_OBJECT_ID: IDENTITY });
    expect(r.status).toBe(0);
    expect(r.calls.filter((c) => c.startsWith('ad app owner list'))).toEqual([
      `ad app owner list --id ${NOT_OWNED} --query [].id -o tsv`,
      `ad app owner list --id ${OWNED} --query [].id -o tsv`,
    ]);
    expect(r.calls.filter((c) => c.startsWith('ad app owner add'))).toEqual([
      `ad app owner add --id ${NOT_OWNED} --owner-object-id ${IDENTITY}`,
    ]);
    // Without a known identity, two apps are a usage error before any az call, not "app2 owns app1".
    expect(withStubAz('add-owner.sh', [NOT_OWNED, OWNED])).toMatchObject({ status: 2, calls: [] });
  });

  test('add-owner: a bad identity id is a usage error before any az call; --dry-run changes nothing', () => {
    expect(withStubAz('add-owner.sh', ['--owner', 'not-a-guid', NOT_OWNED])).toMatchObject({
      status: 2,
      calls: [],
    });
    const dry = withStubAz('add-owner.sh', ['--dry-run', NOT_OWNED, '--owner', IDENTITY]);
    expect(dry.stdout).toContain('would run az ad app owner add');
    expect(dry.calls.filter((c) => c.startsWith('ad app owner add'))).toEqual([]);
  });

  test('grant-graph-permissions: posts the OwnedBy app role assignment, keeps an existing Policy.Read.All', () => {
    const r = withStubAz('grant-graph-permissions.sh', [IDENTITY, '--with-policy-read']);
    expect(r.status).toBe(0);
    const posts = r.calls.filter((c) => c.startsWith('rest --method POST'));
    expect(posts).toEqual([
      `rest --method POST --uri https://graph.microsoft.com/v1.0/servicePrincipals/${IDENTITY}/appRoleAssignments --headers Content-Type=application/json --body {"principalId":"${IDENTITY}","resourceId":"${GRAPH_SP}","appRoleId":"${OWNED_BY_ID}"}`,
    ]);
    expect(r.stdout).toContain('Policy.Read.All: already granted');
  });
});

describe('scripts/provision.sh: a first provision that meets Entra ID replication (against a recording azd stub)', () => {
  // The message ARM relays from the Graph extension when the identity created in the same deployment
  // is not yet on the replica that serves the app role assignment (msgraph-bicep-types#193).
  const REPLICATION =
    'ERROR: deployment failed: {"code":"BadRequest","target":"/resources/identityOwnedBy","message":"Not a valid reference update. Graph client request id: 0. "}';

  /** A fake `azd` that fails with each of `failures` in turn, then succeeds, recording its arguments. */
  function provision(failures: string[], args: string[] = [], attempts = '3') {
    const dir = mkdtempSync(join(tmpdir(), 'azd-stub-'));
    const log = join(dir, 'calls.log');
    writeFileSync(join(dir, 'failures'), failures.map((f) => `${f}\n`).join(''));
    writeFileSync(
      join(dir, 'azd'),
      [
        '#!/usr/bin/env bash',
        `echo "$*" >> '${log}'`,
        `n=$(wc -l < '${log}')`,
        `line=$(sed -n "\${n}p" '${join(dir, 'failures')}')`,
        'if [ -n "$line" ]; then echo "$line" >&2; exit 1; fi',
        'echo "SUCCESS: Your application was provisioned in Azure."',
      ].join('\n'),
      { mode: 0o755 },
    );
    const run = spawnSync('bash', [join(ROOT, 'scripts', 'provision.sh'), ...args], {
      env: {
        PATH: `${dir}:${process.env['PATH'] ?? ''}`,
        HOME: dir,
        PROVISION_RETRY_SECONDS: '0',
        PROVISION_ATTEMPTS: attempts,
      },
      encoding: 'utf8',
    });
    const calls = readFileSync(log, 'utf8').trim().split('\n');
    rmSync(dir, { recursive: true, force: true });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr, calls };
  }

  test('provisions again after a replication failure, with the same arguments, and succeeds', () => {
    const r = provision([REPLICATION], ['--environment', 'prod']);
    expect(r.status).toBe(0);
    expect(r.calls).toEqual(['provision --environment prod', 'provision --environment prod']);
    expect(r.stderr).toContain('provisioning again');
    expect(r.stdout).toContain('SUCCESS');
  });

  test('any other failure is returned at once, with azd’s exit code', () => {
    const r = provision(['ERROR: InsufficientPrivileges: Authorization_RequestDenied']);
    expect(r.status).toBe(1);
    expect(r.calls).toEqual(['provision']);
  });

  test('gives up after PROVISION_ATTEMPTS', () => {
    const r = provision([REPLICATION, REPLICATION, REPLICATION], [], '2');
    expect(r.status).toBe(1);
    expect(r.calls).toHaveLength(2);
  });

  test('npm run provision runs it; docs/deploy.md and azure.yaml point to it', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts['provision']).toBe('bash scripts/provision.sh');
    expect(read('docs', 'deploy.md')).toContain('npm run provision');
    expect(read('azure.yaml')).toContain('npm run provision');
  });
});
