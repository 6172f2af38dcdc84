/**
 * Planning (pure): what to do about one assessed connection, why, and the steps it will take.
 * Deciding here and applying elsewhere gives dry runs for free: a dry run stops after `plan`.
 */
import type { Assessment } from './assess';
import { diagnosisOf } from './diagnosis';
import type { ConversionPath, RotationPhase } from './ports';
import type { Action, ConnectionReport, DiagnosisKind } from './report';
import { isCertificateAuthentication, MANUAL_REJECTED_DATA_FIELDS } from './transform';

export interface PlanSettings {
  secretLifetimeDays: number;
  oldSecretRetentionHours: number;
  rotateDaysBeforeExpiry: number;
}

/** Which repair: both are a PUT of the connection without a new credential. */
export type RepairKind =
  /** Drop the null/empty `accesstoken`, keep the stored secret. */
  | 'drop-access-token'
  /** Put back the secret Key Vault holds (verified earlier) into a connection that lost it. */
  | 'reapply-verified-secret'
  /** Remove credentials marked for this connection that no rotation accounts for. */
  | 'remove-orphans'
  /** Recover the connection's soft-deleted Key Vault record (then the next assessment decides). */
  | 'recover-record';

export interface Plan {
  action: Action;
  /** Why, in one sentence for the report. */
  reason: string;
  /** What will happen, in order (dry-run output, report `steps`). */
  steps: string[];
  /** For `rotate-secret`: the phase a rotation already reached (resume from there); undefined = new rotation. */
  resumeFrom?: Exclude<RotationPhase, 'completed'>;
  /** For `repair`: which one. */
  repair?: RepairKind;
  /** For a new rotation: lifetime of the new secret in days, capped by the app's policy. */
  secretLifetimeDays?: number;
  /** Credentials the new secret supersedes (removed after retention); the engine's `previousKeyIds`. */
  previousKeyIds: string[];
  /** Orphan credentials to remove (crash between Graph and Key Vault). */
  orphanKeyIds: string[];
  warnings: string[];
  /** For `convert-to-wif` (see `decide` in policy.ts): which conversion work, by which path. */
  conversion?: {
    kind: 'convert' | 'resume' | 'revert';
    path: ConversionPath;
    /** Rotate first: Key Vault holds no verified secret (for a certificate connection: certificate) to fall back on. */
    needsFallbackSecret?: boolean;
  };
  /** For `delete`: why the connection is retired. */
  retirement?: { reason: string };
}

/** Causes a new secret cannot cure: the service reports them instead of rotating. */
const BLOCKING: readonly DiagnosisKind[] = [
  'app-not-found',
  'app-disabled',
  'service-principal-missing',
  'tenant-not-found',
  'missing-role-assignment',
  'role-assignment-failed',
  'guest-permission',
  'not-authorized-to-add-applications',
  'user-session-expired',
  'subscription-not-listed',
  'pipeline-not-authorized',
  'graph-permission-denied',
  'password-policy',
];

function list(keyIds: string[]): string {
  return keyIds.join(', ');
}

/**
 * Decides the action for one assessment:
 * - `report` when the service cannot fix it: app missing or unreadable, unsupported and broken,
 *   blocked by policy, or broken for a reason a new secret does not cure (app disabled, missing
 *   role assignment, creation-time failures, …). Deleting or converting is never planned: those
 *   are a person's decision (a later feature).
 * - `rotate-secret`, resuming, when a rotation stopped in phase created/applied; or to clean up
 *   once a verified rotation's retention period has passed.
 * - `repair` before rotation where that is the whole fix: drop a null/empty `accesstoken` when
 *   the secret itself is fine; re-apply the verified Key Vault secret to a connection that lost it
 *   (no new credential); remove orphan credentials of an interrupted rotation.
 * - `rotate-secret` when the secret is expired, expiring, rejected (invalid/expired/missing) or
 *   absent. A rotation's PUT also drops a broken `accesstoken`.
 * - `none` for healthy connections (and unsupported ones that are ready), and while Azure DevOps
 *   is still working on the connection.
 */
