/**
 * The fault campaign's small certificate round (test/helpers/faultCampaign.ts): certificate
 * connections, killed after the Graph keyCredentials PATCH under random faults. The secret round is
 * campaign.test.ts.
 */
import { KILL_POINTS } from '../../bench/faultCampaign';
import { expectCampaignLosesNothing } from '../helpers/faultCampaign';

jest.setTimeout(600_000);

test('a kill after the keyCredentials PATCH of a certificate connection, under random faults, loses nothing', async () => {
  await expectCampaignLosesNothing({
    rounds: 1,
    seed: 'ci-quick-certificates',
    connections: 4,
    certificateConnections: 2,
    firstKillPoint: KILL_POINTS.findIndex((k) => k.name === 'after the Graph keyCredentials PATCH'),
  });
});
