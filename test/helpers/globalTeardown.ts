/** Jest global teardown: undoes what globalSetup.ts did (globals set there are seen here). */
export default async function globalTeardown(): Promise<void> {
  await (globalThis as { undoGlobalSetup?: () => Promise<void> }).undoGlobalSetup?.();
}
