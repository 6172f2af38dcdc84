import type { ContainerClient } from '@azure/storage-blob';

/**
 * Creates `container` when a request found it missing (404): callers at the same moment share one
 * `createIfNotExists`, and a later 404 (the container deleted meanwhile) creates it again.
 */
export function containerCreator(container: ContainerClient): () => Promise<void> {
  let inFlight: Promise<void> | undefined;
  return () =>
    (inFlight ??= container
      .createIfNotExists()
      .then(() => undefined)
      .finally(() => {
        inFlight = undefined;
      }));
}

interface StorageErrorLike {
  statusCode?: number;
  code?: string;
}

/** The status and code of a storage SDK error (RestError); no fields for anything that is not an object. */
export function storageError(err: unknown): StorageErrorLike {
  return typeof err === 'object' && err !== null ? err : {};
}
