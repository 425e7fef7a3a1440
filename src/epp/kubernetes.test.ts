import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  directoryFrom,
  endpointsFromPods,
  MAX_TARGET_PORTS,
  mayReferToPool,
  poolSpecOf,
  rewritesFrom,
  slimDirectoryObject,
  slimPod,
  type Pod,
} from './kubernetes.js';
import { decide, type ModelDirectory } from './director.js';
import { defaultEndpointPickerConfig, loadEndpointPickerConfig } from './config.js';
import { endpoint, seededRandom } from '../../test/harness/endpoints.js';
import { parseEndpointList } from './datastore.js';
import { labelSelectorString } from '../kube/index.js';

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
    { name: 'pool', labels: {} },
  );
  assert.deepEqual(
    [...d.models],
    [['chat', { criticality: 'Sheddable', targets: [{ name: 'lora-1', weight: 10 }] }]],
  );
  assert.deepEqual([...d.objectives], [['batch', -1]]);
});

test('InferenceModelRewrites merge as GIE says: exact over generic, the oldest object first, then rule order', () => {
  const rewrite = (name: string, created: string, rules: unknown[], pool = 'pool') => ({
    metadata: { name, creationTimestamp: created },
    spec: { poolRef: { name: pool }, rules },
  });
  const exact = (value: string, to: string, type?: string) => ({
    matches: [{ model: { ...(type ? { type } : {}), value } }],
    targets: [{ modelRewrite: to }],
  });
  const rewrites = rewritesFrom(
    [
      rewrite('newer', '2026-12-02T00:00:00Z', [
        exact('chat', 'chat-newer'),
        { targets: [{ modelRewrite: 'generic-newer' }] },
      ]),
      rewrite('older', '2026-12-01T00:00:00Z', [
        { targets: [{ modelRewrite: 'generic-older' }] },
        exact('chat', 'chat-v1', 'Exact'),
        exact('chat', 'chat-v1-again'),
        // Split 90/10; a target without a weight when none has one weighs 1.
        {
          matches: [{ model: { value: 'canary' } }],
          targets: [
            { modelRewrite: 'a', weight: 90 },
            { modelRewrite: 'b', weight: 10 },
          ],
        },
        {
          matches: [{ model: { type: 'Prefix', value: 'x' } }],
          targets: [{ modelRewrite: 'unsupported-match' }],
        },
        { matches: [{ model: { value: 'empty' } }], targets: [] },
      ]),
      rewrite('other-pool', '2026-01-01T00:00:00Z', [exact('chat', 'wrong')], 'other'),
    ],
    { name: 'pool', labels: {} },
  );
  assert.deepEqual(Object.fromEntries(rewrites.exact), {
    chat: [{ name: 'chat-v1', weight: 1 }],
    canary: [
      { name: 'a', weight: 90 },
      { name: 'b', weight: 10 },
    ],
  });
  assert.deepEqual(rewrites.generic, [{ name: 'generic-older', weight: 1 }]);

  // In a decision: the rewrite applies; an InferenceModel's own targets win; no match is no 404.
  const config = loadEndpointPickerConfig(defaultEndpointPickerConfig);
  const targetOf = (model: string, directory: ModelDirectory) => {
    const d = decide(
      {
        requestId: 'r',
        path: '/v1/completions',
        headers: {},
        body: Buffer.from(JSON.stringify({ model, prompt: 'p' })),
      },
      [endpoint('10.0.0.1:8000')],
      config,
      directory,
      1_000_000,
      seededRandom(1),
    );
    assert.equal(d.kind, 'route');
    return d.kind === 'route' ? d.targetModel : '';
  };
  const directory = { models: new Map(), objectives: new Map(), rewrites };
  assert.equal(targetOf('chat', directory), 'chat-v1');
  assert.equal(targetOf('anything', directory), 'generic-older');
  assert.equal(
    targetOf('anything', { ...directory, rewrites: { exact: new Map(), generic: undefined } }),
    'anything',
  );
  const withModel = {
    ...directory,
    models: new Map([
      ['chat', { criticality: 'Standard' as const, targets: [{ name: 'chat-from-model', weight: 1 }] }],
    ]),
  };
  assert.equal(targetOf('chat', withModel), 'chat-from-model');
});

