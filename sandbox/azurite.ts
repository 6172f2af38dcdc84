/**
 * Azurite (the `azurite` npm package, the real Azure Storage emulator) for tests and the sandbox:
 * one child process serving blob, queue and table on free loopback ports, in memory, stopped with
 * `stop()` or when this process exits.
 *
 *   const storage = await startAzurite();
 *   // storage.connectionString is an AzureWebJobsStorage value
 *   await storage.stop();
 *
 * The account key is Azurite's well-known development key (published in its documentation).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface AzuriteOptions {
  /** Include the blob endpoint in the connection string (default true). */
  blob?: boolean;
  /** Include the queue endpoint (default true). */
  queue?: boolean;
  /** Include the table endpoint (default false). */
  table?: boolean;
  /** How long to wait for the servers to listen (default 20 s). */
  startTimeoutMs?: number;
}

export interface Azurite {
  /** `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=…;BlobEndpoint=…;…` */
  connectionString: string;
  blobEndpoint: string;
  queueEndpoint: string;
  tableEndpoint: string;
  accountName: string;
  accountKey: string;
  /** Process id of the Azurite child. */
  pid: number;
  /** Milliseconds from spawn until every server accepted a connection. */
  startupMs: number;
  stop(): Promise<void>;
}

const AZURITE_ACCOUNT_NAME = 'devstoreaccount1';
/** Azurite's fixed, public development key (not a secret). */
const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/**
 * Runs Azurite's combined entry point under a tiny wrapper that exits when the IPC channel to this
 * process closes, so the emulator never outlives its parent (even one killed with SIGKILL).
 */
const WRAPPER = [
  "process.on('disconnect', () => process.exit(0));",
  'const entry = process.argv[1];',
  // Azurite parses process.argv.slice(2): keep the entry at index 1, as if run as a script.
  'require(entry);',
].join('\n');

const LISTENING = /Azurite (Blob|Queue|Table) service (?:is )?successfully listening at (http:\/\/\S+)/;

function azuriteEntry(): string {
  return join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
}

function canConnect(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitForConnect(url: string, deadline: number): Promise<void> {
  while (!(await canConnect(url))) {
    if (Date.now() > deadline) throw new Error(`Azurite at ${url} does not accept connections.`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopChild(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    // The wrapper exits on disconnect; SIGTERM as well in case the channel is already gone.
    if (child.connected) child.disconnect();
    else child.kill('SIGTERM');
  });
}

/** Where a started Azurite listens (what another process needs to use it: `azuriteAt`). */
export type RunningAzurite = Pick<
  Azurite,
  'blobEndpoint' | 'queueEndpoint' | 'tableEndpoint' | 'pid' | 'startupMs'
>;

/** The Azurite at `running` with the endpoints `options` ask for; `stop` is what stopping it does. */
export function azuriteAt(
  running: RunningAzurite,
  options: AzuriteOptions,
  stop: () => Promise<void>,
): Azurite {
  const parts = [
    'DefaultEndpointsProtocol=http',
    `AccountName=${AZURITE_ACCOUNT_NAME}`,
    `AccountKey=${AZURITE_ACCOUNT_KEY}`,
  ];
  if (options.blob ?? true) parts.push(`BlobEndpoint=${running.blobEndpoint}`);
  if (options.queue ?? true) parts.push(`QueueEndpoint=${running.queueEndpoint}`);
  if (options.table ?? false) parts.push(`TableEndpoint=${running.tableEndpoint}`);
  return {
    ...running,
    connectionString: `${parts.join(';')};`,
    accountName: AZURITE_ACCOUNT_NAME,
    accountKey: AZURITE_ACCOUNT_KEY,
    stop,
  };
}

/** Starts Azurite on free loopback ports and resolves once its servers accept connections. */
export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const started = Date.now();
  const deadline = started + (options.startTimeoutMs ?? 20_000);
  const args = [
    '-e',
    WRAPPER,
    azuriteEntry(),
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    '0',
    '--queueHost',
    '127.0.0.1',
    '--queuePort',
    '0',
    '--tableHost',
    '127.0.0.1',
    '--tablePort',
    '0',
    '--inMemoryPersistence',
    '--extentMemoryLimit',
    '256',
    '--silent',
    '--skipApiVersionCheck',
    '--loose',
    '--disableTelemetry',
  ];
  const child = spawn(process.execPath, args, {
    // A neutral working directory: nothing lands in the repository.
    cwd: tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const endpoints: Partial<Record<'Blob' | 'Queue' | 'Table', string>> = {};
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Azurite did not start within ${deadline - started} ms.\n${output}`)),
        Math.max(0, deadline - Date.now()),
      );
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        for (const line of output.split('\n')) {
          const m = LISTENING.exec(line);
          if (m?.[1] && m[2]) endpoints[m[1] as 'Blob' | 'Queue' | 'Table'] = m[2];
        }
        if (endpoints.Blob && endpoints.Queue && endpoints.Table) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`Azurite exited during start-up (${signal ?? `code ${code}`}).\n${output.trim()}`));
      });
    });
    const running: RunningAzurite = {
      blobEndpoint: `${endpoints.Blob ?? ''}/${AZURITE_ACCOUNT_NAME}`,
      queueEndpoint: `${endpoints.Queue ?? ''}/${AZURITE_ACCOUNT_NAME}`,
      tableEndpoint: `${endpoints.Table ?? ''}/${AZURITE_ACCOUNT_NAME}`,
      pid: child.pid ?? -1,
      startupMs: 0,
    };
    await Promise.all(
      [running.blobEndpoint, running.queueEndpoint, running.tableEndpoint].map((url) =>
        waitForConnect(url, deadline),
      ),
    );
    running.startupMs = Date.now() - started;
    child.removeAllListeners('exit');
    child.stdout?.removeAllListeners('data');
    child.stdout?.resume();
    child.stderr?.resume();

    let stopping: Promise<void> | undefined;
    return azuriteAt(running, options, () => {
      stopping ??= stopChild(child).then(() => {
        process.removeListener('exit', killOnExit);
      });
      return stopping;
    });
  } catch (err) {
    child.removeAllListeners('exit');
    await stopChild(child, 1000);
    process.removeListener('exit', killOnExit);
    throw err;
  }
}
