/**
 * The run ledger in the function's storage account (`AzureWebJobsStorage`: connection string or
 * identity-based), or in memory when no storage is configured. Used by the Functions app's
 * invocation thread (API, status page) and by its engine thread: with storage both see the same runs.
 * Static imports (the engine thread's TypeScript hook handles no `import()`); callers on the
 * invocation thread import this module lazily.
 */
import type { Config } from '../config';
import type { RunLedger } from '../remediation/ports';
import type { Logger } from '../telemetry';
import { createBlobServiceClient } from './blobLeaseLock';
import { createCredential } from './identity';
import { createBlobRunLedger, createMemoryRunLedger, DEFAULT_LEDGER_CONTAINER } from './runLedger';

export function openRunLedger(config: Config, options: { now: () => Date; log: Logger }): RunLedger {
  const storage = config.storage;
  if (!storage || !ledgerIsShared(config)) {
    options.log.warn('No storage configured (AzureWebJobsStorage): the run ledger lives in memory only.');
    return createMemoryRunLedger({ now: options.now });
  }
  // A connection string needs no identity; the identity-based form uses the service's own (alone,
  // without the rest of the engine's SDKs).
  const credential = storage.connectionString ? undefined : createCredential(config);
  const service = createBlobServiceClient(
    {
      AzureWebJobsStorage: storage.connectionString,
      AzureWebJobsStorage__blobServiceUri: storage.blobServiceUri,
      AzureWebJobsStorage__accountName: storage.accountName,
    },
    credential,
  );
  return createBlobRunLedger(service.getContainerClient(DEFAULT_LEDGER_CONTAINER), {
    now: options.now,
  });
}

/** Whether the ledger is shared through storage (so another thread or instance sees the same runs). */
export function ledgerIsShared(config: Config): boolean {
  const storage = config.storage;
  return Boolean(storage && (storage.connectionString || storage.blobServiceUri || storage.accountName));
}
