import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../errors/index.js';
import { toTypedObject, validateObject } from './index.js';

function service(spec: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name: 'svc' },
    spec,
    ...extra,
  };
}

function problems(object: Record<string, unknown>): string[] {
  return validateObject(object).map((p) => `${p.path}: ${p.message}`);
}

function assertProblem(object: Record<string, unknown>, path: string, fragment: RegExp): void {
  const found = validateObject(object).filter((p) => p.path === path);
  assert.ok(
    found.some((p) => fragment.test(p.message)),
    `expected a problem at ${path} matching ${fragment}; got:\n${problems(object).join('\n')}`,
  );
}

describe('validation: the cases KServe rejects', () => {
  const cases: { name: string; spec: Record<string, unknown>; path: string; message: RegExp }[] = [
    {
      name: 'worker without parallelism',
      spec: { worker: { containers: [] } },
      path: 'spec.worker',
      message: /data or pipeline parallelism/,
    },
    {
      name: 'worker with only tensor parallelism',
      spec: { worker: {}, parallelism: { tensor: 2 } },
      path: 'spec.worker',
      message: /data or pipeline/,
    },
    {
      name: 'pipeline with data',
      spec: { parallelism: { pipeline: 2, data: 2, dataLocal: 1 } },
      path: 'spec.parallelism',
      message: /pipeline cannot be combined/,
    },
    {
      name: 'data without dataLocal',
      spec: { parallelism: { data: 4 } },
      path: 'spec.parallelism.dataLocal',
      message: /required when data/,
    },
    {
      name: 'dataLocal without data',
      spec: { parallelism: { dataLocal: 4 } },
      path: 'spec.parallelism.data',
      message: /required when dataLocal/,
    },
    {
      name: 'tensor below 1',
      spec: { parallelism: { tensor: 0 } },
      path: 'spec.parallelism.tensor',
      message: /at least 1/,
    },
    {
      name: 'prefill data below 1',
      spec: { prefill: { parallelism: { data: 0, dataLocal: 1 } } },
      path: 'spec.prefill.parallelism.data',
      message: /at least 1/,
    },
    { name: 'replicas below 0', spec: { replicas: -1 }, path: 'spec.replicas', message: /0 or more/ },
    {
      name: 'replicas not a number',
      spec: { replicas: 'two' },
      path: 'spec.replicas',
      message: /whole number|must be/,
    },
    {
      name: 'route refs with a managed spec',
      spec: { router: { route: { http: { refs: [{ name: 'r' }], spec: { rules: [] } } } } },
      path: 'spec.router.route.http',
      message: /cannot both be set/,
    },
    {
      name: 'route refs with the managed gateway',
      spec: { router: { route: { http: { refs: [{ name: 'r' }] } }, gateway: {} } },
      path: 'spec.router.route.http.refs',
      message: /managed gateway/,
    },
    {
      name: 'scheduler config with both',
      spec: {
        router: {
          scheduler: { config: { inline: { kind: 'EndpointPickerConfig' }, ref: { name: 'c', key: 'k' } } },
        },
      },
      path: 'spec.router.scheduler.config',
      message: /cannot both be set/,
    },
    {
      name: 'scheduler config with neither',
      spec: { router: { scheduler: { config: {} } } },
      path: 'spec.router.scheduler.config',
      message: /needs either inline/,
    },
    {
      name: 'empty adapter name',
      spec: { model: { lora: { adapters: [{ name: '', uri: 'hf://a/b' }] } } },
      path: 'spec.model.lora.adapters[0].name',
      message: /required/,
    },
    {
      name: 'adapter name with ..',
      spec: { model: { lora: { adapters: [{ name: '../etc', uri: 'hf://a/b' }] } } },
      path: 'spec.model.lora.adapters[0].name',
      message: /not a valid adapter name/,
    },
    {
      name: 'adapter name .',
      spec: { model: { lora: { adapters: [{ name: '.', uri: 'hf://a/b' }] } } },
      path: 'spec.model.lora.adapters[0].name',
      message: /not a valid adapter name/,
    },
    {
      name: 'repeated adapter name',
      spec: {
        model: {
          lora: {
            adapters: [
              { name: 'a', uri: 'hf://a/b' },
              { name: 'a', uri: 'hf://a/c' },
            ],
          },
        },
      },
      path: 'spec.model.lora.adapters[1].name',
      message: /already used by spec.model.lora.adapters\[0\]/,
    },
    {
      name: 'adapter named like the base model',
      spec: { model: { name: 'base', lora: { adapters: [{ name: 'base', uri: 'hf://a/b' }] } } },
      path: 'spec.model.lora.adapters[0].name',
      message: /base model/,
    },
    {
      name: 'adapter named like the service when the model has no name',
      spec: { model: { lora: { adapters: [{ name: 'svc', uri: 'hf://a/b' }] } } },
      path: 'spec.model.lora.adapters[0].name',
      message: /base model/,
    },
    {
      name: 'unknown spec field',
      spec: { replica: 2 },
      path: 'spec.replica',
      message: /unknown field "replica"/,
    },
    {
      name: 'unknown PodSpec field, with a suggestion',
      spec: { template: { containres: [] } },
      path: 'spec.template.containres',
      message: /did you mean "containers"/,
    },
    {
      name: 'unknown container field',
      spec: { template: { containers: [{ name: 'main', imagee: 'x' }] } },
      path: 'spec.template.containers[0].imagee',
      message: /unknown field "imagee" in a Kubernetes Container; did you mean "image"/,
    },
  ];
  for (const c of cases) {
    it(`rejects ${c.name}`, () => assertProblem(service(c.spec), c.path, c.message));
  }

  it('reports every problem at once', () => {
    const found = problems(
      service({ replicas: -1, parallelism: { data: 4 }, router: { scheduler: { config: {} } } }),
    );
    assert.ok(found.length >= 1);
    // Structural problems come first; once fixed, the cross-field rules report all of theirs together.
    const semantic = problems(
      service({ parallelism: { data: 4, pipeline: 2 }, router: { scheduler: { config: {} } } }),
    );
    assert.deepEqual(semantic.map((p) => p.split(':')[0]).sort(), [
      'spec.parallelism',
      'spec.parallelism.dataLocal',
      'spec.router.scheduler.config',
    ]);
  });

  it('accepts a valid multi-node data-parallel service', () => {
    assert.deepEqual(problems(service({ worker: {}, parallelism: { data: 8, dataLocal: 2 } })), []);
  });

  it('rejects a wrong apiVersion, kind and name with clear messages', () => {
    const found = problems({
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata: { name: 'Bad_Name' },
      spec: {},
    });
    assert.ok(found.some((p) => p.startsWith('apiVersion: must be serving.kserve.io/v1alpha2')));
    assert.ok(
      found.some((p) => p.startsWith('kind: must be LLMInferenceService or LLMInferenceServiceConfig')),
    );
    assert.ok(found.some((p) => p.startsWith('metadata.name: "Bad_Name" must be a DNS label')));
  });

  it('throws a ValidationError naming the object and its source', () => {
    assert.throws(
      () => toTypedObject({ object: service({ replicas: -1 }), source: 'svc.yaml' }),
      (error: unknown) =>
        error instanceof ValidationError && /LLMInferenceService "svc" in svc.yaml/.test(error.message),
    );
  });

  it('lets configs hold partial specs (the cross-field rules apply to services)', () => {
    const config = {
      apiVersion: 'serving.kserve.io/v1alpha2',
      kind: 'LLMInferenceServiceConfig',
      metadata: { name: 'c' },
      spec: { worker: {} },
    };
    assert.deepEqual(problems(config), []);
  });
});

