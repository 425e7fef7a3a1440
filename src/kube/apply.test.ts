import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuantity } from '../api/index.js';
import { applyReason, containsDesired, DESIRED_HASH_ANNOTATION, withDesiredHash } from './apply.js';
import type { KubeObject } from './resources.js';

const deployment = (spec: Record<string, unknown>): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'm-kserve', namespace: 'ns', labels: { app: 'm' } },
  spec,
});

test('quantities compare by value', () => {
  assert.equal(parseQuantity('1000m'), 1);
  assert.equal(parseQuantity('1Gi'), 2 ** 30);
  assert.equal(parseQuantity('2e3'), 2000);
  assert.equal(parseQuantity('abc'), undefined);
  assert.ok(containsDesired({ cpu: '1000m', mem: '1024Mi' }, { cpu: '1', mem: '1Gi' }));
  assert.ok(!containsDesired({ cpu: '2' }, { cpu: '1' }));
});

test('live objects with defaulted and foreign fields still contain the desired ones', () => {
  const desired = { replicas: 2, template: { spec: { containers: [{ name: 'main', image: 'vllm' }] } } };
  const live = {
    replicas: 2,
    revisionHistoryLimit: 10,
    template: { spec: { containers: [{ name: 'main', image: 'vllm', imagePullPolicy: 'IfNotPresent' }] } },
  };
  assert.ok(containsDesired(desired, live));
  const diffs: string[] = [];
  assert.ok(!containsDesired({ template: { spec: { containers: [{ image: 'other' }] } } }, live, '', diffs));
  assert.deepEqual(diffs, ['template.spec.containers[0].image: "vllm" != "other"']);
});

test('no apply when the live object matches; apply when missing, changed or drifted', () => {
  const desired = withDesiredHash(deployment({ template: { spec: { containers: [{ name: 'main' }] } } }));
  assert.equal(applyReason(desired, undefined), 'missing');
  const live: KubeObject = {
    ...desired,
    metadata: { ...desired.metadata, resourceVersion: '5', uid: 'u' },
    status: { replicas: 1 },
  };
  assert.equal(applyReason(desired, live), undefined);
  // HPA-managed replicas: the desired object leaves replicas unset, so any live value is fine.
  assert.equal(
    applyReason(desired, { ...live, spec: { ...(live['spec'] as object), replicas: 7 } }),
    undefined,
  );
  const changed = withDesiredHash(
    deployment({ template: { spec: { containers: [{ name: 'main', image: 'x' }] } } }),
  );
  assert.equal(applyReason(changed, live), 'changed');
  const drifted = { ...live, metadata: { ...live.metadata, labels: { app: 'edited' } } };
  assert.match(applyReason(desired, drifted) ?? '', /^drifted \(metadata.labels.app/);
});

test('a removed field changes the hash even though the live object still contains the rest', () => {
  const before = withDesiredHash(deployment({ replicas: 3 }));
  const after = withDesiredHash(deployment({}));
  assert.notEqual(
    before.metadata.annotations![DESIRED_HASH_ANNOTATION],
    after.metadata.annotations![DESIRED_HASH_ANNOTATION],
  );
  assert.equal(applyReason(after, before), 'changed');
});

test('the hash does not depend on key order', () => {
  const a = withDesiredHash(deployment({ a: 1, b: { c: 2, d: 3 } }));
  const b = withDesiredHash(deployment({ b: { d: 3, c: 2 }, a: 1 }));
  assert.equal(
    a.metadata.annotations![DESIRED_HASH_ANNOTATION],
    b.metadata.annotations![DESIRED_HASH_ANNOTATION],
  );
});
