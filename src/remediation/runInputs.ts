/**
 * What a run reads before it plans a connection: its settings (`RunSettings`); the rotation records,
 * listed once for a whole run (`RecordListing`) or read one by one (`readRecord`); the apps, read
 * from Graph once per app and ahead of each connection's turn; and, from the run ledger, since when
 * each failing connection has failed (`trackFailing`).
 */
import type pLimit from 'p-limit';
import { errorMessage } from '../telemetry';
import type { AppLookup } from './assess';
import type { DiscoveredConnection } from './discovery';
import type { EngineDeps, RotationSettings } from './engine';
import { OffHeapTexts } from './offHeapTexts';
import type { RemediationPolicy } from './policyFile';
import type { ApplicationInfo, RotationRecord } from './ports';
import type { TurnGate } from './turns';

export interface RunSettings extends RotationSettings {
  organizations: { url: string; name: string }[];
  projects?: string[];
  rotateDaysBeforeExpiry: number;
  tenantId?: string;
  /** `ADDITIONAL_TENANT_IDS`: other tenants whose connections are worked on through their own Graph. */
  additionalTenantIds?: string[];
  maxConcurrency: number;
  dryRun: boolean;
  /** `REMEDIATION_POLICY[_FILE]`; absent: rotate everything, convert nothing. */
  policy?: RemediationPolicy;
  /** `ENABLE_RETIREMENT`, `RETIRE_FAILED_AFTER_DAYS` (0: only connections whose app is gone). */
  retirement?: { enabled: boolean; failedAfterDays?: number };
}

/**
 * The rotation records of a whole run, listed once (one Key Vault call per 25 connections) from the
 * start of discovery on, and handed out as their pages arrive: a connection is planned as soon as its
 * record has been listed, or once the listing has ended without it. Should the listing fail, the
 * connections it had not reached read their own record.
 */
export class RecordListing implements TurnGate {
  /**
   * Listed records not yet handed out: a slot of `texts`, the record as JSON text outside the heap
   * (memory: most wait a while for their turn).
   */
  private readonly found = new Map<string, number | Error>();
  private readonly texts = new OffHeapTexts(1024);
  private slots = 0;
  private readonly handedOut = new Set<string>();
  private settled = false;
  private failed = false;
  private readonly listeners: ((connectionId: string | undefined) => void)[] = [];

  constructor(pages: AsyncIterable<Map<string, RotationRecord | Error>>, log: EngineDeps['log']) {
    void this.consume(pages, log);
  }

  private async consume(pages: AsyncIterable<Map<string, RotationRecord | Error>>, log: EngineDeps['log']) {
    try {
      for await (const page of pages)
        for (const [id, record] of page) {
          if (record instanceof Error) this.found.set(id, record);
          else {
            this.texts.set(this.slots, JSON.stringify(record));
            this.found.set(id, this.slots);
            this.slots += 1;
          }
          for (const listener of this.listeners) listener(id);
        }
    } catch (err) {
      this.failed = true;
      log.warn('Could not list the rotation records; the rest are read one by one', {
        error: errorMessage(err),
      });
    }
    this.settled = true;
    for (const listener of this.listeners) listener(undefined);
  }

  /** Whether the connection's record (lower-cased id) is known from the listing, or the listing is over. */
  isReady(connectionId: string): boolean {
    return this.settled || this.found.has(connectionId) || this.handedOut.has(connectionId);
  }

  /** `listener(id)` as each record is listed, `listener(undefined)` once the listing is over. */
  onReady(listener: (connectionId: string | undefined) => void): void {
    this.listeners.push(listener);
  }

  /**
   * The listed record (`record` undefined: the listing is complete and has none), or 'read' when
   * unknown. A record is handed out once and then forgotten (memory); asked again, it is 'read'.
   */
  lookup(connectionId: string): { record: RotationRecord | undefined } | 'read' {
    const id = connectionId.toLowerCase();
    if (this.handedOut.has(id)) return 'read';
    const found = this.found.get(id);
    if (found instanceof Error) return 'read';
    if (found !== undefined) {
      const text = this.texts.get(found);
      this.found.delete(id);
      this.texts.delete(found);
      this.handedOut.add(id);
      if (text !== undefined) return { record: JSON.parse(text) as RotationRecord };
    }
    return this.settled && !this.failed ? { record: undefined } : 'read';
  }
}

/** When each app of this run was read (engine clock, ms). */
export const appReadAt = new WeakMap<ApplicationInfo, number>();

/** Reads an app from Graph for the plan, noting when; never rejects (a failure is an `AppLookupError`). */
function readAppForPlan(appId: string, deps: EngineDeps): Promise<AppLookup> {
  return deps.graph.getApplicationByAppId(appId).then(
    (found): AppLookup => {
      if (found) appReadAt.set(found, deps.clock.now().getTime());
      return found;
    },
    (err: unknown): AppLookup => ({ error: describeError(err, 'graph') }),
  );
}