export function plan(a: Assessment, settings: PlanSettings): Plan {
  const warnings: string[] = [];
  const result = (action: Action, reason: string, steps: string[], extra: Partial<Plan> = {}): Plan => ({
    action,
    reason,
    steps,
    previousKeyIds: [],
    orphanKeyIds: [],
    warnings,
    ...extra,
  });
  const kind = a.diagnosis?.kind;
  const retention = settings.oldSecretRetentionHours;
  const putWhat = (secret: string) =>
    `PUT the connection (organization level) with ${secret}, creationMode ${
      a.creationMode?.toLowerCase() === 'manual'
        ? 'kept Manual'
        : `switched from ${a.creationMode ?? 'unset'} to Manual`
    }, without ${MANUAL_REJECTED_DATA_FIELDS.join('/')} and accesstoken`;
  const verifyStep =
    'Verify: the secret gets a token, the TestConnection proxy call succeeds, and the connection reads back isReady: true';
  const cleanupStep = (previous: string[]) =>
    `After the ${retention} h retention period, remove ${
      previous.length > 0 ? `the superseded credential(s) ${list(previous)}, ` : ''
    }credentials this service created earlier for this connection, and expired ones; other live credentials are kept (phase completed)`;

  // Missing state is unknown state: get it back first, decide nothing else before.
  if (a.recordState === 'soft-deleted')
    return result(
      'repair',
      "The connection's Key Vault record is soft-deleted: recover it, then assess the connection with it.",
      [
        `Recover the soft-deleted Key Vault secret sc-remediator-${a.connectionId} (its record and secret come back as they were)`,
        'Assess and plan the connection again with the recovered record',
      ],
      { repair: 'recover-record' },
    );

  switch (a.finding) {
    case 'unsupported':
      return result(
        'report',
        `${a.diagnosis?.kind === 'other-tenant' ? a.diagnosis.cause : (a.notes[0] ?? 'The connection cannot be rotated.')}${a.isReady ? '' : ' It is not ready.'}`,
        [a.diagnosis?.nextStep ?? diagnosisOf('unknown').nextStep],
      );
    case 'error':
      return result(
        'report',
        `The connection could not be assessed: ${a.diagnosis?.cause ?? 'unknown error'}`,
        [a.diagnosis?.nextStep ?? 'Look at the error and run again.'],
      );
    case 'app-missing':
      return result(
        'report',
        `App ${a.appId ?? '(none)'} does not exist in the tenant; a new secret cannot help and deleting the connection is a person's decision.`,
        [a.diagnosis?.nextStep ?? diagnosisOf('app-not-found').nextStep],
      );
    default:
      break;
  }

  // A rotation that stopped before verification: finish it first, whatever else is found.
  // A certificate-based connection: never given a secret; its certificate is rotated (a new Key
  // Vault certificate, rotationCertificate.ts) when it expires, and a rotation under way finished.
  if (a.certificate !== undefined || isCertificateAuthentication(a.authenticationType))
    return planCertificate(a, settings, result, { putWhat, verifyStep, cleanupStep });

  if (a.pending && a.pending.phase !== 'verified') {
    const steps =
      a.pending.phase === 'created'
        ? [
            putWhat(`the new secret of rotation ${a.pending.rotationId} read from Key Vault`) +
              ' (phase applied)',
            verifyStep + ' (phase verified)',
          ]
        : [verifyStep + ' (phase verified)'];
    return result(
      'rotate-secret',
      `Resume rotation ${a.pending.rotationId}, which stopped in phase '${a.pending.phase}'.`,
      [...steps, cleanupStep(a.record?.previousKeyIds ?? [])],
      { resumeFrom: a.pending.phase, previousKeyIds: a.record?.previousKeyIds ?? [] },
    );
  }

  if (a.finding === 'blocked-by-policy')
    return result(
      'report',
      'A new secret is needed but an app management policy forbids new passwords for this app.',
      [a.diagnosis?.nextStep ?? diagnosisOf('password-policy').nextStep],
    );

  if (kind === 'operation-in-progress')
    return result('none', 'Azure DevOps is still working on the connection; look again next run.', []);

  if (kind !== undefined && BLOCKING.includes(kind) && (a.finding === 'not-ready' || a.finding === 'expired'))
    return result('report', `${a.diagnosis?.cause ?? ''} A new secret would not fix this.`.trim(), [
      a.diagnosis?.nextStep ?? '',
    ]);

  const orphanStep =
    a.orphanKeyIds.length > 0
      ? [
          `Remove orphan credential(s) ${list(a.orphanKeyIds)} left by an interrupted rotation (never stored in Key Vault)`,
        ]
      : [];

  // Repairs that need no new credential.
  if (a.accessTokenBroken && !a.needsNewSecret)
    return result(
      'repair',
      'The connection carries an empty accesstoken; re-saving it without that parameter fixes it and keeps the stored secret.',
      [...orphanStep, putWhat('no secret (Azure DevOps keeps the stored one)'), verifyStep],
      { repair: 'drop-access-token', orphanKeyIds: a.orphanKeyIds },
    );
  if (a.secretRejected && a.verifiedSecret)
    return result(
      'repair',
      `The connection lost its secret; Key Vault still holds the one rotation ${a.verifiedSecret.rotationId} verified (valid until ${a.verifiedSecret.expiresAt}).`,
      [
        ...orphanStep,
        `Read the secret of rotation ${a.verifiedSecret.rotationId} from Key Vault`,
        putWhat('that secret'),
        verifyStep,
      ],
      { repair: 'reapply-verified-secret', orphanKeyIds: a.orphanKeyIds },
    );

  if (a.needsNewSecret) {
    const policyMax = a.passwordPolicy?.maxLifetimeDays;
    const lifetime = Math.min(settings.secretLifetimeDays, policyMax ?? Number.POSITIVE_INFINITY);
    if (policyMax !== undefined && policyMax < settings.secretLifetimeDays)
      warnings.push(
        `The app's policy caps new secrets at ${policyMax} days (SECRET_LIFETIME_DAYS is ${settings.secretLifetimeDays}).`,
      );
    if (lifetime <= settings.rotateDaysBeforeExpiry)
      warnings.push(
        `A ${lifetime}-day secret is already within ROTATE_DAYS_BEFORE_EXPIRY (${settings.rotateDaysBeforeExpiry}): it will be rotated again on the next run.`,
      );
    if (a.credentialSource === 'inferred' && a.previousKeyIds.length === 0 && a.credential)
      warnings.push(
        `The credential in use (${a.credential.keyId}) is only inferred; it is kept after rotation unless it has expired.`,
      );
    const why =
      a.finding === 'expired'
        ? `The secret has expired${a.secretExpiresAt ? ` (${a.secretExpiresAt})` : ''}.`
        : a.secretRejected
          ? `${a.diagnosis?.cause ?? 'The secret is rejected.'}`
          : a.credential === undefined
            ? 'The app has no client secret this connection could be using.'
            : `The secret ends ${a.secretExpiresAt ?? ''}, within ${settings.rotateDaysBeforeExpiry} days.`;
    return result(
      'rotate-secret',
      why.replace(/\s+\./, '.'),
      [
        ...orphanStep,
        `Add a client secret named 'sc-remediator ${a.connectionId} <rotationId>' valid for ${lifetime} days to app ${a.appId ?? ''} through Microsoft Graph`,
        'Store its value and the rotation record in Key Vault before using it anywhere (phase created)',
        putWhat('the new secret') + ' (phase applied)',
        verifyStep + ' (phase verified)',
        cleanupStep(a.previousKeyIds),
      ],
      { secretLifetimeDays: lifetime, previousKeyIds: a.previousKeyIds, orphanKeyIds: a.orphanKeyIds },
    );
  }

  if (a.finding === 'not-ready')
    return result(
      'report',
      `${a.diagnosis?.cause ?? 'The connection is not ready.'} The service does not know a fix.`,
      [a.diagnosis?.nextStep ?? diagnosisOf('unknown').nextStep],
    );

  if (a.pending?.phase === 'verified') {
    if (a.pending.cleanupDue)
      return result(
        'rotate-secret',
        `Rotation ${a.pending.rotationId} is verified and its retention period has passed: finish it.`,
        [cleanupStep(a.record?.previousKeyIds ?? [])],
        { resumeFrom: 'verified', previousKeyIds: a.record?.previousKeyIds ?? [] },
      );
    return result(
      'none',
      `Healthy; superseded credentials of rotation ${a.pending.rotationId} are removed after ${a.pending.cleanupDueAt ?? 'the retention period'}.`,
      [],
    );
  }

  if (a.orphanKeyIds.length > 0)
    return result(
      'repair',
      'Healthy, but credentials marked for this connection were left behind by an interrupted rotation.',
      orphanStep,
      { repair: 'remove-orphans', orphanKeyIds: a.orphanKeyIds },
    );

  return result(
    'none',
    a.finding === 'healthy' && a.credential
      ? `Healthy; the secret ${a.credential.endDateTime ? `ends ${a.credential.endDateTime}` : 'never ends'}.`
      : 'Healthy.',
    [],
  );
}

