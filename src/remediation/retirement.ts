/**
 * Retirement of a connection that cannot be fixed: its app registration no longer exists, or it
 * stayed failed past `RETIRE_FAILED_AFTER_DAYS`. The UI cannot delete such connections (the first
 * field report); the REST API can: a delete with `deep=false` leaves Azure and the app registration
 * alone, so it goes through directly, Automatic or not (spec: `deep` = "delete the spn created by
 * endpoint"): record → delete with `deep=false` and every project id. No update comes first: a PUT
 * would be one more write, and one more way to fail, for a connection about to go.
 *
 * Nothing is lost: the whole definition (confidential parameters removed) is written to the run
 * ledger before anything changes, and the ledger is required — without it nothing is retired.
 *
 * Needs: Azure DevOps service connection Administrator (organization level); Storage Blob Data
 * Contributor on the function's storage account (the ledger).
 */
import { errorMessage } from '../telemetry';
import { withoutSecrets } from './federation';
import type { ProjectRef, RetiredConnectionRecord } from './ports';
import {
  classify,
  EngineFailure,
  type ConnectionTarget,
  type EngineDeps,
  type EngineResult,
} from './rotation';

export interface RetirementTarget extends ConnectionTarget {
  organization: string;
  projects: ProjectRef[];
  reason: string;
  runId?: string;
}

/**
 * Retires one connection: records its definition in the run ledger and deletes it from every
 * project it is shared with (`deep=false`: the app registration, if any, is left alone).
 */
export async function retireConnection(target: RetirementTarget, deps: EngineDeps): Promise<EngineResult> {
  const result: EngineResult = { outcome: 'failed', action: 'delete', removedKeyIds: [], steps: [] };
  const ledger = deps.retirements;
  if (!ledger) {
    result.error = {
      code: 'not-configured',
      message:
        'Retirement needs the run ledger (AzureWebJobsStorage) to keep the definition of the deleted connection; nothing was deleted.',
      transient: false,
    };
    return result;
  }
  const lease = await deps.locks.tryAcquire(`connection-${target.connectionId}`, 60);
  if (!lease) {
    result.outcome = 'skipped';
    result.error = {
      code: 'lock-held',
      message: 'Another operation on this connection is in progress.',
      transient: true,
    };
    return result;
  }
  try {
    const connection = await deps.devops
      .getConnection(target.organizationUrl, target.project, target.connectionId)
      .catch((err: unknown) => {
        throw classify(err, 'reading the connection');
      });
    if (!connection) throw new EngineFailure('connection-not-found', 'The connection no longer exists.');
    const record: RetiredConnectionRecord = {
      organization: target.organization,
      organizationUrl: target.organizationUrl,
      connectionId: connection.id,
      connectionName: connection.name,
      projects: connection.serviceEndpointProjectReferences.map((r) => ({
        id: r.projectReference.id,
        name: r.projectReference.name ?? r.projectReference.id,
      })),
      reason: target.reason,
      recordedAt: deps.clock.now().toISOString(),
      definition: withoutSecrets(connection),
      ...(target.runId ? { runId: target.runId } : {}),
    };
    // Nothing is changed before the definition is safe in the ledger.
    await ledger.recordRetired(record).catch((err: unknown) => {
      throw new EngineFailure(
        'service-error',
        `recording the definition in the run ledger: ${errorMessage(err)}`,
        true,
      );
    });
    result.retired = { recordedAt: record.recordedAt };
    result.steps.push('recorded the full definition (no secret) in the run ledger');

    const projectIds = record.projects.map((p) => p.id);
    if (projectIds.length === 0) projectIds.push(target.project);
    await deps.devops
      .deleteConnection(target.organizationUrl, connection.id, projectIds, false)
      .catch((err: unknown) => {
        throw classify(err, 'deleting the connection');
      });
    const deletedAt = deps.clock.now().toISOString();
    result.steps.push(
      `deleted from ${projectIds.length} project(s) with deep=false (the app registration is left alone)`,
    );
    await ledger.recordRetired({ ...record, deletedAt }).catch((err: unknown) =>
      // Deleted, and the definition is recorded: only the deletion time is missing.
      deps.log.warn('Could not note the deletion time in the run ledger', { error: errorMessage(err) }),
    );
    result.retired = { recordedAt: record.recordedAt, deletedAt };
    result.outcome = 'succeeded';
  } catch (err) {
    result.error = classify(err, 'retirement').toError();
    deps.log.warn('Retirement failed', { connectionId: target.connectionId, message: result.error.message });
  } finally {
    await lease.release().catch(() => undefined);
  }
  return result;
}
