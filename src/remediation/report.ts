/**
 * The public report (DESIGN "Public contracts"): what the CLI prints with `--json` and the HTTP API
 * returns. Others automate against these names and values; change them only on purpose.
 */
import type { ConversionPath, ConversionPhase, PolicyChoice, RotationPhase } from './ports';

export const FINDINGS = [
  'healthy',
  'expiring',
  'expired',
  'not-ready',
  'app-missing',
  'blocked-by-policy',
  'unsupported',
  'error',
] as const;
/** What assessment found about a connection. */
export type Finding = (typeof FINDINGS)[number];

export const ACTIONS = ['none', 'rotate-secret', 'repair', 'convert-to-wif', 'delete', 'report'] as const;
/** What the plan does (or did) about it. */
export type Action = (typeof ACTIONS)[number];

export const OUTCOMES = ['planned', 'succeeded', 'failed', 'skipped'] as const;
/** How it went: `planned` in a dry run, `skipped` when there was nothing to do or it could not start. */
export type Outcome = (typeof OUTCOMES)[number];

/**
 * How sure the report is about the credential the connection uses: `recorded` (this service rotated
 * it and Key Vault holds its key id), `inferred` (guessed from the app's passwords), `unknown`.
 */
export type CredentialSource = 'recorded' | 'inferred' | 'unknown';

/** Stable identifiers of the troubleshooting cases diagnosis recognises. */
export type DiagnosisKind =
  | 'invalid-secret'
  | 'expired-secret'
  | 'missing-secret'
  | 'app-not-found'
  | 'app-disabled'
  | 'service-principal-missing'
  | 'tenant-not-found'
  | 'access-token-invalid'
  | 'missing-role-assignment'
  | 'role-assignment-failed'
  | 'guest-permission'
  | 'not-authorized-to-add-applications'
  | 'user-session-expired'
  | 'subscription-not-listed'
  | 'pipeline-not-authorized'
  | 'graph-permission-denied'
  | 'devops-permission-denied'
  | 'key-vault-permission-denied'
  | 'password-policy'
  | 'password-limit'
  | 'password-lifetime'
  | 'other-tenant'
  | 'tenant-access'
  | 'certificate-expiring'
  | 'certificate-expired'
  | 'certificate-missing'
  | 'unsupported-authentication'
  | 'throttled'
  | 'operation-in-progress'
  | 'entra-error'
  | 'rotation-state-lost'
  | 'rotation-state-deleted'
  | 'unknown';

/** Why a connection is broken, and what to do about it. Never carries a secret value. */
export interface Diagnosis {
  kind: DiagnosisKind;
  /** Plain-language cause. */
  cause: string;
  /** The service's code: `AADSTS7000215`, `AuthorizationFailed`, `Authorization_RequestDenied`, … */
  code?: string;
  /** True when this service repairs it by itself (new secret, re-apply, drop accesstoken). */
  fixableByService: boolean;
  /** What an operator does next: what, where, with which permission. */
  nextStep: string;
}

