/**
 * The blob-lease LockProvider against Azurite (the real emulator, started here): one holder at a
 * time, release lets the next in, and a lease broken by someone else is reported as lost. That
 * background renewal keeps a 15-second lease for longer takes 18 s of waiting: the slow project
 * (azurite.lock.slow.test.ts).
 */
import { createBlobServiceClient, lockBlobName } from '../../src/clients/blobLeaseLock';
import { sleep, useLockContainers } from '../helpers/lockContainers';

const locks = useLockContainers();
const { instance, freshContainer } = locks;

test('Azurite starts on free loopback ports with an AzureWebJobsStorage connection string', () => {
  expect(locks.azurite.blobEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
  expect(locks.azurite.connectionString).toContain(`BlobEndpoint=${locks.azurite.blobEndpoint};`);
  expect(locks.azurite.startupMs).toBeLessThan(20_000);
});

test('two acquirers of a new key at once (container and blob missing): exactly one wins', async () => {
  const container = freshContainer();
  const [a, b] = [instance(container), instance(container)];
  const results = await Promise.all([a.tryAcquire('conn-1', 15), b.tryAcquire('conn-1', 15)]);
  expect(results.filter((r) => r !== undefined)).toHaveLength(1);
  await Promise.all(results.map((r) => (r ? r.release() : Promise.resolve())));
});

test('a held key refuses others; release lets the next holder in; keys are independent', async () => {
  const container = freshContainer();
  const [a, b] = [instance(container), instance(container)];
  const held = await a.tryAcquire('contoso/0f1e2d3c-aaaa-4bbb-8ccc-000000000001', 30);
  expect(held).toBeDefined();
  expect(held!.durationSeconds).toBe(30);
  expect(await b.tryAcquire('contoso/0f1e2d3c-aaaa-4bbb-8ccc-000000000001', 30)).toBeUndefined();
  // Another key is another lock.
  const other = await b.tryAcquire('contoso/0f1e2d3c-aaaa-4bbb-8ccc-000000000002', 30);
  expect(other).toBeDefined();

  await held!.release();
  await held!.release(); // idempotent
  const next = await b.tryAcquire('contoso/0f1e2d3c-aaaa-4bbb-8ccc-000000000001', 30);
  expect(next).toBeDefined();
  expect(await a.tryAcquire('contoso/0f1e2d3c-aaaa-4bbb-8ccc-000000000001', 30)).toBeUndefined();
  await Promise.all([next!.release(), other!.release()]);
});

test('one blob per key, named by the URI-encoded key, in the container', async () => {
  const container = freshContainer();
  const lease = await instance(container).tryAcquire('org/id with space', 15);
  const service = createBlobServiceClient({ AzureWebJobsStorage: locks.azurite.connectionString });
  const names: string[] = [];
  for await (const blob of service.getContainerClient(container).listBlobsFlat()) names.push(blob.name);
  expect(names).toEqual([lockBlobName('org/id with space')]);
  const props = await service.getContainerClient(container).getBlobClient(names[0]!).getProperties();
  expect(props.leaseState).toBe('leased');
  expect(props.leaseDuration).toBe('fixed');
  await lease!.release();
  const after = await service.getContainerClient(container).getBlobClient(names[0]!).getProperties();
  expect(after.leaseState).toBe('available');
});

test('a lease broken by someone else is reported as lost at the next renewal', async () => {
  const container = freshContainer();
  const lost: string[] = [];
  const lease = await instance(container, {
    renewIntervalMs: 300,
    onLost: (key, reason) => lost.push(`${key}: ${reason}`),
  }).tryAcquire('contested', 15);
  expect(lease).toBeDefined();

  const service = createBlobServiceClient({ AzureWebJobsStorage: locks.azurite.connectionString });
  await service
    .getContainerClient(container)
    .getBlobClient(lockBlobName('contested'))
    .getBlobLeaseClient()
    .breakLease(0);
  const intruder = await instance(container).tryAcquire('contested', 15);
  expect(intruder).toBeDefined();

  for (let i = 0; i < 50 && !lease!.lost; i++) await sleep(100);
  expect(lease!.lost).toBe(true);
  expect(lease!.signal.aborted).toBe(true);
  expect(lost).toHaveLength(1);
  expect(lost[0]).toMatch(/^contested: renewal refused \(409/);

  await lease!.release(); // must not release the intruder's lease
  expect(await instance(container).tryAcquire('contested', 15)).toBeUndefined();
  await intruder!.release();
});
