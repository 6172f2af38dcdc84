/** Colours of findings, outcomes and run states (the findings' words: `src/presentation.ts`). */
import { FINDING_TEXT } from '../presentation';
import { FINDINGS, type Finding } from '../remediation/report';

export interface Tone {
  /** Text colour on `bg` (contrast at least 4.5:1). */
  fg: string;
  bg: string;
  /** Strong colour for bars, dots and accents: at least 3:1 against white (WCAG non-text contrast). */
  solid: string;
}

/** Colours per finding, with the finding's words. Every pair meets WCAG AA for normal text (tested). */
const FINDING_TONES: Record<Finding, Tone> = {
  error: { fg: '#7f1d1d', bg: '#fee2e2', solid: '#7f1d1d' },
  expired: { fg: '#991b1b', bg: '#fee2e2', solid: '#dc2626' },
  'not-ready': { fg: '#9a3412', bg: '#ffedd5', solid: '#c2410c' },
  'app-missing': { fg: '#5b21b6', bg: '#ede9fe', solid: '#7c3aed' },
  'blocked-by-policy': { fg: '#9d174d', bg: '#fce7f3', solid: '#be185d' },
  expiring: { fg: '#854d0e', bg: '#fef9c3', solid: '#b45309' },
  unsupported: { fg: '#374151', bg: '#f3f4f6', solid: '#6b7280' },
  healthy: { fg: '#166534', bg: '#dcfce7', solid: '#15803d' },
};

export const FINDING_STYLE = Object.fromEntries(
  FINDINGS.map((f) => [
    f,
    { label: FINDING_TEXT[f].label, meaning: FINDING_TEXT[f].meaning, ...FINDING_TONES[f] },
  ]),
) as Record<Finding, Tone & { label: string; meaning: string }>;

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

export const NEUTRAL: Tone = { fg: '#374151', bg: '#e5e7eb', solid: '#6b7280' };
export const GOOD: Tone = { fg: '#166534', bg: '#dcfce7', solid: '#15803d' };
export const BAD: Tone = { fg: '#991b1b', bg: '#fee2e2', solid: '#b91c1c' };
export const WARN: Tone = { fg: '#854d0e', bg: '#fef9c3', solid: '#b45309' };
export const INFO: Tone = { fg: '#1e40af', bg: '#dbeafe', solid: '#1d4ed8' };

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
