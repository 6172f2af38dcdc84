/**
 * The fault campaign: does a crash at the worst moment, under throttling and failing services, lose
 * anything? Each round starts a fresh generated tenant with seeded random faults on every service
 * (429 with Retry-After, 500/502/503/504, connections dropped before the request is handled or after
 * it was, before the answer arrives; hung requests, a Key Vault outage, Graph replication delay), runs `sc-remediator remediate` as a real process and SIGKILLs it right after
 * the request of one rotation phase has had its effect (the sandbox's `onRequestHandled` hook), then
 * runs it again, faults still on, until the tenant has converged, and checks a last run does nothing.
 *
 * Counters (all but the first three must be 0):
 * - `runs` (CLI runs), `faultsInjected`, `kills`;
 * - `secretsLost`: a connection whose secret stopped working while the service worked on it, that got
 *   a secret Key Vault did not hold yet (invariant 1), or that ends up with a value other than Key
 *   Vault's;
 * - `orphanCredentialsLeft`: credentials marked for a connection that no record accounts for, at the end;
 * - `connectionsLeftBroken`: connections a new secret fixes that are not fixed at the end, and healthy
 *   ones that are broken;
 * - `secretLeaks`: secret values (every one the tenant ever held) found in any CLI output, log line,
 *   report or telemetry event;
 * - `duplicateRotations`: connections that got more than one new secret from the service.
 */
import { checkClientCertificate, checkClientSecret } from '../sandbox/credentials';
import { startSandbox, type FaultRule, type Sandbox } from '../sandbox/index';
import type { EndpointRecord, RequestLogEntry, TenantState, VaultSecretVersion } from '../sandbox/model';
import { stableGuid } from '../sandbox/scenario';
import { buildEngine } from '../src/composition';
import { loadConfig } from '../src/config';
import { runRemediation } from '../src/remediation/run';
import { createLogger } from '../src/telemetry';
import { cliEnv, killRunningClis, spawnCli, type CliChild } from '../test/helpers/cliChild';
import { generateTenant, type ConnectionKind } from './tenant';

export interface CampaignOptions {
  /** Rounds; each kills one run at one rotation phase (cycling through them). */
  rounds: number;
  seed: string;
  /** Connections per round's tenant (10 per project). */
  connections: number;
  /** Re-runs after the kill before a round gives up converging. */
  maxReruns: number;
  /** Fault rate per request and kind (429, 5xx, drop), hung requests at a quarter of it. */
  faultRate: number;
  /** Expiring certificate-based connections added to each round's tenant (default 0). */
  certificateConnections?: number;
  /** The kill point of the first round (index in `KILL_POINTS`; default 0), the next rounds cycling on. */
  firstKillPoint?: number;
  log?: (line: string) => void;
}

interface CampaignResult {
  rounds: number;
  runs: number;
  faultsInjected: number;
  faultsByKind: Record<string, number>;
  kills: number;
  killPoints: Record<string, number>;
  secretsLost: number;
  orphanCredentialsLeft: number;
  connectionsLeftBroken: number;
  secretLeaks: number;
  duplicateRotations: number;
  /** Rounds whose tenant had not converged after `maxReruns` re-runs. */
  roundsNotConverged: number;
  rotations: number;
  orphansCreatedByKills: number;
  seconds: number;
  details: string[];
}

interface KillPoint {
  name: string;
  matches(e: RequestLogEntry, state: TenantState): boolean;
}

const ok = (e: RequestLogEntry): boolean => e.status >= 200 && e.status < 300;
const MARKER = /^sc-remediator (\S+) (\S+)$/;

function vaultPhase(state: TenantState, path: string): string | undefined {
  const name = /^\/secrets\/([^/]+)/.exec(path)?.[1]?.toLowerCase();
  return name ? state.vault.secrets.get(name)?.versions.at(-1)?.tags['phase'] : undefined;
}

