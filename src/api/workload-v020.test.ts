import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { convertObject, quantityValue, validateObject } from './index.js';

function service(spec: Record<string, unknown>, version = 'v1alpha2') {
  return {
    apiVersion: `serving.kserve.io/${version}`,
    kind: 'LLMInferenceService',
    metadata: { name: 'svc' },
    spec: { model: { uri: 'hf://org/model' }, ...spec },
  };
}

function problems(spec: Record<string, unknown>, version = 'v1alpha2'): string[] {
  return validateObject(service(spec, version)).map((p) => `${p.path}: ${p.message}`);
}

const trigger = {
  type: 'prometheus',
  metadata: { serverAddress: 'http://p:9090', query: 'q', threshold: '1' },
};

describe('KServe v0.20 workload fields: accepted', () => {
  const valid: [string, Record<string, unknown>][] = [
    ['wva with an HPA', { scaling: { maxReplicas: 4, wva: { hpa: {} } } }],
    [
      'wva with an HPA behavior and a variant cost',
      {
        scaling: {
          minReplicas: 2,
          maxReplicas: 4,
          wva: { variantCost: '12.5', hpa: { behavior: { scaleDown: { stabilizationWindowSeconds: 60 } } } },
        },
      },
    ],
    [
      'wva with KEDA scaling to zero',
      {
        scaling: {
          maxReplicas: 4,
          wva: {
            keda: {
              pollingInterval: 5,
              cooldownPeriod: 0,
              initialCooldownPeriod: 300,
              idleReplicaCount: 0,
              fallback: { failureThreshold: 3, replicas: 1, behavior: 'currentReplicasIfHigher' },
              advanced: { restoreToOriginalReplicaCount: true },
            },
          },
        },
      },
    ],
    ['KEDA with triggers', { scaling: { maxReplicas: 3, keda: { triggers: [trigger] } } }],
    [
      'KEDA trigger fields KEDA adds later',
      { scaling: { maxReplicas: 3, keda: { triggers: [{ type: 'cpu', x: 1 }] } } },
    ],
    ['prefill scaling', { prefill: { scaling: { maxReplicas: 2, wva: { keda: {} } } } }],
    ['rollout ints and percentages', { rolloutStrategy: { maxUnavailable: 0, maxSurge: '30%' } }],
    ['rollout on a LeaderWorkerSet with maxSurge', { rolloutStrategy: { maxUnavailable: 0, maxSurge: 1 } }],
    ['kv cache on CPU only', { kvCacheOffloading: { cpu: '10Gi' } }],
    ['kv cache size in bytes', { kvCacheOffloading: { cpu: 1073741824, evictionPolicy: 'arc' } }],
    [
      'kv cache with every tier kind',
      {
        kvCacheOffloading: {
          cpu: '4Gi',
          evictionPolicy: 'lru',
          secondary: [
            { fileSystem: { emptyDir: { size: '100Gi' } } },
            { fileSystem: { pvc: { spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'nvme' } } } },
            { fileSystem: { pvc: { ref: { name: 'shared', path: 'kv/' } } } },
          ],
        },
      },
    ],
    ['tracing with defaults', { tracing: {} }],
    [
      'tracing with every field',
      {
        tracing: {
          exporterEndpoint: 'https://otel.example:4317',
          sampler: 'traceidratio',
          samplerArg: '1',
          exporter: 'otlp',
        },
      },
    ],
  ];
  for (const [name, spec] of valid) {
    it(name, () => assert.deepEqual(problems(spec), []));
  }

  it('accepts the same fields in v1alpha1', () => {
    assert.deepEqual(
      problems(
        { scaling: { maxReplicas: 2, wva: { hpa: {} } }, rolloutStrategy: { maxSurge: 1 }, tracing: {} },
        'v1alpha1',
      ),
      [],
    );
  });
});

