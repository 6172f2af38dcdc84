/**
 * The fault campaign, small (test/helpers/faultCampaign.ts): one round, killed after Graph
 * addPassword under random faults; one round with certificate connections, killed after the Graph
 * keyCredentials PATCH. The slow project runs a round per rotation phase
 * (campaign.slow.test.ts).
 */
import { KILL_POINTS } from '../../bench/faultCampaign';
import { expectCampaignLosesNothing } from '../helpers/faultCampaign';

jest.setTimeout(600_000);

test('a kill after addPassword, under random faults, loses nothing', async () => {
  await expectCampaignLosesNothing({ rounds: 1, seed: 'ci-quick', connections: 8 });
});

test('a kill after the keyCredentials PATCH of a certificate connection, under random faults, loses nothing', async () => {
  await expectCampaignLosesNothing({
    rounds: 1,
    seed: 'ci-quick-certificates',
    connections: 4,
    certificateConnections: 2,
    firstKillPoint: KILL_POINTS.findIndex((k) => k.name === 'after the Graph keyCredentials PATCH'),
  });
});
