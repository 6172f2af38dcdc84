/**
 * Application Insights (the `applicationinsights` v3 package, OpenTelemetry underneath): custom
 * events land in `customEvents`, metrics in `customMetrics`. Loaded only when
 * `APPLICATIONINSIGHTS_CONNECTION_STRING` is set, and only when a function first needs telemetry.
 *
 * The client uses its own providers (`useGlobalProviders: false`): it sends what it is given and
 * installs no global auto-instrumentation into the worker (the Functions host already reports
 * requests and dependencies).
 */
import type { TelemetryClient } from 'applicationinsights';
import { cleanProperties, type TelemetrySink } from './sink';

class AppInsightsTelemetrySink implements TelemetrySink {
  constructor(private readonly client: TelemetryClient) {}

  trackEvent(name: string, properties?: Record<string, string | number | boolean | undefined>): void {
    this.client.trackEvent({ name, properties: cleanProperties(properties) });
  }

  trackMetric(
    name: string,
    value: number,
    properties?: Record<string, string | number | boolean | undefined>,
  ): void {
    this.client.trackMetric({ name, value, properties: cleanProperties(properties) });
  }

  async flush(): Promise<void> {
    try {
      await this.client.flush();
    } catch {
      // Best effort: telemetry never fails a run.
    }
  }
}

/**
 * The managed identity named by `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`
 * (`Authorization=AAD;ClientId=<id>`), or undefined when ingestion uses the connection string alone.
 * With local authentication off on the Application Insights resource (infra/ turns it off),
 * telemetry without an Entra token is refused, and a `TelemetryClient` built from a connection
 * string does not read that setting itself; only the auto-attach agent does.
 */
export function ingestionIdentity(
  authenticationString: string | undefined,
): { clientId?: string } | undefined {
  if (!authenticationString) return undefined;
  const parts = new Map(
    authenticationString
      .split(';')
      .map((p) => p.split('=').map((s) => s.trim()) as [string, string?])
      .filter(([k, v]) => k && v)
      .map(([k, v]) => [k.toLowerCase(), v ?? '']),
  );
  if (parts.get('authorization')?.toLowerCase() !== 'aad') return undefined;
  const clientId = parts.get('clientid');
  return clientId ? { clientId } : {};
}

/** Builds the sink for a connection string (the SDK is imported here, on first use). */
export async function createAppInsightsSink(
  connectionString: string,
  authenticationString = process.env['APPLICATIONINSIGHTS_AUTHENTICATION_STRING'],
): Promise<TelemetrySink> {
  const { TelemetryClient } = await import('applicationinsights');
  const client = new TelemetryClient(connectionString, { useGlobalProviders: false });
  client.commonProperties = { service: 'sc-remediator' };
  const identity = ingestionIdentity(authenticationString);
  if (identity) {
    const { ManagedIdentityCredential } = await import('@azure/identity');
    // Read when the client initialises on its first item, so setting it here is in time.
    client.config.aadTokenCredential = new ManagedIdentityCredential(
      identity.clientId ? { clientId: identity.clientId } : {},
    );
  }
  return new AppInsightsTelemetrySink(client);
}
