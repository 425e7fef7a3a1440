import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdmissionReview, ConversionReview, WebhookEngine } from './webhook.js';
import { reviewAdmission, reviewConfigDeletion, reviewConversion, startWebhookServer } from './webhook.js';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { selfSignedKeyPair } from '../certs/index.js';

const engine: WebhookEngine = {
  validate: (o) =>
    (o['spec'] as { bad?: boolean }).bad ? [{ path: 'spec.bad', message: 'must not be set' }] : [],
  convert: (o, to) => {
    if (to.endsWith('v0')) throw new Error('no such version');
    return { ...o, apiVersion: to };
  },
};
const review = (operation: string, spec: unknown, oldSpec?: unknown): AdmissionReview => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'u1',
    operation,
    object: { kind: 'LLMInferenceService', metadata: { name: 'm' }, spec },
    oldObject: oldSpec === undefined ? null : { spec: oldSpec },
  },
});

test('invalid specs are denied with every problem; valid ones and unchanged specs pass', () => {
  const denied = reviewAdmission(review('CREATE', { bad: true }), engine).response!;
  assert.equal(denied.uid, 'u1');
  assert.equal(denied.allowed, false);
  assert.equal(denied.status?.code, 422);
  assert.match(denied.status.message, /LLMInferenceService m is invalid: spec.bad: must not be set/);
  assert.equal(reviewAdmission(review('CREATE', {}), engine).response!.allowed, true);
  // A finalizer or label edit on an object that predates a stricter rule must not be blocked.
  assert.equal(
    reviewAdmission(review('UPDATE', { bad: true }, { bad: true }), engine).response!.allowed,
    true,
  );
  assert.equal(reviewAdmission(review('DELETE', { bad: true }), engine).response!.allowed, true);
});

test('conversion converts every object or fails the whole review', () => {
  const request = (to: string): ConversionReview => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'ConversionReview',
    request: {
      uid: 'c1',
      desiredAPIVersion: to,
      objects: [
        { apiVersion: 'g/v1', kind: 'K' },
        { apiVersion: 'g/v2', kind: 'K' },
      ],
    },
  });
  const ok = reviewConversion(request('g/v2'), engine).response!;
  assert.equal(ok.result.status, 'Success');
  assert.deepEqual(
    ok.convertedObjects.map((o) => o['apiVersion']),
    ['g/v2', 'g/v2'],
  );
  const failed = reviewConversion(request('g/v0'), engine).response!;
  assert.equal(failed.result.status, 'Failure');
  assert.match(failed.result.message!, /no such version/);
});

const deletion = (operation = 'DELETE'): AdmissionReview => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'd1', operation, namespace: 'sys', name: 'shared', object: null, oldObject: {} },
});

test('deleting a config that services use is refused with their names and what to do', () => {
  assert.equal(reviewConfigDeletion(deletion(), []).response!.allowed, true);
  assert.equal(reviewConfigDeletion(deletion('UPDATE'), ['a/x']).response!.allowed, true);
  const users = Array.from({ length: 12 }, (_, i) => `ns/s${i}`);
  const denied = reviewConfigDeletion(deletion(), users).response!;
  assert.equal(denied.uid, 'd1');
  assert.equal(denied.allowed, false);
  assert.equal(denied.status?.code, 409);
  assert.match(
    denied.status.message,
    /LLMInferenceServiceConfig sys\/shared is in use by 12 LLMInferenceServices/,
  );
  assert.match(denied.status.message, /ns\/s0, .*ns\/s9 and 2 more/);
  assert.match(denied.status.message, /remove "shared" from their spec.baseRefs or delete them/);
});

test('a config deletion whose users cannot be looked up is allowed with a warning (fail open)', () => {
  const response = reviewConfigDeletion(deletion(), new Error('connection refused')).response!;
  assert.equal(response.allowed, true);
  assert.match(response.warnings![0]!, /could not check .*sys\/shared \(connection refused\)/);
});

test('the webhook server bounds connections: per client address, and silent ones are closed', async () => {
  const pair = selfSignedKeyPair('webhook-test');
  const server = await startWebhookServer({
    engine,
    cert: pair.cert.toString(),
    key: pair.key.toString(),
    host: '127.0.0.1',
    port: 0,
    connectionLimits: { maxConnectionsPerAddress: 2 },
    idleTimeoutMs: 300,
  });
  /** A TLS connection that sends nothing: when it closed (ms after it opened), or 'open' after `waitMs`. */
  const silent = (localAddress: string, waitMs: number) =>
    new Promise<number | 'open'>((resolve) => {
      const started = Date.now();
      const tcp = netConnect({ host: '127.0.0.1', port: server.port, localAddress });
      const socket = tlsConnect({ socket: tcp, rejectUnauthorized: false });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Date.now() - started));
      setTimeout(() => {
        resolve('open');
        socket.destroy();
      }, waitMs).unref();
    });
  try {
    const [first, second, third] = await Promise.all([
      silent('127.0.0.1', 2000),
      silent('127.0.0.1', 2000),
      // Opened a moment later, while the two hold the address's slots.
      new Promise((resolve) => setTimeout(resolve, 100)).then(() => silent('127.0.0.1', 2000)),
    ]);
    // The third was refused at once; the two were closed for silence after about 300 ms.
    assert.ok(typeof third === 'number' && third < 100, `third: ${third}`);
    for (const held of [first, second])
      assert.ok(typeof held === 'number' && held >= 250 && held < 1500, `${held}`);
    // Another address is not held back by this one's.
    assert.equal(typeof (await silent('127.0.0.2', 2000)), 'number');
  } finally {
    await server.close();
  }
});
