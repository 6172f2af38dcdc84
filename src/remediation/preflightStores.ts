/**
 * Preflight of the stores (preflight.ts): Key Vault, by a GET of a name the service never writes
 * (404 proves data-plane read access and reachability, 403 a missing role; write access cannot be
 * proven without writing), and the lock storage, by a read of the account.
 */
import { AuthenticationError } from '../errors';
import { errorMessage } from '../telemetry';
import type { AddCheck, PreflightDeps } from './preflight';
import type { OrgScan } from './preflightDevOps';
import { isCertificateConnection } from './credentialKind';
import { fixes, statusOf, type Who } from './preflightFixes';

/** Checks Key Vault access. */
export async function checkVault(vault: PreflightDeps['vault'], add: AddCheck, who: Who): Promise<void> {
  const vaultRow = { area: 'key-vault', name: 'vault access', target: vault.url } as const;
  try {
    await vault.checkAccess();
    add({
      ...vaultRow,
      status: 'ok',
      detail:
        'a GET of a missing secret answered 404: the identity passed authorization; write access is not provable without writing and comes with the same role',
    });
  } catch (err) {
    const status = statusOf(err);
    add({
      ...vaultRow,
      status: 'missing',
      detail: errorMessage(err),
      fix:
        status === 403
          ? fixes.vaultRole(vault.url, who)
          : err instanceof AuthenticationError
            ? fixes.graphToken()
            : fixes.vaultReach(vault.url),
    });
  }
}

/** How many of the scanned connections sign in with a certificate (`authenticationType: spnCertificate`). */
export function certificateConnections(scans: (OrgScan | undefined)[]): number {
  let count = 0;
  for (const scan of scans)
    for (const { connection } of scan?.connections.values() ?? [])
      if (isCertificateConnection(connection)) count += 1;
  return count;
}

/**
 * Checks the Key Vault certificates permission, which certificate connections need for their new
 * certificates. Missing: `missing` when the scan found certificate connections, else a warning
 * (nothing fails today, the first certificate connection would).
 */
export async function checkVaultCertificates(
  vault: PreflightDeps['vault'],
  add: AddCheck,
  who: Who,
  certificateCount: number,
): Promise<void> {
  if (!vault.checkCertificateAccess) return;
  const row = { area: 'key-vault', name: 'vault certificates', target: vault.url } as const;
  try {
    await vault.checkCertificateAccess();
    add({
      ...row,
      status: 'ok',
      detail:
        'a GET of a missing certificate answered 404: the identity may read certificates; creating them comes with the same role',
    });
  } catch (err) {
    const status = statusOf(err);
    const affected = certificateCount
      ? `; ${certificateCount} certificate-based connection(s) cannot be rotated`
      : '; no certificate-based connection was found, so nothing fails yet';
    add({
      ...row,
      status: status === 403 && certificateCount === 0 ? 'warning' : 'missing',
      detail: `${errorMessage(err)}${affected}`,
      fix:
        status === 403
          ? fixes.vaultCertificatesRole(vault.url, who)
          : err instanceof AuthenticationError
            ? fixes.graphToken()
            : fixes.vaultReach(vault.url),
    });
  }
}

const LOCK_STORAGE = { area: 'storage', name: 'lock storage' } as const;

/** Checks the lock storage (a warning when none is configured). */
export async function checkStorage(
  storage: PreflightDeps['storage'],
  add: AddCheck,
  who: Who,
): Promise<void> {
  if (!storage)
    add({
      ...LOCK_STORAGE,
      target: 'AzureWebJobsStorage',
      status: 'warning',
      detail: 'not configured: rotations are locked within this process only',
      fix: fixes.storageMissing(),
    });
  else
    try {
      const { containerExists, url } = await storage.checkAccess();
      add({
        ...LOCK_STORAGE,
        target: url,
        status: 'ok',
        detail: containerExists
          ? 'lock container readable'
          : 'account readable; the lock container is created on first use',
      });
    } catch (err) {
      const e = err as { statusCode?: unknown; message?: unknown };
      const code = typeof e.statusCode === 'number' ? e.statusCode : undefined;
      add({
        ...LOCK_STORAGE,
        target: 'AzureWebJobsStorage',
        status: 'missing',
        detail: code
          ? `storage answered ${code}: ${errorMessage(err).split('\n')[0] ?? ''}`
          : errorMessage(err),
        fix: code === 403 ? fixes.storageRole('AzureWebJobsStorage', who) : fixes.storageReach(),
      });
    }
}
