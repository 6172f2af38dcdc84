/**
 * A plan's steps (pure): the operations that carry it out, in order, and when a follow-up runs
 * (chained actions: rotate then convert, repair then rotate). `execute` (runExecution.ts) runs them.
 */
import type { Plan } from './plan';
import type { ConversionPath } from './ports';

/**
 * One operation on the connection, each under the connection's lock (rotation.ts, conversion.ts,
 * retirement.ts, repair.ts).
 */
export type Operation =
  /** A new secret; `secretLifetimeDays` undefined: SECRET_LIFETIME_DAYS. */
  | { kind: 'rotate'; secretLifetimeDays?: number }
  /** Re-save the connection without a new credential (`drop-access-token`, `reapply-verified-secret`). */
  | { kind: 'repair-connection' }
  | { kind: 'remove-orphans'; orphanKeyIds: string[] }
  | { kind: 'recover-record' }
  /** Convert to workload identity federation, or resume a conversion. */
  | { kind: 'convert'; path: ConversionPath }
  | { kind: 'revert-conversion' }
  | { kind: 'retire'; reason: string };

/**
 * A step of a plan: one operation. A step after the first is a follow-up that runs only when the
 * previous step's result says so (`when`); otherwise the plan ends there. Its result carries the
 * earlier steps' log, credentials removed and binding recorded.
 */
export interface PlanStep {
  operation: Operation;
  /** A follow-up runs only after the previous step succeeded, or only after it failed its verification. */
  when?: 'previous-succeeded' | 'previous-verification-failed';
  /** Step-log lines: the earlier steps labelled (`rotation: …`), a line before the follow-up's own, or why it did not run. */
  log?: { earlierAs?: string; before?: string; ifNotRun?: string };
}

/**
 * The operations that carry a plan out, in order: one for most plans; two where one operation
 * prepares or rescues another —
 * - a conversion that needs a fallback secret (`needsFallbackSecret`) rotates first, and converts
 *   only once that rotation succeeded: Azure DevOps never returns the secret it stores;
 * - a repair whose stored secret turns out to be bad (its verification fails) rotates the secret,
 *   when the connection names an app.
 * No step for `none` and `report`.
 */
export function planSteps(p: Plan, appId: string | null): PlanStep[] {
  switch (p.action) {
    case 'rotate-secret':
      return [
        {
          operation: {
            kind: 'rotate',
            ...(p.secretLifetimeDays !== undefined ? { secretLifetimeDays: p.secretLifetimeDays } : {}),
          },
        },
      ];
    case 'convert-to-wif': {
      const conversion = p.conversion;
      if (!conversion) return [];
      if (conversion.kind === 'revert') return [{ operation: { kind: 'revert-conversion' } }];
      const convert: PlanStep = { operation: { kind: 'convert', path: conversion.path } };
      if (!conversion.needsFallbackSecret) return [convert];
      return [
        { operation: { kind: 'rotate' } },
        {
          ...convert,
          when: 'previous-succeeded',
          log: {
            earlierAs: 'rotation',
            ifNotRun: 'not converted: the rotation that provides the fallback secret did not succeed',
          },
        },
      ];
    }
    case 'delete':
      return [{ operation: { kind: 'retire', reason: p.retirement?.reason ?? p.reason } }];
    case 'repair':
      if (p.repair === 'recover-record') return [{ operation: { kind: 'recover-record' } }];
      if (p.repair === 'remove-orphans')
        return [{ operation: { kind: 'remove-orphans', orphanKeyIds: p.orphanKeyIds } }];
      return [
        { operation: { kind: 'repair-connection' } },
        // The stored secret itself turned out to be bad: a new one is the fix.
        ...(appId
          ? [
              {
                operation: { kind: 'rotate' },
                when: 'previous-verification-failed',
                log: { before: 'the repair was not enough; rotating the secret' },
              } satisfies PlanStep,
            ]
          : []),
      ];
    default:
      return [];
  }
}
