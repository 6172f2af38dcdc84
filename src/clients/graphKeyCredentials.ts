/**
 * An app's certificates (`keyCredentials`) changed through Microsoft Graph v1.0.
 *
 * Why PATCH and not `addKey`: `POST /applications/{id}/addKey` needs "a proof of possession of an
 * existing key" — a JWT signed by a current certificate of the app — and apps without a valid
 * certificate cannot use it (Learn, "application: addKey"). The current certificate of a
 * connection lives in Azure DevOps, which never returns it, so this service can sign no proof for
 * a certificate it did not create. `PATCH /applications/{id}` with `keyCredentials` ("Update
 * application", which `Application.ReadWrite.OwnedBy` allows on owned apps) can; it REPLACES the
 * collection, so it is a read-modify-write:
 * - the collection is read right before the write, with `$select=keyCredentials` on the single app
 *   (the only read that returns each certificate's `key`, which the write must send back: Learn,
 *   "keyCredential resource type"), and the write is that collection plus or minus one key: a
 *   certificate anyone added before that read is kept, whatever the caller saw earlier;
 * - the collection is read again after the write: a certificate of the first read that is gone
 *   (someone else's write raced this one) fails the change, so nothing proceeds on it.
 * Graph has no conditional write (If-Match) for applications that a public source documents, so
 * the moment between the read and the write stays; callers hold the connection's lock, and only
 * this service's marked certificates are ever removed.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import { ServiceError } from '../errors';
import type { NewCertificateCredential } from '../remediation/ports';
import { toGraphServiceError } from './graphErrors';

interface RawKeyCredential {
  keyId?: string;
  displayName?: string | null;
  customKeyIdentifier?: string | null;
  key?: string | null;
  type?: string | null;
  usage?: string | null;
  startDateTime?: string | null;
  endDateTime?: string | null;
}

const sameKey = (a: string | undefined, b: string) => (a ?? '').toLowerCase() === b.toLowerCase();

async function readKeys(client: Client, applicationObjectId: string): Promise<RawKeyCredential[]> {
  try {
    const app = (await client
      .api(`/applications/${encodeURIComponent(applicationObjectId)}`)
      .select('keyCredentials')
      .get()) as { keyCredentials?: RawKeyCredential[] };
    return app.keyCredentials ?? [];
  } catch (err) {
    throw toGraphServiceError(err, 'Reading application certificates');
  }
}

/** The write form of a certificate read back: what PATCH needs to keep it as it is. */
function kept(k: RawKeyCredential): Record<string, unknown> {
  if (!k.key)
    throw new ServiceError(
      'graph',
      `Graph returned certificate ${k.keyId ?? '?'} without its key: writing the collection would drop it, so nothing was written.`,
      { status: 200, code: 'KeyCredentialWithoutKey' },
    );
  return {
    keyId: k.keyId,
    type: k.type ?? 'AsymmetricX509Cert',
    usage: k.usage ?? 'Verify',
    key: k.key,
    ...(k.displayName ? { displayName: k.displayName } : {}),
    ...(k.customKeyIdentifier ? { customKeyIdentifier: k.customKeyIdentifier } : {}),
  };
}

async function write(
  client: Client,
  applicationObjectId: string,
  keyCredentials: Record<string, unknown>[],
  during: string,
): Promise<void> {
  try {
    await client.api(`/applications/${encodeURIComponent(applicationObjectId)}`).patch({ keyCredentials });
  } catch (err) {
    throw toGraphServiceError(err, during);
  }
}

/** After the write: every certificate of `before` still there (less `removed`), and `added` there. */
async function confirm(
  client: Client,
  applicationObjectId: string,
  before: RawKeyCredential[],
  change: { added?: string; removed?: string },
): Promise<void> {
  const after = await readKeys(client, applicationObjectId);
  const has = (keyId: string) => after.some((k) => sameKey(k.keyId, keyId));
  const lost = before.filter((k) => k.keyId && !sameKey(k.keyId, change.removed ?? '') && !has(k.keyId));
  if ((change.added && !has(change.added)) || lost.length > 0)
    throw new ServiceError(
      'graph',
      `The app's certificates changed while this service wrote them (${lost.length > 0 ? `gone: ${lost.map((k) => k.keyId).join(', ')}` : `${change.added ?? ''} missing`}); another writer raced this one.`,
      { status: 409, code: 'ConcurrentKeyCredentialsChange', transient: true },
    );
}

/** Adds one certificate, keeping all others. Requires Application.ReadWrite.OwnedBy (owned apps). */
export async function addKeyCredential(
  client: Client,
  applicationObjectId: string,
  credential: NewCertificateCredential,
): Promise<void> {
  const before = await readKeys(client, applicationObjectId);
  if (before.some((k) => sameKey(k.keyId, credential.keyId))) return; // added by an earlier attempt
  await write(
    client,
    applicationObjectId,
    [
      ...before.map(kept),
      {
        keyId: credential.keyId,
        displayName: credential.displayName,
        type: 'AsymmetricX509Cert',
        usage: 'Verify',
        key: credential.derBase64,
      },
    ],
    'Adding a certificate',
  );
  await confirm(client, applicationObjectId, before, { added: credential.keyId });
}

/** Removes one certificate, keeping all others; one already gone is not an error. */
export async function removeKeyCredential(
  client: Client,
  applicationObjectId: string,
  keyId: string,
): Promise<void> {
  const before = await readKeys(client, applicationObjectId);
  if (!before.some((k) => sameKey(k.keyId, keyId))) return;
  await write(
    client,
    applicationObjectId,
    before.filter((k) => !sameKey(k.keyId, keyId)).map(kept),
    'Removing a certificate',
  );
  await confirm(client, applicationObjectId, before, { removed: keyId });
}