describe('validation: KServe v0.20 router fields', () => {
  it('accepts a routing group and names each bad group or weight field', () => {
    assert.deepEqual(problems(service({ router: { route: { group: 'qwen', weight: 0 } } })), []);
    assertProblem(
      service({ router: { route: { group: 'Qwen_1', weight: 1 } } }),
      'spec.router.route.group',
      /DNS label/,
    );
    assertProblem(
      service({ router: { route: { group: 'g', weight: 1_000_001 } } }),
      'spec.router.route.weight',
      /at most 1000000/,
    );
    assertProblem(
      service({ router: { route: { group: 'g', weight: 1.5 } } }),
      'spec.router.route.weight',
      /whole number/,
    );
    assertProblem(
      service({ router: { route: { weight: 5 } } }),
      'spec.router.route.group',
      /is required with spec.router.route.weight/,
    );
    assertProblem(
      service({ router: { route: { group: 'g' } } }),
      'spec.router.route.weight',
      /is required with spec.router.route.group/,
    );
    assertProblem(
      service({ router: { route: { group: 'g', weight: 1, http: { refs: [{ name: 'r' }] } } } }),
      'spec.router.route.group',
      /managed HTTPRoute/,
    );
  });

  it('accepts an Ingress, oci+native:// and a tokenizer sidecar', () => {
    assert.deepEqual(
      problems(
        service({
          model: { uri: 'oci+native://registry.example.com/m:1' },
          router: { ingress: { refs: [{ name: 'edge', namespace: 'web' }] } },
        }),
      ),
      [],
    );
    assert.deepEqual(
      problems(service({ router: { route: {}, scheduler: { tokenizer: { template: { image: 't:1' } } } } })),
      [],
    );
  });

  it('refuses an Ingress beside the Gateway API fields, naming each', () => {
    const both = service({ router: { ingress: { refs: [{ name: 'edge' }] }, route: {}, gateway: {} } });
    assertProblem(both, 'spec.router.route', /cannot be set together with spec.router.ingress/);
    assertProblem(both, 'spec.router.gateway', /cannot be set together with spec.router.ingress/);
    assertProblem(
      service({ router: { ingress: { refs: [{ name: '' }] } } }),
      'spec.router.ingress.refs[0].name',
      /empty/,
    );
  });
});

