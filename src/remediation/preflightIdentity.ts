/**
 * Preflight of the identity (preflight.ts): a Microsoft Graph token can be had, and its `roles`
 * claim holds Application.ReadWrite.OwnedBy (needed) and Policy.Read.All (optional).
 */
import { errorMessage } from '../telemetry';
import type { AddCheck, CheckStatus, PreflightCheck, PreflightGraph } from './preflight';
import { fixes, OWNED_BY, POLICY_READ, READ_WRITE_ALL, type Who } from './preflightFixes';

export interface CallerIdentity {
  objectId?: string;
  appId?: string;
  roles: string[];
}

/** Checks the identity; `who` names it in fixes (placeholders when no token was had). */
export async function checkIdentity(
  graph: PreflightGraph,
  add: AddCheck,
): Promise<{ identity: CallerIdentity | undefined; who: Who }> {
  let identity: CallerIdentity | undefined;
  try {
    identity = await graph.callerIdentity();
    add(
      graphRow(
        'Graph token',
        'ok',
        `object id ${identity.objectId ?? 'unknown'}, client id ${identity.appId ?? 'unknown'}`,
      ),
    );
  } catch (err) {
    add(graphRow('Graph token', 'missing', errorMessage(err), fixes.graphToken()));
  }
  const who: Who = {
    objectId: identity?.objectId ?? '<object id of the identity>',
    appId: identity?.appId ?? '<client id of the identity>',
  };
  if (identity) {
    const roles = identity.roles;
    const ownedBy = `Graph ${OWNED_BY}`;
    if (roles.includes(OWNED_BY))
      add(graphRow(ownedBy, 'ok', 'granted (add and remove passwords of the apps the identity owns)'));
    else if (roles.includes(READ_WRITE_ALL))
      add(
        graphRow(
          ownedBy,
          'warning',
          `${READ_WRITE_ALL} is granted instead: it works, but lets the identity change every app in the tenant`,
          `Grant ${OWNED_BY} and remove ${READ_WRITE_ALL}: ${fixes.graphPermission(who, OWNED_BY)}`,
        ),
      );
    else
      add(
        graphRow(
          ownedBy,
          'missing',
          `not in the token's roles (${roles.length ? roles.join(', ') : 'none'})`,
          fixes.graphPermission(who, OWNED_BY),
        ),
      );
    const policyRead = `Graph ${POLICY_READ}`;
    add(
      roles.includes(POLICY_READ)
        ? graphRow(policyRead, 'ok', 'granted (app management policy caps are respected up front)')
        : graphRow(
            policyRead,
            'warning',
            'optional, not granted: a lifetime cap or a ban on passwords is only learnt when addPassword refuses',
            fixes.graphPermission(who, POLICY_READ),
          ),
    );
  }
  return { identity, who };
}

/** A row of the identity area: every one is about Microsoft Graph. */
function graphRow(name: string, status: CheckStatus, detail: string, fix?: string): PreflightCheck {
  return {
    area: 'identity',
    name,
    target: 'Microsoft Graph',
    status,
    detail,
    ...(fix === undefined ? {} : { fix }),
  };
}
