/**
 * The sandbox in its own process for the bench: the simulated services use their own CPU and memory,
 * so what the bench measures in the product's process is the product. Driven over IPC:
 *
 *   parent → { type: 'start', shape, faults, seed }     child → { type: 'ready', env, startupMs, ... }
 *   parent → { type: 'stats' }                          child → { type: 'stats', stats }
 *   parent → { type: 'stop' }                           child exits
 *
 * The stats attribute every request the sandbox answered to a connection (its endpoint id, its app,
 * its Key Vault secret, the token requests of its app) or to the run (discovery, the product's own
 * tokens, metadata, tenant-wide reads), and check the end state of the tenant.
 */
import { randomBytes } from 'node:crypto';
import { checkClientSecret } from '../sandbox/credentials';
import { startSandbox, type FaultRule, type Sandbox } from '../sandbox/index';
import type { RequestLogEntry, ServiceName, TenantState } from '../sandbox/model';
import { stableGuid } from '../sandbox/scenario';
import { recordToTags, ROTATION_CONTENT_TYPE } from '../src/clients/keyVaultRotationRecord';
import { credentialMarker } from '../src/remediation/transform';
import { generateTenant, type ConnectionKind, type TenantShape } from './tenant';

type StartMessage = { type: 'start'; shape: TenantShape; faults: FaultRule[]; seed: string };
type ParentMessage = StartMessage | { type: 'stats' } | { type: 'stop' };

export interface ReadyMessage {
  type: 'ready';
  env: Record<string, string>;
  organizationUrls: string[];
  urls: Sandbox['urls'];
  startupMs: number;
  connections: number;
  needRotation: number;
  kinds: Record<ConnectionKind, number>;
  productPat: string;
  tenantId: string;
  /** Connections holding a record of an earlier rotation at the start. */
  seededRecords: number;
}

export type ServiceTally = Record<ServiceName, number>;

/** One connection's state at the end. */
export interface EndState {
  /** Connections holding a secret that gets a token, recorded `completed` in Key Vault by a rotation. */
  rotated: number;
  /** Connections that needed a new secret and are ready with a working one now. */
  fixed: number;
  /** Connections that needed a new secret and are still not fixed. */
  notFixed: number;
  /** Connections that were healthy at the start and are not ready now. */
  brokenHealthy: number;
  /** Credentials marked by the product that no Key Vault record accounts for. */
  orphans: number;
  /** Connections whose secret is not the value Key Vault holds for them (rotated ones only). */
  vaultMismatch: number;
}

export interface SandboxStats {
  requests: number;
  byService: ServiceTally;
  /** 429 answers, by service. */
  throttled: ServiceTally;
  /** Other fault answers (5xx, drops, timeouts) injected, total. */
  faultsInjected: number;
  /** Requests that belong to the run as a whole, not to one connection. */
  perRun: Record<string, number>;
  /** Average requests per rotated connection, by service, and the same by operation. */
  perRotated: ServiceTally;
  /** Average 429s per rotated connection (requests refused, then sent again after Retry-After). */
  refusedPerRotated: ServiceTally;
  perRotatedByOperation: Record<string, number>;
  /** Average requests per connection that was only assessed. */
  perAssessed: ServiceTally;
  rotatedConnections: number;
  assessedConnections: number;
  end: EndState;
  throttling: ThrottlingStats;
  /** Requests per second of the run, by service (index 0: the first request's second). */
  timeline: ServiceTally[];
  rssMb: number;
  cpuSeconds: number;
}

/** How the client answered the 429s. */
export interface ThrottlingStats {
  /** Requests repeated (same service, method, path) before the Retry-After of their 429 had passed. */
  earlyRetries: number;
  /** Longest stretch, per service, during which 429s followed each other less than a second apart. */
  longestThrottledSeconds: ServiceTally;
  /** Requests answered late because the caller was over its budget (Azure DevOps' delays). */
  delayed: ServiceTally;
}

interface ThrottleAnswer {
  key: string;
  at: number;
  until: number;
}

