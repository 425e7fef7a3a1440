import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LLMInferenceService } from '../api/index.js';
import {
  DEFAULT_API_VERSIONS,
  DEFAULT_RENDER_OPTIONS,
  type KubeObject,
  type RenderOptions,
  renderService,
} from './index.js';

type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function service(spec: LLMInferenceService['spec']): LLMInferenceService {
  return {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name: 'svc', namespace: 'ns', uid: 'u-1' },
    spec: { model: { uri: 'hf://org/model', name: 'org/model' }, ...spec },
  };
}

function render(
  spec: LLMInferenceService['spec'],
  options: Partial<RenderOptions> = {},
  apiVersions = DEFAULT_API_VERSIONS,
) {
  return renderService({
    service: service(spec),
    configs: [],
    apiVersions,
    options: { ...DEFAULT_RENDER_OPTIONS, ...options },
  });
}

function find(children: KubeObject[], kind: string, name?: string): Loose {
  const found = children.find((c) => c.kind === kind && (name === undefined || c.metadata['name'] === name));
  assert.ok(found, `no ${kind} ${name ?? ''} among ${children.map((c) => c.kind).join(', ')}`);
  return found;
}

const trigger = { type: 'cpu', metadata: { value: '60' } };

describe('autoscaling: scaling.wva with an HPA', () => {
  const out = render({ scaling: { maxReplicas: 5, wva: { hpa: {} } } });

  it('leaves the Deployment replicas to the autoscaler', () => {
    assert.equal('replicas' in find(out.children, 'Deployment', 'svc-kserve')['spec'], false);
  });

  it('targets the Deployment with wva_desired_replicas of this variant, from minReplicas 1', () => {
    const hpa = find(out.children, 'HorizontalPodAutoscaler', 'svc-kserve-hpa');
    assert.deepEqual(hpa['spec'], {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'svc-kserve' },
      minReplicas: 1,
      maxReplicas: 5,
      metrics: [
        {
          type: 'External',
          external: {
            metric: {
              name: 'wva_desired_replicas',
              selector: { matchLabels: { variant_name: 'svc-kserve-va', exported_namespace: 'ns' } },
            },
            target: { type: 'AverageValue', averageValue: '1' },
          },
        },
      ],
    });
    assert.equal(hpa['metadata']['ownerReferences'][0].uid, 'u-1');
  });

  it('names the variant in a VariantAutoscaling with the default cost', () => {
    const va = find(out.children, 'VariantAutoscaling', 'svc-kserve-va');
    assert.equal(va['apiVersion'], 'llmd.ai/v1alpha1');
    assert.deepEqual(va['spec'], {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'svc-kserve' },
      modelID: 'org/model',
      variantCost: '10.0',
    });
    assert.equal(va['metadata']['labels']['inference.optimization/acceleratorName'], 'unknown');
  });

  it('needs the external metrics API and WVA, and applies the autoscalers after the workloads', () => {
    assert.deepEqual(out.needs.map((n) => n.feature).sort(), ['external-metrics', 'wva']);
    const kinds = out.children.map((c) => c.kind);
    assert.ok(kinds.lastIndexOf('Deployment') < kinds.indexOf('VariantAutoscaling'));
    assert.ok(kinds.indexOf('VariantAutoscaling') < kinds.indexOf('HorizontalPodAutoscaler'));
  });

  it('uses llm-d.ai annotations instead of a VariantAutoscaling when so configured', () => {
    const annotated = render(
      { scaling: { maxReplicas: 5, wva: { variantCost: '3', hpa: {} } } },
      { autoscaling: { ...DEFAULT_RENDER_OPTIONS.autoscaling, wvaDiscovery: 'annotations' } },
    );
    assert.equal(
      annotated.children.some((c) => c.kind === 'VariantAutoscaling'),
      false,
    );
    const hpa = find(annotated.children, 'HorizontalPodAutoscaler');
    assert.deepEqual(hpa['metadata']['annotations'], {
      'llm-d.ai/managed': 'true',
      'llm-d.ai/model-id': 'org/model',
      'llm-d.ai/variant-cost': '3',
    });
    assert.equal(hpa['spec']['metrics'][0].external.metric.selector.matchLabels.variant_name, 'svc-kserve');
    assert.deepEqual(
      annotated.needs.map((n) => n.feature),
      ['external-metrics'],
    );
  });
});

