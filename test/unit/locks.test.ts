/**
 * Lock providers without a storage account: the renewal loop of the blob-lease lock driven by
 * injected timers and a plain-object lease client, the storage settings, and the in-memory lock.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { BlobServiceClient } from '@azure/storage-blob';
import {
  BlobLeaseLockProvider,
  createBlobServiceClient,
  leaseDurationFor,
  lockBlobName,
  type LeaseTimers,
} from '../../src/clients/blobLeaseLock';
import { MemoryLockProvider } from '../../src/clients/memoryLock';

/** Timers the test fires by hand, with a clock it moves. */
class ManualTimers implements LeaseTimers {
  clock = 1_000_000;
  private nextId = 1;
  pending = new Map<number, { at: number; callback: () => void }>();
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.clock + ms, callback });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  now(): number {
    return this.clock;
  }
  /** Moves the clock to the next timer and runs it; returns the delay it was scheduled with. */
  async fireNext(): Promise<number> {
    const [id, next] = [...this.pending.entries()].sort((a, b) => a[1].at - b[1].at)[0] ?? [];
    if (id === undefined || !next) throw new Error('no timer pending');
    const delay = next.at - this.clock;
    this.clock = next.at;
    this.pending.delete(id);
    next.callback();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    return delay;
  }
}

function storageError(statusCode: number, code?: string): Error {
  return Object.assign(new Error(`status ${statusCode}`), { statusCode, code, name: 'RestError' });
}

function fakeService() {
  const lease = {
    leaseId: 'lease-1',
    acquireLease: jest.fn<Promise<unknown>, [number]>().mockResolvedValue({}),
    renewLease: jest.fn<Promise<unknown>, []>().mockResolvedValue({}),
    releaseLease: jest.fn<Promise<unknown>, []>().mockResolvedValue({}),
  };
  const blob = { getBlobLeaseClient: () => lease, upload: jest.fn().mockResolvedValue({}) };
  const container = {
    createIfNotExists: jest.fn().mockResolvedValue({}),
    getBlockBlobClient: jest.fn(() => blob),
  };
  const service = { getContainerClient: jest.fn(() => container) } as unknown as BlobServiceClient;
  return { service, container, blob, lease };
}

describe('blob lease lock: renewal loop', () => {
  test('renews every interval while held; release stops renewing and releases once', async () => {
    const timers = new ManualTimers();
    const { service, lease } = fakeService();
    const held = await new BlobLeaseLockProvider(service, { timers }).tryAcquire('k', 20);
    expect(lease.acquireLease).toHaveBeenCalledWith(20);
    expect(await timers.fireNext()).toBe(Math.floor(20_000 / 3));
    expect(await timers.fireNext()).toBe(Math.floor(20_000 / 3));
    expect(lease.renewLease).toHaveBeenCalledTimes(2);
    expect(held!.renewals).toBe(2);

    await Promise.all([held!.release(), held!.release()]);
    expect(timers.pending.size).toBe(0);
    expect(lease.releaseLease).toHaveBeenCalledTimes(1);
  });

  test('a refused renewal (409) marks the lease lost, aborts its signal and skips release', async () => {
    const timers = new ManualTimers();
    const { service, lease } = fakeService();
    const onLost = jest.fn();
    const held = await new BlobLeaseLockProvider(service, {
      timers,
      onLost,
      renewIntervalMs: 5000,
    }).tryAcquire('k', 15);
    lease.renewLease.mockRejectedValueOnce(storageError(409, 'LeaseIdMismatchWithLeaseOperation'));
    await timers.fireNext();
    expect(held!.lost).toBe(true);
    expect(held!.signal.aborted).toBe(true);
    expect(onLost).toHaveBeenCalledWith('k', 'renewal refused (409 LeaseIdMismatchWithLeaseOperation)');
    expect(timers.pending.size).toBe(0);
    await held!.release();
    expect(lease.releaseLease).not.toHaveBeenCalled();
  });

  test('transient renewal errors retry sooner; past the lease duration the lease counts as lost', async () => {
    const timers = new ManualTimers();
    const { service, lease } = fakeService();
    const held = await new BlobLeaseLockProvider(service, { timers, renewIntervalMs: 6000 }).tryAcquire(
      'k',
      15,
    );
    lease.renewLease.mockRejectedValue(storageError(503, 'ServerBusy'));
    expect(await timers.fireNext()).toBe(6000); // fails at t=6 s
    expect(await timers.fireNext()).toBe(3000); // retried at 9 s, fails
    expect(held!.lost).toBe(false);
    await timers.fireNext(); // 12 s
    await timers.fireNext(); // 15 s: not renewed for a whole lease duration
    expect(held!.lost).toBe(true);
    expect(timers.pending.size).toBe(0);
  });

  test('a transient error followed by success keeps the lease', async () => {
    const timers = new ManualTimers();
    const { service, lease } = fakeService();
    const held = await new BlobLeaseLockProvider(service, { timers, renewIntervalMs: 5000 }).tryAcquire(
      'k',
      15,
    );
    lease.renewLease.mockRejectedValueOnce(storageError(500));
    await timers.fireNext();
    await timers.fireNext();
    expect(held!.lost).toBe(false);
    expect(held!.renewals).toBe(1);
    await held!.release();
  });

  test('409 LeaseAlreadyPresent on acquire: undefined, no renewal scheduled', async () => {
    const timers = new ManualTimers();
    const { service, lease } = fakeService();
    lease.acquireLease.mockRejectedValueOnce(storageError(409, 'LeaseAlreadyPresent'));
    expect(await new BlobLeaseLockProvider(service, { timers }).tryAcquire('k', 15)).toBeUndefined();
    expect(timers.pending.size).toBe(0);
  });

  test('first use: a missing container and blob are created, then the lease is taken', async () => {
    const timers = new ManualTimers();
    const { service, lease, blob, container } = fakeService();
    lease.acquireLease
      .mockRejectedValueOnce(storageError(404, 'ContainerNotFound'))
      .mockRejectedValueOnce(storageError(404, 'BlobNotFound'));
    const held = await new BlobLeaseLockProvider(service, { timers }).tryAcquire('k', 15);
    expect(held).toBeDefined();
    expect(container.createIfNotExists).toHaveBeenCalledTimes(1);
    expect(blob.upload).toHaveBeenCalled();
    expect(lease.acquireLease).toHaveBeenCalledTimes(3);
    await held!.release();
  });

  test('other errors on acquire are thrown', async () => {
    const { service, lease } = fakeService();
    lease.acquireLease.mockRejectedValueOnce(storageError(403, 'AuthorizationPermissionMismatch'));
    await expect(new BlobLeaseLockProvider(service).tryAcquire('k', 15)).rejects.toThrow('status 403');
  });

  test('lease durations stay in the service range; keys map to distinct blob names', () => {
    expect([1, 15, 29.6, 60, 61, Infinity, -1].map(leaseDurationFor)).toEqual([15, 15, 30, 60, 60, 60, 15]);
    expect(lockBlobName('contoso/abc')).toBe('contoso%2Fabc');
    expect(lockBlobName('a b')).not.toBe(lockBlobName('a_b'));
    expect(() => lockBlobName('')).toThrow('empty');
  });
});

