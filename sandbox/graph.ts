/**
 * Simulated Microsoft Graph v1.0, the part the remediator touches: applications (by object id, by
 * the `appId` alternate key, listed with `$filter`/`$select`/`$top`), `addPassword`/`removePassword`,
 * federated identity credentials, and app management policies. Authorization follows the caller's
 * application permissions (the `roles` claim of its Graph token); errors use Graph's JSON.
 *
 * Error codes and messages, with their public evidence (the rest are marked inferred where used):
 * - 404 Request_ResourceNotFound "Resource '…' does not exist or one of its queried reference-property
 *   objects are not present." (msgraph-sdk-java-core #363)
 * - 400 CredentialInvalidLifetimeAsPerAppPolicy + details InvalidKeyEndDate/EndDate
 *   (OfficeDev/microsoft-365-agents-toolkit #10998, Azure/azure-cli #28522)
 * - 400 CredentialTypeNotAllowedAsPerAppPolicy (code only: Teams Toolkit `aadErrorCode`)
 * - "Not allowed to add 3 passwords. You can only add a maximum of 2 passwords." (message only:
 *   microsoft/coe-starter-kit #3695, relayed by the Azure CLI)
 * - 409 Request_MultipleObjectsWithSameKeyValue "FederatedIdentityCredential with name … already
 *   exists." (Azure/azure-dev #1482); 400 InvalidFederatedIdentityCredentialValue (azure-workload-identity #434)
 * - 400 BadRequest "Invalid filter clause" (microsoft-graph-docs-contrib #4133), Request_UnsupportedQuery
 * - tenantAppManagementPolicy / appManagementPolicy shapes: microsoft-graph-docs-contrib v1.0 pages.
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { SandboxContext } from './index';
import type {
  AppManagementRestrictions,
  AppRecord,
  FederatedIdentityCredentialRecord,
  GraphPermission,
  KeyCredentialRecord,
  PasswordCredentialRecord,
  TenantState,
} from './model';
import { generateSecretText, stableGuid } from './scenario';
import type { ServiceDefinition } from './server';
import { AUDIENCES, type TokenClaims } from './tokens';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY_MS = 24 * 3600 * 1000;
const DEFAULT_PAGE_SIZE = 100;
/** Id Graph gives the tenant-wide default app management policy. */
const TENANT_POLICY_ID = '00000000-0000-0000-0000-000000000000';
/** Sign-in audiences whose apps hold at most two passwords (Microsoft account limit). */
const PERSONAL_AUDIENCES = new Set(['PersonalMicrosoftAccount', 'AzureADandPersonalMicrosoftAccount']);
const READ_ROLES: GraphPermission[] = [
  'Application.Read.All',
  'Application.ReadWrite.OwnedBy',
  'Application.ReadWrite.All',
];
const APP_PROPERTIES = [
  'id',
  'deletedDateTime',
  'appId',
  'applicationTemplateId',
  'createdDateTime',
  'description',
  'disabledByMicrosoftStatus',
  'displayName',
  'groupMembershipClaims',
  'identifierUris',
  'isDeviceOnlyAuthSupported',
  'isDisabled',
  'isFallbackPublicClient',
  'notes',
  'publisherDomain',
  'serviceManagementReference',
  'signInAudience',
  'tags',
  'tokenEncryptionKeyId',
  'uniqueName',
  'keyCredentials',
  'passwordCredentials',
  'requiredResourceAccess',
];
const FILTERABLE = new Set(['appId', 'id', 'displayName']);

class GraphHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: { code: string; message: string; target?: string }[],
  ) {
    super(message);
  }
}

interface GraphCall {
  req: Request;
  res: Response;
  claims: TokenClaims;
  caller: string;
  /** `https://host` as the client addressed it, for `@odata.context` and next links. */
  base: string;
}

/** Graph's timestamp style in `innerError.date`: seconds precision, no zone suffix. */
function innerDate(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, '');
}

function graphErrorBody(
  code: string,
  message: string,
  ids: { requestId: string; clientRequestId: string; date: Date },
  details?: { code: string; message: string; target?: string }[],
): unknown {
  return {
    error: {
      code,
      message,
      ...(details ? { details } : {}),
      innerError: {
        date: innerDate(ids.date),
        'request-id': ids.requestId,
        'client-request-id': ids.clientRequestId,
      },
    },
  };
}

