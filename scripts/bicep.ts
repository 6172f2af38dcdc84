/**
 * Compiles and lints infra/ with the real Bicep CLI: `npm run infra:check` (part of `npm run check`).
 *
 * The CLI comes from NuGet (package Azure.Bicep.CommandLine.linux-x64, pinned in
 * tools/bicep/bicep.csproj, restored with `dotnet restore tools/bicep/bicep.csproj`; restored here
 * when missing). The Microsoft Graph extension cannot be restored from its container registry on
 * machines without that registry, so its published types (the `shared/specs/msgraph-bicep-types`
 * folder next to the project, or MSGRAPH_BICEP_TYPES) are packaged as a local extension with
 * `bicep publish-extension`, and a CI-only copy of infra/bicepconfig.json names that file instead of
 * the registry; everything else in the config (the linter rules) is the committed one.
 *
 * Runs `bicep build` on main.bicep, `bicep build-params` on main.bicepparam and `bicep lint` on
 * main.bicep (and so on every module), and fails on any error or warning (the levels come from
 * bicepconfig.json). Quiet on success: one line with the CLI version; every diagnostic on failure.
 *
 *   tsx scripts/bicep.ts            check
 *   tsx scripts/bicep.ts --verbose  also list info-level diagnostics
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..');
export const INFRA = join(ROOT, 'infra');
const TOOL_PROJECT = join(ROOT, 'tools', 'bicep', 'bicep.csproj');
const ASSETS = join(ROOT, 'tools', 'bicep', 'obj', 'project.assets.json');
/** Gitignored: the packaged Graph extension, the CI config and the compiled templates. */
export const BUILD_DIR = join(ROOT, 'tools', 'bicep', 'out');
const PACKAGE_ID = 'Azure.Bicep.CommandLine.linux-x64';
const GRAPH_ALIAS = 'microsoftGraphV1';

/** A sample for the one parameter without a default, so main.bicepparam builds as in a deployment. */
export const SAMPLE_ENVIRONMENT: Record<string, string> = {
  AZDO_ORGANIZATION_URLS: 'https://dev.azure.com/contoso',
};

export class BicepUnavailable extends Error {}

export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  level: 'Error' | 'Warning' | 'Info';
  code: string;
  message: string;
}

