import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { issueBundle, needsRotation, selfSignedKeyPair, serviceDnsNames } from './certs.js';

const names = serviceDnsNames('llmisvc-webhook', 'llmisvc-system');

test('the serving certificate is signed by the CA and covers the service names and loopback', () => {
  const bundle = issueBundle({ dnsNames: names, ipAddresses: ['127.0.0.1'] });
  const cert = new X509Certificate(bundle.cert);
  assert.ok(cert.verify(new X509Certificate(bundle.caCert).publicKey));
  assert.ok(cert.checkHost('llmisvc-webhook.llmisvc-system.svc'));
  assert.ok(cert.checkIP('127.0.0.1'));
  assert.equal(new X509Certificate(bundle.caCert).ca, true);
  assert.equal(needsRotation(bundle, names), false);
  // Addresses count as addresses: the one it has, and not one it lacks (a --webhook-url host added later).
  assert.equal(needsRotation(bundle, [...names, '127.0.0.1']), false);
  assert.equal(needsRotation(bundle, [...names, '127.0.0.2']), true);
  assert.equal(needsRotation(bundle, [...names, '::1']), true);
  const six = issueBundle({ dnsNames: names, ipAddresses: ['::1'] });
  assert.equal(needsRotation(six, [...names, '::1']), false);
});

test('rotation is due near expiry, for other names, or without a bundle', () => {
  const bundle = issueBundle({ dnsNames: names, days: 90 });
  assert.equal(needsRotation(bundle, names, new Date(Date.now() + 61 * 24 * 3600 * 1000)), true);
  assert.equal(needsRotation(bundle, ['other.svc']), true);
  assert.equal(needsRotation(undefined, names), true);
  assert.equal(needsRotation({ cert: 'garbage', key: 'x', caCert: 'y' }, names), true);
});

test('a self-signed serving certificate is made in memory and serves TLS', async () => {
  const { createServer, connect } = await import('node:tls');
  const pair = selfSignedKeyPair('llmisvc-epp');
  const cert = new X509Certificate(pair.cert);
  assert.ok(cert.checkHost('llmisvc-epp'));
  assert.ok(cert.verify(cert.publicKey));
  const server = createServer({ ...pair, ALPNProtocols: ['h2'] }, (socket) => socket.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    let data = '';
    socket.on('data', (chunk) => (data += chunk));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
  server.close();
  assert.equal(answer, 'ok');
});
