/**
 * The settings table (src/config/settings.ts) is the one source of docs/settings.md's table and of
 * redaction: the committed docs match what it generates, and every secret row is hidden.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, redactedConfig, SECRET_SETTINGS, SETTINGS } from '../../src/config';
import { settingsTable } from '../../src/config/docs';

const ROOT = resolve(__dirname, '..', '..');
const DOC = join(ROOT, 'docs', 'settings.md');

function checkDocs(file: string) {
  return spawnSync(process.execPath, ['--require', 'tsx/cjs', 'scripts/docs-settings.ts', '--check', file], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('docs/settings.md', () => {
  test('its table is the one the settings table generates (npm run docs:settings)', () => {
    const result = checkDocs(DOC);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  test('a table edited by hand fails the check', () => {
    const copy = join(mkdtempSync(join(tmpdir(), 'settings-doc-')), 'settings.md');
    writeFileSync(copy, readFileSync(DOC, 'utf8').replace('| `30` ', '| `31` '));
    const result = checkDocs(copy);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('npm run docs:settings');
  });

  test('every setting is documented: in its own row, or in the row or text of one that has a row', () => {
    const table = settingsTable();
    const withRow = new Set(SETTINGS.filter((s) => typeof s.doc === 'string').map((s) => s.name));
    for (const s of SETTINGS) {
      if (typeof s.doc === 'string') expect(table).toContain(`\`${s.name}\``);
      else if ('inRowOf' in s.doc) {
        expect(withRow).toContain(s.doc.inRowOf);
        expect(table).toContain(`\`${s.name}\``);
      } else expect(withRow).toContain(s.doc.describedBy);
    }
  });
});

describe('secret settings', () => {
  const BASE = {
    AZDO_ORGANIZATION_URLS: 'https://dev.azure.com/contoso',
    KEY_VAULT_URL: 'https://kv-contoso.vault.azure.net',
    AZURE_TENANT_ID: 'contoso.onmicrosoft.com',
    AZURE_CLIENT_ID: '7f0e6f2a-1111-4222-a333-444455556666',
  };
  const VALUES: Record<string, string> = {
    AZURE_CLIENT_SECRET: 'client-secret-value',
    AZDO_PAT: 'pat-value-123',
    AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=storage-key-value',
    NOTIFY_WEBHOOK_URL: 'https://hooks.example/webhook-token-value',
  };

  test.each(SETTINGS.filter((s) => s.secret && s.app === 'engine').map((s) => s.name))(
    '%s is hidden by redactedConfig and listed in SECRET_SETTINGS',
    (name) => {
      const value = VALUES[name];
      expect(value).toBeDefined();
      const shown = JSON.stringify(redactedConfig(loadConfig({ ...BASE, [name]: value })));
      expect(shown).not.toContain(value);
      expect(shown).toContain('(set)');
      expect(SECRET_SETTINGS.has(name)).toBe(true);
    },
  );
});
