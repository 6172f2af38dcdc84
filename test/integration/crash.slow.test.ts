/**
 * Real process kills at every rotation phase but the one `npm test` runs (crash.test.ts: after
 * addPassword, Manual connection), and at every phase for a connection whose app lives in another
 * configured tenant: see test/helpers/killPoints.ts.
 */
import { KILL_POINTS, killPointTests } from '../helpers/killPoints';

jest.setTimeout(60_000);

describe('after Graph addPassword, Automatic connection', () => {
  killPointTests(KILL_POINTS.slice(0, 1), ['Automatic']);
});

describe('every other phase', () => {
  killPointTests(KILL_POINTS.slice(1));
});

describe('every phase, connection of another tenant (ADDITIONAL_TENANT_IDS)', () => {
  killPointTests(KILL_POINTS, ['OtherTenant']);
});
