/**
 * The lifecycle every sandbox test shares, registered once: a tenant (`startSandbox`) and, when asked,
 * Azurite, started before the tests of the enclosing `describe` (or file) and stopped after them;
 * CLI children the file started are killed before anything they talk to is stopped.
 *
 *   const fixture = useSandbox({ scenario: 'default', azurite: true });  // one tenant for the block
 *   const fixture = useSandbox({ scenario: 'minimal', tenant: 'test' }); // a fresh one for each test
 *   const fixture = useSandbox({ azurite: true }); // no tenant: each test starts its own with
 *   const sandbox = await fixture.start({ scenario }); // (stopped after it; merged over the above)
 *
 * Azurite is one per block whatever `tenant` says (the worker's, emptied: test/helpers/azuritePool.ts):
 * tests that share it keep apart by connection ids or container names.
 */
import type { Azurite, AzuriteOptions } from '../../sandbox/azurite';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../sandbox/index';
import { testAzurite } from './azuritePool';
import { killRunningClis } from './cliChild';

interface UseSandboxOptions extends SandboxOptions {
  /** Start Azurite as well: `true` is blob only (what the lock and the ledger use). */
  azurite?: boolean | AzuriteOptions;
  /**
   * `block`: one tenant for the tests of the enclosing describe (default with a scenario); `test`: a
   * fresh one before each test; `manual` (default without a scenario): only what tests `start()`.
   */
  tenant?: 'block' | 'test' | 'manual';
}

export interface SandboxFixture {
  /** The tenant of the block or of the current test. */
  readonly sandbox: Sandbox;
  readonly azurite: Azurite;
  /** A tenant for the current test only (stopped after it); `env.sandbox` then returns it. */
  start(options?: SandboxOptions): Promise<Sandbox>;
}

const BLOB_ONLY: AzuriteOptions = { blob: true, queue: false };

export function useSandbox(options: UseSandboxOptions = {}): SandboxFixture {
  const { azurite: withAzurite, tenant, ...sandboxOptions } = options;
  const mode = tenant ?? (options.scenario === undefined ? 'manual' : 'block');
  let blockSandbox: Sandbox | undefined;
  let testSandboxes: Sandbox[] = [];
  let storage: Azurite | undefined;

  beforeAll(async () => {
    [blockSandbox, storage] = await Promise.all([
      mode === 'block' ? startSandbox(sandboxOptions) : undefined,
      withAzurite ? testAzurite(withAzurite === true ? BLOB_ONLY : withAzurite) : undefined,
    ]);
  });

  if (mode === 'test')
    beforeEach(async () => {
      testSandboxes.push(await startSandbox(sandboxOptions));
    });

  afterEach(async () => {
    if (testSandboxes.length === 0) return;
    killRunningClis();
    const stopping = testSandboxes;
    testSandboxes = [];
    await Promise.all(stopping.map((s) => s.stop()));
  });

  afterAll(async () => {
    killRunningClis();
    await Promise.all([blockSandbox?.stop(), storage?.stop()]);
    blockSandbox = undefined;
    storage = undefined;
  });

  return {
    get sandbox(): Sandbox {
      const current = testSandboxes.at(-1) ?? blockSandbox;
      if (!current)
        throw new Error(`No sandbox is running here (useSandbox tenant '${mode}': start() one in the test).`);
      return current;
    },
    get azurite(): Azurite {
      if (!storage) throw new Error('Azurite is not running here (useSandbox({ azurite: true })).');
      return storage;
    },
    async start(overrides: SandboxOptions = {}): Promise<Sandbox> {
      const sandbox = await startSandbox({ ...sandboxOptions, ...overrides });
      testSandboxes.push(sandbox);
      return sandbox;
    },
  };
}
