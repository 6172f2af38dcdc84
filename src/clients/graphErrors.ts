/** What the Graph client throws, mapped to the product's errors (messages kept short: they can echo input). */
import { GraphError } from '@microsoft/microsoft-graph-client';
import { AuthenticationError, ServiceError, isTransientStatus } from '../errors';

/** Graph's message can echo request input; keep it to one line and never longer than needed. */
export function shortMessage(message: string): string {
  const first = message.split(/\r?\n/)[0] ?? '';
  return first.length > 500 ? `${first.slice(0, 500)}…` : first;
}

/** Maps what the Graph client throws to the service error taxonomy. */
export function toGraphServiceError(err: unknown, operation: string): ServiceError {
  if (err instanceof ServiceError) return err;
  if (err instanceof GraphError) {
    const status = err.statusCode > 0 ? err.statusCode : undefined;
    const code = err.code ?? undefined;
    // Status -1: no HTTP answer; the token credential or the network failed before Graph replied.
    if (status === undefined && code && /Authentication|Credential/i.test(code)) {
      const aadsts = /AADSTS(\d+)/.exec(err.message)?.[1];
      return new AuthenticationError(
        'graph',
        `${operation}: cannot get a Graph token: ${shortMessage(err.message)}`,
        {
          code: aadsts ? `AADSTS${aadsts}` : code,
          cause: err,
        },
      );
    }
    const text = shortMessage(err.message || code || 'no error body');
    const message = `${operation} failed: Graph ${status ?? 'no response'}${code ? ` ${code}` : ''}: ${text}`;
    if (status === 401) return new AuthenticationError('graph', message, { status, code, cause: err });
    return new ServiceError('graph', message, {
      status,
      code,
      transient: isTransientStatus(status),
      cause: err,
    });
  }
  const message = err instanceof Error ? shortMessage(err.message) : String(err);
  return new ServiceError('graph', `${operation} failed: ${message}`, { cause: err });
}
