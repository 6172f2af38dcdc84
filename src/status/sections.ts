/** The page's sections: header, stats, needs a person, findings, last runs, and the empty state. */
import {
  credentialNoun,
  changedCount,
  currentExpiry,
  formatDate,
  formatDuration,
  formatTime,
  parseTime,
  plural,
  relativeTime,
  truncate,
} from '../presentation';
import { FINDINGS, needsAttention, type ConnectionReport, type RunReport } from '../remediation/report';
import { badge, findingBadge, findingStyle, stateBadge, where } from './format';
import { html, joinHtml, type Html } from './html';
import type { RunListEntry, StatusPageInput } from './input';
import type { TimelineEntry } from './timeline';
import { BAD, FINDING_ORDER, GOOD, INFO, NEUTRAL, WARN, type Tone } from './tones';

/** How many discovery problems the page spells out. */
const MAX_PROBLEMS_SHOWN = 5;

const DOT = html` <span class="dot">·</span> `;
const MISSING = html`<span class="muted">—</span>`;

export function renderHeader(input: StatusPageInput, lastRun: RunListEntry | undefined): Html {
  const { latest, now } = input;
  const statuses: Html[] = [];
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
  const status = joinHtml(statuses, html` `);

  const facts: Html[] = [];
  if (latest) {
    facts.push(
      html`Last run finished <time datetime="${latest.finishedAt}">${formatTime(latest.finishedAt)}</time> <span class="muted">(${relativeTime(latest.finishedAt, now)})</span>`,
    );
    const record = input.runs.find((r) => r.runId === latest.runId);
    if (record) facts.push(html`triggered by ${record.trigger}`);
    facts.push(latest.dryRun ? html`<strong>dry run</strong> — nothing was changed` : html`live run`);
    const took = (parseTime(latest.finishedAt) ?? 0) - (parseTime(latest.startedAt) ?? 0);
    if (took > 0) facts.push(html`took ${formatDuration(took)}`);
  }

  const banners: Html[] = [];
  for (const w of input.warnings ?? [])
    banners.push(html`<p class="banner banner-bad" role="alert">${w}</p>`);
  const problems = (latest && input.runs.find((r) => r.runId === latest.runId)?.problems) ?? [];
  if (problems.length) {
    const items = problems
      .slice(0, MAX_PROBLEMS_SHOWN)
      .map(
        (p) =>
          html`<li><strong>${p.organizationUrl}${p.project ? html` / ${p.project}` : ''}</strong>: ${truncate(p.message, 200)}</li>`,
      );
    if (problems.length > MAX_PROBLEMS_SHOWN)
      items.push(html`<li>and ${problems.length - MAX_PROBLEMS_SHOWN} more</li>`);
    banners.push(
      html`<div class="banner banner-warn" data-testid="discovery-problems"><strong>The last run could not list everything</strong>: connections of these are missing from this page.<ul>${items}</ul></div>`,
    );
  }
  if (lastRun && lastRun.status === 'running')
    banners.push(
      html`<p class="banner banner-info">A run is in progress: started ${relativeTime(lastRun.startedAt, now)} by ${lastRun.trigger}${lastRun.dryRun ? ' (dry run)' : ''}; ${lastRun.recorded ?? 0} of ${plural(lastRun.expected, 'queued connection')} done. This page shows the last finished run.</p>`,
    );
  else if (lastRun && lastRun.status === 'failed' && lastRun.runId !== latest?.runId)
    banners.push(
      html`<p class="banner banner-bad">The latest run (started ${formatTime(lastRun.startedAt)}) failed before it produced a report. This page shows the last finished run.</p>`,
    );

  return html`<header class="page-header">
  <div class="title-row">
    <div>
      <p class="eyebrow">sc-remediator</p>
      <h1>Service connection status</h1>
    </div>
    <div class="overall" data-testid="overall">${status}</div>
  </div>
  ${facts.length ? html`<p class="facts" data-testid="last-run">${joinHtml(facts, DOT)}</p>` : ''}
  ${joinHtml(banners, html`\n  `)}
</header>`;
}

