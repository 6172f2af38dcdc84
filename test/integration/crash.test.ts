/**
 * A real process kill in the middle of a rotation (test/helpers/killPoints.ts): here the one right
 * after Graph addPassword, where a crash leaves an orphan credential behind, on the Manual
 * connection; the same kill on the Automatic connection and every other rotation phase are killed
 * in the slow project (crash.slow.test.ts, `npm run test:slow`).
 */
import { KILL_POINTS, killPointTests } from '../helpers/killPoints';

jest.setTimeout(60_000);

killPointTests(KILL_POINTS.slice(0, 1), ['Manual']);