/** Graph's DateTimeOffset style: seven fractional digits (`2021-09-09T19:50:29.3086381Z`). */
function graphDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

/** ISO 8601 duration (`P90D`, `P1Y`, `P4DT12H30M5S`) in ms; calendar units approximated. */
function durationMs(duration: string): number | undefined {
  const m =
    /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(
      duration,
    );
  if (!m || duration === 'P' || duration.endsWith('T')) return undefined;
  const n = (i: number): number => Number(m[i] ?? 0);
  return (n(1) * 365 + n(2) * 30 + n(3) * 7 + n(4)) * DAY_MS + n(5) * 3600_000 + n(6) * 60_000 + n(7) * 1000;
}

function appCreatedDateTime(app: AppRecord): string {
  // The model keeps no creation date; the oldest credential is a faithful lower bound.
  const starts = app.passwordCredentials
    .map((p) => Date.parse(p.startDateTime))
    .filter((t) => !Number.isNaN(t));
  const oldest = starts.length ? Math.min(...starts) : Date.parse('2020-01-01T00:00:00Z');
  return graphDate(new Date(oldest).toISOString());
}

function passwordJson(p: PasswordCredentialRecord, withSecret = false): Record<string, unknown> {
  return {
    customKeyIdentifier: null,
    displayName: p.displayName,
    endDateTime: graphDate(p.endDateTime),
    hint: p.hint,
    keyId: p.keyId,
    // Graph never returns the value again after addPassword.
    secretText: withSecret ? p.secretText : null,
    startDateTime: graphDate(p.startDateTime),
  };
}

/**
 * A certificate as Graph lists it (keyCredential resource, Graph v1.0,
 * https://learn.microsoft.com/graph/api/resources/keycredential: customKeyIdentifier — the
 * thumbprint by default —, displayName, endDateTime, key, keyId, startDateTime, type, usage).
 * `key`, the certificate's raw data, is "returned only on $select for a single object, that is,
 * GET applications/{applicationId}?$select=keyCredentials ...; otherwise, it is always null".
 */
function keyJson(k: KeyCredentialRecord, withKey: boolean): Record<string, unknown> {
  return {
    customKeyIdentifier: k.customKeyIdentifier,
    displayName: k.displayName,
    endDateTime: graphDate(k.endDateTime),
    key: withKey ? k.key : null,
    keyId: k.keyId,
    startDateTime: graphDate(k.startDateTime),
    type: k.type,
    usage: k.usage,
  };
}

function appJson(state: TenantState, app: AppRecord, withKeys = false): Record<string, unknown> {
  return {
    id: app.id,
    deletedDateTime: null,
    appId: app.appId,
    applicationTemplateId: null,
    createdDateTime: appCreatedDateTime(app),
    description: null,
    disabledByMicrosoftStatus: null,
    displayName: app.displayName,
    groupMembershipClaims: null,
    identifierUris: [],
    isDeviceOnlyAuthSupported: null,
    isDisabled: app.disabled,
    isFallbackPublicClient: null,
    notes: null,
    publisherDomain: state.tenantDomain,
    serviceManagementReference: null,
    signInAudience: app.signInAudience,
    tags: [],
    tokenEncryptionKeyId: null,
    uniqueName: null,
    keyCredentials: (app.keyCredentials ?? []).map((k) => keyJson(k, withKeys)),
    passwordCredentials: app.passwordCredentials.map((p) => passwordJson(p)),
    requiredResourceAccess: [],
  };
}

function ficJson(f: FederatedIdentityCredentialRecord): Record<string, unknown> {
  return {
    id: f.id,
    name: f.name,
    issuer: f.issuer,
    subject: f.subject,
    description: f.description,
    audiences: f.audiences,
  };
}

function parseSelect(raw: unknown): string[] | undefined {
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  const fields = raw.split(',').map((s) => s.trim());
  for (const f of fields)
    if (!APP_PROPERTIES.includes(f))
      throw new GraphHttpError(
        400,
        'Request_BadRequest',
        `Could not find a property named '${f}' on type 'microsoft.graph.application'.`,
      );
  return fields;
}

function project(json: Record<string, unknown>, select: string[] | undefined): Record<string, unknown> {
  if (!select) return json;
  const out: Record<string, unknown> = {};
  for (const f of select) out[f] = json[f];
  return out;
}

