/** What `azd deploy` zips, read from .funcignore (package.test.ts, package.slow.test.ts). */
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import ignore from 'ignore';

/** Every file azd would put in the zip, relative to the project root, with its size. */
export function packageFiles(root: string): { path: string; size: number }[] {
  const rules = ignore().add(readFileSync(join(root, '.funcignore'), 'utf8'));
  const out: { path: string; size: number }[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      const rel = relative(root, full);
      // A directory rule (`dist/`) matches only a path that ends with a slash.
      if (rules.ignores(entry.isDirectory() ? `${rel}/` : rel)) continue;
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push({ path: rel, size: lstatSync(full).size });
    }
  };
  walk(root);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}
