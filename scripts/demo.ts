/**
 * `npm run demo`: the whole job against the sandbox. Starts the simulated tenant (default scenario)
 * and Azurite, runs `sc-remediator remediate` as a real child process, shows its report, then the
 * before/after state of every connection as the services themselves hold it, and stops.
 *
 *   npm run demo                              rotate and repair (no policy: nothing converted or retired)
 *   npm run demo -- --with-policy             with scripts/demo-policy.json and ENABLE_RETIREMENT=true:
 *                                             a conversion of each kind and a retirement as well
 *   npm run demo -- --policy <file> [--enable-retirement]   with your own policy file
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import Table from 'cli-table3';
import { startAzurite, type Azurite } from '../sandbox/azurite';
import { createBlobServiceClient } from '../src/clients/blobLeaseLock';
import { createBlobRunLedger, DEFAULT_LEDGER_CONTAINER } from '../src/clients/runLedger';
import { checkClientCertificate, checkClientSecret, checkFederatedCredential } from '../sandbox/credentials';
import { startSandbox, type Sandbox, type Scenario } from '../sandbox/index';
import { readScenario } from '../sandbox/scenario';
import type { EndpointRecord } from '../sandbox/model';

interface ConnectionState {
  key: string;
  name: string;
  where: string;
  isReady: boolean;
  creationMode: string;
  scheme: string;
  secretEnds: string;
  works: string;
  passwords: number;
  federated: number;
}

const SCHEMES: Record<string, string> = {
  ServicePrincipal: 'secret',
  WorkloadIdentityFederation: 'federation',
  ManagedServiceIdentity: 'managed id',
};

function snapshot(sandbox: Sandbox): ConnectionState[] {
  const rows: ConnectionState[] = [];
  for (const org of sandbox.state.organizations.values()) {
    for (const ep of org.endpoints.values()) rows.push(describe(sandbox, org.name, ep));
  }
  return rows.sort((a, b) => a.where.localeCompare(b.where) || a.name.localeCompare(b.name));
}

function describe(sandbox: Sandbox, org: string, ep: EndpointRecord): ConnectionState {
  const { state } = sandbox;
  const appId = ep.authorization.parameters['serviceprincipalid'] ?? '';
  const key = ep.authorization.parameters['serviceprincipalkey'] ?? undefined;
  // The connection's app lives in its own tenant (another tenant's, in the multi-tenant scenario).
  const tenant = state.tenant(ep.authorization.parameters['tenantid']) ?? state;
  const app = appId ? tenant.appByAppId(appId) : undefined;
  const credential = key && app ? app.passwordCredentials.find((p) => p.secretText === key) : undefined;
  let works = 'n/a';
  const pem = ep.authorization.parameters['servicePrincipalCertificate'] ?? undefined;
  const certificateBased = ep.authorization.parameters['authenticationType'] === 'spnCertificate';
  if (certificateBased) {
    const check = checkClientCertificate(tenant, appId, pem);
    works = check.ok ? 'yes' : `no (AADSTS${check.aadsts})`;
  } else if (ep.authorization.scheme === 'ServicePrincipal') {
    const check = checkClientSecret(tenant, appId, key);
    works = check.ok ? 'yes' : `no (AADSTS${check.aadsts})`;
  } else if (ep.authorization.scheme === 'WorkloadIdentityFederation') {
    const check = checkFederatedCredential(
      state,
      appId,
      ep.authorization.parameters['workloadIdentityFederationIssuer'] ?? undefined,
      ep.authorization.parameters['workloadIdentityFederationSubject'] ?? undefined,
    );
    works = check.ok ? 'yes' : `no (AADSTS${check.aadsts})`;
  }
  return {
    key: ep.id,
    name: ep.name,
    where:
      `${org}/${ep.serviceEndpointProjectReferences.map((r) => r.projectReference.name).join('+')}` +
      (tenant === state
        ? state.tenant(ep.authorization.parameters['tenantid'])
          ? ''
          : ' (unknown tenant)'
        : ` (tenant ${tenant.tenantDomain})`),
    isReady: ep.isReady,
    creationMode: ep.data['creationMode'] ?? '',
    scheme: certificateBased ? 'certificate' : (SCHEMES[ep.authorization.scheme] ?? ep.authorization.scheme),
    secretEnds: certificateBased
      ? `cert ${certificateEnd(app?.keyCredentials ?? [], pem) ?? '—'}`
      : credential
        ? credential.endDateTime.slice(0, 10)
        : ep.authorization.scheme === 'ServicePrincipal'
          ? '—'
          : 'no secret',
    works,
    passwords: app ? app.passwordCredentials.length : 0,
    federated: app ? app.federatedIdentityCredentials.length : 0,
  };
}

/** The end date of the app certificate the connection's PEM holds (its DER is the app's `key`). */
function certificateEnd(
  keys: { key: string; endDateTime: string }[],
  pem: string | undefined,
): string | undefined {
  const der = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/
    .exec(pem ?? '')?.[1]
    ?.replace(/\s+/g, '');
  return keys.find((k) => k.key === der)?.endDateTime.slice(0, 10);
}

