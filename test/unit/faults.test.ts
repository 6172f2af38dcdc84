/**
 * FaultInjector: decisions replay exactly from a seed; rate and maxCount; budgets per caller and
 * window that answer 429 with Retry-After and Azure DevOps' X-RateLimit-* numbers; latency. The
 * last tests put it in front of a one-route service over HTTPS, the way the sandbox hosts services.
 */
import { request } from 'node:https';
import type { Express } from 'express';
import { FaultInjector, type FaultDecision, type FaultRule } from '../../sandbox/faults';
import { TenantState } from '../../sandbox/model';
import { startService, type ServiceHost } from '../../sandbox/server';
import { ensureDevCa, issueServerCertificate } from '../../sandbox/tls';

const T0 = 1_700_000_000_000;

function run(injector: FaultInjector, n: number): FaultDecision[] {
  const paths = ['/contoso/_apis/projects', '/v1.0/applications', '/secrets/x', '/token'];
  const decisions: FaultDecision[] = [];
  for (let i = 0; i < n; i++)
    decisions.push(
      injector.decide(
        'devops',
        i % 3 ? 'GET' : 'PUT',
        paths[i % paths.length]!,
        `caller-${i % 2}`,
        T0 + i * 10,
      ),
    );
  return decisions;
}

const mixedRules: FaultRule[] = [
  { service: '*', latencyMs: 5, latencyJitterMs: 40 },
  { service: 'devops', rate: 0.2, kind: 'server-error', status: 503, retryAfterSeconds: 2 },
  { service: 'devops', method: 'PUT', rate: 0.3, kind: 'throttle', maxCount: 10 },
  { service: 'devops', path: 'projects', rate: 0.1, kind: 'drop' },
];

describe('seeded replay', () => {
  test('the same seed and rules give identical decisions and stats', () => {
    const a = new FaultInjector('replay-42', mixedRules);
    const b = new FaultInjector('replay-42', mixedRules);
    expect(run(a, 500)).toEqual(run(b, 500));
    expect(a.stats).toEqual(b.stats);
    expect(a.stats.injected).toBeGreaterThan(0);
  });

  test('another seed gives another sequence', () => {
    expect(run(new FaultInjector('seed-a', mixedRules), 200)).not.toEqual(
      run(new FaultInjector('seed-b', mixedRules), 200),
    );
  });

  test('setRules resets counts and budgets but not the random stream', () => {
    const injector = new FaultInjector('s', [{ service: '*', rate: 1, kind: 'throttle', maxCount: 1 }]);
    expect(injector.decide('graph', 'GET', '/', 'c', T0).fault?.kind).toBe('throttle');
    expect(injector.decide('graph', 'GET', '/', 'c', T0).fault).toBeUndefined();
    injector.setRules([{ service: '*', rate: 1, kind: 'throttle', maxCount: 1 }]);
    expect(injector.decide('graph', 'GET', '/', 'c', T0).fault?.kind).toBe('throttle');
    injector.clear();
    expect(injector.decide('graph', 'GET', '/', 'c', T0)).toEqual({ latencyMs: 0 });
  });
});

