/**
 * The HTTP API's connections (JSON; see `./http` for access, validation and error answers):
 *
 *   GET  /api/connections                                   latest run's report (?refresh=true: assess now)
 *   GET  /api/connections/{organization}/{connectionId}     one connection, assessed now
 *   POST /api/connections/{organization}/{connectionId}/remediate   fix it now (?dryRun=true); the outcome
 *   POST /api/connections/{organization}/{connectionId}/convert     convert it to workload identity federation (?dryRun=true)
 *   POST /api/connections/{organization}/{connectionId}/revert      revert its conversion while still possible
 *   POST /api/connections/{organization}/{connectionId}/retire?confirm=true   delete it (unrecoverable only; definition kept)
 *   POST /api/connections/{organization}/{connectionId}/approve  body {"appId"}: entitle it to that app (the one it names)
 */
import { GUID } from '../guid';
import { app, type HttpRequest } from '@azure/functions';
import type { Intent } from '../remediation/policy';
import type { RunReport } from '../remediation/report';
import { services } from './context';
import {
  apiHandler,
  booleanQuery,
  checkQuery,
  guidParam,
  HttpError,
  json,
  organizationParam,
  parseRunBody,
  readJsonBody,
  ROLES,
} from './http';

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

/**
 * One connection assessed now and, unless a dry run (the app's `DRY_RUN` wins over the request),
 * acted on and recorded as a run: its report, else a 502 when Azure DevOps could not be read and a
 * 404 when the organization has no such connection.
 */
async function remediateNow(
  organization: { url: string; name: string },
  connectionId: string,
  options: { dryRun: boolean; record?: false; intent?: Intent },
) {
  const svc = services();
  const latest = await (await svc.ledger()).latestReport();
  const { remediateOne } = await import('../remediation/fanOut');
  const fanOut = await svc.fanOut();
  const dryRun = fanOut.settings.dryRun || options.dryRun;
  const result = await remediateOne(fanOut, {
    organization,
    connectionId,
    dryRun,
    trigger: 'http',
    projectHint: projectHint(latest, organization.name, connectionId),
    ...(options.record === false ? { record: false } : {}),
    ...(options.intent ? { intent: options.intent } : {}),
  });
  if (!result.report) {
    if (result.problems.length > 0) throw upstream(result.problems);
    throw new HttpError(
      404,
      'connection-not-found',
      `No Azure Resource Manager connection ${connectionId} in organization '${organization.name}'.`,
    );
  }
  return { ...result, report: result.report, dryRun };
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
  const { report } = await remediateNow(organization, connectionId, { dryRun: true, record: false });
  return json(200, { assessedAt: services().clock.now().toISOString(), connection: report });
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
  const result = await remediateNow(organization, connectionId, {
    dryRun: queryDryRun ?? body.dryRun ?? false,
    ...(intent ? { intent } : {}),
  });
  if (result.lockHeld)
    throw new HttpError(
      409,
      'rotation-in-progress',
      'Another rotation of this connection is in progress; try again later.',
    );
  return json(200, {
    runId: result.run ? result.runId : undefined,
    dryRun: result.dryRun,
    connection: result.report,
  });
}

export const remediateConnectionNow = actOnConnection();
export const convertConnectionNow = actOnConnection('convert');
export const revertConnectionNow = actOnConnection('revert');
export const retireConnectionNow = actOnConnection('retire');

/**
 * `POST /api/connections/{organization}/{connectionId}/approve`, body `{ "appId": "<guid>" }`
 * (application/json, checked by `apiHandler` like every POST; `Remediation.Operator`): records that
 * the connection is entitled to the app it names (DESIGN invariant 8). The app id is required and
 * must be the one the connection names now: 409 `app-mismatch` otherwise, and nothing is recorded.
 */
export const approveConnectionNow = apiHandler(ROLES.operator, async (request) => {
  checkQuery(request, []);
  const connectionId = guidParam(request, 'connectionId', 'invalid-connection-id', 'connection id');
  const body = await readJsonBody(request);
  const appId = (body as { appId?: unknown } | undefined)?.appId;
  if (
    !body ||
    typeof body !== 'object' ||
    Object.keys(body).some((k) => k !== 'appId') ||
    typeof appId !== 'string' ||
    !GUID.test(appId)
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
