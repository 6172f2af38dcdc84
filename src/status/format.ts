/** Badges and places: the markup pieces every section writes with. */
import type { ConnectionReport, Finding } from '../remediation/report';
import { tenantNote } from '../presentation';
import { html, type Html } from './html';
import { FINDING_STYLE, NEUTRAL, STATE_TONES, type Tone } from './tones';

export function findingStyle(finding: string): Tone & { label: string; meaning: string } {
  return (
    (FINDING_STYLE as Record<string, (typeof FINDING_STYLE)[Finding] | undefined>)[finding] ?? {
      ...NEUTRAL,
      label: finding,
      meaning: '',
    }
  );
}

export function badge(label: string, tone: Tone, extraClass = ''): Html {
  return html`<span class="badge${extraClass ? ` ${extraClass}` : ''}" style="color:${tone.fg};background:${tone.bg}">${label}</span>`;
}

export function findingBadge(finding: string): Html {
  return badge(findingStyle(finding).label, findingStyle(finding));
}

export function stateBadge(state: string): Html {
  return badge(state, STATE_TONES[state] ?? NEUTRAL);
}

export function where(c: Pick<ConnectionReport, 'organization' | 'projects' | 'appTenantId'>): Html {
  const projects = c.projects.length ? c.projects.join(', ') : '—';
  const tenant = c.appTenantId
    ? html` <span class="muted" title="${c.appTenantId}">(${tenantNote(c)})</span>`
    : '';
  return html`${c.organization} <span class="sep">/</span> ${projects}${tenant}`;
}