export const KILL_POINTS: KillPoint[] = [
  {
    name: 'after Graph addPassword',
    matches: (e) => e.service === 'graph' && e.method === 'POST' && e.path.endsWith('/addPassword') && ok(e),
  },
  {
    name: 'after the Key Vault set (created)',
    matches: (e, s) =>
      e.service === 'keyvault' && e.method === 'PUT' && ok(e) && vaultPhase(s, e.path) === 'created',
  },
  {
    name: 'after the Azure DevOps PUT',
    matches: (e) => e.service === 'devops' && e.method === 'PUT' && ok(e),
  },
  {
    name: 'after the Key Vault update (applied)',
    matches: (e, s) =>
      e.service === 'keyvault' && e.method === 'PATCH' && ok(e) && vaultPhase(s, e.path) === 'applied',
  },
  {
    name: 'after TestConnection',
    matches: (e) =>
      e.service === 'devops' && e.method === 'POST' && e.path.endsWith('/endpointproxy') && ok(e),
  },
  {
    name: 'after the Key Vault update (verified)',
    matches: (e, s) =>
      e.service === 'keyvault' && e.method === 'PATCH' && ok(e) && vaultPhase(s, e.path) === 'verified',
  },
  {
    name: 'after Graph removePassword',
    matches: (e) =>
      e.service === 'graph' && e.method === 'POST' && e.path.endsWith('/removePassword') && ok(e),
  },
  {
    // A certificate connection's new certificate on the app, its record not yet in Key Vault.
    name: 'after the Graph keyCredentials PATCH',
    matches: (e) => e.service === 'graph' && e.method === 'PATCH' && ok(e),
  },
];

/** Seeded random faults on every service, and a Key Vault outage. */
function faultRules(rate: number, round: number): FaultRule[] {
  const rules: FaultRule[] = [{ service: '*', latencyMs: 2, latencyJitterMs: 8 }];
  for (const service of ['entra', 'graph', 'devops', 'keyvault'] as const) {
    rules.push(
      { service, rate, kind: 'throttle', retryAfterSeconds: 1 },
      { service, rate: rate / 2, kind: 'server-error', status: 503, retryAfterSeconds: 1 },
      { service, rate: rate / 2, kind: 'server-error', status: [500, 502, 504][round % 3] ?? 500 },
      { service, rate: rate / 2, kind: 'drop' },
      { service, rate: rate / 2, kind: 'answer-lost' },
      // An intermediary giving up on a request the service never answers.
      { service, rate: rate / 4, kind: 'timeout', hangMs: 1500 },
    );
  }
  // Key Vault unavailable for a while: most of its requests refused until the outage is over.
  rules.push({
    service: 'keyvault',
    rate: 0.6,
    kind: 'server-error',
    status: 503,
    maxCount: 8 + (round % 5),
  });
  // Azure DevOps' throttle: delays, then 429.
  rules.push({ service: 'devops', budget: { requests: 40, windowSeconds: 2, delayMs: 150, hardLimit: 60 } });
  return rules;
}

const isCertificate = (ep: EndpointRecord): boolean =>
  ep.authorization.parameters['authenticationType'] === 'spnCertificate';

/** The credential a connection holds: its secret, or (certificate connections) its PEM. */
function credentialOf(ep: EndpointRecord): string | undefined {
  return (
    ep.authorization.parameters[isCertificate(ep) ? 'servicePrincipalCertificate' : 'serviceprincipalkey'] ??
    undefined
  );
}

function credentialWorks(state: TenantState, ep: EndpointRecord, key: string | undefined): boolean {
  const appId = ep.authorization.parameters['serviceprincipalid'] ?? '';
  return isCertificate(ep)
    ? checkClientCertificate(state, appId, key).ok
    : checkClientSecret(state, appId, key).ok;
}

/** The credential a record stands for: its value, or the PEM of the certificate version it names. */
function recordedCredential(state: TenantState, latest: VaultSecretVersion | undefined): string | undefined {
  const certificate = latest?.tags['certificate'];
  if (!certificate) return latest?.value;
  const [name, version] = certificate.split('/');
  return state.vault.secrets.get((name ?? '').toLowerCase())?.versions.find((v) => v.version === version)
    ?.value;
}

