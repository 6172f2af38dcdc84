/**
 * Preflight of the stores (preflight.ts): Key Vault, by a GET of a name the service never writes
 * (404 proves data-plane read access and reachability, 403 a missing role; write access cannot be
 * proven without writing), and the lock storage, by a read of the account.
 */
import { AuthenticationError } from '../errors';
import { errorMessage } from '../telemetry';
import type { AddCheck, PreflightDeps } from './preflight';
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
