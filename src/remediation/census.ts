/**
 * The usage census (DESIGN invariant 9): every connection that names each app, in every configured
 * organization and project, whatever `AZDO_PROJECTS` and the remediation policy say (those decide
 * what is remediated, not who may use a credential). A superseded credential is removed only when
 * no other connection in the census may still hold it; a census that missed part of the tenant
 * (an organization or project that could not be listed) keeps every credential.
 */
import type { DiscoveredConnection, DiscoveryProblem } from './discovery';
import type { SecretStateStore } from './ports';

/** A connection that names an app (by its client id, `serviceprincipalid`). */
export interface AppUser {
  organizationUrl: string;
  connectionId: string;
  connectionName: string;
}

/** What the census says about one connection's app: who else names it, and what it could not see. */
export interface AppUsage {
  /** Other connections (not the one being remediated) that name the same app. */
  others: AppUser[];
  /** Why the census may have missed connections (empty: it saw every organization and project). */
  gaps: string[];
}

export interface UsageCensus {
  /** The usage of `appId` as seen from one connection (which is not counted among `others`). */
  usageFor(appId: string, organizationUrl: string, connectionId: string): AppUsage;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Describes what discovery could not list, for the report ("org X unreadable"). */
function censusGaps(problems: DiscoveryProblem[]): string[] {
  return problems.map((p) =>
    p.project
      ? `project '${p.project}' of ${p.organizationUrl} unreadable (${p.message})`
      : `organization ${p.organizationUrl} unreadable (${p.message})`,
  );
}

/**
 * Builds the census from an unfiltered discovery of every configured organization. `problems` are
 * the listings that failed: each one makes the census incomplete.
 */
export function buildCensus(connections: DiscoveredConnection[], problems: DiscoveryProblem[]): UsageCensus {
  const byApp = new Map<string, AppUser[]>();
  for (const { organizationUrl, connection } of connections) {
    // Every scheme counts: a converted connection can be reverted to the secret it used.
    const appId = connection.authorization.parameters['serviceprincipalid']?.trim().toLowerCase();
    if (!appId) continue;
    const users = byApp.get(appId) ?? [];
    users.push({ organizationUrl, connectionId: connection.id, connectionName: connection.name });
    byApp.set(appId, users);
  }
  const gaps = censusGaps(problems);
  return {
    usageFor: (appId, organizationUrl, connectionId) => ({
      others: (byApp.get(appId.toLowerCase()) ?? []).filter(
        (u) => !(same(u.connectionId, connectionId) && same(u.organizationUrl, organizationUrl)),
      ),
      gaps: [...gaps],
    }),
  };
}

/** The most other connections a fan-out work item carries; beyond that the census counts as incomplete. */
export const MAX_CARRIED_USERS = 20;
/** What the carried part of a work item may take of a queue message (the worker accepts 8 KiB in all). */
const MAX_CARRIED_CHARS = 6000;

/** Shrinks a usage to what fits a queue message; dropping names makes it incomplete, never smaller. */
export function carriedUsage(usage: AppUsage): AppUsage {
  const gaps = usage.gaps.slice(0, 5).map((g) => (g.length > 300 ? `${g.slice(0, 299)}…` : g));
  if (usage.gaps.length > 5) gaps.push(`${usage.gaps.length - 5} more listing(s) unreadable`);
  else if (usage.others.length > MAX_CARRIED_USERS)
    gaps.push(`${usage.others.length} other connections name the app, more than a work item carries`);
  let others = usage.others
    .slice(0, MAX_CARRIED_USERS)
    .map((u) => ({ ...u, connectionName: u.connectionName.slice(0, 100) }));
  if (JSON.stringify({ others, gaps }).length > MAX_CARRIED_CHARS) {
    // Too long to carry: an empty list with a gap keeps every credential, which is safe.
    others = [];
    gaps.push('the connections that name the app do not fit a work item');
  }
  return { others, gaps };
}

/** Decides, credential by credential, whether the census allows removing it (expired ones aside). */
interface RemovalJudge {
  /** Undefined when `keyId` may be removed; otherwise why it is kept. */
  keepReason(keyId: string): string | undefined;
  /** No census came with the operation (a one-connection run): nothing superseded is removed. */
  noCensus: boolean;
}

function describeUser(u: AppUser): string {
  return `'${u.connectionName}' (${u.connectionId}) in ${u.organizationUrl}`;
}

/**
 * Reads, for each other connection naming the app, the credential this service's own Key Vault
 * record says it holds (phase verified or completed, same app). A superseded credential `X` may be
 * removed when the census is complete and every other connection is known to hold a credential
 * other than `X`; a record that is missing, unreadable, unverified or of another app proves nothing.
 */
export async function judgeRemovals(
  usage: AppUsage | undefined,
  appId: string,
  store: Pick<SecretStateStore, 'getRecord'>,
): Promise<RemovalJudge> {
  if (!usage)
    return {
      noCensus: true,
      keepReason: () =>
        'no usage census in a one-connection run (other connections may name the app); a full run removes it',
    };
  const held = new Map<AppUser, string | undefined>();
  for (const other of usage.others) {
    const record = await store.getRecord(other.connectionId).catch(() => undefined);
    held.set(
      other,
      record && same(record.appId, appId) && (record.phase === 'verified' || record.phase === 'completed')
        ? record.keyId
        : undefined,
    );
  }
  return {
    noCensus: false,
    keepReason: (keyId) => {
      const reasons: string[] = [];
      const blockers = usage.others.filter((o) => {
        const k = held.get(o);
        return k === undefined || same(k, keyId);
      });
      if (blockers.length > 0)
        reasons.push(
          `${blockers.length} other connection(s) name app ${appId} and may still use it: ${blockers
            .slice(0, 5)
            .map(describeUser)
            .join(', ')}${blockers.length > 5 ? ', …' : ''}`,
        );
      if (usage.gaps.length > 0) reasons.push(`census incomplete: ${usage.gaps.join('; ')}`);
      return reasons.length > 0 ? reasons.join('; ') : undefined;
    },
  };
}
