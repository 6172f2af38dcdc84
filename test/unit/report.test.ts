import type { Action, ConnectionReport, Finding, Outcome } from '../../src/remediation/report';
import { ACTIONS, FINDINGS, needsAttention, OUTCOMES, summarize } from '../../src/remediation/report';

type Entry = Pick<ConnectionReport, 'finding' | 'action' | 'outcome'>;
const e = (finding: Finding, action: Action, outcome: Outcome): Entry => ({ finding, action, outcome });

describe('public vocabulary', () => {
  it('matches the DESIGN contract exactly', () => {
    expect(FINDINGS).toEqual([
      'healthy',
      'expiring',
      'expired',
      'not-ready',
      'app-missing',
      'blocked-by-policy',
      'unsupported',
      'error',
    ]);
    expect(ACTIONS).toEqual(['none', 'rotate-secret', 'repair', 'convert-to-wif', 'delete', 'report']);
    expect(OUTCOMES).toEqual(['planned', 'succeeded', 'failed', 'skipped']);
  });
});

describe('needsAttention', () => {
  it.each<[Entry, boolean]>([
    [e('healthy', 'none', 'skipped'), false],
    [e('healthy', 'none', 'succeeded'), false],
    [e('unsupported', 'none', 'skipped'), false],
    [e('expiring', 'rotate-secret', 'planned'), false],
    [e('expired', 'rotate-secret', 'succeeded'), false],
    [e('not-ready', 'repair', 'succeeded'), false],
    [e('expired', 'rotate-secret', 'failed'), true],
    [e('healthy', 'none', 'failed'), true],
    [e('app-missing', 'report', 'skipped'), true],
    [e('blocked-by-policy', 'report', 'skipped'), true],
    [e('unsupported', 'report', 'skipped'), true],
    [e('error', 'none', 'skipped'), true],
    [e('expiring', 'rotate-secret', 'skipped'), true],
    [e('not-ready', 'none', 'skipped'), true],
  ])('%p → %s', (entry, expected) => {
    expect(needsAttention(entry)).toBe(expected);
  });
});

describe('summarize', () => {
  it('has every key at zero for an empty run', () => {
    const s = summarize([]);
    expect(s.total).toBe(0);
    expect(s.needsAttention).toBe(0);
    expect(Object.keys(s.byFinding)).toEqual([...FINDINGS]);
    expect(Object.keys(s.byAction)).toEqual([...ACTIONS]);
    expect(Object.keys(s.byOutcome)).toEqual([...OUTCOMES]);
    expect(Object.values(s.byFinding).every((n) => n === 0)).toBe(true);
  });

  it('counts by finding, action and outcome', () => {
    const s = summarize([
      e('healthy', 'none', 'skipped'),
      e('healthy', 'none', 'skipped'),
      e('expiring', 'rotate-secret', 'succeeded'),
      e('expired', 'rotate-secret', 'failed'),
      e('not-ready', 'repair', 'planned'),
      e('app-missing', 'report', 'skipped'),
    ]);
    expect(s.total).toBe(6);
    expect(s.byFinding).toMatchObject({
      healthy: 2,
      expiring: 1,
      expired: 1,
      'not-ready': 1,
      'app-missing': 1,
      error: 0,
    });
    expect(s.byAction).toMatchObject({ none: 2, 'rotate-secret': 2, repair: 1, report: 1, delete: 0 });
    expect(s.byOutcome).toEqual({ planned: 1, succeeded: 1, failed: 1, skipped: 3 });
    expect(s.needsAttention).toBe(2);
  });

  it('accepts full connection reports', () => {
    const full: ConnectionReport = {
      organization: 'contoso',
      projects: ['Web'],
      connectionId: 'c',
      connectionName: 'n',
      appId: null,
      finding: 'unsupported',
      action: 'none',
      outcome: 'skipped',
      credentialSource: 'unknown',
      scheme: 'ManagedServiceIdentity',
    };
    expect(summarize([full]).byFinding.unsupported).toBe(1);
  });
});
