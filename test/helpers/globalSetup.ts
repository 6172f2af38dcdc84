/**
 * Jest global setup: an Azurite per worker (test/helpers/azuritePool.ts) and the sources compiled
 * for child processes (test/helpers/compiledSources.ts), undone by globalTeardown.ts.
 */
import { startAzuritePool } from './azuritePool';
import { compileForChildren } from './compiledSources';

export default async function globalSetup(globalConfig: { maxWorkers: number }): Promise<void> {
  const [stopAzuritePool, removeCompiled] = await Promise.all([
    startAzuritePool(Math.max(1, globalConfig.maxWorkers)),
    compileForChildren(),
  ]);
  (globalThis as { undoGlobalSetup?: () => Promise<void> }).undoGlobalSetup = async () => {
    removeCompiled();
    await stopAzuritePool();
  };
}
