import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LLMInferenceService, LLMInferenceServiceConfig } from '../api/index.js';
import { LlmisvcError } from '../errors/index.js';
import {
  composeSpec,
  configNames,
  type GlobalConfig,
  PRESET_NAMES,
  presetsFor,
  renderString,
  shippedPresets,
  strategicMerge,
} from './index.js';

const global: GlobalConfig = {
  SystemNamespace: 'system',
  IngressGatewayName: 'gw',
  IngressGatewayNamespace: 'gw-ns',
  EnableTLS: false,
  TLSMinVersion: '',
  TLSCipherSuites: '',
  TLSCipherSuitesOpenSSL: '',
  ModelBasedRoutingHeaderName: 'X-Gateway-Model-Name',
  SchedulerImage: 'img',
  InferencePoolGroup: 'inference.networking.k8s.io',
};

function service(spec: LLMInferenceService['spec'], name = 'svc'): LLMInferenceService {
  return {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name, namespace: 'ns' },
    spec,
  };
}

const scope = {
  data: {
    ObjectMeta: { Name: 'svc', Namespace: 'ns' },
    Spec: { model: { name: 'm' }, parallelism: { data: 4 } },
    GlobalConfig: global,
  },
  known: (path: readonly string[]) =>
    path.length === 0
      ? ['ObjectMeta', 'Spec', 'GlobalConfig']
      : path[0] === 'Spec' && path.length === 1
        ? ['model', 'parallelism', 'router']
        : undefined,
};

describe('preset selection (KServe rules)', () => {
  const cases: [string, LLMInferenceService['spec'], string[]][] = [
    ['single node', {}, ['config-llm-template']],
    [
      'scheduler and route',
      { router: { scheduler: {}, route: {} } },
      ['config-llm-template', 'config-llm-scheduler', 'config-llm-router-route'],
    ],
    [
      'scheduler with a pool ref',
      { router: { scheduler: { pool: { ref: { name: 'p' } } } } },
      ['config-llm-template'],
    ],
    ['route with refs', { router: { route: { http: { refs: [{ name: 'r' }] } } } }, ['config-llm-template']],
    [
      'data parallel worker',
      { worker: {}, parallelism: { data: 4, dataLocal: 2 } },
      ['config-llm-worker-data-parallel'],
    ],
    [
      'pipeline parallel worker',
      { worker: {}, parallelism: { pipeline: 2 } },
      ['config-llm-worker-pipeline-parallel'],
    ],
    ['prefill/decode', { prefill: {} }, ['config-llm-prefill-template', 'config-llm-decode-template']],
    [
      'prefill/decode, both multi-node',
      { worker: {}, prefill: { worker: {} } },
      ['config-llm-prefill-worker-data-parallel', 'config-llm-decode-worker-data-parallel'],
    ],
  ];
  for (const [name, spec, expected] of cases) it(name, () => assert.deepEqual(presetsFor(spec), expected));

  it('ships every well-known preset', () => {
    assert.deepEqual(
      shippedPresets()
        .map((p) => p.metadata.name)
        .sort(),
      [...PRESET_NAMES].sort(),
    );
  });
});

describe('strategic merge', () => {
  it('merges containers, env and volumes by name and replaces args', () => {
    const merged = strategicMerge(
      {
        containers: [
          {
            name: 'main',
            image: 'a',
            args: ['--x'],
            env: [{ name: 'A', value: '1' }],
            ports: [{ containerPort: 8000 }],
          },
        ],
        volumes: [{ name: 'v1', emptyDir: {} }],
      },
      {
        containers: [
          {
            name: 'main',
            args: ['--y'],
            env: [{ name: 'B', value: '2' }],
            ports: [{ containerPort: 8000, name: 'http' }],
          },
          { name: 'side' },
        ],
        volumes: [{ name: 'v2', emptyDir: {} }],
      },
    );
    assert.deepEqual(merged, {
      containers: [
        {
          name: 'main',
          image: 'a',
          args: ['--y'],
          env: [
            { name: 'A', value: '1' },
            { name: 'B', value: '2' },
          ],
          ports: [{ containerPort: 8000, name: 'http' }],
        },
        { name: 'side' },
      ],
      volumes: [
        { name: 'v1', emptyDir: {} },
        { name: 'v2', emptyDir: {} },
      ],
    });
  });

  it('removes a field set to null and leaves its inputs unchanged', () => {
    const base = { replicas: 2, labels: { a: '1' } };
    assert.deepEqual(strategicMerge(base, { replicas: null, labels: { b: '2' } }), {
      labels: { a: '1', b: '2' },
    });
    assert.deepEqual(base, { replicas: 2, labels: { a: '1' } });
  });
});