/** The small `$filter` grammar the sandbox understands: `<prop> eq '<value>'` and `startswith(displayName,'x')`. */
function parseFilter(raw: string): (app: AppRecord) => boolean {
  const eq = /^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$/i.exec(raw);
  if (eq) {
    const [, prop = '', rawValue = ''] = eq;
    const value = rawValue.replace(/''/g, "'");
    const key = [...FILTERABLE].find((f) => f.toLowerCase() === prop.toLowerCase());
    if (!key)
      throw new GraphHttpError(
        400,
        APP_PROPERTIES.some((p) => p.toLowerCase() === prop.toLowerCase())
          ? 'Request_UnsupportedQuery'
          : 'BadRequest',
        APP_PROPERTIES.some((p) => p.toLowerCase() === prop.toLowerCase())
          ? `Unsupported or invalid query filter clause specified for property '${prop}' of resource 'Application'.`
          : `Invalid filter clause: Could not find a property named '${prop}' on type 'microsoft.graph.application'.`,
      );
    if (key === 'displayName') return (a) => a.displayName === value;
    // Guid-typed keys compare case-insensitively.
    return (a) => a[key as 'appId' | 'id'].toLowerCase() === value.toLowerCase();
  }
  const sw = /^\s*startswith\(\s*displayName\s*,\s*'((?:[^']|'')*)'\s*\)\s*$/i.exec(raw);
  if (sw) {
    const prefix = (sw[1] ?? '').replace(/''/g, "'").toLowerCase();
    return (a) => a.displayName.toLowerCase().startsWith(prefix);
  }
  throw new GraphHttpError(400, 'BadRequest', `Invalid filter clause: Syntax error in '${raw}'.`);
}

function hasAny(claims: TokenClaims, roles: GraphPermission[]): boolean {
  return roles.some((r) => claims.roles.includes(r));
}

const DENIED = (): GraphHttpError =>
  new GraphHttpError(
    403,
    'Authorization_RequestDenied',
    'Insufficient privileges to complete the operation.',
  );

function requireRead(call: GraphCall): void {
  if (!hasAny(call.claims, READ_ROLES)) throw DENIED();
}

/** ReadWrite.All writes any app; ReadWrite.OwnedBy only apps the caller owns. */
function requireWrite(call: GraphCall, app?: AppRecord): void {
  if (call.claims.roles.includes('Application.ReadWrite.All')) return;
  if (
    call.claims.roles.includes('Application.ReadWrite.OwnedBy') &&
    (!app || app.owners.includes(call.caller))
  )
    return;
  throw DENIED();
}

function requirePolicyRead(call: GraphCall): void {
  if (!call.claims.roles.includes('Policy.Read.All')) throw DENIED();
}

function notFound(key: string): GraphHttpError {
  return new GraphHttpError(
    404,
    'Request_ResourceNotFound',
    `Resource '${key}' does not exist or one of its queried reference-property objects are not present.`,
  );
}

type AppAddress = { by: 'id'; key: string } | { by: 'appId'; key: string };

function findApp(state: TenantState, address: AppAddress): AppRecord {
  if (address.by === 'id') {
    if (!GUID.test(address.key))
      throw new GraphHttpError(400, 'Request_BadRequest', `Invalid object identifier '${address.key}'.`);
    const app = state.appById(address.key.toLowerCase()) ?? state.appById(address.key);
    if (!app) throw notFound(address.key);
    return app;
  }
  const exact = state.appByAppId(address.key); // indexed; the scan below ignores case
  if (exact) return exact;
  const wanted = address.key.toLowerCase();
  for (const app of state.apps.values()) if (!app.deleted && app.appId.toLowerCase() === wanted) return app;
  throw notFound(address.key);
}

/** JSON body, or undefined for an empty one; Graph's message for bodies it cannot read. */
function jsonBody(req: Request): Record<string, unknown> | undefined {
  const raw: unknown = req.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : '';
  if (text.trim() === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // falls through to Graph's error
  }
  throw new GraphHttpError(
    400,
    'BadRequest',
    'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.',
  );
}

function optionalDate(value: unknown, property: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const t = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(t))
    throw new GraphHttpError(
      400,
      'Request_BadRequest',
      `Invalid value specified for property '${property}' of resource 'PasswordCredential'.`,
    );
  return t;
}

