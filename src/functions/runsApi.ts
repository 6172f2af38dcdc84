/**
 * The HTTP API's runs (JSON; see `./http` for access, validation and error answers):
 *
 *   POST /api/runs                                          start a full run: 202 with its run id
 *   GET  /api/runs                                          recent runs (?limit=1..100)
 *   GET  /api/runs/{runId}                                  one run, with its report once complete
 */
import { app, type HttpRequest, type InvocationContext } from '@azure/functions';
import { services } from './context';
import {
  apiHandler,
  booleanQuery,
  checkQuery,
  guidParam,
  HttpError,
  json,
  limitQuery,
  parseRunBody,
  readJsonBody,
  ROLES,
} from './http';
import { workQueueOutput } from './workQueue';

/** `POST /api/runs` — plans the run now, fans its work out to the queue, answers 202. */
export async function startRun(request: HttpRequest, context: InvocationContext) {
  return apiHandler(ROLES.operator, async () => {
    checkQuery(request, ['dryRun']);
    const queryDryRun = booleanQuery(request, 'dryRun');
    const body = parseRunBody(await readJsonBody(request));
    const svc = services();
    const planned = await svc.planRun({
      trigger: 'http',
      dryRun: queryDryRun ?? body.dryRun ?? false,
    });
    context.extraOutputs.set(workQueueOutput, planned.messages);
    const location = `/api/runs/${planned.run.runId}`;
    return json(
      202,
      {
        runId: planned.run.runId,
        status: planned.run.status,
        dryRun: planned.run.dryRun,
        total: planned.run.total ?? 0,
        expected: planned.run.expected,
        problems: planned.problems,
        location,
      },
      { location },
    );
  })(request, context);
}

/** `GET /api/runs[?limit=n]` */
export const listRuns = apiHandler(ROLES.reader, async (request) => {
  checkQuery(request, ['limit']);
  const limit = limitQuery(request, 20);
  const runs = await (await services().ledger()).listRuns(limit);
  return json(200, { runs });
});

/** `GET /api/runs/{runId}` */
export const getRun = apiHandler(ROLES.reader, async (request) => {
  checkQuery(request, []);
  const runId = guidParam(request, 'runId', 'invalid-run-id', 'run id');
  const ledger = await services().ledger();
  const run = await ledger.getRun(runId);
  if (!run) throw new HttpError(404, 'run-not-found', `No run ${runId}.`);
  const report = run.status === 'completed' ? await ledger.getReport(runId) : undefined;
  return json(200, { run, report });
});

app.http('startRun', {
  route: 'runs',
  methods: ['POST'],
  authLevel: 'function',
  extraOutputs: [workQueueOutput],
  handler: startRun,
});
app.http('listRuns', { route: 'runs', methods: ['GET'], authLevel: 'function', handler: listRuns });
app.http('getRun', { route: 'runs/{runId}', methods: ['GET'], authLevel: 'function', handler: getRun });