describe('templates', () => {
  it('renders paths (ignoring case, as Go field names), functions and conditionals', () => {
    assert.equal(renderString('{{ .Spec.Model.Name }}', scope, 'x'), 'm');
    assert.equal(
      renderString('{{ ChildName .ObjectMeta.Name `-inference-pool` }}', scope, 'x'),
      'svc-inference-pool',
    );
    assert.equal(renderString('{{ or .Spec.Parallelism.DataRPCPort 5555 }}', scope, 'x'), '5555');
    assert.equal(
      renderString('a {{- if .Spec.Parallelism.Data }} b{{ else }} c{{ end }}', scope, 'x'),
      'a b',
    );
    assert.equal(
      renderString('{{ if .Spec.Router }}r{{ else if .Spec.Parallelism }}p{{ else }}n{{ end }}', scope, 'x'),
      'p',
    );
  });

  it('names an unknown key, the template and the field', () => {
    assert.throws(
      () => renderString('{{ .Spec.Modle.Name }}', scope, 'spec.template.containers[0].args[1]'),
      (e: unknown) =>
        e instanceof LlmisvcError &&
        e.code === 'LLMISVC_ERR_TEMPLATE' &&
        e.message.includes('spec.template.containers[0].args[1]') &&
        e.message.includes('"Modle"'),
    );
    assert.throws(() => renderString('{{ Nope .Spec }}', scope, 'x'), /unknown function "Nope"/);
    assert.throws(() => renderString('{{ if .Spec }}x', scope, 'x'), /without its "end"/);
  });

  it('stops `and` and `or` at the argument that decides, as Go does: what follows is not looked up', () => {
    // `.Spec.Modle` does not exist: an error wherever it is evaluated.
    assert.equal(renderString('{{ if and .Spec.Router .Spec.Modle }}y{{ else }}n{{ end }}', scope, 'x'), 'n');
    assert.equal(renderString('{{ or .Spec.Model.Name .Spec.Modle }}', scope, 'x'), 'm');
    assert.equal(renderString('{{ and .Spec.Model.Name 7 }}', scope, 'x'), '7');
    assert.equal(renderString('{{ or .Spec.Router 0 }}', scope, 'x'), '0');
    assert.throws(() => renderString('{{ and .Spec.Model.Name .Spec.Modle }}', scope, 'x'), /"Modle"/);
    assert.throws(() => renderString('{{ or .Spec.Router .Spec.Modle }}', scope, 'x'), /"Modle"/);
  });

  it('reports a malformed string literal as a template error, not a raw SyntaxError', () => {
    assert.throws(
      () => renderString('{{ ChildName .ObjectMeta.Name "-a\\q" }}', scope, 'spec.labels.x'),
      (e: unknown) =>
        e instanceof LlmisvcError &&
        e.code === 'LLMISVC_ERR_TEMPLATE' &&
        e.message.includes('spec.labels.x') &&
        /malformed string "-a\\q"/.test(e.message),
    );
  });
});

