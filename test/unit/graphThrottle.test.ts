import type { Context, Middleware } from '@microsoft/microsoft-graph-client';
import { requestLine, retryAfterMs, ThrottleGate } from '../../src/clients/graphThrottle';

/** A next middleware answering each request with the status (and Retry-After) it is given. */
function answering(
  answer: () => { status: number; retryAfter?: string },
): Middleware & { inFlight: number; most: number } {
  const next = {
    inFlight: 0,
    most: 0,
    async execute(context: Context): Promise<void> {
      next.inFlight += 1;
      next.most = Math.max(next.most, next.inFlight);
      await new Promise((r) => setTimeout(r, 1));
      const { status, retryAfter } = answer();
      context.response = new Response(null, {
        status,
        headers: retryAfter ? { 'Retry-After': retryAfter } : {},
      });
      next.inFlight -= 1;
    },
  };
  return next;
}

const get = (): Context => ({
  request: 'https://graph.example/v1.0/applications',
  options: { method: 'GET' },
});
const post = (): Context => ({
  request: 'https://graph.example/v1.0/applications/x/addPassword',
  options: { method: 'POST' },
});

describe('graph throttling helpers', () => {
  it.each([
    ['seconds', '3', 3000],
    ['zero', '0', 0],
    ['an HTTP date', new Date(10_000 + 5000).toUTCString(), 5000],
    ['garbage', 'soon', undefined],
    ['absent', undefined, undefined],
  ])('retryAfterMs: %s', (_label, header, ms) => {
    const response = new Response(null, { status: 429, headers: header ? { 'Retry-After': header } : {} });
    const got = retryAfterMs(response, 10_000);
    if (ms === undefined) expect(got).toBeUndefined();
    else expect(got).toBeCloseTo(ms, -3);
  });

  it('requestLine: a URL with fetch options, or a Request', () => {
    expect(requestLine('https://h/x', { method: 'post' })).toEqual({ method: 'POST', url: 'https://h/x' });
    expect(requestLine('https://h/x', undefined)).toEqual({ method: 'GET', url: 'https://h/x' });
    expect(requestLine(new Request('https://h/y', { method: 'DELETE' }), undefined)).toEqual({
      method: 'DELETE',
      url: 'https://h/y',
    });
  });
});

describe('ThrottleGate', () => {
  it('caps requests of one kind in flight at maxConcurrency', async () => {
    const gate = new ThrottleGate({ maxConcurrency: 3 });
    const next = answering(() => ({ status: 200 }));
    gate.setNext(next);
    await Promise.all(Array.from({ length: 20 }, () => gate.execute(get())));
    expect(next.most).toBe(3);
  });

  it('a 429 halves that kind (once per second, not per 429) and pauses it for Retry-After; writes are left alone', async () => {
    let now = 0;
    const gate = new ThrottleGate({ maxConcurrency: 16, now: () => now });
    let throttle = true;
    gate.setNext(answering(() => (throttle ? { status: 429, retryAfter: '0' } : { status: 200 })));
    await Promise.all(Array.from({ length: 8 }, () => gate.execute(get())));
    expect(gate.limits).toEqual({ reads: 8, writes: 16 });
    now += 1000;
    await gate.execute(get());
    expect(gate.limits.reads).toBe(4);
    // Recovers by one per window of successful answers.
    throttle = false;
    await Promise.all(Array.from({ length: 4 }, () => gate.execute(get())));
    expect(gate.limits.reads).toBe(5);
    await gate.execute(post());
    expect(gate.limits.writes).toBe(16);
  });

  it('holds new requests of the kind until Retry-After has passed', async () => {
    const gate = new ThrottleGate({ maxConcurrency: 4 });
    let first = true;
    gate.setNext(
      answering(() => {
        if (!first) return { status: 200 };
        first = false;
        return { status: 429, retryAfter: '1' };
      }),
    );
    await gate.execute(get());
    const started = Date.now();
    await gate.execute(get());
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    // Writes were not held.
    const writeStarted = Date.now();
    await gate.execute(post());
    expect(Date.now() - writeStarted).toBeLessThan(500);
  });

  it('measures a request from its first attempt (the retry budget)', async () => {
    let now = 0;
    const gate = new ThrottleGate({ maxConcurrency: 4, now: () => now });
    gate.setNext(answering(() => ({ status: 200 })));
    const context = get();
    expect(gate.elapsedMs(context.options)).toBe(0);
    await gate.execute(context);
    now += 2500;
    await gate.execute(context);
    expect(gate.elapsedMs(context.options)).toBe(2500);
  });
});