/** Watches every handled request: invariant 1, secrets that stop working, new secrets per connection. */
class Watch {
  readonly secrets = new Set<string>();
  /** Connection → values the service wrote into it. */
  readonly applied = new Map<string, Set<string>>();
  readonly lost = new Set<string>();
  readonly notes: string[] = [];
  private readonly keys = new Map<string, string | undefined>();
  private readonly working = new Map<string, boolean>();

  constructor(private readonly state: TenantState) {
    for (const [id, ep] of this.endpoints()) {
      const key = credentialOf(ep);
      this.keys.set(id, key);
      this.working.set(id, this.works(ep, key));
    }
    this.collectSecrets();
  }

  *endpoints(): Generator<[string, EndpointRecord]> {
    for (const org of this.state.organizations.values())
      for (const ep of org.endpoints.values()) yield [ep.id.toLowerCase(), ep];
  }

  private works(ep: EndpointRecord, key: string | undefined): boolean {
    return credentialWorks(this.state, ep, key);
  }

  collectSecrets(): void {
    for (const value of this.state.allSecretValues()) this.secrets.add(value);
  }

  observe(e: RequestLogEntry): void {
    const where = `${e.service} ${e.method} ${e.path}`;
    for (const [id, ep] of this.endpoints()) {
      const key = credentialOf(ep);
      if (key !== this.keys.get(id)) {
        this.keys.set(id, key);
        // A certificate's PEM lives in the secret of the Key Vault certificate's name.
        const vault = this.state.vault.secrets.get(
          isCertificate(ep) ? `sc-remediator-cert-${id}` : `sc-remediator-${id}`,
        );
        if (key && !(vault?.versions ?? []).some((v) => v.value === key)) {
          this.lost.add(id);
          this.notes.push(`${id}: got a secret Key Vault does not hold (${where})`);
        }
        if (key) {
          const set = this.applied.get(id) ?? new Set<string>();
          set.add(key);
          this.applied.set(id, set);
        }
      }
      const works = this.works(ep, key);
      // A secret that worked must keep working (replication lag is waited out before the PUT).
      if (this.working.get(id) && !works && !this.lost.has(id)) {
        this.lost.add(id);
        this.notes.push(`${id}: its secret stopped working (${where})`);
      }
      this.working.set(id, works);
    }
    if (
      (e.service === 'graph' && e.method === 'POST') ||
      (e.service === 'keyvault' && e.path.endsWith('/create'))
    )
      this.collectSecrets();
  }
}

interface RoundResult {
  runs: number;
  kills: number;
  killPoint?: string;
  secretsLost: number;
  orphans: number;
  broken: number;
  leaks: number;
  duplicates: number;
  converged: boolean;
  rotations: number;
  orphansCreated: number;
  faults: Record<string, number>;
  notes: string[];
}

function countLeaks(texts: { where: string; text: string }[], secrets: Set<string>, notes: string[]): number {
  let leaks = 0;
  for (const { where, text } of texts)
    for (const secret of secrets)
      if (secret.length >= 8 && text.includes(secret)) {
        leaks += 1;
        notes.push(`a secret value appears in ${where}`);
      }
  return leaks;
}

