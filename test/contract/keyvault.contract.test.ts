/**
 * Contract: the simulated Key Vault's real traffic, produced by the real `SecretClient` and by the
 * product's `KeyVaultStateStore`, validated request and response against the official spec
 * (`../shared/specs/keyvault/secrets.json`, Swagger 2.0) with Prism's validator. A negative test
 * proves the check fails as soon as a response leaves the spec.
 */
import { randomUUID } from 'node:crypto';
import { SecretClient } from '@azure/keyvault-secrets';
import { startSandbox, type Sandbox, type Scenario } from '../../sandbox/index';
import type { HttpExchange } from '../../sandbox/model';
import { KeyVaultStateStore } from '../../src/clients/keyVaultStateStore';
import { Contract, KEY_VAULT_SPEC, captureExchanges, type ContractReport } from '../helpers/openapi';
import { identityCredential } from '../helpers/sandboxCredentials';

const scenario: Scenario = {
  name: 'keyvault-contract',
  productIdentity: 'remediator',
  identities: [
    { key: 'remediator', displayName: 'sc-remediator', kind: 'servicePrincipal', vaultWriter: true },
    { key: 'reader', displayName: 'No vault role', kind: 'servicePrincipal' },
  ],
  apps: [],
  organizations: [],
};

let sandbox: Sandbox;
let contract: Contract;
/** Traffic of a full workload that stays within the spec on the client side. */
let exchanges: HttpExchange[];
/** Traffic of requests that break the spec on purpose (invalid names). */
let invalidRequests: HttpExchange[];
let report: ContractReport;

const ALL_OPERATIONS = [
  'SetSecret',
  'GetSecret',
  'GetSecretVersions',
  'GetSecrets',
  'UpdateSecret',
  'DeleteSecret',
  'GetDeletedSecret',
  'GetDeletedSecrets',
  'RecoverDeletedSecret',
  'PurgeDeletedSecret',
];

function client(identity = 'remediator'): SecretClient {
  return new SecretClient(sandbox.urls.keyVault, identityCredential(sandbox, identity), {
    disableChallengeResourceVerification: true,
    retryOptions: { retryDelayInMs: 20 },
  });
}

async function failing(promise: Promise<unknown>): Promise<void> {
  await promise.then(
    () => {
      throw new Error('expected a failure');
    },
    () => undefined,
  );
}

async function workload(): Promise<void> {
  const kv = client();
  const name = `contract-${Date.now().toString(36)}`;
  const v1 = await kv.setSecret(name, 'first-value', { tags: { a: '1' }, contentType: 'text/plain' });
  await kv.setSecret(name, 'second-value', { expiresOn: new Date(Date.now() + 86_400_000), enabled: true });
  await kv.getSecret(name);
  await kv.getSecret(name, { version: v1.properties.version });
  for await (const _page of kv.listPropertiesOfSecretVersions(name).byPage({ maxPageSize: 1 })) void _page;
  for await (const _s of kv.listPropertiesOfSecrets()) void _s;
  await kv.updateSecretProperties(name, v1.properties.version ?? '', {
    tags: { phase: 'applied' },
    enabled: false,
  });
  await failing(kv.getSecret(name, { version: v1.properties.version })); // 403 SecretDisabled
  await failing(kv.getSecret('missing-secret')); // 404
  await (await kv.beginDeleteSecret(name, { intervalInMs: 10 })).pollUntilDone();
  await kv.getDeletedSecret(name);
  for await (const _d of kv.listDeletedSecrets()) void _d;
  await failing(kv.setSecret(name, 'third-value')); // 409 ObjectIsDeletedButRecoverable
  await (await kv.beginRecoverDeletedSecret(name, { intervalInMs: 10 })).pollUntilDone();
  await (await kv.beginDeleteSecret(name, { intervalInMs: 10 })).pollUntilDone();
  await kv.purgeDeletedSecret(name);
  await failing(kv.getDeletedSecret(name)); // 404
  await failing(client('reader').getSecret('anything')); // 403 ForbiddenByRbac
  await failing(
    kv.setSecret('too-many-tags', 'v', {
      tags: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'v'])),
    }),
  );

  // An injected 503 with Retry-After, retried by the SDK.
  sandbox.faults.setRules([
    { service: 'keyvault', method: 'GET', kind: 'server-error', status: 503, rate: 1, maxCount: 1 },
  ]);
  await kv.getSecret('too-many-tags').catch(() => undefined);
  sandbox.faults.clear();

  // The product's state store, including recovery of a soft-deleted record.
  const store = new KeyVaultStateStore({
    vaultUrl: sandbox.urls.keyVault,
    credential: identityCredential(sandbox, 'remediator'),
    recoverPollIntervalMs: 10,
  });
  const connectionId = randomUUID();
  const record = {
    connectionId,
    organization: 'contoso',
    phase: 'created' as const,
    appId: randomUUID(),
    keyId: randomUUID(),
    rotationId: 'r1',
    previousKeyIds: [randomUUID()],
    originalCreationMode: 'Manual',
    expiresAt: '2031-01-01T00:00:00.000Z',
    createdAt: '2025-01-01T00:00:00.000Z',
  };
  const written = await store.putSecret(record, 'state-store-value');
  await store.getRecord(connectionId);
  await store.getSecretValue(connectionId);
  await store.updateRecord({ ...written, phase: 'applied', appliedAt: '2025-01-01T00:01:00.000Z' });
  await (await kv.beginDeleteSecret(`sc-remediator-${connectionId}`, { intervalInMs: 10 })).pollUntilDone();
  await store.putSecret({ ...record, rotationId: 'r2' }, 'state-store-value-2');
}

