/**
 * What the sandbox reuses to start faster must not let one tenant or one CA vouch for another: the
 * server certificate kept beside the CA (sandbox/tls.ts) and the key pairs scenario certificates are
 * minted on (sandbox/certificates.ts).
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkClientCertificate } from '../../sandbox/credentials';
import { loadScenario } from '../../sandbox/scenario';
import { ensureDevCa, issueServerCertificate } from '../../sandbox/tls';
import { certificateScenario } from '../helpers/scenarios';

describe('the server certificate kept beside the development CA', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'sandbox-tls-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('is reused for the same CA, and one kept for another CA is replaced by one this CA signed', async () => {
    const [first, second] = [tempDir(), tempDir()];
    const caOne = await ensureDevCa(first);
    const caTwo = await ensureDevCa(second);
    const issued = await issueServerCertificate(caOne);
    expect(await issueServerCertificate(caOne)).toEqual(issued);

    // The other CA's folder holds a certificate the first CA signed: not good for the second.
    copyFileSync(join(first, 'server.json'), join(second, 'server.json'));
    const forTwo = await issueServerCertificate(caTwo);
    expect(forTwo.cert).not.toBe(issued.cert);
    expect(new X509Certificate(forTwo.cert).verify(new X509Certificate(caTwo.cert).publicKey)).toBe(true);
    expect(new X509Certificate(forTwo.cert).verify(new X509Certificate(caOne.cert).publicKey)).toBe(false);
  });
});

describe('scenario certificates minted on reused key pairs', () => {
  const scenario = certificateScenario('reuse', [
    { key: 'next', startInDays: -1, endInDays: 300 },
    { key: 'spare', startInDays: -1, endInDays: 200 },
  ]);
  const pemOf = (state: ReturnType<typeof loadScenario>): string => {
    for (const org of state.organizations.values())
      for (const ep of org.endpoints.values()) {
        const pem = ep.authorization.parameters['servicePrincipalCertificate'];
        if (pem) return pem;
      }
    throw new Error('no certificate connection in the scenario');
  };

  test('every certificate of one tenant has a key of its own', () => {
    const state = loadScenario(scenario);
    const keys = [...state.apps.values()].flatMap((app) =>
      (app.keyCredentials ?? []).map((k) =>
        new X509Certificate(Buffer.from(k.key, 'base64')).publicKey
          .export({ type: 'spki', format: 'der' })
          .toString('base64'),
      ),
    );
    expect(keys.length).toBeGreaterThanOrEqual(3);
    expect(new Set(keys).size).toBe(keys.length);
  });

  test("a connection's certificate signs in to its own tenant only, not to another load of the same scenario", () => {
    const one = loadScenario(scenario);
    const two = loadScenario(scenario);
    const appId = [...one.apps.values()].find((a) => (a.keyCredentials ?? []).length > 0)!.appId;
    expect(checkClientCertificate(one, appId, pemOf(one)).ok).toBe(true);
    expect(checkClientCertificate(two, appId, pemOf(two)).ok).toBe(true);
    expect(checkClientCertificate(two, appId, pemOf(one)).ok).toBe(false);
    expect(checkClientCertificate(one, appId, pemOf(two)).ok).toBe(false);
  });
});