const MARKER = /^sc-remediator (\S+) (\S+)$/;

function emptyTally(): ServiceTally {
  return { entra: 0, graph: 0, devops: 0, keyvault: 0 };
}

function operation(e: RequestLogEntry): string {
  if (e.service === 'graph') {
    if (e.method === 'POST') return `graph POST ${e.path.split('/').pop() ?? ''}`;
    if (/appManagementPolicies$/i.test(e.path)) return 'graph GET appManagementPolicies';
    return 'graph GET application';
  }
  if (e.service === 'devops') {
    if (e.method === 'POST') return 'devops POST endpointproxy';
    return `devops ${e.method}`;
  }
  if (e.service === 'keyvault') return `keyvault ${e.method}`;
  return `entra ${e.method} ${e.method === 'POST' ? 'token' : 'metadata'}`;
}

interface Owners {
  byEndpoint: Map<string, string>;
  byAppObject: Map<string, string>;
  byAppId: Map<string, string>;
  bySecret: Map<string, string>;
}

function owners(state: TenantState): Owners {
  const o: Owners = {
    byEndpoint: new Map(),
    byAppObject: new Map(),
    byAppId: new Map(),
    bySecret: new Map(),
  };
  for (const org of state.organizations.values())
    for (const ep of org.endpoints.values()) {
      const id = ep.id.toLowerCase();
      o.byEndpoint.set(id, id);
      o.bySecret.set(`sc-remediator-${id}`, id);
      o.bySecret.set(`sc-remediator-binding-${id}`, id);
      const appId = ep.authorization.parameters['serviceprincipalid'];
      if (!appId) continue;
      o.byAppId.set(appId.toLowerCase(), id);
      const app = state.appByAppId(appId);
      if (app) o.byAppObject.set(app.id.toLowerCase(), id);
    }
  return o;
}

/** The connection a request belongs to, or the run-level bucket it falls in. */
function ownerOf(e: RequestLogEntry, o: Owners): { connection: string } | { run: string } {
  const path = decodeURIComponent(e.path).toLowerCase();
  if (e.service === 'devops') {
    const m = /\/endpoints\/([0-9a-f-]{36})/.exec(path);
    const id = m?.[1] ?? e.query['endpointId']?.toLowerCase();
    if (id && o.byEndpoint.has(id)) return { connection: id };
    return { run: 'devops discovery' };
  }
  if (e.service === 'graph') {
    const byObject = /\/applications\/([0-9a-f-]{36})/.exec(path)?.[1];
    const byAppId = /appid='([0-9a-f-]{36})'/.exec(path)?.[1];
    const id = (byObject && o.byAppObject.get(byObject)) ?? (byAppId && o.byAppId.get(byAppId));
    if (id) return { connection: id };
    return { run: `graph ${e.method} ${path.includes('policies') ? 'tenant policy' : path}` };
  }
  if (e.service === 'keyvault') {
    const name = /^\/secrets\/([^/]+)/.exec(path)?.[1];
    const id = name ? o.bySecret.get(name) : undefined;
    if (id && e.status !== 401) return { connection: id };
    return { run: e.status === 401 ? 'keyvault challenge' : `keyvault ${e.method} list` };
  }
  // Entra: token requests made with a connection's app (the new secret's probe), or the product's own.
  const caller = e.caller ?? '';
  if (caller.startsWith('app:')) {
    const id = o.byAppId.get(caller.slice(4).toLowerCase());
    if (id) return { connection: id };
  }
  if (e.method === 'GET') return { run: 'entra metadata' };
  return { run: caller ? `entra token (${caller})` : 'entra token (failed)' };
}

/** Rotation ids of the records seeded at the start (an earlier run's), by lower-cased connection id. */
const seededRotations = new Map<string, string>();

/** Whether this run rotated the connection: its latest record is `completed` and not the seeded one. */
function rotatedNow(connectionId: string, tags: Record<string, string> | undefined): boolean {
  return (
    tags?.['phase'] === 'completed' && tags['rotationId'] !== seededRotations.get(connectionId.toLowerCase())
  );
}