beforeAll(async () => {
  sandbox = await startSandbox({ scenario });
  contract = await Contract.load(KEY_VAULT_SPEC, ['keyvault-null-nextlink']);

  const capture = captureExchanges(sandbox.state, 'keyvault');
  await workload();
  capture.stop();
  exchanges = capture.exchanges;

  const invalid = captureExchanges(sandbox.state, 'keyvault');
  const kv = client();
  await failing(kv.setSecret('bad_name', 'v'));
  await failing(kv.getSecret('bad.name'));
  invalid.stop();
  invalidRequests = invalid.exchanges;

  report = contract.validateAll(exchanges);
});

afterAll(async () => {
  await sandbox.stop();
});

test('every request and response of the workload matches the Key Vault spec', () => {
  expect(exchanges.length).toBeGreaterThan(30);
  if (report.failures.length > 0) throw new Error(`Off-spec exchanges:\n${report.describeFailures()}`);
});

test('the workload covers every secrets operation the sandbox serves, and its error answers', () => {
  expect([...report.operations].sort()).toEqual([...ALL_OPERATIONS].sort());
  const statuses = new Set(report.results.map((r) => r.status));
  for (const status of [200, 204, 400, 401, 403, 404, 409, 503]) expect(statuses).toContain(status);
});

test('requests that break the spec are caught on the request side; the answers still follow it', () => {
  const results = invalidRequests.map((e) => contract.validate(e));
  const requestErrors = results.flatMap((r) => r.errors.filter((e) => e.side === 'request'));
  expect(requestErrors).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ location: 'path.secret-name', message: expect.stringContaining('pattern') }),
    ]),
  );
  expect(results.flatMap((r) => r.errors.filter((e) => e.side === 'response'))).toEqual([]);
  expect(results.filter((r) => r.status === 400).length).toBeGreaterThan(0);
});

describe('the check fails when a response leaves the spec', () => {
  function tampered(
    operationId: string,
    status: number,
    change: (body: Record<string, unknown>) => void,
  ): HttpExchange {
    const original = exchanges.find((e) => {
      const r = contract.validate(e);
      return r.operationId === operationId && r.status === status;
    });
    if (!original) throw new Error(`no ${operationId} ${status} exchange recorded`);
    if (original.responseBody === '') return { ...original };
    const body = JSON.parse(original.responseBody) as Record<string, unknown>;
    change(body);
    return { ...original, responseBody: JSON.stringify(body) };
  }

  test('the untampered exchanges pass', () => {
    expect(contract.validate(tampered('GetSecret', 200, () => undefined)).errors).toEqual([]);
    expect(contract.validate(tampered('GetSecretVersions', 200, () => undefined)).errors).toEqual([]);
  });

  test('a timestamp sent as a string', () => {
    const result = contract.validate(
      tampered('GetSecret', 200, (b) => {
        (b['attributes'] as Record<string, unknown>)['created'] = '2025-01-01T00:00:00Z';
      }),
    );
    expect(result.errors).toEqual([
      expect.objectContaining({
        side: 'response',
        location: 'body.attributes.created',
        message: expect.stringContaining('integer'),
      }),
    ]);
  });

  test('a list without an array in value', () => {
    const result = contract.validate(
      tampered('GetSecretVersions', 200, (b) => {
        b['value'] = 'not-a-list';
      }),
    );
    expect(result.errors.map((e) => e.location)).toContain('body.value');
  });

  test('an unknown recovery level, and an error code that is not a string', () => {
    const level = contract.validate(
      tampered('SetSecret', 200, (b) => {
        (b['attributes'] as Record<string, unknown>)['recoveryLevel'] = 'SoftDeleteEnabled';
      }),
    );
    expect(level.errors.map((e) => e.location)).toContain('body.attributes.recoveryLevel');
    const code = contract.validate(
      tampered('GetSecret', 404, (b) => {
        (b['error'] as Record<string, unknown>)['code'] = 404;
      }),
    );
    expect(code.errors.map((e) => e.location)).toContain('body.error.code');
  });

  test('a status the spec does not list for a success', () => {
    const original = tampered('PurgeDeletedSecret', 204, () => undefined);
    const result = contract.validate({ ...original, status: 202 });
    expect(result.errors.length).toBeGreaterThan(0);
  });

  test('without the documented nextLink deviation, the real service’s "nextLink": null fails the bare spec', async () => {
    const strict = await Contract.load(KEY_VAULT_SPEC);
    const last = exchanges.find((e) => {
      const r = strict.validate(e);
      return r.operationId === 'GetSecretVersions' && /"nextLink":null/.test(e.responseBody);
    });
    expect(last).toBeDefined();
    expect(strict.validate(last as HttpExchange).errors.map((e) => e.location)).toEqual(['body.nextLink']);
  });
});