describe('templates: bounded output', () => {
  it("refuses a spec whose templates print past the limit, naming the field, instead of taking the controller's memory", () => {
    // Each `{{ .Spec }}` prints the whole merged spec, which holds every one of these strings: 6,000 of them once
    // expanded to gigabytes.
    const filler = 'x'.repeat(150_000);
    const spec: LLMInferenceService['spec'] = {
      template: {
        containers: [
          {
            name: 'main',
            args: Array.from({ length: 6000 }, () => '{{ .Spec }}'),
            env: [{ name: 'F', value: filler }],
          },
        ],
      },
    };
    assert.throws(
      () => composeSpec({ service: service(spec), configs: [], global, namespaces: ['ns', 'system'] }),
      (e: unknown) =>
        e instanceof LlmisvcError &&
        e.code === 'LLMISVC_ERR_TEMPLATE' &&
        /spec\.template\.containers\[0\]\.args\[\d+\]/.test(e.message) &&
        /past 1048576 bytes of template output/.test(e.message),
    );
  });

  it('renders the shipped presets of every topology well inside the limit', () => {
    const { spec } = composeSpec({
      service: service({
        router: { scheduler: {}, route: {}, gateway: {} },
        prefill: { replicas: 1 },
        worker: {},
      }),
      configs: [],
      global,
      namespaces: ['ns', 'system'],
    });
    assert.ok(JSON.stringify(spec).length < 64 * 1024);
  });
});

describe('composition: presets, then baseRefs in order, then the spec', () => {
  const base = (
    name: string,
    spec: LLMInferenceServiceConfig['spec'],
    namespace = 'ns',
  ): LLMInferenceServiceConfig => ({
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceServiceConfig',
    metadata: { name, namespace },
    spec,
  });

  it('records where each merged config came from and why (status.appliedConfigs)', () => {
    const { appliedConfigs } = composeSpec({
      service: service({ baseRefs: [{ name: 'local' }, { name: 'shared' }] }),
      configs: [base('local', {}), base('shared', {}, 'system'), base('local', {}, 'system')],
      global,
      namespaces: ['ns', 'system'],
    });
    assert.deepEqual(appliedConfigs, [
      // Not in the cluster: the shipped preset, counted as the system namespace's.
      { name: 'config-llm-template', namespace: 'system', source: 'Preset' },
      { name: 'local', namespace: 'ns', source: 'UserRef' },
      { name: 'shared', namespace: 'system', source: 'UserRef' },
    ]);
  });

  it('lets later layers win and renders templates with the merged spec', () => {
    const { spec, applied } = composeSpec({
      service: service({ baseRefs: [{ name: 'one' }, { name: 'two' }], replicas: 3 }),
      configs: [base('one', { replicas: 1, labels: { a: 'one' } }), base('two', { labels: { a: 'two' } })],
      global,
      namespaces: ['ns', 'system'],
    });
    assert.deepEqual(applied, ['config-llm-template', 'one', 'two']);
    assert.equal(spec.replicas, 3);
    assert.deepEqual(spec.labels, { a: 'two' });
    const main = spec.template?.containers?.find((c) => c.name === 'main');
    assert.ok(
      main?.['args'] && (main['args'] as string[]).includes('svc'),
      'the model name defaults to metadata.name',
    );
  });

  it('prefers a config in the service namespace over the system namespace, and a user preset over the shipped one', () => {
    const { spec } = composeSpec({
      service: service({ baseRefs: [{ name: 'shared' }] }),
      configs: [
        base('shared', { labels: { from: 'system' } }, 'system'),
        base('shared', { labels: { from: 'ns' } }),
        base(
          'config-llm-template',
          { template: { containers: [{ name: 'main', image: 'mine' }] } },
          'system',
        ),
      ],
      global,
      namespaces: ['ns', 'system'],
    });
    assert.deepEqual(spec.labels, { from: 'ns' });
    assert.deepEqual(spec.template?.containers, [{ name: 'main', image: 'mine' }]);
  });

  it('names a missing baseRef and what to do', () => {
    assert.throws(
      () =>
        composeSpec({
          service: service({ baseRefs: [{ name: 'gone' }] }),
          configs: [],
          global,
          namespaces: ['ns'],
        }),
      (e: unknown) =>
        e instanceof LlmisvcError &&
        e.code === 'LLMISVC_ERR_NOT_FOUND' &&
        /spec.baseRefs\[0\].*"gone"/.test(e.message),
    );
  });

  it('names the config and its field when a template from a baseRef or a preset is broken', () => {
    const broken = (configs: LLMInferenceServiceConfig[], baseRefs: { name: string }[]) => () =>
      composeSpec({ service: service({ baseRefs }), configs, global, namespaces: ['ns', 'system'] });
    assert.throws(
      broken(
        [base('good', {}), base('bad', { labels: { app: '{{ .Spec.Nope }}' } })],
        [{ name: 'good' }, { name: 'bad' }],
      ),
      (e: unknown) =>
        e instanceof LlmisvcError &&
        e.code === 'LLMISVC_ERR_TEMPLATE' &&
        e.message.startsWith(
          'LLMInferenceServiceConfig "bad" (spec.baseRefs[1]), spec.labels.app: template',
        ) &&
        e.message.includes('"Nope"'),
    );
    assert.throws(
      broken(
        [
          base(
            'config-llm-template',
            { template: { containers: [{ name: 'main', args: ['{{ "\\x" }}'] }] } },
            'system',
          ),
        ],
        [],
      ),
      (e: unknown) =>
        e instanceof LlmisvcError &&
        e.message.startsWith(
          'the preset LLMInferenceServiceConfig "config-llm-template", spec.template.containers[0].args[0]: template',
        ) &&
        e.message.includes('malformed string'),
    );
  });
});