/** One connection in the report. */
export interface ConnectionReport {
  /** Organization name, e.g. `contoso`. */
  organization: string;
  organizationUrl?: string;
  /** Names of the projects the connection is shared with. */
  projects: string[];
  connectionId: string;
  connectionName: string;
  /** Client id of the app the connection authenticates as; null when it has none (managed identity). */
  appId: string | null;
  finding: Finding;
  action: Action;
  outcome: Outcome;
  /** Why `action` was chosen. */
  reason?: string;
  diagnosis?: Diagnosis;
  /**
   * What the connection signs in with, for a service-principal connection: a client secret
   * (`spnKey`) or a certificate (`spnCertificate`). The `secret…` fields below hold the end of
   * whichever it is.
   */
  credentialKind?: 'secret' | 'certificate';
  /** The tenant the connection's app lives in, when it is not this service's home tenant. */
  appTenantId?: string;
  /** End of the credential the connection uses (ISO), when known. */
  secretExpiresAt?: string;
  /** What went wrong (redacted; never a secret). */
  error?: string;
  credentialSource: CredentialSource;
  /** `data.creationMode` as read (`Automatic` / `Manual`). */
  creationMode?: string;
  /** `authorization.scheme` (`ServicePrincipal`, `WorkloadIdentityFederation`, …). */
  scheme: string;
  /** Rotation phase reached (Key Vault record). */
  phase?: RotationPhase;
  /** Phase `verified`: when the superseded credentials are removed (retention period). */
  cleanupDueAt?: string;
  /**
   * Superseded credentials kept although their retention period has passed, and why: another
   * connection naming the app may still use them, or the usage census was incomplete (DESIGN
   * invariant 9). Absent when nothing was kept.
   */
  cleanup?: string;
  /** End of the secret (or certificate, see `credentialKind`) created by this run. */
  newSecretExpiresAt?: string;
  /** What was planned or done, in order. */
  steps?: string[];
  /** The policy choice that applied (absent: no policy, `rotate`), and the 1-based rule that chose it. */
  policy?: PolicyChoice;
  policyRule?: number;
  /**
   * The connection could stop depending on a secret: it can be converted to workload identity
   * federation, by `conversionPath`. A note beside the finding, not a finding: a convertible
   * connection is also healthy, expiring or expired, and the finding must keep saying which.
   */
  convertible?: boolean;
  conversionPath?: ConversionPath;
  /** A retirement candidate (app gone, or failing past RETIRE_FAILED_AFTER_DAYS) while retirement is off. */
  retirable?: boolean;
  /** A conversion (or its revert): where it stands. Issuer and subject are not secrets. */
  conversion?: {
    path: ConversionPath;
    phase: ConversionPhase;
    issuer?: string;
    subject?: string;
    /** Until when Azure DevOps can revert its own conversion. */
    revertDeadline?: string;
    /** `certificate` for a certificate connection (its fallback and clean-up are certificates). */
    credential?: 'certificate';
  };
  /** A retirement: when its definition was recorded in the run ledger, and when it was deleted. */
  retired?: { recordedAt: string; deletedAt?: string };
  /**
   * Entitlement (DESIGN invariant 8), present when the plan would give the connection a new
   * credential of its app: whether it is bound to that app, how (`proof:test-connection-ok`,
   * `proof:expired-secret-7000222`, `verified-rotation`, `approved:<who>`), and, when it is not, the
   * command that approves it. Not bound: the action is `report` and nothing is given.
   */
  entitlement?: {
    bound: boolean;
    appId: string;
    how?: string;
    /** What proved it, or why nothing did. */
    detail: string;
    /** This run recorded the binding in Key Vault (proof by TestConnection, recorded when acted on). */
    recorded?: boolean;
    approveCommand?: string;
  };
}

export interface RunSummary {
  total: number;
  byFinding: Record<Finding, number>;
  byAction: Record<Action, number>;
  byOutcome: Record<Outcome, number>;
  /** Connections a person must look at (see `needsAttention`). */
  needsAttention: number;
  /** Connections that could be converted to workload identity federation (report field `convertible`). */
  convertible?: number;
}

/** The whole report of one run. */
export interface RunReport {
  runId: string;
  startedAt: string;
  finishedAt: string;
  dryRun: boolean;
  summary: RunSummary;
  connections: ConnectionReport[];
}

function zeroCounts<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/**
 * Whether a person must look at this connection: its remediation failed, the service can only
 * report it (app missing, disabled, missing role, policy, unsupported and broken), assessment itself
 * failed, or a broken/expiring connection was skipped. Healthy connections and planned or
 * successful fixes do not need attention.
 */
export function needsAttention(c: Pick<ConnectionReport, 'finding' | 'action' | 'outcome'>): boolean {
  if (c.outcome === 'failed' || c.action === 'report' || c.finding === 'error') return true;
  return c.outcome === 'skipped' && c.finding !== 'healthy' && c.finding !== 'unsupported';
}

/**
 * Counts connections by finding, action and outcome (every key present, zero when none) and how
 * many need attention, for the report's `summary` and the run's metrics.
 */
export function summarize(
  connections: readonly Pick<ConnectionReport, 'finding' | 'action' | 'outcome' | 'convertible'>[],
): RunSummary {
  const byFinding = zeroCounts(FINDINGS);
  const byAction = zeroCounts(ACTIONS);
  const byOutcome = zeroCounts(OUTCOMES);
  let attention = 0;
  let convertible = 0;
  for (const c of connections) {
    if (c.convertible) convertible += 1;
    byFinding[c.finding] += 1;
    byAction[c.action] += 1;
    byOutcome[c.outcome] += 1;
    if (needsAttention(c)) attention += 1;
  }
  return {
    total: connections.length,
    byFinding,
    byAction,
    byOutcome,
    needsAttention: attention,
    convertible,
  };
}
