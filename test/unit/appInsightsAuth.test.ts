import type { TelemetrySink } from '../../src/telemetry/sink';
import { createAppInsightsSink, ingestionIdentity } from '../../src/telemetry/appInsights';
import { stopOneSettingsPolling } from '../helpers/appInsights';

/** Every sink a test made: each client is shut down at the end, or its export (to a closed port) and
 * its retry timers outlive the file and keep the jest worker from exiting. */
const sinks: TelemetrySink[] = [];
async function sinkFor(connectionString: string, authenticationString: string | undefined) {
  const sink = await createAppInsightsSink(connectionString, authenticationString);
  sinks.push(sink);
  return sink;
}

afterAll(async () => {
  stopOneSettingsPolling();
  await Promise.all(
    sinks.map((s) => (s as unknown as { client: { shutdown(): Promise<void> } }).client.shutdown()),
  );
});

const CONNECTION_STRING =
  'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/';

describe('Application Insights ingestion with Entra ID (local auth off)', () => {
  it.each([
    ['Authorization=AAD;ClientId=1111', { clientId: '1111' }],
    ['ClientId=2222;Authorization=AAD', { clientId: '2222' }],
    ['Authorization=aad', {}],
    ['Authorization=Key', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('reads %p', (input, expected) => {
    expect(ingestionIdentity(input)).toEqual(expected);
  });

  it('gives the client a managed identity credential when the setting asks for AAD', async () => {
    const sink = await sinkFor(CONNECTION_STRING, 'Authorization=AAD;ClientId=3333');
    const client = (
      sink as unknown as { client: { config: { aadTokenCredential?: { constructor: { name: string } } } } }
    ).client;
    expect(client.config.aadTokenCredential?.constructor.name).toBe('ManagedIdentityCredential');
  });

  it('leaves ingestion to the connection string otherwise', async () => {
    const sink = await sinkFor(CONNECTION_STRING, undefined);
    const client = (sink as unknown as { client: { config: { aadTokenCredential?: unknown } } }).client;
    expect(client.config.aadTokenCredential).toBeUndefined();
  });

  it("a client starts the SDK's OneSettings poller, which the test helper stops (it would leak into later files)", async () => {
    const sink = await sinkFor(CONNECTION_STRING, undefined);
    sink.trackEvent('PollerProbe'); // the client builds its exporters on the first item
    const entry = require.resolve('@azure/monitor-opentelemetry-exporter');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ConfigurationManager } = require(
      `${entry.slice(0, entry.lastIndexOf('/'))}/_configuration/configurationManager.js`,
    ) as { ConfigurationManager: { getInstance(): { worker?: unknown } } };
    expect(ConfigurationManager.getInstance().worker).toBeDefined();
    stopOneSettingsPolling();
    expect(ConfigurationManager.getInstance().worker).toBeUndefined();
  });
});
