/**
 * Key Vault certificates as the core needs them for certificate rotations (re-exported by ports.ts).
 */
/** A certificate version Key Vault created (public facts only; the PEM is read separately). */
export interface VaultCertificateInfo {
  name: string;
  version: string;
  /** SHA-1 thumbprint, upper-case hex. */
  thumbprint: string;
  /** The certificate's DER, base64. */
  derBase64: string;
  expiresAt: string;
}

/**
 * Key Vault certificates: self-signed certificates whose key is exportable, kept as PEM (the
 * connection needs the private key). Requires Key Vault Certificates Officer (create, get) and
 * secrets/get for the PEM.
 */
export interface CertificateVault {
  createCertificate(
    name: string,
    options: { subject: string; validityMonths: number; tags: Record<string, string> },
  ): Promise<VaultCertificateInfo>;
  /** The PEM (private key and certificate) of one version; undefined when it does not exist. */
  getCertificatePem(name: string, version: string): Promise<string | undefined>;
}