/** The plan of a certificate-based connection (see `plan`). */
function planCertificate(
  a: Assessment,
  settings: PlanSettings,
  result: (action: Action, reason: string, steps: string[], extra?: Partial<Plan>) => Plan,
  words: {
    putWhat: (what: string) => string;
    verifyStep: string;
    cleanupStep: (previous: string[]) => string;
  },
): Plan {
  const previous = a.record?.previousKeyIds ?? [];
  const verifyStep = words.verifyStep.replace('the secret gets', 'the certificate gets');
  if (a.pending && a.pending.phase !== 'verified')
    return result(
      'rotate-secret',
      `Resume certificate rotation ${a.pending.rotationId}, which stopped in phase '${a.pending.phase}'.`,
      [
        ...(a.pending.phase === 'created'
          ? [
              words.putWhat(`the certificate of rotation ${a.pending.rotationId} read from Key Vault`) +
                ' (phase applied)',
            ]
          : []),
        verifyStep + ' (phase verified)',
        words.cleanupStep(previous),
      ],
      { resumeFrom: a.pending.phase, previousKeyIds: previous },
    );
  if (a.pending?.phase === 'verified' && a.pending.cleanupDue)
    return result(
      'rotate-secret',
      `Certificate rotation ${a.pending.rotationId} is verified and its retention period has passed: finish it.`,
      [words.cleanupStep(previous)],
      { resumeFrom: 'verified', previousKeyIds: previous },
    );
  if (a.finding === 'healthy')
    return result(
      'none',
      a.pending?.phase === 'verified'
        ? `Healthy; superseded certificates of rotation ${a.pending.rotationId} are removed after ${a.pending.cleanupDueAt ?? 'the retention period'}.`
        : `Its certificate lasts past the rotation window (ends ${a.certificate?.endDateTime ?? 'never'}).`,
      [],
    );
  if (a.finding === 'expiring' || a.finding === 'expired')
    return result(
      'rotate-secret',
      `${a.diagnosis?.cause ?? 'The certificate needs a successor.'}`,
      [
        `Create certificate sc-remediator-cert-${a.connectionId} (a new version) in Key Vault: self-signed, key exportable, PEM, valid about ${settings.secretLifetimeDays} days`,
        `Add its public part to app ${a.appId ?? ''}'s keyCredentials as 'sc-remediator ${a.connectionId} <rotationId>' through Microsoft Graph (the collection read again right before the write, nothing else changed)`,
        'Store the rotation record, naming the certificate version, in Key Vault (phase created)',
        words.putWhat('the new certificate and its private key (authenticationType spnCertificate)') +
          ' (phase applied)',
        verifyStep + ' (phase verified)',
        words.cleanupStep(a.previousKeyIds),
      ],
      { previousKeyIds: a.previousKeyIds },
    );
  return result('report', `${a.diagnosis?.cause ?? 'The certificate needs attention.'}`, [
    a.diagnosis?.nextStep ?? diagnosisOf('certificate-expiring').nextStep,
  ]);
}

