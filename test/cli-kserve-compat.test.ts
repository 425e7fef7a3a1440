// KServe manifests as written, through the CLI (the audit's minimal repros): integer quantities, KServe's preset
// names in baseRefs and overrides, KServe's .GlobalConfig keys, VLLM_ADDITIONAL_ARGS, HTTPS probes and a v0.15
// scheduler preset.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CLI, REPO_ROOT } from './harness/repo.js';

const dir = mkdtempSync(join(tmpdir(), 'llmisvc-kserve-compat-'));

function file(name: string, content: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  return path;
}

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

type Json = Record<string, unknown>;
function rendered(stdout: string, kind: string): Json[] {
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as Json)
    .filter((o) => o['kind'] === kind);
}

const opt = (extra = '') => `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: { name: opt, namespace: team-a }
spec:
  model: { uri: hf://facebook/opt-125m, name: facebook/opt-125m }
${extra}`;

describe('KServe manifests through llmisvc validate and render', () => {
  it('accepts integer resource quantities and emptyDir sizeLimit', () => {
    const path = file(
      'int-quantity.yaml',
      opt(`  template:
    containers:
      - name: main
        resources: { limits: { cpu: 16, nvidia.com/gpu: 8 }, requests: { cpu: 4 } }
    volumes:
      - { name: dshm, emptyDir: { medium: Memory, sizeLimit: 1073741824 } }
`),
    );
    const result = run('validate', '-f', path);
    assert.equal(result.code, 0, result.stderr);
  });

  it('still names a quantity that is not one', () => {
    const path = file(
      'bad-quantity.yaml',
      opt(`  template:
    containers:
      - { name: main, resources: { limits: { cpu: lots, memory: 0.5 } } }
`),
    );
    const result = run('validate', '-f', path);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr + result.stdout,
      /spec\.template\.containers\[0\]\.resources\.limits\.cpu: must be a quantity such as 16, "500m" or "10Gi", not "lots"/,
    );
    assert.match(
      result.stderr + result.stdout,
      /limits\.memory: must be a quantity .*write fractions as a string/,
    );
  });

  it('resolves baseRefs: [kserve-config-llm-template] to the shipped preset', () => {
    const path = file(
      'baseref.yaml',
      opt(`  baseRefs: [{ name: kserve-config-llm-template }]
  router: { route: {}, scheduler: {} }
`),
    );
    const result = run('validate', '-f', path);
    assert.equal(result.code, 0, result.stderr);
  });

  it("honours a kserve-config-llm-template override in the service's namespace", () => {
    const configs = join(dir, 'override-cfg');
    file(
      'override-cfg/kserve-config-llm-template.yaml',
      `apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceServiceConfig
metadata: { name: kserve-config-llm-template, namespace: team-a }
spec:
  template:
    containers: [{ name: main, image: registry.example.com/team-a/vllm:custom }]
`,
    );
    const result = run(
      'render',
      '-f',
      file('override.yaml', opt('  router: { route: {} }\n')),
      '--config-dir',
      configs,
    );
    assert.equal(result.code, 0, result.stderr);
    const [deployment] = rendered(result.stdout, 'Deployment');
    assert.match(JSON.stringify(deployment), /"image":"registry\.example\.com\/team-a\/vllm:custom"/);
  });

  it("renders KServe's .GlobalConfig keys (EnableTLS is false: the model servers serve plain HTTP)", () => {
    const configs = join(dir, 'globalcfg');
    file(
      'globalcfg/tls-config.yaml',
      `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceServiceConfig
metadata: { name: my-vllm-args }
spec:
  labels:
    system: "{{ .GlobalConfig.SystemNamespace }}"
  annotations:
    pool: "{{ .GlobalConfig.InferencePoolNamespacedName }}"
  template:
    containers:
      - name: main
        args: [--port, "8000", "{{ if .GlobalConfig.EnableTLS }}--ssl-certfile{{- end }}"]
`,
    );
    const path = file('globalcfg-svc.yaml', opt('  baseRefs: [{ name: my-vllm-args }]\n'));
    const result = run('render', '-f', path, '--config-dir', configs);
    assert.equal(result.code, 0, result.stderr);
    const [deployment] = rendered(result.stdout, 'Deployment');
    const template = (deployment!['spec'] as Json)['template'] as {
      metadata: { labels: Json; annotations: Json };
    };
    assert.equal(template.metadata.labels['system'], 'llmisvc-system');
    // An annotation: "/" is not allowed in a label value (validation says so once the template is rendered).
    assert.equal(template.metadata.annotations['pool'], 'team-a/opt-inference-pool');
    assert.doesNotMatch(JSON.stringify(deployment), /ssl-certfile/);
  });

  it('passes VLLM_ADDITIONAL_ARGS to vllm serve, as KServe presets do', () => {
    const path = file(
      'extra-args.yaml',
      opt(`  template:
    containers:
      - name: main
        env: [{ name: VLLM_ADDITIONAL_ARGS, value: "--enforce-eager --max-model-len 4096" }]
`),
    );
    const result = run('render', '-f', path);
    assert.equal(result.code, 0, result.stderr);
    const [deployment] = rendered(result.stdout, 'Deployment');
    const pod = ((deployment!['spec'] as Json)['template'] as Json)['spec'] as { containers: Json[] };
    const main = pod.containers.find((c) => c['name'] === 'main')!;
    assert.deepEqual(main['command'], [
      '/bin/bash',
      '-c',
      'eval "set -- ${VLLM_ADDITIONAL_ARGS:-} \\"\\$@\\""; exec vllm serve /mnt/models "$@"',
      '--',
    ]);
    assert.deepEqual(main['env'], [
      { name: 'HOME', value: '/home' },
      { name: 'VLLM_LOGGING_LEVEL', value: 'INFO' },
      { name: 'HF_HUB_CACHE', value: '/models' },
      { name: 'VLLM_ADDITIONAL_ARGS', value: '--enforce-eager --max-model-len 4096' },
    ]);
  });

  it("writes KServe's HTTPS probes on the presets' plain-HTTP vLLM with HTTP; an own image's HTTPS probe is a warning", () => {
    const path = file(
      'https-probe.yaml',
      opt(`  template:
    containers:
      - name: main
        livenessProbe: { httpGet: { path: /health, port: 8000, scheme: HTTPS } }
        readinessProbe: { httpGet: { path: /health, port: 8000 } }
`),
    );
    const validated = run('validate', '-f', path);
    assert.equal(validated.code, 0, validated.stderr);
    assert.equal(validated.stderr, '');
    const rendered = run('render', '-f', path);
    assert.equal(rendered.code, 0, rendered.stderr);
    const deployment = parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: unknown })
      .find((o) => o.kind === 'Deployment' && o.metadata.name === 'opt-kserve')!;
    const main = (
      deployment.spec as {
        template: {
          spec: { containers: { name: string; livenessProbe: { httpGet: { scheme: string } } }[] };
        };
      }
    ).template.spec.containers.find((c) => c.name === 'main')!;
    assert.equal(main.livenessProbe.httpGet.scheme, 'HTTP');

    const own = file(
      'https-probe-own-image.yaml',
      opt(`  template:
    containers:
      - name: main
        image: example.com/own-server:1
        command: [/server]
        livenessProbe: { httpGet: { path: /health, port: 8000, scheme: HTTPS } }
`),
    );
    for (const command of ['validate', 'render']) {
      const result = run(command, '-f', own);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(
        result.stderr,
        'warning: LLMInferenceService "opt": spec.template.containers[main].livenessProbe.httpGet.scheme: HTTPS, ' +
          'but the model servers here serve plain HTTP (.GlobalConfig.EnableTLS is false): this probe will fail unless ' +
          'the image serves TLS itself; drop the scheme\n',
        command,
      );
    }
  });

  it("gives a v0.15-shaped scheduler preset's pool a selector and the picker port", () => {
    const configs = join(dir, 'empty-selector-cfg');
    file(
      'empty-selector-cfg/kserve-config-llm-scheduler.yaml',
      `apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceServiceConfig
metadata: { name: kserve-config-llm-scheduler }
spec:
  router:
    scheduler:
      pool:
        spec:
          extensionRef: { failureMode: FailOpen, kind: Service, name: "{{ ChildName .ObjectMeta.Name \`-epp-service\` }}" }
          selector: {}
          targetPortNumber: 8000
`,
    );
    const path = file('empty-selector.yaml', opt('  router: { scheduler: {} }\n'));
    const result = run('render', '-f', path, '--config-dir', configs);
    assert.equal(result.code, 0, result.stderr);
    const [pool] = rendered(result.stdout, 'InferencePool');
    assert.deepEqual((pool!['spec'] as Json)['selector'], {
      matchLabels: {
        'app.kubernetes.io/name': 'opt',
        'app.kubernetes.io/part-of': 'llminferenceservice',
        'kserve.io/component': 'workload',
      },
    });
    assert.deepEqual(((pool!['spec'] as Json)['endpointPickerRef'] as Json)['port'], { number: 9002 });
  });
});
