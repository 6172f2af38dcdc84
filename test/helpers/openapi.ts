/**
 * Contract checks: validates recorded sandbox traffic (request and response) against the official
 * OpenAPI 2.0 (Swagger) documents in `../shared/specs`, with Stoplight Prism's validator
 * (`@stoplight/prism-http`: the engine behind Prism's validation proxy). Prism converts Swagger 2.0
 * with `@stoplight/http-spec` and checks path, query, header and body parameters of the request and
 * status, media type, headers and body of the response (ajv underneath).
 *
 * What Prism does not know about, this helper does:
 * - the UTF-8 BOM at the start of the Azure DevOps documents;
 * - `x-ms-paths` (AutoRest's extension for operations told apart by their query string, e.g. the
 *   Azure DevOps list call and the endpointproxy call); `x-ms-examples` (dropped: docs only, and
 *   their files are not all copied);
 * - `x-ms-parameterized-host` (Key Vault's `{vaultBaseUrl}`): paths are matched relative to the
 *   service root, so any host works;
 * - choosing the operation: literal segments win over templates (`/secrets/{name}/versions` over
 *   `/secrets/{name}/{version}`), paths compare case-insensitively (Azure DevOps' are), and among
 *   operations on the same path the one whose required query parameters are present wins
 *   (`endpointNames` picks "Get Service Endpoints By Names");
 * - path parameters the spec describes as an optional URI fragment (Key Vault's `secret-version`:
 *   "If not specified, the latest version … is returned") may be empty;
 * - documented differences between the spec and the real service (`KNOWN_DEVIATIONS`), each
 *   applied narrowly and reported, so the check follows what the real service sends.
 *
 * Diagnostics name the operation, method, path, status and the failing location, never a value
 * from the traffic: exchanges hold secret values.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
// Deep imports: the package root also loads Prism's mock generator (ESM-only faker), which Jest cannot require.
import { getHttpOperationsFromSpec } from '@stoplight/prism-http/dist/utils/operations';
import { validateInput, validateOutput } from '@stoplight/prism-http/dist/validator';
import type { HttpExchange, ServiceName, TenantState } from '../../sandbox/model';

/** `../shared/specs` seen from the repository root (CI clones `shared` beside the repository). */
const SHARED_SPECS = resolve(__dirname, '..', '..', '..', 'shared', 'specs');
export const AZURE_DEVOPS_SPEC = resolve(SHARED_SPECS, 'azure-devops', '7.1', 'serviceEndpoint.json');
export const KEY_VAULT_SPEC = resolve(SHARED_SPECS, 'keyvault', 'secrets.json');

type HttpOperation = Awaited<ReturnType<typeof getHttpOperationsFromSpec>>[number];

/** Differences between a spec and the real service that the sandbox reproduces on purpose. */
interface KnownDeviation {
  id:
    | 'keyvault-null-nextlink'
    | 'azure-devops-collection-wrapper'
    | 'azure-devops-delete-204'
    | 'azure-devops-null-confidential-parameters'
    | 'azure-devops-jtoken-any-json'
    | 'azure-devops-get-unknown-null';
  description: string;
  evidence: string;
}

/**
 * The register of deviations with their evidence, for readers: the checks below apply them by id.
 * Exported (`@public` tells knip) so the register stays although no code reads it.
 * @public
 */