describe('KServe v0.20 workload fields: rejected with the field and what to do', () => {
  const invalid: [string, Record<string, unknown>, string, RegExp][] = [
    [
      'replicas with scaling',
      { replicas: 2, scaling: { maxReplicas: 4, wva: { hpa: {} } } },
      'spec.scaling',
      /spec\.replicas and spec\.scaling cannot both be set/,
    ],
    [
      'prefill replicas with scaling',
      { prefill: { replicas: 1, scaling: { maxReplicas: 4, wva: { hpa: {} } } } },
      'spec.prefill.scaling',
      /spec\.prefill\.replicas and spec\.prefill\.scaling/,
    ],
    [
      'scaling without maxReplicas',
      { scaling: { wva: { hpa: {} } } },
      'spec.scaling.maxReplicas',
      /is required/,
    ],
    [
      'scaling with neither wva nor keda',
      { scaling: { maxReplicas: 2 } },
      'spec.scaling',
      /needs wva .* or keda/,
    ],
    [
      'a KEDA trigger on a cluster-wide credential',
      {
        scaling: {
          maxReplicas: 2,
          keda: {
            triggers: [
              {
                ...trigger,
                metadata: { serverAddress: 'http://collector.attacker.example' },
                authenticationRef: { name: 'prometheus-creds', kind: 'ClusterTriggerAuthentication' },
              },
            ],
          },
        },
      },
      'spec.scaling.keda.triggers[0].authenticationRef.kind',
      /must be TriggerAuthentication .*cluster-wide credential/,
    ],
    [
      'scaling with wva and keda',
      { scaling: { maxReplicas: 2, wva: { hpa: {} }, keda: { triggers: [trigger] } } },
      'spec.scaling',
      /cannot both be set/,
    ],
    [
      'minReplicas above maxReplicas',
      { scaling: { minReplicas: 3, maxReplicas: 2, wva: { hpa: {} } } },
      'spec.scaling.minReplicas',
      /more than maxReplicas/,
    ],
    [
      'minReplicas 0 (scale to zero is idleReplicaCount)',
      { scaling: { minReplicas: 0, maxReplicas: 2, wva: { hpa: {} } } },
      'spec.scaling.minReplicas',
      /1 or more/,
    ],
    [
      'wva without an actuator',
      { scaling: { maxReplicas: 2, wva: {} } },
      'spec.scaling.wva',
      /needs an actuator/,
    ],
    [
      'wva with both actuators',
      { scaling: { maxReplicas: 2, wva: { hpa: {}, keda: {} } } },
      'spec.scaling.wva',
      /hpa and keda cannot both be set/,
    ],
    [
      'a variantCost that is not a number',
      { scaling: { maxReplicas: 2, wva: { variantCost: '-1', hpa: {} } } },
      'spec.scaling.wva.variantCost',
      /non-negative number/,
    ],
    [
      'idleReplicaCount not below minReplicas',
      { scaling: { minReplicas: 2, maxReplicas: 4, wva: { keda: { idleReplicaCount: 2 } } } },
      'spec.scaling.wva.keda.idleReplicaCount',
      /less than minReplicas \(2\)/,
    ],
    [
      'idleReplicaCount 1 with the default minReplicas',
      { scaling: { maxReplicas: 4, keda: { idleReplicaCount: 1, triggers: [trigger] } } },
      'spec.scaling.keda.idleReplicaCount',
      /less than minReplicas \(1\)/,
    ],
    [
      'KEDA without triggers',
      { scaling: { maxReplicas: 4, keda: { triggers: [] } } },
      'spec.scaling.keda.triggers',
      /at least one trigger/,
    ],
    [
      'a trigger without a type',
      { scaling: { maxReplicas: 4, keda: { triggers: [{ metadata: {} }] } } },
      'spec.scaling.keda.triggers[0].type',
      /is required/,
    ],
    [
      'scaling modifiers under WVA',
      {
        scaling: { maxReplicas: 4, wva: { keda: { advanced: { scalingModifiers: { formula: 'a + b' } } } } },
      },
      'spec.scaling.wva.keda.advanced.scalingModifiers',
      /must not be set/,
    ],
    [
      'an HPA name under WVA',
      {
        scaling: {
          maxReplicas: 4,
          wva: { keda: { advanced: { horizontalPodAutoscalerConfig: { name: 'x' } } } },
        },
      },
      'spec.scaling.wva.keda.advanced.horizontalPodAutoscalerConfig.name',
      /must not be set/,
    ],
    [
      'a fallback without replicas',
      { scaling: { maxReplicas: 4, wva: { keda: { fallback: { failureThreshold: 3 } } } } },
      'spec.scaling.wva.keda.fallback.replicas',
      /is required/,
    ],
    [
      'an unknown scaling field',
      { scaling: { maxReplicas: 4, wva: { hpa: {} }, max: 3 } },
      'spec.scaling.max',
      /unknown field/,
    ],
    [
      'maxSurge that is not a percentage',
      { rolloutStrategy: { maxSurge: 'half' } },
      'spec.rolloutStrategy.maxSurge',
      /whole number \(pods\) or a percentage/,
    ],
    [
      'both rollout values 0',
      { rolloutStrategy: { maxUnavailable: '0%', maxSurge: 0 } },
      'spec.rolloutStrategy',
      /cannot both be 0/,
    ],
    [
      'maxUnavailable 0 on a LeaderWorkerSet, whose maxSurge defaults to 0',
      {
        worker: {},
        parallelism: { data: 4, dataLocal: 2 },
        rolloutStrategy: { maxUnavailable: 0 },
      },
      'spec.rolloutStrategy',
      /maxSurge defaults to 0 here/,
    ],
    ['kv cache without cpu', { kvCacheOffloading: {} }, 'spec.kvCacheOffloading.cpu', /is required/],
    [
      'kv cache cpu not a size',
      { kvCacheOffloading: { cpu: '10 GB' } },
      'spec.kvCacheOffloading.cpu',
      /must be a size/,
    ],
    ['kv cache cpu of 0', { kvCacheOffloading: { cpu: '0Gi' } }, 'spec.kvCacheOffloading.cpu', /more than 0/],
    [
      'an unknown eviction policy',
      { kvCacheOffloading: { cpu: '1Gi', evictionPolicy: 'fifo' } },
      'spec.kvCacheOffloading.evictionPolicy',
      /lru or arc/,
    ],
    [
      'a tier with emptyDir and pvc',
      {
        kvCacheOffloading: {
          cpu: '1Gi',
          secondary: [{ fileSystem: { emptyDir: { size: '1Gi' }, pvc: { ref: { name: 'c' } } } }],
        },
      },
      'spec.kvCacheOffloading.secondary[0].fileSystem',
      /exactly one of emptyDir or pvc/,
    ],
    [
      'a pvc tier with neither spec nor ref',
      { kvCacheOffloading: { cpu: '1Gi', secondary: [{ fileSystem: { pvc: {} } }] } },
      'spec.kvCacheOffloading.secondary[0].fileSystem.pvc',
      /exactly one of spec .* or ref/,
    ],
    [
      'a tier without fileSystem',
      { kvCacheOffloading: { cpu: '1Gi', secondary: [{}] } },
      'spec.kvCacheOffloading.secondary[0].fileSystem',
      /is required/,
    ],
    [
      'an unknown sampler',
      { tracing: { sampler: 'sometimes' } },
      'spec.tracing.sampler',
      /must be one of always_on/,
    ],
    [
      'a sampler ratio above 1',
      { tracing: { samplerArg: '1.5' } },
      'spec.tracing.samplerArg',
      /from "0" to "1"/,
    ],
    [
      'an endpoint without a scheme',
      { tracing: { exporterEndpoint: 'collector:4317' } },
      'spec.tracing.exporterEndpoint',
      /http/,
    ],
    ['tracing under prefill', { prefill: { tracing: {} } }, 'spec.prefill.tracing', /unknown field/],
  ];
  for (const [name, spec, path, message] of invalid) {
    it(name, () => {
      const found = validateObject(service(spec)).filter((p) => p.path === path);
      assert.ok(
        found.some((p) => message.test(p.message)),
        `expected ${path}: ${message}; got:\n${problems(spec).join('\n')}`,
      );
    });
  }
});