/**
 * Where a connection's app lookup is kept for the run: its tenant and client id. A multi-tenant app
 * has one client id in every tenant, but each tenant's Graph answers for its own directory (the app
 * object in its home tenant, not found elsewhere): one tenant's answer must never stand for another's,
 * or a connection could be judged, rotated or retired on the wrong tenant's app.
 */
export function appCacheKey(connection: DiscoveredConnection['connection']): string | undefined {
  const appId = connection.authorization.parameters['serviceprincipalid'];
  if (!appId) return undefined;
  const tenantId = connection.authorization.parameters['tenantid'] ?? '';
  return `${tenantId.toLowerCase()}/${appId.toLowerCase()}`;
}

/** The app's lookup for this run: started once per app and tenant, shared by the connections that use it. */
export function lookupApp(
  apps: Map<string, Promise<AppLookup>>,
  key: string,
  appId: string,
  deps: EngineDeps,
): Promise<AppLookup> {
  let lookup = apps.get(key);
  if (!lookup) {
    lookup = readAppForPlan(appId, deps);
    apps.set(key, lookup);
  }
  return lookup;
}

/**
 * Reads a connection's app ahead of its turn, through `reads` (at most the run's concurrency at once,
 * apart from the loop's own calls), so the loop's workers find it ready and a rotation finds it fresh.
 */
export function readAppAhead(
  { connection }: DiscoveredConnection,
  apps: Map<string, Promise<AppLookup>>,
  deps: EngineDeps,
  reads: ReturnType<typeof pLimit>,
): Promise<unknown> {
  const appId = connection.authorization.parameters['serviceprincipalid'];
  const key = appCacheKey(connection);
  if (connection.authorization.scheme !== 'ServicePrincipal' || !appId || !key) return Promise.resolve();
  let lookup = apps.get(key);
  if (!lookup) {
    lookup = reads(() => readAppForPlan(appId, deps));
    apps.set(key, lookup);
  }
  return lookup;
}

/** Client ids that more than one of the connections names. */
export function appsUsedTwice(connections: DiscoveredConnection[]): Set<string> {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const { connection } of connections) {
    const appId = connection.authorization.parameters['serviceprincipalid']?.toLowerCase();
    if (!appId) continue;
    if (seen.has(appId)) twice.add(appId);
    seen.add(appId);
  }
  return twice;
}

/** The connection's record: from the run's listing when it has it, else read on its own. */
export async function readRecord(
  connectionId: string,
  deps: EngineDeps,
  listing: RecordListing | undefined,
): Promise<{ record?: RotationRecord; error?: string }> {
  const listed = listing?.lookup(connectionId);
  if (listed && listed !== 'read') return { record: listed.record };
  try {
    return { record: await deps.store.getRecord(connectionId) };
  } catch (err) {
    return { error: errorMessage(err) };
  }
}

function describeError(
  err: unknown,
  service: string,
): { message: string; status?: number; code?: string; service?: string } {
  const e = err as { status?: unknown; code?: unknown };
  return {
    message: errorMessage(err),
    status: typeof e.status === 'number' ? e.status : undefined,
    code: typeof e.code === 'string' ? e.code : undefined,
    service,
  };
}

/**
 * For RETIRE_FAILED_AFTER_DAYS: since when each failing connection has failed, from the run ledger
 * (first sighting), noting this run's sightings unless `write` is false. Best effort: without the
 * ledger, or when it cannot be read, no connection is retired for its age this run.
 */
export async function trackFailing(
  connections: DiscoveredConnection[],
  deps: EngineDeps,
  settings: RunSettings,
  orgNameOf: (url: string) => string,
  write: boolean,
): Promise<Map<string, string>> {
  const since = new Map<string, string>();
  const ledger = deps.retirements;
  if (!ledger || !settings.retirement?.failedAfterDays) return since;
  const byOrg = new Map<string, DiscoveredConnection[]>();
  for (const c of connections) {
    const list = byOrg.get(c.organizationUrl) ?? [];
    list.push(c);
    byOrg.set(c.organizationUrl, list);
  }
  for (const [url, list] of byOrg) {
    const failing = (c: DiscoveredConnection) =>
      !c.connection.isReady || c.connection.operationStatus?.state?.toLowerCase() === 'failed';
    const ids = {
      failing: list.filter(failing).map((c) => c.connection.id),
      healthy: list.filter((c) => !failing(c)).map((c) => c.connection.id),
    };
    try {
      const found = write
        ? await ledger.trackFailing(orgNameOf(url), ids, deps.clock.now())
        : await ledger.failingSince(orgNameOf(url), ids.failing);
      for (const [id, at] of found) since.set(`${url.toLowerCase()}|${id.toLowerCase()}`, at);
    } catch (err) {
      deps.log.warn('Could not read or note failing connections in the run ledger', {
        error: errorMessage(err),
      });
    }
  }
  return since;
}
