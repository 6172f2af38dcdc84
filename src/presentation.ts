/**
 * Reports put into words for a person, the same in the CLI and on the status page: what each
 * finding is called, counts, which secret a connection ends up with, times and durations. Plain text
 * only: each surface makes it safe for where it goes (control characters, HTML) and redacts it.
 */
import type { ConnectionReport, Finding, RunSummary } from './remediation/report';

export const DAY_MS = 24 * 3600 * 1000;

/** Per finding: the page's short `label` and `meaning`, and the CLI's table `title`. */
export const FINDING_TEXT: Record<Finding, { label: string; title: string; meaning: string }> = {
  error: {
    label: 'Error',
    title: 'Could not be assessed',
    meaning: 'Assessing the connection itself failed.',
  },
  expired: {
    label: 'Expired',
    title: 'Expired secret',
    meaning: 'The client secret the connection uses has ended.',
  },
  'not-ready': {
    label: 'Not ready',
    title: 'Not ready (failed connection)',
    meaning: 'Azure DevOps marks the connection as failed (isReady: false).',
  },
  'app-missing': {
    label: 'App missing',
    title: 'App registration missing',
    meaning: 'The Entra ID app behind the connection no longer exists.',
  },
  'blocked-by-policy': {
    label: 'Blocked by policy',
    title: 'Blocked by app management policy',
    meaning: 'A tenant policy or limit stops the service from adding a new secret.',
  },
  expiring: {
    label: 'Expiring',
    title: 'Secret expiring soon',
    meaning: 'The client secret ends within the rotation window.',
  },
  unsupported: {
    label: 'Unsupported',
    title: 'Not secret-based (nothing to rotate)',
    meaning: 'Not a secret-based connection (workload identity, managed identity, …): nothing to rotate.',
  },
  healthy: {
    label: 'Healthy',
    title: 'Healthy',
    meaning: 'Ready, and the secret is valid beyond the rotation window.',
  },
};

/** `1 connection`, `2 connections`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Connections a run changed: fixed, or in a dry run, would be changed (planned). */
export function changedCount(summary: RunSummary, dryRun: boolean): number {
  return dryRun ? summary.byOutcome.planned : summary.byOutcome.succeeded;
}

/** What the connection's credential is called: `secret` unless the report says certificate. */
export function credentialNoun(c: Pick<ConnectionReport, 'credentialKind'>): 'secret' | 'certificate' {
  return c.credentialKind === 'certificate' ? 'certificate' : 'secret';
}

/** The tenant of the connection's app, shortened, when it is not the service's home tenant. */
export function tenantNote(c: Pick<ConnectionReport, 'appTenantId'>): string {
  return c.appTenantId ? `tenant ${c.appTenantId.slice(0, 8)}…` : '';
}

/** The expiry of the credential the connection uses after the run (the new one when rotated). */
export function currentExpiry(c: ConnectionReport): { iso: string; isNew: boolean } | undefined {
  if (c.outcome === 'succeeded' && c.newSecretExpiresAt) return { iso: c.newSecretExpiresAt, isNew: true };
  if (c.secretExpiresAt) return { iso: c.secretExpiresAt, isNew: false };
  return undefined;
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

/** `2026-11-22`: the day of an ISO time as written (the CLI's tables); empty when there is none. */
export function isoDay(iso: string | undefined): string {
  return iso ? iso.slice(0, 10) : '';
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