/**
 * The report entry for an assessed and planned connection before anything is applied: outcome
 * `planned` for an action that changes something, `skipped` for `none` and `report`. The engine
 * replaces outcome, phase, error and steps once it has run.
 */
export function plannedReport(a: Assessment, p: Plan): ConnectionReport {
  const changes = p.action !== 'none' && p.action !== 'report';
  const report: ConnectionReport = {
    organization: a.organization,
    organizationUrl: a.organizationUrl,
    projects: a.projects.map((pr) => pr.name),
    connectionId: a.connectionId,
    connectionName: a.connectionName,
    appId: a.appId,
    finding: a.finding,
    action: p.action,
    outcome: changes ? 'planned' : 'skipped',
    reason: p.reason,
    credentialSource: a.credentialSource,
    scheme: a.scheme,
  };
  if (a.diagnosis) report.diagnosis = a.diagnosis;
  const kind = reportedCredentialKind(a);
  if (kind) report.credentialKind = kind;
  if (a.appTenantId) report.appTenantId = a.appTenantId;
  if (a.secretExpiresAt) report.secretExpiresAt = a.secretExpiresAt;
  if (a.creationMode) report.creationMode = a.creationMode;
  if (a.pending) report.phase = a.pending.phase;
  if (a.pending?.cleanupDueAt) report.cleanupDueAt = a.pending.cleanupDueAt;
  if (p.steps.length > 0) report.steps = p.steps;
  return report;
}

/** Secret or certificate, for a service-principal connection; nothing for any other scheme. */
function reportedCredentialKind(a: Assessment): ConnectionReport['credentialKind'] {
  if (a.scheme.toLowerCase() !== 'serviceprincipal') return undefined;
  if (isCertificateAuthentication(a.authenticationType)) return 'certificate';
  return a.authenticationType === undefined || a.authenticationType.toLowerCase() === 'spnkey'
    ? 'secret'
    : undefined;
}
