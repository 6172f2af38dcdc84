/** The secret expiry timeline: what ends in the next days, on a bar per connection. */
import { currentExpiry, DAY_MS, formatDate, parseTime, plural } from '../presentation';
import type { ConnectionReport, RunReport } from '../remediation/report';
import { where } from './format';
import { html, joinHtml, type Html } from './html';
import { BAD, GOOD, WARN, type Tone } from './tones';

/** How far ahead the expiry timeline looks. */
export const TIMELINE_DAYS = 90;
const TIMELINE_MARKERS = [0, 7, 30, 60, 90] as const;

export interface TimelineEntry {
  c: ConnectionReport;
  iso: string;
  ms: number;
  days: number;
  isNew: boolean;
}

export function timelineEntries(latest: RunReport, now: Date): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  for (const c of latest.connections) {
    const e = currentExpiry(c);
    const ms = e && parseTime(e.iso);
    if (!e || ms === undefined) continue;
    out.push({ c, iso: e.iso, ms, days: (ms - now.getTime()) / DAY_MS, isNew: e.isNew });
  }
  return out.sort((a, b) => a.ms - b.ms || a.c.connectionName.localeCompare(b.c.connectionName));
}

function urgencyTone(days: number): Tone {
  if (days < 0) return BAD;
  if (days <= 7) return BAD;
  if (days <= 30) return WARN;
  return GOOD;
}

function daysLabel(days: number): string {
  if (days < 0) {
    const ago = Math.ceil(-days);
    return `expired ${plural(ago, 'day')} ago`;
  }
  if (days < 1) return 'ends today';
  return `${plural(Math.floor(days), 'day')} left`;
}

export function renderTimeline(entries: TimelineEntry[], latest: RunReport): Html {
  const shown = entries.filter((e) => e.days <= TIMELINE_DAYS);
  const later = entries.length - shown.length;
  const unknown = latest.connections.length - entries.length;
  const pct = (days: number): string =>
    `${((Math.min(Math.max(days, 0), TIMELINE_DAYS) / TIMELINE_DAYS) * 100).toFixed(2)}%`;
  const markerLabel = (d: number): string => (d === 0 ? 'now' : `${d} d`);
  // Background zones: the last week (red) and the rotation window (amber).
  const zones = `background:linear-gradient(to right,#fee2e2 0 ${pct(7)},#fef3c7 ${pct(7)} ${pct(30)},#f3f4f6 ${pct(30)})`;
  const grid = TIMELINE_MARKERS.map(
    (d) => html`<span class="tick${d === 0 ? ' tick-now' : ''}" style="left:${pct(d)}"></span>`,
  );
  const axis = TIMELINE_MARKERS.map(
    (d) => html`<span class="axis-label" style="left:${pct(d)}">${markerLabel(d)}</span>`,
  );

  const rows = shown.map((e) => {
    const tone = urgencyTone(e.days);
    const bar =
      e.days < 0
        ? html`<span class="overdue" style="color:${tone.fg};background:${tone.bg};border-color:${tone.solid}">expired</span>`
        : html`<span class="bar" style="width:${pct(e.days)};background:${tone.solid}"></span>`;
    return html`<tr data-testid="timeline-row">
        <th scope="row"><span class="conn">${e.c.connectionName}</span><span class="reason">${where(e.c)}</span></th>
        <td class="track-cell"><div class="track" style="${zones}">${grid}${bar}</div></td>
        <td class="nowrap"><time datetime="${e.iso}">${formatDate(e.ms)}</time>${e.isNew ? html` <span class="tag">new</span>` : ''}</td>
        <td class="nowrap days" style="color:${tone.fg}">${daysLabel(e.days)}</td>
      </tr>`;
  });

  const notes: string[] = [];
  if (later)
    notes.push(
      `${plural(later, 'connection')} ${later === 1 ? 'ends' : 'end'} later than ${TIMELINE_DAYS} days from now`,
    );
  if (unknown)
    notes.push(
      `${plural(unknown, 'connection')} without a known end date (no secret, or it could not be read)`,
    );

  return html`<section class="card" aria-labelledby="expiry">
  <h2 id="expiry">Secret expiry — next ${TIMELINE_DAYS} days <span class="count">${shown.length}</span></h2>
  <p class="section-intro">The secret each connection uses after the last run, soonest first. Shaded: the last week (red) and the rotation window (amber, 30 days by default), in which the service rotates secrets by itself.</p>
  ${
    rows.length
      ? html`<div class="table-wrap"><table class="timeline" data-testid="timeline">
      <thead><tr><th scope="col" class="tl-name">Connection</th><th scope="col" class="track-cell"><div class="axis">${axis}</div></th><th scope="col">Ends</th><th scope="col">Time left</th></tr></thead>
      <tbody>
      ${joinHtml(rows, html`\n      `)}
      </tbody>
    </table></div>`
      : html`<p class="all-clear">No secret ends in the next ${TIMELINE_DAYS} days.</p>`
  }
  ${notes.length ? html`<p class="muted small">${notes.join(' · ')}.</p>` : ''}
</section>`;
}
