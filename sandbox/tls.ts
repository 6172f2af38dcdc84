/**
 * TLS for the sandbox: a development CA kept on disk (so a process can trust it from start-up through
 * NODE_EXTRA_CA_CERTS, which Node reads only when it starts) and a server certificate for
 * 127.0.0.1/localhost signed by it, kept beside the CA and issued again when it nears its end or the
 * CA changed (a 2048-bit key costs 0.1–0.3 s of CPU: every sandbox start of the tests paid it).
 * Verification is never switched off.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import selfsigned from 'selfsigned';

interface DevCa {
  certPath: string;
  cert: string;
  key: string;
}

/**
 * A kept server certificate (valid seven days) is issued again when less than this is left of it: a
 * new key at most once a day, and a long-running `npm run sandbox` still has six days.
 */
const SERVER_CERTIFICATE_MIN_LEFT_MS = 6 * 24 * 3600 * 1000;

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

/**
 * The server certificate for the loopback names kept beside the CA, when the CA signed it and it is
 * good for at least six more days; else a new one, kept for the next start (written whole under a
 * temporary name and renamed, so parallel processes never read half a file).
 */
export async function issueServerCertificate(ca: DevCa): Promise<ServerCertificate> {
  const keptPath = join(dirname(ca.certPath), 'server.json');
  const kept = readKeptServerCertificate(keptPath, ca);
  if (kept) return kept;
  const issued = await newServerCertificate(ca);
  const temporary = `${keptPath}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(temporary, JSON.stringify(issued), { mode: 0o600 });
  renameSync(temporary, keptPath);
  return issued;
}

function readKeptServerCertificate(path: string, ca: DevCa): ServerCertificate | undefined {
  try {
    const kept = JSON.parse(readFileSync(path, 'utf8')) as ServerCertificate;
    const certificate = new X509Certificate(kept.cert);
    const signedByCa = certificate.verify(new X509Certificate(ca.cert).publicKey);
    const left = new Date(certificate.validTo).getTime() - Date.now();
    return signedByCa && left > SERVER_CERTIFICATE_MIN_LEFT_MS ? kept : undefined;
  } catch {
    return undefined; // None kept yet, or unreadable: issue one.
  }
}

/** A server certificate for the loopback names, valid for a few days, signed by the CA. */
async function newServerCertificate(ca: DevCa): Promise<ServerCertificate> {
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