export const KNOWN_DEVIATIONS: Record<KnownDeviation['id'], KnownDeviation> = {
  'keyvault-null-nextlink': {
    id: 'keyvault-null-nextlink',
    description:
      'Key Vault list results end with "nextLink": null; the spec types nextLink as a plain string. Allowed: nextLink may be null (only there).',
    evidence: 'azure-sdk-for-js keyvault recordings: {"value":[…],"nextLink":null} on the last page.',
  },
  'azure-devops-collection-wrapper': {
    id: 'azure-devops-collection-wrapper',
    description:
      'Azure DevOps wraps list results as {"count": n, "value": [ … ]} (VssJsonCollectionWrapper); the spec declares the bare array. The wrapper is checked (count integer = value length, value an array) and value is validated against the declared array schema.',
    evidence: 'specs/azure-devops/7.1/httpExamples/endpoints/ListEndpoints.json, GET__ServiceEndpoints.json.',
  },
  'azure-devops-delete-204': {
    id: 'azure-devops-delete-204',
    description:
      'Endpoints_Delete answers 204 No Content; the spec lists only a body-less 200. A 204 without body is accepted as that response.',
    evidence: 'specs/azure-devops/7.1/httpExamples/endpoints/DeleteServiceEndpoint.json (responses: 204).',
  },
  'azure-devops-null-confidential-parameters': {
    id: 'azure-devops-null-confidential-parameters',
    description:
      'Confidential authorization parameters come back as null (serviceprincipalkey, password); the spec types authorization.parameters values as strings. Allowed: those values may be null.',
    evidence:
      'The spec\'s own examples: GetServiceEndpointDetails.json ("password": null), CreateAzureRMEndpoint.json ("serviceprincipalkey": null), PUT__UpdateServiceEndpoint.json ("Password": null).',
  },
  'azure-devops-jtoken-any-json': {
    id: 'azure-devops-jtoken-any-json',
    description:
      "JToken (Newtonsoft.Json's any-JSON-value type) is described as an object with JToken's own .NET properties; on the wire it is any JSON value. Allowed: any JSON where the spec says JToken (endpointproxy result).",
    evidence:
      'httpExamples/endpointproxy/POST__ExecuteServiceEndpointRequestAsync.json: "result" is an array of strings.',
  },
  'azure-devops-get-unknown-null': {
    id: 'azure-devops-get-unknown-null',
    description:
      'Endpoints_Get of an id that does not exist answers 200 with a null body instead of an error.',
    evidence:
      'MicrosoftDocs/vsts-rest-api-specs issue #285 ("GetServiceEndpointDetails does not error … just returns a null body").',
  },
};

interface ContractDiagnostic {
  /** `request` or `response`. */
  side: 'request' | 'response';
  /** Where in the message: `body.value[0].id`, `query.api-version`, … */
  location: string;
  message: string;
}

export interface ExchangeResult {
  /** The operation the exchange was matched to; undefined when none matched. */
  operationId?: string;
  method: string;
  path: string;
  status: number;
  errors: ContractDiagnostic[];
  /** Prism's warnings (e.g. an error status the spec does not list). Not failures. */
  warnings: ContractDiagnostic[];
  /** Known deviations applied to this exchange. */
  deviations: KnownDeviation['id'][];
}

export interface ContractReport {
  results: ExchangeResult[];
  failures: ExchangeResult[];
  /** Operation ids seen at least once. */
  operations: Set<string>;
  /** A readable summary of the failures (no values from the traffic). */
  describeFailures(): string;
}

interface Route {
  operation: HttpOperation;
  operationId: string;
  method: string;
  segments: string[];
  literalCount: number;
  requiredQuery: string[];
  bodyRequired: boolean;
  /** Schema of the 200 response, for the collection-wrapper deviation. */
  okSchemaIsArray: boolean;
  /** The spec lists a body-less 200 and no 204 (delete-204 deviation). */
  okWithoutBody: boolean;
  /** Path parameters the spec describes as optional URI fragments (Key Vault's `secret-version`). */
  optionalFragments: string[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function stripExamples(paths: unknown): void {
  if (!isObject(paths)) return;
  for (const item of Object.values(paths))
    if (isObject(item)) for (const op of Object.values(item)) if (isObject(op)) delete op['x-ms-examples'];
}

/** Raw operation objects of a paths map, keyed `METHOD path` (for required-body and 200-schema facts). */
function rawOperations(paths: Json): Map<string, Json> {
  const map = new Map<string, Json>();
  for (const [path, item] of Object.entries(paths))
    if (isObject(item))
      for (const [method, op] of Object.entries(item))
        if (isObject(op) && method !== 'parameters') map.set(`${method.toUpperCase()} ${path}`, op);
  return map;
}

function splitPath(path: string): string[] {
  return path.replace(/^\/+/, '').split('/');
}

const isTemplate = (segment: string): boolean => /^\{[^}]+\}$/.test(segment);

function lowerHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v)
      ? v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ')
      : typeof v === 'string'
        ? v
        : JSON.stringify(v);
  }
  return out;
}

