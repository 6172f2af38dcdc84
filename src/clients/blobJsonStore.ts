import type { ContainerClient } from '@azure/storage-blob';
import { containerCreator, storageError } from './blobContainer';
import { ConditionNotMetError, type JsonStore, type StoredJson } from './jsonStore';

/** `JsonStore` on block blobs of one container (created on first write). */
export class BlobJsonStore implements JsonStore {
  private readonly createContainer: () => Promise<void>;

  constructor(private readonly container: ContainerClient) {
    this.createContainer = containerCreator(container);
  }

  async get<T>(name: string): Promise<StoredJson<T> | undefined> {
    try {
      const response = await this.container.getBlockBlobClient(name).download();
      const body = await readBody(response.readableStreamBody, response.contentLength);
      return { value: JSON.parse(body.toString('utf8')) as T, etag: response.etag ?? '' };
    } catch (err) {
      if (storageError(err).statusCode === 404) return undefined;
      throw err;
    }
  }

  async put(
    name: string,
    value: unknown,
    condition: { ifMatch?: string; ifNoneMatch?: '*' } = {},
  ): Promise<string> {
    return this.upload(name, Buffer.from(JSON.stringify(value), 'utf8'), condition);
  }

  async putEach(names: readonly string[], value: unknown): Promise<void> {
    const body = Buffer.from(JSON.stringify(value), 'utf8');
    for (const name of names) await this.upload(name, body, {});
  }

  private async upload(
    name: string,
    body: Buffer,
    condition: { ifMatch?: string; ifNoneMatch?: '*' },
  ): Promise<string> {
    const blob = this.container.getBlockBlobClient(name);
    const write = () =>
      blob.upload(body, body.byteLength, {
        blobHTTPHeaders: { blobContentType: 'application/json; charset=utf-8' },
        conditions: condition,
      });
    try {
      return (await write()).etag ?? '';
    } catch (err) {
      const e = storageError(err);
      if (e.statusCode === 412 || (e.statusCode === 409 && e.code === 'BlobAlreadyExists'))
        throw new ConditionNotMetError(name);
      if (e.statusCode !== 404) throw err;
      await this.createContainer();
      try {
        return (await write()).etag ?? '';
      } catch (retryErr) {
        const r = storageError(retryErr);
        if (r.statusCode === 412 || r.statusCode === 409) throw new ConditionNotMetError(name);
        throw retryErr;
      }
    }
  }

  async createLog(name: string): Promise<void> {
    const blob = this.container.getAppendBlobClient(name);
    try {
      await blob.createIfNotExists();
    } catch (err) {
      if (storageError(err).statusCode !== 404) throw err;
      await this.createContainer();
      await blob.createIfNotExists();
    }
  }

  async append(name: string, line: string): Promise<number | undefined> {
    const body = Buffer.from(`${line}\n`, 'utf8');
    try {
      // The committed block count after this block: appends are atomic, so the writer of the last
      // line sees them all (https://learn.microsoft.com/rest/api/storageservices/append-block).
      const response = await this.container.getAppendBlobClient(name).appendBlock(body, body.byteLength);
      return response.blobCommittedBlockCount;
    } catch (err) {
      const e = storageError(err);
      // No such log, or an append blob's 50,000 blocks used up: the caller counts another way.
      if (e.statusCode === 404 || (e.statusCode === 409 && e.code === 'BlockCountExceedsLimit'))
        return undefined;
      throw err;
    }
  }

  async list(prefix: string, limit = Number.POSITIVE_INFINITY): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const blob of this.container.listBlobsFlat({ prefix })) {
        names.push(blob.name);
        if (names.length >= limit) break;
      }
    } catch (err) {
      if (storageError(err).statusCode === 404) return [];
      throw err;
    }
    return names;
  }
}

/**
 * A download's bytes, copied into one buffer of the announced length as they arrive: a run's plan is
 * about 7 MB at 10,000 connections, and collecting the chunks before joining them held it twice.
 */
async function readBody(
  stream: NodeJS.ReadableStream | undefined,
  length: number | undefined,
): Promise<Buffer> {
  let body = length !== undefined ? Buffer.allocUnsafe(length) : undefined;
  let filled = 0;
  // Only when more arrives than announced (never seen): whatever arrived, in order.
  const chunks: Buffer[] = [];
  for await (const chunk of stream ?? []) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    if (body && filled + bytes.length <= body.length) {
      bytes.copy(body, filled);
      filled += bytes.length;
    } else {
      if (body) chunks.push(body.subarray(0, filled));
      body = undefined;
      chunks.push(bytes);
    }
  }
  return body ? body.subarray(0, filled) : Buffer.concat(chunks);
}