function endState(state: TenantState, kinds: Map<string, ConnectionKind>): EndState {
  const end: EndState = { rotated: 0, fixed: 0, notFixed: 0, brokenHealthy: 0, orphans: 0, vaultMismatch: 0 };
  for (const org of state.organizations.values())
    for (const ep of org.endpoints.values()) {
      const kind = kinds.get(ep.id.toLowerCase());
      const appId = ep.authorization.parameters['serviceprincipalid'] ?? '';
      const key = ep.authorization.parameters['serviceprincipalkey'] ?? undefined;
      const works = ep.isReady && checkClientSecret(state, appId, key).ok;
      const secret = state.vault.secrets.get(`sc-remediator-${ep.id}`.toLowerCase());
      const latest = secret?.versions.at(-1);
      if (latest && rotatedNow(ep.id, latest.tags)) {
        end.rotated += 1;
        if (latest.value !== key) end.vaultMismatch += 1;
      }
      if (kind === 'expiring' || kind === 'expired') {
        if (works && latest?.value === key) end.fixed += 1;
        else end.notFixed += 1;
      }
      if (kind === 'healthy' && !works) end.brokenHealthy += 1;
      const app = state.appByAppId(appId);
      if (app)
        for (const p of app.passwordCredentials) {
          const marker = MARKER.exec(p.displayName ?? '');
          if (marker?.[1]?.toLowerCase() === ep.id.toLowerCase() && latest?.tags['keyId'] !== p.keyId)
            end.orphans += 1;
        }
    }
  return end;
}

function throttling(log: RequestLogEntry[], answers: ThrottleAnswer[]): ThrottlingStats {
  const longest = emptyTally();
  const byService = new Map<ServiceName, number[]>();
  for (const e of log)
    if (e.status === 429) {
      const list = byService.get(e.service) ?? [];
      list.push(e.at);
      byService.set(e.service, list);
    }
  for (const [service, times] of byService) {
    times.sort((a, b) => a - b);
    let start = times[0] ?? 0;
    let previous = start;
    for (const t of times) {
      if (t - previous > 1000) start = t;
      previous = t;
      longest[service] = Math.max(longest[service], Math.round((t - start) / 100) / 10);
    }
  }
  // Each request against the 429s answered before it for the same operation and path.
  const pending = new Map<string, ThrottleAnswer>();
  const events = [
    ...answers.map((a) => ({ at: a.at, answer: a })),
    ...log.map((e) => ({ at: e.at, key: `${e.service} ${e.method} ${e.path}` })),
  ].sort((a, b) => a.at - b.at);
  let earlyRetries = 0;
  for (const ev of events) {
    if ('answer' in ev) pending.set(ev.answer.key, ev.answer);
    else {
      const throttled = pending.get(ev.key);
      // 100 ms of slack: Retry-After is in whole seconds, timers are not exact.
      if (throttled && ev.at > throttled.at && ev.at < throttled.until - 100) earlyRetries += 1;
      if (throttled && ev.at > throttled.at) pending.delete(ev.key);
    }
  }
  return { earlyRetries, longestThrottledSeconds: longest, delayed: { ...delayedAnswers } };
}

function timelineOf(log: RequestLogEntry[]): ServiceTally[] {
  const start = Math.min(...log.map((e) => e.at));
  const out: ServiceTally[] = [];
  for (const e of log) {
    const second = Math.floor((e.at - start) / 1000);
    while (out.length <= second) out.push(emptyTally());
    out[second]![e.service] += 1;
  }
  return out;
}

