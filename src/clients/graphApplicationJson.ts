/** Graph's application JSON (v1.0 `application`) and its conversion to the core's view of an app. */
import type {
  ApplicationInfo,
  CertificateCredentialInfo,
  PasswordCredentialInfo,
} from '../remediation/ports';

/** Certificates are read too: a certificate connection is assessed from them (never their raw data, see below). */
export const APP_SELECT = 'id,appId,displayName,passwordCredentials,keyCredentials';

export interface GraphPassword {
  keyId?: string;
  displayName?: string | null;
  hint?: string | null;
  startDateTime?: string | null;
  endDateTime?: string | null;
  secretText?: string | null;
}

interface GraphKeyCredential {
  keyId?: string;
  displayName?: string | null;
  customKeyIdentifier?: string | null;
  endDateTime?: string | null;
  type?: string | null;
  usage?: string | null;
}

export interface GraphApplication {
  id: string;
  appId: string;
  displayName?: string | null;
  passwordCredentials?: GraphPassword[];
  keyCredentials?: GraphKeyCredential[];
}

/** What a password and a certificate both carry, Graph's missing values read as null. */
function credentialBasics(c: GraphPassword | GraphKeyCredential) {
  return { keyId: c.keyId ?? '', displayName: c.displayName ?? null, endDateTime: c.endDateTime ?? null };
}

export function toPasswordInfo(p: GraphPassword): PasswordCredentialInfo {
  return { ...credentialBasics(p), hint: p.hint ?? null, startDateTime: p.startDateTime ?? null };
}

/**
 * The certificate's facts assessment needs. `key` (the certificate's raw data, which Graph returns
 * for a single application read with `$select=keyCredentials`) is deliberately not kept: public, but
 * a kilobyte or more per certificate, for every app of a run.
 */
function toCertificateInfo(k: GraphKeyCredential): CertificateCredentialInfo {
  return {
    ...credentialBasics(k),
    thumbprint: k.customKeyIdentifier ?? null,
    type: k.type ?? null,
    usage: k.usage ?? null,
  };
}

export function toApplicationInfo(app: GraphApplication): ApplicationInfo {
  const info: ApplicationInfo = {
    id: app.id,
    appId: app.appId,
    displayName: app.displayName ?? '',
    passwordCredentials: (app.passwordCredentials ?? []).map(toPasswordInfo),
  };
  if (app.keyCredentials && app.keyCredentials.length > 0)
    info.keyCredentials = app.keyCredentials.map(toCertificateInfo);
  return info;
}
