#!/usr/bin/env node
/**
 * sc-remediator: the same core as the Functions app, from a terminal or a pipeline.
 *
 *   sc-remediator scan                       assess every connection and report; changes nothing
 *   sc-remediator remediate [--dry-run]      fix what can be fixed, report the rest
 *   sc-remediator check                      check every prerequisite (rights, ownership, vault, storage); read only
 *   sc-remediator convert --connection <id>  convert one connection to workload identity federation [--dry-run]
 *   sc-remediator revert --connection <id>   revert a conversion while that is still possible
 *   sc-remediator retire --connection <id> --yes   delete an unrecoverable connection, its definition kept in the run ledger
 *   sc-remediator approve --connection <id> --organization <url> [--app <appId>]   entitle a connection to the app it names
 *
 * Exit codes: 0 all healthy or fixed · 1 something failed or needs a person · 2 bad usage or settings.
 */
import { userInfo } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { buildEngine, buildPreflight } from '../composition';
import { ConfigError, loadConfig, type Config } from '../config';
import { terminalSafeJson, withoutControls } from '../escaping';
import { PreconditionError } from '../errors';
import { ApprovalError, approveConnection } from '../remediation/entitlement';
import { runPreflight } from '../remediation/preflight';
import type { Intent } from '../remediation/policy';
import { configuredOrganization, findConnection, runRemediation, type RunOptions } from '../remediation/run';
import { createLogger, errorMessage, redactor, type LogLevel } from '../telemetry';
import { workerMemory } from '../telemetry/processMemory';
import { createProgress, exitCodeFor, formatReport } from './output';
import { formatPreflight } from './preflightOutput';
import { relaunchIfNeeded } from './launch';
import { mergeSettings, readSettingsFile, SettingsFileError } from './settingsFile';
import { GUID } from '../guid';

export const EXIT = { ok: 0, attention: 1, usage: 2 } as const;

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

interface RunFlags {
  dryRun?: boolean;
  organization?: string;
  connection?: string;
  json?: boolean;
  verbose?: boolean;
  yes?: boolean;
}

type RunKind = 'scan' | 'remediate' | Intent;

class UsageError extends Error {}

/** The settings: the environment, over the `--settings-file` where one is given. */
function configFrom(settingsFile: string | undefined, io: CliIo): Config {
  return loadConfig(settingsFile ? mergeSettings(readSettingsFile(settingsFile), io.env) : io.env);
}

async function runCommand(
  kind: RunKind,
  flags: RunFlags,
  settingsFile: string | undefined,
  io: CliIo,
): Promise<number> {
  const intent = kind === 'scan' || kind === 'remediate' ? undefined : kind;
  if (intent && flags.connection === undefined)
    throw new UsageError(`${kind} needs --connection <id>: it acts on one connection at a time.`);
  if (kind === 'retire' && !flags.yes)
    throw new UsageError(
      'retire deletes the connection from Azure DevOps (its definition is kept in the run ledger): confirm with --yes.',
    );
  if (flags.connection !== undefined && !GUID.test(flags.connection))
    throw new UsageError(
      `--connection takes a service connection id (a GUID), not '${flags.connection.slice(0, 60)}'.`,
    );
  const config = configFrom(settingsFile, io);
  const minLevel: LogLevel = flags.verbose ? 'info' : 'warn';
  const log = createLogger(
    (level, line) => io.stderr.write(`${level}: ${withoutControls(line)}\n`),
    minLevel,
  );
  const engine = buildEngine(config, log);
  const progress = flags.json ? undefined : createProgress(io.stderr);
  const options: RunOptions = {
    dryRun:
      kind === 'scan'
        ? true
        : kind === 'retire' || kind === 'revert'
          ? config.dryRun
          : (flags.dryRun ?? config.dryRun),
    organizationUrl: flags.organization,
    connectionId: flags.connection,
    // Superseded credentials go only when no other connection naming the app may use them: count
    // them in every configured organization, even for one organization or connection.
    census: kind !== 'scan',
    onProgress: (p) => progress?.update(p),
    ...(intent ? { intent } : {}),
  };
  let result;
  try {
    result = await runRemediation(engine.deps, engine.settings, options);
  } finally {
    progress?.stop();
  }
  const { report, problems } = result;
  const memory = workerMemory();
  log.info(
    `memory: peak resident ${memory.workerPeakRssMb} MB, V8 heap limit ${memory.workerHeapLimitMb} MB (node ${process.version})`,
  );
  const excluded = result.excluded ?? [];
  if (flags.json) {
    io.stdout.write(
      `${terminalSafeJson(redactor.redact(JSON.stringify({ ...report, problems, ...(excluded.length ? { excluded } : {}) }, null, 2)))}\n`,
    );
  } else {
    io.stdout.write(`${formatReport(report, problems, io.stdout.columns ?? 120)}\n`);
    if (excluded.length > 0)
      io.stdout.write(
        `Excluded by policy (not assessed): ${withoutControls(excluded.map((e) => `${e.organization}/${e.connectionName}`).join(', '))}\n`,
      );
  }
  if (flags.connection && excluded.length > 0 && report.connections.length === 0) {
    io.stderr.write(`Connection ${flags.connection} is excluded by the remediation policy.\n`);
    return EXIT.attention;
  }
  if (flags.connection && report.connections.length === 0) {
    io.stderr.write(`Connection ${flags.connection} was not found in the configured organizations.\n`);
    return EXIT.attention;
  }
  return exitCodeFor(report, problems);
}