export function renderStats(latest: RunReport, timeline: TimelineEntry[]): Html {
  const s = latest.summary;
  const soon = timeline.filter((e) => e.days >= 0 && e.days <= 30).length;
  const expired = timeline.filter((e) => e.days < 0).length;
  const changed = changedCount(s, latest.dryRun);
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
  const stats = cards.map(
    (c) =>
      html`  <div class="stat" data-testid="stat-${c.id}"${c.tone ? html` style="border-top-color:${c.tone.solid}"` : ''}>
    <div class="stat-label">${c.label}</div>
    <div class="stat-value"${c.tone ? html` style="color:${c.tone.fg}"` : ''}>${c.value}</div>
    <div class="stat-note">${c.note}</div>
  </div>`,
  );
  return html`<section class="stats" aria-label="Totals">
${joinHtml(stats, html`\n`)}
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

export function renderNeedsAPerson(latest: RunReport): Html {
  const list = latest.connections
    .filter((c) => needsAttention(c))
    .sort((a, b) => attentionRank(a) - attentionRank(b) || a.connectionName.localeCompare(b.connectionName));
  const heading = html`<h2 id="needs-a-person">Needs a person <span class="count"${list.length ? html` style="color:${WARN.fg};background:${WARN.bg}"` : ''}>${list.length}</span></h2>`;
  if (!list.length)
    return html`<section class="card" aria-labelledby="needs-a-person">
  ${heading}
  <p class="all-clear">Nobody has to act: every connection is healthy or was fixed by the service.</p>
</section>`;

  const items = list.map((c) => {
    const d = c.diagnosis;
    const cause = d?.cause ?? c.reason ?? c.error ?? 'No diagnosis was recorded for this connection.';
    const next = d?.nextStep ?? fallbackNextStep(c);
    const showError = c.error && c.error !== cause;
    const style = findingStyle(c.finding);
    return html`<li class="person" data-testid="needs-a-person-item" style="border-left-color:${style.solid}">
    <div class="person-head">
      <h3 class="person-name">${c.connectionName}</h3>
      ${findingBadge(c.finding)} ${stateBadge(c.outcome)}
    </div>
    <p class="where">${where(c)}${DOT}<span class="muted">action</span> ${c.action}${c.appId ? html`${DOT}<span class="muted">app</span> <code>${c.appId}</code>` : ''}</p>
    <dl class="diag">
      <dt>Cause</dt>
      <dd>${cause}${d?.code ? html` <code class="code">${d.code}</code>` : ''}</dd>
      <dt>Next step</dt>
      <dd class="next-step">${next}</dd>
      ${showError ? html`<dt>Error</dt>\n      <dd class="error-text">${c.error}</dd>` : ''}
    </dl>
    <p class="ids">Connection <code>${c.connectionId}</code></p>
  </li>`;
  });
  return html`<section class="card" aria-labelledby="needs-a-person">
  ${heading}
  <p class="section-intro">The service cannot fix these by itself. Each entry says why and what to do.</p>
  <ul class="people">
  ${joinHtml(items, html`\n  `)}
  </ul>
</section>`;
}

function expiryCell(c: ConnectionReport, now: Date): Html {
  const e = currentExpiry(c);
  const ms = e && parseTime(e.iso);
  if (!e || ms === undefined) return MISSING;
  return html`<time datetime="${e.iso}">${formatDate(ms)}</time><span class="reason">${relativeTime(e.iso, now)}${e.isNew ? html` · <span class="tag">new ${credentialNoun(c)}</span>` : ''}</span>`;
}

export function renderFindings(latest: RunReport, now: Date): Html {
  const groups = new Map<string, ConnectionReport[]>();
  for (const c of latest.connections) groups.set(c.finding, [...(groups.get(c.finding) ?? []), c]);
  const known = FINDING_ORDER.filter((f) => groups.has(f));
  const extra = [...groups.keys()].filter((f) => !(FINDINGS as readonly string[]).includes(f)).sort();
  const order: string[] = [...known, ...extra];
  const total = latest.connections.length;

  const segments = order.map((f) => {
    const n = groups.get(f)?.length ?? 0;
    return html`<span style="flex-grow:${n};background:${findingStyle(f).solid}" title="${findingStyle(f).label}: ${n}"></span>`;
  });
  const bar = total ? html`<div class="dist" aria-hidden="true">${segments}</div>` : '';
  const counts = [...FINDING_ORDER, ...extra].map((f) => {
    const n = groups.get(f)?.length ?? 0;
    const s = findingStyle(f);
    return html`<li class="${n ? '' : 'zero'}" data-finding="${f}"><span class="swatch" style="background:${s.solid}"></span>${s.label} <strong>${n}</strong></li>`;
  });
  const legend = html`<ul class="legend" data-testid="finding-counts">${counts}</ul>`;

  const tables = order.map((f) => {
    const s = findingStyle(f);
    const rows = (groups.get(f) ?? [])
      .slice()
      .sort(
        (a, b) =>
          a.organization.localeCompare(b.organization) || a.connectionName.localeCompare(b.connectionName),
      )
      .map(
        (c) => html`<tr>
          <td><span class="conn">${c.connectionName}</span>${c.reason ? html`<span class="reason">${c.reason}</span>` : ''}</td>
          <td>${where(c)}</td>
          <td class="nowrap">${c.action}</td>
          <td>${stateBadge(c.outcome)}</td>
          <td>${expiryCell(c, now)}</td>
        </tr>`,
      );
    return html`<div class="group" data-testid="finding-group" data-finding="${f}">
      <h3 class="group-head"><span class="swatch" style="background:${s.solid}"></span>${s.label} <span class="count" style="color:${s.fg};background:${s.bg}">${rows.length}</span></h3>
      ${s.meaning ? html`<p class="group-meaning">${s.meaning}</p>` : ''}
      <div class="table-wrap"><table class="fixed">
        <colgroup><col class="c-conn"><col class="c-where"><col class="c-action"><col class="c-outcome"><col class="c-ends"></colgroup>
        <thead><tr><th scope="col">Connection</th><th scope="col">Organization / projects</th><th scope="col">Action</th><th scope="col">Outcome</th><th scope="col">Secret ends</th></tr></thead>
        <tbody>
        ${joinHtml(rows, html`\n        `)}
        </tbody>
      </table></div>
    </div>`;
  });

  return html`<section class="card" aria-labelledby="by-finding">
  <h2 id="by-finding">Connections by finding <span class="count">${total}</span></h2>
  ${bar}
  ${legend}
  ${total ? joinHtml(tables, html`\n  `) : html`<p class="muted">The last run found no service connections.</p>`}
</section>`;
}

export function renderRuns(runs: readonly RunListEntry[], latest: RunReport | undefined, now: Date): Html {
  const sorted = runs.slice().sort((a, b) => (parseTime(b.startedAt) ?? 0) - (parseTime(a.startedAt) ?? 0));
  const heading = html`<h2 id="runs">Last runs <span class="count">${sorted.length}</span></h2>`;
  if (!sorted.length)
    return html`<section class="card" aria-labelledby="runs">
  ${heading}
  <p class="muted">The run ledger has no runs.</p>
</section>`;
  const num = (n: number | undefined, tone: Tone, suffix: Html | '' = ''): Html | number =>
    n === undefined ? MISSING : n ? html`<strong style="color:${tone.fg}">${n}</strong>${suffix}` : n;
  const rows = sorted.map((r) => {
    const s = r.summary;
    const took = r.finishedAt ? (parseTime(r.finishedAt) ?? 0) - (parseTime(r.startedAt) ?? 0) : undefined;
    const current = latest?.runId === r.runId;
    const connections = s?.total ?? r.total;
    const fixed = s ? changedCount(s, r.dryRun) : undefined;
    return html`<tr data-testid="run-row"${current ? html` class="current"` : ''}>
        <td class="nowrap"><time datetime="${r.startedAt}">${formatTime(r.startedAt)}</time><span class="reason">${relativeTime(r.startedAt, now)}${current ? ' · shown above' : ''}</span></td>
        <td>${r.trigger}${r.scope === 'connection' ? html`<span class="reason">one connection</span>` : ''}</td>
        <td>${r.dryRun ? badge('dry run', INFO) : 'live'}</td>
        <td>${stateBadge(r.status)}${r.error ? html`<span class="reason run-error" title="${r.error}">${truncate(r.error, 120)}</span>` : ''}</td>
        <td class="num">${connections === undefined ? MISSING : connections}</td>
        <td class="num">${r.status === 'running' ? html`${r.recorded ?? 0}<span class="muted"> / ${r.expected}</span>` : r.expected}</td>
        <td class="num">${num(fixed, GOOD, r.dryRun ? html`<span class="reason">planned</span>` : '')}</td>
        <td class="num">${num(s?.byOutcome.failed, BAD)}</td>
        <td class="num">${num(s?.needsAttention, WARN)}</td>
        <td class="num nowrap">${took !== undefined && took >= 0 ? formatDuration(took) : MISSING}</td>
        <td><code title="${r.runId}">${r.runId.slice(0, 8)}</code></td>
      </tr>`;
  });
  return html`<section class="card" aria-labelledby="runs">
  ${heading}
  <div class="table-wrap"><table data-testid="runs">
    <thead><tr><th scope="col">Started</th><th scope="col">Trigger</th><th scope="col">Mode</th><th scope="col">Status</th><th scope="col" class="num">Connections</th><th scope="col" class="num" title="Connections handed to the queue for remediation">Queued</th><th scope="col" class="num">Fixed</th><th scope="col" class="num">Failed</th><th scope="col" class="num">Need a person</th><th scope="col" class="num">Duration</th><th scope="col">Run</th></tr></thead>
    <tbody>
      ${joinHtml(rows, html`\n      `)}
    </tbody>
  </table></div>
</section>`;
}

export function renderEmpty(unavailable: boolean): Html {
  if (unavailable)
    return html`<section class="card empty" data-testid="empty-state">
  <h2>Status unavailable</h2>
  <p>The run history could not be read (see above), so this page cannot say how the connections are.
  Try again in a minute; if it persists, check the function app's storage settings and logs.</p>
</section>`;
  return html`<section class="card empty" data-testid="empty-state">
  <h2>No run yet</h2>
  <p>The service has not finished a run, so there is nothing to show. The nightly timer starts one on its
  schedule (<code>REMEDIATION_SCHEDULE</code>); to see results now, run
  <code>sc-remediator scan</code> from a terminal, or start a run through the HTTP API.</p>
</section>`;
}
