/**
 * Every TCP connection this process opens, recorded as `host:port` (HTTP, HTTPS, fetch: each goes
 * through `net.Socket.prototype.connect`), so a test can check that a request never leaves for a
 * host that is not configured.
 */
import { Socket } from 'node:net';

export interface OutboundWatch {
  /** `host:port` of every connection attempt since `start`. */
  readonly targets: string[];
  stop(): void;
}

export function watchOutbound(): OutboundWatch {
  const targets: string[] = [];
  const original = Socket.prototype.connect;
  Socket.prototype.connect = function connect(this: Socket, ...args: unknown[]): Socket {
    const first: unknown = args[0];
    const options: unknown = Array.isArray(first) ? first[0] : first;
    if (typeof options === 'object' && options !== null) {
      const o = options as { host?: string; port?: number | string; path?: string };
      targets.push(o.path ?? `${o.host ?? 'localhost'}:${String(o.port ?? '')}`);
    } else if (typeof options === 'number' || typeof options === 'string')
      targets.push(`${typeof args[1] === 'string' ? args[1] : 'localhost'}:${String(options)}`);
    return (original as (...a: unknown[]) => Socket).apply(this, args);
  };
  return {
    targets,
    stop: () => {
      Socket.prototype.connect = original;
    },
  };
}

/** The targets that are not one of `allowed` (`host:port`). */
export function unexpectedTargets(targets: readonly string[], allowed: readonly string[]): string[] {
  const ok = new Set(allowed.map((a) => a.toLowerCase()));
  return [...new Set(targets.filter((t) => !ok.has(t.toLowerCase())))];
}
