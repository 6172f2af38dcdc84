/**
 * A plan's follow-up step through the real clients against the sandbox: a repair whose verification
 * fails rotates the secret (`planSteps`: repair-connection, then rotate when the repair's
 * verification failed), in one report entry with both step logs. Rotate-then-convert is covered in
 * engine.wif.test.ts.
 */
import { runRemediation } from '../../src/remediation/run';
import { createLogger } from '../../src/telemetry';
import { engineFor, entryFor, scenarioCases, vaultVersion } from '../helpers/engineSandbox';
import { useSandbox } from '../helpers/useSandbox';

const log = createLogger(() => undefined, 'error');
const SETTINGS = { OLD_SECRET_RETENTION_HOURS: '0', SECRET_LIFETIME_DAYS: '90' };

describe('plan steps: a repair that is not enough rotates the secret', () => {
  const env = useSandbox({ scenario: 'minimal' });

  test('repair, verification fails, rotation: succeeded, with both step logs in order', async () => {
    const sandbox = env.sandbox;
    const c = scenarioCases(sandbox).get('manual-secret-expiring')!;
    const engine = engineFor(sandbox, log, { settings: SETTINGS });
    // A first run rotates the expiring secret: Key Vault holds a verified one for the connection.
    const first = await runRemediation(engine.deps, engine.settings);
    expect(entryFor(first.report, c.connectionId)).toMatchObject({
      action: 'rotate-secret',
      outcome: 'succeeded',
    });
    const kept = vaultVersion(sandbox, c.connectionId)!;
    const rotatedKeyId = kept.tags['keyId'];
    // Then the connection is edited into the accesstoken bug, and the secret Key Vault keeps stops
    // matching the app's: re-applying it cannot work.
    c.endpoint.authorization.parameters['accesstoken'] = null;
    c.endpoint.isReady = false;
    c.endpoint.operationStatus = {
      state: 'Failed',
      statusMessage: 'Failed to get Azure DevOps Service access token, cache value is invalid.',
    };
    kept.value = `${kept.value.slice(0, -4)}xxxx`;

    const second = await runRemediation(engine.deps, engine.settings);
    const e = entryFor(second.report, c.connectionId);
    expect(e).toMatchObject({ action: 'repair', outcome: 'succeeded', phase: 'completed' });
    const steps = e.steps ?? [];
    const bridge = steps.indexOf('the repair was not enough; rotating the secret');
    expect(bridge).toBeGreaterThan(0);
    expect(steps.slice(0, bridge)).toEqual([
      'removed the invalid accesstoken parameter',
      're-applied the verified secret kept in Key Vault',
    ]);
    expect(steps[bridge + 1]).toMatch(/^added credential /);
    expect(e.newSecretExpiresAt).toBeDefined();
    // A new credential, verified in the connection, is what Key Vault holds now.
    const now = vaultVersion(sandbox, c.connectionId)!;
    expect(now.tags['keyId']).not.toBe(rotatedKeyId);
    expect(c.endpoint.isReady).toBe(true);
    expect('accesstoken' in c.endpoint.authorization.parameters).toBe(false);
  });
});
