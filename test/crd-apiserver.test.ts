// The generated CRDs on a real kube-apiserver (the shared one of `npm test`): every example is accepted as written,
// and the CEL rules in the CRD reject what the API server can check by itself, with our messages.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import type { LLMInferenceService } from '../src/api/index.js';
import { KubeClient, statusMessage } from '../src/kube/index.js';
import { DEFAULT_API_VERSIONS, DEFAULT_RENDER_OPTIONS, renderService } from '../src/render/index.js';
import { REPO_ROOT } from './harness/repo.js';

const kubeconfig = process.env['LLMISVC_TEST_KUBECONFIG'];
const kubectl = process.env['LLMISVC_KUBECTL'];
const NAMESPACE = 'crd-test';
const BASE = `/apis/serving.kserve.io/v1alpha2/namespaces/${NAMESPACE}/llminferenceservices`;

function service(name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name, namespace: NAMESPACE },
    spec,
  };
}

describe(
  'generated CRDs on a real API server',
  { skip: kubeconfig ? false : 'needs LLMISVC_TEST_KUBECONFIG (npm test sets it)' },
  () => {
    let client: KubeClient;

    before(async () => {
      client = await KubeClient.create({ kubeconfig: kubeconfig!, requestTimeoutMs: 30_000 });
      const created = await client.send('POST', '/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: NAMESPACE },
      });
      assert.ok([201, 409].includes(created.status), statusMessage(created));
    });
    after(() => client?.close());

    it('accepts every example as written', async () => {
      for (const file of readdirSync(join(REPO_ROOT, 'examples')).filter((f) => f.endsWith('.yaml'))) {
        // A file may hold several services (a routing group's members).
        for (const doc of parseAllDocuments(readFileSync(join(REPO_ROOT, 'examples', file), 'utf8'))) {
          const object = doc.toJS() as {
            metadata: Record<string, unknown>;
          };
          object.metadata['namespace'] = NAMESPACE;
          const response = await client.send('POST', BASE, object);
          assert.equal(response.status, 201, `${file}: ${statusMessage(response)}`);
          const read = await client.send('GET', `${BASE}/${String(object.metadata['name'])}`);
          assert.deepEqual(
            (read.body as { spec: unknown }).spec,
            (object as unknown as { spec: unknown }).spec,
            `${file} lost fields on the way in`,
          );
        }
      }
    });

    const rejected: [string, Record<string, unknown>, RegExp][] = [
      [
        'an Ingress beside a route',
        { router: { ingress: { refs: [{ name: 'edge' }] }, route: {} } },
        /ingress cannot be set together with route or gateway/,
      ],
      [
        'worker without parallelism',
        { worker: { containers: [] } },
        /worker needs data or pipeline parallelism/,
      ],
      [
        'pipeline with data',
        { parallelism: { pipeline: 2, data: 2, dataLocal: 1 } },
        /pipeline cannot be combined with data/,
      ],
      ['data without dataLocal', { parallelism: { data: 2 } }, /data and dataLocal must be set together/],
      [
        'route refs with a spec',
        { router: { route: { http: { refs: [{ name: 'r' }], spec: {} } } } },
        /refs and spec cannot both be set/,
      ],
      [
        'scheduler config with neither',
        { router: { scheduler: { config: {} } } },
        /set exactly one of inline/,
      ],
      ['replicas below 0', { replicas: -1 }, /spec.replicas: Invalid value: -1/],
      ['tensor below 1', { parallelism: { tensor: 0 } }, /spec.parallelism.tensor/],
      // KServe v0.20 workload fields.
      [
        'replicas with scaling',
        { replicas: 2, scaling: { maxReplicas: 4, wva: { hpa: {} } } },
        /replicas and scaling cannot both be set/,
      ],
      [
        'prefill replicas with scaling',
        { prefill: { replicas: 2, scaling: { maxReplicas: 4, wva: { hpa: {} } } } },
        /spec.prefill: Invalid value.*replicas and scaling cannot both be set/,
      ],
      ['scaling without wva or keda', { scaling: { maxReplicas: 4 } }, /set exactly one of wva .* or keda/],
      [
        'scaling with wva and keda',
        { scaling: { maxReplicas: 4, wva: { hpa: {} }, keda: { triggers: [{ type: 'cpu' }] } } },
        /set exactly one of wva .* or keda/,
      ],
      [
        'scaling without maxReplicas',
        { scaling: { wva: { hpa: {} } } },
        /spec.scaling.maxReplicas: Required/,
      ],
      [
        'minReplicas above maxReplicas',
        { scaling: { minReplicas: 5, maxReplicas: 4, wva: { hpa: {} } } },
        /minReplicas cannot exceed maxReplicas/,
      ],
      [
        'wva with hpa and keda',
        { scaling: { maxReplicas: 4, wva: { hpa: {}, keda: {} } } },
        /set exactly one of hpa or keda/,
      ],
      ['wva without an actuator', { scaling: { maxReplicas: 4, wva: {} } }, /set exactly one of hpa or keda/],
      [
        'idleReplicaCount not below the default minReplicas',
        { scaling: { maxReplicas: 4, wva: { keda: { idleReplicaCount: 1 } } } },
        /idleReplicaCount must be less than minReplicas/,
      ],
      [
        'keda idleReplicaCount not below minReplicas',
        {
          scaling: {
            minReplicas: 2,
            maxReplicas: 4,
            keda: { idleReplicaCount: 2, triggers: [{ type: 'cpu', metadata: { value: '50' } }] },
          },
        },
        /keda.idleReplicaCount must be less than minReplicas/,
      ],
      [
        'keda without triggers',
        { scaling: { maxReplicas: 4, keda: { triggers: [] } } },
        /spec.scaling.keda.triggers: Invalid value/,
      ],
      [
        'wva keda scaling modifiers',
        { scaling: { maxReplicas: 4, wva: { keda: { advanced: { scalingModifiers: { formula: 'x' } } } } } },
        /scalingModifiers must not be set/,
      ],
      [
        'wva keda HPA name',
        {
          scaling: {
            maxReplicas: 4,
            wva: { keda: { advanced: { horizontalPodAutoscalerConfig: { name: 'mine' } } } },
          },
        },
        /horizontalPodAutoscalerConfig.name must not be set/,
      ],
      [
        'a variantCost that is not a number',
        { scaling: { maxReplicas: 4, wva: { variantCost: 'cheap', hpa: {} } } },
        /spec.scaling.wva.variantCost/,
      ],
      [
        'rollout with maxUnavailable and maxSurge 0',
        { rolloutStrategy: { maxUnavailable: 0, maxSurge: '0%' } },
        /maxUnavailable and maxSurge cannot both be 0/,
      ],
      [
        'rollout maxSurge not a percentage',
        { rolloutStrategy: { maxSurge: 'half' } },
        /spec.rolloutStrategy.maxSurge/,
      ],
      ['kv cache cpu not a size', { kvCacheOffloading: { cpu: 'lots' } }, /spec.kvCacheOffloading.cpu/],
      ['kv cache without cpu', { kvCacheOffloading: {} }, /spec.kvCacheOffloading.cpu: Required/],
      [
        'kv cache eviction policy',
        { kvCacheOffloading: { cpu: '1Gi', evictionPolicy: 'fifo' } },
        /evictionPolicy/,
      ],
      ['tracing sampler', { tracing: { sampler: 'sometimes' } }, /spec.tracing.sampler/],
      [
        'a kv cache tier with emptyDir and pvc',
        {
          kvCacheOffloading: {
            cpu: '1Gi',
            secondary: [{ fileSystem: { emptyDir: { size: '1Gi' }, pvc: { ref: { name: 'c' } } } }],
          },
        },
        /exactly one of emptyDir or pvc/,
      ],
      [
        'a kv cache pvc tier with spec and ref',
        {
          kvCacheOffloading: {
            cpu: '1Gi',
            secondary: [{ fileSystem: { pvc: { spec: {}, ref: { name: 'c' } } } }],
          },
        },
        /exactly one of spec .* or ref/,
      ],
      [
        'a routing group that is not a DNS label',
        { router: { route: { group: 'Canary_1', weight: 10 } } },
        /spec.router.route.group/,
      ],
      [
        'a route weight above 1000000',
        { router: { route: { group: 'g', weight: 1_000_001 } } },
        /spec.router.route.weight/,
      ],
      [
        'a negative route weight',
        { router: { route: { group: 'g', weight: -1 } } },
        /spec.router.route.weight/,
      ],
      [
        'a route weight without a group',
        { router: { route: { weight: 10 } } },
        /group and weight must be set together/,
      ],
      [
        'a routing group without a weight',
        { router: { route: { group: 'g' } } },
        /group and weight must be set together/,
      ],
      [
        'a routing group on existing HTTPRoutes',
        { router: { route: { group: 'g', weight: 1, http: { refs: [{ name: 'mine' }] } } } },
        /group cannot be used with http.refs/,
      ],
    ];
    for (const [name, spec, message] of rejected) {
      it(`rejects ${name}`, async () => {
        const response = await client.send('POST', BASE, service(`bad-${name.replace(/\W+/g, '-')}`, spec));
        assert.equal(response.status, 422, statusMessage(response));
        assert.match(statusMessage(response), message);
      });
    }

    it(
      'kubectl finds a service by its short name, as KServe users type it',
      { skip: !kubectl && 'needs LLMISVC_KUBECTL' },
      () => {
        // The examples of the test before are in the namespace; `quickstart` is one of them.
        const run = (...args: string[]) =>
          execFileSync(kubectl!, ['--kubeconfig', kubeconfig!, '-n', NAMESPACE, ...args], {
            encoding: 'utf8',
          });
        assert.equal(
          run('get', 'llmisvc', 'quickstart', '-o', 'name').trim(),
          'llminferenceservice.serving.kserve.io/quickstart',
        );
        assert.match(run('get', 'llmisvc'), /^NAME\b[\s\S]*\bquickstart\b/);
        // The category lists both kinds of the project, as `kubectl get kserve` does for KServe's.
        assert.match(
          run('get', 'kserve', '-o', 'name'),
          /llminferenceservice\.serving\.kserve\.io\/quickstart/,
        );
      },
    );

    it('keeps integer quantities as KServe manifests write them, and Kubernetes takes the rendered Deployment', async () => {
      const spec = {
        model: { uri: 'hf://facebook/opt-125m' },
        template: {
          containers: [{ name: 'main', resources: { limits: { cpu: 16, 'nvidia.com/gpu': 8 } } }],
          volumes: [{ name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: 1073741824 } }],
        },
      };
      const created = await client.send('POST', BASE, service('int-quantity', spec));
      assert.equal(created.status, 201, statusMessage(created));
      const read = await client.send('GET', `${BASE}/int-quantity`);
      assert.deepEqual(
        (read.body as { spec: unknown }).spec,
        spec,
        'the pod spec lost or changed its numbers',
      );

      // The numbers stay numbers in the rendered Deployment: the API server reads them as Quantities, as it does
      // for kubectl users, and answers with its canonical strings.
      const { children } = renderService({
        // As read back, so that the owner reference carries the service's uid.
        service: read.body as LLMInferenceService,
        configs: [],
        apiVersions: DEFAULT_API_VERSIONS,
        options: DEFAULT_RENDER_OPTIONS,
      });
      const deployment = children.find((c) => c.kind === 'Deployment')!;
      const applied = await client.send(
        'PATCH',
        `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/${String(deployment.metadata.name)}?fieldManager=crd-test&dryRun=All`,
        deployment,
        'application/apply-patch+yaml',
      );
      assert.equal(applied.status, 201, statusMessage(applied));
      const pod = (
        applied.body as {
          spec: {
            template: {
              spec: {
                containers: { name: string; resources: unknown }[];
                volumes: { name: string; emptyDir?: unknown }[];
              };
            };
          };
        }
      ).spec.template.spec;
      assert.deepEqual(pod.containers.find((c) => c.name === 'main')?.resources, {
        limits: { cpu: '16', 'nvidia.com/gpu': '8' },
      });
      assert.deepEqual(pod.volumes.find((v) => v.name === 'dshm')?.emptyDir, {
        medium: 'Memory',
        sizeLimit: '1073741824',
      });
    });

    it('prunes unknown fields outside the schemaless pod specs', async () => {
      const response = await client.send(
        'POST',
        BASE,
        service('pruned', { replicas: 1, unknownField: true }),
      );
      assert.ok([201, 400].includes(response.status), statusMessage(response));
      if (response.status === 201)
        assert.equal((response.body as { spec: Record<string, unknown> }).spec['unknownField'], undefined);
    });
  },
);