describe('rate and maxCount', () => {
  test('rate 1 with maxCount 3: exactly the first three matching requests fail', () => {
    const injector = new FaultInjector('x', [
      { service: 'graph', rate: 1, kind: 'server-error', maxCount: 3 },
    ]);
    const kinds = Array.from(
      { length: 6 },
      () => injector.decide('graph', 'POST', '/x', 'c', T0).fault?.status,
    );
    expect(kinds).toEqual([503, 503, 503, undefined, undefined, undefined]);
    expect(injector.stats).toEqual({
      injected: 3,
      byKind: { throttle: 0, 'server-error': 3, drop: 0, 'answer-lost': 0, timeout: 0 },
    });
  });

  test('a rate is honoured over many requests (deterministic for the seed)', () => {
    const injector = new FaultInjector('rate', [{ service: '*', rate: 0.25, kind: 'timeout' }]);
    let faults = 0;
    for (let i = 0; i < 2000; i++) if (injector.decide('keyvault', 'GET', '/s', 'c', T0).fault) faults++;
    expect(faults / 2000).toBeGreaterThan(0.21);
    expect(faults / 2000).toBeLessThan(0.29);
    expect(injector.stats.byKind.timeout).toBe(faults);
  });

  test('rules match by service, method and path', () => {
    const injector = new FaultInjector('m', [
      {
        service: 'devops',
        method: 'put',
        path: '/_apis/serviceendpoint/endpoints/',
        rate: 1,
        kind: 'throttle',
      },
    ]);
    expect(
      injector.decide('graph', 'PUT', '/_apis/serviceendpoint/endpoints/1', 'c', T0).fault,
    ).toBeUndefined();
    expect(
      injector.decide('devops', 'GET', '/_apis/serviceendpoint/endpoints/1', 'c', T0).fault,
    ).toBeUndefined();
    expect(injector.decide('devops', 'PUT', '/contoso/_apis/projects', 'c', T0).fault).toBeUndefined();
    const hit = injector.decide('devops', 'PUT', '/contoso/_apis/serviceendpoint/endpoints/1', 'c', T0).fault;
    expect(hit).toEqual({ kind: 'throttle', status: 429, retryAfterSeconds: 1, reason: 'injected throttle' });
  });

  test('server errors carry the configured status and Retry-After seconds', () => {
    const injector = new FaultInjector('e', [
      { service: '*', rate: 1, kind: 'server-error', status: 504, retryAfterSeconds: 7 },
    ]);
    expect(injector.decide('entra', 'POST', '/t', 'c', T0).fault).toMatchObject({
      status: 504,
      retryAfterSeconds: 7,
    });
  });
});

describe('budgets', () => {
  const budget: FaultRule = { service: 'devops', budget: { requests: 3, windowSeconds: 10 } };

  test('past the budget: 429 with Retry-After until the window frees a slot, and X-RateLimit numbers', () => {
    const injector = new FaultInjector('b', [budget]);
    const at = (s: number): FaultDecision => injector.decide('devops', 'GET', '/x', 'alice', T0 + s * 1000);
    const resetEpochSeconds = Math.ceil((T0 + 10_000) / 1000);
    expect(at(0).rateLimit).toEqual({ limit: 3, remaining: 2, resetEpochSeconds });
    expect(at(1).rateLimit).toEqual({ limit: 3, remaining: 1, resetEpochSeconds });
    const third = at(2);
    expect(third.fault).toBeUndefined();
    expect(third.rateLimit).toEqual({ limit: 3, remaining: 0, resetEpochSeconds });

    const refused = at(3);
    expect(refused.fault).toEqual({
      kind: 'throttle',
      status: 429,
      retryAfterSeconds: 7,
      reason: 'budget of 3 requests per 10s exceeded',
    });
    expect(refused.rateLimit).toEqual({ limit: 3, remaining: 0, resetEpochSeconds });
    expect(at(9.5).fault?.retryAfterSeconds).toBe(1);

    // The first request leaves the window at t=10 s: one slot again.
    const later = at(10.5);
    expect(later.fault).toBeUndefined();
    expect(later.rateLimit?.remaining).toBe(0);
    expect(injector.stats.byKind.throttle).toBe(2);
  });

  test('one budget per caller', () => {
    const injector = new FaultInjector('b', [budget]);
    for (let i = 0; i < 3; i++) injector.decide('devops', 'GET', '/x', 'alice', T0);
    expect(injector.decide('devops', 'GET', '/x', 'alice', T0).fault?.status).toBe(429);
    expect(injector.decide('devops', 'GET', '/x', 'bob', T0).fault).toBeUndefined();
    expect(injector.decide('graph', 'GET', '/x', 'alice', T0).fault).toBeUndefined();
  });
});