test("llm-d.ai's InferenceObjectives apply by poolRef, poolRefs or a poolSelector on the pool's labels", () => {
  const objective = (name: string, priority: number, spec: Record<string, unknown>) => ({
    metadata: { name },
    spec: { priority, ...spec },
  });
  const d = directoryFrom(
    [],
    [
      objective('by-ref', 1, { poolRef: { name: 'pool' } }),
      objective('by-refs', 2, { poolRefs: [{ name: 'other' }, { name: 'pool' }] }),
      objective('by-labels', 3, { poolSelector: { matchLabels: { tier: 'gold' } } }),
      objective('by-expression', 4, {
        poolSelector: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] },
      }),
      objective('every-pool', 5, { poolSelector: {} }),
      objective('not-ours', 6, { poolRefs: [{ name: 'other' }] }),
      objective('wrong-labels', 7, { poolSelector: { matchLabels: { tier: 'bronze' } } }),
      objective('no-zone', 8, {
        poolSelector: { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] },
      }),
      // Malformed selectors select nothing (Kubernetes refuses them), rather than everything.
      objective('unknown-operator', 9, {
        poolSelector: { matchExpressions: [{ key: 'zone', operator: 'Gt', values: ['1'] }] },
      }),
      objective('number-label', 10, { poolSelector: { matchLabels: { tier: 5 } } }),
      objective('in-without-values', 11, {
        poolSelector: { matchExpressions: [{ key: 'zone', operator: 'In' }] },
      }),
      objective('labels-as-string', 12, { poolSelector: { matchLabels: 'tier=gold' } }),
    ],
    { name: 'pool', labels: { tier: 'gold', zone: 'b' } },
  );
  assert.deepEqual(Object.fromEntries(d.objectives), {
    'by-ref': 1,
    'by-refs': 2,
    'by-labels': 3,
    'by-expression': 4,
    'every-pool': 5,
  });
});

