/**
 * Property-based tests (fast-check) of the command line, in process (`runCli`): random arguments —
 * commands, flags and values, ids and organizations of every shape (other hosts, a trap server's
 * URL, unicode, sizes), junk — against the sandbox (minimal scenario). The CLI always ends with an
 * exit code (0, 1, or 2 for bad usage), never an exception; arguments that are not a command are a
 * usage error; and no request ever leaves for a host that is not configured.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { startSandbox, type Sandbox } from '../../sandbox/index';
import { ensureDevCa, issueServerCertificate } from '../../sandbox/tls';
import { runCli } from '../../src/cli/main';
import { unexpectedTargets, watchOutbound, type OutboundWatch } from '../helpers/outbound';

jest.setTimeout(180_000);

const COMMANDS = ['scan', 'remediate', 'check', 'convert', 'revert', 'retire'];
const FLAGS = [
  '--json',
  '--verbose',
  '--dry-run',
  '--yes',
  '--connection',
  '--organization',
  '--help',
  '-h',
  '--version',
  '--unknown',
  '--connection=',
  '--',
  '-',
];

let sandbox: Sandbox;
let trap: Server;
let trapUrl: string;
let trapHits = 0;
let outbound: OutboundWatch;
let allowed: string[];
let connectionIds: string[];

beforeAll(async () => {
  sandbox = await startSandbox({ scenario: 'minimal', seed: 'cli-property' });
  const tls = await issueServerCertificate(await ensureDevCa());
  trap = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => {
    trapHits += 1;
    res.end('{}');
  });
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  trapUrl = `https://127.0.0.1:${(trap.address() as AddressInfo).port}`;
  allowed = [sandbox.urls.authority, sandbox.urls.graph, sandbox.urls.devops, sandbox.urls.keyVault].map(
    (u) => new URL(u).host,
  );
  connectionIds = [...sandbox.state.organizations.values()].flatMap((o) => [...o.endpoints.keys()]);
  outbound = watchOutbound();
});

afterAll(async () => {
  outbound?.stop();
  await sandbox?.stop();
  await new Promise<void>((resolve) => (trap ? trap.close(() => resolve()) : resolve()));
});

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = sink();
  const err = sink();
  const code = await runCli(argv, {
    stdout: out.stream,
    stderr: err.stream as unknown as NodeJS.WriteStream,
    env: { ...sandbox.env },
  });
  return { code, stdout: out.text(), stderr: err.text() };
}

function valueArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...connectionIds), weight: 2 },
    { arbitrary: fc.uuid(), weight: 2 },
    fc.constantFrom(
      'contoso',
      sandbox.organizationUrls[0] ?? '',
      trapUrl,
      `${trapUrl}/contoso`,
      'https://evil.example/contoso',
      '../contoso',
      '',
    ),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ minLength: 1000, maxLength: 4000 }),
    fc.webUrl(),
  );
}

function argvArb(): fc.Arbitrary<string[]> {
  const token = fc.oneof(
    { arbitrary: fc.constantFrom(...FLAGS), weight: 4 },
    { arbitrary: valueArb(), weight: 3 },
    fc.string({ unit: 'grapheme', maxLength: 20 }),
  );
  return fc
    .oneof(
      // A command with random flags and values.
      { arbitrary: fc.tuple(fc.constantFrom(...COMMANDS), fc.array(token, { maxLength: 6 })), weight: 3 },
      // Anything at all.
      fc.tuple(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.array(token, { maxLength: 6 })),
    )
    .map(([first, rest]) => [first, ...rest]);
}

test('random arguments: an exit code, never an exception; not a command: a usage error; no other host', async () => {
  const codes: Record<number, number> = {};
  await fc.assert(
    fc.asyncProperty(argvArb(), async (argv) => {
      const { code, stderr } = await cli(argv);
      codes[code] = (codes[code] ?? 0) + 1;
      if (![0, 1, 2].includes(code)) throw new Error(`exit code ${code}`);
      const command = argv.find((a) => !a.startsWith('-'));
      const isHelp = argv.some((a) => a === '--help' || a === '-h' || a === '--version');
      if (!COMMANDS.includes(argv[0] ?? '') && !isHelp && argv[0] === command && code !== 2)
        throw new Error(`'${argv[0] ?? ''}' is no command, yet exit code ${code}`);
      if (/\n\s+at .+:\d+:\d+/.test(stderr))
        throw new Error(`a stack trace on stderr: ${stderr.slice(0, 300)}`);
    }),
    { numRuns: 150, seed: 20261122 },
  );
  expect(unexpectedTargets(outbound.targets, allowed)).toEqual([]);
  expect(trapHits).toBe(0);
  // The generator reached the commands' work too, not only argument checks.
  expect((codes[0] ?? 0) + (codes[1] ?? 0)).toBeGreaterThan(5);
});