/** Prism's DiagnosticSeverity.Error is 0 (Warning 1, Information 2, Hint 3). */
const isError = (severity: unknown): boolean => Number(severity) === 0;

function location(path: unknown): string {
  return Array.isArray(path) ? path.map(String).join('.') : '';
}

/** A spec loaded for contract checks. */
export class Contract {
  private constructor(
    readonly specPath: string,
    private readonly routes: Route[],
    private readonly deviations: Set<KnownDeviation['id']>,
  ) {}

  /** Loads and prepares a Swagger 2.0 document (BOM, x-ms-paths, x-ms-examples, deviations). */
  static async load(specPath: string, deviations: KnownDeviation['id'][] = []): Promise<Contract> {
    const text = readFileSync(specPath, 'utf8').replace(/^\uFEFF/, '');
    const doc = JSON.parse(text) as Json;
    if (doc['swagger'] !== '2.0') throw new Error(`${specPath} is not a Swagger 2.0 document.`);
    const enabled = new Set(deviations);

    if (enabled.has('keyvault-null-nextlink')) {
      const definitions = doc['definitions'];
      if (isObject(definitions))
        for (const def of Object.values(definitions)) {
          const props = isObject(def) ? def['properties'] : undefined;
          const nextLink = isObject(props) ? props['nextLink'] : undefined;
          if (isObject(nextLink)) nextLink['x-nullable'] = true;
        }
    }

    if (enabled.has('azure-devops-null-confidential-parameters')) {
      const auth = (doc['definitions'] as Json | undefined)?.['EndpointAuthorization'];
      const params =
        isObject(auth) && isObject(auth['properties']) ? auth['properties']['parameters'] : undefined;
      const values = isObject(params) ? params['additionalProperties'] : undefined;
      if (isObject(values)) values['x-nullable'] = true;
    }
    if (enabled.has('azure-devops-jtoken-any-json')) {
      const definitions = doc['definitions'];
      if (isObject(definitions) && isObject(definitions['JToken']))
        definitions['JToken'] = { description: 'Any JSON value (Newtonsoft JToken).' };
    }

    const paths = isObject(doc['paths']) ? doc['paths'] : {};
    const xmsPaths = isObject(doc['x-ms-paths']) ? doc['x-ms-paths'] : {};
    stripExamples(paths);
    stripExamples(xmsPaths);
    delete doc['x-ms-paths'];
    // x-ms-paths keys carry a query part (`…/endpoints?` or `…/endpointproxy?endpointId={endpointId}`);
    // they are converted on their own so that their path can equal one in `paths`.
    const stripped: Json = {};
    for (const [key, item] of Object.entries(xmsPaths)) stripped[key.split('?')[0] ?? key] = item;

    const routes: Route[] = [];
    for (const source of [paths, stripped]) {
      if (Object.keys(source).length === 0) continue;
      const raw = rawOperations(source);
      const operations = await getHttpOperationsFromSpec({ ...doc, paths: source });
      for (const operation of operations) {
        const method = operation.method.toUpperCase();
        const rawOp = raw.get(`${method} ${operation.path}`) ?? {};
        const params = Array.isArray(rawOp['parameters']) ? (rawOp['parameters'] as unknown[]) : [];
        const responses = isObject(rawOp['responses']) ? rawOp['responses'] : {};
        const ok = responses['200'];
        const okSchema = isObject(ok) ? ok['schema'] : undefined;
        const segments = splitPath(operation.path);
        routes.push({
          operation,
          operationId: operation.iid ?? `${method} ${operation.path}`,
          method,
          segments,
          literalCount: segments.filter((s) => !isTemplate(s)).length,
          requiredQuery: (operation.request?.query ?? [])
            .filter((q) => q.required && q.name !== 'api-version')
            .map((q) => q.name),
          bodyRequired: params.some((p) => isObject(p) && p['in'] === 'body' && p['required'] === true),
          okSchemaIsArray: isObject(okSchema) && okSchema['type'] === 'array',
          okWithoutBody: isObject(ok) && okSchema === undefined && responses['204'] === undefined,
          optionalFragments: params
            .filter(
              (p): p is Json =>
                isObject(p) &&
                p['in'] === 'path' &&
                typeof p['description'] === 'string' &&
                /URI fragment is optional/i.test(p['description']),
            )
            .map((p) => String(p['name'])),
        });
      }
    }
    return new Contract(specPath, routes, enabled);
  }

