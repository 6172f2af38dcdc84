/**
 * docs/settings.md's settings table, generated from the rows (`npm run docs:settings` writes it; a
 * unit test fails when the committed one differs). The table sits between the two markers below;
 * the prose around it is written by hand.
 */
import { SETTINGS } from './settings';

const TABLE_START =
  '<!-- settings-table:start (generated from src/config/settings.ts: npm run docs:settings) -->';
const TABLE_END = '<!-- settings-table:end -->';

/** The table, one line per documented row (not yet aligned: prettier pads the columns). */
export function settingsTable(): string {
  const lines = ['| Setting | Default | Meaning |', '| --- | --- | --- |'];
  for (const row of SETTINGS) {
    if (typeof row.doc !== 'string') continue;
    const names = [
      row,
      ...SETTINGS.filter(
        (s) => typeof s.doc === 'object' && 'inRowOf' in s.doc && s.doc.inRowOf === row.name,
      ),
    ]
      .map((s) => `\`${s.name}\``)
      .join(', ');
    const def = row.docDefault ?? (row.default === undefined ? '' : `\`${String(row.default)}\``);
    lines.push(`| ${names} | ${def} | ${row.doc} |`);
  }
  return lines.join('\n');
}

/** `markdown` with the text between the markers replaced by the generated table. */
export function withSettingsTable(markdown: string): string {
  const start = markdown.indexOf(TABLE_START);
  const end = markdown.indexOf(TABLE_END);
  if (start === -1 || end < start) throw new Error(`the settings table markers are missing (${TABLE_START})`);
  return `${markdown.slice(0, start + TABLE_START.length)}\n\n${settingsTable()}\n\n${markdown.slice(end)}`;
}
