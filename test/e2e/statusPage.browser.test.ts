/**
 * The status page in a real headless browser: Debian's Chromium driven by playwright-core (no
 * browser download). The report comes from a real remediation run against the sandbox's default
 * scenario; the page is served by the Function handler from a local HTTP server on 127.0.0.1, so
 * the browser enforces the handler's Content-Security-Policy. Saves a full-page screenshot to
 * `test-artifacts/status-page.png`.
 *
 * Chromium missing is a failure, not a skip: `.ci/run` installs it (`apt-get install chromium`).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startSandbox } from '../../sandbox/index';
import { buildEngine } from '../../src/composition';
import { loadConfig } from '../../src/config';
import { configureServices } from '../../src/functions/context';
import { statusPage } from '../../src/functions/statusPage';
import { needsAttention, summarize, type RunReport } from '../../src/remediation/report';
import { runRemediation } from '../../src/remediation/run';
import { TIMELINE_DAYS } from '../../src/status/render';
import { redactor, silentLogger } from '../../src/telemetry';
import {
  allFindingsConnections,
  connectionReport,
  ledgerWithHistory,
  reportOf,
  runsFor,
} from '../helpers/statusFixtures';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');
const SCREENSHOT = path.join(ARTIFACTS, 'status-page.png');
const DAY_MS = 24 * 3600 * 1000;

let browser: Browser;
let server: Server;
let baseUrl: string;
let report: RunReport;
/** Every request the browser made, and those the local server had no answer for. */
const requested: string[] = [];