describe('autoscaling: scaling.wva with KEDA', () => {
  const out = render(
    {
      worker: { containers: [{ name: 'main' }] },
      parallelism: { data: 4, dataLocal: 2 },
      scaling: {
        minReplicas: 2,
        maxReplicas: 6,
        wva: { keda: { idleReplicaCount: 0, pollingInterval: 10 } },
      },
    },
    {
      autoscaling: {
        prometheusUrl: 'https://prom.monitoring:9090',
        prometheusUnsafeSsl: true,
        wvaDiscovery: 'VariantAutoscaling',
      },
    },
  );

  it('targets the LeaderWorkerSet and queries Prometheus from the controller configuration', () => {
    const so = find(out.children, 'ScaledObject', 'svc-kserve-mn-keda');
    assert.equal(so['apiVersion'], 'keda.sh/v1alpha1');
    assert.deepEqual(so['spec'], {
      scaleTargetRef: {
        apiVersion: 'leaderworkerset.x-k8s.io/v1',
        kind: 'LeaderWorkerSet',
        name: 'svc-kserve-mn',
      },
      minReplicaCount: 2,
      maxReplicaCount: 6,
      idleReplicaCount: 0,
      pollingInterval: 10,
      triggers: [
        {
          type: 'prometheus',
          name: 'wva-desired-replicas',
          metadata: {
            serverAddress: 'https://prom.monitoring:9090',
            query: 'wva_desired_replicas{variant_name="svc-kserve-mn-va",exported_namespace="ns"}',
            threshold: '1',
            unsafeSsl: 'true',
          },
        },
      ],
    });
    assert.equal('replicas' in find(out.children, 'LeaderWorkerSet')['spec'], false);
  });

  it('leaves the ScaledObject out, and names KEDA, on a cluster without KEDA', () => {
    const without = render(
      { scaling: { maxReplicas: 2, wva: { keda: {} } } },
      {},
      new Set([...DEFAULT_API_VERSIONS].filter((v) => v !== 'keda.sh/v1alpha1')),
    );
    assert.equal(
      without.children.some((c) => c.kind === 'ScaledObject'),
      false,
    );
    assert.deepEqual(
      without.missing.map((m) => [m.dependency, m.apiVersions[0]]),
      [['keda', 'keda.sh/v1alpha1']],
    );
  });
});

describe('autoscaling: scaling.keda with triggers', () => {
  it('passes the triggers and KEDA settings through, for decode and prefill separately', () => {
    const out = render({
      replicas: undefined,
      scaling: { maxReplicas: 4, keda: { cooldownPeriod: 30, triggers: [trigger] } },
      prefill: { scaling: { minReplicas: 2, maxReplicas: 3, keda: { triggers: [trigger, trigger] } } },
      router: { scheduler: {} },
    });
    const decode = find(out.children, 'ScaledObject', 'svc-kserve-keda');
    assert.deepEqual(decode['spec'], {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'svc-kserve' },
      minReplicaCount: 1,
      maxReplicaCount: 4,
      cooldownPeriod: 30,
      triggers: [trigger],
    });
    const prefill = find(out.children, 'ScaledObject', 'svc-kserve-prefill-keda');
    assert.equal(prefill['spec']['scaleTargetRef'].name, 'svc-kserve-prefill');
    assert.equal(
      prefill['metadata']['labels']['app.kubernetes.io/component'],
      'llminferenceservice-workload-prefill',
    );
    assert.equal(
      out.children.some((c) => c.kind === 'VariantAutoscaling'),
      false,
    );
    assert.deepEqual(
      out.needs.map((n) => n.feature),
      ['scheduler', 'keda'],
    );
  });
});
