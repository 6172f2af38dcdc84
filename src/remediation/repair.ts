/**
 * Repairs without a new secret, each under the connection's lock: a connection broken by a
 * null/empty `accesstoken` or edited into a broken state (`repairConnection`), credentials a crash
 * left behind (`removeOrphanCredentials`, invariant 4), a soft-deleted rotation record
 * (`recoverRotationRecord`, invariant 10).
 */
import { redactor } from '../telemetry';
import { assertLeaseHeld, rejectedUpdate, underConnectionLock, EngineFailure } from './engine';
import type { ConnectionTarget, EngineDeps, EngineResult, LockSettings } from './engine';
import { appIdOf, isExpired, readApp, readBackAndTest, readSecretConnection } from './reads';
import { judgeMarked, resolveMissingRecord } from './orphans';
import { toManualUpdateBody } from './transform';

/**
 * Repairs a connection without a new secret: drops a null/empty `accesstoken` (the UI bug that
 * breaks connections) and, when Key Vault holds a verified secret this service set and the app
 * still has it, writes that secret back into a connection that lost it.
 *
 * Fixes: "Failed to get Azure DevOps Service access token, cache value is invalid"; a connection
 * edited into a broken state after a rotation. Needs: service connection Administrator; Key Vault
 * Secrets User (read) when re-applying.
 */
export async function repairConnection(
  target: ConnectionTarget,
  deps: EngineDeps,
  settings: LockSettings = {},
): Promise<EngineResult> {
  return underConnectionLock(target, deps, settings, { action: 'repair', during: 'repair' }, async (ctx) => {
    const { result } = ctx;
    const connection = await readSecretConnection(ctx);
    const appId = appIdOf(connection);
    const record = await deps.store.getRecord(target.connectionId);
    let value: string | undefined;
    // Invariant 8: the secret goes back only into the connection it was verified in, and only while
    // that connection still names the same app (the record is its proof of entitlement).
    if (
      record &&
      appId &&
      record.appId === appId &&
      (record.phase === 'verified' || record.phase === 'completed')
    ) {
      const app = await readApp(appId, deps);
      const credential = app.passwordCredentials.find((c) => c.keyId === record.keyId);
      if (credential && !isExpired(credential, deps.clock.now())) {
        value = await deps.store.getSecretValue(target.connectionId);
        redactor.register(value);
      }
    }
    const hadAccessToken = 'accesstoken' in connection.authorization.parameters;
    await assertLeaseHeld('updating the connection');
    await deps.devops
      .updateConnection(target.organizationUrl, toManualUpdateBody(connection, value))
      .catch((err: unknown) => {
        throw rejectedUpdate(err);
      });
    if (hadAccessToken) result.steps.push('removed the invalid accesstoken parameter');
    if (value) {
      result.keyId = record?.keyId;
      result.secretExpiresAt = record?.expiresAt;
      result.steps.push('re-applied the verified secret kept in Key Vault');
    }
    const { test, isReady } = await readBackAndTest(ctx, connection);
    if (!test.ok || !isReady)
      throw new EngineFailure(
        'verification-failed',
        `After the repair the connection is still not working: ${test.ok ? `isReady=${String(isReady)}` : `TestConnection ${test.statusCode}: ${test.errorMessage}`}`,
      );
    result.steps.push('verified: TestConnection and isReady');
  });
}

/**
 * Removes credentials marked for this connection that no rotation record accounts for: what a crash
 * between Graph and Key Vault leaves behind (invariant 4). Their values were never stored anywhere,
 * so nothing can be using them. Needs: Graph Application.ReadWrite.OwnedBy (owner of the app).
 */
export async function removeOrphanCredentials(
  target: ConnectionTarget,
  orphanKeyIds: string[],
  deps: EngineDeps,
  settings: LockSettings = {},
): Promise<EngineResult> {
  const operation = { action: 'repair', during: 'removing orphaned credentials' } as const;
  return underConnectionLock(target, deps, settings, operation, async (ctx) => {
    const { result } = ctx;
    const connection = await readSecretConnection(ctx);
    const appId = appIdOf(connection);
    if (!appId)
      throw new EngineFailure('not-a-secret-connection', 'The connection names no service principal.');
    const app = await readApp(appId, deps);
    let record = await deps.store.getRecord(target.connectionId);
    let intent = record?.intent;
    if (!record) {
      const found = await resolveMissingRecord(target.connectionId, deps, true);
      record = found.record;
      intent = found.missing?.intent ?? record?.intent;
    }
    // Judged again under the lock: only credentials still proven orphans are removed.
    const { orphans } = judgeMarked(app.passwordCredentials, target.connectionId, {
      record,
      intent,
      now: deps.clock.now(),
    });
    for (const credential of orphans) {
      if (!orphanKeyIds.includes(credential.keyId)) continue;
      // Re-checked under the lock above (judgeMarked); the lease is checked before each removal.
      await assertLeaseHeld('removing an orphaned credential');
      await deps.graph.removePassword(app.id, credential.keyId);
      result.removedKeyIds.push(credential.keyId);
      result.steps.push(`removed orphaned credential ${credential.keyId}`);
    }
  });
}

/**
 * Recovers a connection's soft-deleted rotation record (DESIGN invariant 10): the next assessment
 * decides with it. Needs: Key Vault secrets/recover (Key Vault Secrets Officer).
 */
export async function recoverRotationRecord(
  target: ConnectionTarget,
  deps: EngineDeps,
  settings: LockSettings = {},
): Promise<EngineResult> {
  const operation = { action: 'repair', during: 'recovering the rotation record' } as const;
  return underConnectionLock(target, deps, settings, operation, async ({ result }) => {
    const record = await deps.store.recoverRecord(target.connectionId);
    result.steps.push(
      record
        ? `recovered the soft-deleted rotation record (rotation ${record.rotationId}, phase ${record.phase})`
        : 'recovered the soft-deleted rotation intent',
    );
  });
}
