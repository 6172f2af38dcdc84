/**
 * Human output of `sc-remediator check`: every check in one table, then what is missing with the
 * exact fix, then a one-line summary.
 */
import Table from 'cli-table3';
import { withoutControlsDeep } from '../escaping';
import { plural } from '../presentation';
import type { CheckStatus, PreflightReport } from '../remediation/preflight';
import { redactor } from '../telemetry';

const MARK: Record<CheckStatus, string> = {
  ok: 'ok',
  missing: 'MISSING',
  warning: 'warning',
  skipped: 'skipped',
};

/** Names and messages come from the services: their control characters are removed first. */
export function formatPreflight(unsafeReport: PreflightReport, width = 120): string {
  const report = withoutControlsDeep(unsafeReport);
  const out: string[] = [];
  const id = report.identity;
  out.push(
    `sc-remediator check as ${id.appId ?? 'an unknown client id'} (object id ${id.objectId ?? 'unknown'})`,
    '',
  );
  const detailWidth = Math.max(30, width - 92);
  const table = new Table({
    head: ['Status', 'Area', 'Check', 'Target', 'Detail'],
    colWidths: [9, 14, 36, 28, detailWidth],
    wordWrap: true,
    wrapOnWordBoundary: false,
    style: { head: [], border: [] },
  });
  for (const c of report.checks) table.push([MARK[c.status], c.area, c.name, c.target, c.detail]);
  out.push(table.toString(), '');

  const toFix = report.checks.filter((c) => c.fix && (c.status === 'missing' || c.status === 'warning'));
  if (toFix.length) {
    out.push('What to do:');
    for (const c of toFix) {
      out.push(`  • [${MARK[c.status]}] ${c.name}: ${c.target}`);
      out.push(`      fix: ${c.fix ?? ''}`);
    }
    out.push('');
  }
  const s = report.summary;
  out.push(
    `Summary: ${s.ok} ok · ${s.missing} missing · ${plural(s.warning, 'warning')} · ${s.skipped} skipped` +
      (report.ok
        ? ' — every prerequisite is in place.'
        : ' — fix what is missing, then run the check again.'),
  );
  return redactor.redact(out.join('\n'));
}