describe('validation: the model name is pasted into shell scripts', () => {
  it('refuses the characters that end a double-quoted word or run commands, naming them', () => {
    for (const [name, shown] of [
      ['x" $(touch /tmp/pwned) "', /'"'/],
      ['a$(id)', /'\$'/],
      ['a`id`', /'`'/],
      ['a\\', /'\\'/],
      ['a\nb', /a control character/],
      ['a\u0000b', /a control character/],
    ] as const) {
      assertProblem(service({ model: { uri: 'hf://org/m', name } }), 'spec.model.name', shown);
    }
  });

  it('accepts the names models have', () => {
    for (const name of [
      'meta-llama/Llama-3.1-8B-Instruct',
      'Qwen/Qwen2.5-7B:fp8',
      'my model @v2 (café)',
      "it's",
    ]) {
      assert.deepEqual(problems(service({ model: { uri: 'hf://org/m', name } })), [], name);
    }
  });
});

describe('validation: the scheduler', () => {
  it('refuses 0 replicas, as KServe does', () => {
    assertProblem(
      service({
        model: { uri: 'hf://org/m' },
        router: { route: {}, gateway: {}, scheduler: { replicas: 0 } },
      }),
      'spec.router.scheduler.replicas',
      /must be greater than zero, got 0/,
    );
    assert.deepEqual(
      problems(
        service({
          model: { uri: 'hf://org/m' },
          router: { route: {}, gateway: {}, scheduler: { replicas: 2 } },
        }),
      ),
      [],
    );
  });
});

describe('validation: a scheduler config ref', () => {
  const withRef = (ref: Record<string, unknown>) =>
    service({
      model: { uri: 'hf://org/m' },
      router: { route: {}, gateway: {}, scheduler: { config: { ref } } },
    });

  it('takes an empty or missing key (KServe reads it as "epp") and a ConfigMap key', () => {
    for (const ref of [{ name: 'cm' }, { name: 'cm', key: '' }, { name: 'cm', key: 'epp-config.yaml' }])
      assert.deepEqual(problems(withRef(ref)), [], JSON.stringify(ref));
  });

  it('refuses a key the API server would not take: it names a file under the mounted ConfigMap', () => {
    for (const key of ['../../etc/passwd', '..', 'a/b', 'a b', 'x'.repeat(254)])
      assertProblem(
        withRef({ name: 'cm', key }),
        'spec.router.scheduler.config.ref.key',
        /is not a ConfigMap key/,
      );
  });
});

describe('validation: labels and annotations the pods get', () => {
  it('names each key and value the API server would refuse on the children', () => {
    const object = service({
      model: { uri: 'hf://org/m' },
      labels: { 'bad key': 'v', good: 'x'.repeat(64), fine: 'ok', 'example.com/team': 'a_b-c.d' },
      annotations: { 'a/b/c': 'anything goes here\n', 'Upper.Case/x': 'v' },
      router: { route: {}, gateway: {}, scheduler: { labels: { 'kserve.io/component': 'workload' } } },
    });
    assertProblem(object, 'spec.labels["bad key"]', /is not a valid key/);
    assertProblem(object, 'spec.labels["good"]', /is not a valid label value/);
    assertProblem(object, 'spec.annotations["a/b/c"]', /prefix \(before "\/"\) must be a DNS subdomain/);
    assertProblem(object, 'spec.annotations["Upper.Case/x"]', /must be a DNS subdomain/);
    assertProblem(
      object,
      'spec.router.scheduler.labels["kserve.io/component"]',
      /would put the Endpoint Picker's own pods into its InferencePool/,
    );
    // On model-server pods it is how KServe's multi-vendor sample shares one pool between two services.
    assert.deepEqual(
      problems(service({ model: { uri: 'hf://org/m' }, labels: { 'kserve.io/component': 'workload' } })),
      [],
    );
    assert.equal(
      problems(object).filter((p) => p.includes('"fine"') || p.includes('example.com/team')).length,
      0,
    );
  });

  it('bounds the annotations together, and leaves templates to the merged spec', () => {
    assertProblem(
      service({ model: { uri: 'hf://org/m' }, annotations: { big: 'x'.repeat(300 * 1024) } }),
      'spec.annotations',
      /bytes of annotations: the API server takes at most 262144/,
    );
    assert.deepEqual(
      problems(service({ model: { uri: 'hf://org/m' }, labels: { owner: '{{ .ObjectMeta.Name }}' } })),
      [],
    );
  });
});