/** The id of the policy in force for the app: its own when assigned (no inheritance), else the tenant default. */
function policyIdFor(app: AppRecord): string {
  return app.policy !== undefined ? stableGuid('app-management-policy', app.id) : TENANT_POLICY_ID;
}

function addPassword(call: GraphCall, state: TenantState, app: AppRecord): void {
  requireWrite(call, app);
  const body = jsonBody(call.req);
  const input = (body?.['passwordCredential'] ?? {}) as Record<string, unknown>;
  const now = state.now().getTime();
  const start = optionalDate(input['startDateTime'], 'startDateTime') ?? now;
  const end =
    optionalDate(input['endDateTime'], 'endDateTime') ??
    new Date(start).setUTCFullYear(new Date(start).getUTCFullYear() + 2);
  if (end <= start)
    throw new GraphHttpError(
      400,
      'Request_BadRequest',
      "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.",
    );

  // App management policy, then the Microsoft-account limit (real error codes; see file header).
  // The app's own policy when one is assigned, else the tenant default: never both (restrictionsFor).
  const restrictions = state.restrictionsFor(app);
  if (restrictions.passwordAdditionBlocked) {
    const policyId = policyIdFor(app);
    // Code is public (Teams Toolkit's aadErrorCode); the message follows its lifetime sibling.
    throw new GraphHttpError(
      400,
      'CredentialTypeNotAllowedAsPerAppPolicy',
      `Credential type not allowed as per assigned policy '${policyId}'.`,
    );
  }
  const max = restrictions.passwordLifetimeMax ? durationMs(restrictions.passwordLifetimeMax) : undefined;
  if (max !== undefined && end - start > max) {
    const policyId = policyIdFor(app);
    const message = `Credential lifetime exceeds the max value allowed as per assigned policy '${policyId}'.`;
    throw new GraphHttpError(400, 'CredentialInvalidLifetimeAsPerAppPolicy', message, [
      { code: 'InvalidKeyEndDate', message, target: 'EndDate' },
    ]);
  }
  if (PERSONAL_AUDIENCES.has(app.signInAudience) && app.passwordCredentials.length >= 2)
    // Message as relayed by the Azure CLI (microsoft/coe-starter-kit #3695); no public source shows
    // its error code: Request_BadRequest is inferred. The product recognises the case by this code
    // together with the message's "maximum of N passwords", and treats any other 400 as an error.
    throw new GraphHttpError(
      400,
      'Request_BadRequest',
      `Not allowed to add ${app.passwordCredentials.length + 1} passwords. You can only add a maximum of 2 passwords.`,
    );

  const secretText = generateSecretText();
  const record: PasswordCredentialRecord = {
    keyId: randomUUID(),
    displayName: typeof input['displayName'] === 'string' ? input['displayName'] : null,
    hint: secretText.slice(0, 3),
    secretText,
    startDateTime: new Date(start).toISOString(),
    endDateTime: new Date(end).toISOString(),
    customKeyIdentifier: null,
    addedAt: now,
  };
  app.passwordCredentials.push(record);
  call.res.status(200).json({
    '@odata.context': `${call.base}/v1.0/$metadata#microsoft.graph.passwordCredential`,
    ...passwordJson(record, true),
  });
}

function removePassword(call: GraphCall, app: AppRecord): void {
  requireWrite(call, app);
  const body = jsonBody(call.req) ?? {};
  const keyId = body['keyId'];
  if (typeof keyId !== 'string' || !GUID.test(keyId))
    throw new GraphHttpError(
      400,
      'Request_BadRequest',
      "Invalid value specified for property 'keyId' of resource 'PasswordCredential'.",
    );
  const index = app.passwordCredentials.findIndex((p) => p.keyId.toLowerCase() === keyId.toLowerCase());
  if (index < 0)
    // Inferred: Graph refuses unknown key ids with a 400; exact wording not public.
    throw new GraphHttpError(
      400,
      'Request_BadRequest',
      `No password credential found with keyId '${keyId}'.`,
    );
  app.passwordCredentials.splice(index, 1);
  call.res.status(204).end();
}

/**
 * `PATCH /applications/{id}` with `keyCredentials` (Graph v1.0 "Update application": the
 * collection is replaced as sent; "addKey" needs proof of possession of a current key, so
 * `Application.ReadWrite.OwnedBy` callers without one use this). Each entry must carry `key`, the
 * certificate's DER base64 (keyCredential resource), also for certificates the app already has:
 * no public source says whether an entry naming an existing keyId without `key` keeps it, so the
 * sandbox takes the strict reading (400) and the product always sends the keys it read — safe
 * under both readings. Dates come from the certificate; `customKeyIdentifier` defaults to its
 * thumbprint (keyCredential resource). Other properties are not simulated: a body without
 * `keyCredentials` changes nothing. Answers 204 (Update application).
 */