describe("KServe's preset names (kserve-config-llm-*)", () => {
  const config = (name: string, namespace: string, image: string): LLMInferenceServiceConfig => ({
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceServiceConfig',
    metadata: { name, namespace },
    spec: { template: { containers: [{ name: 'main', image }] } },
  });
  const compose = (spec: LLMInferenceService['spec'], configs: LLMInferenceServiceConfig[]) =>
    composeSpec({ service: service(spec), configs, global, namespaces: ['ns', 'system'] });
  const mainImage = (spec: LLMInferenceService['spec']) =>
    spec.template?.containers?.find((c) => c.name === 'main')?.['image'];

  it('names a well-known preset both ways, the KServe spelling first; other names only as written', () => {
    assert.deepEqual(configNames('config-llm-template'), [
      'kserve-config-llm-template',
      'config-llm-template',
    ]);
    assert.deepEqual(configNames('kserve-config-llm-scheduler'), [
      'kserve-config-llm-scheduler',
      'config-llm-scheduler',
    ]);
    assert.deepEqual(configNames('kserve-config-llm-tracing'), ['kserve-config-llm-tracing']);
    assert.deepEqual(configNames('my-config'), ['my-config']);
  });

  it('resolves a baseRef to kserve-config-llm-template as the shipped preset of that role', () => {
    const { spec, appliedConfigs } = compose({ baseRefs: [{ name: 'kserve-config-llm-template' }] }, []);
    assert.equal(mainImage(spec), 'vllm/vllm-openai:v0.11.0');
    assert.deepEqual(appliedConfigs, [
      { name: 'config-llm-template', namespace: 'system', source: 'Preset' },
      { name: 'config-llm-template', namespace: 'system', source: 'UserRef' },
    ]);
  });

  it("honours a kserve-config-llm-template override in the service's namespace (audit repro override-cfg)", () => {
    const { spec, applied } = compose({}, [config('kserve-config-llm-template', 'ns', 'team-a/vllm:custom')]);
    assert.equal(mainImage(spec), 'team-a/vllm:custom');
    assert.deepEqual(applied, ['kserve-config-llm-template']);
  });

  it('honours a kserve-config-llm-template override in the system namespace, over the installed preset there', () => {
    const { spec } = compose({}, [
      config('config-llm-template', 'system', 'installed'),
      config('kserve-config-llm-template', 'system', 'override'),
    ]);
    assert.equal(mainImage(spec), 'override');
  });

  it("prefers the service's namespace over the system namespace whichever spelling each uses", () => {
    assert.equal(
      mainImage(
        compose({}, [
          config('kserve-config-llm-template', 'system', 'system-kserve'),
          config('config-llm-template', 'ns', 'ns-llmisvc'),
        ]).spec,
      ),
      'ns-llmisvc',
    );
    assert.equal(
      mainImage(
        compose({}, [
          config('config-llm-template', 'ns', 'ns-llmisvc'),
          config('kserve-config-llm-template', 'ns', 'ns-kserve'),
        ]).spec,
      ),
      'ns-kserve',
    );
  });

  it('resolves a baseRef by the llmisvc spelling to a KServe-named override too (one role, two names)', () => {
    const { spec } = compose({ baseRefs: [{ name: 'config-llm-template' }] }, [
      config('kserve-config-llm-template', 'ns', 'ns-kserve'),
    ]);
    assert.equal(mainImage(spec), 'ns-kserve');
  });

  it('still names a missing KServe config that is not a preset of this system', () => {
    assert.throws(
      () => compose({ baseRefs: [{ name: 'kserve-config-llm-tracing' }] }, []),
      (e: unknown) =>
        e instanceof LlmisvcError &&
        e.code === 'LLMISVC_ERR_NOT_FOUND' &&
        /spec.baseRefs\[0\]: .*"kserve-config-llm-tracing" was not found/.test(e.message),
    );
  });
});

