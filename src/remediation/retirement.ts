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
import { assertLeaseHeld, classify, notConfigured, underConnectionLock, EngineFailure } from './engine';
import type { ConnectionTarget, EngineDeps, EngineResult, LockSettings } from './engine';
import { readConnection } from './reads';

interface RetirementTarget extends ConnectionTarget {
  organization: string;
  projects: ProjectRef[];
  reason: string;
  runId?: string;
}

/**
 * Retires one connection: records its definition in the run ledger and deletes it from every
 * project it is shared with (`deep=false`: the app registration, if any, is left alone).
 */
export async function retireConnection(
  target: RetirementTarget,
  deps: EngineDeps,
  settings: LockSettings = {},
): Promise<EngineResult> {
  const ledger = deps.retirements;
  if (!ledger)
    return notConfigured(
      'delete',
      'Retirement needs the run ledger (AzureWebJobsStorage) to keep the definition of the deleted connection; nothing was deleted.',
    );
  const operation = { action: 'delete', during: 'retirement' } as const;
  return underConnectionLock(target, deps, settings, operation, async (ctx) => {
    const { result } = ctx;
    const connection = await readConnection(ctx);
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
    await assertLeaseHeld('deleting the connection');
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
  });
}
