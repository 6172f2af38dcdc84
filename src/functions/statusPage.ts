/**
 * `GET /api/status`: the status page, an HTML document a person reads in a browser (connections by
 * finding, secret expiry timeline, last runs, and what to do for each connection that needs a
 * person). Thin: read the run ledger, render (`src/status/render.ts`), add strict headers.
 *
 * Function key (`authLevel: 'function'`) and, as for the HTTP API (`./http`, fail closed), a caller
 * signed in through App Service Authentication with the app role `Remediation.Reader` (or
 * `Remediation.Operator`); without App Service Authentication a 401 unless
 * `API_UNSAFE_ALLOW_KEY_ONLY_ACCESS` is set.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import type { RunLedger } from '../remediation/ports';
import { renderStatusPage } from '../status/render';
import { errorMessage } from '../telemetry';
import { services, withInvocation } from './context';
import { HttpError, ROLES, authorize, type ApiAccess } from './http';

/** How many runs the page lists. */
const STATUS_RUN_LIMIT = 20;

/** The app role a signed-in caller needs (App Service Authentication); `Remediation.Operator` also reads. */
export const STATUS_ROLE = ROLES.reader;

/** Headers of every response: no script, no external resource, no sniffing, no caching. */
const STATUS_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** What the handler needs; each defaults to the app's lazily built services (`./context`). */
export interface StatusPageDeps {
  /** The run ledger (only its two reads are used). */
  ledger: () => Promise<Pick<RunLedger, 'latestReport' | 'listRuns'>>;
  /** How callers are authenticated (App Service Authentication, or key-only access allowed). */
  access: () => Promise<ApiAccess>;
  now: () => Date;
}

const defaultDeps: StatusPageDeps = {
  ledger: () => services().ledger(),
  access: () => services().functionSettings(),
  now: () => services().clock.now(),
};

function plain(status: number, text: string): HttpResponseInit {
  return {
    status,
    headers: { ...STATUS_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' },
    body: text,
  };
}

/** Builds the handler; tests pass their own ledger, clock and authentication setting. */
export function createStatusPageHandler(
  overrides: Partial<StatusPageDeps> = {},
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  const deps: StatusPageDeps = { ...defaultDeps, ...overrides };
  return (request, context) =>
    withInvocation(context, async () => {
      let access: ApiAccess;
      try {
        access = await deps.access();
      } catch (err) {
        context.error('Status page: the app settings are invalid', { error: errorMessage(err) });
        return plain(500, 'The status page is unavailable: the app settings are invalid (see the logs).');
      }
      try {
        // The API's role check: 401 without a valid principal, 403 without the role.
        authorize(request, STATUS_ROLE, access);
      } catch (err) {
        if (err instanceof HttpError) return plain(err.status, err.message);
        throw err;
      }

      try {
        const ledger = await deps.ledger();
        const [latest, runs] = await Promise.all([ledger.latestReport(), ledger.listRuns(STATUS_RUN_LIMIT)]);
        return {
          status: 200,
          headers: { ...STATUS_HEADERS },
          body: renderStatusPage({ latest, runs, now: deps.now() }),
        };
      } catch (err) {
        const message = errorMessage(err);
        context.warn('Status page: could not read the run ledger', { error: message });
        return {
          status: 503,
          headers: { ...STATUS_HEADERS, 'Retry-After': '60' },
          body: renderStatusPage({
            runs: [],
            now: new Date(),
            warnings: [`The run history could not be read: ${message}`],
          }),
        };
      }
    });
}

/** `GET /api/status` */
export const statusPage = createStatusPageHandler();

app.http('statusPage', { route: 'status', methods: ['GET'], authLevel: 'function', handler: statusPage });
