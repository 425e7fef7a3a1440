/**
 * @module certs/certs
 * Certificates made in memory, for every server of ours that needs one without cert-manager: a self-made CA and
 * webhook serving certificate for the controller, a self-signed serving certificate for the EPP. Keys come from
 * node:crypto (fast, native); node-forge writes the X.509 structures, which Node cannot. No file and no `openssl`
 * process: the EPP runs with a read-only root file system in an image without openssl.
 * Pure apart from randomness: callers decide where the PEMs are kept and when to rotate (`needsRotation`).
 */
import { isIP } from 'node:net';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import forge from 'node-forge';

export interface CertBundle {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

const DAY = 24 * 3600 * 1000;

function newKeyPair(): {
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
  pem: string;
} {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pem);
  return { privateKey: forgeKey, publicKey: forge.pki.rsa.setPublicKey(forgeKey.n, forgeKey.e), pem };
}

function serial(): string {
  // Positive (leading 0 nibble cleared) 16-byte serial.
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

/**
 * A new CA valid `caDays` and a serving certificate for `dnsNames` (and `ipAddresses`) valid `days`, signed by it.
 * @example issueBundle({ dnsNames: ['llmisvc-webhook.llmisvc-system.svc'] })
 */
export function issueBundle(options: {
  dnsNames: string[];
  ipAddresses?: string[];
  days?: number;
  caDays?: number;
  now?: Date;
}): CertBundle {
  const now = options.now ?? new Date();
  const ca = newKeyPair();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = ca.publicKey;
  caCert.serialNumber = serial();
  caCert.validity.notBefore = new Date(now.getTime() - 5 * 60_000);
  caCert.validity.notAfter = new Date(now.getTime() + (options.caDays ?? 3650) * DAY);
  const caName = [{ name: 'commonName', value: `llmisvc-webhook-ca-${Math.floor(now.getTime() / 1000)}` }];
  caCert.setSubject(caName);
  caCert.setIssuer(caName);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(ca.privateKey, forge.md.sha256.create());

  const leaf = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = leaf.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000);
  cert.validity.notAfter = new Date(now.getTime() + (options.days ?? 90) * DAY);
  cert.setSubject([{ name: 'commonName', value: options.dnsNames[0] ?? 'llmisvc-webhook' }]);
  cert.setIssuer(caName);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...options.dnsNames.map((value) => ({ type: 2, value })),
        ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
      ],
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.privateKey, forge.md.sha256.create());
  return {
    caCert: forge.pki.certificateToPem(caCert),
    caKey: ca.pem,
    cert: forge.pki.certificateToPem(cert),
    key: leaf.pem,
  };
}

/** A PEM certificate and its private key, as `node:tls` takes them. */
export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

/**
 * A self-signed serving certificate for `commonName` (also its one DNS name), valid `days`. Gateways talk to the EPP
 * without verifying its certificate, as GIE's do, so no CA is needed.
 * @example const { cert, key } = selfSignedKeyPair('llmisvc-epp');
 */
export function selfSignedKeyPair(commonName = 'llmisvc-epp', days = 3650, now = new Date()): KeyPair {
  const pair = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = pair.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY);
  const name = [{ name: 'commonName', value: commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: commonName }] },
  ]);
  cert.sign(pair.privateKey, forge.md.sha256.create());
  return { cert: Buffer.from(forge.pki.certificateToPem(cert)), key: Buffer.from(pair.pem) };
}

/**
 * True when the serving certificate is missing, unparsable, expires within `renewBeforeDays` (a third of a 90-day
 * lifetime by default, as cert-manager does) or does not cover every DNS name and IP address in `names`.
 */
export function needsRotation(
  bundle: Partial<CertBundle> | undefined,
  names: readonly string[],
  now = new Date(),
  renewBeforeDays = 30,
): boolean {
  if (!bundle?.cert || !bundle.key || !bundle.caCert) return true;
  try {
    const cert = new X509Certificate(bundle.cert);
    const ca = new X509Certificate(bundle.caCert);
    if (!cert.verify(ca.publicKey)) return true;
    if (new Date(cert.validTo).getTime() - now.getTime() < renewBeforeDays * DAY) return true;
    if (new Date(ca.validTo).getTime() - now.getTime() < renewBeforeDays * DAY) return true;
    const sans = (cert.subjectAltName ?? '').split(',').map((s) => s.trim());
    // An IP address is compared as an address (Node spells IPv6 SANs in full); a name as written.
    return !names.every((n) => (isIP(n) ? cert.checkIP(n) !== undefined : sans.includes(`DNS:${n}`)));
  } catch {
    return true;
  }
}

/** The DNS names a Service-fronted webhook is reached by. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}
