/**
 * The storage the run ledger is kept in: a few JSON documents read and written by name, each with an
 * etag for conditional writes. Blobs in Azure (`blobJsonStore.ts`), a Map in tests and local runs
 * (`memoryJsonStore.ts`).
 */

/** A stored JSON document and its version. */
export interface StoredJson<T> {
  value: T;
  etag: string;
}

/** Thrown by `JsonStore.put` when a condition does not hold (412/409). */
export class ConditionNotMetError extends Error {
  constructor(name: string) {
    super(`The ledger document '${name}' changed meanwhile.`);
    this.name = 'ConditionNotMetError';
  }
}

/** The few storage operations the ledger needs; blobs in Azure, a Map in tests and local runs. */
export interface JsonStore {
  get<T>(name: string): Promise<StoredJson<T> | undefined>;
  /** Writes `value`; `ifMatch` an etag, or `ifNoneMatch: '*'` to create only. Returns the new etag. */
  put(name: string, value: unknown, condition?: { ifMatch?: string; ifNoneMatch?: '*' }): Promise<string>;
  /** Names under `prefix`, in lexicographic order, at most `limit` of them. */
  list(prefix: string, limit?: number): Promise<string[]>;
}
