/**
 * Hosts one sandbox service on its own HTTPS port on 127.0.0.1: request log, fault injection in
 * front of the service's routes, and a fast shutdown. Services are Express apps built from the
 * shared TenantState.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { FaultDecision, FaultInjector } from './faults';
import type { RequestLogEntry, ServiceName, TenantState } from './model';
import type { ServerCertificate } from './tls';

/** How a service shapes an error body (each real service has its own JSON). */
export type ErrorFormatter = (status: number, code: string, message: string) => unknown;

export interface ServiceDefinition {
  name: ServiceName;
  /** Registers the service's routes on `app`. */
  mount(app: Express): void;
  /** The service's error JSON, used for injected faults. */
  formatError: ErrorFormatter;
  /** Whether this service sends Azure DevOps' X-RateLimit-* headers. */
  rateLimitHeaders?: boolean;
  /** Requests that change nothing although their method is POST (token requests, TestConnection). */
  isReadOnly?: (req: Request) => boolean;
}

export interface ServiceHost {
  name: ServiceName;
  url: string;
  port: number;
  close(): Promise<void>;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function callerKey(req: Request): string {
  const auth = req.headers.authorization;
  if (!auth) return 'anonymous';
  return createHash('sha256').update(auth).digest('hex').slice(0, 16);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function setRateLimitHeaders(res: Response, decision: FaultDecision): void {
  if (!decision.rateLimit) return;
  res.setHeader('X-RateLimit-Resource', 'Core');
  res.setHeader('X-RateLimit-Limit', String(decision.rateLimit.limit));
  res.setHeader('X-RateLimit-Remaining', String(decision.rateLimit.remaining));
  res.setHeader('X-RateLimit-Reset', String(decision.rateLimit.resetEpochSeconds));
  // The delay the throttle imposed when there is one, else the whole added latency.
  const delayMs = decision.rateLimit.delayMs ?? decision.latencyMs;
  if (delayMs > 0) res.setHeader('X-RateLimit-Delay', (delayMs / 1000).toFixed(3));
  if (decision.rateLimit.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(decision.rateLimit.retryAfterSeconds));
}

export async function startService(
  def: ServiceDefinition,
  state: TenantState,
  faults: FaultInjector,
  tls: ServerCertificate,
  port = 0,
): Promise<ServiceHost> {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  // Request log: one entry per answered (or dropped) request, without bodies, so no secret lands here.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = Date.now();
    const entryFor = (status: number): RequestLogEntry => {
      const query: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.query)) if (typeof v === 'string') query[k] = v;
      const readOnly = READ_METHODS.has(req.method) || (def.isReadOnly?.(req) ?? false);
      return {
        service: def.name,
        method: req.method,
        path: req.path,
        query,
        status,
        caller: res.locals['caller'] as string | undefined,
        write: !readOnly && status < 400 && !res.locals['fault'],
        fault: res.locals['fault'] as string | undefined,
        at: started,
        durationMs: Date.now() - started,
      };
    };
    // `onRequestHandled` fires once per request, as soon as the request has had its effect: when its
    // answer is about to be written (a client killed there never reads it, so it cannot send anything
    // after it; on 'finish' it may already have), or when a request dropped unanswered closes.
    let handled = false;
    const announce = (status: number): void => {
      if (handled) return;
      handled = true;
      state.onRequestHandled?.(entryFor(status));
    };
    if (state.onRequestHandled) {
      const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
      res.writeHead = ((...args: unknown[]) => {
        announce(typeof args[0] === 'number' ? args[0] : res.statusCode);
        return writeHead(...args);
      }) as Response['writeHead'];
    }
    const finish = (status: number): void => {
      state.requestLog.push(entryFor(status));
      announce(status);
    };
    res.on('finish', () => finish(res.statusCode));
    res.on('close', () => {
      if (!res.writableFinished) finish(0);
    });
    next();
  });

  // Optional exchange capture (bodies included) for contract tests; only when a hook is set.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const hook = state.onExchange;
    if (!hook) return next();
    const chunks: Buffer[] = [];
    const keep = (chunk: unknown, encoding?: unknown): void => {
      if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
      if (Buffer.isBuffer(chunk)) chunks.push(chunk);
      else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
      else if (typeof chunk === 'string')
        chunks.push(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    res.write = ((...args: unknown[]) => {
      keep(args[0], args[1]);
      return write(...args);
    }) as Response['write'];
    res.end = ((...args: unknown[]) => {
      keep(args[0], args[1]);
      return end(...args);
    }) as Response['end'];
    res.on('finish', () => {
      hook({
        service: def.name,
        method: req.method,
        url: req.originalUrl,
        requestHeaders: { ...req.headers },
        requestBody: (req as { body?: unknown }).body,
        status: res.statusCode,
        responseHeaders: { ...res.getHeaders() },
        responseBody: Buffer.concat(chunks).toString('utf8'),
      });
    });
    next();
  });

  // Fault injection in front of every route.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const decision = faults.decide(def.name, req.method, req.path, callerKey(req), state.now().getTime());
    void (async () => {
      if (decision.latencyMs > 0) await sleep(decision.latencyMs);
      if (def.rateLimitHeaders) setRateLimitHeaders(res, decision);
      const fault = decision.fault;
      if (!fault) return next();
      res.locals['fault'] = fault.kind;
      switch (fault.kind) {
        case 'drop':
          req.socket.destroy();
          return;
        case 'answer-lost': {
          // Handled as usual; the connection closes as the answer starts, so it never arrives.
          const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
          res.writeHead = ((...args: unknown[]) => {
            const result = writeHead(...args);
            req.socket.destroy();
            return result;
          }) as Response['writeHead'];
          return next();
        }
        case 'timeout':
          // Hang; the socket is destroyed later (or at shutdown) so nothing leaks.
          setTimeout(() => req.socket.destroy(), fault.hangMs ?? 120_000).unref();
          return;
        case 'throttle':
          res.setHeader('Retry-After', String(fault.retryAfterSeconds));
          res
            .status(429)
            .json(def.formatError(429, 'TooManyRequests', `Too many requests: ${fault.reason}.`));
          return;
        case 'server-error':
          if (fault.status === 503) res.setHeader('Retry-After', String(fault.retryAfterSeconds));
          res
            .status(fault.status)
            .json(
              def.formatError(
                fault.status,
                'ServiceUnavailable',
                `The service is unavailable (${fault.reason}).`,
              ),
            );
          return;
      }
    })();
  });

  def.mount(app);

  const server: Server = createServer({ key: tls.key, cert: tls.cert }, app);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    name: def.name,
    port: actualPort,
    url: `https://127.0.0.1:${actualPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
