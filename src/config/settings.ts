/**
 * Every setting, one row each: its name, where its value goes, its default, whether it is secret,
 * its parser and its documentation. The `Config` and `FunctionSettings` types, `DEFAULTS`, the
 * order problems are reported in, redaction and the table in docs/settings.md
 * (`npm run docs:settings`) are all derived from these rows.
 */
import type { RemediationPolicy } from '../remediation/policyFile';
import { type AzureCloudName, type CloudEndpoints, AZURE_CLOUDS, parseCloudName } from '../clients/cloud';
import {
  type Check,
  guid,
  TENANT_ID,
  httpsUrl,
  integer,
  jitterSeconds,
  keyOnlyAccess,
  parseBoolean,
  parseOrganizations,
  parseProjects,
  policyFromFile,
  parseTenantIds,
  policyFromJson,
  storageConnectionString,
  webhookUrl,
} from './checks';
import { row } from './row';
import { parseSchedule } from './schedule';

const int =
  (min: number, max: number, unit: string) =>
  (v: string | undefined, c: Check, def: number): number =>
    integer(v, c, def, min, max, unit);
const bool = (v: string | undefined, c: Check, def: boolean): boolean => parseBoolean(v, c, def);
const asIs = (v: string | undefined): string | undefined => v;
/** `ENGINE_HEAP_MB`: 0 (no thread), or a heap the engine can work in. */
const engineHeapMb = (v: string | undefined, c: Check, def: number): number =>
  v?.trim() === '0' ? 0 : integer(v, c, def, 64, 4096, 'MB');

function optionalUrl(expected: string, allowPath: boolean, allowLoopbackHttp = false) {
  return (v: string | undefined, c: Check): string | undefined =>
    v === undefined ? undefined : httpsUrl(v, c, expected, { allowPath, allowLoopbackHttp });
}

const KV_EXPECTED = 'the https URL of the vault, e.g. https://myvault.vault.azure.net';
const GRAPH_EXPECTED = 'the https Microsoft Graph root without a version, e.g. https://graph.microsoft.com';
const AUTHORITY_EXPECTED = 'an https Entra ID authority host, e.g. https://login.microsoftonline.com';

