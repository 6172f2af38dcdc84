/**
 * A credential still in use elsewhere is never removed (issue 10 §2, DESIGN invariant 9). Two
 * connections use the same app and the same secret; only the first is remediated, because the
 * second is outside `AZDO_PROJECTS`, in another configured organization, or excluded / report-only
 * by the policy. Rotating the first with a retention of 0 must keep the shared credential, so the
 * second still passes TestConnection (before the fix: removed, AADSTS7000215). A census that could
 * not see every organization keeps it too, and the report says why. Everything runs through the
 * product's composition root (the real SDK clients) against the sandbox.
 */
import { Writable } from 'node:stream';
import { checkClientSecret } from '../../sandbox/credentials';
import type { Sandbox, Scenario } from '../../sandbox/index';
import { stableGuid } from '../../sandbox/scenario';
import { runCli } from '../../src/cli/main';
import { createBlobServiceClient } from '../../src/clients/blobLeaseLock';
import { createBlobRunLedger } from '../../src/clients/runLedger';
import { parseWorkItem } from '../../src/functions/workQueue';
import { planRun, processWorkItem, type FanOutContext } from '../../src/remediation/fanOut';
import { runRemediation } from '../../src/remediation/run';
import type { ConnectionReport, RunReport } from '../../src/remediation/report';
import { createLogger } from '../../src/telemetry';
import { engineFor, entryFor, passwordKeyId, sandboxClock } from '../helpers/engineSandbox';
import { useSandbox } from '../helpers/useSandbox';
import { CAST } from '../helpers/scenarios';

jest.setTimeout(60_000);

type Where = 'other-project' | 'other-org' | 'same-project';

const REMEDIATOR = { identity: 'remediator', endpointAdministrator: true };
const ALICE = { identity: 'alice', endpointAdministrator: true };

/**
 * `first` (contoso/api) and `second` share app `shared` and its password `common`, which ends in
 * 10 days (both connections are due for rotation). `second` lives where `where` says; with
 * `fabrikamUnreadable` the product's identity is no member of fabrikam (its listing fails).
 */
function scenario(where: Where, fabrikamUnreadable = false): Scenario {
  const connection = (key: string, project: string) => ({
    key,
    name: key,
    projects: [project],
    scheme: 'ServicePrincipal',
    creationMode: 'Manual',
    app: 'shared',
    secret: 'common',
    createdBy: 'alice',
  });
  return {
    name: 'in-use',
    description: 'Two connections share one app and one secret.',
    ...CAST,
    apps: [
      {
        key: 'shared',
        displayName: 'sp-shared-deploy',
        owners: ['remediator', 'alice'],
        passwords: [{ key: 'common', displayName: 'azure-devops shared', startInDays: -80, endInDays: 10 }],
      },
    ],
    organizations: [
      {
        name: 'contoso',
        projects: [{ name: 'api' }, { name: 'web' }],
        members: [REMEDIATOR, ALICE],
        connections: [
          connection('first', 'api'),
          ...(where === 'other-project' ? [connection('second', 'web')] : []),
          ...(where === 'same-project' ? [connection('second', 'api')] : []),
        ],
      },
      {
        name: 'fabrikam',
        projects: [{ name: 'ops' }],
        members: fabrikamUnreadable ? [ALICE] : [REMEDIATOR, ALICE],
        connections: where === 'other-org' ? [connection('second', 'ops')] : [],
      },
    ],
  } as Scenario;
}

const fixture = useSandbox({ azurite: true });

interface Subject {
  sandbox: Sandbox;
  firstId: string;
  secondId: string;
  secondOrg: string;
  commonKeyId: string;
}

async function subject(where: Where, fabrikamUnreadable = false): Promise<Subject> {
  const sandbox = await fixture.start({
    scenario: scenario(where, fabrikamUnreadable),
    seed: `in-use-${where}`,
  });
  return {
    sandbox,
    firstId: stableGuid('endpoint', 'contoso', 'first'),
    secondId: stableGuid('endpoint', where === 'other-org' ? 'fabrikam' : 'contoso', 'second'),
    secondOrg: where === 'other-org' ? 'fabrikam' : 'contoso',
    commonKeyId: passwordKeyId('shared', 'common'),
  };
}

