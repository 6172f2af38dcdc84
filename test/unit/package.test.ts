/**
 * The deployment package: what `azd deploy` zips for the function app (the project folder less what
 * .funcignore excludes, read with gitignore semantics by the `ignore` library, as azd and Core Tools
 * read it), what the Flex Consumption remote build then installs, and what the app keeps after
 * `npm run build:azure` prunes the devDependencies. That the zipped files build alone is checked in
 * the slow project (package.slow.test.ts: a full `tsc` build).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import ignore from 'ignore';
import { packageFiles } from '../helpers/packageFiles';

const ROOT = join(__dirname, '..', '..');
const read = (...parts: string[]): string => readFileSync(join(ROOT, ...parts), 'utf8');

const files = packageFiles(ROOT);
const paths = files.map((f) => f.path);

describe('.funcignore: what azd deploy zips', () => {
  test('only the sources and what builds them: src/, host.json, package.json, the lockfile, the two tsconfigs', () => {
    const top = [...new Set(paths.map((p) => p.split('/')[0]))].sort();
    expect(top).toEqual(
      [
        'host.json',
        'package-lock.json',
        'package.json',
        'src',
        'tsconfig.build.json',
        'tsconfig.json',
      ].sort(),
    );
    // Every source file of the app is in it.
    const sources = spawnSync('git', ['ls-files', 'src'], { cwd: ROOT, encoding: 'utf8' })
      .stdout.trim()
      .split('\n');
    expect(sources.length).toBeGreaterThan(20);
    for (const s of sources) expect(paths).toContain(s);
  });

  test.each([
    ['.azure/prod/.env', "azd's environment: the webhook URLs, ids"],
    ['.azure/config.json', 'azd state'],
    ['prod.env', 'a settings file (sc-remediator check --settings-file)'],
    ['src/functions/local.env', 'an env file anywhere'],
    ['.env', 'dotenv'],
    ['.env.local', 'dotenv'],
    ['local.settings.json', 'local Functions settings with secrets'],
    ['node_modules/azurite/package.json', 'a devDependency'],
    ['node_modules/@azure/identity/package.json', 'installed on the server instead'],
    ['dist/src/functions/timer.js', 'built on the server'],
    ['.sandbox/ca/ca.key', 'the sandbox CA key'],
    ['tools/bicep/out/main.json', 'the Bicep check output'],
    ['test/unit/package.test.ts', 'tests'],
    ['infra/main.bicep', 'templates'],
    ['sandbox/main.ts', 'the simulated tenant'],
  ])('%s is never zipped (%s)', (path) => {
    const rules = ignore().add(read('.funcignore'));
    expect(rules.ignores(path)).toBe(true);
  });

  test('the package is small: figures of the zip content', () => {
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    // Printed for docs/deploy.md; bounded so that a stray folder shows up here.
    process.stdout.write(
      `deployment package: ${files.length} files, ${(bytes / 1e6).toFixed(2)} MB before compression\n`,
    );
    expect(bytes).toBeLessThan(5e6);
  });
});

describe('remote build: what the server installs, builds and keeps', () => {
  const pkg = JSON.parse(read('package.json')) as {
    scripts: Record<string, string>;
    main: string;
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };

  test('azure.yaml asks for the remote build; build:azure prunes the devDependencies after the build', () => {
    expect(read('azure.yaml')).toMatch(/^ {4}host: function\n(?: {4}#.*\n)* {4}remoteBuild: true$/m);
    // Oryx runs `npm install`, then `npm run build`, then `npm run build:azure` (microsoft/Oryx,
    // NodeConstants.PkgMgrRunBuildAzureCommandTemplate and the Node build script template).
    expect(pkg.scripts['build']).toBe('tsc -p tsconfig.build.json');
    expect(pkg.scripts['build:azure']).toBe('npm prune --omit=dev');
  });

  test('after the prune the app keeps only production packages: no Azurite, playwright-core, TypeScript or Jest', () => {
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const kept = (name: string): boolean => lock.packages[`node_modules/${name}`]?.dev !== true;
    for (const dev of [
      'azurite',
      'playwright-core',
      'typescript',
      'jest',
      'ts-jest',
      '@stoplight/prism-http',
      'eslint',
    ])
      expect(`${dev}: ${kept(dev)}`).toBe(`${dev}: false`);
    for (const dep of Object.keys(pkg.dependencies)) expect(`${dep}: ${kept(dep)}`).toBe(`${dep}: true`);

    // Installed size of each package (its own folder, nested node_modules counted separately).
    const size = (dir: string): number => {
      let total = 0;
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.name === 'node_modules') continue;
        const p = join(dir, e.name);
        total += e.isDirectory() ? size(p) : e.isFile() ? lstatSync(p).size : 0;
      }
      return total;
    };
    let prod = 0;
    let dev = 0;
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (!path || !existsSync(join(ROOT, path))) continue; // other platforms' optional binaries
      if (entry.dev) dev += size(join(ROOT, path));
      else prod += size(join(ROOT, path));
    }
    process.stdout.write(
      `node_modules: ${(prod / 1e6).toFixed(0)} MB kept after the prune, ${((prod + dev) / 1e6).toFixed(0)} MB with the devDependencies\n`,
    );
    expect(prod).toBeLessThan((prod + dev) / 2);
  });
});
