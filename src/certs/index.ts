/**
 * @module certs
 * Certificates made in memory (node:crypto keys, node-forge X.509): the controller's webhook CA and serving
 * certificate, and the EPP's self-signed serving certificate.
 */
export {
  issueBundle,
  needsRotation,
  selfSignedKeyPair,
  serviceDnsNames,
  type CertBundle,
  type KeyPair,
} from './certs.js';