/** `check`: every prerequisite, read only; 0 when nothing is missing, 1 otherwise. */
async function checkCommand(
  flags: { organization?: string; json?: boolean },
  settingsFile: string | undefined,
  io: CliIo,
): Promise<number> {
  const config = configFrom(settingsFile, io);
  const { deps, settings } = buildPreflight(config);
  if (flags.organization) settings.organizations = [configuredOrganization(settings, flags.organization)];
  const report = await runPreflight(deps, settings);
  io.stdout.write(
    flags.json
      ? `${terminalSafeJson(redactor.redact(JSON.stringify(report, null, 2)))}\n`
      : `${formatPreflight(report, io.stdout.columns ?? 120)}\n`,
  );
  return report.ok ? EXIT.ok : EXIT.attention;
}

function operatorName(env: NodeJS.ProcessEnv): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return `cli:${env['USER'] ?? env['USERNAME'] ?? 'unknown'}`;
  }
}

/**
 * `approve`: an operator entitles one connection to the app it names now (DESIGN invariant 8), after
 * seeing which app that is; with `--app`, refuses when the connection names another one.
 */
async function approveCommandRun(
  flags: { connection?: string; organization?: string; app?: string; json?: boolean },
  settingsFile: string | undefined,
  io: CliIo,
): Promise<number> {
  if (flags.connection === undefined || !GUID.test(flags.connection))
    throw new UsageError('approve needs --connection <id> (a service connection id, a GUID).');
  if (flags.organization === undefined)
    throw new UsageError('approve needs --organization <url>: a binding is per organization.');
  if (flags.app !== undefined && !GUID.test(flags.app))
    throw new UsageError(`--app takes the app's client id (a GUID), not '${flags.app.slice(0, 60)}'.`);
  const config = configFrom(settingsFile, io);
  const log = createLogger((level, line) => io.stderr.write(`${level}: ${line}\n`), 'warn');
  const engine = buildEngine(config, log);
  const org = configuredOrganization(engine.settings, flags.organization);
  try {
    const { binding, connection } = await approveConnection(
      {
        organizationUrl: org.url,
        connectionId: flags.connection,
        ...(flags.app ? { appId: flags.app } : {}),
        by: operatorName(io.env),
      },
      engine.deps,
      (url, id) => findConnection(engine.deps, engine.settings, url, id),
    );
    const projects = connection.serviceEndpointProjectReferences.map((r) =>
      withoutControls(r.projectReference.name ?? r.projectReference.id),
    );
    if (flags.json)
      io.stdout.write(`${JSON.stringify({ binding, connectionName: connection.name, projects }, null, 2)}\n`);
    else
      io.stdout.write(
        `Bound connection '${withoutControls(connection.name)}' (${connection.id}) in ${org.url}, projects ${projects.join(', ')},\n` +
          `to app ${binding.appId}${binding.tenantId ? ` of tenant ${binding.tenantId}` : ''} (${binding.how}, ${binding.at}).\n` +
          'It may now receive new credentials of that app; a change to another app needs a new approval.\n',
      );
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof ApprovalError)) throw err;
    io.stderr.write(`Not approved: ${err.message}\n`);
    return EXIT.attention;
  }
}