export interface BicepRun {
  command: string;
  status: number;
  stdout: string;
  diagnostics: Diagnostic[];
  /** stderr lines that are not diagnostics (e.g. a crash, an experimental-feature notice). */
  other: string[];
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(command, args, { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** The pinned version from the project file (the package folder is named after it). */
function pinnedVersion(): string {
  const m = /Include="Azure\.Bicep\.CommandLine\.linux-x64"\s+Version="\[([\d.]+)\]"/.exec(
    readFileSync(TOOL_PROJECT, 'utf8'),
  );
  if (!m?.[1]) throw new Error(`${relative(ROOT, TOOL_PROJECT)}: no pinned ${PACKAGE_ID} version`);
  return m[1];
}

function restore(): void {
  const r = run('dotnet', ['restore', TOOL_PROJECT, '--verbosity', 'quiet']);
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new BicepUnavailable(
      'The .NET SDK (`dotnet`) is not on PATH, so the Bicep CLI cannot be restored from NuGet. Install the .NET SDK 10 ' +
        '(docs/deploy.md, "Compile and lint the templates"), then run `dotnet restore tools/bicep/bicep.csproj`; ' +
        'or point BICEP_CLI at an installed Bicep CLI (e.g. `az bicep install` puts one in ~/.azure/bin/bicep).',
    );
  if (r.status !== 0)
    throw new BicepUnavailable(
      `dotnet restore tools/bicep/bicep.csproj failed (exit ${r.status}):\n${r.stdout}${r.stderr}`,
    );
}

/** Path of the restored `bicep` binary (BICEP_CLI overrides it), restoring the package if needed. */
export function bicepBinary(): string {
  const override = process.env['BICEP_CLI'];
  if (override) return override;
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new BicepUnavailable(
      `${PACKAGE_ID} carries the Linux x64 CLI; on ${process.platform}-${process.arch} set BICEP_CLI to an installed Bicep CLI.`,
    );
  const version = pinnedVersion();
  const locate = (): string | undefined => {
    if (!existsSync(ASSETS)) return undefined;
    const assets = JSON.parse(readFileSync(ASSETS, 'utf8')) as { packageFolders?: Record<string, unknown> };
    for (const folder of Object.keys(assets.packageFolders ?? {})) {
      const binary = join(folder, PACKAGE_ID.toLowerCase(), version, 'tools', 'bicep');
      if (existsSync(binary)) return binary;
    }
    return undefined;
  };
  let binary = locate();
  if (!binary) {
    restore();
    binary = locate();
  }
  if (!binary)
    throw new BicepUnavailable(`${PACKAGE_ID} ${version} restored, but no tools/bicep binary in it.`);
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    // NuGet extracts files without their mode on some systems.
    chmodSync(binary, 0o755);
  }
  return binary;
}

const DIAGNOSTIC = /^(.+?)\((\d+),(\d+)\) : (Error|Warning|Info) ([\w-]+): (.*)$/;

export function parseDiagnostics(stderr: string): { diagnostics: Diagnostic[]; other: string[] } {
  const diagnostics: Diagnostic[] = [];
  const other: string[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.trim()) continue;
    const m = DIAGNOSTIC.exec(line);
    if (m)
      diagnostics.push({
        file: relative(ROOT, m[1]!),
        line: Number(m[2]),
        column: Number(m[3]),
        level: m[4] as Diagnostic['level'],
        code: m[5]!,
        message: m[6]!,
      });
    else other.push(line);
  }
  return { diagnostics, other };
}

export function bicep(args: string[], env: NodeJS.ProcessEnv = process.env): BicepRun {
  const r = run(bicepBinary(), args, env);
  if (r.error) throw r.error;
  return {
    command: `bicep ${args.map((a) => relative(ROOT, a) || a).join(' ')}`,
    status: r.status ?? -1,
    stdout: r.stdout,
    ...parseDiagnostics(r.stderr),
  };
}

/** The same as bicep(), without blocking: the checks run side by side (each CLI start costs seconds). */
export function bicepAsync(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<BicepRun> {
  const binary = bicepBinary();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(binary, args, { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolvePromise({
        command: `bicep ${args.map((a) => relative(ROOT, a) || a).join(' ')}`,
        status: code ?? -1,
        stdout,
        ...parseDiagnostics(stderr),
      }),
    );
  });
}

/** The committed extension reference, e.g. br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0. */
export function graphExtensionReference(): { reference: string; apiVersion: string; typesVersion: string } {
  const text = readFileSync(join(INFRA, 'bicepconfig.json'), 'utf8');
  const m = new RegExp(
    `"${GRAPH_ALIAS}"\\s*:\\s*"(br:[^"]+/microsoftgraph/(v1\\.0|beta):(\\d+\\.\\d+\\.\\d+))"`,
  ).exec(text);
  if (!m) throw new Error(`infra/bicepconfig.json: no registry reference for the ${GRAPH_ALIAS} extension`);
  return { reference: m[1]!, apiVersion: m[2]!, typesVersion: m[3]! };
}

/** Where the published types of that very version are (the shared specs folder, or MSGRAPH_BICEP_TYPES). */
function graphTypesIndex(apiVersion: string, typesVersion: string): string {
  const base =
    process.env['MSGRAPH_BICEP_TYPES'] ?? join(ROOT, '..', 'shared', 'specs', 'msgraph-bicep-types');
  const index = join(base, `${apiVersion}-${typesVersion}`, 'index.json');
  if (!existsSync(index))
    throw new BicepUnavailable(
      `No Microsoft Graph Bicep types for ${apiVersion} ${typesVersion} at ${index}: infra/bicepconfig.json pins ` +
        `that version, so its published types (msgraph-bicep-types, generated/microsoftgraph/microsoft.graph/` +
        `${apiVersion}/${typesVersion}) must be there, or MSGRAPH_BICEP_TYPES must name their parent folder.`,
    );
  return index;
}

/**
 * Packages the Graph extension types into `dir` and writes `dir`/bicepconfig.json: the committed
 * config with the local package in place of the registry reference. Returns the config's path.
 */
export function prepareCiConfig(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const { reference, apiVersion, typesVersion } = graphExtensionReference();
  const tgz = join(dir, `microsoftgraph-${apiVersion}-${typesVersion}.tgz`);
  const index = graphTypesIndex(apiVersion, typesVersion);
  const sources = [index, join(dirname(index), 'types.json')];
  // Packaged again only when the types changed (each CLI start costs seconds).
  const fresh =
    existsSync(tgz) && sources.every((f) => !existsSync(f) || statSync(f).mtimeMs <= statSync(tgz).mtimeMs);
  if (!fresh) {
    const published = bicep(['publish-extension', index, '--target', tgz, '--force']);
    if (published.status !== 0 || !existsSync(tgz))
      throw new Error(`${published.command} failed:\n${[...published.other, published.stdout].join('\n')}`);
  }
  const committed = readFileSync(join(INFRA, 'bicepconfig.json'), 'utf8');
  const config = join(dir, 'bicepconfig.json');
  // A relative path in bicepconfig.json is resolved against the config file's folder.
  writeFileSync(config, committed.replace(`"${reference}"`, JSON.stringify(`./${relative(dir, tgz)}`)));
  return config;
}

/** The environment main.bicepparam is built with: none of its variables from the caller's shell. */
export function parameterEnvironment(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const text = readFileSync(join(INFRA, 'main.bicepparam'), 'utf8');
  for (const m of text.matchAll(/readEnvironmentVariable\('(\w+)'/g)) delete env[m[1]!];
  return { ...env, ...SAMPLE_ENVIRONMENT, ...overrides };
}

export interface CheckResult {
  version: string;
  runs: BicepRun[];
  /** Each diagnostic once (build and lint report the same ones). */
  diagnostics: Diagnostic[];
  failed: boolean;
}

export async function checkInfra(dir = BUILD_DIR): Promise<CheckResult> {
  const config = prepareCiConfig(dir);
  // The first compile unpacks the extension into the Bicep cache; CLIs started side by side before
  // that race for it (and miss the Graph types), so the build goes first, alone.
  const build = await bicepAsync([
    'build',
    join(INFRA, 'main.bicep'),
    '--outfile',
    join(dir, 'main.json'),
    '--config',
    config,
  ]);
  const [versionRun, ...others] = await Promise.all([
    bicepAsync(['--version']),
    bicepAsync(
      [
        'build-params',
        join(INFRA, 'main.bicepparam'),
        '--outfile',
        join(dir, 'main.parameters.json'),
        '--config',
        config,
      ],
      parameterEnvironment(),
    ),
    // Linting main.bicep lints every module it references (and build-params already compiled the
    // parameter file against it).
    bicepAsync(['lint', join(INFRA, 'main.bicep'), '--config', config]),
  ]);
  const runs = [build, ...others];
  const version = versionRun.stdout.trim();
  const seen = new Map<string, Diagnostic>();
  for (const d of runs.flatMap((r) => r.diagnostics))
    seen.set(`${d.file}:${d.line}:${d.column}:${d.code}`, d);
  const diagnostics = [...seen.values()];
  const failed = runs.some((r) => r.status !== 0) || diagnostics.some((d) => d.level !== 'Info');
  return { version, runs, diagnostics, failed };
}

export const formatDiagnostic = (d: Diagnostic): string =>
  `${d.file}(${d.line},${d.column}) : ${d.level} ${d.code}: ${d.message}`;

async function main(): Promise<void> {
  const verbose = process.argv.includes('--verbose');
  let result: CheckResult;
  try {
    result = await checkInfra();
  } catch (e) {
    process.stderr.write(`infra:check: ${(e as Error).message}\n`);
    process.exit(1);
  }
  const info = result.diagnostics.filter((d) => d.level === 'Info');
  const rules = [...new Set(info.map((d) => d.code))].join(', ');
  if (result.failed) {
    process.stderr.write(`infra:check: ${result.version}\n`);
    for (const r of result.runs.filter((x) => x.status !== 0 || x.other.length > 0))
      process.stderr.write(`${r.command}: exit ${r.status}\n${r.other.map((l) => `  ${l}\n`).join('')}`);
    for (const d of result.diagnostics.filter((x) => verbose || x.level !== 'Info'))
      process.stderr.write(`${formatDiagnostic(d)}\n`);
    process.stderr.write(
      'infra:check: failed (errors or warnings above; levels set in infra/bicepconfig.json)\n',
    );
    process.exit(1);
  }
  process.stdout.write(
    `infra:check: ${result.version}: main.bicep and main.bicepparam build, infra/ lints ` +
      `with no error and no warning${info.length ? ` (${info.length} info: ${rules}; --verbose lists them)` : ''}\n`,
  );
  if (verbose) for (const d of info) process.stdout.write(`${formatDiagnostic(d)}\n`);
}

if (require.main === module) void main();