function headersOf(incoming: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(incoming)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** What App Service Authentication sets for a signed-in reader (overwriting any the client sent). */
const SIGNED_IN_READER = Buffer.from(
  JSON.stringify({
    auth_typ: 'aad',
    name_typ: 'name',
    role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
    claims: [
      { typ: 'name', val: 'Ann' },
      { typ: 'roles', val: 'Remediation.Reader' },
    ],
  }),
).toString('base64');
/** The app settings of a deployment behind App Service Authentication. */
const BEHIND_AUTH = { WEBSITE_AUTH_ENABLED: 'true' };

/**
 * Serves the Function handler as the Functions host behind App Service Authentication would:
 * `/api/status` only, with the signed-in caller's principal.
 */
async function serveHandler(): Promise<void> {
  server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', baseUrl);
      if (url.pathname !== '/api/status') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
        return;
      }
      const request = new HttpRequest({
        method: req.method ?? 'GET',
        url: url.href,
        headers: { ...headersOf(req.headers), 'x-ms-client-principal': SIGNED_IN_READER },
      });
      const context = new InvocationContext({ functionName: 'statusPage', logHandler: () => undefined });
      const response = await statusPage(request, context);
      const headers: Record<string, string> = {};
      new Headers(response.headers).forEach((value, key) => (headers[key] = value));
      res
        .writeHead(response.status ?? 200, headers)
        .end(typeof response.body === 'string' ? response.body : '');
    })().catch((err: unknown) => {
      res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A page that records every request and fails any that would leave the local server. */
async function openPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    requested.push(url);
    return url.startsWith(`${baseUrl}/`) ? route.continue() : route.abort();
  });
  return context.newPage();
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: the status page browser test needs it. ` +
        'Install it with `apt-get install -y chromium` (.ci/run does).',
    );

  // A real run of the engine against the simulated tenant: every finding the default scenario has.
  const sandbox = await startSandbox({ scenario: 'default' });
  try {
    const engine = buildEngine(loadConfig(sandbox.env), silentLogger);
    report = (await runRemediation(engine.deps, engine.settings)).report;
  } finally {
    await sandbox.stop();
  }

  await serveHandler();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  configureServices();
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

beforeEach(() => {
  requested.length = 0;
});

describe('GET /api/status in headless Chromium', () => {
  test('shows the last run: headings, counts, what to do, the expiry timeline and the runs', async () => {
    // The app's own services, with the run ledger in memory: the handler reads it as in Azure.
    configureServices({ env: BEHIND_AUTH, ledger: await ledgerWithHistory(report, new Date()) });
    const page = await openPage();
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    const response = await page.goto(`${baseUrl}/api/status`, { waitUntil: 'load' });

    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-type']).toBe('text/html; charset=utf-8');
    expect(response?.headers()['content-security-policy']).toBe(
      "default-src 'none'; style-src 'unsafe-inline'",
    );
    await expect(page.title()).resolves.toContain('Service connection status');

    // Headings of every section.
    for (const name of [
      'Service connection status',
      /^Needs a person/,
      /^Connections by finding/,
      /^Secret expiry/,
      /^Last runs/,
    ])
      expect(await page.getByRole('heading', { name }).first().isVisible()).toBe(true);

    // Totals match the report.
    const s = report.summary;
    expect(s.total).toBeGreaterThan(5);
    expect(await page.getByTestId('stat-total').locator('.stat-value').innerText()).toBe(String(s.total));
    expect(await page.getByTestId('stat-attention').locator('.stat-value').innerText()).toBe(
      String(s.needsAttention),
    );
    expect(await page.getByTestId('stat-failed').locator('.stat-value').innerText()).toBe(
      String(s.byOutcome.failed),
    );
    for (const [finding, n] of Object.entries(s.byFinding)) {
      const legend = page.getByTestId('finding-counts').locator(`li[data-finding="${finding}"] strong`);
      expect(await legend.innerText()).toBe(String(n));
      expect(
        await page.locator(`[data-testid="finding-group"][data-finding="${finding}"] tbody tr`).count(),
      ).toBe(n);
    }

    // Needs a person: one entry per connection, each with its next step.
    const attention = report.connections.filter((c) => needsAttention(c));
    expect(attention.length).toBeGreaterThan(0);
    const items = page.getByTestId('needs-a-person-item');
    expect(await items.count()).toBe(attention.length);
    const denied = report.connections.find((c) => c.diagnosis?.kind === 'graph-permission-denied');
    expect(denied?.diagnosis).toBeDefined();
    const entry = items.filter({ hasText: denied!.connectionName });
    expect(await entry.isVisible()).toBe(true);
    expect(await entry.locator('.next-step').innerText()).toBe(denied!.diagnosis!.nextStep);
    expect(await entry.innerText()).toContain(denied!.organization);

    // Timeline: every connection whose secret ends within 90 days, soonest first.
    const now = Date.now();
    const ends = report.connections
      .map((c) => ({
        name: c.connectionName,
        iso: c.outcome === 'succeeded' && c.newSecretExpiresAt ? c.newSecretExpiresAt : c.secretExpiresAt,
      }))
      .filter((e): e is { name: string; iso: string } => Boolean(e.iso))
      .map((e) => ({ name: e.name, days: (Date.parse(e.iso) - now) / DAY_MS }))
      .filter((e) => e.days <= TIMELINE_DAYS)
      .sort((a, b) => a.days - b.days);
    expect(ends.length).toBeGreaterThan(3);
    const rows = page.getByTestId('timeline-row');
    expect(await rows.count()).toBe(ends.length);
    const firstRow = await rows.first().innerText();
    expect(firstRow).toContain(ends[0]!.name);
    expect(firstRow).toMatch(/days? left|expired|ends today/);

    // Last runs, newest first.
    const runRows = page.getByTestId('run-row');
    expect(await runRows.count()).toBe(runsFor(report).length);
    expect(await runRows.first().innerText()).toContain('completed');
    expect(await page.getByTestId('runs').innerText()).toContain('failed');

    // Offline: the page itself was the only request; no CSP violation or other error.
    expect(requested).toEqual([`${baseUrl}/api/status`]);
    expect(consoleErrors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    await page.context().close();
  });

  test('a hostile connection name is shown as text, never run; a secret never shows', async () => {
    const secret = 'Zx9Q~thisIsALeakedClientSecretValue0123456789';
    redactor.register(secret);
    const hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">';
    const connections = [
      ...allFindingsConnections(new Date()),
      connectionReport({
        connectionName: hostile,
        projects: ['"><b>bold</b>'],
        finding: 'error',
        action: 'report',
        outcome: 'failed',
        error: `token request failed for client_secret=${secret}`,
      }),
    ];
    const fixture = reportOf(connections, { summary: summarize(connections) }, new Date());
    configureServices({ env: BEHIND_AUTH, ledger: await ledgerWithHistory(fixture, new Date()) });

    const page = await openPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${baseUrl}/api/status`, { waitUntil: 'load' });

    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('main img, main b').count()).toBe(0);
    const item = page.getByTestId('needs-a-person-item').filter({ hasText: '<script>alert(1)</script>' });
    expect(await item.locator('.person-name').innerText()).toBe(hostile);
    expect(await item.innerText()).toContain('"><b>bold</b>');
    const text = await page.locator('body').innerText();
    expect(text).not.toContain(secret);
    expect(text).toContain('***');
    expect(dialogs).toEqual([]);
    expect(requested).toEqual([`${baseUrl}/api/status`]);
    await page.context().close();
  });
});