function updateApplication(call: GraphCall, app: AppRecord): void {
  requireWrite(call, app);
  const body = jsonBody(call.req) ?? {};
  const given = body['keyCredentials'];
  if (given === undefined) {
    call.res.status(204).end();
    return;
  }
  const invalid = (property: string): GraphHttpError =>
    // Inferred wording, in the shape of the password messages above.
    new GraphHttpError(
      400,
      'Request_BadRequest',
      `Invalid value specified for property '${property}' of resource 'KeyCredential'.`,
    );
  if (!Array.isArray(given)) throw invalid('keyCredentials');
  const next: KeyCredentialRecord[] = [];
  for (const raw of given as unknown[]) {
    if (!raw || typeof raw !== 'object') throw invalid('keyCredentials');
    const k = raw as Record<string, unknown>;
    if (typeof k['key'] !== 'string' || k['key'] === '') throw invalid('key');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(k['key'], 'base64'));
    } catch {
      throw invalid('key');
    }
    const keyId = typeof k['keyId'] === 'string' && GUID.test(k['keyId']) ? k['keyId'] : randomUUID();
    if (next.some((n) => n.keyId.toLowerCase() === keyId.toLowerCase())) throw invalid('keyId');
    next.push({
      keyId,
      displayName: typeof k['displayName'] === 'string' ? k['displayName'].slice(0, 90) : null,
      customKeyIdentifier:
        typeof k['customKeyIdentifier'] === 'string' && k['customKeyIdentifier'] !== ''
          ? k['customKeyIdentifier']
          : cert.fingerprint.replace(/:/g, ''),
      startDateTime: new Date(cert.validFrom).toISOString(),
      endDateTime: new Date(cert.validTo).toISOString(),
      type: typeof k['type'] === 'string' ? k['type'] : 'AsymmetricX509Cert',
      usage: typeof k['usage'] === 'string' ? k['usage'] : 'Verify',
      key: k['key'],
    });
  }
  app.keyCredentials = next;
  call.res.status(204).end();
}

function federatedCredentials(call: GraphCall, app: AppRecord): void {
  const context = `${call.base}/v1.0/$metadata#applications('${app.id}')/federatedIdentityCredentials`;
  if (call.req.method === 'GET') {
    requireRead(call);
    call.res.json({ '@odata.context': context, value: app.federatedIdentityCredentials.map(ficJson) });
    return;
  }
  requireWrite(call, app);
  const body = jsonBody(call.req) ?? {};
  for (const prop of ['name', 'issuer', 'subject'])
    if (typeof body[prop] !== 'string' || body[prop] === '')
      throw new GraphHttpError(
        400,
        'Request_BadRequest',
        `Property '${prop}' is required and cannot be empty.`,
      );
  const name = body['name'] as string;
  const issuer = body['issuer'] as string;
  const subject = body['subject'] as string;
  if (app.federatedIdentityCredentials.some((f) => f.name.toLowerCase() === name.toLowerCase()))
    throw new GraphHttpError(
      409,
      'Request_MultipleObjectsWithSameKeyValue',
      `FederatedIdentityCredential with name ${name} already exists.`,
    );
  if (app.federatedIdentityCredentials.some((f) => f.issuer === issuer && f.subject === subject))
    throw new GraphHttpError(
      400,
      'InvalidFederatedIdentityCredentialValue',
      `The combination of issuer and subject must be unique for the application. Issuer ${issuer} and Subject: ${subject} already exist. paramName: FederatedIdentityCredential.Subject, paramValue: ${subject}, objectType: Microsoft.Online.DirectoryServices.Application`,
    );
  const audiences =
    Array.isArray(body['audiences']) && body['audiences'].every((a) => typeof a === 'string')
      ? body['audiences']
      : ['api://AzureADTokenExchange'];
  const record: FederatedIdentityCredentialRecord = {
    id: randomUUID(),
    name,
    issuer,
    subject,
    audiences,
    description: typeof body['description'] === 'string' ? body['description'] : null,
  };
  app.federatedIdentityCredentials.push(record);
  call.res.status(201).json({ '@odata.context': `${context}/$entity`, ...ficJson(record) });
}

