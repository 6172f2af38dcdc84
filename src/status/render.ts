/**
 * The status page (pure): one self-contained HTML document — inline CSS, no script, no external
 * asset, so it works offline and under `Content-Security-Policy: default-src 'none'` — that shows
 * what a person wants to know about the service connections: what the last run found and did, who
 * has to act and what to do, which secrets end soon, and how the last runs went.
 *
 * Every value comes from reports and ledger records, and connection names, projects and error texts
 * are user input: each one is redacted (DESIGN invariant 6) and HTML-escaped by the `html` template
 * tag (`./html`) it is written through.
 * The whole document passes through the redactor once more as a last line of defence.
 */
import { formatTime, parseTime } from '../presentation';
import { redactor } from '../telemetry';
import { CSS } from './css';
import { html, joinHtml, trustedHtml, type Html } from './html';
import type { StatusPageInput } from './input';
import {
  renderEmpty,
  renderFindings,
  renderHeader,
  renderNeedsAPerson,
  renderRuns,
  renderStats,
} from './sections';
import { renderTimeline, timelineEntries } from './timeline';

export type { RunListEntry } from './input';
export { formatDuration, formatTime, relativeTime } from '../presentation';
export { escapeHtml } from './html';
export { TIMELINE_DAYS } from './timeline';
export { FINDING_STYLE, STATE_TONES } from './tones';

/**
 * Renders the status page. Pure: the same input gives the same document. `runs` is shown newest
 * first; without `latest` (no finished run yet) the page says so instead of the report sections.
 */
export function renderStatusPage(input: StatusPageInput): string {
  const { latest, now } = input;
  const runs = input.runs
    .slice()
    .sort((a, b) => (parseTime(b.startedAt) ?? 0) - (parseTime(a.startedAt) ?? 0));
  // The banners are about full runs; a one-connection run does not replace the report.
  const lastRun = runs.find((r) => (r.scope ?? 'full') === 'full');
  const body: Html[] = [renderHeader({ ...input, runs }, lastRun)];
  if (latest) {
    const entries = timelineEntries(latest, now);
    body.push(renderStats(latest, entries));
    body.push(renderNeedsAPerson(latest));
    body.push(renderFindings(latest, now));
    body.push(renderTimeline(entries, latest));
  } else {
    body.push(renderEmpty(Boolean(input.warnings?.length)));
  }
  if (runs.length || latest) body.push(renderRuns(runs, latest, now));
  body.push(
    html`<footer>Rendered ${formatTime(now.toISOString())}${latest ? html` · report <code>${latest.runId}</code>` : ''} · all times UTC</footer>`,
  );

  const doc = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>Service connection status · sc-remediator</title>
<style>${trustedHtml(CSS)}</style>
</head>
<body>
<main>
${joinHtml(body, html`\n`)}
</main>
</body>
</html>
`;
  // Last line of defence: nothing that looks like a secret leaves, whatever a caller put in.
  return redactor.redact(doc.toString());
}
