/**
 * The fault campaign (bench/faultCampaign.ts; `npm run test:faults` runs it bigger) as a test: rounds
 * that each kill one rotation phase (cycling through them), with seeded random faults on every service
 * (429, 5xx, dropped connections, answers lost after the request was carried out, hung requests, a Key
 * Vault outage, Graph replication delay), the CLI killed right after that phase's request, then run
 * again until the tenant converges. Nothing may be lost, left behind, broken, leaked or rotated twice.
 */
import { runCampaign, type CampaignOptions } from '../../bench/faultCampaign';

export async function expectCampaignLosesNothing(
  options: Pick<
    CampaignOptions,
    'rounds' | 'seed' | 'connections' | 'certificateConnections' | 'firstKillPoint'
  >,
): Promise<void> {
  const result = await runCampaign({ ...options, maxReruns: 8, faultRate: 0.03 });
  const { details, ...counters } = result;
  console.log(`fault campaign: ${JSON.stringify(counters)}`);
  expect(details).toEqual([]);
  expect({
    secretsLost: result.secretsLost,
    orphanCredentialsLeft: result.orphanCredentialsLeft,
    connectionsLeftBroken: result.connectionsLeftBroken,
    secretLeaks: result.secretLeaks,
    duplicateRotations: result.duplicateRotations,
  }).toEqual({
    secretsLost: 0,
    orphanCredentialsLeft: 0,
    connectionsLeftBroken: 0,
    secretLeaks: 0,
    duplicateRotations: 0,
  });
  expect(result.kills).toBeGreaterThan(0);
  expect(result.faultsInjected).toBeGreaterThan(0);
}
