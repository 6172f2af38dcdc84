import { ConditionNotMetError, type JsonStore, type StoredJson } from './jsonStore';

/** `JsonStore` in memory: tests, and local runs without a storage account. */
export class MemoryJsonStore implements JsonStore {
  private readonly docs = new Map<string, { body: string; etag: string }>();
  private readonly logs = new Map<string, string[]>();
  private version = 0;

  get<T>(name: string): Promise<StoredJson<T> | undefined> {
    const doc = this.docs.get(name);
    return Promise.resolve(doc ? { value: JSON.parse(doc.body) as T, etag: doc.etag } : undefined);
  }

  put(
    name: string,
    value: unknown,
    condition: { ifMatch?: string; ifNoneMatch?: '*' } = {},
  ): Promise<string> {
    const existing = this.docs.get(name);
    if (condition.ifNoneMatch === '*' && existing) return Promise.reject(new ConditionNotMetError(name));
    if (condition.ifMatch !== undefined && existing?.etag !== condition.ifMatch)
      return Promise.reject(new ConditionNotMetError(name));
    return Promise.resolve(this.write(name, JSON.stringify(value)));
  }

  putEach(names: readonly string[], value: unknown): Promise<void> {
    const body = JSON.stringify(value);
    for (const name of names) this.write(name, body);
    return Promise.resolve();
  }

  /** Stores `body` under `name` as a new version; returns its etag. */
  private write(name: string, body: string): string {
    this.version += 1;
    const etag = `"${this.version}"`;
    this.docs.set(name, { body, etag });
    return etag;
  }

  createLog(name: string): Promise<void> {
    if (!this.logs.has(name)) this.logs.set(name, []);
    return Promise.resolve();
  }

  append(name: string, line: string): Promise<number | undefined> {
    const log = this.logs.get(name);
    log?.push(line);
    return Promise.resolve(log?.length);
  }

  list(prefix: string, limit = Number.POSITIVE_INFINITY): Promise<string[]> {
    const names = [...this.docs.keys()].filter((n) => n.startsWith(prefix)).sort();
    return Promise.resolve(names.slice(0, limit));
  }
}