/**
 * The default scenario plus a certificate-based connection whose certificate ends in 12 days (the
 * default scenario stays as tests know it): the demo shows its rotation through Key Vault. And a
 * second one, valid for months, that the demo policy converts to workload identity federation
 * (its certificate rotated first, for a Key Vault certificate to fall back on).
 */
function demoScenario(): Scenario {
  const scenario = readScenario('default');
  scenario.apps.push({
    key: 'web-cert',
    displayName: 'contoso-web-cert-deploy',
    owners: ['remediator', 'alice'],
    certificates: [{ key: 'deploy', startInDays: -353, endInDays: 12 }],
  });
  const org = scenario.organizations[0]!;
  org.connections.push({
    key: 'web-cert',
    name: 'web-cert-deploy',
    projects: [org.projects[0]!.name],
    scheme: 'ServicePrincipal',
    authenticationType: 'spnCertificate',
    creationMode: 'Manual',
    app: 'web-cert',
    certificate: 'deploy',
    createdBy: 'alice',
  });
  scenario.apps.push({
    key: 'web-cert-federate',
    displayName: 'contoso-web-cert-federate',
    owners: ['remediator', 'alice'],
    certificates: [{ key: 'deploy', startInDays: -165, endInDays: 200 }],
  });
  org.connections.push({
    key: 'web-cert-federate',
    name: 'web-cert-federate',
    projects: [org.projects[0]!.name],
    scheme: 'ServicePrincipal',
    authenticationType: 'spnCertificate',
    creationMode: 'Manual',
    app: 'web-cert-federate',
    certificate: 'deploy',
    createdBy: 'alice',
  });
  return scenario;
}

interface DemoOptions {
  policyFile?: string;
  retirement: boolean;
}

function parseArgs(argv: string[]): DemoOptions {
  const options: DemoOptions = { retirement: false };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--with-policy') {
      options.policyFile = join(__dirname, 'demo-policy.json');
      options.retirement = true;
    } else if (arg === '--policy') {
      const file = argv[(i += 1)];
      if (!file) throw new Error('--policy needs a file');
      options.policyFile = resolve(file);
    } else if (arg === '--enable-retirement') options.retirement = true;
    else
      throw new Error(
        `unknown option '${arg ?? ''}' (expected --with-policy, --policy <file>, --enable-retirement)`,
      );
  }
  return options;
}

