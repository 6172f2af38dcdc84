/**
 * Runs a command with NODE_EXTRA_CA_CERTS pointing at the sandbox's development CA, creating the CA
 * first if needed. Node reads that variable only at start-up, so it has to be set before the test
 * runner or the CLI starts; this is how our processes trust the sandbox without turning TLS off.
 *
 *   tsx scripts/with-sandbox-ca.ts <command> [args...]
 */
import { spawn } from 'node:child_process';
import { ensureDevCa } from '../sandbox/tls';

async function main(): Promise<void> {
  const [command, ...args] = process.argv.slice(2);
  if (!command) {
    process.stderr.write('usage: tsx scripts/with-sandbox-ca.ts <command> [args...]\n');
    process.exit(2);
  }
  const ca = await ensureDevCa();
  const child = spawn(command, args, {
    stdio: 'inherit',
    shell: process.platform === 'win32',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: ca.certPath, SANDBOX_CA_CERT: ca.certPath },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

void main();
