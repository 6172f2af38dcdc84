/** How the `sc-remediator` command decides to start its work in another process (launch.ts). */
import { CLI_NODE_OPTIONS, relaunchFor } from '../../src/cli/launch';

const script = ['/app/dist/src/cli/bin.js', 'remediate', '--dry-run'];

test('the installed command bounds the heap: same options, the flag, then the script and its arguments', () => {
  const plan = relaunchFor({ execArgv: ['--enable-source-maps'], script, env: { A: '1' }, boundHeap: true });
  expect(plan?.args).toEqual(['--enable-source-maps', ...CLI_NODE_OPTIONS, ...script]);
  expect(plan?.env).toMatchObject({ A: '1', SC_REMEDIATOR_RESTARTED: '1' });
  expect(CLI_NODE_OPTIONS).toEqual(['--max-old-space-size=1024']);
});

test.each([
  ['on the command line', ['--max-old-space-size=4096'], {}],
  ['with underscores', ['--max_old_space_size=300'], {}],
  ['in NODE_OPTIONS', [], { NODE_OPTIONS: '--trace-warnings --max-old-space-size=2048' }],
])('a heap limit the caller set (%s) is left as it is', (_label, execArgv, env) => {
  expect(relaunchFor({ execArgv, script, env, boundHeap: true })).toBeUndefined();
});

test('a restarted process never restarts again', () => {
  expect(
    relaunchFor({
      execArgv: [],
      script,
      env: { SC_REMEDIATOR_RESTARTED: '1' },
      caBundle: '/ca.pem',
      boundHeap: true,
    }),
  ).toBeUndefined();
});

test('a direct run restarts only for a CA bundle it did not start with, without the heap flag', () => {
  expect(relaunchFor({ execArgv: [], script, env: {}, boundHeap: false })).toBeUndefined();
  expect(
    relaunchFor({
      execArgv: [],
      script,
      env: { NODE_EXTRA_CA_CERTS: '/ca.pem' },
      caBundle: '/ca.pem',
      boundHeap: false,
    }),
  ).toBeUndefined();
  const plan = relaunchFor({ execArgv: [], script, env: {}, caBundle: '/ca.pem', boundHeap: false });
  expect(plan?.args).toEqual(script);
  expect(plan?.env['NODE_EXTRA_CA_CERTS']).toBe('/ca.pem');
});
