/** The Key Vault certificates check: how bad a missing role is depends on what the scan found. */
import { ServiceError } from '../../src/errors';
import type { PreflightCheck } from '../../src/remediation/preflight';
import type { OrgScan } from '../../src/remediation/preflightDevOps';
import { certificateConnections, checkVaultCertificates } from '../../src/remediation/preflightStores';
import type { ServiceConnection } from '../../src/remediation/ports';
import { connection, withParams } from '../helpers/remediationFixtures';

const who = {
  objectId: '11111111-2222-4333-8444-555555555555',
  appId: '66666666-7777-4888-8999-000000000000',
};

function scanOf(connections: ServiceConnection[]): OrgScan {
  return {
    organizationUrl: 'https://dev.azure.com/contoso',
    connections: new Map(connections.map((c, i) => [`${c.id}-${i}`, { connection: c, manageable: true }])),
  };
}

async function rowFor(count: number, failure?: Error): Promise<PreflightCheck> {
  const rows: PreflightCheck[] = [];
  await checkVaultCertificates(
    {
      url: 'https://kv.vault.azure.net/',
      checkAccess: () => Promise.resolve(),
      checkCertificateAccess: () => (failure ? Promise.reject(failure) : Promise.resolve()),
    },
    (c) => rows.push(c),
    who,
    count,
  );
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

const forbidden = new ServiceError('key-vault', 'Caller is not authorized to perform action on resource.', {
  status: 403,
});

test('counts the certificate connections of every scanned organization', () => {
  const certificate = withParams({ authenticationType: 'spnCertificate' });
  expect(
    certificateConnections([scanOf([certificate, connection()]), undefined, scanOf([certificate])]),
  ).toBe(2);
  expect(certificateConnections([scanOf([connection()])])).toBe(0);
});

test('403 with certificate connections found: missing, and says how many cannot be rotated', async () => {
  const row = await rowFor(3, forbidden);
  expect(row.status).toBe('missing');
  expect(row.detail).toMatch(/3 certificate-based connection\(s\) cannot be rotated/);
  expect(row.fix).toContain('Key Vault Certificates Officer');
  expect(row.fix).toContain(who.objectId);
});

test('403 without certificate connections: a warning', async () => {
  expect((await rowFor(0, forbidden)).status).toBe('warning');
});

test('allowed: ok', async () => {
  expect((await rowFor(2)).status).toBe('ok');
});
