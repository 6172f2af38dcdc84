import {
  buildCensus,
  carriedUsage,
  judgeRemovals,
  MAX_CARRIED_USERS,
  type AppUsage,
} from '../../src/remediation/census';
import type { DiscoveredConnection } from '../../src/remediation/discovery';
import type { RotationRecord } from '../../src/remediation/ports';
import { APP_ID, connection, ORG_URL, record } from '../helpers/remediationFixtures';

const OTHER_ORG = 'https://dev.azure.com/fabrikam';
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function discovered(n: number, organizationUrl = ORG_URL, appId = APP_ID): DiscoveredConnection {
  const c = connection({ id: id(n), name: `c${n}` });
  c.authorization.parameters['serviceprincipalid'] = appId;
  return { organizationUrl, projects: [{ id: 'p1', name: 'Web' }], connection: c };
}

describe('usage census', () => {
  it('counts every other connection naming the app, in every organization, case-insensitively', () => {
    const census = buildCensus(
      [discovered(1), discovered(2, OTHER_ORG, APP_ID.toUpperCase()), discovered(3, ORG_URL, id(99))],
      [],
    );
    const usage = census.usageFor(APP_ID, ORG_URL, id(1));
    expect(usage.others.map((u) => [u.organizationUrl, u.connectionId])).toEqual([[OTHER_ORG, id(2)]]);
    expect(usage.gaps).toEqual([]);
  });

  it('is incomplete when an organization or a project could not be listed', () => {
    const census = buildCensus(
      [discovered(1)],
      [
        { organizationUrl: OTHER_ORG, message: 'HTTP 401' },
        { organizationUrl: ORG_URL, project: 'ops', message: 'HTTP 500' },
      ],
    );
    expect(census.usageFor(APP_ID, ORG_URL, id(1)).gaps).toEqual([
      `organization ${OTHER_ORG} unreadable (HTTP 401)`,
      `project 'ops' of ${ORG_URL} unreadable (HTTP 500)`,
    ]);
  });

  it('what a work item carries is never more complete than the census', () => {
    const others = Array.from({ length: MAX_CARRIED_USERS + 3 }, (_, n) => ({
      organizationUrl: ORG_URL,
      connectionId: id(n),
      connectionName: 'x'.repeat(300),
    }));
    const carried = carriedUsage({ others, gaps: [] });
    expect(carried.others).toHaveLength(MAX_CARRIED_USERS);
    expect(carried.gaps).toHaveLength(1);
    expect(JSON.stringify(carried).length).toBeLessThan(8192);
    const small: AppUsage = { others: others.slice(0, 2), gaps: [] };
    expect(carriedUsage(small).gaps).toEqual([]);
  });
});

describe('removal judged by the census', () => {
  const other = { organizationUrl: OTHER_ORG, connectionId: id(2), connectionName: 'c2' };
  const store = (records: Record<string, RotationRecord | undefined | Error>) => ({
    getRecord: (connectionId: string) => {
      const r = records[connectionId];
      return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    },
  });

  it.each<[string, AppUsage | undefined, RotationRecord | undefined | Error, boolean]>([
    ['no census (one-connection run)', undefined, undefined, false],
    ['no other connection names the app', { others: [], gaps: [] }, undefined, true],
    ['another connection this service never rotated', { others: [other], gaps: [] }, undefined, false],
    [
      'another connection verified on a different credential',
      { others: [other], gaps: [] },
      record({ connectionId: id(2), keyId: 'k-theirs', phase: 'verified' }),
      true,
    ],
    [
      'another connection recorded on this very credential',
      { others: [other], gaps: [] },
      record({ connectionId: id(2), keyId: 'k-shared' }),
      false,
    ],
    [
      'another connection whose rotation is only created (it still holds its previous one)',
      { others: [other], gaps: [] },
      record({ connectionId: id(2), keyId: 'k-theirs', phase: 'created' }),
      false,
    ],
    [
      'another connection recorded for another app',
      { others: [other], gaps: [] },
      record({ connectionId: id(2), keyId: 'k-theirs', appId: id(77) }),
      false,
    ],
    [
      "another connection's record unreadable",
      { others: [other], gaps: [] },
      new Error('Key Vault 503'),
      false,
    ],
    ['census incomplete', { others: [], gaps: ['organization x unreadable'] }, undefined, false],
  ])('%s', async (_name, usage, otherRecord, removable) => {
    const judge = await judgeRemovals(usage, APP_ID, store({ [id(2)]: otherRecord }));
    expect(judge.keepReason('k-shared') === undefined).toBe(removable);
    expect(judge.noCensus).toBe(usage === undefined);
  });
});
