/** Escaping, time and number formatting, badges: the pieces every section writes with. */
import type { ConnectionReport, Finding } from '../remediation/report';
import { withoutControls } from '../escaping';
import { redactor } from '../telemetry';
import { FINDING_STYLE, NEUTRAL, STATE_TONES, type Tone } from './tones';

export const DAY_MS = 24 * 3600 * 1000;

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
export function t(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  return escapeHtml(redactor.redact(withoutControls(String(value))));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function parseTime(iso: string | undefined): number | undefined {
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
export function formatDate(ms: number): string {
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

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function findingStyle(finding: string): Tone & { label: string; meaning: string } {
  return (
    (FINDING_STYLE as Record<string, (typeof FINDING_STYLE)[Finding] | undefined>)[finding] ?? {
      ...NEUTRAL,
      label: finding,
      meaning: '',
    }
  );
}

export function badge(text: string, tone: Tone, extraClass = ''): string {
  return `<span class="badge${extraClass ? ` ${extraClass}` : ''}" style="color:${tone.fg};background:${tone.bg}">${t(text)}</span>`;
}

export function findingBadge(finding: string): string {
  return badge(findingStyle(finding).label, findingStyle(finding));
}

export function stateBadge(state: string): string {
  return badge(state, STATE_TONES[state] ?? NEUTRAL);
}

export function where(c: Pick<ConnectionReport, 'organization' | 'projects'>): string {
  const projects = c.projects.length ? c.projects.join(', ') : '—';
  return `${t(c.organization)} <span class="sep">/</span> ${t(projects)}`;
}