/** The rows, in the order problems are reported and docs/settings.md lists them. */
export const SETTINGS = [
  row({
    name: 'AZDO_ORGANIZATION_URLS',
    key: 'organizations',
    docDefault: 'required',
    parse: parseOrganizations,
    doc: 'Comma-separated organization URLs (`https://dev.azure.com/contoso`, `https://contoso.visualstudio.com`), each organization once (listed twice, by either URL form, case or slash: an error). Nothing else is contacted.',
  }),
  row({
    name: 'AZDO_PROJECTS',
    key: 'projects',
    docDefault: 'all projects',
    parse: parseProjects,
    doc: 'Comma-separated project names or ids to limit remediation to. Every project of every organization is still listed, to count who uses each app before a credential is removed ([usage census](#removing-superseded-credentials)).',
  }),
  row({
    name: 'KEY_VAULT_URL',
    key: 'keyVaultUrl',
    docDefault: 'required',
    parse: (v, c): string => {
      if (v === undefined) {
        c.fail('is missing', KV_EXPECTED);
        return '';
      }
      return httpsUrl(v, c, KV_EXPECTED, { allowPath: false }) ?? '';
    },
    doc: "The vault that keeps each connection's secret and rotation state.",
  }),
  row({
    name: 'AZURE_CLOUD',
    key: 'cloud',
    default: 'AzureCloud',
    parse: (v, c, def: AzureCloudName): AzureCloudName => {
      if (v === undefined) return def;
      const cloud = parseCloudName(v);
      if (!cloud) c.fail(`is not a supported cloud${c.got(v)}`, `one of ${AZURE_CLOUDS.join(', ')}`);
      return cloud ?? def;
    },
    doc: '`AzureCloud`, `AzureUSGovernment` or `AzureChinaCloud`: authority host, Graph endpoint and scopes.',
  }),
  row({
    name: 'GRAPH_ENDPOINT',
    docDefault: "the cloud's",
    parse: (v, c) => {
      if (v === undefined) return undefined;
      const url = httpsUrl(v, c, GRAPH_EXPECTED, { allowPath: true });
      // The Graph client adds the version itself; accept a root given with it.
      return url?.replace(/\/(v1\.0|beta)$/i, '');
    },
    doc: "Override of the Graph root (the token scope stays the cloud's Graph resource).",
  }),
  row({
    name: 'AZURE_AUTHORITY_HOST',
    docDefault: "the cloud's",
    parse: optionalUrl(AUTHORITY_EXPECTED, false),
    doc: 'Override of the Entra ID authority; instance discovery is disabled for a non-public host.',
  }),
  row({
    name: 'AZURE_TENANT_ID',
    key: 'tenantId',
    parse: (v, c) => {
      if (v !== undefined && !TENANT_ID.test(v))
        c.fail(
          `is not a valid tenant id${c.got(v)}`,
          'a directory (tenant) GUID or domain, e.g. contoso.onmicrosoft.com',
        );
      return v;
    },
    doc: 'The identity, with the standard `@azure/identity` names. In Azure the user-assigned managed identity (`AZURE_CLIENT_ID`) is used; locally a client secret or whatever `DefaultAzureCredential` finds. `AZURE_CLIENT_SECRET` is secret.',
  }),
  row({
    name: 'AZURE_CLIENT_ID',
    key: 'clientId',
    parse: guid('the application (client) id or the managed identity client id, a GUID'),
    doc: { inRowOf: 'AZURE_TENANT_ID' },
  }),
  row({
    name: 'AZURE_CLIENT_SECRET',
    key: 'clientSecret',
    secret: true,
    parse: asIs,
    doc: { inRowOf: 'AZURE_TENANT_ID' },
  }),
  row({
    name: 'ADDITIONAL_TENANT_IDS',
    key: 'additionalTenantIds',
    docDefault: 'none',
    parse: parseTenantIds,
    doc: 'Comma-separated directory (tenant) GUIDs, besides `AZURE_TENANT_ID`, whose connections this service rotates, through the multi-tenant app `MULTI_TENANT_APP_CLIENT_ID` (consented in each; [deploy](deploy.md#other-tenants)). Connections of any other tenant stay `unsupported`.',
  }),
  row({
    name: 'MULTI_TENANT_APP_CLIENT_ID',
    key: 'multiTenantAppClientId',
    docDefault: 'required with `ADDITIONAL_TENANT_IDS`',
    parse: guid('the client id of the multi-tenant app that trusts the managed identity, a GUID'),
    doc: "Client id of the multi-tenant app registration (home tenant) that trusts the service's identity through a federated identity credential; its tokens in each of `ADDITIONAL_TENANT_IDS` are obtained with the identity's own token as the assertion, so no secret exists.",
  }),
  row({
    name: 'AZDO_PAT',
    key: 'azdoPat',
    secret: true,
    parse: (v, c) => {
      if (v !== undefined && /\s/.test(v))
        c.fail('contains whitespace', 'an Azure DevOps personal access token (a single token, no spaces)');
      return v;
    },
    doc: 'A personal access token for Azure DevOps instead of an Entra token. Secret.',
  }),
  row({
    name: 'ROTATE_DAYS_BEFORE_EXPIRY',
    key: 'rotateDaysBeforeExpiry',
    default: 30,
    parse: int(0, 365, 'days'),
    doc: 'A secret ending within this many days is rotated.',
  }),
  row({
    name: 'SECRET_LIFETIME_DAYS',
    key: 'secretLifetimeDays',
    default: 90,
    parse: int(1, 730, 'days'),
    doc: "Lifetime of new secrets (clamped to an app management policy's cap).",
  }),
  row({
    name: 'OLD_SECRET_RETENTION_HOURS',
    key: 'oldSecretRetentionHours',
    default: 24,
    parse: int(0, 8760, 'hours'),
    doc: 'How long a superseded secret stays on the app after the new one is verified; after that it goes only when no other connection may use it ([below](#removing-superseded-credentials)).',
  }),
  row({
    name: 'DRY_RUN',
    key: 'dryRun',
    default: false,
    parse: bool,
    doc: 'Assess and plan only; no write to any service.',
  }),
  row({
    name: 'REMEDIATION_SCHEDULE',
    key: 'schedule',
    default: '0 0 2 * * *',
    parse: parseSchedule,
    doc: 'The nightly timer (6-field NCRONTAB, UTC).',
  }),
  row({
    name: 'MAX_CONCURRENCY',
    key: 'maxConcurrency',
    default: 8,
    parse: int(1, 64, 'connections'),
    doc: 'Requests and connections in flight at once.',
  }),
  row({
    name: 'AzureWebJobsStorage',
    key: 'storage.connectionString',
    // A connection string may hold an account key.
    secret: true,
    parse: storageConnectionString,
    doc: "The function's storage account (connection string, or identity-based `AzureWebJobsStorage__blobServiceUri` / `__accountName`): rotation locks and the run ledger. Without it the CLI locks within its own process only. Secret when it holds a key.",
  }),
  row({
    name: 'AzureWebJobsStorage__accountName',
    key: 'storage.accountName',
    parse: (v, c) => {
      if (v !== undefined && !/^[a-z0-9]{3,24}$/.test(v))
        c.fail(`is not a storage account name${c.got(v)}`, '3-24 lowercase letters and digits');
      return v;
    },
    doc: { describedBy: 'AzureWebJobsStorage' },
  }),
  row({
    name: 'AzureWebJobsStorage__blobServiceUri',
    key: 'storage.blobServiceUri',
    parse: optionalUrl('an https blob service URI, e.g. https://account.blob.core.windows.net', true, true),
    doc: { describedBy: 'AzureWebJobsStorage' },
  }),
  row({
    name: 'AzureWebJobsStorage__queueServiceUri',
    key: 'storage.queueServiceUri',
    parse: optionalUrl('an https queue service URI, e.g. https://account.queue.core.windows.net', true, true),
    doc: { describedBy: 'AzureWebJobsStorage' },
  }),
  row({
    name: 'AzureWebJobsStorage__credential',
    key: 'storage.credential',
    parse: asIs,
    doc: { describedBy: 'AzureWebJobsStorage' },
  }),
  row({
    name: 'AzureWebJobsStorage__clientId',
    key: 'storage.clientId',
    parse: guid('the managed identity client id, a GUID'),
    doc: { describedBy: 'AzureWebJobsStorage' },
  }),
  row({
    // A blob lease lasts 15 to 60 seconds, or is infinite ("Lease Blob", Azure Storage REST API,
    // https://learn.microsoft.com/rest/api/storageservices/lease-blob); an infinite one would outlive a
    // crashed holder, so only the finite range is accepted. The default is the engine's
    // DEFAULT_LOCK_SECONDS.
    name: 'LOCK_LEASE_SECONDS',
    key: 'lockSeconds',
    default: 60,
    parse: int(15, 60, 'seconds'),
    doc: 'Seconds (15 to 60, the range of a blob lease) of the lease that keeps one operation per connection at a time; renewed every third of it while held. A run that dies holding it keeps the connection locked until it runs out: shorter frees it sooner, at the cost of more renewals.',
  }),
  row({
    name: 'NOTIFY_WEBHOOK_URL',
    key: 'notifyWebhookUrl',
    // Webhook URLs carry their token in the path or the query string (Teams Workflows: `?…&sig=`):
    // both are kept; the value is a secret and never shown.
    secret: true,
    parse: webhookUrl,
    doc: "Optional webhook (Teams incoming webhook or Workflows, Slack, or any URL for generic JSON, by host) for failures, connections that need a person, each full run's summary. Best effort. Secret. Names are escaped per format.",
  }),
  row({
    name: 'REMEDIATION_POLICY',
    docDefault: 'none',
    parse: policyFromJson,
    doc: 'The [remediation policy](#remediation-policy) as JSON. In Azure it is kept in Key Vault (secret `remediation-policy`, Bicep parameter `remediationPolicy`) and read through a Key Vault reference. Without one: rotate everything, convert nothing.',
  }),
  row({
    name: 'REMEDIATION_POLICY_FILE',
    docDefault: 'none',
    parse: policyFromFile,
    doc: 'The same policy from a JSON file (CLI, local runs). Not together with `REMEDIATION_POLICY`.',
  }),
  row({
    name: 'ENABLE_RETIREMENT',
    key: 'enableRetirement',
    default: false,
    parse: bool,
    doc: 'Retire (delete) connections that cannot be fixed: their app is gone, or they have been failing for `RETIRE_FAILED_AFTER_DAYS`. The full definition (no secret) is recorded in the run ledger first; without storage nothing is retired.',
  }),
  row({
    name: 'RETIRE_FAILED_AFTER_DAYS',
    key: 'retireFailedAfterDays',
    default: 0,
    parse: int(0, 3650, 'days'),
    doc: 'With retirement on, also retire connections failing this many days (first seen failing, as the run ledger noted it); `0`: only those whose app is gone.',
  }),
  row({
    name: 'REMEDIATION_JITTER_SECONDS',
    key: 'jitterSeconds',
    app: 'functions',
    default: 120,
    parse: jitterSeconds,
    doc: 'Functions app: random delay (0..300 s) before the nightly run starts.',
  }),
  row({
    name: 'ENGINE_HEAP_MB',
    key: 'engineHeapMb',
    app: 'functions',
    default: 192,
    parse: engineHeapMb,
    doc: "Functions app: heap limit (MB, 64 to 4096) of the worker thread that plans runs (nightly timer, `POST /api/runs`) and remediates queued connections, so V8 collects against it whatever memory the instance reports; `0`: that work runs on the invocation's own thread, with Node's default heap sizing.",
  }),
  row({
    // Read by the telemetry set-up itself (telemetry works even when other settings are bad).
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING',
    app: 'functions',
    secret: true,
    parse: asIs,
    doc: 'Functions app: custom events and metrics go to this Application Insights resource (none when unset).',
  }),
  row({
    // App Service Authentication fronts the app: the platform injects `WEBSITE_AUTH_ENABLED` when it
    // is on ("Environment variables and app settings in Azure App Service",
    // https://learn.microsoft.com/azure/app-service/reference-app-settings; Microsoft.Identity.Web's
    // `AppServicesAuthenticationInformation` reads it the same way). Only then is
    // `x-ms-client-principal` trusted and roles enforced (failing closed otherwise, as acmebot does
    // since polymind-inc/acmebot#170).
    name: 'WEBSITE_AUTH_ENABLED',
    key: 'authEnabled',
    app: 'functions',
    default: false,
    docDefault: 'set by App Service',
    parse: (v, _c, def) => (v === undefined ? def : /^(true|1|yes)$/i.test(v)),
    doc: 'Functions app: App Service Authentication fronts the app. Only then is `x-ms-client-principal` trusted and are the app roles `Remediation.Reader` (reads), `Remediation.Operator` (writes) enforced; without it the API answers 401.',
  }),
  row({
    // Without App Service Authentication, a function key alone gives full (operator) access. Unsafe;
    // without it such an app answers every call 401.
    name: 'API_UNSAFE_ALLOW_KEY_ONLY_ACCESS',
    key: 'keyOnlyAccess',
    app: 'functions',
    default: false,
    parse: keyOnlyAccess,
    doc: 'Functions app, **unsafe**: without App Service Authentication a function key alone is enough and every key holder is an operator (no roles). For local `func start` only. See docs/functions.md, Access.',
  }),
] as const;

