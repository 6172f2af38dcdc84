/**
 * The `applied` and `verified` phases of a rotation: the new secret waited for until it gets a
 * token, written into the connection (creationMode Manual), and verified (token, TestConnection,
 * isReady). Nothing is removed here (invariant 2).
 */
import { redactor } from '../telemetry';
import { assertLeaseHeld, pollUntil, rejectedUpdate, verificationBackoff, EngineFailure } from './engine';
import { notWorking, readBackAndTest } from './reads';
import type { RotationRecord, ServiceConnection } from './ports';
import type { RotationContext } from './rotation';
import { SECRET_KIND } from './credentialKind';

/** Writes the new secret into the connection (creationMode Manual) and records phase `applied`. */
export async function applyToConnection(
  ctx: RotationContext,
  connection: ServiceConnection,
  record: RotationRecord,
  value: string,
): Promise<RotationRecord> {
  const { target, deps, result } = ctx;
  const kind = ctx.kind ?? SECRET_KIND;
  const body = kind.updateBody(connection, value);
  await assertLeaseHeld('updating the connection');
  await deps.devops.updateConnection(target.organizationUrl, body).catch((err: unknown) => {
    throw rejectedUpdate(err);
  });
  result.steps.push(
    connection.data['creationMode'] === 'Automatic'
      ? `updated the connection with the new ${kind.noun} (creationMode Automatic → Manual)`
      : `updated the connection with the new ${kind.noun}`,
  );
  return recordPhase(ctx, record, 'applied');
}

/**
 * Waits (with the verification backoff) until the new secret obtains a token from Entra ID, so no
 * connection is given a secret that does not work yet. The connection is left untouched when it
 * never does; the next run resumes from phase `created`.
 */
export async function awaitToken(
  ctx: RotationContext,
  connection: ServiceConnection,
  record: RotationRecord,
  value: string,
): Promise<void> {
  const { deps, settings, result } = ctx;
  const kind = ctx.kind ?? SECRET_KIND;
  const tenantId = connection.authorization.parameters['tenantid'] ?? '';
  const backoff = verificationBackoff(settings);
  const outcome = await pollUntil(deps.clock, backoff, async () => {
    const token = await kind.probe(deps, tenantId, record.appId, value);
    if (token.ok) return { done: true, value: undefined };
    return { done: false, problem: token.aadsts ? `AADSTS${token.aadsts}` : token.message };
  });
  if (outcome.done) {
    if (outcome.attempt > 1)
      result.steps.push(`the new ${kind.noun} gets a token (attempt ${outcome.attempt})`);
    return;
  }
  throw new EngineFailure(
    'verification-failed',
    `The new ${kind.noun} gets no token after ${backoff.attempts} attempts (${redactor.redact(outcome.problem)}); the connection was left unchanged.`,
    true,
  );
}

/**
 * Verification: the secret gets a token, TestConnection succeeds, the connection reads back ready.
 * `tokenConfirmed`: this run already saw the secret get a token (no need to ask again).
 */
export async function verify(
  ctx: RotationContext,
  connection: ServiceConnection,
  record: RotationRecord,
  value: string,
  tokenConfirmed = false,
): Promise<RotationRecord> {
  const { deps, settings, result } = ctx;
  const kind = ctx.kind ?? SECRET_KIND;
  const tenantId = connection.authorization.parameters['tenantid'] ?? '';
  const backoff = verificationBackoff(settings);
  const outcome = await pollUntil(deps.clock, backoff, async () => {
    const token = tokenConfirmed
      ? ({ ok: true } as const)
      : await kind.probe(deps, tenantId, record.appId, value);
    if (!token.ok)
      return {
        done: false,
        problem: `the new ${kind.noun} gets no token yet (${token.aadsts ? `AADSTS${token.aadsts}` : token.message})`,
      };
    // Read back first and test that (see `readBackAndTest`).
    const problem = notWorking(await readBackAndTest(ctx, connection));
    return problem ? { done: false, problem } : { done: true, value: undefined };
  });
  if (!outcome.done)
    // Invariant 2: nothing is removed; the next run resumes verification from the `applied` phase.
    throw new EngineFailure(
      'verification-failed',
      `Verification failed after ${backoff.attempts} attempts: ${redactor.redact(outcome.problem)}`,
      true,
    );
  result.steps.push(`verified: token, TestConnection and isReady (attempt ${outcome.attempt})`);
  return recordPhase(ctx, record, 'verified');
}

/** Records in Key Vault (and the result) that the rotation reached `phase`, and when. */
async function recordPhase(
  ctx: RotationContext,
  record: RotationRecord,
  phase: 'applied' | 'verified',
): Promise<RotationRecord> {
  await assertLeaseHeld(
    phase === 'applied'
      ? 'recording the applied phase in Key Vault'
      : 'recording the verification in Key Vault',
  );
  const at = ctx.deps.clock.now().toISOString();
  const stored = await ctx.deps.store.updateRecord({
    ...record,
    phase,
    ...(phase === 'applied' ? { appliedAt: at } : { verifiedAt: at }),
  });
  ctx.result.phase = phase;
  return stored;
}