/** Builds the command line; `run` returns the exit code instead of exiting (tests call it). */
export function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command();
  program
    .name('sc-remediator')
    .description(
      'Find and repair broken or expiring Azure DevOps Azure Resource Manager service connections.',
    )
    .option(
      '--settings-file <path>',
      'read settings from a dotenv file (the environment wins where both set one)',
    )
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .addHelpText(
      'after',
      '\nExit codes: 0 all healthy or fixed, 1 something failed or needs a person, 2 bad usage or settings.\n' +
        'Settings: AZDO_ORGANIZATION_URLS and KEY_VAULT_URL are required; see docs/settings.md.',
    );

  const settingsFile = (): string | undefined => program.opts<{ settingsFile?: string }>().settingsFile;
  const runAction =
    (kind: RunKind) =>
    async (flags: RunFlags): Promise<void> => {
      setExit(await runCommand(kind, flags, settingsFile(), io));
    };
  const dryRun = (): Option => new Option('--dry-run', 'plan and report only; no write to any service');
  /** A command that prints a run's report: which connections (`scope`), then --json and --verbose. */
  const reportCommand = (cmd: Command, ...scope: Option[]): Command => {
    for (const option of scope) cmd.addOption(option);
    return cmd
      .option('--json', 'print the report as JSON on stdout (nothing else goes there)')
      .option('--verbose', 'log progress details to stderr');
  };
  const common = (cmd: Command): Command =>
    reportCommand(
      cmd,
      new Option('--organization <url>', 'only this organization (one of AZDO_ORGANIZATION_URLS)'),
      new Option('--connection <id>', 'only this service connection id'),
    );

  common(program.command('scan').description('assess every connection and report; change nothing')).action(
    runAction('scan'),
  );
  common(
    program
      .command('remediate')
      .description('rotate expired or expiring secrets and repair failed connections, then report')
      .addOption(dryRun()),
  ).action(runAction('remediate'));
  const one = (cmd: Command): Command =>
    reportCommand(
      cmd,
      new Option('--connection <id>', 'the service connection id (required)'),
      new Option('--organization <url>', 'its organization (one of AZDO_ORGANIZATION_URLS)'),
    );
  const oneConnection: [Intent, string, Option?][] = [
    [
      'convert',
      "convert one connection to workload identity federation (Azure DevOps' own conversion for connections it " +
        'created, else a federated credential added to the app), verify it, fall back to the secret if it fails',
      dryRun(),
    ],
    [
      'revert',
      "revert a conversion to the connection's secret: Azure DevOps' revert within its 7-day window, or the secret " +
        'kept in Key Vault until the retention period ends',
    ],
    [
      'retire',
      'delete a connection that cannot be fixed (app gone, or failed): its definition (no secret) is recorded in ' +
        'the run ledger first, then it is switched to Manual and deleted with deep=false; needs AzureWebJobsStorage',
      new Option('--yes', 'confirm the deletion'),
    ],
  ];
  for (const [kind, description, option] of oneConnection) {
    const command = program.command(kind).description(description);
    if (option) command.addOption(option);
    one(command).action(runAction(kind));
  }
  program
    .command('approve')
    .description(
      'entitle one connection to the app it names (it may then receive new credentials of that app): for a ' +
        "connection the report calls 'not bound to this app' that you know is legitimate; shows what it binds",
    )
    .addOption(new Option('--connection <id>', 'the service connection id (required)'))
    .addOption(
      new Option('--organization <url>', 'its organization (one of AZDO_ORGANIZATION_URLS; required)'),
    )
    .addOption(
      new Option('--app <appId>', 'the app you mean to approve: refused when the connection names another'),
    )
    .option('--json', 'print the recorded binding as JSON on stdout')
    .action(async (flags: { connection?: string; organization?: string; app?: string; json?: boolean }) => {
      setExit(await approveCommandRun(flags, settingsFile(), io));
    });
  program
    .command('check')
    .description(
      'check every prerequisite as the configured identity (organization access, service connection ' +
        'Administrator, app ownership, Graph permissions, Key Vault, storage) and print the fixes; read only',
    )
    .addOption(new Option('--organization <url>', 'only this organization (one of AZDO_ORGANIZATION_URLS)'))
    .option('--json', 'print the result as JSON on stdout (nothing else goes there)')
    .action(async (flags: { organization?: string; json?: boolean }) => {
      setExit(await checkCommand(flags, settingsFile(), io));
    });
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; everything else commander rejects is bad usage.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof ConfigError || err instanceof SettingsFileError || err instanceof UsageError) {
      io.stderr.write(`${redactor.redact(err.message)}\n`);
      return EXIT.usage;
    }
    if (err instanceof PreconditionError && err.code === 'organization-not-configured') {
      io.stderr.write(`${err.message}\n`);
      return EXIT.usage;
    }
    io.stderr.write(`sc-remediator: ${withoutControls(errorMessage(err))}\n`);
    return EXIT.attention;
  }
}

/** Runs the CLI for this process's terminal and sets the exit code. */
export function runFromTerminal(argv: string[]): void {
  void runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env }).then((code) => {
    process.exitCode = code;
  });
}

// `node main.js …` (tests, `npm run cli`): as started, except for a settings file's CA bundle.
if (require.main === module) {
  relaunchIfNeeded({ boundHeap: false });
  runFromTerminal(process.argv.slice(2));
}
