/**
 * The worker's Azurite (test/helpers/azuritePool.ts) is handed out empty: what one user left behind,
 * a leased blob or a queue message, is gone for the next, as it would be in a fresh Azurite.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { testAzurite } from '../helpers/azuritePool';

test('a second user finds no container, blob, lease or queue of the first', async () => {
  const first = await testAzurite({ blob: true, queue: true });
  const blobs = BlobServiceClient.fromConnectionString(first.connectionString);
  const container = blobs.getContainerClient('left-behind');
  await container.create();
  const blob = container.getBlockBlobClient('locked');
  await blob.upload('x', 1);
  await blob.getBlobLeaseClient().acquireLease(60);
  const queues = QueueServiceClient.fromConnectionString(first.connectionString);
  await queues.getQueueClient('left-behind').create();
  await queues.getQueueClient('left-behind').sendMessage('work');
  await first.stop();

  const second = await testAzurite({ blob: true, queue: true });
  try {
    const containers: string[] = [];
    for await (const c of BlobServiceClient.fromConnectionString(second.connectionString).listContainers())
      containers.push(c.name);
    const queueNames: string[] = [];
    for await (const q of QueueServiceClient.fromConnectionString(second.connectionString).listQueues())
      queueNames.push(q.name);
    expect({ containers, queueNames }).toEqual({ containers: [], queueNames: [] });
    // The same name can be taken again at once, its blob leased afresh.
    const again = BlobServiceClient.fromConnectionString(second.connectionString).getContainerClient(
      'left-behind',
    );
    await again.create();
    await again.getBlockBlobClient('locked').upload('y', 1);
    await again.getBlockBlobClient('locked').getBlobLeaseClient().acquireLease(60);
  } finally {
    await second.stop();
  }
});
