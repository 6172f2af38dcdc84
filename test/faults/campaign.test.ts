/**
 * The fault campaign, small (test/helpers/faultCampaign.ts): one round, killed after Graph
 * addPassword under random faults. Its certificate round is campaign.certificate.test.ts (a file of
 * its own, so the two rounds, mostly waiting out Retry-After and backoffs, run side by side). The
 * slow project runs a round per rotation phase (campaign.slow.test.ts).
 */
import { expectCampaignLosesNothing } from '../helpers/faultCampaign';

jest.setTimeout(600_000);

test('a kill after addPassword, under random faults, loses nothing', async () => {
  await expectCampaignLosesNothing({ rounds: 1, seed: 'ci-quick', connections: 8 });
});