/** `GET`/`DELETE /applications/{id}/federatedIdentityCredentials/{id or name}`. */
function federatedCredential(call: GraphCall, app: AppRecord, key: string): void {
  const wanted = key.toLowerCase();
  const index = app.federatedIdentityCredentials.findIndex(
    (f) => f.id.toLowerCase() === wanted || f.name.toLowerCase() === wanted,
  );
  if (call.req.method === 'GET') requireRead(call);
  else requireWrite(call, app);
  const found = app.federatedIdentityCredentials[index];
  if (!found) throw notFound(key);
  if (call.req.method === 'GET') {
    call.res.json({
      '@odata.context': `${call.base}/v1.0/$metadata#applications('${app.id}')/federatedIdentityCredentials/$entity`,
      ...ficJson(found),
    });
    return;
  }
  app.federatedIdentityCredentials.splice(index, 1);
  call.res.status(204).end();
}

function restrictionsJson(r: AppManagementRestrictions): Record<string, unknown>[] {
  // The model applies restrictions to every app; an early cut-off date says the same.
  const restrictForAppsCreatedAfterDateTime = '2019-01-01T00:00:00Z';
  const out: Record<string, unknown>[] = [];
  if (r.passwordAdditionBlocked)
    out.push({
      restrictionType: 'passwordAddition',
      state: 'enabled',
      maxLifetime: null,
      restrictForAppsCreatedAfterDateTime,
    });
  if (r.passwordLifetimeMax)
    out.push({
      restrictionType: 'passwordLifetime',
      state: 'enabled',
      maxLifetime: r.passwordLifetimeMax,
      restrictForAppsCreatedAfterDateTime,
    });
  return out;
}

function tenantPolicy(call: GraphCall, state: TenantState): void {
  requirePolicyRead(call);
  const passwordCredentials = restrictionsJson(state.tenantPolicy);
  call.res.json({
    '@odata.context': `${call.base}/v1.0/$metadata#policies/defaultAppManagementPolicy/$entity`,
    id: TENANT_POLICY_ID,
    displayName: 'Default app management tenant policy',
    description:
      'Default tenant policy that enforces app management restrictions on applications and service principals. To apply policy to targeted resources, create a new policy under appManagementPolicies collection.',
    isEnabled: passwordCredentials.length > 0,
    applicationRestrictions: { passwordCredentials, keyCredentials: [] },
    servicePrincipalRestrictions: { passwordCredentials: [], keyCredentials: [] },
  });
}

function appPolicies(call: GraphCall, app: AppRecord): void {
  requirePolicyRead(call);
  const value = app.policy
    ? [
        {
          id: stableGuid('app-management-policy', app.id),
          displayName: `Credential policy for ${app.displayName}`,
          description: 'App management policy assigned to this application.',
          isEnabled: true,
          restrictions: { passwordCredentials: restrictionsJson(app.policy), keyCredentials: [] },
        },
      ]
    : [];
  call.res.json({
    '@odata.context': `${call.base}/v1.0/$metadata#policies/appManagementPolicies`,
    value,
  });
}

function listApplications(call: GraphCall, state: TenantState): void {
  requireRead(call);
  const q = call.req.query;
  const select = parseSelect(q['$select']);
  const filterRaw = q['$filter'];
  const filter =
    typeof filterRaw === 'string' && filterRaw.trim() !== '' ? parseFilter(filterRaw) : undefined;
  let top = DEFAULT_PAGE_SIZE;
  const topRaw = q['$top'];
  if (topRaw !== undefined) {
    const text = typeof topRaw === 'string' ? topRaw : JSON.stringify(topRaw);
    top = Number(text);
    if (!Number.isInteger(top) || top < 1 || top > 999)
      throw new GraphHttpError(
        400,
        'Request_BadRequest',
        `Invalid page size specified: '${text}'. Must be between 1 and 999 inclusive.`,
      );
  }
  let offset = 0;
  if (typeof q['$skiptoken'] === 'string') {
    const decoded = Number(Buffer.from(q['$skiptoken'], 'base64url').toString('utf8'));
    if (!Number.isInteger(decoded) || decoded < 0)
      throw new GraphHttpError(
        400,
        'Directory_InvalidSkipToken',
        'The specified page token value has expired or is invalid.',
      );
    offset = decoded;
  }
  const all = [...state.apps.values()]
    .filter((a) => !a.deleted && (!filter || filter(a)))
    .sort((a, b) => a.id.localeCompare(b.id));
  const page = all.slice(offset, offset + top);
  const body: Record<string, unknown> = {
    '@odata.context': `${call.base}/v1.0/$metadata#applications${select ? `(${select.join(',')})` : ''}`,
  };
  if (offset + top < all.length) {
    // The next link keeps the caller's options and moves the opaque page token.
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (k !== '$skiptoken' && typeof v === 'string') params.set(k, v);
    params.set('$skiptoken', Buffer.from(String(offset + top)).toString('base64url'));
    body['@odata.nextLink'] = `${call.base}/v1.0/applications?${params.toString().replace(/%24/g, '$')}`;
  }
  body['value'] = page.map((a) => project(appJson(state, a), select));
  call.res.json(body);
}

