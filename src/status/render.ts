/**
 * The status page (pure): one self-contained HTML document — inline CSS, no script, no external
 * asset, so it works offline and under `Content-Security-Policy: default-src 'none'` — that shows
 * what a person wants to know about the service connections: what the last run found and did, who
 * has to act and what to do, which secrets end soon, and how the last runs went.
 *
 * Every value comes from reports and ledger records, and connection names, projects and error texts
 * are user input: each one is redacted (DESIGN invariant 6) and HTML-escaped where it is written.
 * The whole document passes through the redactor once more as a last line of defence.
 */
import { redactor } from '../telemetry';
import { CSS } from './css';
import { formatTime, parseTime, t } from './format';
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

export type { DiscoveryProblemLike, RunListEntry, StatusPageInput } from './input';
export { escapeHtml, formatDuration, formatTime, relativeTime } from './format';
export { TIMELINE_DAYS } from './timeline';
export { FINDING_ORDER, FINDING_STYLE, STATE_TONES } from './tones';

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
  const body: string[] = [renderHeader({ ...input, runs }, lastRun)];
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
    `<footer>Rendered ${t(formatTime(now.toISOString()))}${latest ? ` · report <code>${t(latest.runId)}</code>` : ''} · all times UTC</footer>`,
  );

  const doc = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>Service connection status · sc-remediator</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body.join('\n')}
</main>
</body>
</html>
`;
  // Last line of defence: nothing that looks like a secret leaves, whatever a caller put in.
  return redactor.redact(doc);
}
