import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../kube/index.js';
import { childRole, ownerKey, planPrune } from './children.js';

const owned = (apiVersion: string, kind: string, name: string, uid = 'svc-uid'): KubeObject => ({
  apiVersion,
  kind,
  metadata: {
    name,
    namespace: 'ns',
    uid: `${name}-uid`,
    ownerReferences: [
      {
        apiVersion: 'serving.kserve.io/v1alpha2',
        kind: 'LLMInferenceService',
        name: 'm',
        uid,
        controller: true,
      },
    ],
  },
});

test('topology switch prunes the Deployment when a LeaderWorkerSet is desired', () => {
  const deployment = owned('apps/v1', 'Deployment', 'm-kserve');
  const lws = owned('leaderworkerset.x-k8s.io/v1', 'LeaderWorkerSet', 'm-kserve-mn');
  assert.deepEqual(planPrune([lws], [deployment, lws], 'svc-uid'), [deployment]);
});

test('objects of another owner, or already deleting, are never pruned; versions do not matter', () => {
  const foreign = owned('apps/v1', 'Deployment', 'x', 'other-uid');
  const deleting = owned('v1', 'Service', 'y');
  deleting.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
  const pool = owned('inference.networking.k8s.io/v1', 'InferencePool', 'm-inference-pool');
  const poolDesiredOtherVersion = owned(
    'inference.networking.k8s.io/v1',
    'InferencePool',
    'm-inference-pool',
  );
  assert.deepEqual(planPrune([poolDesiredOtherVersion], [foreign, deleting, pool], 'svc-uid'), []);
});

test('roles from kind and name suffix', () => {
  assert.equal(childRole(owned('apps/v1', 'Deployment', 'm-kserve')), 'main-workload');
  assert.equal(childRole(owned('apps/v1', 'Deployment', 'm-kserve-prefill')), 'prefill-workload');
  assert.equal(childRole(owned('apps/v1', 'Deployment', 'm-kserve-router-scheduler')), 'scheduler-workload');
  assert.equal(childRole(owned('gateway.networking.k8s.io/v1', 'HTTPRoute', 'm-kserve-route')), 'route');
  assert.equal(childRole(owned('v1', 'Service', 'm-kserve-workload-svc')), 'other');
  assert.equal(ownerKey(owned('v1', 'Service', 's')), 'ns/m');
});
