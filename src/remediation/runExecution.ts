/**
 * Carrying a plan out: `execute` runs the plan's steps (`planSteps`) one at a time, each one
 * operation under the connection's lock, and `applyResult` writes what they did into the report.
 */
import type { AppUsage } from './census';
import { convertConnection, revertConversion } from './conversion';
import { addPasswordRefusal, diagnoseError, diagnosisOf } from './diagnosis';
import type { ConnectionTarget, EngineDeps, EngineResult } from './engine';
import type { Operation, PlanStep } from './planSteps';
import { recoverRotationRecord, removeOrphanCredentials, repairConnection } from './repair';
import type { ConnectionReport } from './report';
import { retireConnection } from './retirement';
import { rotateConnection } from './rotation';
import type { RunSettings } from './runInputs';
import { conversionSummary, type Prepared } from './runPlanning';

/**
 * Runs the prepared plan's steps in order: a follow-up step only when the previous result allows it
 * (`PlanStep.when`), then with the previous result's step log, removed credentials and recorded
 * binding carried into its own. Undefined when nothing ran.
 */
export async function execute(
  prepared: Prepared,
  deps: EngineDeps,
  settings: RunSettings,
  usage: AppUsage | undefined,
): Promise<EngineResult | undefined> {
  const { discovered, assessment, plan: thePlan } = prepared;
  const project = discovered.projects[0];
  if (!project) return undefined;
  const target: ConnectionTarget = {
    organizationUrl: discovered.organizationUrl,
    project: project.id,
    connectionId: discovered.connection.id,
    previousKeyIds: thePlan.previousKeyIds,
    passwordPolicy: assessment.passwordPolicy,
    // Checked again under the lock: a plan made before another run's rotation is not carried out.
    plannedFrom: prepared.record
      ? { rotationId: prepared.record.rotationId, phase: prepared.record.phase }
      : null,
    // A fresh read of the app is not repeated under the lock (see rotation's `reusableApp`).
    ...(prepared.app ? { app: prepared.app } : {}),
    ...(usage ? { usage } : {}),
    // Checked again by the engine right before a credential is given.
    ...(prepared.entitlement?.bound && prepared.entitlement.how
      ? {
          entitlement: {
            appId: prepared.entitlement.appId,
            how: prepared.entitlement.how,
            ...(prepared.entitlement.toRecord ? { toRecord: prepared.entitlement.toRecord } : {}),
          },
        }
      : {}),
  };
  let result: EngineResult | undefined;
  for (const step of prepared.planSteps) {
    if (result && !followsFrom(step, result)) {
      if (step.log?.ifNotRun) result.steps.push(step.log.ifNotRun);
      break;
    }
    const next = await perform(
      step.operation,
      result ? after(result, target) : target,
      prepared,
      deps,
      settings,
    );
    result = result ? carryOver(result, next, step) : next;
  }
  return result;
}

/** Whether a follow-up step runs after the previous step's result. */
function followsFrom(step: PlanStep, previous: EngineResult): boolean {
  switch (step.when) {
    case 'previous-succeeded':
      return previous.outcome === 'succeeded';
    case 'previous-verification-failed':
      return previous.outcome === 'failed' && previous.error?.code === 'verification-failed';
    default:
      return true;
  }
}

/**
 * The target of a follow-up step. After a step that succeeded, the plan's read of the record is out
 * of date (the step moved it on under the lock: not checked again) and the binding is recorded.
 */
function after(previous: EngineResult, target: ConnectionTarget): ConnectionTarget {
  if (previous.outcome !== 'succeeded') return target;
  return {
    ...target,
    plannedFrom: undefined,
    ...(target.entitlement ? { entitlement: { ...target.entitlement, toRecord: undefined } } : {}),
  };
}

/** The follow-up's result, with what the previous step did before it. */
function carryOver(previous: EngineResult, next: EngineResult, step: PlanStep): EngineResult {
  const label = step.log?.earlierAs;
  next.steps = [
    ...previous.steps.map((s) => (label ? `${label}: ${s}` : s)),
    ...(step.log?.before ? [step.log.before] : []),
    ...next.steps,
  ];
  next.removedKeyIds = [...previous.removedKeyIds, ...next.removedKeyIds];
  if (previous.bindingRecorded) next.bindingRecorded = true;
  return next;
}

/** One operation on the connection. */
function perform(
  operation: Operation,
  target: ConnectionTarget,
  prepared: Prepared,
  deps: EngineDeps,
  settings: RunSettings,
): Promise<EngineResult> {
  switch (operation.kind) {
    case 'rotate':
      return rotateConnection(target, deps, {
        ...settings,
        secretLifetimeDays: operation.secretLifetimeDays ?? settings.secretLifetimeDays,
      });
    case 'convert':
      return convertConnection({ ...target, path: operation.path }, deps, settings);
    case 'revert-conversion':
      return revertConversion(target, deps, settings);
    case 'retire':
      return retireConnection(
        {
          ...target,
          organization: prepared.report.organization,
          projects: prepared.discovered.projects,
          reason: operation.reason,
          runId: prepared.runId,
        },
        deps,
        settings,
      );
    case 'recover-record':
      return recoverRotationRecord(target, deps, settings);
    case 'remove-orphans':
      return removeOrphanCredentials(target, operation.orphanKeyIds, deps, settings);
    case 'repair-connection':
      return repairConnection(target, deps, settings);
  }
}

export function applyResult(report: ConnectionReport, result: EngineResult): void {
  report.outcome = result.outcome;
  report.steps = result.steps;
  if (result.phase) report.phase = result.phase;
  if (result.cleanupDueAt) report.cleanupDueAt = result.cleanupDueAt;
  else delete report.cleanupDueAt;
  if (result.cleanup) report.cleanup = result.cleanup;
  if (result.outcome === 'succeeded' && result.secretExpiresAt) {
    report.newSecretExpiresAt = result.secretExpiresAt;
  }
  if (result.conversion) {
    report.conversion = conversionSummary(result.conversion);
    // Converted: no longer a connection that could leave its secret behind.
    if (['converted', 'verified', 'completed'].includes(result.conversion.phase)) delete report.convertible;
  }
  if (result.retired) report.retired = result.retired;
  if (result.bindingRecorded && report.entitlement) report.entitlement.recorded = true;
  const error = result.error;
  if (!error) return;
  report.error = error.message;
  if (result.outcome !== 'failed') return;
  // What the failure says about the connection, for the operator.
  if (error.code === 'state-lost') {
    // Found under the lock (the plan did not see it): the same verdict as assessment's.
    report.finding = 'error';
    report.diagnosis = diagnosisOf('rotation-state-lost');
    return;
  }
  if (error.code === 'blocked-by-policy') {
    report.finding = 'blocked-by-policy';
    // Which refusal, by Graph's error code (see addPasswordRefusal); a policy read up front says policy.
    const refusal =
      error.status !== undefined
        ? addPasswordRefusal({ status: error.status, code: error.serviceCode, message: error.message })
        : undefined;
    report.diagnosis = diagnosisOf(refusal ?? 'password-policy', error.serviceCode);
    return;
  }
  const diagnosis = diagnoseError({
    message: error.message,
    status: error.status,
    code: error.serviceCode,
    service: error.service,
  });
  if (diagnosis.kind !== 'unknown') report.diagnosis = diagnosis;
}
