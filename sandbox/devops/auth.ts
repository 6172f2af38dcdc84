/** Who is calling: PAT or Entra ID bearer token, organization membership and roles. */
import type { NextFunction, Request, Response } from 'express';
import type { SandboxContext } from '../index';
import type { IdentityRecord, OrgMember } from '../model';
import { stableGuid } from '../scenario';
import { AUDIENCES } from '../tokens';
import { sendError, SIGN_IN_PAGE, TYPE, wrapped } from './errors';
import { lower } from './fields';
import type { Caller } from './request';

/** The Azure DevOps identity id of a member (not its Entra object id), as connectionData gives it. */
export function devopsIdentityId(identity: IdentityRecord): string {
  return stableGuid('ado-identity', identity.key);
}

/** Whether the member administers the connections of `projectName` (organization or project level). */
export function administersProject(member: OrgMember, projectName: string): boolean {
  return (
    member.endpointAdministrator ||
    (member.projectAdministratorOf ?? []).some((p) => lower(p) === lower(projectName))
  );
}

/** The middleware that authenticates every request and resolves its organization. */
export function authenticator(
  ctx: SandboxContext,
): (req: Request, res: Response, next: NextFunction) => void {
  const state = ctx.state;

  function challenge(res: Response): void {
    res.setHeader('WWW-Authenticate', [
      `Bearer authorization_uri=${ctx.urls.authority}/${state.tenantId}`,
      `Basic realm="${ctx.urls.devops}/"`,
      'TFS-Federated',
    ]);
  }

  function anonymous(res: Response): void {
    challenge(res);
    sendError(
      res,
      401,
      wrapped(
        'TF400813: Resource not available for anonymous access. Client authentication required.',
        TYPE.unauthorized,
        'UnauthorizedRequestException',
      ),
    );
  }

  function identify(req: Request, res: Response): IdentityRecord | undefined {
    const authorization = req.headers.authorization;
    if (!authorization) {
      anonymous(res);
      return undefined;
    }
    if (/^Basic\s+/i.test(authorization)) {
      const decoded = Buffer.from(authorization.replace(/^Basic\s+/i, '').trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const pat = colon >= 0 ? decoded.slice(colon + 1) : decoded;
      const identity = pat ? state.identityByPat(pat) : undefined;
      if (identity) return identity;
      // The real service answers a bad or expired PAT with its sign-in page (HTTP 203), unless the
      // client asked for a plain 401 with `X-TFS-FedAuthRedirect: Suppress`.
      if (lower(String(req.headers['x-tfs-fedauthredirect'] ?? '')) === 'suppress') {
        anonymous(res);
        return undefined;
      }
      res.status(203).type('text/html; charset=utf-8').send(SIGN_IN_PAGE);
      return undefined;
    }
    const check = ctx.tokens.verifyBearer(authorization, AUDIENCES.devops);
    if (!check.ok) {
      anonymous(res);
      return undefined;
    }
    const identity =
      state.identities.get(check.claims.sbx) ??
      (check.claims.appid ? state.identityByAppId(check.claims.appid) : undefined);
    if (!identity) {
      challenge(res);
      sendError(
        res,
        401,
        wrapped(
          `TF400813: The user '${check.claims.tid}\\${check.claims.oid}' is not authorized to access this resource.`,
          TYPE.unauthorized,
          'UnauthorizedRequestException',
        ),
      );
      return undefined;
    }
    return identity;
  }

  /** Authenticates the caller for the organization in the first path segment. */
  function authenticate(req: Request, res: Response, next: NextFunction): void {
    const identity = identify(req, res);
    if (!identity) return;
    res.locals['caller'] = identity.key;
    let orgName = req.path.split('/')[1] ?? '';
    try {
      orgName = decodeURIComponent(orgName);
    } catch {
      // keep it as sent
    }
    const org = state.organization(orgName);
    if (!org) {
      sendError(
        res,
        404,
        wrapped(
          `TF400813: The organization '${orgName}' does not exist or you do not have access to it.`,
          TYPE.hostNotFound,
          'HostDoesNotExistException',
        ),
      );
      return;
    }
    const member = org.members.find((m) => m.identity === identity.key);
    if (!member) {
      challenge(res);
      sendError(
        res,
        401,
        wrapped(
          `TF400813: The user '${state.tenantId}\\${identity.objectId}' is not authorized to access this resource.`,
          TYPE.unauthorized,
          'UnauthorizedRequestException',
        ),
      );
      return;
    }
    const caller: Caller = { identity, org, member };
    res.locals['devopsCaller'] = caller;
    next();
  }

  return authenticate;
}
