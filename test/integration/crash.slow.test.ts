/**
 * Real process kills at every rotation phase but the one `npm test` runs (crash.test.ts: after
 * addPassword, Manual connection): see test/helpers/killPoints.ts.
 */
import { KILL_POINTS, killPointTests } from '../helpers/killPoints';

jest.setTimeout(60_000);

describe('after Graph addPassword, Automatic connection', () => {
  killPointTests(KILL_POINTS.slice(0, 1), ['Automatic']);
});

describe('every other phase', () => {
  killPointTests(KILL_POINTS.slice(1));
});