async function run(s: Subject, settings: Record<string, string>): Promise<RunReport> {
  const engine = engineFor(
    s.sandbox,
    createLogger(() => undefined),
    {
      settings: { OLD_SECRET_RETENTION_HOURS: '0', ...settings },
      clock: sandboxClock(s.sandbox, true),
    },
  );
  return (await runRemediation(engine.deps, engine.settings)).report;
}

/** `remediate --connection <first> --json` in this process; the report it prints. */
async function cliRemediateFirst(s: Subject, extraArgs: string[] = []): Promise<RunReport> {
  return JSON.parse(await cliRemediateFirstText(s, ['--json', ...extraArgs])) as RunReport;
}

/** `remediate --connection <first>` in this process; what it prints on stdout. */
async function cliRemediateFirstText(s: Subject, extraArgs: string[] = []): Promise<string> {
  let out = '';
  const stdout = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      out += chunk.toString();
      callback();
    },
  });
  const stderr = new Writable({ write: (_c, _e, callback) => callback() });
  await runCli(['remediate', '--connection', s.firstId, ...extraArgs], {
    stdout,
    stderr: stderr as unknown as NodeJS.WriteStream,
    env: { ...s.sandbox.env, OLD_SECRET_RETENTION_HOURS: '0' },
  });
  return out;
}

function app(s: Subject) {
  return s.sandbox.state.appByAppId(stableGuid('app', 'shared'))!;
}

/** The first connection was rotated and verified; the shared credential is still on the app. */
function expectRotatedAndKept(s: Subject, first: ConnectionReport): void {
  expect(first).toMatchObject({ action: 'rotate-secret', outcome: 'succeeded', phase: 'completed' });
  expect(app(s).passwordCredentials.map((p) => p.keyId)).toContain(s.commonKeyId);
  expect(first.cleanup).toContain(s.commonKeyId);
}

/** The second connection's secret still gets a token, and (where the product can see it) TestConnection passes. */
async function expectSecondWorks(s: Subject, testThroughProduct = true): Promise<void> {
  const endpoint = s.sandbox.state.organization(s.secondOrg)!.endpoints.get(s.secondId)!;
  const value = endpoint.authorization.parameters['serviceprincipalkey'] ?? undefined;
  expect(checkClientSecret(s.sandbox.state, app(s).appId, value).ok).toBe(true);
  if (!testThroughProduct) return;
  const engine = engineFor(
    s.sandbox,
    createLogger(() => undefined),
  );
  const orgUrl = s.sandbox.organizationUrls.find((u) => u.toLowerCase().includes(s.secondOrg))!;
  const project = endpoint.serviceEndpointProjectReferences[0]!.projectReference.id;
  const connection = await engine.deps.devops.getConnection(orgUrl, project, s.secondId);
  const test = await engine.deps.devops.testConnection(orgUrl, project, connection!);
  expect(test).toMatchObject({ ok: true });
}

test('outside AZDO_PROJECTS: the shared credential stays and the other connection keeps working', async () => {
  const s = await subject('other-project');
  const report = await run(s, { AZDO_PROJECTS: 'api' });
  expect(report.connections.map((c) => c.connectionId)).toEqual([s.firstId]);
  const first = entryFor(report, s.firstId);
  expectRotatedAndKept(s, first);
  expect(first.cleanup).toMatch(/1 other connection\(s\) name app .*'second'/);
  await expectSecondWorks(s);
});

test('in another configured organization (one-connection CLI run): the shared credential stays', async () => {
  const s = await subject('other-org');
  const report = await cliRemediateFirst(s, ['--organization', s.sandbox.organizationUrls[0]!]);
  const first = entryFor(report, s.firstId);
  expectRotatedAndKept(s, first);
  expect(first.cleanup).toMatch(/'second' .* in https:\/\/.*fabrikam/);
  await expectSecondWorks(s);
});

