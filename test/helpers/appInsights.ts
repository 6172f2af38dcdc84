/**
 * The Azure Monitor exporter under `applicationinsights` starts a process-wide OneSettings poller
 * (`settings.sdk.monitor.azure.com`, first poll 5–15 s after the first exporter is built) that
 * nothing in the SDK ever stops: not `TelemetryClient.shutdown()`, not `flush()`. Jest runs several
 * test files in one worker process, so a file that builds a telemetry client leaves that poller
 * to fire during a later file, where it shows up as a connection to a host that is not configured
 * (test/helpers/outbound.ts) and keeps the worker from exiting gracefully.
 *
 * Test files that build a client call this in `afterAll`. It reaches into the exporter's own
 * module (same Jest registry as the client the test built), and fails loudly if a new SDK version
 * moves it, rather than letting the poller leak again unnoticed.
 */
import { dirname, join } from 'node:path';

interface ConfigurationManagerModule {
  ConfigurationManager: { getInstance(): { shutdown(): void } };
}

export function stopOneSettingsPolling(): void {
  const entry = require.resolve('@azure/monitor-opentelemetry-exporter');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const module = require(
    join(dirname(entry), '_configuration', 'configurationManager.js'),
  ) as ConfigurationManagerModule;
  module.ConfigurationManager.getInstance().shutdown();
}
