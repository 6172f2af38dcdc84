/** The status page renderer (pure): sections, escaping, empty state, what a person must do, no secret. */
import type { ConnectionReport } from '../../src/remediation/report';
import {
  FINDING_STYLE,
  STATE_TONES,
  escapeHtml,
  formatDuration,
  formatTime,
  relativeTime,
  renderStatusPage,
} from '../../src/status/render';
import { redactor } from '../../src/telemetry';
import {
  STATUS_NOW,
  allFindingsConnections,
  connectionReport,
  daysFromNow,
  reportOf,
  runsFor,
} from '../helpers/statusFixtures';

const report = reportOf(allFindingsConnections());
const page = renderStatusPage({ latest: report, runs: runsFor(report), now: STATUS_NOW });

/** The document's text with tags dropped and entities decoded (roughly what a browser shows). */
function textOf(html: string): string {
  return html
    .replace(/<style>[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

/** The HTML of the element with `data-testid="<id>"` blocks, in order. */
function blocks(html: string, testId: string): string[] {
  const parts = html.split(`data-testid="${testId}"`).slice(1);
  return parts.map((p) => {
    const end = p.indexOf('</li>') >= 0 ? p.indexOf('</li>') : p.indexOf('</tr>');
    return p.slice(p.indexOf('>') + 1, end);
  });
}

describe('renderStatusPage: a report with every finding', () => {
  test('is one self-contained document: inline CSS, no script, no external resource', () => {
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('<meta charset="utf-8">');
    expect(page).toMatch(/<style>[\s\S]+<\/style>/);
    expect(page).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    expect(page).not.toMatch(/(src|href)=/i);
    expect(page).not.toMatch(/https?:\/\/(?!dev\.azure\.com)/);
  });

  test('has the sections, most urgent first', () => {
    const order = [
      '<h1>Service connection status</h1>',
      'id="needs-a-person"',
      'id="by-finding"',
      'id="expiry"',
      'id="runs"',
    ].map((marker) => page.indexOf(marker));
    for (const i of order) expect(i).toBeGreaterThan(0);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  test('the header states the last run, its outcome and totals', () => {
    const text = textOf(page);
    expect(text).toContain('Last run finished 10 Mar 2026, 05:30 UTC (2 h ago)');
    expect(text).toContain('triggered by timer');
    expect(text).toContain('2 remediations failed');
    expect(text).toContain(`${report.summary.needsAttention} connections need a person`);
    expect(text).toMatch(/Connections 11 /);
    expect(text).toMatch(new RegExp(`Need a person ${report.summary.needsAttention} `));
    expect(text).toMatch(/Fixed this run 3 /);
    expect(text).toMatch(/Failed 2 /);
  });

  test('counts connections by finding, with a group per finding present', () => {
    for (const [finding, n] of Object.entries(report.summary.byFinding)) {
      expect(page).toMatch(
        new RegExp(
          `<li class="[^"]*" data-finding="${finding}">.*?${FINDING_STYLE[finding as 'healthy'].label} <strong>${n}</strong>`,
        ),
      );
      const group = page.includes(`data-testid="finding-group" data-finding="${finding}"`);
      expect(group).toBe(n > 0);
    }
  });

  test('needs a person: every such connection with its cause, next step and where it is; failures first', () => {
    const items = blocks(page, 'needs-a-person-item');
    expect(items).toHaveLength(report.summary.needsAttention);
    expect(items[0]).toContain('failed');
    const ml = items.find((i) => i.includes('data-ml-workspace'));
    expect(ml).toBeDefined();
    expect(textOf(ml!)).toContain("This service's identity may not change the app through Microsoft Graph.");
    expect(textOf(ml!)).toContain('Grant the service identity Application.ReadWrite.OwnedBy');
    expect(ml).toContain('Authorization_RequestDenied');
    expect(textOf(ml!)).toContain('contoso / data');
    // Without a diagnosis the page still says what to do.
    const broken = items.find((i) => i.includes('payments-broken-read'));
    expect(textOf(broken!)).toContain('sc-remediator remediate --connection');
    expect(textOf(broken!)).toContain('Graph 500 InternalServerError');
    // Healthy and fixed connections are not there.
    expect(items.some((i) => i.includes('web-prod-deploy') || i.includes('platform-terraform'))).toBe(false);
  });

  test('the expiry timeline lists secrets ending within 90 days, soonest first, with the new secret after a rotation', () => {
    const rows = blocks(page, 'timeline-row').map(textOf);
    const names = rows.map((r) => r.trim().split(' ')[0]);
    // platform-legacy expired 20 days ago; data-ml-workspace ends in 5; payments-reporting 20;
    // web-legacy 45; web-staging and platform-terraform were rotated (new secrets end in 90).
    expect(names).toEqual([
      'platform-legacy',
      'data-ml-workspace',
      'payments-reporting',
      'web-legacy',
      'platform-terraform',
      'web-staging',
    ]);
    expect(rows[0]).toContain('expired 20 days ago');
    expect(rows[1]).toContain('5 days left');
    expect(rows[4]).toContain('new');
    expect(page).toMatch(/class="tick[^"]*" style="left:7\.78%"/);
    expect(page).toMatch(/class="tick[^"]*" style="left:33\.33%"/);
    const text = textOf(page);
    expect(text).toContain('2 connections end later than 90 days from now');
    expect(text).toContain('3 connections without a known end date');
  });

  test('the last runs, newest first, with trigger, mode, status and counts', () => {
    const rows = blocks(page, 'run-row').map(textOf);
    expect(rows).toHaveLength(4);
    expect(rows[0]).toMatch(/timer live completed 11 5 3 2 6 /);
    expect(rows[1]).toContain('http dry run completed');
    expect(rows[1]).toContain('planned');
    expect(rows[2]).toContain('timer live failed');
    expect(rows[2]).toContain('Azure DevOps 401 Unauthorized');
    expect(rows[3]).toContain('cli live completed');
  });

  test('is deterministic', () => {
    expect(renderStatusPage({ latest: report, runs: runsFor(report), now: STATUS_NOW })).toBe(page);
  });
});

describe('renderStatusPage: escaping', () => {
  const hostile = '<script>alert(1)</script>';
  const attr = '"><img src=x onerror=alert(2)>';
  const connections: ConnectionReport[] = [
    connectionReport({
      connectionName: hostile,
      organization: `org${attr}`,
      projects: ["p'1", '<b>p2</b>'],
      finding: 'not-ready',
      action: 'report',
      outcome: 'skipped',
      secretExpiresAt: daysFromNow(3),
      diagnosis: {
        kind: 'unknown',
        cause: `cause <i>${attr}</i>`,
        nextStep: 'Run <code>this</code> & that',
        fixableByService: false,
      },
    }),
  ];
  const html = renderStatusPage({
    latest: reportOf(connections, { runId: `run"${attr}` }),
    runs: [
      {
        runId: `id"${attr}`,
        startedAt: STATUS_NOW.toISOString(),
        status: `<u>weird</u>`,
        dryRun: false,
        expected: 1,
        trigger: '<em>cron</em>',
        error: hostile,
      },
    ],
    now: STATUS_NOW,
  });

  test('no markup from a value survives: names, projects, diagnosis, run ids, triggers, errors', () => {
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).not.toMatch(/<(b|i|u|em)>/);
    expect(html).not.toContain('<code>this</code>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(html).toContain('p&#39;1');
    expect(html).toContain('Run &lt;code&gt;this&lt;/code&gt; &amp; that');
    // Attribute values stay inside their quotes.
    expect(html).not.toMatch(/title="id"/);
    expect(textOf(html)).toContain(hostile);
  });

  test('escapeHtml covers the five characters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });
});

describe('renderStatusPage: empty and partial states', () => {
  test('no report and no run: "No run yet", no report sections', () => {
    const html = renderStatusPage({ runs: [], now: STATUS_NOW });
    expect(html).toContain('data-testid="empty-state"');
    expect(html).toContain('<h2>No run yet</h2>');
    expect(html).not.toContain('id="needs-a-person"');
    expect(html).not.toContain('id="expiry"');
    expect(html).not.toContain('id="runs"');
  });

  test('a run in progress and no report yet: the run is listed and the page says it is running', () => {
    const html = renderStatusPage({
      runs: [
        {
          runId: 'e5f6a7b8-0000-4000-8000-000000000005',
          startedAt: new Date(STATUS_NOW.getTime() - 120_000).toISOString(),
          status: 'running',
          dryRun: false,
          expected: 12,
          trigger: 'timer',
        },
      ],
      now: STATUS_NOW,
    });
    const text = textOf(html);
    expect(text).toContain('No run yet');
    expect(text).toContain(
      'A run is in progress: started 2 min ago by timer; 0 of 12 queued connections done.',
    );
    expect(html).toContain('id="runs"');
    expect(blocks(html, 'run-row')).toHaveLength(1);
    expect(textOf(blocks(html, 'run-row')[0]!)).toMatch(/running — 0 \/ 12/);
  });

  test('a warning (ledger unreadable) replaces "No run yet" with "Status unavailable"', () => {
    const html = renderStatusPage({
      runs: [],
      now: STATUS_NOW,
      warnings: ['The run history could not be read: 403'],
    });
    expect(html).toContain('role="alert"');
    expect(html).toContain('Status unavailable');
    expect(html).not.toContain('No run yet');
  });

  test('nobody needs to act: an all-clear instead of an empty list', () => {
    const fine = reportOf([connectionReport(), connectionReport({ connectionName: 'other' })]);
    const html = renderStatusPage({ latest: fine, runs: [], now: STATUS_NOW });
    expect(textOf(html)).toContain('Nobody has to act');
    expect(textOf(html)).toContain('All connections fine');
    expect(html).not.toContain('needs-a-person-item');
    expect(textOf(html)).toContain('No secret ends in the next 90 days.');
  });

  test('a dry run says so and counts what it would fix', () => {
    const connections = allFindingsConnections().map((c) =>
      c.outcome === 'succeeded' ? { ...c, outcome: 'planned' as const, newSecretExpiresAt: undefined } : c,
    );
    const text = textOf(
      renderStatusPage({ latest: reportOf(connections, { dryRun: true }), runs: [], now: STATUS_NOW }),
    );
    expect(text).toContain('dry run — nothing was changed');
    expect(text).toMatch(/Would be fixed 3 /);
  });
});

describe('renderStatusPage: discovery problems', () => {
  test('projects the last run could not list are named: their connections are missing', () => {
    const runs = runsFor(report).map((r, i) =>
      i === 0
        ? {
            ...r,
            problems: Array.from({ length: 7 }, (_, n) => ({
              organizationUrl: 'https://dev.azure.com/contoso',
              project: `p<${n}>`,
              message: 'Azure DevOps 403: not authorized',
            })),
          }
        : r,
    );
    const html = renderStatusPage({ latest: report, runs, now: STATUS_NOW });
    const text = textOf(html);
    expect(html).toContain('data-testid="discovery-problems"');
    expect(text).toContain('https://dev.azure.com/contoso / p<0> : Azure DevOps 403: not authorized');
    expect(text).toContain('and 2 more');
    expect(html).not.toContain('p<0>');
    expect(page).not.toContain('data-testid="discovery-problems"');
  });
});

describe('renderStatusPage: never a secret', () => {
  test('registered secrets and secret-shaped values are masked wherever they appear', () => {
    const registered = 'registered-secret-value-0123456789';
    redactor.register(registered);
    const entraSecret = 'abc8Q~' + 'x'.repeat(34);
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl';
    const connections = [
      connectionReport({
        connectionName: `leaky ${registered}`,
        finding: 'error',
        action: 'report',
        outcome: 'failed',
        reason: `saw ${entraSecret}`,
        error: `request failed: Authorization: Bearer ${jwt} {"serviceprincipalkey":"${registered}"}`,
      }),
    ];
    const html = renderStatusPage({
      latest: reportOf(connections),
      runs: [
        {
          runId: 'f6a7b8c9-0000-4000-8000-000000000006',
          startedAt: STATUS_NOW.toISOString(),
          status: 'failed',
          dryRun: false,
          expected: 0,
          trigger: 'http',
          error: `client secret ${entraSecret}`,
        },
      ],
      now: STATUS_NOW,
    });
    expect(html).not.toContain(registered);
    expect(html).not.toContain(entraSecret);
    expect(html).not.toContain(jwt);
    expect(html).not.toContain('eyJ');
    expect(html).toContain('***');
  });
});

describe('colours and formatting', () => {
  /** WCAG 2 contrast ratio of two `#rrggbb` colours. */
  function contrast(a: string, b: string): number {
    const lum = (hex: string): number => {
      const [r, g, bl] = [1, 3, 5].map((i) => {
        const c = parseInt(hex.slice(i, i + 2), 16) / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      }) as [number, number, number];
      return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
    };
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
    return (hi + 0.05) / (lo + 0.05);
  }

  test.each(Object.entries(FINDING_STYLE))(
    'finding %s: text on its badge meets WCAG AA; its bar stands out',
    (_, s) => {
      expect(contrast(s.fg, s.bg)).toBeGreaterThanOrEqual(4.5);
      expect(contrast(s.fg, '#ffffff')).toBeGreaterThanOrEqual(4.5);
      expect(contrast(s.solid, '#ffffff')).toBeGreaterThanOrEqual(3);
    },
  );

  test.each(Object.entries(STATE_TONES))('state %s: badge text meets WCAG AA', (_, tone) => {
    expect(contrast(tone.fg, tone.bg)).toBeGreaterThanOrEqual(4.5);
  });

  test('times are UTC and locale-independent; durations and relative times read naturally', () => {
    expect(formatTime('2026-03-10T08:05:00Z')).toBe('10 Mar 2026, 08:05 UTC');
    expect(formatTime('not a date')).toBe('not a date');
    expect(relativeTime('2026-03-10T08:29:30Z', STATUS_NOW)).toBe('just now');
    expect(relativeTime('2026-03-09T08:30:00Z', STATUS_NOW)).toBe('1 day ago');
    expect(relativeTime('2026-03-13T08:30:00Z', STATUS_NOW)).toBe('in 3 days');
    expect(formatDuration(432)).toBe('432 ms');
    expect(formatDuration(36_000)).toBe('36.0 s');
    expect(formatDuration(180_000)).toBe('3 min');
    expect(formatDuration(185_000)).toBe('3 min 5 s');
  });
});

test('control characters of a name never reach the page (bidi overrides would reorder what is shown)', () => {
  const hostile = 'prod\u202eved\u202c \u001b[31mred\u009b0m\nnext';
  const connections = allFindingsConnections().map((c, i) =>
    i === 0 ? { ...c, connectionName: hostile } : c,
  );
  const html = renderStatusPage({ latest: reportOf(connections), runs: [], now: STATUS_NOW });
  // eslint-disable-next-line no-control-regex
  expect(html).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  expect(html).toContain('prodved [31mred0m next');
});
