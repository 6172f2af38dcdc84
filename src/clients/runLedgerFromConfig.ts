/**
 * The function's storage account from the settings (`AzureWebJobsStorage`: connection string or
 * identity-based), and the run ledger in it, or in memory when no storage is configured. One place
 * for the composition root (locks, the engine's retirements), the Functions app's invocation thread
 * (API, status page) and its engine thread: with storage they all see the same runs.
 * Static imports (the engine thread's TypeScript hook handles no `import()`); callers on the
 * invocation thread import this module lazily.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { Config } from '../config';
import type { RunLedger } from '../remediation/ports';
import { redactor, type Logger } from '../telemetry';
import { createBlobServiceClient } from './blobLeaseLock';
import { createCredential } from './identity';
import { createBlobRunLedger, createMemoryRunLedger, DEFAULT_LEDGER_CONTAINER } from './runLedger';

/** The function's storage account: connection string, or identity-based blob endpoint. */
export function blobServiceFor(storage: NonNullable<Config['storage']>, credential?: TokenCredential) {
  return createBlobServiceClient(
    {
      AzureWebJobsStorage: storage.connectionString,
      AzureWebJobsStorage__blobServiceUri: storage.blobServiceUri,
      AzureWebJobsStorage__accountName: storage.accountName,
    },
    credential,
  );
}

/** Whether the ledger is shared through storage (so another thread or instance sees the same runs). */
export function ledgerIsShared(config: Config): boolean {
  const storage = config.storage;
  return Boolean(storage && (storage.connectionString || storage.blobServiceUri || storage.accountName));
}

/**
 * The run ledger in the storage account, when one is configured. A connection string needs no
 * identity; the identity-based form uses `credential`, or the service's own built alone (without
 * the rest of the engine's SDKs).
 */
export function sharedRunLedger(
  config: Config,
  options: { now: () => Date; credential?: TokenCredential },
): RunLedger | undefined {
  const storage = config.storage;
  if (!storage || !ledgerIsShared(config)) return undefined;
  if (storage.connectionString) redactor.register(storage.connectionString);
  const credential = storage.connectionString ? undefined : (options.credential ?? createCredential(config));
  return createBlobRunLedger(
    blobServiceFor(storage, credential).getContainerClient(DEFAULT_LEDGER_CONTAINER),
    {
      now: options.now,
    },
  );
}

/** The shared run ledger, or one in memory (with a warning) when no storage is configured. */
export function openRunLedger(
  config: Config,
  options: { now: () => Date; log: Logger; credential?: TokenCredential },
): RunLedger {
  const shared = sharedRunLedger(config, options);
  if (shared) return shared;
  options.log.warn('No storage configured (AzureWebJobsStorage): the run ledger lives in memory only.');
  return createMemoryRunLedger({ now: options.now });
}
