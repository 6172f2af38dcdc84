/**
 * Real X.509 certificates for the simulated tenant: minted (self-signed, RSA 2048, SHA-256) for
 * scenario apps and for Key Vault's certificate creation, and checked when a client signs in with
 * one (a client assertion) or when Azure DevOps tests a connection that stores one.
 *
 * Minting is synchronous (the scenario is built synchronously): the certificate is assembled with
 * `@peculiar/asn1-x509` and signed with Node's `crypto.sign`.
 */
import {
  constants,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  Certificate,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';

/** sha256WithRSAEncryption (RFC 4055). */
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const COMMON_NAME = '2.5.4.3';

interface MintedCertificate {
  /** The certificate, PEM. */
  certPem: string;
  /** The private key, PKCS#8 PEM. */
  keyPem: string;
  /** The certificate's DER bytes, base64 (Graph `key`, Key Vault `cer`). */
  derBase64: string;
  /** SHA-1 of the DER, upper-case hex (Graph's default `customKeyIdentifier`). */
  thumbprint: string;
  notBefore: Date;
  notAfter: Date;
}

function commonName(cn: string): Name {
  const attr = new AttributeTypeAndValue({ type: COMMON_NAME });
  attr.value.utf8String = cn;
  return new Name([new RelativeDistinguishedName([attr])]);
}

/**
 * A serial number from random bytes that DER encodes as given: a positive INTEGER (first bit 0) in its
 * shortest form (first byte not 0, X.690 §8.3.2). A leading 0x00 byte is illegal padding that
 * OpenSSL, and so Node's X509Certificate, refuses: about one certificate in 256 would not parse.
 */
export function positiveSerial(random: Buffer): Buffer {
  const serial = Buffer.from(random);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01;
  return serial;
}

type RsaKeyPair = ReturnType<typeof newRsaKeyPair>;

function newRsaKeyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

/**
 * Key pairs for the certificates of scenario apps: the `index`-th certificate of a scenario load gets
 * the `index`-th pair, generated once per process (a 2048-bit pair costs 50-300 ms of CPU, and tests
 * load the same scenarios again and again). Within one tenant every certificate still has a key of
 * its own; only separate tenants share keys, and a tenant finds a certificate by its thumbprint (a
 * fresh serial number each time), so another tenant's certificate never signs in to it.
 */
export function scenarioKeyPair(index: number): RsaKeyPair {
  while (scenarioKeyPairs.length <= index) scenarioKeyPairs.push(newRsaKeyPair());
  return scenarioKeyPairs[index]!;
}
const scenarioKeyPairs: RsaKeyPair[] = [];

/**
 * A self-signed certificate for `subject` (a common name) valid from `notBefore` to `notAfter`, on
 * `keys` (default: a new pair).
 */
export function mintCertificate(
  subject: string,
  from: Date,
  to: Date,
  keys: RsaKeyPair = newRsaKeyPair(),
): MintedCertificate {
  // X.509 times have whole seconds.
  const notBefore = new Date(Math.floor(from.getTime() / 1000) * 1000);
  const notAfter = new Date(Math.floor(to.getTime() / 1000) * 1000);
  const { publicKey, privateKey } = keys;
  const algorithm = new AlgorithmIdentifier({ algorithm: SHA256_WITH_RSA, parameters: null });
  const serial = positiveSerial(randomBytes(16));
  const name = commonName(subject);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(serial).buffer,
    signature: algorithm,
    issuer: name,
    validity: new Validity({ notBefore, notAfter }),
    subject: name,
    subjectPublicKeyInfo: AsnConvert.parse(
      publicKey.export({ type: 'spki', format: 'der' }),
      SubjectPublicKeyInfo,
    ),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign('sha256', tbsDer, privateKey);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  });
  const der = Buffer.from(AsnConvert.serialize(cert));
  const base64 = der.toString('base64');
  const certPem = `-----BEGIN CERTIFICATE-----\n${base64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  return {
    certPem,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    derBase64: base64,
    thumbprint: createHash('sha1').update(der).digest('hex').toUpperCase(),
    notBefore,
    notAfter,
  };
}

/** SHA-1 and SHA-256 thumbprints of a certificate's DER (base64url, as JWT `x5t` / `x5t#S256`). */
export function thumbprintsOf(derBase64: string): { x5t: string; x5tS256: string } {
  const der = Buffer.from(derBase64, 'base64');
  return {
    x5t: createHash('sha1').update(der).digest('base64url'),
    x5tS256: createHash('sha256').update(der).digest('base64url'),
  };
}

/** The first certificate of a PEM bundle (key and certificate together, as Azure DevOps stores it). */
export function certificateOfPem(pem: string): X509Certificate | undefined {
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!block) return undefined;
  try {
    return new X509Certificate(block);
  } catch {
    return undefined;
  }
}

/** Whether the PEM bundle holds a private key matching its certificate. */
export function pemHoldsKeyOf(pem: string, cert: X509Certificate): boolean {
  const block = /-----BEGIN (?:RSA )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA )?PRIVATE KEY-----/.exec(
    pem,
  )?.[0];
  if (!block) return false;
  try {
    return cert.checkPrivateKey(createPrivateKey(block));
  } catch {
    return false;
  }
}

/** A JWT's parts, undefined when it is not one. */
export function decodeJwt(
  token: string,
):
  | { header: Record<string, unknown>; payload: Record<string, unknown>; signed: Buffer; signature: Buffer }
  | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const [h, p, s] = parts as [string, string, string];
    return {
      header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>,
      payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>,
      signed: Buffer.from(`${h}.${p}`),
      signature: Buffer.from(s, 'base64url'),
    };
  } catch {
    return undefined;
  }
}

/** Whether `signature` over `signed` verifies with the certificate (base64 DER) under `alg` (RS256/PS256). */
export function verifiesWith(derBase64: string, alg: unknown, signed: Buffer, signature: Buffer): boolean {
  try {
    const key = new X509Certificate(Buffer.from(derBase64, 'base64')).publicKey;
    if (alg === 'RS256') return verify('sha256', signed, key, signature);
    if (alg === 'PS256')
      return verify(
        'sha256',
        signed,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        signature,
      );
    return false;
  } catch {
    return false;
  }
}