function collectStats(sandbox: Sandbox, kinds: Map<string, ConnectionKind>): SandboxStats {
  const { state } = sandbox;
  const o = owners(state);
  const byService = emptyTally();
  const throttled = emptyTally();
  const perRun: Record<string, number> = {};
  const perConnection = new Map<
    string,
    { tally: ServiceTally; ops: Record<string, number>; refused: ServiceTally }
  >();
  for (const e of state.requestLog) {
    byService[e.service] += 1;
    if (e.status === 429) throttled[e.service] += 1;
    const owner = ownerOf(e, o);
    if ('run' in owner) {
      perRun[owner.run] = (perRun[owner.run] ?? 0) + 1;
      continue;
    }
    let entry = perConnection.get(owner.connection);
    if (!entry)
      perConnection.set(owner.connection, (entry = { tally: emptyTally(), ops: {}, refused: emptyTally() }));
    // A 429 is the service refusing to do the work: counted apart from the calls that did it.
    if (e.status === 429) {
      entry.refused[e.service] += 1;
      continue;
    }
    entry.tally[e.service] += 1;
    const op = operation(e);
    entry.ops[op] = (entry.ops[op] ?? 0) + 1;
  }
  const rotatedIds = new Set<string>();
  for (const [name, secret] of state.vault.secrets) {
    const id = name.replace(/^sc-remediator-/, '');
    if (rotatedNow(id, secret.versions.at(-1)?.tags)) rotatedIds.add(id);
  }
  const perRotated = emptyTally();
  const refusedPerRotated = emptyTally();
  const perAssessed = emptyTally();
  const perRotatedByOperation: Record<string, number> = {};
  let assessed = 0;
  for (const [id, entry] of perConnection) {
    const target = rotatedIds.has(id) ? perRotated : perAssessed;
    if (!rotatedIds.has(id)) assessed += 1;
    for (const s of Object.keys(target) as ServiceName[]) target[s] += entry.tally[s];
    if (rotatedIds.has(id))
      for (const s of Object.keys(refusedPerRotated) as ServiceName[])
        refusedPerRotated[s] += entry.refused[s];
    if (rotatedIds.has(id))
      for (const [op, n] of Object.entries(entry.ops))
        perRotatedByOperation[op] = (perRotatedByOperation[op] ?? 0) + n;
  }
  const avg = (t: ServiceTally, n: number): ServiceTally => {
    const out = emptyTally();
    for (const s of Object.keys(t) as ServiceName[]) out[s] = n ? Math.round((t[s] / n) * 100) / 100 : 0;
    return out;
  };
  const rotated = rotatedIds.size;
  for (const op of Object.keys(perRotatedByOperation))
    perRotatedByOperation[op] =
      Math.round(((perRotatedByOperation[op] ?? 0) / Math.max(1, rotated)) * 100) / 100;
  const cpu = process.cpuUsage();
  return {
    requests: state.requestLog.length,
    byService,
    throttled,
    faultsInjected: sandbox.faults.stats.injected - sandbox.faults.stats.byKind.throttle,
    perRun,
    perRotated: avg(perRotated, rotated),
    refusedPerRotated: avg(refusedPerRotated, rotated),
    perRotatedByOperation,
    perAssessed: avg(perAssessed, assessed),
    rotatedConnections: rotated,
    assessedConnections: assessed,
    end: endState(state, kinds),
    throttling: throttling(state.requestLog, throttleAnswers),
    timeline: timelineOf(state.requestLog),
    rssMb: Math.round(process.memoryUsage().rss / 1e6),
    cpuSeconds: Math.round(((cpu.user + cpu.system) / 1e6) * 10) / 10,
  };
}

function send(message: unknown): void {
  process.send?.(message);
}

/**
 * The steady state of a nightly run: the connections this service rotated before (a `fraction` of
 * those whose app works) hold the secret of a `completed` Key Vault record, under a marked credential,
 * as the service leaves them.
 */