  /** The operation an exchange belongs to, with the path rewritten in the template's casing. */
  match(
    method: string,
    pathname: string,
    query: Record<string, unknown>,
  ): { route: Route; path: string } | { error: string } {
    const actual = splitPath(pathname);
    const candidates: { route: Route; path: string }[] = [];
    for (const route of this.routes) {
      if (route.method !== method.toUpperCase() || route.segments.length !== actual.length) continue;
      let ok = true;
      const rewritten: string[] = [];
      route.segments.forEach((seg, i) => {
        const value = actual[i] ?? '';
        if (isTemplate(seg)) {
          // Only the last segment may be empty (Key Vault's `/secrets/{name}/` = latest version).
          if (value === '' && i !== actual.length - 1) ok = false;
          rewritten.push(value);
        } else {
          if (seg.toLowerCase() !== value.toLowerCase()) ok = false;
          rewritten.push(seg);
        }
      });
      if (ok) candidates.push({ route, path: `/${rewritten.join('/')}` });
    }
    if (candidates.length === 0) return { error: `no operation in the spec matches ${method} ${pathname}` };
    const best = Math.max(...candidates.map((c) => c.route.literalCount));
    let group = candidates.filter((c) => c.route.literalCount === best);
    if (group.length > 1) {
      const satisfied = group.filter((c) => c.route.requiredQuery.every((q) => query[q] !== undefined));
      const most = Math.max(...satisfied.map((c) => c.route.requiredQuery.length), -1);
      group = satisfied.filter((c) => c.route.requiredQuery.length === most);
    }
    const [only, ...rest] = group;
    if (!only) return { error: `no operation on ${method} ${pathname} has its required query parameters` };
    if (rest.length > 0)
      return {
        error: `ambiguous: ${[only, ...rest].map((c) => c.route.operationId).join(', ')} all match ${method} ${pathname}`,
      };
    return only;
  }

