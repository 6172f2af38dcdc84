/**
 * The HTTP API (JSON, `authLevel: function`, POST only as `application/json`; a caller signed in
 * through App Service Authentication, `Remediation.Reader` reads and `Remediation.Operator` writes;
 * without App Service Authentication a 401, see `authorize` in `./http`):
 *
 *   GET  /api/connections                                   latest run's report (?refresh=true: assess now)
 *   GET  /api/connections/{organization}/{connectionId}     one connection, assessed now
 *   POST /api/connections/{organization}/{connectionId}/remediate   fix it now (?dryRun=true); the outcome
 *   POST /api/connections/{organization}/{connectionId}/convert     convert it to workload identity federation (?dryRun=true)
 *   POST /api/connections/{organization}/{connectionId}/revert      revert its conversion while still possible
 *   POST /api/connections/{organization}/{connectionId}/retire?confirm=true   delete it (unrecoverable only; definition kept)
 *   POST /api/connections/{organization}/{connectionId}/approve  body {"appId"}: entitle it to that app (the one it names)
 *   GET  /api/retired                                       retired connections' recorded definitions (?limit=1..100)
 *   POST /api/runs                                          start a full run: 202 with its run id
 *   GET  /api/runs                                          recent runs (?limit=1..100)
 *   GET  /api/runs/{runId}                                  one run, with its report once complete
 *
 * Inputs are validated before anything is called: a bad id is a 400, an organization that is not
 * configured a 404 (no request leaves for it), a large body a 413, malformed JSON a 400.
 */
import { app, type HttpRequest, type InvocationContext } from '@azure/functions';
import type { Intent } from '../remediation/policy';
import type { RunReport } from '../remediation/report';
import { services } from './context';
import {
  apiHandler,
  booleanQuery,
  limitQuery,
  checkQuery,
  guidParam,
  HttpError,
  json,
  organizationParam,
  parseRunBody,
  readJsonBody,
  ROLES,
} from './http';
import { workQueueOutput } from './workQueue';

/** The project a connection was last seen in (saves listing the organization). */
function projectHint(
  report: RunReport | undefined,
  organization: string,
  connectionId: string,
): string | undefined {
  const c = report?.connections.find(
    (r) =>
      r.connectionId.toLowerCase() === connectionId &&
      r.organization.toLowerCase() === organization.toLowerCase(),
  );
  return c?.projects[0];
}

function upstream(problems: { message: string }[]): HttpError {
  return new HttpError(
    502,
    'upstream-error',
    `Azure DevOps could not be read: ${problems.map((p) => p.message).join('; ')}`.slice(0, 1000),
  );
}

/** `GET /api/connections[?refresh=true]` */
export const listConnections = apiHandler(ROLES.reader, async (request) => {
  checkQuery(request, ['refresh']);
  const refresh = booleanQuery(request, 'refresh') ?? false;
  const svc = services();
  if (!refresh) {
    const report = await (await svc.ledger()).latestReport();
    if (!report)
      throw new HttpError(
        404,
        'no-report',
        'No run has completed yet. POST /api/runs starts one; ?refresh=true assesses every connection now.',
      );
    return json(200, { ...report, source: 'ledger' });
  }
  const engine = await svc.engine();
  const { runRemediation } = await import('../remediation/run');
  const { report, problems } = await runRemediation(engine.deps, engine.settings, { dryRun: true });
  return json(200, { ...report, problems, source: 'live' });
});

/** `GET /api/connections/{organization}/{connectionId}` */
export const getConnection = apiHandler(ROLES.reader, async (request) => {
  checkQuery(request, []);
  const connectionId = guidParam(request, 'connectionId', 'invalid-connection-id', 'connection id');
  const organization = await organizationParam(request);
  const svc = services();
  const latest = await (await svc.ledger()).latestReport();
  const { remediateOne } = await import('../remediation/fanOut');
  const result = await remediateOne(await svc.fanOut(), {
    organization,
    connectionId,
    dryRun: true,
    record: false,
    trigger: 'http',
    projectHint: projectHint(latest, organization.name, connectionId),
  });
  if (!result.report) {
    if (result.problems.length > 0) throw upstream(result.problems);
    throw new HttpError(
      404,
      'connection-not-found',
      `No Azure Resource Manager connection ${connectionId} in organization '${organization.name}'.`,
    );
  }
  return json(200, { assessedAt: svc.clock.now().toISOString(), connection: result.report });
});

/**
 * `POST /api/connections/{organization}/{connectionId}/remediate[?dryRun=true]`, and with an intent
 * the `convert`, `revert` and `retire` routes: one connection acted on now, recorded as a run.
 */
function actOnConnection(intent?: Intent) {
  return apiHandler(ROLES.operator, async (request) => {
    checkQuery(request, intent === 'retire' ? ['confirm'] : intent === 'revert' ? [] : ['dryRun']);
    if (intent === 'retire' && booleanQuery(request, 'confirm') !== true)
      throw new HttpError(
        400,
        'confirmation-required',
        'Retiring deletes the connection from Azure DevOps (its definition is kept in the run ledger): add ?confirm=true.',
      );
    return actNow(request, intent);
  });
}

