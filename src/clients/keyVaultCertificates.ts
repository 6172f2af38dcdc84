/**
 * Key Vault certificates for certificate-based connections, over `@azure/keyvault-certificates`
 * (`CertificateClient.beginCreateCertificate`, its poller waiting for the pending operation) and
 * the vault's `SecretClient` for the PEM.
 *
 * Why the key is exportable: Azure DevOps stores a certificate connection's credential as a PEM
 * holding the certificate AND its private key (`servicePrincipalCertificate`) and signs its own
 * client assertions with it, so the service must hand it the key. Key Vault returns the private
 * key only through the secret of the certificate's name, and only when the policy made it
 * exportable (Learn, "About Azure Key Vault certificates" / "Export certificates from Azure Key
 * Vault": "you can retrieve it from the addressable secret with the private key"; non-exportable:
 * "the private key isn't part of the value"). Hence policy `exportable: true`, content type
 * `application/x-pem-file`, issuer `Self` (a certificate authority adds nothing here: Entra ID
 * trusts the certificate because it is in the app's keyCredentials, not because of its issuer).
 *
 * Permissions: Key Vault Certificates Officer (certificates/create, get) and Key Vault Secrets
 * User or Officer (secrets/get) on the vault.
 */
import type { TokenCredential } from '@azure/core-auth';
import { CertificateClient, type CertificateClientOptions } from '@azure/keyvault-certificates';
import type { SecretClient } from '@azure/keyvault-secrets';
import type { CertificateVault, VaultCertificateInfo } from '../remediation/ports';
import { isLoopbackUrl } from './keyVaultClient';
import { mapKeyVaultError } from './keyVaultErrors';

interface KeyVaultCertificatesOptions {
  vaultUrl: string;
  credential: TokenCredential;
  /** The vault's secret client (shared with the state store): the PEM is the certificate's secret. */
  secrets: SecretClient;
  clientOptions?: Omit<CertificateClientOptions, 'disableChallengeResourceVerification'>;
  /** How often the creation's poller asks (Key Vault's self-signed certificates take seconds). */
  pollIntervalMs?: number;
}

export class KeyVaultCertificates implements CertificateVault {
  private readonly client: CertificateClient;
  private readonly secrets: SecretClient;
  private readonly pollIntervalMs: number;

  constructor(options: KeyVaultCertificatesOptions) {
    this.client = new CertificateClient(options.vaultUrl, options.credential, {
      ...options.clientOptions,
      // As for secrets (keyVaultClient.ts): a loopback vault cannot pass the challenge check.
      disableChallengeResourceVerification: isLoopbackUrl(options.vaultUrl),
    });
    this.secrets = options.secrets;
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
  }

  async createCertificate(
    name: string,
    options: { subject: string; validityMonths: number; tags: Record<string, string> },
  ): Promise<VaultCertificateInfo> {
    try {
      const poller = await this.client.beginCreateCertificate(
        name,
        {
          issuerName: 'Self',
          subject: options.subject,
          validityInMonths: options.validityMonths,
          exportable: true,
          keyType: 'RSA',
          keySize: 2048,
          reuseKey: false,
          contentType: 'application/x-pem-file',
        },
        { tags: options.tags, intervalInMs: this.pollIntervalMs },
      );
      const certificate = await poller.pollUntilDone();
      const version = certificate.properties.version;
      const der = certificate.cer;
      const thumbprint = certificate.properties.x509Thumbprint;
      const expiresOn = certificate.properties.expiresOn;
      if (!version || !der || !thumbprint || !expiresOn)
        throw new Error('Key Vault returned the certificate without its version, data or dates.');
      return {
        name,
        version,
        thumbprint: Buffer.from(thumbprint).toString('hex').toUpperCase(),
        derBase64: Buffer.from(der).toString('base64'),
        expiresAt: expiresOn.toISOString(),
      };
    } catch (err) {
      throw mapKeyVaultError(err, 'create certificate', name);
    }
  }

  /**
   * Proves the certificates permission without writing, as the secrets check does: Key Vault
   * authorizes before it looks the name up, so a 404 for a name this service never creates means
   * the caller may read certificates; 403 means the Key Vault Certificates Officer role is missing
   * (certificate permissions are separate from secret permissions: Learn, "Certificate access
   * control"). Creating cannot be proven without creating; it comes with the same role.
   */
  async checkAccess(): Promise<void> {
    const name = 'sc-remediator-preflight-probe';
    try {
      await this.client.getCertificate(name);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return;
      throw mapKeyVaultError(err, 'read certificate', name);
    }
  }

  async getCertificatePem(name: string, version: string): Promise<string | undefined> {
    try {
      const secret = await this.secrets.getSecret(name, { version });
      return secret.value;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw mapKeyVaultError(err, 'get certificate', name);
    }
  }
}