  /** Validates one exchange's request and response. */
  validate(exchange: HttpExchange): ExchangeResult {
    const url = new URL(exchange.url, 'https://sandbox.invalid');
    const query: Record<string, string | string[]> = {};
    for (const key of new Set(url.searchParams.keys())) {
      const all = url.searchParams.getAll(key);
      query[key] = all.length === 1 ? (all[0] ?? '') : all;
    }
    const result: ExchangeResult = {
      method: exchange.method,
      path: url.pathname,
      status: exchange.status,
      errors: [],
      warnings: [],
      deviations: [],
    };
    const matched = this.match(exchange.method, url.pathname, query);
    if ('error' in matched) {
      result.errors.push({ side: 'request', location: 'path', message: matched.error });
      return result;
    }
    const { route, path } = matched;
    result.operationId = route.operationId;
    // "This URI fragment is optional. If not specified, the latest version … is returned": the
    // segment is then empty (`/secrets/{name}/`), which Prism reads as a missing parameter.
    const values = splitPath(path);
    const emptyOptional = route.optionalFragments.filter((name) => {
      const i = route.segments.indexOf(`{${name}}`);
      return i >= 0 && values[i] === '';
    });

    // --- request -------------------------------------------------------------------------------
    const requestHeaders = lowerHeaders(exchange.requestHeaders);
    const input = validateInput({
      resource: route.operation,
      element: {
        method: exchange.method.toLowerCase() as never,
        url: { path, query },
        headers: requestHeaders,
        body: exchange.requestBody,
      },
    });
    if (input._tag === 'Left')
      for (const d of input.left) {
        // The Key Vault SDK sends its first request without token and without body, on purpose,
        // to get the 401 challenge; a missing body is expected there and nowhere else.
        const challengeProbe =
          exchange.status === 401 &&
          route.bodyRequired &&
          exchange.requestBody === undefined &&
          d.code === 'required';
        if (challengeProbe && location(d.path) === 'body') continue;
        if (challengeProbe && d.message === 'Body parameter is required') continue;
        if (location(d.path) === 'path' && emptyOptional.some((name) => d.message.includes(`'${name}'`)))
          continue;
        (isError(d.severity) ? result.errors : result.warnings).push({
          side: 'request',
          location: location(d.path),
          message: d.message,
        });
      }

    // --- response ------------------------------------------------------------------------------
    const responseHeaders = lowerHeaders(exchange.responseHeaders);
    let status = exchange.status;
    let body: unknown;
    let resource = route.operation;
    if (exchange.responseBody !== '') {
      const type = responseHeaders['content-type'] ?? '';
      if (/json/i.test(type)) {
        try {
          body = JSON.parse(exchange.responseBody);
        } catch {
          result.errors.push({ side: 'response', location: 'body', message: 'the body is not valid JSON' });
          return result;
        }
      } else {
        body = exchange.responseBody;
      }
    }

    if (
      this.deviations.has('azure-devops-delete-204') &&
      status === 204 &&
      body === undefined &&
      route.okWithoutBody
    ) {
      status = 200;
      result.deviations.push('azure-devops-delete-204');
    }

    if (
      this.deviations.has('azure-devops-get-unknown-null') &&
      route.operationId === 'Endpoints_Get' &&
      status === 200 &&
      body === null
    ) {
      // Validate status, media type and headers, but no body schema.
      resource = {
        ...route.operation,
        responses: route.operation.responses.map((r) => (r.code === '200' ? { ...r, contents: [] } : r)),
      };
      body = undefined;
      result.deviations.push('azure-devops-get-unknown-null');
    }

    if (
      this.deviations.has('azure-devops-collection-wrapper') &&
      route.okSchemaIsArray &&
      status >= 200 &&
      status < 300 &&
      !Array.isArray(body)
    ) {
      result.deviations.push('azure-devops-collection-wrapper');
      if (!isObject(body) || !Array.isArray(body['value'])) {
        result.errors.push({
          side: 'response',
          location: 'body.value',
          message: 'a list result must be {"count": n, "value": [ … ]} with value an array',
        });
        return result;
      }
      const count = body['count'];
      if (typeof count !== 'number' || !Number.isInteger(count) || count !== body['value'].length)
        result.errors.push({
          side: 'response',
          location: 'body.count',
          message: 'count must be an integer equal to the number of items in value',
        });
      body = body['value'];
    }

    const output = validateOutput({
      resource,
      element: { statusCode: status, headers: responseHeaders, body },
    });
    if (output._tag === 'Left')
      for (const d of output.left)
        (isError(d.severity) ? result.errors : result.warnings).push({
          side: 'response',
          location: location(d.path),
          message: d.message,
        });
    return result;
  }

  /** Validates every exchange and summarises. */
  validateAll(exchanges: readonly HttpExchange[]): ContractReport {
    const results = exchanges.map((e) => this.validate(e));
    const failures = results.filter((r) => r.errors.length > 0);
    return {
      results,
      failures,
      operations: new Set(results.flatMap((r) => (r.operationId ? [r.operationId] : []))),
      describeFailures: () =>
        failures
          .map(
            (r) =>
              `${r.operationId ?? '(no operation)'} ${r.method} ${r.path} → ${r.status}\n` +
              r.errors.map((e) => `    ${e.side} ${e.location || '(root)'}: ${e.message}`).join('\n'),
          )
          .join('\n'),
    };
  }
}

/** Records every exchange a sandbox answers (optionally for one service) until `stop()`. */
export function captureExchanges(
  state: TenantState,
  service?: ServiceName,
): { exchanges: HttpExchange[]; stop(): void } {
  const exchanges: HttpExchange[] = [];
  const previous = state.onExchange;
  state.onExchange = (exchange) => {
    previous?.(exchange);
    if (!service || exchange.service === service) exchanges.push(exchange);
  };
  return {
    exchanges,
    stop: () => {
      state.onExchange = previous;
    },
  };
}
