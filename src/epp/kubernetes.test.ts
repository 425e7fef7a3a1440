import { test } from 'node:test';
import assert from 'node:assert/strict';
import { directoryFrom, endpointsFromPods, labelSelectorString, poolSpecOf, type Pod } from './kubernetes.js';
import { parseEndpointList } from './datastore.js';

function pod(
  name: string,
  ip: string | undefined,
  labels: Record<string, string>,
  ready = true,
  deleting = false,
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels, ...(deleting ? { deletionTimestamp: new Date().toISOString() } : {}) },
    status: {
      ...(ip ? { podIP: ip } : {}),
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    },
  };
}

test('InferencePool v1 and v1alpha2 specs', () => {
  assert.deepEqual(
    poolSpecOf({
      spec: { selector: { matchLabels: { app: 'x' } }, targetPorts: [{ number: 8000 }, { number: 8001 }] },
    }),
    {
      selector: { app: 'x' },
      targetPorts: [8000, 8001],
    },
  );
  assert.deepEqual(poolSpecOf({ spec: { selector: { app: 'y' }, targetPortNumber: 8000 } }), {
    selector: { app: 'y' },
    targetPorts: [8000],
  });
  assert.equal(poolSpecOf({ spec: { selector: {}, targetPortNumber: 8000 } }), undefined);
  assert.equal(labelSelectorString({ b: '2', a: '1' }), 'a=1,b=2');
});

test('Ready pods with IPs become endpoints, one per target port, with their role', () => {
  const spec = { selector: { app: 'llm' }, targetPorts: [8000] };
  const pods = [
    pod('p1', '10.0.0.1', { app: 'llm', 'llm-d.ai/role': 'prefill' }),
    pod('p2', '10.0.0.2', { app: 'llm', 'llm-d.ai/role': 'decode' }),
    pod('p3', '10.0.0.3', { app: 'llm' }),
    pod('not-ready', '10.0.0.4', { app: 'llm' }, false),
    pod('no-ip', undefined, { app: 'llm' }),
    pod('deleting', '10.0.0.5', { app: 'llm' }, true, true),
    pod('other', '10.0.0.6', { app: 'other' }),
  ];
  assert.deepEqual(
    endpointsFromPods(spec, pods).map((e) => [e.address, e.name, e.role]),
    [
      ['10.0.0.1:8000', 'p1', 'prefill'],
      ['10.0.0.2:8000', 'p2', 'decode'],
      ['10.0.0.3:8000', 'p3', 'both'],
    ],
  );
  assert.deepEqual(
    endpointsFromPods({ selector: { app: 'llm' }, targetPorts: [8000, 8001] }, [pods[2]!]).map((e) => [
      e.address,
      e.name,
    ]),
    [
      ['10.0.0.3:8000', 'p3-rank-0'],
      ['10.0.0.3:8001', 'p3-rank-1'],
    ],
  );
});

test('InferenceModels and InferenceObjectives of the pool form the model directory', () => {
  const d = directoryFrom(
    [
      {
        metadata: { name: 'a' },
        spec: {
          modelName: 'chat',
          criticality: 'Sheddable',
          poolRef: { name: 'pool' },
          targetModels: [{ name: 'lora-1', weight: 10 }],
        },
      },
      { metadata: { name: 'b' }, spec: { modelName: 'other-pool', poolRef: { name: 'elsewhere' } } },
    ],
    [
      { metadata: { name: 'batch' }, spec: { priority: -1, poolRef: { name: 'pool' } } },
      { metadata: { name: 'foreign' }, spec: { priority: 5, poolRef: { name: 'elsewhere' } } },
    ],
    'pool',
  );
  assert.deepEqual(
    [...d.models],
    [['chat', { criticality: 'Sheddable', targets: [{ name: 'lora-1', weight: 10 }] }]],
  );
  assert.deepEqual([...d.objectives], [['batch', -1]]);
});

test('--endpoints parsing', () => {
  assert.deepEqual(parseEndpointList('127.0.0.1:8001, 127.0.0.1:8002,role=prefill,[::1]:9000,role=decode'), [
    { address: '127.0.0.1:8001', role: 'both' },
    { address: '127.0.0.1:8002', role: 'prefill', labels: { 'llm-d.ai/role': 'prefill' } },
    { address: '[::1]:9000', role: 'decode', labels: { 'llm-d.ai/role': 'decode' } },
  ]);
  for (const bad of ['role=prefill', 'host', 'h:0', 'h:1,role=gpu', 'h:1,h:1']) {
    assert.throws(() => parseEndpointList(bad), /--endpoints/, bad);
  }
});
