/**
 * What the real Bicep compiler says about main.bicepparam under the environments docs/deploy.md tells
 * people to use (the CLI from tools/bicep, the Graph extension packaged locally: scripts/bicep.ts).
 * `npm run infra:check` compiles and lints the default case; these are the variations.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bicepAsync, parameterEnvironment, prepareCiConfig, ROOT, type BicepRun } from '../../scripts/bicep';

interface ParamsOutput {
  parametersJson: string;
  templateJson: string;
}

const dir = mkdtempSync(join(tmpdir(), 'bicep-'));
let recover: BicepRun;
let bogus: BicepRun;
let unexported: BicepRun;

beforeAll(async () => {
  const config = prepareCiConfig(dir);
  const buildParams = (env: NodeJS.ProcessEnv) =>
    bicepAsync(['build-params', join(ROOT, 'infra', 'main.bicepparam'), '--stdout', '--config', config], env);
  const withoutOrganizations = parameterEnvironment();
  delete withoutOrganizations['AZDO_ORGANIZATION_URLS'];
  // Alone first: it unpacks the new extension package into the Bicep cache (see checkInfra).
  recover = await buildParams(parameterEnvironment({ KEY_VAULT_CREATE_MODE: 'recover' }));
  [bogus, unexported] = await Promise.all([
    buildParams(parameterEnvironment({ KEY_VAULT_CREATE_MODE: 'purge' })),
    buildParams(withoutOrganizations),
  ]);
}, 300_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Key Vault recovery after azd down: KEY_VAULT_CREATE_MODE', () => {
  test('recover reaches the vault resource as properties.createMode', () => {
    expect(recover.status).toBe(0);
    const out = JSON.parse(recover.stdout) as ParamsOutput;
    const parameters = JSON.parse(out.parametersJson) as { parameters: Record<string, { value: unknown }> };
    expect(parameters.parameters['keyVaultCreateMode']?.value).toBe('recover');
    // main passes it to the keyvault module, whose vault uses it.
    const template = JSON.parse(out.templateJson) as {
      resources: Record<string, { name?: string; properties?: Record<string, unknown> }>;
    };
    const keyvault = Object.values(template.resources).find((r) => r.name === 'keyvault')!;
    const props = keyvault.properties as {
      parameters: Record<string, { value: unknown }>;
      template: { resources: Record<string, { type: string; properties: Record<string, unknown> }> };
    };
    expect(props.parameters['createMode']?.value).toBe("[parameters('keyVaultCreateMode')]");
    const vault = Object.values(props.template.resources).find(
      (r) => r.type === 'Microsoft.KeyVault/vaults',
    )!;
    expect(vault.properties['createMode']).toBe("[parameters('createMode')]");
  });

  test('anything but default or recover is refused at compile time', () => {
    expect(bogus.status).not.toBe(0);
    expect(bogus.diagnostics.filter((d) => d.level !== 'Info')).toEqual([
      expect.objectContaining({ file: 'infra/main.bicepparam', level: 'Error', code: 'BCP033' }),
    ]);
  });
});

test('build-params needs AZDO_ORGANIZATION_URLS exported first, and docs/deploy.md exports it before building', () => {
  expect(unexported.status).not.toBe(0);
  expect(unexported.diagnostics.filter((d) => d.level !== 'Info')).toEqual([
    expect.objectContaining({
      file: 'infra/main.bicepparam',
      level: 'Error',
      code: 'BCP427',
      message: expect.stringContaining('AZDO_ORGANIZATION_URLS') as string,
    }),
  ]);
  const doc = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');
  // An `export` command, continued over lines with backslashes, that sets the variable.
  const exported = doc.search(/export [^\n]*(?:\\\n[^\n]*)*AZDO_ORGANIZATION_URLS=/);
  const built = doc.search(/bicep build-params/);
  expect(exported).toBeGreaterThan(-1);
  expect(built).toBeGreaterThan(exported);
});