describe("KServe's .GlobalConfig keys", () => {
  const compose = (spec: LLMInferenceService['spec'], labels: Record<string, string>) =>
    composeSpec({
      service: service({ ...spec, labels }),
      configs: [],
      global,
      namespaces: ['ns', 'system'],
    }).spec.labels;

  it('renders SystemNamespace, EnableTLS, ModelBasedRoutingHeaderName and InferencePoolNamespacedName', () => {
    assert.deepEqual(
      compose(
        {},
        {
          system: '{{ .GlobalConfig.SystemNamespace }}',
          tls: '{{ if .GlobalConfig.EnableTLS }}on{{ else }}off{{ end }}',
          header: '{{ .GlobalConfig.ModelBasedRoutingHeaderName }}',
          pool: '{{ .GlobalConfig.InferencePoolNamespacedName }}',
        },
      ),
      { system: 'system', tls: 'off', header: 'X-Gateway-Model-Name', pool: 'ns/svc-inference-pool' },
    );
  });

  it("names the referenced pool in InferencePoolNamespacedName, as KServe's InferencePoolName does", () => {
    assert.deepEqual(
      compose(
        { router: { scheduler: { pool: { ref: { name: 'shared-pool' } } } } },
        { pool: '{{ .GlobalConfig.InferencePoolNamespacedName }}' },
      ),
      { pool: 'ns/shared-pool' },
    );
  });

  it('drops TLS-only args behind {{ if .GlobalConfig.EnableTLS }} (audit repro globalcfg)', () => {
    const { spec } = composeSpec({
      service: service({ baseRefs: [{ name: 'my-vllm-args' }] }),
      configs: [
        {
          apiVersion: 'serving.kserve.io/v1alpha2',
          kind: 'LLMInferenceServiceConfig',
          metadata: { name: 'my-vllm-args', namespace: 'ns' },
          spec: {
            template: {
              containers: [
                {
                  name: 'main',
                  args: ['--port', '8000', '{{ if .GlobalConfig.EnableTLS }}--ssl-certfile{{- end }}'],
                },
              ],
            },
          },
        },
      ],
      global,
      namespaces: ['ns', 'system'],
    });
    assert.deepEqual(spec.template?.containers?.find((c) => c.name === 'main')?.['args'], [
      '--port',
      '8000',
      '',
    ]);
  });
});
