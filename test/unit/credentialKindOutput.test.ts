/**
 * A certificate-based connection is named as such wherever a person reads the report (CLI table,
 * status page), and a connection whose app lives in another tenant says which tenant.
 */
import { formatReport } from '../../src/cli/output';
import { renderStatusPage } from '../../src/status/render';
import { STATUS_NOW, connectionReport, daysFromNow, reportOf, runsFor } from '../helpers/statusFixtures';

const OTHER_TENANT = '7f0a4c2e-5b1d-4e8a-9c3f-2d6b8e1a0f47';

const rotatedCertificate = connectionReport({
  connectionName: 'web-cert-deploy',
  finding: 'expiring',
  action: 'rotate-secret',
  outcome: 'succeeded',
  credentialKind: 'certificate',
  secretExpiresAt: daysFromNow(10),
  newSecretExpiresAt: daysFromNow(90),
});
const healthyCertificate = connectionReport({
  connectionName: 'api-cert',
  credentialKind: 'certificate',
  secretExpiresAt: daysFromNow(200),
});
const rotatedSecret = connectionReport({
  connectionName: 'api-secret',
  finding: 'expiring',
  action: 'rotate-secret',
  outcome: 'succeeded',
  credentialKind: 'secret',
  secretExpiresAt: daysFromNow(10),
  newSecretExpiresAt: daysFromNow(90),
});
const otherTenant = connectionReport({ connectionName: 'fabrikam-deploy', appTenantId: OTHER_TENANT });

const report = reportOf([rotatedCertificate, healthyCertificate, rotatedSecret, otherTenant]);

function rowOf(text: string, name: string): string {
  const line = text.split('\n').find((l) => l.includes(name));
  if (!line) throw new Error(`no row for ${name}`);
  return line;
}

test('the CLI table says certificate for a certificate connection, secret for a secret one', () => {
  const text = formatReport(report, [], 160);
  expect(rowOf(text, 'web-cert-deploy')).toMatch(/new certificate until \d{4}-\d\d-\d\d/);
  expect(rowOf(text, 'api-cert')).toMatch(/ certificate until \d{4}-\d\d-\d\d/);
  expect(rowOf(text, 'api-secret')).toMatch(/new secret until \d{4}-\d\d-\d\d/);
  expect(text).not.toMatch(/web-cert-deploy.*secret until/);
  expect(text).toContain('4 connections in 1 organization');
  expect(formatReport(reportOf([healthyCertificate]), [], 160)).toContain('1 connection in 1 organization');
});

test("the CLI table names another tenant's app beside where the connection is", () => {
  const text = formatReport(report, [], 160);
  // The Where column wraps: the row's first line and the next one.
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.includes('fabrikam-deploy'));
  expect(`${lines[at]} ${lines[at + 1]}`).toMatch(/\(tenant .*7f0a4c2e…\)/);
  expect(rowOf(text, 'api-secret')).not.toContain('tenant');
});

test('the status page tags a new certificate as a certificate and names the other tenant', () => {
  const page = renderStatusPage({ latest: report, runs: runsFor(report), now: STATUS_NOW });
  expect(page).toContain('<span class="tag">new certificate</span>');
  expect(page).toContain('<span class="tag">new secret</span>');
  expect(page).toContain(`title="${OTHER_TENANT}">(tenant 7f0a4c2e…)</span>`);
});
