/**
 * Helpers for tests that run the product's composition root (`buildEngine`, the real SDK clients)
 * against the sandbox: the scenario's connections by their `case` label, a clock that follows the
 * sandbox's, per-connection request filters, Key Vault reads, and secret-leak checks that never
 * print a secret.
 */
import type { Sandbox } from '../../sandbox/index';
import type { AppRecord, EndpointRecord, RequestLogEntry, VaultSecretVersion } from '../../sandbox/model';
import { stableGuid } from '../../sandbox/scenario';
import { INTENT_CONTENT_TYPE } from '../../src/clients/keyVaultRotationRecord';
import { buildEngine, type Engine } from '../../src/composition';
import { loadConfig } from '../../src/config';
import type { Clock } from '../../src/remediation/ports';
import type { ConnectionReport, RunReport } from '../../src/remediation/report';
import type { Logger } from '../../src/telemetry';

/**
 * The engine's clock, following the sandbox's (so `advanceClock` moves both). `sleep` really waits,
 * or, with `advanceOnSleep`, moves the sandbox clock forward instead (replication lag, backoff).
 */
export function sandboxClock(sandbox: Sandbox, advanceOnSleep = false): Clock {
  return {
    now: () => sandbox.state.now(),
    sleep: (ms) => {
      if (advanceOnSleep) {
        sandbox.state.advanceClock(ms);
        return Promise.resolve();
      }
      return new Promise((resolve) => setTimeout(resolve, ms));
    },
  };
}

/** The engine as the product builds it, from the sandbox's settings plus `settings`. */
export function engineFor(
  sandbox: Sandbox,
  log: Logger,
  options: { settings?: Record<string, string>; clock?: Clock } = {},
): Engine {
  return buildEngine(
    loadConfig({ ...sandbox.env, ...(options.settings ?? {}) }),
    log,
    options.clock ?? sandboxClock(sandbox),
  );
}

/** One connection of the scenario, found by its `case` label. */
export interface ScenarioCase {
  label: string;
  organization: string;
  key: string;
  name: string;
  connectionId: string;
  /** The live record in the sandbox (changes as the product works). */
  endpoint: EndpointRecord;
  /** The connection's app (deleted apps included), when it names one. */
  app?: AppRecord;
}

/** Every connection of the scenario that carries a `case` label, by label. */
export function scenarioCases(sandbox: Sandbox): Map<string, ScenarioCase> {
  const cases = new Map<string, ScenarioCase>();
  for (const org of sandbox.scenario.organizations)
    for (const c of org.connections) {
      if (!c.case) continue;
      const connectionId = c.id ?? stableGuid('endpoint', org.name, c.key);
      const endpoint = sandbox.state.organization(org.name)?.endpoints.get(connectionId);
      if (!endpoint) throw new Error(`Connection '${c.key}' is not in the sandbox.`);
      const scenarioApp = c.app ? sandbox.scenario.apps.find((a) => a.key === c.app) : undefined;
      const app = scenarioApp
        ? sandbox.state.apps.get(scenarioApp.objectId ?? stableGuid('app-object', scenarioApp.key))
        : undefined;
      if (cases.has(c.case)) throw new Error(`Two connections share the case '${c.case}'.`);
      cases.set(c.case, {
        label: c.case,
        organization: org.name,
        key: c.key,
        name: c.name,
        connectionId,
        endpoint,
        app,
      });
    }
  return cases;
}

/** The id a scenario password gets in the sandbox. */
export function passwordKeyId(appKey: string, passwordKey: string): string {
  return stableGuid('password', appKey, passwordKey);
}

/** The single report entry of a connection (fails when it is missing or listed twice). */
export function entryFor(report: RunReport, connectionId: string): ConnectionReport {
  const entries = report.connections.filter((c) => c.connectionId === connectionId);
  if (entries.length !== 1)
    throw new Error(`Expected one report entry for ${connectionId}, found ${entries.length}.`);
  return entries[0]!;
}

/** Requests (from `from` on) whose path names any of `ids` (connection id, app object id, …). */
export function requestsTouching(sandbox: Sandbox, ids: string[], from = 0): RequestLogEntry[] {
  const wanted = ids.map((id) => id.toLowerCase());
  return sandbox.state.requestLog
    .slice(from)
    .filter((e) => wanted.some((id) => decodeURIComponent(e.path).toLowerCase().includes(id)));
}

/** Writes (from `from` on) that concern a connection: its endpoint, its app, its Key Vault secret. */
export function writesFor(sandbox: Sandbox, c: ScenarioCase, from = 0): RequestLogEntry[] {
  return requestsTouching(sandbox, [c.connectionId, ...(c.app ? [c.app.id] : [])], from).filter(
    (e) => e.write,
  );
}

/**
 * The latest Key Vault version of a connection's rotation record, if any (a version holding only a
 * rotation's intent, noted before its addPassword, is no record).
 */
export function vaultVersion(sandbox: Sandbox, connectionId: string): VaultSecretVersion | undefined {
  const secret = sandbox.state.vault.secrets.get(`sc-remediator-${connectionId}`.toLowerCase());
  if (!secret || secret.deleted) return undefined;
  const latest = secret.versions[secret.versions.length - 1];
  return latest?.contentType === INTENT_CONTENT_TYPE ? undefined : latest;
}

/** Versions of a connection's secret that hold a credential (not only an intent). */
export function storedVersions(sandbox: Sandbox, connectionId: string): VaultSecretVersion[] {
  const secret = sandbox.state.vault.secrets.get(`sc-remediator-${connectionId}`.toLowerCase());
  return (secret?.versions ?? []).filter((v) => v.contentType !== INTENT_CONTENT_TYPE);
}

/**
 * Writes for a connection, less the one that noted a rotation's intent in Key Vault when nothing
 * else reached Key Vault (an addPassword Graph refused): that note is the evidence of invariant 4.
 */
export function writesBesidesIntent(sandbox: Sandbox, c: ScenarioCase, from = 0): RequestLogEntry[] {
  const onlyIntent = storedVersions(sandbox, c.connectionId).length === 0;
  return writesFor(sandbox, c, from).filter(
    (w) => !(onlyIntent && w.service === 'keyvault' && w.method === 'PUT'),
  );
}

/** A deep copy of a sandbox record, to compare with later. */
export function snapshot<T>(value: T): T {
  return structuredClone(value);
}

/**
 * Fails when `text` contains any of `secrets`; the message says where and how many, never which.
 */
export function expectNoSecrets(text: string, secrets: Iterable<string>, where: string): void {
  let leaked = 0;
  for (const secret of secrets) if (secret.length > 0 && text.includes(secret)) leaked += 1;
  if (leaked > 0) throw new Error(`${leaked} secret value(s) leaked into ${where}.`);
}
