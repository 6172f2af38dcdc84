/**
 * The fault campaign, small (test/helpers/faultCampaign.ts): one round, killed after Graph
 * addPassword under random faults. The slow project runs a round per rotation phase
 * (campaign.slow.test.ts).
 */
import { expectCampaignLosesNothing } from '../helpers/faultCampaign';

jest.setTimeout(600_000);

test('a kill after addPassword, under random faults, loses nothing', async () => {
  await expectCampaignLosesNothing({ rounds: 1, seed: 'ci-quick', connections: 8 });
});
