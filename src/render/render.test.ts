import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
  parseDocuments,
  toTypedObject,
} from '../api/index.js';
import { ValidationError } from '../errors/index.js';
import {
  DEFAULT_API_VERSIONS,
  DEFAULT_RENDER_OPTIONS,
  type KubeObject,
  lwsGroupSize,
  parseApiVersions,
  renderService,
  type RenderOutput,
} from './index.js';

function service(
  spec: LLMInferenceService['spec'],
  name = 'svc',
  extra: Partial<LLMInferenceService['metadata']> = {},
): LLMInferenceService {
  return {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name, namespace: 'ns', uid: 'u-1', ...extra },
    spec,
  };
}

function render(svc: LLMInferenceService, apiVersions = DEFAULT_API_VERSIONS): RenderOutput {
  return renderService({ service: svc, configs: [], apiVersions, options: DEFAULT_RENDER_OPTIONS });
}

function find(objects: KubeObject[], kind: string, apiVersion?: string): KubeObject[] {
  return objects.filter((o) => o.kind === kind && (apiVersion === undefined || o.apiVersion === apiVersion));
}

function names(objects: KubeObject[]): string[] {
  return objects.map((o) => `${o.kind}/${(o.metadata as { name: string }).name}`);
}

type Json = Record<string, unknown>;
const at = (o: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((v, k) => (v === undefined || v === null ? undefined : (v as Json)[k as string]), o);

describe('lwsGroupSize', () => {
  const cases: [Parameters<typeof lwsGroupSize>[0], number][] = [
    [{ data: 8, dataLocal: 2 }, 4],
    [{ data: 1, dataLocal: 8 }, 1],
    [{ data: 9, dataLocal: 2 }, 4],
    [{ data: 16, dataLocal: 8, tensor: 4 }, 2],
    [{ pipeline: 3, tensor: 8 }, 3],
    [{ tensor: 8 }, 1],
    [undefined, 1],
  ];
  for (const [parallelism, size] of cases) {
    it(`${JSON.stringify(parallelism)} → ${size}`, () => assert.equal(lwsGroupSize(parallelism), size));
  }
});

describe('renderService', () => {
  it('makes a single-node service without a router: a Deployment and its Service only', () => {
    const out = render(service({ model: { uri: 'hf://org/m' }, replicas: 2 }));
    assert.deepEqual(names(out.children), ['Service/svc-kserve-workload-svc', 'Deployment/svc-kserve']);
    assert.deepEqual(out.needs, []);
    const deployment = find(out.children, 'Deployment')[0]!;
    assert.equal(at(deployment, 'spec', 'replicas'), 2);
    assert.equal(at(deployment, 'spec', 'template', 'metadata', 'labels', 'llm-d.ai/role'), 'both');
    assert.deepEqual(at(deployment, 'metadata', 'ownerReferences'), [
      {
        apiVersion: 'serving.kserve.io/v1alpha2',
        kind: 'LLMInferenceService',
        name: 'svc',
        uid: 'u-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    const init = at(deployment, 'spec', 'template', 'spec', 'initContainers') as Json[];
    assert.deepEqual(at(init[0], 'args'), ['hf://org/m', '/mnt/models']);
  });

  it('leaves replicas unset when the spec does, so an autoscaler keeps them', () => {
    const deployment = find(render(service({})).children, 'Deployment')[0]!;
    assert.equal(at(deployment, 'spec', 'replicas'), undefined);
  });

  it("carries the service's network, Kueue, Prometheus and LWS placement keys to its workloads, as KServe does", () => {
    const metadata = {
      labels: { 'kueue.x-k8s.io/queue-name': 'team-a', team: 'ml' },
      annotations: {
        'k8s.v1.cni.cncf.io/networks': 'roce-p2',
        'prometheus.io/scrape': 'true',
        'leaderworkerset.sigs.k8s.io/exclusive-topology': 'rack',
        'example.com/other': 'x',
      },
    };
    const single = find(
      render(service({ annotations: { mine: 'y' } }, 'svc', metadata)).children,
      'Deployment',
    )[0];
    const expectedAnnotations = { 'k8s.v1.cni.cncf.io/networks': 'roce-p2', 'prometheus.io/scrape': 'true' };
    assert.deepEqual(at(single, 'metadata', 'annotations'), expectedAnnotations);
    assert.equal(at(single, 'metadata', 'labels', 'kueue.x-k8s.io/queue-name'), 'team-a');
    assert.equal(at(single, 'metadata', 'labels', 'team'), undefined);
    assert.deepEqual(at(single, 'spec', 'template', 'metadata', 'annotations'), {
      ...expectedAnnotations,
      mine: 'y',
    });
    assert.equal(at(single, 'spec', 'template', 'metadata', 'labels', 'kueue.x-k8s.io/queue-name'), 'team-a');
    // The selector stays the system's: a propagated label never decides which pods a Deployment owns.
    assert.equal(at(single, 'spec', 'selector', 'matchLabels', 'kueue.x-k8s.io/queue-name'), undefined);

    const multi = render(service({ worker: {}, parallelism: { data: 4, dataLocal: 2 } }, 'svc', metadata));
    const [lws] = find(multi.children, 'LeaderWorkerSet');
    const lwsAnnotations = {
      ...expectedAnnotations,
      'leaderworkerset.sigs.k8s.io/exclusive-topology': 'rack',
    };
    assert.deepEqual(at(lws, 'metadata', 'annotations'), lwsAnnotations);
    for (const template of ['leaderTemplate', 'workerTemplate']) {
      assert.deepEqual(
        at(lws, 'spec', 'leaderWorkerTemplate', template, 'metadata', 'annotations'),
        lwsAnnotations,
      );
      assert.equal(
        at(lws, 'spec', 'leaderWorkerTemplate', template, 'metadata', 'labels', 'kueue.x-k8s.io/queue-name'),
        'team-a',
      );
    }
    // Nothing to carry: no annotations at all (a service without them renders as before).
    assert.equal(
      at(find(render(service({})).children, 'Deployment')[0], 'metadata', 'annotations'),
      undefined,
    );
  });

  it('uses a LeaderWorkerSet when there is a worker, sized data / dataLocal', () => {
    const out = render(
      service({ worker: {}, replicas: 2, parallelism: { data: 8, dataLocal: 2, expert: true } }),
    );
    const [lws] = find(out.children, 'LeaderWorkerSet');
    assert.equal(at(lws, 'metadata', 'name'), 'svc-kserve-mn');
    assert.equal(at(lws, 'spec', 'replicas'), 2);
    assert.equal(at(lws, 'spec', 'leaderWorkerTemplate', 'size'), 4);
    assert.equal(at(lws, 'spec', 'leaderWorkerTemplate', 'restartPolicy'), 'RecreateGroupOnPodRestart');
    assert.equal(at(lws, 'spec', 'startupPolicy'), 'LeaderCreated');
    const leaderScript = at(
      lws,
      'spec',
      'leaderWorkerTemplate',
      'leaderTemplate',
      'spec',
      'containers',
      0,
      'args',
      0,
    ) as string;
    const workerScript = at(
      lws,
      'spec',
      'leaderWorkerTemplate',
      'workerTemplate',
      'spec',
      'containers',
      0,
      'args',
      0,
    ) as string;
    for (const flag of [
      '--data-parallel-size 8',
      '--data-parallel-size-local 2',
      '--data-parallel-rpc-port 5555',
      '--enable-expert-parallel',
      '${LWS_WORKER_INDEX:-0} * 2',
    ]) {
      assert.ok(leaderScript.includes(flag), `leader script lacks ${flag}`);
    }
    assert.ok(workerScript.includes('--headless') && !leaderScript.includes('--headless'));
    assert.equal(find(out.children, 'Deployment').length, 0);
    assert.deepEqual(
      out.needs.map((n) => n.feature),
      ['worker'],
    );
    // Only leaders serve the API, so only they join the pool.
    assert.equal(
      at(lws, 'spec', 'leaderWorkerTemplate', 'workerTemplate', 'metadata', 'labels', 'kserve.io/component'),
      undefined,
    );
  });

  it('renders prefill and decode workloads with their roles and the P/D picker config', () => {
    const out = render(service({ prefill: { replicas: 1 }, replicas: 2, router: { scheduler: {} } }));
    const deployments = find(out.children, 'Deployment');
    assert.deepEqual(names(deployments), [
      'Deployment/svc-kserve',
      'Deployment/svc-kserve-prefill',
      'Deployment/svc-kserve-router-scheduler',
    ]);
    assert.equal(at(deployments[0], 'spec', 'template', 'metadata', 'labels', 'llm-d.ai/role'), 'decode');
    assert.equal(at(deployments[1], 'spec', 'template', 'metadata', 'labels', 'llm-d.ai/role'), 'prefill');
    const args = at(deployments[2], 'spec', 'template', 'spec', 'containers', 0, 'args') as string[];
    assert.match(args[args.indexOf('--config-text') + 1]!, /pd-profile-handler/);
  });

  it('writes the pool in the versions the cluster serves, and the InferenceModel on v1alpha2 clusters', () => {
    const svc = service({ router: { scheduler: {}, route: {} } }, 'svc', {
      annotations: { 'serving.kserve.io/criticality': 'Sheddable' },
    });
    const v1 = render(svc);
    assert.deepEqual(names(find(v1.children, 'InferencePool')), ['InferencePool/svc-inference-pool']);
    assert.equal(find(v1.children, 'InferenceModel').length, 0);
    assert.deepEqual(at(find(v1.children, 'InferencePool')[0], 'spec'), {
      selector: {
        matchLabels: {
          'app.kubernetes.io/name': 'svc',
          'app.kubernetes.io/part-of': 'llminferenceservice',
          'kserve.io/component': 'workload',
        },
      },
      targetPorts: [{ number: 8000 }],
      endpointPickerRef: {
        kind: 'Service',
        name: 'svc-epp-service',
        port: { number: 9002 },
        failureMode: 'FailClose',
      },
    });

    const old = render(
      svc,
      parseApiVersions('gateway.networking.k8s.io/v1,inference.networking.x-k8s.io/v1alpha2'),
    );
    const [pool] = find(old.children, 'InferencePool');
    assert.equal(pool!.apiVersion, 'inference.networking.x-k8s.io/v1alpha2');
    assert.equal(at(pool, 'spec', 'targetPortNumber'), 8000);
    assert.deepEqual(at(pool, 'spec', 'extensionRef'), {
      kind: 'Service',
      name: 'svc-epp-service',
      portNumber: 9002,
      failureMode: 'FailClose',
    });
    const [model] = find(old.children, 'InferenceModel');
    assert.deepEqual(at(model, 'spec'), {
      modelName: 'svc',
      criticality: 'Sheddable',
      poolRef: { group: 'inference.networking.x-k8s.io', kind: 'InferencePool', name: 'svc-inference-pool' },
    });
    const route = find(old.children, 'HTTPRoute')[0];
    assert.equal(at(route, 'spec', 'rules', 0, 'backendRefs', 0, 'group'), 'inference.networking.x-k8s.io');

    const both = render(
      svc,
      parseApiVersions(
        'gateway.networking.k8s.io/v1,inference.networking.k8s.io/v1,inference.networking.x-k8s.io/v1alpha2',
      ),
    );
    assert.deepEqual(
      find(both.children, 'InferencePool').map((p) => p.apiVersion),
      ['inference.networking.k8s.io/v1', 'inference.networking.x-k8s.io/v1alpha2'],
    );
  });

  it('routes the OpenAI paths to the pool and the rest to the Service, through the default Gateway', () => {
    const out = render(service({ router: { scheduler: {}, route: {}, gateway: {} } }));
    const route = find(out.children, 'HTTPRoute')[0];
    const rules = at(route, 'spec', 'rules') as Json[];
    const summary = rules.map(
      (r) => `${String(at(r, 'matches', 0, 'path', 'value'))} → ${String(at(r, 'backendRefs', 0, 'kind'))}`,
    );
    assert.deepEqual(summary, [
      '/ns/svc/v1/completions → InferencePool',
      '/ns/svc/v1/chat/completions → InferencePool',
      '/ns/svc/v1/responses → InferencePool',
      '/ns/svc/v1/messages → InferencePool',
      '/ns/svc/v1/embeddings → InferencePool',
      '/ns/svc → Service',
      // Model-name routing: the header rule (one match per API path), then the /publishers/ paths.
      '/v1/completions → InferencePool',
      '/publishers/ns/models/svc/v1/completions → InferencePool',
      '/publishers/ns/models/svc/v1/chat/completions → InferencePool',
      '/publishers/ns/models/svc/v1/responses → InferencePool',
      '/publishers/ns/models/svc/v1/messages → InferencePool',
      '/publishers/ns/models/svc/v1/embeddings → InferencePool',
    ]);
    assert.deepEqual(at(rules[6], 'matches', 1, 'headers'), [
      { type: 'Exact', name: 'X-Gateway-Model-Name', value: 'svc' },
    ]);
    assert.ok(rules.every((r) => at(r, 'timeouts', 'request') === '0s'));
    assert.deepEqual(at(route, 'spec', 'parentRefs'), [
      {
        group: 'gateway.networking.k8s.io',
        kind: 'Gateway',
        name: 'llmisvc-gateway',
        namespace: 'llmisvc-system',
      },
    ]);
    assert.deepEqual(names(out.shared), ['Gateway/llmisvc-gateway']);
    assert.equal(at(out.shared[0], 'metadata', 'ownerReferences'), undefined);
  });

  it('sends every rule to the Service without a scheduler', () => {
    const rules = at(
      find(render(service({ router: { route: {} } })).children, 'HTTPRoute')[0],
      'spec',
      'rules',
    ) as Json[];
    assert.ok(
      rules.every(
        (r) =>
          at(r, 'backendRefs', 0, 'kind') === 'Service' &&
          at(r, 'backendRefs', 0, 'name') === 'svc-kserve-workload-svc',
      ),
    );
  });

  it('attaches to the Gateways in gateway.refs and then needs no default Gateway', () => {
    const out = render(
      service({
        router: {
          route: {},
          gateway: { refs: [{ name: 'mine', namespace: 'infra', sectionName: 'https' }] },
        },
      }),
    );
    assert.deepEqual(at(find(out.children, 'HTTPRoute')[0], 'spec', 'parentRefs'), [
      {
        group: 'gateway.networking.k8s.io',
        kind: 'Gateway',
        name: 'mine',
        namespace: 'infra',
        sectionName: 'https',
      },
    ]);
    assert.deepEqual(out.shared, []);
  });

  it('creates no route for route refs and no pool or picker for a pool ref', () => {
    const out = render(
      service({
        router: { route: { http: { refs: [{ name: 'r' }] } }, scheduler: { pool: { ref: { name: 'p' } } } },
      }),
    );
    assert.deepEqual(names(out.children), ['Service/svc-kserve-workload-svc', 'Deployment/svc-kserve']);
  });

  it('serves behind an Ingress with no route or Gateway, the model on an image volume for oci+native://', () => {
    const out = render(
      service({
        model: { uri: 'oci+native://registry.example.com/m:1' },
        router: { ingress: { refs: [{ name: 'edge' }] } },
      }),
    );
    assert.deepEqual(names([...out.children, ...out.shared]), [
      'Service/svc-kserve-workload-svc',
      'Deployment/svc-kserve',
    ]);
    const [deployment] = find(out.children, 'Deployment');
    const volumes = at(deployment, 'spec', 'template', 'spec', 'volumes') as Json[];
    assert.deepEqual(
      volumes.find((v) => v['name'] === 'model-storage'),
      { name: 'model-storage', image: { reference: 'registry.example.com/m:1', pullPolicy: 'IfNotPresent' } },
    );
    assert.equal(at(deployment, 'spec', 'template', 'spec', 'initContainers'), undefined, 'no download');
  });

  it('runs the tokenizer template as a sidecar of the Endpoint Picker', () => {
    const out = render(
      service({
        router: { route: {}, scheduler: { tokenizer: { template: { image: 'tok:1', name: 'x' } } } },
      }),
    );
    const picker = find(out.children, 'Deployment').find((d) =>
      String(at(d, 'metadata', 'name')).endsWith('-router-scheduler'),
    );
    const containers = at(picker, 'spec', 'template', 'spec', 'containers') as Json[];
    assert.deepEqual(
      containers.map((c) => [c['name'], c['image'] ?? 'epp']),
      [
        ['main', containers[0]!['image']],
        ['tokenizer', 'tok:1'],
      ],
    );
  });

  it("exposes the scheduler template's named ports on the picker Service, the KV-events socket included", () => {
    const template = {
      containers: [
        {
          name: 'main',
          ports: [
            { name: 'metrics', containerPort: 9191 },
            { name: 'zmq', containerPort: 5557, protocol: 'TCP' },
            { name: 'debug', containerPort: 6060 },
          ],
        },
      ],
    };
    const ports = (svc: LLMInferenceService) =>
      at(
        find(render(svc).children, 'Service').find((s) => at(s, 'metadata', 'name') === 'svc-epp-service'),
        'spec',
        'ports',
      ) as {
        name: string;
        port: number;
      }[];
    assert.deepEqual(
      ports(service({ router: { route: {}, gateway: {}, scheduler: { template } } })).map(
        (p) => `${p.name}:${p.port}`,
      ),
      ['grpc:9002', 'grpc-health:9003', 'metrics:9191', 'zmq:5557'],
    );
    assert.deepEqual(
      ports(service({ router: { route: {}, gateway: {}, scheduler: {} } })).map((p) => `${p.name}:${p.port}`),
      ['grpc:9002', 'grpc-health:9003', 'metrics:9090'],
    );
  });

  it('mounts a ConfigMap for a scheduler config ref', () => {
    const out = render(
      service({ router: { scheduler: { config: { ref: { name: 'cm', key: 'epp.yaml' } } } } }),
    );
    const scheduler = find(out.children, 'Deployment').find(
      (d) => at(d, 'metadata', 'name') === 'svc-kserve-router-scheduler',
    );
    const args = at(scheduler, 'spec', 'template', 'spec', 'containers', 0, 'args') as string[];
    assert.deepEqual(args.slice(-2), ['--config-file', '/etc/llmisvc/epp/epp.yaml']);
    assert.deepEqual(at(scheduler, 'spec', 'template', 'spec', 'volumes'), [
      { name: 'epp-config', configMap: { name: 'cm' } },
    ]);
    // No key: KServe's default, epp.
    const keyless = find(
      render(service({ router: { scheduler: { config: { ref: { name: 'cm', key: '' } } } } })).children,
      'Deployment',
    ).find((d) => at(d, 'metadata', 'name') === 'svc-kserve-router-scheduler');
    const keylessArgs = at(keyless, 'spec', 'template', 'spec', 'containers', 0, 'args') as string[];
    assert.deepEqual(keylessArgs.slice(-2), ['--config-file', '/etc/llmisvc/epp/epp']);
  });

  it('adds LoRA and tensor flags to vLLM once, and mounts each adapter', () => {
    const out = render(
      service({
        model: {
          uri: 'pvc://models/llama',
          lora: { adapters: [{ name: 'sql', uri: 'hf://a/sql' }], maxRank: 32 },
        },
        parallelism: { tensor: 4 },
        template: { containers: [{ name: 'main', args: ['--tensor-parallel-size', '2'] }] },
      }),
    );
    const pod = at(find(out.children, 'Deployment')[0], 'spec', 'template', 'spec') as Json;
    const args = at(pod, 'containers', 0, 'args') as string[];
    assert.deepEqual(
      args.filter((a) => a === '--tensor-parallel-size'),
      ['--tensor-parallel-size'],
      'a flag the user passes wins',
    );
    for (const flag of ['--enable-lora', 'sql=/mnt/lora/sql', '--max-lora-rank'])
      assert.ok(args.includes(flag), flag);
    const volumes = at(pod, 'volumes') as Json[];
    assert.ok(volumes.some((v) => at(v, 'persistentVolumeClaim', 'claimName') === 'models'));
    assert.ok((at(pod, 'initContainers') as Json[]).some((c) => at(c, 'args', 0) === 'hf://a/sql'));
  });

  it('leaves out children of APIs the cluster lacks and says which', () => {
    const out = render(
      service({ worker: {}, parallelism: { pipeline: 2 }, router: { scheduler: {}, route: {} } }),
      new Set(),
    );
    assert.deepEqual(
      out.missing.map((m) => `${m.feature}:${m.dependency}`),
      ['route:gateway-api', 'scheduler:gateway-api-inference-extension', 'worker:lws'],
    );
    assert.deepEqual(names(out.children), ['Service/svc-kserve-workload-svc']);
  });

  it('checks the merged spec: P/D needs a scheduler; unknown storage schemes are named', () => {
    assert.throws(
      () => render(service({ prefill: {}, model: { uri: 'ftp://x/y' } })),
      (e: unknown) =>
        e instanceof ValidationError &&
        e.problems.some((p) => p.path === 'spec.prefill' && /scheduler/.test(p.message)) &&
        e.problems.some((p) => p.path === 'spec.model.uri' && /no supported scheme/.test(p.message)),
    );
  });

  it('keeps every child name a DNS label for a 63-character service name', () => {
    const name = 'x'.repeat(63);
    const out = render(
      service(
        {
          prefill: {},
          worker: {},
          parallelism: { data: 2, dataLocal: 1 },
          router: { scheduler: {}, route: {} },
        },
        name,
      ),
    );
    for (const object of [...out.children, ...out.shared]) {
      const childName = at(object, 'metadata', 'name') as string;
      assert.ok(childName.length <= 63 && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(childName), childName);
    }
  });
});

describe('KServe configs and manifests as written', () => {
  /** A config from YAML, converted as `--config-dir` and the controller read it. */
  function config(yaml: string): LLMInferenceServiceConfig {
    return toTypedObject(parseDocuments(yaml, 'config.yaml')[0]!) as LLMInferenceServiceConfig;
  }
  const withConfigs = (
    svc: LLMInferenceService,
    configs: LLMInferenceServiceConfig[],
    apiVersions = DEFAULT_API_VERSIONS,
  ) => renderService({ service: svc, configs, apiVersions, options: DEFAULT_RENDER_OPTIONS });

  // KServe v0.15's scheduler preset (Helm chart) in shape: v1alpha2 pool fields, an empty selector, no port.
  const v015Scheduler = `
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceServiceConfig
metadata: { name: kserve-config-llm-scheduler, namespace: ns }
spec:
  router:
    scheduler:
      pool:
        spec:
          extensionRef: { failureMode: FailOpen, kind: Service, name: "{{ ChildName .ObjectMeta.Name \`-epp-service\` }}" }
          selector: {}
          targetPortNumber: 8000
`;

  it('fills an empty pool selector with the serving pods and the picker port 9002 (audit repro empty-selector)', () => {
    const out = withConfigs(service({ router: { scheduler: {} } }), [config(v015Scheduler)]);
    const [pool] = find(out.children, 'InferencePool');
    assert.deepEqual(at(pool, 'spec'), {
      selector: {
        matchLabels: {
          'app.kubernetes.io/name': 'svc',
          'app.kubernetes.io/part-of': 'llminferenceservice',
          'kserve.io/component': 'workload',
        },
      },
      targetPorts: [{ number: 8000 }],
      endpointPickerRef: {
        failureMode: 'FailOpen',
        kind: 'Service',
        name: 'svc-epp-service',
        port: { number: 9002 },
      },
    });
    // The selector selects what the workload's pods carry.
    const labels = at(find(out.children, 'Deployment')[0], 'spec', 'template', 'metadata', 'labels') as Json;
    for (const [key, value] of Object.entries(at(pool, 'spec', 'selector', 'matchLabels') as Json))
      assert.equal(labels[key], value, key);
    const v1alpha2 = find(
      withConfigs(
        service({ router: { scheduler: {} } }),
        [config(v015Scheduler)],
        parseApiVersions('inference.networking.x-k8s.io/v1alpha2'),
      ).children,
      'InferencePool',
    )[0];
    assert.deepEqual(at(v1alpha2, 'spec', 'selector'), at(pool, 'spec', 'selector', 'matchLabels'));
    assert.equal(at(v1alpha2, 'spec', 'extensionRef', 'portNumber'), 9002);
  });

  it('keeps a selector and a port that are set, and adds no port to a picker that is not a Service', () => {
    const custom = config(`
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceServiceConfig
metadata: { name: config-llm-scheduler, namespace: ns }
spec:
  router:
    scheduler:
      pool:
        spec:
          selector: { matchLabels: { app: mine } }
          endpointPickerRef: { kind: Other, name: picker }
`);
    const [pool] = find(
      withConfigs(service({ router: { scheduler: {} } }), [custom]).children,
      'InferencePool',
    );
    assert.deepEqual(at(pool, 'spec', 'selector'), { matchLabels: { app: 'mine' } });
    assert.deepEqual(at(pool, 'spec', 'endpointPickerRef'), { kind: 'Other', name: 'picker' });
    const [shipped] = find(render(service({ router: { scheduler: {} } })).children, 'InferencePool');
    assert.equal(at(shipped, 'spec', 'endpointPickerRef', 'port', 'number'), 9002);
  });

  it('renders integer quantities as written: Kubernetes reads a number as a Quantity (audit repro int-quantity)', () => {
    const out = render(
      service({
        template: {
          containers: [{ name: 'main', resources: { limits: { cpu: 16, 'nvidia.com/gpu': 8 } } }],
          volumes: [{ name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: 1073741824 } }],
        },
      }),
    );
    const pod = at(find(out.children, 'Deployment')[0], 'spec', 'template', 'spec') as Json;
    assert.deepEqual(at(pod, 'containers', 0, 'resources', 'limits'), { cpu: 16, 'nvidia.com/gpu': 8 });
    assert.ok((at(pod, 'volumes') as Json[]).some((v) => at(v, 'emptyDir', 'sizeLimit') === 1073741824));
  });

  it(".GlobalConfig.SystemNamespace is the controller's namespace and EnableTLS is false", () => {
    const out = render(
      service({
        labels: {
          system: '{{ .GlobalConfig.SystemNamespace }}',
          tls: '{{ if .GlobalConfig.EnableTLS }}https{{ else }}http{{ end }}',
          header: '{{ .GlobalConfig.ModelBasedRoutingHeaderName }}',
        },
      }),
    );
    assert.deepEqual(out.spec.labels, {
      system: DEFAULT_RENDER_OPTIONS.systemNamespace,
      tls: 'http',
      header: 'X-Gateway-Model-Name',
    });
  });
});

describe('route rules on the shared default Gateway', () => {
  const withRules = (rules: unknown[], extra: Record<string, unknown> = {}) =>
    service({
      model: { uri: 'hf://x/y' },
      router: { route: { http: { spec: { rules } } }, ...extra },
    });
  const rule = (type: string | undefined, value: string | undefined, headers?: unknown[]) => ({
    matches: [
      {
        ...(value !== undefined ? { path: { ...(type ? { type } : {}), value } } : {}),
        ...(headers ? { headers } : {}),
      },
    ],
    backendRefs: [{ name: 'svc-kserve-workload-svc', port: 8000 }],
  });

  it("refuses a rule that would take another service's paths or model-name traffic, naming the field", () => {
    const hijack = withRules([
      rule('Exact', '/victim/chat/v1/chat/completions'),
      rule('Exact', '/v1/chat/completions', [{ name: 'X-Gateway-Model-Name', value: 'llama' }]),
      rule('PathPrefix', '/ns/svc/../victim'),
      rule('RegularExpression', '/ns/svc/.*'),
      rule(undefined, undefined),
      { backendRefs: [] },
    ]);
    assert.throws(
      () => render(hijack),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.deepEqual(
          e.problems.map((p) => p.path),
          [0, 1, 2, 3, 4]
            .map((i) => `spec.router.route.http.spec.rules[${i}].matches[0].path`)
            .concat('spec.router.route.http.spec.rules[5].matches'),
        );
        assert.match(e.message, /Exact "\/victim\/chat\/v1\/chat\/completions"/);
        assert.match(e.message, /may match only paths under \/ns\/svc .*spec\.router\.gateway\.refs/);
        return true;
      },
    );
  });

  it("accepts rules under the service's own prefix, and any rule on a Gateway of the service's own", () => {
    const own = [
      rule('PathPrefix', '/ns/svc/v2'),
      rule('Exact', '/ns/svc'),
      rule(undefined, '/ns/svc/custom'),
    ];
    assert.ok(find(render(withRules(own)).children, 'HTTPRoute').length === 1);
    const elsewhere = withRules([rule('PathPrefix', '/')], { gateway: { refs: [{ name: 'mine' }] } });
    const [route] = find(render(elsewhere).children, 'HTTPRoute');
    assert.deepEqual(
      (route!['spec'] as { parentRefs: { name: string }[] }).parentRefs.map((p) => p.name),
      ['mine'],
    );
  });
});
