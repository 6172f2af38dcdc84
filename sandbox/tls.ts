/**
 * TLS for the sandbox: a development CA kept on disk (so a process can trust it from start-up through
 * NODE_EXTRA_CA_CERTS, which Node reads only when it starts) and a fresh server certificate for
 * 127.0.0.1/localhost signed by it at every sandbox start. Verification is never switched off.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import selfsigned from 'selfsigned';

interface DevCa {
  certPath: string;
  cert: string;
  key: string;
}

export interface ServerCertificate {
  cert: string;
  key: string;
}

/** Default folder of the development CA: `.sandbox/ca` at the project root (git-ignored). */
function defaultCaDir(): string {
  return resolve(__dirname, '..', '.sandbox', 'ca');
}

/** Loads the development CA from `dir`, creating it first when it is missing. */
export async function ensureDevCa(dir: string = defaultCaDir()): Promise<DevCa> {
  const certPath = join(dir, 'ca.pem');
  const keyPath = join(dir, 'ca-key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { certPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  }
  mkdirSync(dir, { recursive: true });
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 5);
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'sc-remediator sandbox CA' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  writeFileSync(keyPath, pems.private, { mode: 0o600 });
  writeFileSync(certPath, pems.cert);
  return { certPath, cert: pems.cert, key: pems.private };
}

/** A server certificate for the loopback names, valid for a few days, signed by the CA. */
export async function issueServerCertificate(ca: DevCa): Promise<ServerCertificate> {
  const notAfter = new Date(Date.now() + 7 * 24 * 3600 * 1000);
  const pems = await selfsigned.generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: notAfter,
    ca: { key: ca.key, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