test('the caches keep only what may apply to the pool, slimmed, and the directory built from them is the same', () => {
  const bulk = {
    annotations: { note: 'x'.repeat(100_000) },
    managedFields: [{ manager: 'm', fieldsV1: {} }],
  };
  const obj = (kind: string, name: string, spec: Record<string, unknown>) => ({
    apiVersion: 'inference.networking.x-k8s.io/v1alpha2',
    kind,
    metadata: { name, namespace: 'ns', resourceVersion: '1', uid: name, ...bulk },
    spec,
    status: { conditions: [{ type: 'Accepted', status: 'True' }] },
  });
  const models = [
    obj('InferenceModel', 'm-ours', {
      modelName: 'chat',
      criticality: 'Critical',
      poolRef: { name: 'pool' },
    }),
    obj('InferenceModel', 'm-other', {
      modelName: 'chat',
      criticality: 'Sheddable',
      poolRef: { name: 'other' },
    }),
  ];
  const objectives = [
    obj('InferenceObjective', 'o-ref', { priority: 3, poolRef: { name: 'pool' } }),
    obj('InferenceObjective', 'o-refs', { priority: 2, poolRefs: [{ name: 'x' }, { name: 'pool' }] }),
    obj('InferenceObjective', 'o-selector', { priority: 1, poolSelector: { matchLabels: { tier: 'gold' } } }),
    obj('InferenceObjective', 'o-other', { priority: 9, poolRef: { name: 'other' } }),
    obj('InferenceObjective', 'o-nothing', { priority: 9 }),
  ];
  const rewrites = [
    obj('InferenceModelRewrite', 'r-ours', {
      poolRef: { name: 'pool' },
      rules: [{ matches: [{ model: { value: 'chat' } }], targets: [{ modelRewrite: 'chat-v2' }] }],
    }),
    obj('InferenceModelRewrite', 'r-other', {
      poolRef: { name: 'other' },
      rules: [{ matches: [{ model: { value: 'chat' } }], targets: [{ modelRewrite: 'elsewhere' }] }],
    }),
  ];
  const cached = <T extends (typeof models)[number]>(list: T[]) =>
    list.filter((o) => mayReferToPool(o, 'pool')).map((o) => slimDirectoryObject(o));
  const pool = { name: 'pool', labels: { tier: 'gold' } };
  assert.deepEqual(
    directoryFrom(cached(models), cached(objectives), pool, cached(rewrites)),
    directoryFrom(models, objectives, pool, rewrites),
  );
  assert.deepEqual(
    [...models, ...objectives, ...rewrites]
      .filter((o) => mayReferToPool(o, 'pool'))
      .map((o) => o.metadata.name),
    ['m-ours', 'o-ref', 'o-refs', 'o-selector', 'r-ours'],
  );
  const slim = slimDirectoryObject(objectives[0]!);
  assert.ok(JSON.stringify(slim).length < 400, JSON.stringify(slim));
  assert.deepEqual(slim.spec, objectives[0]!.spec);
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

test('InferencePool ports the CRD would refuse are left out and said, and at most MAX_TARGET_PORTS are kept', () => {
  const problems: string[] = [];
  const spec = poolSpecOf(
    {
      spec: {
        selector: { matchLabels: { app: 'x' } },
        targetPorts: [
          { number: 0 },
          { number: 65536 },
          { number: 8000.5 },
          { number: '8000' },
          { number: 8000 },
          { number: 8000 },
          ...Array.from({ length: 500 }, (_, i) => ({ number: 9000 + i })),
        ],
      },
    },
    (field, message) => problems.push(`${field}: ${message}`),
  );
  assert.equal(spec!.targetPorts.length, MAX_TARGET_PORTS);
  assert.deepEqual(spec!.targetPorts.slice(0, 2), [8000, 9000]);
  assert.ok(problems.length <= MAX_TARGET_PORTS + 1, `${problems.length} problems said`);
  assert.match(problems[0]!, /^spec\.targetPorts\[0\]\.number: ignored: 0 is not a port number/);
  assert.match(problems.at(-1)!, /too many ports/);
  // Nothing valid: no pool spec.
  assert.equal(poolSpecOf({ spec: { selector: { app: 'x' }, targetPortNumber: 1e308 } }), undefined);
});

test('pod IPs: IPv6 in brackets; what is not an IP address (or one net.connect reads as octal) is left out', () => {
  const spec = { selector: { app: 'x' }, targetPorts: [8000] };
  const endpoints = endpointsFromPods(spec, [
    pod('v6', 'fd00::5', { app: 'x' }),
    pod('mapped', '::ffff:10.0.0.1', { app: 'x' }),
    pod('octal', '010.0.0.1', { app: 'x' }),
    pod('text', 'not-an-ip', { app: 'x' }),
    pod('v4', '10.0.0.2', { app: 'x' }),
  ]);
  assert.deepEqual(endpoints.map((e) => e.address).sort(), [
    '10.0.0.2:8000',
    '[::ffff:10.0.0.1]:8000',
    '[fd00::5]:8000',
  ]);
});

test("the pod cache keeps what the EPP reads, not what the pod's author sized", () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'p',
      namespace: 'ns',
      uid: 'u',
      resourceVersion: '7',
      labels: { app: 'llm', 'llm-d.ai/role': 'decode' },
      annotations: { filler: 'x'.repeat(100_000) },
      managedFields: [{ manager: 'kubectl' }],
    },
    spec: { containers: [{ name: 'vllm', image: 'vllm/vllm-openai', args: ['x'.repeat(10_000)] }] },
    status: { podIP: '10.0.0.5', conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{}] },
  } as unknown as Pod;
  const slim = slimPod(pod);
  assert.ok(JSON.stringify(slim).length < 400, JSON.stringify(slim));
  assert.deepEqual(
    endpointsFromPods({ selector: { app: 'llm' }, targetPorts: [8000] }, [slim]),
    endpointsFromPods({ selector: { app: 'llm' }, targetPorts: [8000] }, [pod]),
  );
});