/**
 * `GET /applications/{id}/owners`: the owners as directory objects (`@odata.type` plus the
 * identity's `id` = object id). `$select` keeps only the named properties (and `@odata.type`).
 */
function listOwners(call: GraphCall, state: TenantState, app: AppRecord): void {
  requireRead(call);
  const raw = call.req.query['$select'];
  const select =
    typeof raw === 'string' && raw.trim() !== '' ? raw.split(',').map((s) => s.trim()) : undefined;
  const value = app.owners.flatMap((key) => {
    const identity = state.identities.get(key);
    if (!identity) return [];
    const full: Record<string, unknown> =
      identity.kind === 'servicePrincipal'
        ? {
            '@odata.type': '#microsoft.graph.servicePrincipal',
            id: identity.objectId,
            appId: identity.appId ?? null,
            displayName: identity.displayName,
          }
        : {
            '@odata.type': '#microsoft.graph.user',
            id: identity.objectId,
            displayName: identity.displayName,
            userPrincipalName: `${identity.key}@${state.tenantDomain}`,
          };
    if (!select) return [full];
    const out: Record<string, unknown> = { '@odata.type': full['@odata.type'] };
    for (const f of select) if (f in full) out[f] = full[f];
    return [out];
  });
  call.res.json({ '@odata.context': `${call.base}/v1.0/$metadata#directoryObjects`, value });
}

function getApplication(call: GraphCall, state: TenantState, app: AppRecord): void {
  requireRead(call);
  const select = parseSelect(call.req.query['$select']);
  call.res.json({
    '@odata.context': `${call.base}/v1.0/$metadata#applications${select ? `(${select.join(',')})` : ''}/$entity`,
    // A single object with keyCredentials selected: the certificates' raw data too (see keyJson).
    ...project(appJson(state, app, select?.includes('keyCredentials') ?? false), select),
  });
}

/** `applications/{id}` or `applications(appId='…')` (quotes may be `'` or `"`, percent-encoded or not). */
const APP_BY_ID = /^applications\/([^/()]+)(?:\/(.*))?$/i;
const APP_BY_APPID = /^applications\(appId=(?:'([^']*)'|"([^"]*)")\)(?:\/(.*))?$/i;

