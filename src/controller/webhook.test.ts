import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdmissionReview, ConversionReview, WebhookEngine } from './webhook.js';
import { reviewAdmission, reviewConfigDeletion, reviewConversion } from './webhook.js';

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