/** What the tenant looks like: fixable connections fixed, healthy ones healthy, no orphans. */
function check(
  state: TenantState,
  kinds: Map<string, ConnectionKind>,
  watch: Watch,
): { broken: number; orphans: number; mismatched: number; notes: string[] } {
  let broken = 0;
  let orphans = 0;
  let mismatched = 0;
  const notes: string[] = [];
  for (const [id, ep] of watch.endpoints()) {
    const kind = kinds.get(id);
    const appId = ep.authorization.parameters['serviceprincipalid'] ?? '';
    const key = credentialOf(ep);
    const latest = state.vault.secrets.get(`sc-remediator-${id}`)?.versions.at(-1);
    const works = ep.isReady && credentialWorks(state, ep, key);
    // What Key Vault says the connection should hold: the secret, or the PEM of the recorded version.
    const recorded = recordedCredential(state, latest);
    if (kind === 'expiring' || kind === 'expired') {
      if (!works || recorded !== key || latest?.tags['phase'] !== 'completed') {
        broken += 1;
        notes.push(
          `${id} (${kind}): not fixed (ready ${String(ep.isReady)}, phase ${latest?.tags['phase'] ?? 'none'})`,
        );
      }
    } else if (kind === 'healthy' && !works) {
      broken += 1;
      notes.push(`${id} (healthy): broken`);
    }
    if (latest && key && recorded !== key && latest.tags['phase'] === 'completed') mismatched += 1;
    const app = state.appByAppId(appId);
    for (const p of [...(app?.passwordCredentials ?? []), ...(app?.keyCredentials ?? [])]) {
      const marker = MARKER.exec(p.displayName ?? '');
      if (marker?.[1]?.toLowerCase() === id && latest?.tags['keyId'] !== p.keyId) {
        orphans += 1;
        notes.push(`${id}: orphan credential ${p.keyId}`);
      }
    }
  }
  return { broken, orphans, mismatched, notes };
}

