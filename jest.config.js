/** @type {import('jest').Config} */
const shared = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  // The Functions app keeps its engine thread for the life of its process; a test file ends its own.
  setupFilesAfterEnv: ['<rootDir>/test/helpers/closeEngineThreads.ts'],
};

/**
 * Two projects: `fast` (`npm test`: one kill point, a one-round fault campaign) and `slow`
 * (`*.slow.test.ts`: the full fault campaign, every other kill point, the Bicep compiler's
 * variations, the package's own build). `jest` alone, as `npm run test:all` and CI run it, runs
 * both and prints one summary line.
 */
module.exports = {
  projects: [
    {
      ...shared,
      displayName: 'fast',
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '\\.slow\\.test\\.ts$'],
    },
    { ...shared, displayName: 'slow', testMatch: ['**/*.slow.test.ts'] },
  ],
  // Integration tests start HTTPS servers and Azurite; two cores, so keep workers modest.
  maxWorkers: 2,
  testSequencer: '<rootDir>/test/helpers/sequencer.js',
  // One Azurite per worker for the whole run (test/helpers/azuritePool.ts), the CLI compiled once.
  globalSetup: '<rootDir>/test/helpers/globalSetup.ts',
  globalTeardown: '<rootDir>/test/helpers/globalTeardown.ts',
  testTimeout: 60000,
  // A worker's heap is 600-700 MB by the end of the run, and the process takes about 500 ms to be
  // gone after its 'exit' event (measured: 484 and 501 ms, both workers tearing down at once), which
  // jest's default of 500 ms reported as "failed to exit gracefully" although nothing was left
  // open (no handle, timer, thread or child at 'exit').
  workerGracefulExitTimeout: 3000,
  reporters: ['default', '<rootDir>/test/helpers/summaryReporter.js'],
};