describe('latency', () => {
  test('fixed latency plus seeded jitter, summed over matching rules', () => {
    const injector = new FaultInjector('lat', [
      { service: '*', latencyMs: 100, latencyJitterMs: 50 },
      { service: 'keyvault', latencyMs: 20 },
    ]);
    const kv = Array.from({ length: 50 }, () => injector.decide('keyvault', 'GET', '/s', 'c', T0).latencyMs);
    const graph = Array.from({ length: 50 }, () => injector.decide('graph', 'GET', '/s', 'c', T0).latencyMs);
    for (const ms of kv) expect(ms >= 120 && ms < 170).toBe(true);
    for (const ms of graph) expect(ms >= 100 && ms < 150).toBe(true);
    expect(new Set(kv).size).toBeGreaterThan(5);
  });
});

describe('over HTTPS, in front of a service', () => {
  let host: ServiceHost;
  let ca: string;
  const state = new TenantState();
  const faults = new FaultInjector('http');

  beforeAll(async () => {
    const devCa = await ensureDevCa();
    ca = devCa.cert;
    host = await startService(
      {
        name: 'devops',
        rateLimitHeaders: true,
        mount: (app: Express) => app.get('/ping', (_req, res) => res.json({ ok: true })),
        formatError: (status, code, message) => ({ $id: '1', typeKey: code, message, errorCode: 0, status }),
      },
      state,
      faults,
      await issueServerCertificate(devCa),
    );
  });

  afterAll(async () => {
    await host?.close();
  });

  function get(path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        `${host.url}${path}`,
        { ca, headers: { authorization: 'Bearer caller-1' } },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  test('budget: X-RateLimit-* on every answer, then 429 with Retry-After and the service error body', async () => {
    faults.setRules([{ service: 'devops', budget: { requests: 2, windowSeconds: 60 } }]);
    const first = await get('/ping');
    expect(first.status).toBe(200);
    expect(first.headers).toMatchObject({
      'x-ratelimit-resource': 'Core',
      'x-ratelimit-limit': '2',
      'x-ratelimit-remaining': '1',
    });
    expect(Number(first.headers['x-ratelimit-reset'])).toBeGreaterThan(Date.now() / 1000);
    expect((await get('/ping')).headers['x-ratelimit-remaining']).toBe('0');

    const refused = await get('/ping');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(refused.headers['x-ratelimit-remaining']).toBe('0');
    expect(JSON.parse(refused.body)).toMatchObject({ typeKey: 'TooManyRequests', status: 429 });
    const logged = state.requestLog.at(-1);
    expect(logged).toMatchObject({ service: 'devops', status: 429, fault: 'throttle', write: false });
  });

  test('latency delays the answer', async () => {
    faults.setRules([{ service: 'devops', latencyMs: 150 }]);
    const started = Date.now();
    expect((await get('/ping')).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  test('server-error answers 503 with Retry-After', async () => {
    faults.setRules([{ service: 'devops', rate: 1, kind: 'server-error', retryAfterSeconds: 3 }]);
    const res = await get('/ping');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('3');
  });

  test('drop closes the connection without an answer', async () => {
    faults.setRules([{ service: 'devops', rate: 1, kind: 'drop', maxCount: 1 }]);
    await expect(get('/ping')).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect((await get('/ping')).status).toBe(200);
  });

  test('answer-lost carries the request out, then closes the connection before the answer', async () => {
    const handled: number[] = [];
    state.onRequestHandled = (entry) => handled.push(entry.status);
    try {
      faults.setRules([{ service: 'devops', rate: 1, kind: 'answer-lost', maxCount: 1 }]);
      await expect(get('/ping')).rejects.toThrow(/socket hang up|ECONNRESET/);
      expect(handled).toEqual([200]); // it had its effect
      expect((await get('/ping')).status).toBe(200);
    } finally {
      state.onRequestHandled = undefined;
    }
  });

  test('timeout hangs for hangMs, then closes the connection', async () => {
    faults.setRules([{ service: 'devops', rate: 1, kind: 'timeout', hangMs: 300, maxCount: 1 }]);
    const started = Date.now();
    await expect(get('/ping')).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});
