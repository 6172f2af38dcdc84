/**
 * The deployment package builds from the zipped files alone, as the Flex Consumption remote build
 * does (package.test.ts checks what is zipped and kept; this one runs a full `tsc`).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packageFiles } from '../helpers/packageFiles';

const ROOT = join(__dirname, '..', '..');
const paths = packageFiles(ROOT).map((f) => f.path);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string };

describe('remote build: what the server installs, builds and keeps', () => {
  test('the zipped files alone build: tsc -p tsconfig.build.json (npm run build) in a copy of the package emits every function', () => {
    const dir = mkdtempSync(join(tmpdir(), 'package-'));
    try {
      for (const f of paths) cpSync(join(ROOT, f), join(dir, f));
      // The server's `npm install` puts the same versions (package-lock.json) in node_modules.
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
      const build = spawnSync(
        process.execPath,
        [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
        {
          cwd: dir,
          encoding: 'utf8',
        },
      );
      expect(`${build.status} ${build.stdout}${build.stderr}`).toBe('0 ');
      const emitted = dirname(pkg.main);
      const functions = readdirSync(join(dir, emitted)).filter((f) => f.endsWith('.js'));
      expect(functions.length).toBeGreaterThanOrEqual(5);
      expect(existsSync(join(dir, 'host.json'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
