/**
 * The `created` phase of a certificate rotation (a connection with `authenticationType:
 * spnCertificate`): the same evidence and order as a secret's (rotationCreate.ts), with a Key Vault
 * certificate in place of a Graph password.
 *
 *   intent noted in Key Vault → new certificate version created BY Key Vault (self-signed, key
 *   exportable, PEM: the private key is born in Key Vault, invariant 1) → its public part added to
 *   the app's keyCredentials with the marker as displayName (Graph PATCH, read-modify-write: see
 *   src/clients/graphKeyCredentials.ts for why not addKey) → the rotation record, naming the
 *   certificate's name and version, written to Key Vault.
 *
 * A crash after the certificate exists but before Graph has it leaves an unused certificate
 * version (harmless: nothing trusts it). A crash after Graph but before the record leaves a marked
 * keyCredential that no record stores, with the intent noted: the next run removes it as an orphan
 * (invariant 4), as for secrets. The record's own secret holds only a pointer to the certificate,
 * never the private key (which stays in the certificate's secret).
 */
import { randomUUID } from 'node:crypto';
import { errorMessage, redactor } from '../telemetry';
import { assertLeaseHeld, classify, EngineFailure } from './engine';
import { CERTIFICATE_KIND } from './credentialKind';
import type { ApplicationInfo, RotationIntent, RotationRecord, ServiceConnection } from './ports';
import type { RotationContext } from './rotation';
import { abandonUnrecorded, startRotation } from './rotationCreate';
import { credentialMarker } from './transform';

/** Prefix of the Key Vault certificate of a connection: `sc-remediator-cert-<connectionId>`. */
const CERTIFICATE_NAME_PREFIX = 'sc-remediator-cert-';

/** The Key Vault certificate name for a connection (one certificate, a version per rotation). */
function certificateNameFor(connectionId: string): string {
  const name = `${CERTIFICATE_NAME_PREFIX}${connectionId}`;
  // Key Vault's object names (learn.microsoft.com, "About Azure Key Vault certificates").
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(name))
    throw new EngineFailure(
      'service-error',
      `Connection id '${connectionId}' cannot name a Key Vault certificate.`,
    );
  return name;
}

/** What the record's own secret holds for a certificate rotation: where the PEM is, not the PEM. */
function pointer(certificate: { name: string; version: string }): string {
  return `Key Vault certificate ${certificate.name}/${certificate.version}`;
}

/** The PEM (private key and certificate) of the recorded certificate version, registered for redaction. */
export async function readCertificatePem(
  ctx: RotationContext,
  certificate: { name: string; version: string },
): Promise<string | undefined> {
  const vault = ctx.deps.certificates;
  if (!vault) throw new EngineFailure('not-configured', 'Key Vault certificates are not configured.');
  const pem = await vault.getCertificatePem(certificate.name, certificate.version).catch((err: unknown) => {
    throw classify(err, 'reading the certificate from Key Vault');
  });
  if (pem) redactor.register(pem);
  return pem;
}

export async function createCertificateCredential(
  ctx: RotationContext,
  connection: ServiceConnection,
  app: ApplicationInfo,
  existing: RotationRecord | undefined,
  intent: RotationIntent | undefined,
): Promise<{ record: RotationRecord; value: string }> {
  const { target, deps, settings, result } = ctx;
  const vault = deps.certificates;
  const addCertificate = deps.graph.addCertificate?.bind(deps.graph);
  if (!vault || !addCertificate)
    throw new EngineFailure('not-configured', 'Certificates cannot be created or added to apps here.');
  const rotationId = await startRotation(ctx, CERTIFICATE_KIND.credentials(app), existing, intent);
  const previousKeyIds = new Set<string>(target.previousKeyIds);
  if (existing && existing.appId === app.appId) previousKeyIds.add(existing.keyId);
  const marker = credentialMarker(target.connectionId, rotationId);
  const now = deps.clock.now();

  // Key Vault validity is in whole months: the lifetime in days, rounded, at least one month.
  const validityMonths = Math.max(1, Math.round(settings.secretLifetimeDays / 30));
  const name = certificateNameFor(target.connectionId);
  await assertLeaseHeld('creating a certificate in Key Vault');
  const created = await vault
    .createCertificate(name, {
      subject: `CN=sc-remediator ${target.connectionId}`,
      validityMonths,
      tags: { connectionId: target.connectionId, rotationId },
    })
    .catch((err: unknown) => {
      throw new EngineFailure(
        'key-vault-write-failed',
        `Key Vault did not create the certificate (nothing was added to the app): ${errorMessage(err)}`,
        true,
        err,
      );
    });
  const certificate = { name: created.name, version: created.version };
  const pem = await readCertificatePem(ctx, certificate);
  if (!pem || !/PRIVATE KEY-----/.test(pem))
    throw new EngineFailure(
      'key-vault-write-failed',
      `Key Vault returned certificate ${name}/${created.version} without its private key (is the policy's key exportable?); nothing was added to the app.`,
    );
  result.steps.push(
    `created certificate ${name} version ${created.version} in Key Vault (thumbprint ${created.thumbprint}, ending ${created.expiresAt})`,
  );

  const keyId = randomUUID();
  await assertLeaseHeld('adding a certificate to the app');
  await addCertificate(app.id, { keyId, displayName: marker, derBase64: created.derBase64 }).catch(
    (err: unknown) => {
      throw classify(err, 'adding a certificate');
    },
  );
  result.steps.push(`added certificate ${keyId} (thumbprint ${created.thumbprint}) to the app`);

  const record: RotationRecord = {
    connectionId: target.connectionId,
    organization: target.organizationUrl,
    phase: 'created',
    appId: app.appId,
    keyId,
    rotationId,
    previousKeyIds: [...previousKeyIds].filter((k) => k !== keyId),
    originalCreationMode: existing?.originalCreationMode ?? connection.data['creationMode'] ?? 'Manual',
    expiresAt: created.expiresAt,
    createdAt: now.toISOString(),
    certificate,
  };
  try {
    await assertLeaseHeld('storing the rotation state in Key Vault');
    const stored = await deps.store.putSecret(record, pointer(certificate));
    result.steps.push('stored the rotation state (naming the certificate version) in Key Vault');
    return { record: stored, value: pem };
  } catch (err) {
    // A certificate no record names must not stay on the app.
    return abandonUnrecorded(ctx, err, {
      keyId,
      remove: () => CERTIFICATE_KIND.remove(deps, app.id, keyId),
      noun: 'certificate',
      kept: 'the record',
      refused: 'the record',
      failure: 'the rotation record',
    });
  }
}