function route(call: GraphCall, state: TenantState, path: string): void {
  const method = call.req.method;
  const notAllowed = (): never => {
    throw new GraphHttpError(
      405,
      'Request_BadRequest',
      'Specified HTTP method is not allowed for the request target.',
    );
  };

  if (/^applications\/?$/i.test(path)) {
    if (method !== 'GET') notAllowed();
    return listApplications(call, state);
  }
  if (/^policies\/defaultAppManagementPolicy\/?$/i.test(path)) {
    if (method !== 'GET') notAllowed();
    return tenantPolicy(call, state);
  }

  let address: AppAddress | undefined;
  let rest: string | undefined;
  const byAppId = APP_BY_APPID.exec(path);
  const byId = byAppId ? null : APP_BY_ID.exec(path);
  if (byAppId) {
    address = { by: 'appId', key: byAppId[1] ?? byAppId[2] ?? '' };
    rest = byAppId[3];
  } else if (byId) {
    address = { by: 'id', key: byId[1] ?? '' };
    rest = byId[2];
  }
  if (!address) {
    const segment = path.split('/')[0] ?? path;
    throw new GraphHttpError(400, 'BadRequest', `Resource not found for the segment '${segment}'.`);
  }
  const action = (rest ?? '')
    .replace(/\/$/, '')
    .replace(/^microsoft\.graph\./i, '')
    .toLowerCase();

  // No application permission at all: refused before the app is even looked up.
  if (!hasAny(call.claims, READ_ROLES) && action !== 'appmanagementpolicies') throw DENIED();
  const app = findApp(state, address);
  const fic = /^federatedidentitycredentials\/([^/]+)$/.exec(action);
  if (fic) {
    if (method !== 'GET' && method !== 'DELETE') notAllowed();
    return federatedCredential(call, app, fic[1] ?? '');
  }
  switch (action) {
    case '':
      if (method === 'PATCH') return updateApplication(call, app);
      if (method !== 'GET') notAllowed();
      return getApplication(call, state, app);
    case 'addpassword':
      if (method !== 'POST') notAllowed();
      return addPassword(call, state, app);
    case 'removepassword':
      if (method !== 'POST') notAllowed();
      return removePassword(call, app);
    case 'federatedidentitycredentials':
      if (method !== 'GET' && method !== 'POST') notAllowed();
      return federatedCredentials(call, app);
    case 'appmanagementpolicies':
      if (method !== 'GET') notAllowed();
      return appPolicies(call, app);
    case 'owners':
      if (method !== 'GET') notAllowed();
      return listOwners(call, state, app);
    default:
      throw new GraphHttpError(400, 'BadRequest', `Resource not found for the segment '${rest ?? ''}'.`);
  }
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

const AUTH_MESSAGES: Record<string, string> = {
  missing: 'Access token is empty.',
  audience: 'Access token validation failure. Invalid audience.',
  expired: 'Lifetime validation failed, the token is expired.',
};

export function graphService(ctx: SandboxContext): ServiceDefinition {
  const { state, tokens } = ctx;
  return {
    name: 'graph',
    formatError: (status, code, message) =>
      graphErrorBody(code, message, {
        requestId: randomUUID(),
        clientRequestId: randomUUID(),
        date: state.now(),
      }),
    mount: (app) => {
      // Raw body: Graph's own message for unreadable JSON, whatever the Content-Type.
      app.use(express.raw({ type: () => true, limit: '1mb' }));
      // Not mounted under '/v1.0': a mount would strip the prefix from req.path in the request log.
      app.use((req, res, next) => {
        const version = /^\/v1\.0(?=\/|$)/i.exec(req.path);
        if (!version) return next();
        const requestId = randomUUID();
        const header = req.headers['client-request-id'];
        const clientRequestId = typeof header === 'string' && header ? header : requestId;
        res.set('request-id', requestId).set('client-request-id', clientRequestId);
        const fail = (err: GraphHttpError): void => {
          res
            .status(err.status)
            .json(
              graphErrorBody(
                err.code,
                err.message,
                { requestId, clientRequestId, date: state.now() },
                err.details,
              ),
            );
        };

        const check = tokens.verifyBearer(req.headers.authorization, AUDIENCES.graph, true);
        if (!check.ok) {
          res.set(
            'WWW-Authenticate',
            'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
          );
          return fail(
            new GraphHttpError(
              401,
              'InvalidAuthenticationToken',
              AUTH_MESSAGES[check.reason] ?? 'Access token validation failure.',
            ),
          );
        }
        res.locals['caller'] = check.claims.sbx;
        const call: GraphCall = {
          req,
          res,
          claims: check.claims,
          caller: check.claims.sbx,
          base: req.headers.host ? `https://${req.headers.host}` : ctx.urls.graph,
        };
        try {
          // Graph answers in the tenant the token was issued in: another tenant's apps are not there.
          const tenant = state.tenant(check.claims.tid) ?? state;
          route(call, tenant, safeDecode(req.path.slice(version[0].length)).replace(/^\/+/, ''));
        } catch (err) {
          if (err instanceof GraphHttpError) return fail(err);
          return fail(new GraphHttpError(500, 'generalException', 'An unexpected error occurred.'));
        }
      });
      app.use((req, res) => {
        res.status(400).json(
          graphErrorBody('BadRequest', `Invalid version: ${req.path.split('/')[1] ?? ''}`, {
            requestId: randomUUID(),
            clientRequestId: randomUUID(),
            date: state.now(),
          }),
        );
      });
    },
  };
}