async function round(index: number, o: CampaignOptions): Promise<RoundResult> {
  const point = KILL_POINTS[(index + (o.firstKillPoint ?? 0)) % KILL_POINTS.length]!;
  const tenant = generateTenant({
    organizations: 1,
    projectsPerOrganization: Math.max(1, Math.round(o.connections / 4)),
    connectionsPerProject: 4,
    rotateFraction: 0.5,
    sharedFraction: 0.15,
    otherFailedFraction: 0.1,
    workloadIdentityFraction: 0,
    seed: `${o.seed}-tenant-${index}`,
    passwordReplicationDelaySeconds: index % 3,
    certificateConnections: o.certificateConnections ?? 0,
  });
  const sandbox: Sandbox = await startSandbox({
    scenario: tenant.scenario,
    seed: `${o.seed}-faults-${index}`,
    faults: faultRules(o.faultRate, index),
  });
  const notes: string[] = [];
  try {
    const { state } = sandbox;
    const kinds = new Map<string, ConnectionKind>();
    for (const org of tenant.scenario.organizations)
      for (const c of org.connections)
        kinds.set(
          (c.id ?? stableGuid('endpoint', org.name, c.key)).toLowerCase(),
          tenant.kindOf.get(c.key) ?? 'healthy',
        );
    const env = cliEnv(sandbox, { OLD_SECRET_RETENTION_HOURS: '0', MAX_CONCURRENCY: '4' });
    const watch = new Watch(state);
    let armed: CliChild | undefined;
    let killed = false;
    state.onRequestHandled = (entry) => {
      if (armed && point.matches(entry, state)) {
        armed.kill();
        armed = undefined;
        killed = true;
      }
      watch.observe(entry);
    };
    const outputs: { where: string; text: string }[] = [];
    const addPasswords = (): number =>
      state.requestLog.filter((e) => e.service === 'graph' && e.path.endsWith('/addPassword') && ok(e))
        .length;

    // The run that dies (faults can stop a run before any rotation reaches the phase: then again).
    let runs = 0;
    for (let attempt = 0; attempt < 3 && !killed; attempt++) {
      const armedRun = spawnCli(['remediate', '--json'], env);
      armed = armedRun;
      await armedRun.exit;
      runs += 1;
      armed = undefined;
      outputs.push(
        { where: `round ${index} run ${runs} stdout`, text: armedRun.stdout() },
        { where: `round ${index} run ${runs} stderr`, text: armedRun.stderr() },
      );
    }

    // Re-runs, faults still on, until the tenant has converged.
    let converged = false;
    for (let rerun = 0; rerun < o.maxReruns && !converged; rerun++) {
      const run = spawnCli(['remediate', '--json'], env);
      await run.exit;
      runs += 1;
      outputs.push(
        { where: `round ${index} re-run stdout`, text: run.stdout() },
        {
          where: `round ${index} re-run stderr`,
          text: run.stderr(),
        },
      );
      const c = check(state, kinds, watch);
      converged = c.broken === 0 && c.orphans === 0;
    }

    // Stable: one more run (in process, events and logs captured as telemetry) changes nothing.
    const writesBefore = state.writes().length;
    const lines: string[] = [];
    const events: string[] = [];
    const engine = buildEngine(
      loadConfig(env),
      createLogger((level, line) => lines.push(`${level}: ${line}`), 'debug'),
    );
    const final = await runRemediation(engine.deps, engine.settings, {
      events: (name, properties) => events.push(JSON.stringify({ name, properties })),
    });
    runs += 1;
    const lastWrites = state
      .writes()
      .slice(writesBefore)
      .filter((w) => !/\/(token|endpointproxy)$/.test(w.path));
    if (converged && lastWrites.length > 0)
      notes.push(`round ${index}: the run after convergence still wrote ${lastWrites.length} time(s)`);
    outputs.push(
      { where: `round ${index} log lines`, text: lines.join('\n') },
      { where: `round ${index} telemetry events`, text: events.join('\n') },
      { where: `round ${index} report`, text: JSON.stringify(final.report) },
    );
    state.onRequestHandled = undefined;
    watch.collectSecrets();

    const end = check(state, kinds, watch);
    const leaks = countLeaks(outputs, watch.secrets, notes);
    let duplicates = 0;
    let rotations = 0;
    for (const [id, values] of watch.applied) {
      rotations += values.size;
      if (values.size > 1) {
        duplicates += values.size - 1;
        notes.push(`${id}: ${values.size} new secrets applied`);
      }
    }
    const faults: Record<string, number> = { ...sandbox.faults.stats.byKind };
    return {
      runs,
      kills: killed ? 1 : 0,
      killPoint: killed ? point.name : undefined,
      secretsLost: watch.lost.size + end.mismatched,
      orphans: end.orphans,
      broken: end.broken,
      leaks,
      duplicates,
      converged: end.broken === 0 && end.orphans === 0,
      rotations,
      orphansCreated: Math.max(0, addPasswords() - rotations),
      faults,
      notes: [...notes, ...watch.notes, ...end.notes].map((n) => `round ${index} (${point.name}): ${n}`),
    };
  } finally {
    killRunningClis();
    sandbox.state.onRequestHandled = undefined;
    await sandbox.stop();
  }
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const started = Date.now();
  const result: CampaignResult = {
    rounds: 0,
    runs: 0,
    faultsInjected: 0,
    faultsByKind: {},
    kills: 0,
    killPoints: {},
    secretsLost: 0,
    orphanCredentialsLeft: 0,
    connectionsLeftBroken: 0,
    secretLeaks: 0,
    duplicateRotations: 0,
    roundsNotConverged: 0,
    rotations: 0,
    orphansCreatedByKills: 0,
    seconds: 0,
    details: [],
  };
  for (let i = 0; i < o.rounds; i++) {
    const r = await round(i, o);
    result.rounds += 1;
    result.runs += r.runs;
    result.kills += r.kills;
    if (r.killPoint) result.killPoints[r.killPoint] = (result.killPoints[r.killPoint] ?? 0) + 1;
    for (const [kind, n] of Object.entries(r.faults)) {
      result.faultsByKind[kind] = (result.faultsByKind[kind] ?? 0) + n;
      result.faultsInjected += n;
    }
    result.secretsLost += r.secretsLost;
    result.orphanCredentialsLeft += r.orphans;
    result.connectionsLeftBroken += r.broken;
    result.secretLeaks += r.leaks;
    result.duplicateRotations += r.duplicates;
    result.roundsNotConverged += r.converged ? 0 : 1;
    result.rotations += r.rotations;
    result.orphansCreatedByKills += r.orphansCreated;
    result.details.push(...r.notes);
    o.log?.(
      `round ${i + 1}/${o.rounds}: ${r.killPoint ? `killed ${r.killPoint}` : 'no kill (the phase was not reached)'}, ${r.runs} runs, ${Object.values(r.faults).reduce((a, b) => a + b, 0)} faults, ${r.converged ? 'converged' : 'NOT converged'}`,
    );
  }
  result.seconds = Math.round((Date.now() - started) / 1000);
  return result;
}
