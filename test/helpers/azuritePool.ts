/**
 * One Azurite per jest worker for the whole run instead of one per test file or describe block
 * (each start costs 1.2-1.8 s of a core; `npm test` started 28). The global setup
 * (test/helpers/globalSetup.ts) starts them and hands their endpoints to the workers through
 * SC_TEST_AZURITE_POOL; `testAzurite` gives the current worker's, emptied first (every container and
 * queue deleted), so each user finds it as a fresh one would be. Table storage is not emptied: a caller
 * asking for it, or a worker without a pooled instance, gets an Azurite of its own.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import {
  azuriteAt,
  startAzurite,
  type Azurite,
  type AzuriteOptions,
  type RunningAzurite,
} from '../../sandbox/azurite';

const POOL_VARIABLE = 'SC_TEST_AZURITE_POOL';

/** Starts `count` Azurites for the run's workers; returns what stops them all. */
export async function startAzuritePool(count: number): Promise<() => Promise<void>> {
  const pool = await Promise.all(Array.from({ length: count }, () => startAzurite()));
  const running: RunningAzurite[] = pool.map(
    ({ blobEndpoint, queueEndpoint, tableEndpoint, pid, startupMs }) => ({
      blobEndpoint,
      queueEndpoint,
      tableEndpoint,
      pid,
      startupMs,
    }),
  );
  process.env[POOL_VARIABLE] = JSON.stringify(running);
  return async () => {
    delete process.env[POOL_VARIABLE];
    await Promise.all(pool.map((a) => a.stop()));
  };
}

function pooledForThisWorker(): RunningAzurite | undefined {
  const pool = process.env[POOL_VARIABLE];
  const worker = Number(process.env['JEST_WORKER_ID'] ?? '1');
  return pool ? (JSON.parse(pool) as RunningAzurite[])[worker - 1] : undefined;
}

/** Deletes every blob container and queue: what a test left behind, leases included. */
async function empty(azurite: Azurite): Promise<void> {
  const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
  const queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
  const deletions: Promise<unknown>[] = [];
  for await (const container of blobs.listContainers()) deletions.push(blobs.deleteContainer(container.name));
  for await (const queue of queues.listQueues()) deletions.push(queues.deleteQueue(queue.name));
  await Promise.all(deletions);
}

/**
 * An empty Azurite with the endpoints `options` ask for: this worker's pooled one (its `stop()` only
 * lets go of it), else one of its own (`stop()` stops it).
 */
export async function testAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const pooled = options.table ? undefined : pooledForThisWorker();
  if (!pooled) return startAzurite(options);
  const all = azuriteAt(pooled, { blob: true, queue: true }, () => Promise.resolve());
  await empty(all);
  return azuriteAt(pooled, options, () => Promise.resolve());
}
