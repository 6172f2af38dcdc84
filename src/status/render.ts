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
import {
  FINDINGS,
  needsAttention,
  type ConnectionReport,
  type Finding,
  type RunReport,
} from '../remediation/report';
import type { RunRecord } from '../remediation/ports';
import { withoutControls } from '../escaping';
import { redactor } from '../telemetry';

/**
 * One run as the run ledger lists it: the ledger's `RunRecord`, with `status`, `trigger` and
 * `scope` widened to strings so that a newer ledger value still renders (with neutral styling).
 */
export type RunListEntry = Omit<RunRecord, 'status' | 'trigger' | 'scope'> & {
  status: string;
  trigger: string;
  scope?: string;
};

/** How many discovery problems the page spells out. */
const MAX_PROBLEMS_SHOWN = 5;

export interface StatusPageInput {
  /** The report of the latest finished run, if any. */
  latest?: RunReport;
  /** The latest runs, any order (shown newest first). */
  runs: readonly RunListEntry[];
  /** The time the page is rendered at: relative times and days to expiry count from it. */
  now: Date;
  /** Problems reading the data (shown as a warning at the top; already plain text). */
  warnings?: readonly string[];
}

interface Tone {
  /** Text colour on `bg` (contrast at least 4.5:1). */
  fg: string;
  bg: string;
  /** Strong colour for bars, dots and accents: at least 3:1 against white (WCAG non-text contrast). */
  solid: string;
}

/** Colours and wording per finding. Every pair meets WCAG AA for normal text (tested). */
export const FINDING_STYLE: Record<Finding, Tone & { label: string; meaning: string }> = {
  error: {
    label: 'Error',
    meaning: 'Assessing the connection itself failed.',
    fg: '#7f1d1d',
    bg: '#fee2e2',
    solid: '#7f1d1d',
  },
  expired: {
    label: 'Expired',
    meaning: 'The client secret the connection uses has ended.',
    fg: '#991b1b',
    bg: '#fee2e2',
    solid: '#dc2626',
  },
  'not-ready': {
    label: 'Not ready',
    meaning: 'Azure DevOps marks the connection as failed (isReady: false).',
    fg: '#9a3412',
    bg: '#ffedd5',
    solid: '#c2410c',
  },
  'app-missing': {
    label: 'App missing',
    meaning: 'The Entra ID app behind the connection no longer exists.',
    fg: '#5b21b6',
    bg: '#ede9fe',
    solid: '#7c3aed',
  },
  'blocked-by-policy': {
    label: 'Blocked by policy',
    meaning: 'A tenant policy or limit stops the service from adding a new secret.',
    fg: '#9d174d',
    bg: '#fce7f3',
    solid: '#be185d',
  },
  expiring: {
    label: 'Expiring',
    meaning: 'The client secret ends within the rotation window.',
    fg: '#854d0e',
    bg: '#fef9c3',
    solid: '#b45309',
  },
  unsupported: {
    label: 'Unsupported',
    meaning: 'Not a secret-based connection (workload identity, managed identity, …): nothing to rotate.',
    fg: '#374151',
    bg: '#f3f4f6',
    solid: '#6b7280',
  },
  healthy: {
    label: 'Healthy',
    meaning: 'Ready, and the secret is valid beyond the rotation window.',
    fg: '#166534',
    bg: '#dcfce7',
    solid: '#15803d',
  },
};

/** Findings, most urgent first: the order of groups and of the distribution bar. */
export const FINDING_ORDER: readonly Finding[] = [
  'error',
  'expired',
  'not-ready',
  'app-missing',
  'blocked-by-policy',
  'expiring',
  'unsupported',
  'healthy',
];

const NEUTRAL: Tone = { fg: '#374151', bg: '#e5e7eb', solid: '#6b7280' };
const GOOD: Tone = { fg: '#166534', bg: '#dcfce7', solid: '#15803d' };
const BAD: Tone = { fg: '#991b1b', bg: '#fee2e2', solid: '#b91c1c' };
const WARN: Tone = { fg: '#854d0e', bg: '#fef9c3', solid: '#b45309' };
const INFO: Tone = { fg: '#1e40af', bg: '#dbeafe', solid: '#1d4ed8' };

/** Colours of outcomes and run states (also WCAG AA). */
export const STATE_TONES: Record<string, Tone> = {
  succeeded: GOOD,
  completed: GOOD,
  failed: BAD,
  planned: INFO,
  running: INFO,
  skipped: NEUTRAL,
  warn: WARN,
};