describe('conversion keeps the v0.20 fields', () => {
  it('round-trips scaling, rolloutStrategy, kvCacheOffloading and tracing through v1alpha1', () => {
    const object = service({
      scaling: { maxReplicas: 4, wva: { keda: { idleReplicaCount: 0 } } },
      rolloutStrategy: { maxSurge: '50%' },
      kvCacheOffloading: { cpu: '8Gi', secondary: [{ fileSystem: { emptyDir: { size: '10Gi' } } }] },
      tracing: { samplerArg: '0.2' },
      prefill: { scaling: { maxReplicas: 2, keda: { triggers: [trigger] } } },
    });
    const v1 = convertObject(object, 'v1alpha1');
    assert.deepEqual(v1.spec, object.spec);
    assert.deepEqual(validateObject(v1), []);
    assert.deepEqual(convertObject(v1, 'v1alpha2'), object);
  });
});

describe('quantityValue', () => {
  const cases: [string | number, number | undefined][] = [
    ['10Gi', 10 * 2 ** 30],
    ['500M', 5e8],
    ['1.5Ki', 1536],
    ['1e3', 1000],
    ['100m', 1],
    [2048, 2048],
    ['10 GB', undefined],
    ['Gi', undefined],
  ];
  for (const [input, bytes] of cases) {
    it(`${JSON.stringify(input)} → ${bytes}`, () => assert.equal(quantityValue(input), bytes));
  }
});
