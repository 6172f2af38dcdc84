/**
 * The blob-lease lock provider against Azurite, for the lock's own tests (azurite.lock.test.ts and
 * its slow part): Azurite for the file, a provider per simulated app instance, a fresh container per
 * test so lock blobs never meet.
 */
import { randomUUID } from 'node:crypto';
import type { Azurite } from '../../sandbox/azurite';
import { BlobServiceClient } from '@azure/storage-blob';
import {
  BlobLeaseLockProvider,
  DEFAULT_LOCK_CONTAINER,
  createBlobServiceClient,
  lockBlobName,
  type BlobLeaseLockOptions,
  type LeaseTimers,
} from '../../src/clients/blobLeaseLock';
import { useSandbox } from './useSandbox';

interface LockContainers {
  readonly azurite: Azurite;
  /** A provider as one instance of the app would build it: its own client, same container. */
  instance(container: string, options?: BlobLeaseLockOptions): BlobLeaseLockProvider;
  freshContainer(): string;
}

export function useLockContainers(): LockContainers {
  const fixture = useSandbox({ azurite: true });
  return {
    get azurite() {
      return fixture.azurite;
    },
    instance(container, options = {}) {
      const service = createBlobServiceClient({ AzureWebJobsStorage: fixture.azurite.connectionString });
      return new BlobLeaseLockProvider(service, { containerName: container, ...options });
    },
    freshContainer: () => `locks-${randomUUID().slice(0, 8)}`,
  };
}

/** Timers that never fire: a lease that is never renewed, as if its holder had died. */
export const frozenTimers: LeaseTimers = {
  setTimeout: () => 0,
  clearTimeout: () => undefined,
  now: () => Date.now(),
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Breaks the lease on lock `key` at once, from outside, as an operator (or its expiry) would. */
export async function breakBlobLease(
  connectionString: string,
  container: string,
  key: string,
): Promise<void> {
  await BlobServiceClient.fromConnectionString(connectionString)
    .getContainerClient(container)
    .getBlobClient(lockBlobName(key))
    .getBlobLeaseClient()
    .breakLease(0);
}

/**
 * The lease a killed process held on a connection: still there (DESIGN invariant 5), then broken
 * as its expiry would break it (instead of waiting for it).
 */
export async function expectLockHeldThenBreak(
  azuriteConnectionString: string,
  connectionId: string,
): Promise<void> {
  const key = `connection-${connectionId}`;
  const other = new BlobLeaseLockProvider(
    createBlobServiceClient({ AzureWebJobsStorage: azuriteConnectionString }),
  );
  const lease = await other.tryAcquire(key, 15);
  if (lease) await lease.release();
  expect(lease).toBeUndefined();
  await breakBlobLease(azuriteConnectionString, DEFAULT_LOCK_CONTAINER, key);
}
