/**
 * Writes docs/settings.md's settings table from the settings table (src/config/settings.ts):
 * `npm run docs:settings`. Only the text between the table markers changes; prettier aligns it as
 * `npm run format` would. `--check` writes nothing and fails when the committed file differs
 * (test/unit/settingsDocs.test.ts runs it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as prettier from 'prettier';
import { withSettingsTable } from '../src/config/docs';

export const SETTINGS_DOC = join(__dirname, '..', 'docs', 'settings.md');

/** docs/settings.md as it should be: `markdown` with the generated table, formatted. */
export async function renderSettingsDoc(markdown: string): Promise<string> {
  const options = await prettier.resolveConfig(SETTINGS_DOC);
  return prettier.format(withSettingsTable(markdown), { ...options, filepath: SETTINGS_DOC });
}

async function main(): Promise<void> {
  // Another copy of the file may be named (tests); it is formatted as docs/settings.md is.
  const file = process.argv.slice(2).find((a) => a.endsWith('.md')) ?? SETTINGS_DOC;
  const name = relative(process.cwd(), file);
  const current = readFileSync(file, 'utf8');
  const next = await renderSettingsDoc(current);
  if (next === current) {
    console.log(`${name}: the settings table is up to date`);
    return;
  }
  if (process.argv.includes('--check')) {
    console.error(
      `${name}: the settings table differs from src/config/settings.ts; run npm run docs:settings`,
    );
    process.exitCode = 1;
    return;
  }
  writeFileSync(file, next);
  console.log(`${name}: the settings table was regenerated`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
