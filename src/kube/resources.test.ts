import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourcePath, splitApiVersion, splitKey, objectKey } from './resources.js';

const deployments = {
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  namespaced: true,
};
const namespaces = { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false };

test('paths for core and group resources, namespaced and cluster-scoped', () => {
  assert.equal(resourcePath(deployments), '/apis/apps/v1/deployments');
  assert.equal(
    resourcePath(deployments, 'ns', 'web', 'status'),
    '/apis/apps/v1/namespaces/ns/deployments/web/status',
  );
  assert.equal(resourcePath(namespaces, 'ignored', 'default'), '/api/v1/namespaces/default');
});

test('apiVersion and key helpers', () => {
  assert.deepEqual(splitApiVersion('v1'), { group: '', version: 'v1' });
  assert.deepEqual(splitApiVersion('gateway.networking.k8s.io/v1'), {
    group: 'gateway.networking.k8s.io',
    version: 'v1',
  });
  assert.equal(objectKey({ metadata: { name: 'a', namespace: 'n' } }), 'n/a');
  assert.deepEqual(splitKey('n/a'), { namespace: 'n', name: 'a' });
  assert.deepEqual(splitKey('a'), { namespace: undefined, name: 'a' });
});
