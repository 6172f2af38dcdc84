/**
 * Simulated Azure DevOps Services: projects and the service endpoints REST API (7.1 spec,
 * `specs/azure-devops/7.1/serviceEndpoint.json`) for the organizations of the scenario, at
 * `/{organization}`. It reproduces the behaviours that make service connections hard to repair:
 *
 * - the list hides failed connections unless `includeFailed=true`;
 * - confidential parameters (`serviceprincipalkey`) never come back; a PUT without them keeps them;
 * - a PUT of a connection still `creationMode: Automatic` makes Azure DevOps rotate the app secret
 *   itself and remove every other password on the app;
 * - with `creationMode: Manual`, `azureSpnRoleAssignmentId`, `spnObjectId`, `appObjectId` are refused;
 * - `authorization.parameters.accesstoken: null` (or `''`) breaks the connection;
 * - isReady follows the stored credential through the shared Entra ID rule; TestConnection tests
 *   what is sent (a confidential key sent null means the stored value, one left out means none);
 * - a Manual spnKey PUT must carry `serviceprincipalkey` (null keeps the stored one, absent is a 400),
 *   a Manual spnCertificate PUT `servicePrincipalCertificate` likewise;
 * - a plain PUT to `WorkloadIdentityFederation` drops the secret or certificate, whichever it held;
 * - PUT/DELETE are organization-level and need the organization-level Administrator role;
 *   `actionFilter=manage` also lists connections to project-level Administrators; DELETE needs
 *   `projectIds`; role assignments can be read per scope (`securityroles`);
 * - a caller who may not view a connection's details gets only `{id, name}` from GET;
 * - `ConvertAuthenticationScheme` may answer while the conversion is still InProgress;
 * - a bad PAT gets HTTP 203 with an HTML sign-in page, anonymous calls 401 TF400813;
 * - every call needs an `api-version` (query or Accept header).
 *
 * Error bodies use Azure DevOps' WrappedException JSON (`$id`, `message`, `typeName`, `typeKey`, …).
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { SandboxContext } from './index';
import type { TenantState } from './model';
import { takeComputedEndpoints } from './scenario';
import type { ServiceDefinition } from './server';
import { authenticator } from './devops/auth';
import { mountEndpointRoutes } from './devops/endpoints';
import { formatError, sendError, TYPE, wrapped } from './devops/errors';
import { mountProjectRoutes } from './devops/projects';
import { computeStatus } from './devops/status';
import { mountEndpointProxy } from './devops/testConnection';

export function devopsService(ctx: SandboxContext): ServiceDefinition {
  const state: TenantState = ctx.state;

  // Connections whose state the scenario left to the service: settle them now, once.
  for (const ref of takeComputedEndpoints(state)) {
    const [orgName, endpointId] = ref.split('/') as [string, string];
    const org = state.organization(orgName);
    const endpoint = org?.endpoints.get(endpointId);
    if (endpoint) computeStatus(state, endpoint);
  }

  function mount(app: Express): void {
    app.use(authenticator(ctx));
    app.use(express.json({ limit: '1mb', type: ['application/json', 'application/*+json', 'text/json'] }));
    mountProjectRoutes(app, ctx);
    mountEndpointRoutes(app, ctx);
    mountEndpointProxy(app, ctx);

    // Anything else under an organization: Azure DevOps' "not registered" answer.
    app.use((req: Request, res: Response) => {
      sendError(
        res,
        404,
        wrapped(
          `API resource location ${req.method} ${req.path} is not registered on ${ctx.urls.devops}/.`,
          TYPE.resourceNotFound,
          'VssResourceNotFoundException',
        ),
      );
    });

    // Malformed JSON bodies and other thrown errors.
    app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) return next(err);
      const status = (err as { status?: number }).status ?? 500;
      sendError(
        res,
        status,
        status === 400
          ? wrapped('The request body could not be parsed as JSON.', TYPE.argument, 'ArgumentException')
          : wrapped('TF400898: An Internal Error Occurred.', TYPE.argument, 'InternalServerErrorException'),
      );
    });
  }

  return {
    name: 'devops',
    mount,
    formatError,
    rateLimitHeaders: true,
    isReadOnly: (req) =>
      req.method === 'POST' && /\/_apis\/serviceendpoint\/endpointproxy\/?$/i.test(req.path),
  };
}
