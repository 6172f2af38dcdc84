/**
 * The baseline: the manual procedure of the field reports (background/rotating-secret-of-automatic-
 * connection.md, deleting-failed-service-connections.md), followed faithfully and one request at a
 * time, as a person with Postman and a PAT does it:
 *
 *   GET  {org}/_apis/projects                                         (which projects are there)
 *   GET  {org}/{project}/_apis/serviceendpoint/endpoints?includeFailed=true   (per project)
 *   GET  {org}/{project}/_apis/serviceendpoint/endpoints/{id}          (each connection's details)
 *   GET  Graph applications(appId=…)                                   (the app's secrets: "Manage Service Principal")
 *   and when the secret expires within 30 days or the connection is not ready:
 *   POST Graph applications/{id}/addPassword                           ("add a new secret")
 *   PUT  {org}/_apis/serviceendpoint/endpoints/{id}                    (creationMode Manual, fields stripped, new key)
 *
 * No Key Vault, no verification, no clean-up: less work than the product does. A 429 is waited out
 * (Retry-After), as a person would. Runs in its own process; reports over IPC.
 */
import { Agent, request } from 'node:https';

export interface BaselineInput {
  organizationUrls: string[];
  pat: string;
  graphUrl: string;
  authorityUrl: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

export interface BaselineResult {
  type: 'result';
  seconds: number;
  connections: number;
  rotated: number;
  calls: Record<'devops' | 'graph' | 'entra', number>;
  throttled: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const DAY_MS = 24 * 3600 * 1000;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function send(method: string, url: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        headers: { ...headers, ...(body !== undefined ? { 'Content-Length': Buffer.byteLength(body) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(120_000, () => req.destroy(new Error('timeout')));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function run(input: BaselineInput): Promise<BaselineResult> {
  const calls = { devops: 0, graph: 0, entra: 0 };
  let throttled = 0;
  const call = async (
    service: 'devops' | 'graph' | 'entra',
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<Answer> => {
    for (let attempt = 0; attempt < 20; attempt++) {
      calls[service] += 1;
      const answer = await send(method, url, headers, body);
      if (answer.status !== 429) return answer;
      throttled += 1;
      const wait = Number(answer.headers['retry-after'] ?? '1');
      await new Promise((r) => setTimeout(r, (Number.isFinite(wait) ? wait : 1) * 1000));
    }
    throw new Error(`${method} ${url}: still throttled after 20 attempts`);
  };
  const started = performance.now();

  // A Graph token (the portal has one already; one request).
  const form = new URLSearchParams({
    client_id: input.clientId,
    client_secret: input.clientSecret,
    scope: 'https://graph.microsoft.com/.default',
    grant_type: 'client_credentials',
  }).toString();
  const tokenAnswer = await call(
    'entra',
    'POST',
    `${input.authorityUrl}/${input.tenantId}/oauth2/v2.0/token`,
    { 'Content-Type': 'application/x-www-form-urlencoded' },
    form,
  );
  const graphToken = (JSON.parse(tokenAnswer.text) as { access_token: string }).access_token;
  const graph = { Authorization: `Bearer ${graphToken}`, 'Content-Type': 'application/json' };
  const ado = {
    Authorization: `Basic ${Buffer.from(`:${input.pat}`).toString('base64')}`,
    'Content-Type': 'application/json',
    Accept: 'application/json',
  };

  let connections = 0;
  let rotated = 0;
  for (const org of input.organizationUrls) {
    const projects: { id: string; name: string }[] = [];
    let continuation = '';
    do {
      const page = await call(
        'devops',
        'GET',
        `${org}/_apis/projects?api-version=7.1&$top=100${continuation ? `&continuationToken=${continuation}` : ''}`,
        ado,
      );
      projects.push(...(JSON.parse(page.text) as { value: { id: string; name: string }[] }).value);
      const next = page.headers['x-ms-continuationtoken'];
      continuation = typeof next === 'string' ? next : '';
    } while (continuation);

    const seen = new Set<string>();
    for (const project of projects) {
      const list = await call(
        'devops',
        'GET',
        `${org}/${encodeURIComponent(project.name)}/_apis/serviceendpoint/endpoints?type=azurerm&includeFailed=true&api-version=7.1`,
        ado,
      );
      for (const item of (JSON.parse(list.text) as { value: { id: string }[] }).value) {
        if (seen.has(item.id)) continue;
        seen.add(item.id);
        connections += 1;
        const detail = await call(
          'devops',
          'GET',
          `${org}/${encodeURIComponent(project.name)}/_apis/serviceendpoint/endpoints/${item.id}?api-version=7.1`,
          ado,
        );
        const ep = JSON.parse(detail.text) as {
          isReady: boolean;
          data: Record<string, string>;
          authorization: { scheme: string; parameters: Record<string, string | null> };
        };
        const appId = ep.authorization.parameters['serviceprincipalid'];
        if (ep.authorization.scheme !== 'ServicePrincipal' || !appId) continue;
        const appAnswer = await call(
          'graph',
          'GET',
          `${input.graphUrl}/v1.0/applications(appId='${appId}')?$select=id,appId,isDisabled,passwordCredentials`,
          graph,
        );
        if (appAnswer.status !== 200) continue;
        const app = JSON.parse(appAnswer.text) as {
          id: string;
          isDisabled: boolean | null;
          passwordCredentials: { endDateTime: string }[];
        };
        const soonest = Math.min(...app.passwordCredentials.map((p) => Date.parse(p.endDateTime)));
        if (app.isDisabled || (ep.isReady && soonest > Date.now() + 30 * DAY_MS)) continue;

        const added = await call(
          'graph',
          'POST',
          `${input.graphUrl}/v1.0/applications/${app.id}/addPassword`,
          graph,
          JSON.stringify({
            passwordCredential: {
              displayName: 'rotated by hand',
              endDateTime: new Date(Date.now() + 90 * DAY_MS).toISOString(),
            },
          }),
        );
        if (added.status !== 200) continue;
        const secretText = (JSON.parse(added.text) as { secretText: string }).secretText;
        const body = structuredClone(ep);
        body.data['creationMode'] = 'Manual';
        for (const field of ['spnObjectId', 'appObjectId', 'azureSpnRoleAssignmentId'])
          delete body.data[field];
        body.authorization.parameters['serviceprincipalkey'] = secretText;
        const put = await call(
          'devops',
          'PUT',
          `${org}/_apis/serviceendpoint/endpoints/${item.id}?api-version=7.1`,
          ado,
          JSON.stringify(body),
        );
        if (put.status === 200) rotated += 1;
      }
    }
  }
  return {
    type: 'result',
    seconds: Math.round((performance.now() - started) / 10) / 100,
    connections,
    rotated,
    calls,
    throttled,
  };
}

process.once('message', (input: BaselineInput) => {
  run(input).then(
    (result) => {
      process.send?.(result);
      process.exit(0);
    },
    (err: unknown) => {
      process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    },
  );
});
