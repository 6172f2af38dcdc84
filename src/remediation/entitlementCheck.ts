/**
 * The engine's own entitlement check (DESIGN invariant 8), right before a connection is given a
 * credential, and the recording of the binding the plan proved. Rotation and conversion use both.
 */
import { errorMessage } from '../telemetry';
import { bindingMatches, NOT_BOUND, recordProves } from './entitlement';
import { EngineFailure, type ConnectionTarget, type EngineDeps, type EngineResult } from './engine';
import type { RotationRecord, ServiceConnection } from './ports';

/**
 * Defence in depth for DESIGN invariant 8, right before a connection is given a new credential of
 * `appId`: the plan's entitlement when it is for that same app; else a verified rotation record of
 * that app (`record`, read under the lock); else a recorded binding for it. Refuses otherwise: a
 * stale plan (the connection was edited to name another app since) or a caller that skipped the
 * plan's gate gets nothing. A binding that cannot be read counts as none.
 */
export async function assertEntitled(
  target: ConnectionTarget,
  connection: ServiceConnection,
  appId: string,
  record: RotationRecord | undefined,
  deps: EngineDeps,
): Promise<void> {
  if (target.entitlement && target.entitlement.appId.toLowerCase() === appId.toLowerCase()) return;
  if (recordProves(record, target.connectionId, appId)) return;
  const binding = await deps.bindings?.getBinding(target.connectionId).catch(() => undefined);
  const tenantId = connection.authorization.parameters['tenantid'] ?? undefined;
  if (
    bindingMatches(binding, {
      organizationUrl: target.organizationUrl,
      connectionId: target.connectionId,
      appId,
      ...(tenantId ? { tenantId } : {}),
    })
  )
    return;
  throw new EngineFailure(
    'not-entitled',
    `The connection is ${NOT_BOUND} (app ${appId}); nothing was given to it.`,
  );
}

/**
 * Records the binding the plan proved by TestConnection, once a credential for the connection exists
 * (so a rotation refused by Graph or Key Vault writes nothing), at most once per result. A failed write is logged: the proof holds for this run, and
 * the next run proves it again.
 */
export async function recordBinding(
  target: ConnectionTarget,
  appId: string,
  deps: EngineDeps,
  result: EngineResult,
): Promise<void> {
  const binding = target.entitlement?.toRecord;
  if (
    !binding ||
    binding.appId.toLowerCase() !== appId.toLowerCase() ||
    !deps.bindings ||
    result.bindingRecorded
  )
    return;
  try {
    await deps.bindings.putBinding(binding);
    result.bindingRecorded = true;
    result.steps.push(`recorded the connection's binding to app ${binding.appId} (${binding.how})`);
  } catch (err) {
    deps.log.warn('Could not record the connection binding in Key Vault', {
      connectionId: binding.connectionId,
      error: errorMessage(err),
    });
  }
}
