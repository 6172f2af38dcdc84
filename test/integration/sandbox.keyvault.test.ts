/**
 * Fidelity of the simulated Key Vault through the real `@azure/keyvault-secrets` SecretClient and a
 * `ClientSecretCredential` against the simulated Entra ID; raw HTTPS only for what the SDK never
 * sends (no api-version, foreign tokens, out-of-range maxresults). Then the product's state store
 * (`KeyVaultStateStore`) on top of it. No secret value is ever printed: comparisons go through
 * `expectSameSecret`.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { CertificateClient } from '@azure/keyvault-certificates';
import { SecretClient } from '@azure/keyvault-secrets';
import { startSandbox, type Sandbox, type Scenario } from '../../sandbox/index';
import { AUDIENCES } from '../../sandbox/tokens';
import { AuthenticationError, PreconditionError, ServiceError } from '../../src/errors';
import { isLoopbackUrl } from '../../src/clients/keyVaultClient';
import { ROTATION_CONTENT_TYPE, secretNameFor } from '../../src/clients/keyVaultRotationRecord';
import { KeyVaultStateStore } from '../../src/clients/keyVaultStateStore';
import type { RotationRecord } from '../../src/remediation/ports';
import {
  expectNoLeak,
  expectSameSecret,
  identityCredential,
  recordingCredential,
} from '../helpers/sandboxCredentials';

const scenario: Scenario = {
  name: 'keyvault-fidelity',
  productIdentity: 'remediator',
  identities: [
    { key: 'remediator', displayName: 'sc-remediator', kind: 'servicePrincipal', vaultWriter: true },
    { key: 'reader', displayName: 'Someone without a vault role', kind: 'servicePrincipal' },
    {
      key: 'secrets-only',
      displayName: 'Key Vault Secrets Officer only',
      kind: 'servicePrincipal',
      vaultWriter: true,
      vaultCertificatesOfficer: false,
    },
  ],
  apps: [],
  organizations: [],
};

let sandbox: Sandbox;
let counter = 0;

/** A unique secret name per test. */
function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${Date.now().toString(36)}`;
}

/** A throwaway secret value (test data, still never printed). */
function secretValue(): string {
  return `v-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}-~Q8`;
}

function client(
  identity = 'remediator',
  extra: ConstructorParameters<typeof SecretClient>[2] = {},
): SecretClient {
  return new SecretClient(sandbox.urls.keyVault, identityCredential(sandbox, identity), {
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 3, retryDelayInMs: 50, maxRetryDelayInMs: 2000 },
    ...extra,
  });
}

function store(identity = 'remediator'): KeyVaultStateStore {
  return new KeyVaultStateStore({
    vaultUrl: sandbox.urls.keyVault,
    credential: identityCredential(sandbox, identity),
    clientOptions: { retryOptions: { maxRetries: 3, retryDelayInMs: 50 } },
    recoverPollIntervalMs: 20,
  });
}

function bearer(identityKey: string, aud: string = AUDIENCES.keyvault): string {
  const identity = sandbox.state.identities.get(identityKey);
  if (!identity) throw new Error(`no identity ${identityKey}`);
  const token = sandbox.tokens.issue({
    aud,
    appid: identity.appId ?? '',
    oid: identity.objectId,
    idtyp: 'app',
    roles: [],
    sbx: identity.key,
  });
  return `Bearer ${token}`;
}

async function raw(
  method: string,
  path: string,
  options: { auth?: string; body?: unknown } = {},
): Promise<{ status: number; headers: Headers; json: { error?: { code?: string; message?: string } } }> {
  const res = await fetch(new URL(path, sandbox.urls.keyVault), {
    method,
    headers: {
      ...(options.auth ? { authorization: options.auth } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as never) : {} };
}

/** The RestError the SDK throws, without printing anything it may hold. */
async function restError(promise: Promise<unknown>): Promise<{
  statusCode?: number;
  code?: string;
  message: string;
  inner?: string;
}> {
  try {
    await promise;
  } catch (err) {
    const e = err as {
      name: string;
      statusCode?: number;
      code?: string;
      message: string;
      details?: { error?: { innerError?: { code?: string } } };
    };
    if (e.name !== 'RestError') throw new Error(`expected a RestError, got ${e.name}`);
    return {
      statusCode: e.statusCode,
      code: e.code,
      message: e.message,
      inner: e.details?.error?.innerError?.code,
    };
  }
  throw new Error('expected the call to fail');
}

const kvLog = () => sandbox.state.requestLog.filter((e) => e.service === 'keyvault');

beforeAll(async () => {
  sandbox = await startSandbox({ scenario });
});

afterAll(async () => {
  await sandbox.stop();
});

afterEach(() => {
  sandbox.faults.clear();
});

describe('challenge-based authentication', () => {
  test('the SDK sends its first request without a token, reads the challenge, gets a token and retries', async () => {
    const recorded = recordingCredential(identityCredential(sandbox, 'remediator'));
    const kv = new SecretClient(sandbox.urls.keyVault, recorded.credential, {
      disableChallengeResourceVerification: true,
    });
    const name = uniqueName('challenge');
    const before = kvLog().length;
    await kv.setSecret(name, secretValue());

    const entries = kvLog().slice(before);
    expect(entries.map((e) => [e.method, e.status, e.caller])).toEqual([
      ['PUT', 401, undefined],
      ['PUT', 200, 'remediator'],
    ]);
    expect(recorded.calls).toEqual([
      { scopes: ['https://vault.azure.net/.default'], tenantId: sandbox.state.tenantId, enableCae: true },
    ]);
    // The token is reused for the next requests: no new challenge.
    await kv.getSecret(name);
    expect(
      kvLog()
        .slice(before + 2)
        .map((e) => e.status),
    ).toEqual([200]);
  });

  test('401 body and WWW-Authenticate header are the recorded ones', async () => {
    const res = await raw('GET', 'secrets/anything/?api-version=7.6');
    expect(res.status).toBe(401);
    expect(res.json).toEqual({
      error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' },
    });
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer authorization="${sandbox.urls.authority}/${sandbox.state.tenantId}", resource="https://vault.azure.net"`,
    );
  });

  test('a token for another audience is refused with AKV10022 and a fresh challenge', async () => {
    const res = await raw('GET', 'secrets?api-version=7.6', { auth: bearer('remediator', AUDIENCES.graph) });
    expect(res.status).toBe(401);
    expect(res.json.error?.code).toBe('Unauthorized');
    expect(res.json.error?.message).toBe(
      'AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://graph.microsoft.com.',
    );
    expect(res.headers.get('www-authenticate')).toContain('resource="https://vault.azure.net"');
  });

  test('without disableChallengeResourceVerification the SDK refuses a loopback vault, as documented', async () => {
    const kv = new SecretClient(sandbox.urls.keyVault, identityCredential(sandbox, 'remediator'));
    await expect(kv.getSecret('whatever')).rejects.toThrow(
      "The challenge resource 'vault.azure.net' does not match the requested domain.",
    );
  });

  test('api-version is required, any value is accepted', async () => {
    const auth = bearer('remediator');
    const missing = await raw('GET', 'secrets', { auth });
    expect(missing.status).toBe(400);
    expect(missing.json.error?.code).toBe('BadParameter');
    const odd = await raw('GET', 'secrets?api-version=1999-01-01', { auth });
    expect(odd.status).toBe(200);
  });

  test('a caller without a vault role gets RBAC 403 naming the data action', async () => {
    const writer = client();
    const name = uniqueName('rbac');
    await writer.setSecret(name, secretValue());
    const reader = client('reader');

    const get = await restError(reader.getSecret(name));
    expect(get.statusCode).toBe(403);
    expect(get.code).toBe('Forbidden');
    expect(get.inner).toBe('ForbiddenByRbac');
    expect(get.message).toContain('Caller is not authorized to perform action on resource.');
    expect(get.message).toContain("Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'");
    expect(get.message).toContain(`/secrets/${name.toLowerCase()}'`);

    const set = await restError(reader.setSecret(name, secretValue()));
    expect(set.statusCode).toBe(403);
    expect(set.message).toContain("Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'");
    const entry = kvLog().at(-1);
    expect(entry?.caller).toBe('reader');
    expect(entry?.write).toBe(false);
  });
  test('certificates need their own role: the Secrets Officer alone gets 403 on a certificate', async () => {
    const certificates = (identity: string) =>
      new CertificateClient(sandbox.urls.keyVault, identityCredential(sandbox, identity), {
        disableChallengeResourceVerification: true,
      });
    const name = uniqueName('cert-rbac');
    const create = await restError(
      certificates('secrets-only').beginCreateCertificate(name, {
        issuerName: 'Self',
        subject: 'CN=rbac',
        contentType: 'application/x-pem-file',
      }),
    );
    expect(create.statusCode).toBe(403);
    expect(create.inner).toBe('ForbiddenByRbac');
    expect(create.message).toContain("Action: 'Microsoft.KeyVault/vaults/certificates/create/action'");
    const get = await restError(certificates('secrets-only').getCertificate(name));
    expect(get.message).toContain("Action: 'Microsoft.KeyVault/vaults/certificates/read'");
    // The same identity's secrets still work, and the certificates officer gets a 404, not a 403.
    await client('secrets-only').setSecret(uniqueName('still-a-writer'), secretValue());
    expect((await restError(certificates('remediator').getCertificate(name))).statusCode).toBe(404);
  });
});

