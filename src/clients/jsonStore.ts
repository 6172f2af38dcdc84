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
  /**
   * Writes the same document under each name, unconditionally, serialized once: a run's report is
   * also the latest report, and at 10,000 connections each serialization is about 7 MB.
   */
  putEach(names: readonly string[], value: unknown): Promise<void>;
  /** Creates an empty log under `name` unless one exists (`append` adds to it). */
  createLog(name: string): Promise<void>;
  /**
   * Adds one line to the log `name` and returns how many lines it holds now; undefined when there is
   * no such log. Appends are atomic and never conflict (an append blob's blocks), unlike a
   * read-modify-write of a document that many writers change at once.
   */
  append(name: string, line: string): Promise<number | undefined>;
  /** Names under `prefix`, in lexicographic order, at most `limit` of them. */
  list(prefix: string, limit?: number): Promise<string[]>;
}