async function actNow(request: HttpRequest, intent?: Intent) {
  const connectionId = guidParam(request, 'connectionId', 'invalid-connection-id', 'connection id');
  const queryDryRun = booleanQuery(request, 'dryRun');
  const body = parseRunBody(await readJsonBody(request));
  const organization = await organizationParam(request);
  const svc = services();
  const latest = await (await svc.ledger()).latestReport();
  const { remediateOne } = await import('../remediation/fanOut');
  const fanOut = await svc.fanOut();
  const dryRun = fanOut.settings.dryRun || (queryDryRun ?? body.dryRun ?? false);
  const result = await remediateOne(fanOut, {
    organization,
    connectionId,
    dryRun,
    trigger: 'http',
    projectHint: projectHint(latest, organization.name, connectionId),
    ...(intent ? { intent } : {}),
  });
  if (!result.report) {
    if (result.problems.length > 0) throw upstream(result.problems);
    throw new HttpError(
      404,
      'connection-not-found',
      `No Azure Resource Manager connection ${connectionId} in organization '${organization.name}'.`,
    );
  }
  if (result.lockHeld)
    throw new HttpError(
      409,
      'rotation-in-progress',
      'Another rotation of this connection is in progress; try again later.',
    );
  return json(200, {
    runId: result.run ? result.runId : undefined,
    dryRun,
    connection: result.report,
  });
}

export const remediateConnectionNow = actOnConnection();
export const convertConnectionNow = actOnConnection('convert');
export const revertConnectionNow = actOnConnection('revert');
export const retireConnectionNow = actOnConnection('retire');

/**
 * `POST /api/connections/{organization}/{connectionId}/approve`, body `{ "appId": "<guid>" }`
 * (application/json, `Remediation.Operator`): records that the connection is entitled to the app it
 * names (DESIGN invariant 8). The app id is required and must be the one the connection names now:
 * 409 `app-mismatch` otherwise, and nothing is recorded.
 */
export const approveConnectionNow = apiHandler(ROLES.operator, async (request) => {
  checkQuery(request, []);
  const connectionId = guidParam(request, 'connectionId', 'invalid-connection-id', 'connection id');
  const type = request.headers.get('content-type');
  if (type === null || !/^application\/json\s*(;|$)/i.test(type.trim()))
    throw new HttpError(415, 'unsupported-media-type', 'The request body must be JSON (application/json).');
  const body = await readJsonBody(request);
  const appId = (body as { appId?: unknown } | undefined)?.appId;
  if (
    !body ||
    typeof body !== 'object' ||
    Object.keys(body).some((k) => k !== 'appId') ||
    typeof appId !== 'string' ||
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(appId)
  )
    throw new HttpError(400, 'invalid-body', 'The body must be {"appId": "<the app\'s client id, a GUID>"}.');
  const organization = await organizationParam(request);
  const engine = await services().engine();
  const { approveConnection, ApprovalError } = await import('../remediation/entitlement');
  const { findConnection } = await import('../remediation/run');
  const principal = request.headers.get('x-ms-client-principal-name');
  try {
    const { binding, connection } = await approveConnection(
      {
        organizationUrl: organization.url,
        connectionId,
        appId,
        by: `http:${principal ?? 'function-key'}`,
      },
      engine.deps,
      (url, id) => findConnection(engine.deps, engine.settings, url, id),
    );
    return json(200, { binding, connectionName: connection.name });
  } catch (err) {
    if (!(err instanceof ApprovalError)) throw err;
    const status = err.code === 'connection-not-found' ? 404 : err.code === 'not-configured' ? 503 : 409;
    throw new HttpError(status, err.code, err.message);
  }
});

/** `GET /api/retired[?limit=n]`: what the run ledger kept of retired connections (no secret). */
export const listRetired = apiHandler(ROLES.reader, async (request) => {
  checkQuery(request, ['limit']);
  const limit = limitQuery(request, 50);
  const retired = await (await services().ledger()).listRetired(limit);
  return json(200, { retired });
});

/** `POST /api/runs` — plans the run now, fans its work out to the queue, answers 202. */
export async function startRun(request: HttpRequest, context: InvocationContext) {
  return apiHandler(ROLES.operator, async () => {
    checkQuery(request, ['dryRun']);
    const queryDryRun = booleanQuery(request, 'dryRun');
    const body = parseRunBody(await readJsonBody(request));
    const svc = services();
    const { planRun } = await import('../remediation/fanOut');
    const planned = await planRun(await svc.fanOut(), {
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

app.http('listConnections', {
  route: 'connections',
  methods: ['GET'],
  authLevel: 'function',
  handler: listConnections,
});
app.http('getConnection', {
  route: 'connections/{organization}/{connectionId}',
  methods: ['GET'],
  authLevel: 'function',
  handler: getConnection,
});
app.http('remediateConnectionNow', {
  route: 'connections/{organization}/{connectionId}/remediate',
  methods: ['POST'],
  authLevel: 'function',
  handler: remediateConnectionNow,
});
app.http('convertConnectionNow', {
  route: 'connections/{organization}/{connectionId}/convert',
  methods: ['POST'],
  authLevel: 'function',
  handler: convertConnectionNow,
});
app.http('revertConnectionNow', {
  route: 'connections/{organization}/{connectionId}/revert',
  methods: ['POST'],
  authLevel: 'function',
  handler: revertConnectionNow,
});
app.http('retireConnectionNow', {
  route: 'connections/{organization}/{connectionId}/retire',
  methods: ['POST'],
  authLevel: 'function',
  handler: retireConnectionNow,
});
app.http('approveConnectionNow', {
  route: 'connections/{organization}/{connectionId}/approve',
  methods: ['POST'],
  authLevel: 'function',
  handler: approveConnectionNow,
});
app.http('listRetired', { route: 'retired', methods: ['GET'], authLevel: 'function', handler: listRetired });
app.http('startRun', {
  route: 'runs',
  methods: ['POST'],
  authLevel: 'function',
  extraOutputs: [workQueueOutput],
  handler: startRun,
});
app.http('listRuns', { route: 'runs', methods: ['GET'], authLevel: 'function', handler: listRuns });
app.http('getRun', { route: 'runs/{runId}', methods: ['GET'], authLevel: 'function', handler: getRun });
