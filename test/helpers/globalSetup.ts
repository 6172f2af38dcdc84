/** Jest global setup: an Azurite per worker (test/helpers/azuritePool.ts), stopped by globalTeardown.ts. */
import { startAzuritePool } from './azuritePool';

export default async function globalSetup(globalConfig: { maxWorkers: number }): Promise<void> {
  (globalThis as { stopAzuritePool?: () => Promise<void> }).stopAzuritePool = await startAzuritePool(
    Math.max(1, globalConfig.maxWorkers),
  );
}