test("the CLI's readable report says which credential was kept and why", async () => {
  const s = await subject('other-org');
  const text = await cliRemediateFirstText(s, ['--organization', s.sandbox.organizationUrls[0]!]);
  expect(text).toMatch(
    new RegExp(
      `Superseded credentials kept:\\n  • first: kept ${s.commonKeyId} until it expires: .*'second'`,
    ),
  );
  await expectSecondWorks(s);
});

test.each(['exclude', 'report-only'])(
  'the other connection %s by policy: it is still counted, the shared credential stays',
  async (action) => {
    const s = await subject('same-project');
    const policy = JSON.stringify({ default: 'rotate', rules: [{ connection: 'second', action }] });
    const report = await run(s, { REMEDIATION_POLICY: policy });
    const first = entryFor(report, s.firstId);
    expectRotatedAndKept(s, first);
    expect(first.cleanup).toContain("'second'");
    await expectSecondWorks(s);
  },
);

test('an organization cannot be listed: the census is incomplete, the credential kept, the report says so', async () => {
  const s = await subject('other-org', true);
  const report = await run(s, {});
  const first = entryFor(report, s.firstId);
  expectRotatedAndKept(s, first);
  expect(first.cleanup).toMatch(/census incomplete: organization https:\/\/\S*fabrikam\S* unreadable/);
  // The connection the product could not see still works (checked in the tenant itself).
  await expectSecondWorks(s, false);
});

test('the other connection rotated by this service holds its own credential: the shared one goes', async () => {
  const s = await subject('other-project');
  // Both in scope, one after the other: `first` keeps `common` (second has no record yet); then
  // `second` is rotated and, as first's record shows it holds its own credential, removes it.
  const report = await run(s, { MAX_CONCURRENCY: '1' });
  expect(entryFor(report, s.firstId).cleanup).toContain(s.commonKeyId);
  expect(entryFor(report, s.secondId).cleanup).toBeUndefined();
  expect(entryFor(report, s.secondId).outcome).toBe('succeeded');
  expect(app(s).passwordCredentials.map((p) => p.keyId)).not.toContain(s.commonKeyId);
  expect(app(s).passwordCredentials).toHaveLength(2);
  await expectSecondWorks(s);
});

test('the nightly fan-out: the work item carries the census, and the worker keeps the shared credential', async () => {
  const s = await subject('other-project');
  const engine = engineFor(
    s.sandbox,
    createLogger(() => undefined),
    {
      settings: { OLD_SECRET_RETENTION_HOURS: '0', AZDO_PROJECTS: 'api' },
      clock: sandboxClock(s.sandbox, true),
    },
  );
  const blobs = createBlobServiceClient({ AzureWebJobsStorage: fixture.azurite.connectionString });
  const ctx: FanOutContext = {
    deps: engine.deps,
    settings: engine.settings,
    ledger: createBlobRunLedger(blobs.getContainerClient(`ledger-${Date.now().toString(36)}`)),
    events: () => undefined,
    onRunFinished: () => Promise.resolve(),
  };
  const planned = await planRun(ctx, { trigger: 'timer' });
  expect(planned.messages.map((m) => m.connectionId)).toEqual([s.firstId]);
  // Through the queue's contract: what the worker accepts still names the other connection.
  const parsed = await parseWorkItem(JSON.stringify(planned.messages[0]));
  if (!parsed.ok) throw new Error(parsed.problem);
  expect(parsed.item.usage?.others.map((u) => u.connectionId)).toEqual([s.secondId]);

  const outcome = await processWorkItem(ctx, parsed.item, { dequeueCount: 1, maxDequeueCount: 5 });
  if (outcome.status !== 'recorded') throw new Error(`work item ${outcome.status}`);
  expectRotatedAndKept(s, outcome.report);
  await expectSecondWorks(s);
});
