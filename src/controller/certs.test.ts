import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { issueBundle, needsRotation, serviceDnsNames } from './certs.js';

const names = serviceDnsNames('llmisvc-webhook', 'llmisvc-system');

test('the serving certificate is signed by the CA and covers the service names and loopback', () => {
  const bundle = issueBundle({ dnsNames: names, ipAddresses: ['127.0.0.1'] });
  const cert = new X509Certificate(bundle.cert);
  assert.ok(cert.verify(new X509Certificate(bundle.caCert).publicKey));
  assert.ok(cert.checkHost('llmisvc-webhook.llmisvc-system.svc'));
  assert.ok(cert.checkIP('127.0.0.1'));
  assert.equal(new X509Certificate(bundle.caCert).ca, true);
  assert.equal(needsRotation(bundle, names), false);
});

test('rotation is due near expiry, for other names, or without a bundle', () => {
  const bundle = issueBundle({ dnsNames: names, days: 90 });
  assert.equal(needsRotation(bundle, names, new Date(Date.now() + 61 * 24 * 3600 * 1000)), true);
  assert.equal(needsRotation(bundle, ['other.svc']), true);
  assert.equal(needsRotation(undefined, names), true);
  assert.equal(needsRotation({ cert: 'garbage', key: 'x', caCert: 'y' }, names), true);
});
