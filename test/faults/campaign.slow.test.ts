/** The fault campaign with a round per rotation phase (test/helpers/faultCampaign.ts). */
import { KILL_POINTS } from '../../bench/faultCampaign';
import { expectCampaignLosesNothing } from '../helpers/faultCampaign';

jest.setTimeout(600_000);

test('a kill at every rotation phase, under random faults, loses nothing', async () => {
  await expectCampaignLosesNothing({ rounds: KILL_POINTS.length, seed: 'ci', connections: 8 });
});
