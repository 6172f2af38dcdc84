/**
 * The decision (pure): the final plan for one connection once its policy choice (policyFile.ts:
 * the policy file's format and which rule applies), explicit requests (`sc-remediator convert`,
 * `retire`, `revert`), retirement settings and conversion state are taken into account.
 */
import type { Assessment } from './assess';
import { conversionEligibility, isWorkloadIdentity, revertDeadlineOf } from './federation';
import type { Plan } from './plan';
import type { PolicyDecision } from './policyFile';
import type { ConversionPath, ConversionRecord, ServiceConnection } from './ports';
import type { Action } from './report';
import { isCertificateAuthentication } from './transform';

/** What a person asked for explicitly (CLI command or HTTP call) for this one connection. */
export type Intent = 'convert' | 'revert' | 'retire';

export interface DecisionInput {
  assessment: Assessment;
  /** The plan for the connection as the rotation engine sees it. */
  plan: Plan;
  connection: ServiceConnection;
  policy: PolicyDecision;
  intent?: Intent;
  retirement: {
    /** `ENABLE_RETIREMENT`. */
    enabled: boolean;
    /** `RETIRE_FAILED_AFTER_DAYS` (undefined or 0: only connections whose app is gone). */
    failedAfterDays?: number;
    /** The run ledger is there to keep retired definitions. */
    ledger: boolean;
  };
  /** Since when the connection has been seen failing (run ledger), if known. */
  failingSince?: string;
  /** The connection's conversion record (Key Vault), if any. */
  conversion?: ConversionRecord;
  now: Date;
  oldSecretRetentionHours: number;
}

/** The plan after policy, plus what the report notes beside it. */
interface Decision {
  plan: Plan;
  convertible?: ConversionPath;
  retirable?: boolean;
}

const CHANGES: readonly Action[] = ['rotate-secret', 'repair', 'convert-to-wif', 'delete'];
const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;

function replan(
  base: Plan,
  action: Action,
  reason: string,
  steps: string[],
  extra: Partial<Plan> = {},
): Plan {
  const plan: Plan = {
    action,
    reason,
    steps,
    previousKeyIds: base.previousKeyIds,
    orphanKeyIds: base.orphanKeyIds,
    warnings: base.warnings,
    ...extra,
  };
  return plan;
}

function conversionSteps(
  a: Assessment,
  path: 'azure-devops' | 'federated-credential',
  needsFallbackSecret: boolean,
  retentionHours: number,
): string[] {
  if (path === 'azure-devops')
    return [
      'Record the conversion in Key Vault (phase started)',
      "PUT the connection with authorization.scheme WorkloadIdentityFederation and ?operation=ConvertAuthenticationScheme, as Microsoft's conversion script does: Azure DevOps adds the federated credential to the app it created and keeps the secret for its 7-day revert window (phase converted)",
      "Verify: TestConnection succeeds with the federated credential and the connection reads back isReady (phase verified); otherwise undo it with Azure DevOps' revert, back on the secret",
      `After the ${retentionHours} h retention period and Azure DevOps' revert window, remove the secret the connection used${a.previousKeyIds.length > 0 ? ` (${a.previousKeyIds.join(', ')})` : ' when it is known, and expired ones'} (phase completed)`,
    ];
  const noun = isCertificateAssessment(a) ? 'certificate' : 'secret';
  return [
    ...(needsFallbackSecret
      ? [
          `Rotate the ${noun} first, so Key Vault holds a verified ${noun} to fall back on (Azure DevOps never returns the one it stores)`,
        ]
      : []),
    'Record the conversion in Key Vault (phase started)',
    `PUT the connection (organization level) with scheme WorkloadIdentityFederation, creationMode Manual and no ${noun}; read the issuer and subject Azure DevOps expects from its answer (phase converted)`,
    `Add a federated identity credential with that issuer, subject and audience api://AzureADTokenExchange to app ${a.appId ?? ''} through Microsoft Graph`,
    `Verify: TestConnection succeeds with the federated credential and the connection reads back isReady (phase verified); otherwise put the ${noun} from Key Vault back${noun === 'certificate' ? ' (spnCertificate)' : ''} and remove the federated credential`,
    `After the ${retentionHours} h retention period, remove the old ${noun}(s) from the app${noun === 'certificate' ? "'s keyCredentials" : ''} (phase completed)`,
  ];
}

/** A certificate connection (`spnCertificate`): it converts and falls back with a certificate. */
function isCertificateAssessment(a: Assessment): boolean {
  return isCertificateAuthentication(a.authenticationType);
}