describe('createBlobServiceClient', () => {
  const credential: TokenCredential = { getToken: () => Promise.resolve(null) };

  test('a connection string wins', () => {
    const client = createBlobServiceClient(
      { AzureWebJobsStorage: 'UseDevelopmentStorage=true', AzureWebJobsStorage__accountName: 'other' },
      credential,
    );
    expect(client.url).toMatch(/^http:\/\/127\.0\.0\.1:10000\/devstoreaccount1/);
  });

  test('identity-based: blobServiceUri, else accountName, with the credential', () => {
    expect(
      createBlobServiceClient(
        { AzureWebJobsStorage__blobServiceUri: 'https://acct.blob.core.windows.net' },
        credential,
      ).url,
    ).toMatch(/^https:\/\/acct\.blob\.core\.windows\.net/);
    expect(createBlobServiceClient({ AzureWebJobsStorage__accountName: 'stfunc01' }, credential).url).toMatch(
      /^https:\/\/stfunc01\.blob\.core\.windows\.net/,
    );
  });

  test('clear errors for missing or bad settings', () => {
    expect(() => createBlobServiceClient({}, credential)).toThrow(/AzureWebJobsStorage .*__blobServiceUri/);
    expect(() => createBlobServiceClient({ AzureWebJobsStorage: '  ' }, credential)).toThrow(
      'No storage account',
    );
    expect(() =>
      createBlobServiceClient({ AzureWebJobsStorage__accountName: 'Bad_Name' }, credential),
    ).toThrow('not a storage account name');
    expect(() =>
      createBlobServiceClient(
        { AzureWebJobsStorage__blobServiceUri: 'http://acct.blob.core.windows.net' },
        credential,
      ),
    ).toThrow('https');
    expect(() => createBlobServiceClient({ AzureWebJobsStorage__accountName: 'stfunc01' })).toThrow(
      'credential',
    );
  });
});

describe('MemoryLockProvider', () => {
  test('one holder per key; release is idempotent and never frees a later holder', async () => {
    const locks = new MemoryLockProvider();
    const first = await locks.tryAcquire('k', 15);
    expect(first).toBeDefined();
    expect(await locks.tryAcquire('k', 15)).toBeUndefined();
    expect(await locks.tryAcquire('other', 15)).toBeDefined();
    await first!.release();
    const second = await locks.tryAcquire('k', 15);
    expect(second).toBeDefined();
    await first!.release();
    expect(await locks.tryAcquire('k', 15)).toBeUndefined();
    expect(locks.heldKeys().sort()).toEqual(['k', 'other']);
    await second!.release();
    expect(locks.heldKeys()).toEqual(['other']);
  });
});
