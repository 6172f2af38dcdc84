/**
 * Human output of the CLI: a progress bar on stderr for long runs, then the report as tables grouped
 * by finding, with the diagnosis and next step for every connection that needs a person.
 */
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { withoutControls, withoutControlsDeep } from '../escaping';
import {
  changedCount,
  credentialNoun,
  currentExpiry,
  FINDING_TEXT,
  isoDay,
  plural,
  tenantNote,
} from '../presentation';
import type { DiscoveryProblem } from '../remediation/discovery';
import { FINDINGS, needsAttention, type ConnectionReport, type RunReport } from '../remediation/report';
import type { RunProgress } from '../remediation/run';
import { redactor } from '../telemetry';

interface ProgressReporter {
  update(progress: RunProgress): void;
  stop(): void;
}

/** A progress bar when stderr is a terminal; otherwise a line every 10% so CI logs show progress. */
export function createProgress(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  let bar: cliProgress.SingleBar | undefined;
  let lastDecile = -1;
  return {
    update(p) {
      if (p.stage === 'discovered') {
        stream.write(
          `Found ${plural(p.connections, 'Azure Resource Manager connection')} in ${plural(p.projects, 'project')}.\n`,
        );
        if (stream.isTTY && p.connections > 0) {
          bar = new cliProgress.SingleBar(
            {
              stream,
              format: '  {bar} {value}/{total} connections  {name}',
              hideCursor: true,
              clearOnComplete: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.connections, 0, { name: '' });
        }
      } else if (p.stage === 'remediating') {
        if (bar) bar.update(p.done, { name: withoutControls(p.connectionName).slice(0, 40) });
        else {
          const decile = Math.floor((p.done / Math.max(1, p.total)) * 10);
          if (decile !== lastDecile) {
            lastDecile = decile;
            stream.write(`  ${p.done}/${p.total} connections\n`);
          }
        }
      }
    },
    stop() {
      bar?.stop();
    },
  };
}

function detail(c: ConnectionReport): string {
  if (c.error) return c.error;
  if (c.action === 'delete' && c.outcome === 'succeeded')
    return `retired: deleted ${isoDay(c.retired?.deletedAt)}, definition kept in the run ledger`;
  if (c.action === 'convert-to-wif' && c.conversion && c.outcome !== 'planned')
    return `workload identity federation: ${c.conversion.phase} (${c.conversion.path})`;
  if ((c.action === 'convert-to-wif' || c.action === 'delete') && c.reason) return c.reason;
  const expiry = currentExpiry(c);
  if (expiry?.isNew) return `new ${credentialNoun(c)} until ${isoDay(expiry.iso)}`;
  if (c.diagnosis && c.finding !== 'healthy') return c.diagnosis.cause;
  if (expiry)
    return `${credentialNoun(c)} until ${isoDay(expiry.iso)}${c.credentialSource === 'inferred' ? ' (inferred)' : ''}`;
  return c.reason ?? '';
}

/**
 * The report as text: one table per finding, then what needs a person, then the summary. Names and
 * messages come from the services: their control characters (terminal escape sequences) are
 * removed first, and the text is redacted last.
 */
export function formatReport(
  unsafeReport: RunReport,
  unsafeProblems: DiscoveryProblem[],
  width = 120,
): string {
  const report = withoutControlsDeep(unsafeReport);
  const problems = withoutControlsDeep(unsafeProblems);
  const out: string[] = [];
  const orgs = [...new Set(report.connections.map((c) => c.organization))];
  out.push(
    `sc-remediator run ${report.runId}${report.dryRun ? ' (dry run: nothing was changed)' : ''}`,
    `${plural(report.summary.total, 'connection')} in ${plural(orgs.length, 'organization')}` +
      (orgs.length ? ` (${orgs.join(', ')})` : ''),
    '',
  );
  const detailWidth = Math.max(30, width - 80);
  for (const finding of FINDINGS) {
    const rows = report.connections.filter((c) => c.finding === finding);
    if (rows.length === 0) continue;
    out.push(`${FINDING_TEXT[finding].title} (${rows.length})`);
    const table = new Table({
      head: ['Connection', 'Where', 'Action', 'Outcome', 'Detail'],
      colWidths: [28, 22, 15, 11, detailWidth],
      wordWrap: true,
      style: { head: [], border: [] },
    });
    for (const c of rows)
      table.push([
        c.connectionName,
        `${c.organization}/${c.projects.join(', ')}${c.appTenantId ? ` (${tenantNote(c)})` : ''}`,
        c.action,
        c.outcome,
        detail(c),
      ]);
    out.push(table.toString(), '');
  }

  const attention = report.connections.filter((c) => needsAttention(c));
  if (attention.length) {
    out.push(`Needs a person (${attention.length}):`);
    for (const c of attention) {
      out.push(`  • ${c.organization}/${c.projects[0] ?? ''} "${c.connectionName}" (${c.connectionId})`);
      if (c.diagnosis) {
        out.push(`      cause: ${c.diagnosis.cause}${c.diagnosis.code ? ` [${c.diagnosis.code}]` : ''}`);
        out.push(`      next:  ${c.diagnosis.nextStep}`);
      }
      if (c.error) out.push(`      error: ${c.error}`);
      if (!c.diagnosis && !c.error && c.reason) out.push(`      why:   ${c.reason}`);
    }
    out.push('');
  }
  for (const p of problems)
    out.push(`Problem: ${p.organizationUrl}${p.project ? `/${p.project}` : ''}: ${p.message}`);
  if (problems.length) out.push('');

  const s = report.summary;
  const convertible = report.connections.filter((c) => c.convertible);
  if (convertible.length > 0)
    out.push(
      `Could leave their secret or certificate behind (convertible to workload identity federation, policy convert-to-wif or 'sc-remediator convert'): ${convertible.map((c) => c.connectionName).join(', ')}`,
      '',
    );
  // Invariant 9: a live superseded credential someone else may use stays; say which and why.
  const kept = report.connections.filter((c) => c.cleanup);
  if (kept.length > 0)
    out.push(
      'Superseded credentials kept:',
      ...kept.map((c) => `  • ${c.connectionName}: ${c.cleanup ?? ''}`),
      '',
    );
  out.push(
    `Summary: ${plural(s.total, 'connection')} · ${changedCount(s, report.dryRun)} ${report.dryRun ? 'would be changed' : 'fixed'} · ` +
      `${s.byOutcome.failed} failed · ${s.needsAttention} need a person · ${s.byFinding.healthy} healthy`,
  );
  return redactor.redact(out.join('\n'));
}

/** 0: all healthy or fixed; 1: something failed, needs a person, or (dry run) still needs work. */
export function exitCodeFor(report: RunReport, problems: DiscoveryProblem[]): 0 | 1 {
  if (problems.length) return 1;
  const ok = report.connections.every(
    (c) => !needsAttention(c) && c.outcome !== 'planned' && c.outcome !== 'failed',
  );
  return ok ? 0 : 1;
}
