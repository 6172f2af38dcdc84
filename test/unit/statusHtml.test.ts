/**
 * The status page's `html` template tag: interpolated values are text (escaped, redacted, without
 * control characters) unless they are markup the tag built or `trustedHtml` wrapped; and on the page,
 * a `<script>` in any field of the report or the run records comes out escaped.
 */
import type { RunReport } from '../../src/remediation/report';
import { html, joinHtml, trustedHtml } from '../../src/status/html';
import { renderStatusPage, type RunListEntry } from '../../src/status/render';
import { redactor } from '../../src/telemetry';
import { STATUS_NOW, allFindingsConnections, reportOf, runsFor } from '../helpers/statusFixtures';

const SCRIPT = '<script>alert(1)</script>';

/** `value` with `SCRIPT` appended to every string inside it (keys kept). */
function hostile<T>(value: T): T {
  if (typeof value === 'string') return `${value}${SCRIPT}` as T;
  if (Array.isArray(value)) return value.map((v: unknown) => hostile(v)) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, hostile(v)])) as T;
  return value;
}

describe('html template tag', () => {
  test('escapes every interpolated value, in content and in attributes', () => {
    const name = `"><img src=x onerror=alert(2)>${SCRIPT}'`;
    expect(html`<td title="${name}">${name}</td>`.toString()).toBe(
      '<td title="&quot;&gt;&lt;img src=x onerror=alert(2)&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#39;">' +
        '&quot;&gt;&lt;img src=x onerror=alert(2)&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#39;</td>',
    );
  });

  test('markup passes only as Html: nested templates, lists, trustedHtml; nothing for null and undefined', () => {
    const cells = ['a<b', 'c&d'].map((v) => html`<td>${v}</td>`);
    expect(html`<tr>${cells}</tr>`.toString()).toBe('<tr><td>a&lt;b</td><td>c&amp;d</td></tr>');
    expect(joinHtml(cells, html`\n`).toString()).toBe('<td>a&lt;b</td>\n<td>c&amp;d</td>');
    expect(html`<style>${trustedHtml('a>b{}')}</style>`.toString()).toBe('<style>a>b{}</style>');
    expect(html`[${null}${undefined}${0}]`.toString()).toBe('[0]');
    // A string that looks like markup is still text.
    expect(html`${'<b>x</b>'}`.toString()).toBe('&lt;b&gt;x&lt;/b&gt;');
  });

  test('a value loses its control characters and is redacted', () => {
    const secret = 'tag-test-secret-value-1234';
    redactor.register(secret);
    expect(html`<p>${`a\u202eb\nc ${secret}`}</p>`.toString()).toBe('<p>ab c ***</p>');
  });
});

describe('renderStatusPage: a <script> in any field', () => {
  test('comes out escaped, wherever the page writes it', () => {
    const report: RunReport = hostile(reportOf(allFindingsConnections()));
    // Numbers and the summary stay as they are; every string of every connection and run is hostile.
    const runs: RunListEntry[] = [
      ...hostile(runsFor(reportOf(allFindingsConnections()))).map((r) => ({
        ...r,
        problems: [{ organizationUrl: `https://dev.azure.com/x${SCRIPT}`, project: SCRIPT, message: SCRIPT }],
      })),
      // The run the report belongs to (its problems and trigger are shown in the header).
      {
        runId: report.runId,
        startedAt: report.startedAt,
        finishedAt: report.finishedAt,
        status: `running${SCRIPT}`,
        dryRun: false,
        expected: 3,
        trigger: `timer${SCRIPT}`,
        scope: 'full',
        error: SCRIPT,
        problems: [{ organizationUrl: SCRIPT, project: SCRIPT, message: SCRIPT }],
      },
    ];
    const page = renderStatusPage({ latest: report, runs, now: STATUS_NOW, warnings: [SCRIPT] });
    expect(page).not.toMatch(/<script/i);
    const escaped = page.split('&lt;script&gt;alert(1)&lt;/script&gt;').length - 1;
    // Names, projects, organizations, actions, outcomes, findings, diagnoses, reasons, errors, run ids,
    // triggers, statuses, problems and warnings: each written at least once.
    expect(escaped).toBeGreaterThan(50);
    const emptyPage = renderStatusPage({ runs, now: STATUS_NOW, warnings: [SCRIPT] });
    expect(emptyPage).not.toMatch(/<script/i);
    expect(emptyPage).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });
});
