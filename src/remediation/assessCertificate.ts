/**
 * The judgement of a certificate-based connection (pure; `assess` has found its app): by the
 * app's certificates; expiring or expired ones are rotated (rotationCertificate.ts).
 */
import { diagnosisOf } from './diagnosis';
import type { AppFound, Assessment } from './assess';
import type { ApplicationInfo, CertificateCredentialInfo } from './ports';
import { credentialState, earliestUnexpired, pendingRotation, sameId } from './credentialInUse';

/** Certificates an app signs its client assertions with (Graph keyCredential `type`/`usage`). */
function signingCertificates(app: ApplicationInfo): CertificateCredentialInfo[] {
  return (app.keyCredentials ?? []).filter(
    (k) =>
      (k.type === null || k.type.toLowerCase() === 'asymmetricx509cert') &&
      (k.usage === null || k.usage.toLowerCase() === 'verify'),
  );
}

/**
 * A certificate-based connection, judged by its app's certificates (`keyCredentials`). Azure DevOps
 * never returns the certificate a connection holds, so the pessimistic guess of the passwords
 * applies: the earliest-ending certificate still valid, else the latest-ending. Healthy only when
 * that one lasts past the window and the connection is ready; expiring or expired → a diagnosis,
 * and plan.ts rotates it; no certificate → never healthy.
 */
export function assessCertificate(found: AppFound): Assessment {
  const { input, base, app } = found;
  const { connection, settings, now } = input;
  // A certificate rotation of this service under way (its record names a certificate): resumed or
  // finished as a secret's is (plan.ts), whatever the certificates say.
  const record = input.record;
  if (
    record?.certificate &&
    record.phase !== 'completed' &&
    sameId(record.connectionId, connection.id) &&
    sameId(record.appId, app.appId) &&
    (app.keyCredentials ?? []).some((k) => sameId(k.keyId, record.keyId))
  ) {
    base.pending = pendingRotation(record, settings.oldSecretRetentionHours, now);
    base.record = record;
    base.previousKeyIds = record.previousKeyIds;
  }
  // A certificate this service gave the connection and verified is the one it holds (evidence, not
  // a guess): judged by it, so the predecessor kept until it expires is not rotated again and again.
  const recorded =
    record?.certificate &&
    (record.phase === 'verified' || record.phase === 'completed') &&
    sameId(record.connectionId, connection.id) &&
    sameId(record.appId, app.appId)
      ? record.keyId
      : undefined;
  const judged = judgeCertificates(found, recorded);
  // The certificate a conversion can fall back on (as `verifiedSecret` for secrets): recorded,
  // verified, on the app, and not due for rotation.
  if (record && recorded && judged.certificate?.keyId === recorded && judged.certificate.state === 'valid')
    judged.verifiedCertificate = {
      rotationId: record.rotationId,
      keyId: recorded,
      expiresAt: record.expiresAt,
    };
  return judged;
}

function judgeCertificates(found: AppFound, recordedKeyId: string | undefined): Assessment {
  const { input, base, done, app, diagnosis } = found;
  const { connection, settings, now } = input;
  const certs = signingCertificates(app);
  const asPasswords = certs.map((k) => ({ ...k, hint: null, startDateTime: null }));
  const recorded = recordedKeyId ? asPasswords.find((k) => sameId(k.keyId, recordedKeyId)) : undefined;
  const pick = recorded ?? earliestUnexpired(asPasswords, now);
  if (!pick)
    return done({
      finding: connection.isReady ? 'unsupported' : 'not-ready',
      diagnosis: diagnosisOf('certificate-missing'),
    });
  const { state, daysLeft } = credentialState(pick.endDateTime, now, settings.rotateDaysBeforeExpiry);
  const certificate = {
    keyId: pick.keyId,
    thumbprint: certs.find((k) => k.keyId === pick.keyId)?.thumbprint ?? null,
    endDateTime: pick.endDateTime,
    state,
    ...(daysLeft === undefined ? {} : { daysLeft }),
  };
  const which = `certificate ${certificate.thumbprint ?? pick.keyId}${
    recorded
      ? ' (the one this service gave the connection and verified)'
      : certs.length > 1
        ? ` (the earliest-ending valid one of ${certs.length}: a pessimistic guess)`
        : ''
  }`;
  const ends = pick.endDateTime ?? 'never';
  const common = {
    certificate,
    credentialSource: recorded ? ('recorded' as const) : ('inferred' as const),
    secretExpiresAt: pick.endDateTime ?? undefined,
  };
  if (state !== 'valid')
    return done({
      ...common,
      finding: state,
      diagnosis: {
        ...diagnosisOf(state === 'expired' ? 'certificate-expired' : 'certificate-expiring'),
        cause: `The ${which} ${
          state === 'expired'
            ? `ended at ${ends}`
            : `ends at ${ends}, within ${settings.rotateDaysBeforeExpiry} days`
        }.`,
      },
    });
  const testFailed = input.test !== undefined && !input.test.ok;
  if (!connection.isReady || testFailed)
    return done({ ...common, finding: 'not-ready', diagnosis: diagnosis ?? diagnosisOf('unknown') });
  base.notes.push(`Judged by ${which}, ending ${ends}.`);
  return done({ ...common, finding: 'healthy' });
}
