/**
 * One rotation per connection at a time (DESIGN invariant 5): a blob lease per lock key in a
 * container of the function's storage account. Blob leases last 15 to 60 seconds, so a held lock is
 * renewed in the background until it is released; if the holder dies, renewal stops and the lease
 * expires on its own within the lease duration.
 *
 * Permissions: Storage Blob Data Contributor on the account (or a connection string). The
 * container is created on first use.
 */
import type { TokenCredential } from '@azure/core-auth';
import {
  BlobServiceClient,
  type BlobLeaseClient,
  type ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import type { Lease, LockProvider } from '../remediation/ports';
import { containerCreator, storageError } from './blobContainer';

/** The storage settings of the Functions host, as app settings name them. */
interface StorageSettings {
  /** A connection string (Azurite's, or an account's). Takes precedence when set. */
  AzureWebJobsStorage?: string;
  /** Identity-based connection: the blob endpoint, e.g. `https://acct.blob.core.windows.net`. */
  AzureWebJobsStorage__blobServiceUri?: string;
  /** Identity-based connection: the account name (the public-cloud blob endpoint is derived). */
  AzureWebJobsStorage__accountName?: string;
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/**
 * Builds the BlobServiceClient for the function's storage account: from `AzureWebJobsStorage`
 * when it is a connection string, otherwise identity-based from `AzureWebJobsStorage__blobServiceUri`
 * or `AzureWebJobsStorage__accountName` with `credential` (the managed identity in Azure).
 */
export function createBlobServiceClient(
  settings: StorageSettings,
  credential?: TokenCredential,
  pipelineOptions: StoragePipelineOptions = {},
): BlobServiceClient {
  const connectionString = nonEmpty(settings.AzureWebJobsStorage);
  if (connectionString) return BlobServiceClient.fromConnectionString(connectionString, pipelineOptions);

  const serviceUri = nonEmpty(settings.AzureWebJobsStorage__blobServiceUri);
  const accountName = nonEmpty(settings.AzureWebJobsStorage__accountName);
  let url: string;
  if (serviceUri) {
    let parsed: URL;
    try {
      parsed = new URL(serviceUri);
    } catch {
      throw new Error(`AzureWebJobsStorage__blobServiceUri is not a URL: '${serviceUri}'.`);
    }
    if (parsed.protocol !== 'https:' && parsed.hostname !== '127.0.0.1' && parsed.hostname !== 'localhost')
      throw new Error('AzureWebJobsStorage__blobServiceUri must use https.');
    url = serviceUri;
  } else if (accountName) {
    if (!/^[a-z0-9]{3,24}$/.test(accountName))
      throw new Error(`AzureWebJobsStorage__accountName is not a storage account name: '${accountName}'.`);
    url = `https://${accountName}.blob.core.windows.net`;
  } else {
    throw new Error(
      'No storage account configured: set AzureWebJobsStorage (connection string) or ' +
        'AzureWebJobsStorage__blobServiceUri / AzureWebJobsStorage__accountName (identity-based).',
    );
  }
  if (!credential)
    throw new Error('An identity-based storage connection needs a credential (the managed identity).');
  return new BlobServiceClient(url, credential, pipelineOptions);
}

/** Timer functions, injectable so tests can drive renewal without waiting. */
export interface LeaseTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

const realTimers: LeaseTimers = {
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    // A held lock must not keep the process alive on its own.
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  now: () => Date.now(),
};

export interface BlobLeaseLockOptions {
  /** Container holding one blob per lock key (default `sc-remediator-locks`). */
  containerName?: string;
  /** Milliseconds between renewals (default a third of the lease duration). */
  renewIntervalMs?: number;
  /** Called once when a held lease is lost (renewal refused, or not renewed in time). */
  onLost?: (key: string, reason: string) => void;
  timers?: LeaseTimers;
}

/** A held lock. `signal` aborts when the lease is lost, so long work can stop early. */
interface BlobLease extends Lease {
  readonly key: string;
  readonly leaseId: string;
  readonly durationSeconds: number;
  readonly signal: AbortSignal;
  /** Successful renewals so far. */
  readonly renewals: number;
  readonly lost: boolean;
}

export const DEFAULT_LOCK_CONTAINER = 'sc-remediator-locks';
const MIN_LEASE_SECONDS = 15;
const MAX_LEASE_SECONDS = 60;

function describe(err: unknown): string {
  const e = storageError(err);
  if (e.statusCode) return `${e.statusCode}${e.code ? ` ${e.code}` : ''}`;
  return err instanceof Error ? err.message : String(err);
}

/** Lease duration the service accepts: whole seconds in 15..60. */
export function leaseDurationFor(seconds: number): number {
  if (!Number.isFinite(seconds)) return MAX_LEASE_SECONDS;
  return Math.min(MAX_LEASE_SECONDS, Math.max(MIN_LEASE_SECONDS, Math.round(seconds)));
}

/** Blob name for a lock key: URI-encoded, so any key maps to one valid, distinct name. */
export function lockBlobName(key: string): string {
  if (!key) throw new Error('A lock key must not be empty.');
  const name = encodeURIComponent(key);
  if (name.length > 1024) throw new Error('A lock key must encode to at most 1024 characters.');
  return name;
}

class HeldBlobLease implements BlobLease {
  private readonly controller = new AbortController();
  private timer: unknown;
  private inFlight: Promise<void> | undefined;
  private released: Promise<void> | undefined;
  private lastRenewedAt: number;
  renewals = 0;
  lost = false;

  constructor(
    readonly key: string,
    private readonly client: BlobLeaseClient,
    readonly durationSeconds: number,
    private readonly intervalMs: number,
    private readonly timers: LeaseTimers,
    private readonly onLost?: (key: string, reason: string) => void,
  ) {
    this.lastRenewedAt = timers.now();
    this.schedule(intervalMs);
  }

  get leaseId(): string {
    return this.client.leaseId;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private schedule(ms: number): void {
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.renew().finally(() => {
        this.inFlight = undefined;
      });
    }, ms);
  }

  private markLost(reason: string): void {
    if (this.lost) return;
    this.lost = true;
    this.controller.abort(new Error(`Lock '${this.key}' lost: ${reason}.`));
    this.onLost?.(this.key, reason);
  }

  private async renew(): Promise<void> {
    if (this.released || this.lost) return;
    try {
      await this.client.renewLease({ abortSignal: AbortSignal.timeout(this.durationSeconds * 1000) });
      this.renewals += 1;
      this.lastRenewedAt = this.timers.now();
      if (!this.released) this.schedule(this.intervalMs);
    } catch (err) {
      if (this.released) return;
      const { statusCode } = storageError(err);
      // 409 (lease mismatch, expired and taken, broken) or 404 (blob gone): the lease is no longer ours.
      if (statusCode === 409 || statusCode === 404 || statusCode === 412) {
        this.markLost(`renewal refused (${describe(err)})`);
        return;
      }
      // Transient (the SDK already retried): try again soon unless the lease has run out meanwhile.
      if (this.timers.now() - this.lastRenewedAt >= this.durationSeconds * 1000) {
        this.markLost(`not renewed within ${this.durationSeconds}s (${describe(err)})`);
        return;
      }
      this.schedule(Math.max(250, Math.floor(this.intervalMs / 2)));
    }
  }

  /**
   * Renews the lease now: true when the service still knows it as ours. A refusal (409 lease
   * broken, or expired and taken; 404 blob gone) marks it lost. Any other failure (the SDK already
   * retried) answers false without marking it lost: the lease is not proven ours, so no write
   * should follow, but background renewal goes on.
   */
  async stillHeld(): Promise<boolean> {
    if (this.released || this.lost) return false;
    await this.inFlight;
    if (this.released || this.lost) return false;
    try {
      await this.client.renewLease({ abortSignal: AbortSignal.timeout(this.durationSeconds * 1000) });
      this.renewals += 1;
      this.lastRenewedAt = this.timers.now();
      return !this.released && !this.lost;
    } catch (err) {
      const { statusCode } = storageError(err);
      if (!this.released && (statusCode === 409 || statusCode === 404 || statusCode === 412))
        this.markLost(`renewal refused (${describe(err)})`);
      return false;
    }
  }

  release(): Promise<void> {
    this.released ??= (async () => {
      if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
      this.timer = undefined;
      await this.inFlight;
      if (this.lost) return;
      try {
        await this.client.releaseLease();
      } catch (err) {
        const { statusCode } = storageError(err);
        // Already expired, broken or taken by someone else: nothing of ours to release.
        if (statusCode !== 409 && statusCode !== 404 && statusCode !== 412) throw err;
      }
    })();
    return this.released;
  }
}

/** LockProvider on blob leases in one container. */
export class BlobLeaseLockProvider implements LockProvider {
  private readonly container: ContainerClient;
  private readonly createContainer: () => Promise<void>;
  private readonly timers: LeaseTimers;

  constructor(
    service: BlobServiceClient,
    private readonly options: BlobLeaseLockOptions = {},
  ) {
    this.container = service.getContainerClient(options.containerName ?? DEFAULT_LOCK_CONTAINER);
    this.createContainer = containerCreator(this.container);
    this.timers = options.timers ?? realTimers;
  }

  /**
   * Proves the storage account is reachable and readable without writing: whether the lock
   * container exists (it is created on first use). Throws the SDK's error (403, unreachable, ...).
   */
  async checkAccess(): Promise<{ containerExists: boolean; url: string }> {
    return { containerExists: await this.container.exists(), url: this.container.url };
  }

  /**
   * Tries to take the lock `key`. `seconds` is the lease duration (clamped to 15..60, the service's
   * range); the lease is renewed in the background until `release()`. Undefined when another holder
   * has it (409 LeaseAlreadyPresent).
   */
  async tryAcquire(key: string, seconds: number): Promise<BlobLease | undefined> {
    const duration = leaseDurationFor(seconds);
    const blob = this.container.getBlockBlobClient(lockBlobName(key));
    const leaseClient = blob.getBlobLeaseClient();
    for (let attempt = 0; ; attempt++) {
      try {
        await leaseClient.acquireLease(duration);
        break;
      } catch (err) {
        const { statusCode, code } = storageError(err);
        if (statusCode === 409 && (code === 'LeaseAlreadyPresent' || code === undefined)) return undefined;
        if (statusCode !== 404 || attempt >= 2) throw err;
        // First use of this key (or of the container): create what is missing, then try again.
        if (code === 'ContainerNotFound') {
          await this.createContainer();
        }
        try {
          await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } });
        } catch (createErr) {
          const created = storageError(createErr);
          if (created.statusCode === 404 && created.code === 'ContainerNotFound') {
            await this.createContainer();
            continue;
          }
          // Someone else created it (and may hold it) meanwhile: acquiring again tells.
          if (created.statusCode !== 409 && created.statusCode !== 412) throw createErr;
        }
      }
    }
    const intervalMs = Math.max(
      100,
      Math.min(this.options.renewIntervalMs ?? Math.floor((duration * 1000) / 3), duration * 1000 - 1000),
    );
    return new HeldBlobLease(key, leaseClient, duration, intervalMs, this.timers, this.options.onLost);
  }
}