type Row = (typeof SETTINGS)[number];
type ValueOf<R> = R extends { parse(value: string | undefined, c: Check): infer T } ? T : never;

/** The `key` → value properties of one app's rows whose key has the given `prefix` (and no other dot). */
type Properties<App, Prefix extends string> = {
  [
    R in Row as R extends { app: App; key: `${Prefix}${infer K}` }
      ? K extends `${string}.${string}`
        ? never
        : K
      : never
  ]: ValueOf<R>;
};
/** A value that may be undefined becomes an optional property. */
type Optional<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};
type Flat<T> = { [K in keyof T]: T[K] };

/** `AzureWebJobsStorage` (connection string) or its identity-based `AzureWebJobsStorage__*` form. */
export type StorageSettings = Flat<Optional<Properties<'engine', 'storage.'>>>;

/** The engine's settings: one property per keyed row, and what the loader derives from the others. */
export type Config = Flat<
  Optional<Properties<'engine', ''>> & {
    /** The cloud's endpoints, with `GRAPH_ENDPOINT` / `AZURE_AUTHORITY_HOST` applied. */
    endpoints: CloudEndpoints;
    /** `AzureWebJobsStorage[__*]`; undefined when none is set. */
    storage?: StorageSettings;
    /** `REMEDIATION_POLICY` or `REMEDIATION_POLICY_FILE`; undefined: rotate everything, convert nothing. */
    policy?: RemediationPolicy;
  }
>;

/** Settings of the Functions app itself (not part of the engine's config). */
export type FunctionSettings = Flat<Optional<Properties<'functions', ''>>>;

/** The engine's defaults by `Config` property. */
export const DEFAULTS = Object.fromEntries(
  SETTINGS.filter((s) => s.app === 'engine' && s.key !== undefined && s.default !== undefined).map((s) => [
    s.key,
    s.default,
  ]),
) as {
  readonly [
    R in Row as R extends { app: 'engine'; key: infer K extends string; default: infer D }
      ? undefined extends D
        ? never
        : K
      : never
  ]: Exclude<ValueOf<R>, undefined>;
};

/** Every setting the engine's loader reads, in the order problems are reported (infra tests check the Bicep sets them). */
export const SETTING_ORDER: readonly string[] = SETTINGS.filter((s) => s.app === 'engine').map((s) => s.name);

/** Settings whose values must never be shown, in errors or anywhere else. */
export const SECRET_SETTINGS: ReadonlySet<string> = new Set(
  SETTINGS.filter((s) => s.secret).map((s) => s.name),
);