/**
 * The final plan for one connection. In order:
 * 1. a conversion in progress is resumed (or, asked to, reverted);
 * 2. an unrecoverable connection (app gone; or failing for `failedAfterDays`; or failing at all when
 *    retirement is asked for explicitly) is retired when retirement is on (`ENABLE_RETIREMENT`, or
 *    `sc-remediator retire … --yes`) and the run ledger is there to keep its definition;
 * 3. a convertible connection is converted when the policy says `convert-to-wif` or a person asked
 *    — never otherwise; a rotation already under way is finished first; a conversion that was
 *    reverted or failed is not retried by policy, only on request;
 * 4. otherwise the rotation plan stands;
 * and last, `report-only` turns anything that would change the connection into a report.
 */
export function decide(input: DecisionInput): Decision {
  const { assessment: a, plan: base, connection, policy, intent, retirement, now } = input;
  const retention = input.oldSecretRetentionHours;
  const by = policy.source;
  const eligibility = conversionEligibility(a);
  const convertible = 'path' in eligibility ? eligibility.path : undefined;
  let retirable: boolean | undefined;
  let plan = base;

  const finish = (p: Plan): Decision => {
    let out = p;
    if (policy.choice === 'report-only' && CHANGES.includes(out.action))
      out = replan(
        out,
        'report',
        `Policy report-only (${by}): would ${out.action}: ${out.reason}`,
        out.steps.map((s) => `(not done) ${s}`),
      );
    const d: Decision = { plan: out };
    if (convertible && !isWorkloadIdentity(connection)) d.convertible = convertible;
    if (retirable) d.retirable = true;
    return d;
  };

  // Every early answer is the rotation plan replanned, then finished as the last one is.
  const answer = (action: Action, reason: string, steps: string[], extra?: Partial<Plan>): Decision =>
    finish(replan(base, action, reason, steps, extra));

  if (policy.choice === 'exclude')
    return answer('report', `Excluded by ${by}: the service does not act on this connection.`, []);
  if (intent && policy.choice === 'report-only')
    return answer('report', `Not done: ${by} is report-only for this connection.`, []);

  // 1. Conversions under way, and reverts.
  const record = input.conversion;
  // What the connection held before its conversion: what a revert puts back, and the clean-up removes.
  const noun = record?.credential === 'certificate' ? 'certificate' : 'secret';
  if (isWorkloadIdentity(connection)) {
    const deadline = revertDeadlineOf(connection);
    if (intent === 'revert') {
      const ours =
        record?.path === 'federated-credential' &&
        ['started', 'converted', 'verified'].includes(record.phase);
      const adoOpen = deadline !== undefined && Date.parse(deadline) > now.getTime();
      if (ours || adoOpen)
        return answer(
          'convert-to-wif',
          ours
            ? `Revert the conversion: put the ${noun} kept in Key Vault back into the connection.`
            : `Revert the conversion with Azure DevOps' own revert (open until ${deadline ?? ''}).`,
          ours
            ? [
                noun === 'certificate'
                  ? 'PUT the connection back to ServicePrincipal (spnCertificate, Manual) with the certificate from Key Vault'
                  : 'PUT the connection back to ServicePrincipal (Manual) with the secret from Key Vault',
                'Remove the federated credential this service added',
                'Verify: TestConnection and isReady',
              ]
            : [
                "PUT the connection with scheme ServicePrincipal and ?operation=ConvertAuthenticationScheme (Azure DevOps' revert)",
                'Verify: TestConnection and isReady',
              ],
          { conversion: { kind: 'revert', path: ours ? 'federated-credential' : 'azure-devops' } },
        );
      return answer(
        'report',
        deadline
          ? `Cannot revert: Azure DevOps' revert window closed on ${deadline}, and this service keeps no secret for it.`
          : record?.phase === 'completed'
            ? `Cannot revert: the old ${noun} was removed after the retention period.`
            : 'Cannot revert: the connection was not converted by this service or by Azure DevOps.',
        [],
      );
    }
    if (record && (record.phase === 'started' || record.phase === 'converted'))
      return answer(
        'convert-to-wif',
        `Resume the conversion, which stopped in phase '${record.phase}'.`,
        [
          `Verify with TestConnection; back on the ${noun} if it fails`,
          `Remove the old ${noun} after the retention period`,
        ],
        { conversion: { kind: 'resume', path: record.path } },
      );
    if (record?.phase === 'verified') {
      const dueMs = Math.max(
        Date.parse(record.verifiedAt ?? record.startedAt) + retention * HOUR_MS,
        record.revertDeadline ? Date.parse(record.revertDeadline) : 0,
      );
      if (now.getTime() >= dueMs)
        return answer(
          'convert-to-wif',
          `The conversion is verified and the retention period has passed: remove the old ${noun}.`,
          [`Remove the ${noun} the connection used before the conversion (phase completed)`],
          { conversion: { kind: 'resume', path: record.path } },
        );
      const note = `Converted to workload identity federation; the old ${noun} is removed after ${new Date(dueMs).toISOString()}.`;
      // A converted connection that broke since is still reported as broken.
      plan =
        base.action === 'none'
          ? replan(base, 'none', note, [])
          : { ...base, reason: `${base.reason} ${note}` };
    }
  } else if (intent === 'revert') {
    return answer('report', `Nothing to revert: the connection uses ${connection.authorization.scheme}.`, []);
  }

  // 2. Retirement.
  const failingDays =
    input.failingSince !== undefined ? (now.getTime() - Date.parse(input.failingSince)) / DAY_MS : undefined;
  const failedTooLong =
    !a.isReady &&
    retirement.failedAfterDays !== undefined &&
    retirement.failedAfterDays > 0 &&
    failingDays !== undefined &&
    failingDays >= retirement.failedAfterDays;
  const gone = a.finding === 'app-missing';
  // Never a connection of another tenant's app: nothing here can tell whether it is gone.
  const candidate =
    a.finding !== 'error' &&
    a.foreignTenant === undefined &&
    (gone || failedTooLong || (intent === 'retire' && !a.isReady));
  const why = gone
    ? `its app registration ${a.appId ?? '(none)'} no longer exists`
    : failedTooLong
      ? `it has been failing since ${input.failingSince ?? ''} (more than ${retirement.failedAfterDays ?? 0} days)`
      : 'it is failing and its retirement was requested';
  if (intent === 'retire' && !candidate)
    return answer(
      'report',
      a.finding === 'error'
        ? 'Not retired: the connection could not be assessed.'
        : 'Not retired: the connection is ready and its app exists; only unrecoverable connections are retired.',
      [],
    );
  if (candidate) {
    if (retirement.enabled || intent === 'retire') {
      if (!retirement.ledger)
        return answer(
          'report',
          `Would be retired (${why}), but retirement needs the run ledger (AzureWebJobsStorage) to keep the connection's definition; nothing is deleted without it.`,
          [],
        );
      return answer(
        'delete',
        `Retire the connection: ${why}.`,
        [
          'Record its full definition (confidential parameters removed) in the run ledger',
          ...(a.creationMode?.toLowerCase() === 'manual'
            ? []
            : [
                `PUT it with creationMode Manual (from ${a.creationMode ?? 'unset'}), so Azure DevOps leaves Azure alone`,
              ]),
          `DELETE it (organization level) with deep=false and the ids of its ${a.projects.length} project(s)`,
        ],
        { retirement: { reason: why } },
      );
    }
    retirable = true;
    plan = {
      ...plan,
      reason: `${plan.reason} Retirement candidate (${why}); retirement is off (ENABLE_RETIREMENT).`,
    };
  }

  // 3. Conversion: only by explicit policy or request.
  const wanted = intent === 'convert' || policy.choice === 'convert-to-wif';
  if (wanted && !isWorkloadIdentity(connection)) {
    if (!convertible) {
      const reason = 'reason' in eligibility ? eligibility.reason : 'it is not convertible';
      if (intent === 'convert') return answer('report', `Cannot convert: ${reason}.`, []);
      plan = { ...plan, reason: `${plan.reason} Not converted (${by} asks for it): ${reason}.` };
    } else if (
      base.action === 'rotate-secret' &&
      (base.resumeFrom === 'created' || base.resumeFrom === 'applied')
    ) {
      plan = { ...plan, reason: `${plan.reason} The conversion follows once this rotation is verified.` };
    } else if (!intent && record && (record.phase === 'reverted' || record.phase === 'failed')) {
      plan = {
        ...plan,
        reason: `${plan.reason} Not converted again: the last conversion was ${record.phase} (${record.revertedAt ?? record.failedAt ?? ''}${record.note ? `: ${record.note}` : ''}); run 'sc-remediator convert' to try again.`,
      };
    } else {
      // A certificate connection falls back on a certificate, never on a secret (and vice versa).
      const fallback = isCertificateAssessment(a) ? a.verifiedCertificate : a.verifiedSecret;
      const needsFallbackSecret = convertible === 'federated-credential' && fallback === undefined;
      return answer(
        'convert-to-wif',
        `${intent === 'convert' ? 'Conversion requested' : `Conversion by ${by}`}: ${
          convertible === 'azure-devops'
            ? 'Azure DevOps created this connection and one project uses it, so its own conversion is used.'
            : 'the federated credential is added to the app through Microsoft Graph.'
        }`,
        conversionSteps(a, convertible, needsFallbackSecret, retention),
        {
          conversion: { kind: 'convert', path: convertible, needsFallbackSecret },
          // What the connection is known to use now: superseded by the fallback rotation or the conversion.
          previousKeyIds: a.previousKeyIds,
        },
      );
    }
  }

  // 4. The rotation plan.
  return finish(plan);
}