function arrow<T>(before: T, after: T): string {
  return before === after ? String(after) : `${String(before)} → ${String(after)}`;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const tsx = join(__dirname, '..', 'node_modules', '.bin', process.platform === 'win32' ? 'tsx.cmd' : 'tsx');
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, [join(__dirname, '..', 'src', 'cli', 'main.ts'), ...args], {
      stdio: 'inherit',
      env,
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

/**
 * `sc-remediator remediate` against the sandbox (clean-up in the same run), with every connection's
 * state before and after it and where its requests start in the sandbox's log.
 */
async function remediate(sandbox: Sandbox, storage: Azurite, settings: NodeJS.ProcessEnv = {}) {
  const before = snapshot(sandbox);
  const logStart = sandbox.state.requestLog.length;
  const exitCode = await runCli(['remediate'], {
    ...process.env,
    ...sandbox.env,
    AzureWebJobsStorage: storage.connectionString,
    OLD_SECRET_RETENTION_HOURS: '0',
    ...settings,
  });
  const after = new Map(snapshot(sandbox).map((s) => [s.key, s]));
  return { before, after, logStart, exitCode };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  let sandbox: Sandbox | undefined;
  let storage: Azurite | undefined;
  try {
    [sandbox, storage] = await Promise.all([
      startSandbox({ scenario: demoScenario() }),
      startAzurite({ blob: true }),
    ]);
    process.stdout.write(
      `Sandbox tenant up in ${Date.now() - t0} ms: ${sandbox.organizationUrls.length} organizations, ` +
        `${[...sandbox.state.organizations.values()].reduce((n, o) => n + o.endpoints.size, 0)} connections ` +
        `(scenario 'default', one for each situation in the field reports, and a certificate connection).\n` +
        'Superseded secrets are removed at once in this demo (OLD_SECRET_RETENTION_HOURS=0; the default keeps them 24 h).\n' +
        (options.policyFile
          ? `Policy: ${options.policyFile}${options.retirement ? '; ENABLE_RETIREMENT=true' : ''}.\n`
          : 'No policy: secrets are rotated; nothing is converted to workload identity federation or retired (npm run demo -- --with-policy for both).\n') +
        '\n$ sc-remediator remediate\n',
    );
    const { before, after, logStart, exitCode } = await remediate(sandbox, storage, {
      ...(options.policyFile ? { REMEDIATION_POLICY_FILE: options.policyFile } : {}),
      ...(options.retirement ? { ENABLE_RETIREMENT: 'true' } : {}),
    });

    const table = new Table({
      head: [
        'Connection',
        'Where',
        'isReady',
        'creationMode',
        'Auth',
        'Secret ends',
        'Gets a token',
        'App passwords',
        'Fed. creds',
      ],
      style: { head: [], border: [] },
    });
    for (const b of before) {
      const a = after.get(b.key);
      if (!a) {
        table.push([
          b.name,
          b.where,
          { colSpan: 7, content: '→ retired: deleted from Azure DevOps (definition kept in the run ledger)' },
        ]);
        continue;
      }
      table.push([
        b.name,
        b.where,
        arrow(b.isReady, a.isReady),
        arrow(b.creationMode, a.creationMode),
        arrow(b.scheme, a.scheme),
        arrow(b.secretEnds, a.secretEnds),
        arrow(b.works, a.works),
        arrow(b.passwords, a.passwords),
        arrow(b.federated, a.federated),
      ]);
    }
    process.stdout.write(`\nBefore → after, as the sandbox's services hold it:\n${table.toString()}\n`);

    // What changed scheme, with the federated credential Azure DevOps gave it (issuer and subject are not secrets).
    const converted = before.filter(
      (b) =>
        (b.scheme === 'secret' || b.scheme === 'certificate') && after.get(b.key)?.scheme === 'federation',
    );
    for (const b of converted) {
      const ep = [...sandbox.state.organizations.values()]
        .flatMap((o) => [...o.endpoints.values()])
        .find((e) => e.id === b.key);
      process.stdout.write(
        `\nConverted ${b.name} (${ep?.data['revertSchemeDeadline'] ? "Azure DevOps' own conversion, revertible until " + ep.data['revertSchemeDeadline'] : 'federated credential added through Graph'}):\n` +
          `  issuer  ${ep?.authorization.parameters['workloadIdentityFederationIssuer'] ?? ''}\n` +
          `  subject ${ep?.authorization.parameters['workloadIdentityFederationSubject'] ?? ''}\n`,
      );
    }
    const ledger = createBlobRunLedger(
      createBlobServiceClient({ AzureWebJobsStorage: storage.connectionString }).getContainerClient(
        DEFAULT_LEDGER_CONTAINER,
      ),
    );
    for (const r of await ledger.listRetired(100))
      process.stdout.write(
        `\nRetired ${r.organization}/${r.connectionName} (${r.reason}); the run ledger keeps its definition ` +
          `(creationMode ${r.definition.data['creationMode'] ?? ''}, scheme ${r.definition.authorization.scheme}, ` +
          `subscription ${r.definition.data['subscriptionName'] ?? ''}, parameters: ${Object.keys(r.definition.authorization.parameters).join(', ')}; no secret).\n`,
      );

    const calls = new Map<string, number>();
    for (const e of sandbox.state.requestLog.slice(logStart))
      calls.set(e.service, (calls.get(e.service) ?? 0) + 1);
    process.stdout.write(
      `\nRequests the run made: ${[...calls].map(([s, n]) => `${s} ${n}`).join(', ')}; ` +
        `the CLI exited ${exitCode} (${exitCode === 0 ? 'all healthy or fixed' : 'some connections need a person'}).\n`,
    );
    await sandbox.stop();
    sandbox = undefined;
    sandbox = await startSandbox({ scenario: 'multi-tenant' });
    await otherTenants(sandbox, storage);
  } finally {
    await Promise.allSettled([storage?.stop(), sandbox?.stop()]);
  }
}

/**
 * The `multi-tenant` scenario: connections whose apps live in other tenants (ADDITIONAL_TENANT_IDS),
 * reached through the multi-tenant app that trusts the product's identity; then the request log of
 * the other-tenant rotation (method, host, path, status, caller).
 */
async function otherTenants(sandbox: Sandbox, storage: Azurite): Promise<void> {
  const tenants = [...sandbox.state.otherTenants.values()];
  process.stdout.write(
    `\n\nOther tenants (scenario 'multi-tenant'): home tenant ${sandbox.state.tenantDomain}; ` +
      `ADDITIONAL_TENANT_IDS lists ${tenants.map((t) => t.tenantDomain).join(' and ')}. ` +
      `The multi-tenant app (MULTI_TENANT_APP_CLIENT_ID ${sandbox.env['MULTI_TENANT_APP_CLIENT_ID'] ?? ''}) has no secret: ` +
      `it signs in with the identity's token as its client assertion. fabrikam consented to it; northwind did not; ` +
      `a third tenant is not configured.\n\n$ sc-remediator remediate\n`,
  );
  const { before, after, logStart, exitCode } = await remediate(sandbox, storage);
  const table = new Table({
    head: ['Connection', 'Where', 'isReady', 'Secret ends', 'Gets a token', 'App passwords'],
    style: { head: [], border: [] },
  });
  for (const b of before) {
    const a = after.get(b.key) ?? b;
    table.push([
      b.name,
      b.where,
      arrow(b.isReady, a.isReady),
      arrow(b.secretEnds, a.secretEnds),
      arrow(b.works, a.works),
      arrow(b.passwords, a.passwords),
    ]);
  }
  process.stdout.write(`\nBefore → after:\n${table.toString()}\n`);

  // The rotation of fabrikam's connection, request by request (no secret: paths and statuses only).
  const fabrikam = tenants.find((t) => t.tenantDomain.startsWith('fabrikam'));
  const endpoint = [...sandbox.state.organizations.values()]
    .flatMap((o) => [...o.endpoints.values()])
    .find((e) => e.name === 'fabrikam-deploy');
  const app =
    fabrikam && endpoint
      ? fabrikam.appByAppId(endpoint.authorization.parameters['serviceprincipalid'] ?? '')
      : undefined;
  if (fabrikam && endpoint && app) {
    const hosts: Record<string, string> = {
      entra: new URL(sandbox.urls.authority).host,
      graph: new URL(sandbox.urls.graph).host,
      devops: new URL(sandbox.urls.devops).host,
      keyvault: new URL(sandbox.urls.keyVault).host,
    };
    const related = (path: string, caller?: string) =>
      path.toLowerCase().includes(endpoint.id.toLowerCase()) ||
      path.includes(app.id) ||
      path.includes(app.appId) ||
      path.toLowerCase().startsWith(`/${fabrikam.tenantId}/`) ||
      caller === 'remediator-multi-tenant';
    const rows = sandbox.state.requestLog
      .slice(logStart)
      .filter((e) => related(`${e.path} ${e.query['endpointId'] ?? ''}`, e.caller))
      .map(
        (e) =>
          `  ${e.method.padEnd(6)} ${e.status}  ${hosts[e.service] ?? e.service}${e.path}  (${e.caller ?? '-'})`,
      );
    process.stdout.write(
      `\nRequests of the fabrikam-deploy rotation (token in fabrikam, Graph in fabrikam, Key Vault and Azure DevOps at home):\n${rows.join('\n')}\n`,
    );
  }
  process.stdout.write(
    `\nThe CLI exited ${exitCode} (northwind's missing consent is a failure a person fixes).\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
