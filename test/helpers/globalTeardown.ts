/** Jest global teardown: stops what globalSetup.ts started (globals set there are seen here). */
export default async function globalTeardown(): Promise<void> {
  await (globalThis as { stopAzuritePool?: () => Promise<void> }).stopAzuritePool?.();
}