const DAY_MS = 24 * 3600 * 1000;
/** How far ahead the expiry timeline looks. */
export const TIMELINE_DAYS = 90;
const TIMELINE_MARKERS = [0, 7, 30, 60, 90] as const;

// ---------------------------------------------------------------------------------------------
// Escaping and formatting

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** HTML-escapes text for element content and double- or single-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ENTITIES[ch] ?? ch);
}

/**
 * A value as safe HTML text: control characters removed (bidi overrides would reorder a name as
 * shown), redacted (secrets never reach the page), then escaped.
 */
function t(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  return escapeHtml(redactor.redact(withoutControls(String(value))));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function parseTime(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** `22 Nov 2026, 02:17 UTC` (locale-independent, so the page is the same wherever it renders). */
export function formatTime(iso: string | undefined): string {
  const ms = parseTime(iso);
  if (ms === undefined) return iso ?? '—';
  const d = new Date(ms);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

/** `22 Nov 2026` */
function formatDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

/** `just now`, `5 min ago`, `3 h ago`, `2 days ago`, `in 4 days`. */
export function relativeTime(iso: string | undefined, now: Date): string {
  const ms = parseTime(iso);
  if (ms === undefined) return '';
  const diff = ms - now.getTime();
  const abs = Math.abs(diff);
  const say = (n: number, unit: string): string => (diff < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`);
  if (abs < 60_000) return 'just now';
  if (abs < 3_600_000) return say(Math.floor(abs / 60_000), 'min');
  if (abs < DAY_MS) return say(Math.floor(abs / 3_600_000), 'h');
  const days = Math.floor(abs / DAY_MS);
  return say(days, days === 1 ? 'day' : 'days');
}

/** `850 ms`, `4.2 s`, `3 min 5 s`, `1 h 2 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  const join = (big: number, bigUnit: string, small: number, smallUnit: string): string =>
    small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`;
  if (s < 3600) return join(Math.floor(s / 60), 'min', s % 60, 's');
  return join(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'min');
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function findingStyle(finding: string): Tone & { label: string; meaning: string } {
  return (
    (FINDING_STYLE as Record<string, (typeof FINDING_STYLE)[Finding] | undefined>)[finding] ?? {
      ...NEUTRAL,
      label: finding,
      meaning: '',
    }
  );
}

function badge(text: string, tone: Tone, extraClass = ''): string {
  return `<span class="badge${extraClass ? ` ${extraClass}` : ''}" style="color:${tone.fg};background:${tone.bg}">${t(text)}</span>`;
}

function findingBadge(finding: string): string {
  return badge(findingStyle(finding).label, findingStyle(finding));
}

function stateBadge(state: string): string {
  return badge(state, STATE_TONES[state] ?? NEUTRAL);
}

function where(c: Pick<ConnectionReport, 'organization' | 'projects'>): string {
  const projects = c.projects.length ? c.projects.join(', ') : '—';
  return `${t(c.organization)} <span class="sep">/</span> ${t(projects)}`;
}

// ---------------------------------------------------------------------------------------------
// Sections

function renderHeader(input: StatusPageInput, lastRun: RunListEntry | undefined): string {
  const { latest, now } = input;
  const statuses: string[] = [];
  if (!latest) statuses.push(badge('No report yet', NEUTRAL, 'badge-lg'));
  else {
    const failed = latest.summary.byOutcome.failed;
    const attention = latest.summary.needsAttention;
    if (failed) statuses.push(badge(`${plural(failed, 'remediation')} failed`, BAD, 'badge-lg'));
    if (attention)
      statuses.push(
        badge(
          `${plural(attention, 'connection')} ${attention === 1 ? 'needs' : 'need'} a person`,
          WARN,
          'badge-lg',
        ),
      );
    if (!failed && !attention) statuses.push(badge('All connections fine', GOOD, 'badge-lg'));
  }
  const status = statuses.join(' ');

  const facts: string[] = [];
  if (latest) {
    facts.push(
      `Last run finished <time datetime="${t(latest.finishedAt)}">${t(formatTime(latest.finishedAt))}</time> <span class="muted">(${t(relativeTime(latest.finishedAt, now))})</span>`,
    );
    const record = input.runs.find((r) => r.runId === latest.runId);
    if (record) facts.push(`triggered by ${t(record.trigger)}`);
    facts.push(latest.dryRun ? '<strong>dry run</strong> — nothing was changed' : 'live run');
    const took = (parseTime(latest.finishedAt) ?? 0) - (parseTime(latest.startedAt) ?? 0);
    if (took > 0) facts.push(`took ${t(formatDuration(took))}`);
  }

  const banners: string[] = [];
  for (const w of input.warnings ?? []) banners.push(`<p class="banner banner-bad" role="alert">${t(w)}</p>`);
  const problems = (latest && input.runs.find((r) => r.runId === latest.runId)?.problems) ?? [];
  if (problems.length) {
    const items = problems
      .slice(0, MAX_PROBLEMS_SHOWN)
      .map(
        (p) =>
          `<li><strong>${t(p.organizationUrl)}${p.project ? ` / ${t(p.project)}` : ''}</strong>: ${t(truncate(p.message, 200))}</li>`,
      );
    if (problems.length > MAX_PROBLEMS_SHOWN)
      items.push(`<li>and ${t(problems.length - MAX_PROBLEMS_SHOWN)} more</li>`);
    banners.push(
      `<div class="banner banner-warn" data-testid="discovery-problems"><strong>The last run could not list everything</strong>: connections of these are missing from this page.<ul>${items.join('')}</ul></div>`,
    );
  }
  if (lastRun && lastRun.status === 'running')
    banners.push(
      `<p class="banner banner-info">A run is in progress: started ${t(relativeTime(lastRun.startedAt, now))} by ${t(lastRun.trigger)}${lastRun.dryRun ? ' (dry run)' : ''}; ${t(lastRun.recorded ?? 0)} of ${t(plural(lastRun.expected, 'queued connection'))} done. This page shows the last finished run.</p>`,
    );
  else if (lastRun && lastRun.status === 'failed' && lastRun.runId !== latest?.runId)
    banners.push(
      `<p class="banner banner-bad">The latest run (started ${t(formatTime(lastRun.startedAt))}) failed before it produced a report. This page shows the last finished run.</p>`,
    );

  return `<header class="page-header">
  <div class="title-row">
    <div>
      <p class="eyebrow">sc-remediator</p>
      <h1>Service connection status</h1>
    </div>
    <div class="overall" data-testid="overall">${status}</div>
  </div>
  ${facts.length ? `<p class="facts" data-testid="last-run">${facts.join(' <span class="dot">·</span> ')}</p>` : ''}
  ${banners.join('\n  ')}
</header>`;
}

function renderStats(latest: RunReport, timeline: TimelineEntry[]): string {
  const s = latest.summary;
  const soon = timeline.filter((e) => e.days >= 0 && e.days <= 30).length;
  const expired = timeline.filter((e) => e.days < 0).length;
  const changed = latest.dryRun ? s.byOutcome.planned : s.byOutcome.succeeded;
  const cards: { label: string; value: number; note: string; tone?: Tone; id: string }[] = [
    { id: 'total', label: 'Connections', value: s.total, note: `${s.byFinding.healthy} healthy` },
    {
      id: 'attention',
      label: 'Need a person',
      value: s.needsAttention,
      note: s.needsAttention ? 'see below' : 'nobody has to act',
      tone: s.needsAttention ? WARN : undefined,
    },
    {
      id: 'fixed',
      label: latest.dryRun ? 'Would be fixed' : 'Fixed this run',
      value: changed,
      note: latest.dryRun ? 'planned (dry run)' : 'secrets rotated or repaired',
      tone: changed ? GOOD : undefined,
    },
    {
      id: 'failed',
      label: 'Failed',
      value: s.byOutcome.failed,
      note: s.byOutcome.failed ? 'remediation attempts' : 'no failures',
      tone: s.byOutcome.failed ? BAD : undefined,
    },
    {
      id: 'expiring',
      label: 'Secrets end ≤ 30 days',
      value: soon,
      note: expired ? `plus ${expired} already expired` : 'after this run',
      tone: soon || expired ? WARN : undefined,
    },
  ];
  return `<section class="stats" aria-label="Totals">
${cards
  .map(
    (c) =>
      `  <div class="stat" data-testid="stat-${c.id}"${c.tone ? ` style="border-top-color:${c.tone.solid}"` : ''}>
    <div class="stat-label">${t(c.label)}</div>
    <div class="stat-value"${c.tone ? ` style="color:${c.tone.fg}"` : ''}>${t(c.value)}</div>
    <div class="stat-note">${t(c.note)}</div>
  </div>`,
  )
  .join('\n')}
</section>`;
}

/** Ordering of connections that need a person: failures first, then by urgency of the finding. */
function attentionRank(c: ConnectionReport): number {
  const findingRank = FINDING_ORDER.indexOf(c.finding);
  return (c.outcome === 'failed' ? 0 : 100) + (findingRank < 0 ? 50 : findingRank);
}

function fallbackNextStep(c: ConnectionReport): string {
  if (c.outcome === 'failed')
    return `Read the error below, fix its cause, then run it again: sc-remediator remediate --connection ${c.connectionId}`;
  if (c.finding === 'error')
    return `Check that the service can read this connection and its app, then scan again: sc-remediator scan --connection ${c.connectionId}`;
  return 'Open the connection in Azure DevOps (Project settings > Service connections) and decide whether to repair or delete it.';
}

function renderNeedsAPerson(latest: RunReport): string {
  const list = latest.connections
    .filter((c) => needsAttention(c))
    .sort((a, b) => attentionRank(a) - attentionRank(b) || a.connectionName.localeCompare(b.connectionName));
  const heading = `<h2 id="needs-a-person">Needs a person <span class="count"${list.length ? ` style="color:${WARN.fg};background:${WARN.bg}"` : ''}>${t(list.length)}</span></h2>`;
  if (!list.length)
    return `<section class="card" aria-labelledby="needs-a-person">
  ${heading}
  <p class="all-clear">Nobody has to act: every connection is healthy or was fixed by the service.</p>
</section>`;

  const items = list.map((c) => {
    const d = c.diagnosis;
    const cause = d?.cause ?? c.reason ?? c.error ?? 'No diagnosis was recorded for this connection.';
    const next = d?.nextStep ?? fallbackNextStep(c);
    const showError = c.error && c.error !== cause;
    const style = findingStyle(c.finding);
    return `<li class="person" data-testid="needs-a-person-item" style="border-left-color:${style.solid}">
    <div class="person-head">
      <h3 class="person-name">${t(c.connectionName)}</h3>
      ${findingBadge(c.finding)} ${stateBadge(c.outcome)}
    </div>
    <p class="where">${where(c)} <span class="dot">·</span> <span class="muted">action</span> ${t(c.action)}${c.appId ? ` <span class="dot">·</span> <span class="muted">app</span> <code>${t(c.appId)}</code>` : ''}</p>
    <dl class="diag">
      <dt>Cause</dt>
      <dd>${t(cause)}${d?.code ? ` <code class="code">${t(d.code)}</code>` : ''}</dd>
      <dt>Next step</dt>
      <dd class="next-step">${t(next)}</dd>
      ${showError ? `<dt>Error</dt>\n      <dd class="error-text">${t(c.error)}</dd>` : ''}
    </dl>
    <p class="ids">Connection <code>${t(c.connectionId)}</code></p>
  </li>`;
  });
  return `<section class="card" aria-labelledby="needs-a-person">
  ${heading}
  <p class="section-intro">The service cannot fix these by itself. Each entry says why and what to do.</p>
  <ul class="people">
  ${items.join('\n  ')}
  </ul>
</section>`;
}

/** The expiry of the credential the connection uses after the run (the new one when rotated). */
function currentExpiry(c: ConnectionReport): { iso: string; isNew: boolean } | undefined {
  if (c.outcome === 'succeeded' && c.newSecretExpiresAt) return { iso: c.newSecretExpiresAt, isNew: true };
  if (c.secretExpiresAt) return { iso: c.secretExpiresAt, isNew: false };
  return undefined;
}

function expiryCell(c: ConnectionReport, now: Date): string {
  const e = currentExpiry(c);
  const ms = e && parseTime(e.iso);
  if (!e || ms === undefined) return '<span class="muted">—</span>';
  return `<time datetime="${t(e.iso)}">${t(formatDate(ms))}</time><span class="reason">${t(relativeTime(e.iso, now))}${e.isNew ? ' · <span class="tag">new secret</span>' : ''}</span>`;
}

function renderFindings(latest: RunReport, now: Date): string {
  const groups = new Map<string, ConnectionReport[]>();
  for (const c of latest.connections) groups.set(c.finding, [...(groups.get(c.finding) ?? []), c]);
  const known = FINDING_ORDER.filter((f) => groups.has(f));
  const extra = [...groups.keys()].filter((f) => !(FINDINGS as readonly string[]).includes(f)).sort();
  const order: string[] = [...known, ...extra];
  const total = latest.connections.length;

  const bar = total
    ? `<div class="dist" aria-hidden="true">${order
        .map((f) => {
          const n = groups.get(f)?.length ?? 0;
          return `<span style="flex-grow:${n};background:${findingStyle(f).solid}" title="${t(findingStyle(f).label)}: ${t(n)}"></span>`;
        })
        .join('')}</div>`
    : '';
  const legend = `<ul class="legend" data-testid="finding-counts">${[...FINDING_ORDER, ...extra]
    .map((f) => {
      const n = groups.get(f)?.length ?? 0;
      const s = findingStyle(f);
      return `<li class="${n ? '' : 'zero'}" data-finding="${t(f)}"><span class="swatch" style="background:${s.solid}"></span>${t(s.label)} <strong>${t(n)}</strong></li>`;
    })
    .join('')}</ul>`;

  const tables = order.map((f) => {
    const s = findingStyle(f);
    const rows = (groups.get(f) ?? [])
      .slice()
      .sort(
        (a, b) =>
          a.organization.localeCompare(b.organization) || a.connectionName.localeCompare(b.connectionName),
      )
      .map(
        (c) => `<tr>
          <td><span class="conn">${t(c.connectionName)}</span>${c.reason ? `<span class="reason">${t(c.reason)}</span>` : ''}</td>
          <td>${where(c)}</td>
          <td class="nowrap">${t(c.action)}</td>
          <td>${stateBadge(c.outcome)}</td>
          <td>${expiryCell(c, now)}</td>
        </tr>`,
      );
    return `<div class="group" data-testid="finding-group" data-finding="${t(f)}">
      <h3 class="group-head"><span class="swatch" style="background:${s.solid}"></span>${t(s.label)} <span class="count" style="color:${s.fg};background:${s.bg}">${t(rows.length)}</span></h3>
      ${s.meaning ? `<p class="group-meaning">${t(s.meaning)}</p>` : ''}
      <div class="table-wrap"><table class="fixed">
        <colgroup><col class="c-conn"><col class="c-where"><col class="c-action"><col class="c-outcome"><col class="c-ends"></colgroup>
        <thead><tr><th scope="col">Connection</th><th scope="col">Organization / projects</th><th scope="col">Action</th><th scope="col">Outcome</th><th scope="col">Secret ends</th></tr></thead>
        <tbody>
        ${rows.join('\n        ')}
        </tbody>
      </table></div>
    </div>`;
  });

  return `<section class="card" aria-labelledby="by-finding">
  <h2 id="by-finding">Connections by finding <span class="count">${t(total)}</span></h2>
  ${bar}
  ${legend}
  ${total ? tables.join('\n  ') : '<p class="muted">The last run found no service connections.</p>'}
</section>`;
}

interface TimelineEntry {
  c: ConnectionReport;
  iso: string;
  ms: number;
  days: number;
  isNew: boolean;
}

function timelineEntries(latest: RunReport, now: Date): TimelineEntry[] {
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

function renderTimeline(entries: TimelineEntry[], latest: RunReport): string {
  const shown = entries.filter((e) => e.days <= TIMELINE_DAYS);
  const later = entries.length - shown.length;
  const unknown = latest.connections.length - entries.length;
  const pct = (days: number): string =>
    `${((Math.min(Math.max(days, 0), TIMELINE_DAYS) / TIMELINE_DAYS) * 100).toFixed(2)}%`;
  const markerLabel = (d: number): string => (d === 0 ? 'now' : `${d} d`);
  // Background zones: the last week (red) and the rotation window (amber).
  const zones = `background:linear-gradient(to right,#fee2e2 0 ${pct(7)},#fef3c7 ${pct(7)} ${pct(30)},#f3f4f6 ${pct(30)})`;
  const grid = TIMELINE_MARKERS.map(
    (d) => `<span class="tick${d === 0 ? ' tick-now' : ''}" style="left:${pct(d)}"></span>`,
  ).join('');
  const axis = TIMELINE_MARKERS.map(
    (d) => `<span class="axis-label" style="left:${pct(d)}">${t(markerLabel(d))}</span>`,
  ).join('');

  const rows = shown.map((e) => {
    const tone = urgencyTone(e.days);
    const bar =
      e.days < 0
        ? `<span class="overdue" style="color:${tone.fg};background:${tone.bg};border-color:${tone.solid}">expired</span>`
        : `<span class="bar" style="width:${pct(e.days)};background:${tone.solid}"></span>`;
    return `<tr data-testid="timeline-row">
        <th scope="row"><span class="conn">${t(e.c.connectionName)}</span><span class="reason">${where(e.c)}</span></th>
        <td class="track-cell"><div class="track" style="${zones}">${grid}${bar}</div></td>
        <td class="nowrap"><time datetime="${t(e.iso)}">${t(formatDate(e.ms))}</time>${e.isNew ? ' <span class="tag">new</span>' : ''}</td>
        <td class="nowrap days" style="color:${tone.fg}">${t(daysLabel(e.days))}</td>
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

  return `<section class="card" aria-labelledby="expiry">
  <h2 id="expiry">Secret expiry — next ${TIMELINE_DAYS} days <span class="count">${t(shown.length)}</span></h2>
  <p class="section-intro">The secret each connection uses after the last run, soonest first. Shaded: the last week (red) and the rotation window (amber, 30 days by default), in which the service rotates secrets by itself.</p>
  ${
    rows.length
      ? `<div class="table-wrap"><table class="timeline" data-testid="timeline">
      <thead><tr><th scope="col" class="tl-name">Connection</th><th scope="col" class="track-cell"><div class="axis">${axis}</div></th><th scope="col">Ends</th><th scope="col">Time left</th></tr></thead>
      <tbody>
      ${rows.join('\n      ')}
      </tbody>
    </table></div>`
      : `<p class="all-clear">No secret ends in the next ${TIMELINE_DAYS} days.</p>`
  }
  ${notes.length ? `<p class="muted small">${notes.map((n) => t(n)).join(' · ')}.</p>` : ''}
</section>`;
}

function renderRuns(runs: readonly RunListEntry[], latest: RunReport | undefined, now: Date): string {
  const sorted = runs.slice().sort((a, b) => (parseTime(b.startedAt) ?? 0) - (parseTime(a.startedAt) ?? 0));
  const heading = `<h2 id="runs">Last runs <span class="count">${t(sorted.length)}</span></h2>`;
  if (!sorted.length)
    return `<section class="card" aria-labelledby="runs">
  ${heading}
  <p class="muted">The run ledger has no runs.</p>
</section>`;
  const num = (n: number | undefined, tone: Tone, suffix = ''): string =>
    n === undefined
      ? '<span class="muted">—</span>'
      : n
        ? `<strong style="color:${tone.fg}">${t(n)}</strong>${suffix}`
        : t(n);
  const rows = sorted.map((r) => {
    const s = r.summary;
    const took = r.finishedAt ? (parseTime(r.finishedAt) ?? 0) - (parseTime(r.startedAt) ?? 0) : undefined;
    const current = latest?.runId === r.runId;
    const connections = s?.total ?? r.total;
    const fixed = s ? (r.dryRun ? s.byOutcome.planned : s.byOutcome.succeeded) : undefined;
    return `<tr data-testid="run-row"${current ? ' class="current"' : ''}>
        <td class="nowrap"><time datetime="${t(r.startedAt)}">${t(formatTime(r.startedAt))}</time><span class="reason">${t(relativeTime(r.startedAt, now))}${current ? ' · shown above' : ''}</span></td>
        <td>${t(r.trigger)}${r.scope === 'connection' ? '<span class="reason">one connection</span>' : ''}</td>
        <td>${r.dryRun ? badge('dry run', INFO) : 'live'}</td>
        <td>${stateBadge(r.status)}${r.error ? `<span class="reason run-error" title="${t(r.error)}">${t(truncate(r.error, 120))}</span>` : ''}</td>
        <td class="num">${connections === undefined ? '<span class="muted">—</span>' : t(connections)}</td>
        <td class="num">${r.status === 'running' ? `${t(r.recorded ?? 0)}<span class="muted"> / ${t(r.expected)}</span>` : t(r.expected)}</td>
        <td class="num">${num(fixed, GOOD, r.dryRun ? '<span class="reason">planned</span>' : '')}</td>
        <td class="num">${num(s?.byOutcome.failed, BAD)}</td>
        <td class="num">${num(s?.needsAttention, WARN)}</td>
        <td class="num nowrap">${took !== undefined && took >= 0 ? t(formatDuration(took)) : '<span class="muted">—</span>'}</td>
        <td><code title="${t(r.runId)}">${t(r.runId.slice(0, 8))}</code></td>
      </tr>`;
  });
  return `<section class="card" aria-labelledby="runs">
  ${heading}
  <div class="table-wrap"><table data-testid="runs">
    <thead><tr><th scope="col">Started</th><th scope="col">Trigger</th><th scope="col">Mode</th><th scope="col">Status</th><th scope="col" class="num">Connections</th><th scope="col" class="num" title="Connections handed to the queue for remediation">Queued</th><th scope="col" class="num">Fixed</th><th scope="col" class="num">Failed</th><th scope="col" class="num">Need a person</th><th scope="col" class="num">Duration</th><th scope="col">Run</th></tr></thead>
    <tbody>
      ${rows.join('\n      ')}
    </tbody>
  </table></div>
</section>`;
}

function renderEmpty(unavailable: boolean): string {
  if (unavailable)
    return `<section class="card empty" data-testid="empty-state">
  <h2>Status unavailable</h2>
  <p>The run history could not be read (see above), so this page cannot say how the connections are.
  Try again in a minute; if it persists, check the function app's storage settings and logs.</p>
</section>`;
  return `<section class="card empty" data-testid="empty-state">
  <h2>No run yet</h2>
  <p>The service has not finished a run, so there is nothing to show. The nightly timer starts one on its
  schedule (<code>REMEDIATION_SCHEDULE</code>); to see results now, run
  <code>sc-remediator scan</code> from a terminal, or start a run through the HTTP API.</p>
</section>`;
}

const CSS = `
*,*::before,*::after{box-sizing:border-box}
:root{color-scheme:light;--text:#111827;--muted:#4b5563;--line:#e5e7eb;--bg:#f3f4f6;--card:#fff;--accent:#1d4ed8}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 40px}
h1{font-size:26px;line-height:1.2;margin:0;font-weight:650;letter-spacing:-.01em}
h2{font-size:17px;margin:0 0 12px;font-weight:650;display:flex;align-items:center;gap:8px}
h3{font-size:15px;margin:0}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;background:#f3f4f6;border-radius:4px;padding:1px 5px;color:#1f2937;overflow-wrap:anywhere}
td code,.code{white-space:nowrap}
.muted{color:var(--muted)}
.small{font-size:12.5px}
.nowrap{white-space:nowrap}
.sep,.dot{color:#9ca3af;margin:0 2px}
.page-header{margin-bottom:20px}
.eyebrow{margin:0 0 2px;font-size:12px;font-weight:600;letter-spacing:.08em;text-transform:uppercase;color:var(--accent)}
.title-row{display:flex;justify-content:space-between;align-items:flex-end;gap:16px;flex-wrap:wrap}
.facts{margin:10px 0 0;color:#374151}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;line-height:20px;white-space:nowrap;vertical-align:middle}
.badge-lg{font-size:14px;padding:4px 14px;line-height:22px}
.banner{margin:12px 0 0;padding:10px 14px;border-radius:8px;border:1px solid}
.banner-info{background:#eff6ff;border-color:#bfdbfe;color:#1e3a8a}
.banner-bad{background:#fef2f2;border-color:#fecaca;color:#7f1d1d}
.banner-warn{background:#fefce8;border-color:#fde68a;color:#713f12}
.banner ul{margin:6px 0 0;padding-left:20px}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-bottom:20px}
.stat{background:var(--card);border:1px solid var(--line);border-top:4px solid #d1d5db;border-radius:10px;padding:12px 16px}
.stat-label{font-size:12.5px;font-weight:600;color:var(--muted)}
.stat-value{font-size:30px;font-weight:700;line-height:1.15;margin:2px 0;font-variant-numeric:tabular-nums}
.stat-note{font-size:12.5px;color:var(--muted)}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:20px 22px;margin-bottom:20px;box-shadow:0 1px 2px rgba(17,24,39,.04)}
.count{display:inline-block;min-width:24px;padding:0 8px;border-radius:999px;background:#e5e7eb;color:#1f2937;font-size:12.5px;font-weight:650;line-height:22px;text-align:center}
.section-intro{margin:-6px 0 14px;color:var(--muted)}
.all-clear{margin:0;padding:12px 14px;border-radius:8px;background:#f0fdf4;color:#166534;border:1px solid #bbf7d0}
.people{list-style:none;margin:0;padding:0;display:grid;gap:12px}
.person{min-width:0;border:1px solid var(--line);border-left:5px solid #9ca3af;border-radius:8px;padding:12px 16px;background:#fcfcfd}
.person-head{display:flex;align-items:center;gap:8px;flex-wrap:wrap}
.person-name{font-size:15.5px;margin-right:4px}
.where{margin:2px 0 8px;color:#374151}
.diag{display:grid;grid-template-columns:88px minmax(0,1fr);gap:4px 12px;margin:0}
.diag dt{font-weight:600;color:var(--muted);font-size:12.5px;padding-top:1px;text-transform:uppercase;letter-spacing:.04em}
.diag dd{margin:0}
.diag dd.next-step,.diag dd.error-text{border-radius:4px;padding:3px 8px;margin-left:-8px}
.diag dd.next-step{font-weight:500;color:#1e3a8a;background:#eff6ff}
.error-text{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px;color:#7f1d1d;background:#fef2f2;overflow-wrap:anywhere}
.ids{margin:8px 0 0;font-size:12px;color:var(--muted)}
.dist{display:flex;height:14px;border-radius:999px;overflow:hidden;background:#e5e7eb;margin:2px 0 10px}
.dist span{display:block;min-width:3px}
.dist span+span{border-left:2px solid #fff}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:6px 18px;padding:0;margin:0 0 14px}
.legend li{display:flex;align-items:center;gap:6px}
.legend li.zero{color:#6b7280}
.legend li.zero .swatch{opacity:.35}
.swatch{display:inline-block;width:10px;height:10px;border-radius:3px;flex:none}
.group{margin-top:16px}
.group-head{display:flex;align-items:center;gap:8px;font-size:15px}
.group-meaning{margin:2px 0 6px 18px;color:var(--muted);font-size:13px}
.table-wrap{overflow-x:auto}
table{width:100%;border-collapse:collapse}
table.fixed{table-layout:fixed;min-width:760px}
.c-conn{width:38%}.c-where{width:20%}.c-action{width:13%}.c-outcome{width:11%}.c-ends{width:18%}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.04em;background:#f9fafb;border-bottom:1px solid #d1d5db}
tbody tr:last-child td,tbody tr:last-child th{border-bottom:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.conn{display:block;font-weight:600;word-break:break-word}
.reason{display:block;color:var(--muted);font-size:12.5px;font-weight:400}
.tag{display:inline-block;font-size:11px;font-weight:600;color:#1e40af;background:#dbeafe;border-radius:4px;padding:0 5px;vertical-align:1px}
tr.current td{background:#f8fafc}
.timeline th[scope=row]{font-weight:400;width:30%}
.timeline td,.timeline th{vertical-align:middle}
.track-cell{width:46%;min-width:260px}
.track{position:relative;height:22px;background:#f3f4f6;border-radius:4px}
.tick{position:absolute;top:0;bottom:0;width:0;border-left:1px dashed #9ca3af}
.tick-now{border-left:2px solid #374151}
.bar{position:absolute;left:0;top:5px;height:12px;border-radius:0 6px 6px 0;min-width:4px}
.overdue{position:absolute;left:4px;top:2px;font-size:11px;font-weight:700;line-height:16px;padding:0 6px;border-radius:4px;border:1px solid;text-transform:uppercase;letter-spacing:.04em}
.axis{position:relative;height:16px}
.axis-label{position:absolute;transform:translateX(-50%);white-space:nowrap;font-size:11.5px;text-transform:none;letter-spacing:0}
.axis-label:first-child,.axis-label:nth-child(2){transform:none;padding-left:3px}
.axis-label:last-child{transform:translateX(-100%)}
.days{font-weight:600}
.empty{text-align:center;padding:48px 24px}
.empty h2{justify-content:center;font-size:22px}
.empty p{max-width:560px;margin:0 auto;color:#374151}
footer{color:var(--muted);font-size:12.5px;text-align:center;margin-top:8px}
@media (max-width:720px){main{padding:16px 12px}.diag{grid-template-columns:minmax(0,1fr)}.diag dd.next-step,.diag dd.error-text{margin-left:0}.track-cell{min-width:160px}}
`;

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
