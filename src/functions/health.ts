/**
 * `GET /api/health` (anonymous): liveness for probes and load balancers. Checks only that the
 * settings are valid (never their values) and loads no Azure SDK, so it stays fast on a cold start.
 * 200 `{ status: 'ok' }`, or 503 `{ status: 'unhealthy', checks: { configuration: 'invalid' } }`.
 */
import { app, type HttpRequest, type InvocationContext } from '@azure/functions';
import { services } from './context';
import { apiHandler, json } from './http';

const started = new Date().toISOString();

export async function health(request: HttpRequest, context: InvocationContext) {
  return apiHandler('anonymous', async () => {
    let configuration: 'ok' | 'invalid' = 'ok';
    try {
      await services().config();
      await services().functionSettings();
    } catch {
      configuration = 'invalid';
    }
    const ok = configuration === 'ok';
    return json(ok ? 200 : 503, {
      status: ok ? 'ok' : 'unhealthy',
      checks: { configuration },
      startedAt: started,
      time: new Date().toISOString(),
    });
  })(request, context);
}

app.http('health', { route: 'health', methods: ['GET'], authLevel: 'anonymous', handler: health });