describe('secrets', () => {
  test('set creates versions; get returns the latest or a given version; names are case-insensitive', async () => {
    const kv = client();
    const name = uniqueName('Rotation-Secret');
    const first = secretValue();
    const second = secretValue();
    const v1 = await kv.setSecret(name, first, { contentType: 'text/plain', tags: { a: '1' } });
    const v2 = await kv.setSecret(name, second);

    for (const v of [v1, v2]) {
      expect(v.properties.version).toMatch(/^[0-9a-f]{32}$/);
      expect(v.properties.id).toBe(`${sandbox.urls.keyVault}secrets/${name}/${v.properties.version}`);
      expect(v.properties.recoveryLevel).toBe('Recoverable+Purgeable');
      expect(v.properties.recoverableDays).toBe(90);
      expect(v.properties.enabled).toBe(true);
      expect(v.properties.createdOn).toBeInstanceOf(Date);
    }
    expect(v1.properties.version).not.toBe(v2.properties.version);
    expect(v1.properties.tags).toEqual({ a: '1' });
    expect(v1.properties.contentType).toBe('text/plain');

    const latest = await kv.getSecret(name);
    expectSameSecret(latest.value, second);
    expect(latest.properties.version).toBe(v2.properties.version);

    const older = await kv.getSecret(name, { version: v1.properties.version });
    expectSameSecret(older.value, first);
    expect(older.properties.tags).toEqual({ a: '1' });

    // Another spelling of the name reaches the same secret, which keeps its first spelling.
    const upper = await kv.getSecret(name.toUpperCase());
    expectSameSecret(upper.value, second);
    expect(upper.name).toBe(name);
    expect(sandbox.state.vault.secrets.get(name.toLowerCase())?.versions).toHaveLength(2);
  });

  test('a missing secret or version is 404 SecretNotFound with the recorded message', async () => {
    const kv = client();
    const missing = await restError(kv.getSecret('no-such-secret'));
    expect(missing.statusCode).toBe(404);
    expect(missing.code).toBe('SecretNotFound');
    expect(missing.message).toBe(
      'A secret with (name/id) no-such-secret was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182',
    );
    const name = uniqueName('versioned');
    await kv.setSecret(name, secretValue());
    const badVersion = await restError(kv.getSecret(name, { version: '0'.repeat(32) }));
    expect(badVersion.statusCode).toBe(404);
    expect(badVersion.message).toContain(`(name/id) ${name}/${'0'.repeat(32)} was not found`);
  });

  test('versions are listed page by page (maxresults, nextLink), without values', async () => {
    const kv = client();
    const name = uniqueName('paged');
    const versions: string[] = [];
    for (let i = 0; i < 7; i += 1)
      versions.push((await kv.setSecret(name, secretValue())).properties.version ?? '');

    const before = kvLog().length;
    const pages: string[][] = [];
    for await (const page of kv.listPropertiesOfSecretVersions(name).byPage({ maxPageSize: 3 }))
      pages.push(page.map((p) => p.version ?? ''));
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().sort()).toEqual([...versions].sort());

    const requests = kvLog().slice(before);
    expect(requests.map((e) => e.query['maxresults'])).toEqual(['3', '3', '3']);
    expect(requests[0]?.query['$skiptoken']).toBeUndefined();
    expect(requests[1]?.query['$skiptoken']).toBeDefined();

    // All secrets: base ids only, no value.
    const all: string[] = [];
    for await (const p of kv.listPropertiesOfSecrets()) {
      expect((p as { value?: unknown }).value).toBeUndefined();
      all.push(p.name);
    }
    expect(all).toContain(name);
  });

  test('maxresults outside 1..25 is a BadParameter', async () => {
    const auth = bearer('remediator');
    expect((await raw('GET', 'secrets?api-version=7.6&maxresults=26', { auth })).status).toBe(400);
    expect((await raw('GET', 'secrets?api-version=7.6&maxresults=0', { auth })).status).toBe(400);
    expect((await raw('GET', 'secrets?api-version=7.6&maxresults=25', { auth })).status).toBe(200);
  });

  test('update changes tags, content type and attributes of one version, never the value', async () => {
    const kv = client();
    const name = uniqueName('update');
    const value = secretValue();
    const v1 = await kv.setSecret(name, value, { tags: { keep: 'no' } });
    const v2 = await kv.setSecret(name, secretValue(), { tags: { other: 'version' } });
    const expiresOn = new Date('2031-01-02T03:04:05.000Z');
    const notBefore = new Date('2024-01-01T00:00:00.000Z');

    const updated = await kv.updateSecretProperties(name, v1.properties.version ?? '', {
      tags: { phase: 'applied' },
      contentType: 'text/plain; x',
      expiresOn,
      notBefore,
    });
    expect(updated.tags).toEqual({ phase: 'applied' });
    expect(updated.contentType).toBe('text/plain; x');
    expect(updated.expiresOn?.toISOString()).toBe(expiresOn.toISOString());
    expect(updated.notBefore?.toISOString()).toBe(notBefore.toISOString());
    expect(updated.enabled).toBe(true);

    const again = await kv.getSecret(name, { version: v1.properties.version });
    expectSameSecret(again.value, value);
    expect(again.properties.tags).toEqual({ phase: 'applied' });
    // The other version is untouched.
    expect((await kv.getSecret(name)).properties.tags).toEqual({ other: 'version' });
    expect((await kv.getSecret(name)).properties.version).toBe(v2.properties.version);

    // Disabled versions keep their metadata but refuse their value.
    await kv.updateSecretProperties(name, v1.properties.version ?? '', { enabled: false });
    const disabled = await restError(kv.getSecret(name, { version: v1.properties.version }));
    expect(disabled.statusCode).toBe(403);
    expect(disabled.inner).toBe('SecretDisabled');
    expect(disabled.message).toBe('Operation get is not allowed on a disabled secret.');
  });

  test('delete is soft; the name cannot be reused (409); recover brings it back; purge removes it', async () => {
    const kv = client();
    const name = uniqueName('soft-delete');
    const value = secretValue();
    await kv.setSecret(name, value, { tags: { t: '1' } });

    const poller = await kv.beginDeleteSecret(name, { intervalInMs: 10 });
    const deletedSecret = await poller.pollUntilDone();
    expect(deletedSecret.properties.recoveryId).toBe(`${sandbox.urls.keyVault}deletedsecrets/${name}`);
    expect(deletedSecret.properties.deletedOn).toBeInstanceOf(Date);
    const retentionMs =
      (deletedSecret.properties.scheduledPurgeDate?.getTime() ?? 0) -
      (deletedSecret.properties.deletedOn?.getTime() ?? 0);
    expect(retentionMs).toBe(90 * 24 * 3600 * 1000);

    const fetched = await kv.getDeletedSecret(name);
    expect(fetched.properties.tags).toEqual({ t: '1' });
    expect(fetched.value).toBeUndefined();
    const listed: string[] = [];
    for await (const d of kv.listDeletedSecrets()) listed.push(d.name);
    expect(listed).toContain(name);

    expect((await restError(kv.getSecret(name))).statusCode).toBe(404);
    const conflict = await restError(kv.setSecret(name, secretValue()));
    expect(conflict.statusCode).toBe(409);
    expect(conflict.code).toBe('Conflict');
    expect(conflict.inner).toBe('ObjectIsDeletedButRecoverable');
    expect(conflict.message).toBe(
      `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
    );

    const recovered = await (await kv.beginRecoverDeletedSecret(name, { intervalInMs: 10 })).pollUntilDone();
    expect(recovered.tags).toEqual({ t: '1' });
    expect(recovered.name).toBe(name);
    expectSameSecret((await kv.getSecret(name)).value, value);

    await (await kv.beginDeleteSecret(name, { intervalInMs: 10 })).pollUntilDone();
    await kv.purgeDeletedSecret(name);
    const gone = await restError(kv.getDeletedSecret(name));
    expect(gone.statusCode).toBe(404);
    expect(gone.message).toBe(`Deleted Secret not found: ${name}`);
    // After a purge the name is free again, with a fresh history.
    await kv.setSecret(name, secretValue());
    expect(sandbox.state.vault.secrets.get(name.toLowerCase())?.versions).toHaveLength(1);
  });

  test('a deleted secret is purged by the service when its retention ends', async () => {
    const kv = client();
    const name = uniqueName('retention');
    await kv.setSecret(name, secretValue());
    await (await kv.beginDeleteSecret(name, { intervalInMs: 10 })).pollUntilDone();
    sandbox.state.advanceClock(91 * 24 * 3600 * 1000);
    try {
      // A new client: tokens from before the jump have expired on the sandbox clock.
      expect((await restError(client().getDeletedSecret(name))).statusCode).toBe(404);
    } finally {
      sandbox.state.advanceClock(-91 * 24 * 3600 * 1000);
    }
  });
});

describe('limits', () => {
  const invalidProperty = 'Property has invalid value\r\n';

  test('names: letters, digits and dashes, 1 to 127 characters', async () => {
    const kv = client();
    const bad = await restError(kv.setSecret('bad_name', secretValue()));
    expect(bad.statusCode).toBe(400);
    expect(bad.code).toBe('BadParameter');
    expect(bad.message).toBe('The request URI contains an invalid name: bad_name');
    expect((await restError(kv.setSecret('a'.repeat(128), secretValue()))).statusCode).toBe(400);
    await expect(kv.setSecret('b'.repeat(127), secretValue())).resolves.toBeDefined();
  });

  test('values up to 25,600 bytes', async () => {
    const kv = client();
    await expect(kv.setSecret(uniqueName('size'), 'x'.repeat(25_600))).resolves.toBeDefined();
    const tooBig = await restError(kv.setSecret(uniqueName('size'), 'x'.repeat(25_601)));
    expect(tooBig.statusCode).toBe(400);
    expect(tooBig.code).toBe('BadParameter');
    // Bytes, not characters: 12,801 two-byte characters are 25,602 bytes.
    expect((await restError(kv.setSecret(uniqueName('size'), 'é'.repeat(12_801)))).statusCode).toBe(400);
  });

  test('contentType up to 255 characters', async () => {
    const kv = client();
    await expect(
      kv.setSecret(uniqueName('ct'), 'v', { contentType: 'c'.repeat(255) }),
    ).resolves.toBeDefined();
    const err = await restError(kv.setSecret(uniqueName('ct'), 'v', { contentType: 'c'.repeat(256) }));
    expect([err.statusCode, err.code, err.message]).toEqual([400, 'BadParameter', invalidProperty]);
  });

  test('at most 15 tags, names and values up to 512 characters, on set and on update', async () => {
    const kv = client();
    const fifteen = Object.fromEntries(
      Array.from({ length: 15 }, (_, i) => [`t${i}`.padEnd(512, 'n'), 'v'.repeat(512)]),
    );
    const name = uniqueName('tags');
    const ok = await kv.setSecret(name, 'v', { tags: fifteen });
    expect(Object.keys(ok.properties.tags ?? {})).toHaveLength(15);

    const sixteen = { ...fifteen, extra: 'x' };
    const tooMany = await restError(kv.setSecret(uniqueName('tags'), 'v', { tags: sixteen }));
    expect([tooMany.statusCode, tooMany.code, tooMany.message]).toEqual([
      400,
      'BadParameter',
      invalidProperty,
    ]);
    expect(
      (await restError(kv.setSecret(uniqueName('tags'), 'v', { tags: { ['n'.repeat(513)]: 'v' } })))
        .statusCode,
    ).toBe(400);
    expect(
      (await restError(kv.setSecret(uniqueName('tags'), 'v', { tags: { n: 'v'.repeat(513) } }))).statusCode,
    ).toBe(400);
    const update = await restError(
      kv.updateSecretProperties(name, ok.properties.version ?? '', { tags: sixteen }),
    );
    expect(update.statusCode).toBe(400);
    // A refused update changes nothing.
    expect(Object.keys((await kv.getSecret(name)).properties.tags ?? {})).toHaveLength(15);
  });
});

describe('throttling and outages', () => {
  test('503 with Retry-After is retried by the SDK after the advertised delay', async () => {
    const kv = client();
    const name = uniqueName('retry');
    const value = secretValue();
    await kv.setSecret(name, value);
    sandbox.faults.setRules([
      {
        service: 'keyvault',
        method: 'GET',
        kind: 'server-error',
        status: 503,
        rate: 1,
        maxCount: 1,
        retryAfterSeconds: 1,
      },
    ]);
    const before = kvLog().length;
    const started = Date.now();
    const got = await kv.getSecret(name);
    expectSameSecret(got.value, value);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(
      kvLog()
        .slice(before)
        .map((e) => [e.status, e.fault]),
    ).toEqual([
      [503, 'server-error'],
      [200, undefined],
    ]);
  });
});

describe('KeyVaultStateStore', () => {
  const connectionId = (): string => randomUUID();

  function record(id: string, overrides: Partial<RotationRecord> = {}): RotationRecord {
    return {
      connectionId: id,
      organization: 'contoso',
      phase: 'created',
      appId: '11111111-2222-4333-8444-555555555555',
      keyId: '66666666-7777-4888-8999-aaaaaaaaaaaa',
      rotationId: 'rot-1',
      previousKeyIds: ['bbbbbbbb-cccc-4ddd-8eee-ffffffffffff'],
      originalCreationMode: 'Automatic',
      expiresAt: '2030-06-01T12:00:00.000Z',
      createdAt: '2025-01-01T00:00:00.000Z',
      ...overrides,
    };
  }

  test('loopback vault URLs (and only those) turn the challenge resource check off', () => {
    expect(isLoopbackUrl('https://127.0.0.1:8443/')).toBe(true);
    expect(isLoopbackUrl('https://localhost/')).toBe(true);
    expect(isLoopbackUrl('https://[::1]:9000/')).toBe(true);
    expect(isLoopbackUrl('https://myvault.vault.azure.net/')).toBe(false);
    expect(isLoopbackUrl('https://127.0.0.1.nip.io/')).toBe(false);
  });

  test('round trip: value first, record as tags, expiry as expires; update keeps the value', async () => {
    const s = store();
    const id = connectionId();
    const value = secretValue();
    expect(await s.getRecord(id)).toBeUndefined();
    expect(await s.getSecretValue(id)).toBeUndefined();

    const written = await s.putSecret(record(id), value);
    expect(written.version).toMatch(/^[0-9a-f]{32}$/);
    expect({ ...written, version: undefined }).toEqual({ ...record(id), version: undefined });

    const stored = sandbox.state.vault.secrets.get(secretNameFor(id).toLowerCase());
    const version = stored?.versions[0];
    expect(version?.contentType).toBe(ROTATION_CONTENT_TYPE);
    expect(version?.exp).toBe(Date.parse('2030-06-01T12:00:00.000Z') / 1000);
    expect(version?.tags).toEqual({
      phase: 'created',
      appId: '11111111-2222-4333-8444-555555555555',
      keyId: '66666666-7777-4888-8999-aaaaaaaaaaaa',
      rotationId: 'rot-1',
      previousKeyIds: 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff',
      originalCreationMode: 'Automatic',
      organization: 'contoso',
      createdAt: '2025-01-01T00:00:00.000Z',
    });
    expectSameSecret(await s.getSecretValue(id), value);
    expect(await s.getRecord(id)).toEqual(written);

    const applied = await s.updateRecord({
      ...written,
      phase: 'applied',
      appliedAt: '2025-01-01T00:05:00.000Z',
    });
    expect(applied.phase).toBe('applied');
    expect(applied.appliedAt).toBe('2025-01-01T00:05:00.000Z');
    expect(applied.version).toBe(written.version);
    expect(await s.getRecord(id)).toEqual(applied);
    expectSameSecret(await s.getSecretValue(id), value);
    expect(stored?.versions).toHaveLength(1);

    // Without a version, the latest one is updated.
    const { version: _v, ...withoutVersion } = applied;
    const verified = await s.updateRecord({
      ...withoutVersion,
      phase: 'verified',
      verifiedAt: '2025-01-01T00:06:00.000Z',
    });
    expect(verified.version).toBe(written.version);

    // A new rotation writes a new version.
    const next = await s.putSecret(record(id, { rotationId: 'rot-2', previousKeyIds: [] }), secretValue());
    expect(next.version).not.toBe(written.version);
    expect(next.previousKeyIds).toEqual([]);
    expect(stored?.versions).toHaveLength(2);
  });

  test('a soft-deleted secret is recovered, then written (history kept)', async () => {
    const s = store();
    const kv = client();
    const id = connectionId();
    const name = secretNameFor(id);
    const first = await s.putSecret(record(id), secretValue());
    await (await kv.beginDeleteSecret(name, { intervalInMs: 10 })).pollUntilDone();

    const value = secretValue();
    const second = await s.putSecret(record(id, { rotationId: 'rot-2' }), value);
    expect(second.version).not.toBe(first.version);
    expectSameSecret(await s.getSecretValue(id), value);
    expect(sandbox.state.vault.secrets.get(name.toLowerCase())?.versions).toHaveLength(2);
    const ops = kvLog()
      .filter((e) => e.path.toLowerCase().includes(name.toLowerCase()))
      .map((e) => `${e.method} ${e.status}`);
    expect(ops).toEqual(expect.arrayContaining(['PUT 409', 'POST 200', 'PUT 200']));

    // updateRecord recovers too.
    await (await kv.beginDeleteSecret(name, { intervalInMs: 10 })).pollUntilDone();
    const updated = await s.updateRecord({
      ...second,
      phase: 'applied',
      appliedAt: '2025-02-01T00:00:00.000Z',
    });
    expect(updated.phase).toBe('applied');
    expect(sandbox.state.vault.secrets.get(name.toLowerCase())?.deleted).toBeUndefined();
  });

  test('records that break Key Vault limits are refused before any request', async () => {
    const s = store();
    const tooMany = Array.from(
      { length: 14 },
      (_, i) => `${String(i).padStart(8, '0')}-0000-4000-8000-000000000000`,
    );
    const before = kvLog().length;
    await expect(
      s.putSecret(record(connectionId(), { previousKeyIds: tooMany }), 'x'),
    ).rejects.toBeInstanceOf(PreconditionError);
    await expect(s.putSecret(record('not a guid!'), 'x')).rejects.toThrow('cannot name a Key Vault secret');
    expect(kvLog().length).toBe(before);
    // 13 GUIDs fit in 512 characters.
    await expect(
      s.putSecret(record(connectionId(), { previousKeyIds: tooMany.slice(0, 13) }), 'x'),
    ).resolves.toBeDefined();
  });

  test('errors carry service, status and code, and never the secret value', async () => {
    const value = secretValue();
    const denied = store('reader');
    let caught: unknown;
    try {
      await denied.putSecret(record(connectionId()), value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ServiceError);
    const e = caught as ServiceError;
    expect([e.service, e.status, e.code, e.transient]).toEqual(['key-vault', 403, 'ForbiddenByRbac', false]);
    expectNoLeak(e.message, value, 'the error message');
    expectNoLeak(inspect(e, { depth: 10 }), value, 'the inspected error');
    expectNoLeak(JSON.stringify(e), value, 'the serialized error');

    // A refused credential is an AuthenticationError.
    const wrongSecret = new KeyVaultStateStore({
      vaultUrl: sandbox.urls.keyVault,
      credential: {
        getToken: () => Promise.resolve({ token: 'not-a-token', expiresOnTimestamp: Date.now() + 3600_000 }),
      },
    });
    await expect(wrongSecret.putSecret(record(connectionId()), value)).rejects.toBeInstanceOf(
      AuthenticationError,
    );
  });

  test('transient failures are retried by the SDK, then surface as transient ServiceErrors', async () => {
    const s = store();
    const id = connectionId();
    await s.putSecret(record(id), secretValue());
    sandbox.faults.setRules([
      {
        service: 'keyvault',
        method: 'GET',
        kind: 'server-error',
        status: 503,
        rate: 1,
        maxCount: 1,
        retryAfterSeconds: 1,
      },
    ]);
    expect((await s.getRecord(id))?.phase).toBe('created');

    sandbox.faults.setRules([
      { service: 'keyvault', method: 'GET', kind: 'server-error', status: 500, rate: 1 },
    ]);
    const err = await s.getRecord(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).transient).toBe(true);
    expect((err as ServiceError).status).toBe(500);
  });
});
