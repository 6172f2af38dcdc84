/**
 * Real process kills at every rotation phase but the one `npm test` runs (crash.test.ts): see
 * test/helpers/killPoints.ts.
 */
import { KILL_POINTS, killPointTests } from '../helpers/killPoints';

jest.setTimeout(60_000);

killPointTests(KILL_POINTS.slice(1));
