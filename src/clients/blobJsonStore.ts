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
      const chunks: Buffer[] = [];
      for await (const chunk of response.readableStreamBody ?? [])
        chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
      return { value: JSON.parse(Buffer.concat(chunks).toString('utf8')) as T, etag: response.etag ?? '' };
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
    const body = JSON.stringify(value);
    const blob = this.container.getBlockBlobClient(name);
    const write = () =>
      blob.upload(body, Buffer.byteLength(body), {
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