function seedRecords(state: TenantState, fraction: number): number {
  let seeded = 0;
  let n = 0;
  for (const org of state.organizations.values())
    for (const ep of org.endpoints.values()) {
      if (ep.authorization.scheme !== 'ServicePrincipal') continue;
      const app = state.appByAppId(ep.authorization.parameters['serviceprincipalid'] ?? '');
      const key = ep.authorization.parameters['serviceprincipalkey'];
      const password = app?.passwordCredentials.find((p) => p.secretText === key);
      n += 1;
      if (!app || !password || !key || seeded >= Math.round(n * fraction)) continue;
      const rotationId = randomBytes(4).toString('hex');
      password.displayName = credentialMarker(ep.id, rotationId);
      const created = Date.parse(password.startDateTime);
      const tags = recordToTags({
        connectionId: ep.id,
        organization: `${org.name}`,
        phase: 'completed',
        appId: app.appId,
        keyId: password.keyId,
        rotationId,
        previousKeyIds: [],
        originalCreationMode: ep.data['creationMode'] ?? 'Manual',
        expiresAt: password.endDateTime,
        createdAt: new Date(created).toISOString(),
        appliedAt: new Date(created).toISOString(),
        verifiedAt: new Date(created).toISOString(),
        completedAt: new Date(created).toISOString(),
      });
      const name = `sc-remediator-${ep.id}`;
      const seconds = Math.floor(created / 1000);
      state.vault.secrets.set(name.toLowerCase(), {
        name,
        versions: [
          {
            version: randomBytes(16).toString('hex'),
            value: key,
            contentType: ROTATION_CONTENT_TYPE,
            tags,
            enabled: true,
            exp: Math.floor(Date.parse(password.endDateTime) / 1000),
            created: seconds,
            updated: seconds,
          },
        ],
      });
      seededRotations.set(ep.id.toLowerCase(), rotationId);
      seeded += 1;
    }
  return seeded;
}

let sandbox: Sandbox | undefined;
const kinds = new Map<string, ConnectionKind>();
const throttleAnswers: ThrottleAnswer[] = [];
const delayedAnswers = emptyTally();

/** Notes every 429 the fault injector decides, with the time its Retry-After runs out. */
function watchThrottles(s: Sandbox): void {
  const decide = s.faults.decide.bind(s.faults);
  s.faults.decide = (service, method, path, caller, nowMs) => {
    const decision = decide(service, method, path, caller, nowMs);
    if (decision.rateLimit?.delayMs) delayedAnswers[service] += 1;
    if (decision.fault?.status === 429) {
      const at = nowMs + decision.latencyMs;
      throttleAnswers.push({
        key: `${service} ${method} ${path}`,
        at,
        until: at + decision.fault.retryAfterSeconds * 1000,
      });
    }
    return decision;
  };
}

process.on('message', (message: ParentMessage) => {
  void (async () => {
    switch (message.type) {
      case 'start': {
        const started = Date.now();
        const tenant = generateTenant(message.shape);
        sandbox = await startSandbox({
          scenario: tenant.scenario,
          seed: message.seed,
          faults: message.faults,
        });
        watchThrottles(sandbox);
        const seeded = seedRecords(sandbox.state, message.shape.recordsFraction ?? 0);
        for (const org of tenant.scenario.organizations)
          for (const c of org.connections)
            kinds.set(
              (c.id ?? stableGuid('endpoint', org.name, c.key)).toLowerCase(),
              tenant.kindOf.get(c.key) ?? 'healthy',
            );
        const ready: ReadyMessage = {
          type: 'ready',
          env: sandbox.env,
          organizationUrls: sandbox.organizationUrls,
          urls: sandbox.urls,
          startupMs: Date.now() - started,
          connections: tenant.connections,
          needRotation: tenant.needRotation,
          kinds: tenant.kinds,
          productPat: tenant.productPat,
          tenantId: sandbox.state.tenantId,
          seededRecords: seeded,
        };
        send(ready);
        return;
      }
      case 'stats':
        if (sandbox) send({ type: 'stats', stats: collectStats(sandbox, kinds) });
        return;
      case 'stop':
        await sandbox?.stop();
        process.exit(0);
    }
  })().catch((err: unknown) => {
    send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  });
});

process.on('disconnect', () => {
  void sandbox?.stop().finally(() => process.exit(0));
});
