/**
 * An in-process LockProvider, for the CLI when no storage account is configured: it keeps two
 * rotations of one connection apart within this process only, not across processes or machines.
 */
import type { Lease, LockProvider } from '../remediation/ports';

export class MemoryLockProvider implements LockProvider {
  private readonly held = new Map<string, symbol>();

  /** Undefined when `key` is held. The lock lasts until released (`seconds` is not needed in-process). */
  tryAcquire(key: string, _seconds: number): Promise<Lease | undefined> {
    if (this.held.has(key)) return Promise.resolve(undefined);
    const token = Symbol(key);
    this.held.set(key, token);
    let released = false;
    return Promise.resolve({
      release: () => {
        // Idempotent, and never frees a lock re-taken by someone else after this lease ended.
        if (!released && this.held.get(key) === token) this.held.delete(key);
        released = true;
        return Promise.resolve();
      },
      stillHeld: () => Promise.resolve(!released && this.held.get(key) === token),
    });
  }

  /** Keys currently held (for diagnostics and tests). */
  heldKeys(): string[] {
    return [...this.held.keys()];
  }
}
