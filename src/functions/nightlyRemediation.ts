/**
 * `nightlyRemediation`: timer on `%REMEDIATION_SCHEDULE%`. After a random start jitter it discovers
 * and assesses every connection (read-only), records the run, and fans out one queue message per
 * connection that needs work, so a large tenant is spread over many short invocations and
 * instances (`remediateConnection`) instead of one long one. The timer only starts the work.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { services, withInvocation } from './context';
import type { WorkItem } from '../remediation/fanOut';
import { workQueueOutput } from './workQueue';

export async function nightlyRemediation(timer: Timer, context: InvocationContext): Promise<void> {
  await withInvocation(context, async () => {
    const svc = services();
    const telemetry = await svc.telemetry();
    try {
      const { jitterSeconds } = await svc.functionSettings();
      if (timer.isPastDue) context.warn('The timer is past due: running now.');
      const delayMs = Math.floor(svc.random() * jitterSeconds * 1000);
      if (delayMs > 0) {
        context.info(`Starting in ${Math.round(delayMs / 1000)} s (jitter).`);
        await svc.clock.sleep(delayMs);
      }
      const planned = await svc.planRun({ trigger: 'timer' });
      const messages: WorkItem[] = planned.messages;
      context.extraOutputs.set(workQueueOutput, messages);
      context.info(
        `Run ${planned.run.runId}: ${planned.run.total ?? 0} connection(s), ${messages.length} fanned out, status ${planned.run.status}.`,
      );
      if (planned.run.status === 'failed')
        // Fail visibly (the invocation shows as failed); no retry: the next schedule runs again.
        throw new Error(`Run ${planned.run.runId} failed: ${planned.run.error ?? 'see the run ledger'}`);
    } finally {
      await telemetry.flush();
    }
  });
}

app.timer('nightlyRemediation', {
  schedule: '%REMEDIATION_SCHEDULE%',
  runOnStartup: false,
  useMonitor: true,
  extraOutputs: [workQueueOutput],
  handler: nightlyRemediation,
});
