// The CLI as users run it: exit codes, messages that name the field and say what to do, never a stack trace.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { CLI, REPO_ROOT } from './harness/repo.js';

const dir = mkdtempSync(join(tmpdir(), 'llmisvc-cli-'));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function assertNoStack(output: string) {
  assert.doesNotMatch(output, /\n\s+at .+:\d+:\d+/, `a stack trace was printed:\n${output}`);
}

describe('llmisvc validate', () => {
  it('exits 0 on every example', () => {
    const files = [
      'quickstart',
      'single-node',
      'no-scheduler',
      'prefill-decode',
      'multi-node-data-parallel',
      'dp-ep',
      'pipeline-parallel',
      'lora',
      'autoscaling-wva',
      'autoscaling-keda',
      'rollout-strategy',
      'kv-cache-offloading',
      'tracing',
    ];
    const result = run('validate', ...files.flatMap((f) => ['-f', `examples/${f}.yaml`]));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /valid: 13 objects/);
  });

  it('names both fields when replicas and scaling are both set', () => {
    const path = file(
      'replicas-and-scaling.yaml',
      `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: { name: both }
spec:
  model: { uri: hf://org/model }
  replicas: 2
  scaling: { maxReplicas: 4, wva: { hpa: {} } }
`,
    );
    const result = run('validate', '-f', path);
    assert.equal(result.code, 1, result.stdout);
    assert.match(result.stderr, /spec\.scaling: spec\.replicas and spec\.scaling cannot both be set/);
    assertNoStack(result.stderr);
  });

  it('exits 1 with every problem of every object as "<field path>: <message>"', () => {
    const path = file(
      'bad.yaml',
      `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: { name: bad }
spec:
  worker: {}
  parallelism: { data: 4 }
  router:
    route: { http: { refs: [{ name: r }], spec: {} } }
    scheduler: { config: {} }
---
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: { name: typo }
spec:
  replicas: -2
  templat: {}
`,
    );
    const result = run('validate', '-f', path);
    assert.equal(result.code, 1);
    for (const line of [
      'spec.parallelism.dataLocal: is required when data is set',
      'spec.router.route.http: refs and spec cannot both be set',
      'spec.router.scheduler.config: needs either inline',
      'spec.replicas: must be 0 or more',
      'spec.templat: unknown field "templat"',
    ]) {
      assert.ok(result.stderr.includes(line), `missing "${line}" in:\n${result.stderr}`);
    }
    assertNoStack(result.stderr);
  });

  it('explains a file that is not YAML, with the line', () => {
    const result = run('validate', '-f', file('broken.yaml', 'spec:\n  a: [1, 2\n  b: {\n'));
    assert.equal(result.code, 1);
    assert.match(result.stderr, /broken.yaml:\d+:\d+ is not valid YAML/);
    assertNoStack(result.stderr);
  });

  it('refuses a YAML alias bomb ("billion laughs") naming the file, without expanding it', () => {
    const levels = Array.from({ length: 10 }, (_, i) =>
      i === 0
        ? 'x0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]'
        : `x${i}: &a${i} [${Array(9)
            .fill(`*a${i - 1}`)
            .join(',')}]`,
    );
    const bomb = file(
      'bomb.yaml',
      `apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n${levels.join('\n')}\n`,
    );
    const result = run('validate', '-f', bomb);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /LLMISVC_ERR_INPUT: .*bomb\.yaml is not valid YAML: .*alias/i);
    assertNoStack(result.stderr);
  });

  it('names a wrong apiVersion and kind', () => {
    const result = run(
      'validate',
      '-f',
      file('kind.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n'),
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /apiVersion: must be serving.kserve.io\/v1alpha2/);
    assert.match(result.stderr, /kind: must be LLMInferenceService or LLMInferenceServiceConfig/);
  });

  it('names a missing file', () => {
    const result = run('validate', '-f', join(dir, 'nope.yaml'));
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot read .*nope.yaml: ENOENT/);
    assertNoStack(result.stderr);
  });

  it('checks an EndpointPickerConfig as the EPP loads it: problems by field, warnings for what it does not act on', () => {
    const head = 'apiVersion: llm-d.ai/v1\nkind: EndpointPickerConfig\n';
    const good = run(
      'validate',
      '-f',
      file(
        'epp.yaml',
        `${head}plugins:\n- type: queue-scorer\n  parameters: {depth: 3}\n- type: core-metrics-extractor\ndataLayer: {crossReplica: {syncInterval: 1s}}\n`,
      ),
    );
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^valid: 1 object/);
    assert.match(good.stderr, /warning: EndpointPickerConfig \(.*epp.yaml\) plugins\[1\]: .*not acted on/);
    assert.match(good.stderr, /dataLayer.crossReplica.syncInterval: accepted, not acted on/);
    // queue-scorer's upstream factory ignores its parameters: a warning, not a refusal.
    assert.match(good.stderr, /plugins\[0\]\.parameters\.depth: accepted, not acted on/);
    const bad = run(
      'validate',
      '-f',
      file(
        'epp-bad.yaml',
        `${head}plugins:\n- type: prefix-cache-scorer\n  parameters: {depth: 3}\n- type: no-such-scorer\n`,
      ),
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^EndpointPickerConfig \(.*epp-bad.yaml\):$/m);
    assert.match(bad.stderr, /plugins\[0\]\.parameters\.depth: unknown parameter/);
    assert.match(bad.stderr, /plugins\[1\]\.type: unknown plugin type "no-such-scorer"/);
    assert.match(bad.stderr, /2 problems found/);
    assertNoStack(bad.stderr);
  });

  it('checks the inline EndpointPickerConfig of a service, its own or from a config, as the EPP will load it', () => {
    const picker =
      '{apiVersion: llm-d.ai/v1, kind: EndpointPickerConfig, plugins: [{type: prefix-cache-scorer, parameters: {depth: 3}}]}';
    const service = (name: string, scheduler: string) =>
      `apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceService\nmetadata: {name: ${name}}\nspec:\n  model: {uri: hf://org/m}\n  router: {route: {}, gateway: {}, scheduler: ${scheduler}}\n`;
    const own = file('inline-bad.yaml', service('inline-bad', `{config: {inline: ${picker}}}`));
    for (const command of ['validate', 'render']) {
      const result = run(command, '-f', own);
      assert.equal(result.code, 1, `${command}: ${result.stdout}`);
      assert.match(
        result.stderr,
        /spec\.router\.scheduler\.config\.inline\.plugins\[0\]\.parameters\.depth: unknown parameter/,
        command,
      );
      assertNoStack(result.stderr);
    }
    // The same config from a baseRef: the merged spec is what the EPP gets.
    const configs = mkdtempSync(join(dir, 'picker-configs-'));
    writeFileSync(
      join(configs, 'picker.yaml'),
      `apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceServiceConfig\nmetadata: {name: picker}\nspec:\n  router: {scheduler: {config: {inline: ${picker}}}}\n`,
    );
    const inherited = file(
      'inline-inherited.yaml',
      service('inherited', '{}').replace('spec:\n', 'spec:\n  baseRefs: [{name: picker}]\n'),
    );
    const viaRef = run('validate', '-f', inherited, '--config-dir', configs);
    assert.equal(viaRef.code, 1, viaRef.stdout);
    assert.match(viaRef.stderr, /spec\.router\.scheduler\.config\.inline\.plugins\[0\]\.parameters\.depth/);
    // Another picker's image and command: its config is not ours to judge.
    const other = file(
      'inline-other-epp.yaml',
      service(
        'other-epp',
        `{config: {inline: ${picker}}, template: {containers: [{name: main, image: example.com/epp:1, command: [/app/epp]}]}}`,
      ),
    );
    const otherResult = run('validate', '-f', other);
    assert.equal(otherResult.code, 0, otherResult.stderr);
    // What the EPP accepts but does not act on is a warning, named by its place in the service.
    const ignored = file(
      'inline-ignored.yaml',
      service(
        'ignored',
        '{config: {inline: {apiVersion: llm-d.ai/v1, kind: EndpointPickerConfig, plugins: [{type: queue-scorer, parameters: {depth: 3}}]}}}',
      ),
    );
    for (const command of ['validate', 'render']) {
      const result = run(command, '-f', ignored);
      assert.equal(result.code, 0, `${command}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /warning: LLMInferenceService "ignored": spec\.router\.scheduler\.config\.inline\.plugins\[0\]\.parameters\.depth: accepted, not acted on/,
        command,
      );
    }
  });

  it('resolves baseRefs from --config-dir and reports a missing one', () => {
    const configs = mkdtempSync(join(dir, 'configs-'));
    writeFileSync(
      join(configs, 'gpu.yaml'),
      'apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceServiceConfig\nmetadata: {name: gpu}\nspec:\n  template:\n    containers: [{name: main, resources: {limits: {nvidia.com/gpu: "1"}}}]\n',
    );
    const svc = file(
      'ref.yaml',
      'apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceService\nmetadata: {name: ref}\nspec:\n  baseRefs: [{name: gpu}]\n',
    );
    assert.equal(run('validate', '-f', svc, '--config-dir', configs).code, 0);
    const missing = run('validate', '-f', svc);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /spec.baseRefs\[0\]: LLMInferenceServiceConfig "gpu" was not found/);
  });

  it('finds shared configs in --system-namespace, as the controller does (KServe installs them into kserve)', () => {
    const configs = mkdtempSync(join(dir, 'kserve-configs-'));
    writeFileSync(
      join(configs, 'gpu.yaml'),
      'apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceServiceConfig\nmetadata: {name: gpu, namespace: kserve}\nspec:\n  template:\n    containers: [{name: main, resources: {limits: {nvidia.com/gpu: "1"}}}]\n',
    );
    const svc = file(
      'ref-kserve.yaml',
      'apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceService\nmetadata: {name: ref, namespace: team}\nspec:\n  baseRefs: [{name: gpu}]\n  router: {route: {}, gateway: {}, scheduler: {}}\n',
    );
    const elsewhere = run('validate', '-f', svc, '--config-dir', configs);
    assert.equal(elsewhere.code, 1);
    assert.match(elsewhere.stderr, /not found in namespace team or llmisvc-system/);
    const found = run('validate', '-f', svc, '--config-dir', configs, '--system-namespace', 'kserve');
    assert.equal(found.code, 0, found.stderr);
    assert.match(found.stdout, /default gateway kserve\//);
    const rendered = run('render', '-f', svc, '--config-dir', configs, '--system-namespace', 'kserve');
    assert.equal(rendered.code, 0, rendered.stderr);
    const objects = parseAllDocuments(rendered.stdout).map(
      (d) => d.toJS() as { kind: string; metadata: { namespace?: string }; spec?: unknown },
    );
    // The default Gateway goes with the system namespace unless --gateway-namespace says otherwise.
    assert.equal(objects.find((o) => o.kind === 'Gateway')?.metadata.namespace, 'kserve');
    assert.match(JSON.stringify(objects), /"nvidia.com\/gpu":"1"/);
  });
});

describe('llmisvc render', () => {
  it('prints a v1 List with -o json', () => {
    const result = run('render', '-f', 'examples/quickstart.yaml', '-o', 'json');
    assert.equal(result.code, 0, result.stderr);
    const list = JSON.parse(result.stdout) as { apiVersion: string; kind: string; items: { kind: string }[] };
    assert.equal(list.kind, 'List');
    assert.equal(list.apiVersion, 'v1');
    assert.deepEqual([...new Set(list.items.map((i) => i.kind))].sort(), [
      'Deployment',
      'Gateway',
      'HTTPRoute',
      'InferencePool',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
  });

  it('prints one YAML document per object, and the default Gateway once for several services', () => {
    const result = run('render', '-f', 'examples/quickstart.yaml', '-f', 'examples/lora.yaml');
    assert.equal(result.code, 0, result.stderr);
    const kinds = parseAllDocuments(result.stdout).map((d) => (d.toJS() as { kind: string }).kind);
    assert.equal(kinds.filter((k) => k === 'Gateway').length, 1);
    assert.equal(kinds.filter((k) => k === 'HTTPRoute').length, 2);
  });

  it('fails with the missing API and how to install it when --api-versions lacks one', () => {
    const result = run(
      'render',
      '-f',
      'examples/multi-node-data-parallel.yaml',
      '--api-versions',
      'gateway.networking.k8s.io/v1,inference.networking.k8s.io/v1',
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /needs APIs the target cluster does not serve/);
    assert.match(result.stderr, /worker: needs LeaderWorkerSet \(leaderworkerset.x-k8s.io\/v1\)/);
    assert.match(result.stderr, /hint: .*LeaderWorkerSet/);
  });

  it('reads v1alpha1 manifests (criticality, old pool shape) and renders them as v1alpha2', () => {
    const path = file(
      'old.yaml',
      `apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: { name: old, namespace: ns }
spec:
  model: { uri: "hf://org/m", criticality: Sheddable }
  router: { scheduler: {} }
`,
    );
    const result = run('render', '-f', path, '--api-versions', 'inference.networking.x-k8s.io/v1alpha2');
    assert.equal(result.code, 0, result.stderr);
    const model = parseAllDocuments(result.stdout)
      .map((d) => d.toJS() as { kind: string; spec: { criticality: string } })
      .find((o) => o.kind === 'InferenceModel');
    assert.equal(model?.spec.criticality, 'Sheddable');
  });

  it('warns on stderr when two services of a file claim one model name; stdout stays pure YAML, exit 0', () => {
    const service = (name: string, model: string, extra = '') => `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: { name: ${name}, namespace: team }
spec:
  model: { uri: hf://org/${name}, name: ${JSON.stringify(model)} }
  router: { route: {${extra}}, gateway: {} }
`;
    const path = file(
      'collision.yaml',
      [service('zeta', 'org/llama'), service('alpha', 'org/llama')].join('---\n'),
    );
    const result = run('render', '-f', path);
    assert.equal(result.code, 0, result.stderr);
    const warnings = result.stderr.split('\n').filter(Boolean);
    assert.equal(warnings.length, 1, result.stderr);
    for (const part of [
      /^warning: LLMInferenceService team\/zeta claims model name "org\/llama", as alpha in the same file does/,
      /alpha keeps it here and zeta is rendered without model-name rules/,
      /the oldest service keeps the name/,
      /ModelNameRouted=False \(reason ModelNameCollision\)/,
      /give it another spec\.model\.name, or join their routing group/,
    ])
      assert.match(warnings[0]!, part);
    // stdout: YAML documents only, each a Kubernetes object; the keeper's route matches the model name, the other's not.
    const docs = parseAllDocuments(result.stdout);
    assert.ok(docs.every((d) => d.errors.length === 0));
    const objects = docs.map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    assert.ok(objects.every((o) => typeof o.kind === 'string' && typeof o.metadata.name === 'string'));
    assert.doesNotMatch(result.stdout, /warning/);
    const routeOf = (name: string) =>
      JSON.stringify(objects.find((o) => o.kind === 'HTTPRoute' && o.metadata.name.startsWith(name)));
    assert.match(routeOf('alpha'), /X-Gateway-Model-Name/);
    assert.doesNotMatch(routeOf('zeta'), /X-Gateway-Model-Name/);

    // Members of one routing group share the name on purpose: no warning.
    const group = ' group: canary, weight: 50 ';
    const shared = file(
      'group.yaml',
      [service('zeta', 'org/llama', group), service('alpha', 'org/llama', group)].join('---\n'),
    );
    const grouped = run('render', '-f', shared);
    assert.equal(grouped.code, 0, grouped.stderr);
    assert.equal(grouped.stderr, '');

    // validate: the same warning, and the file stays valid (the controller serves both, one without the name).
    const validated = run('validate', '-f', path);
    assert.equal(validated.code, 0, validated.stderr);
    assert.match(validated.stdout, /^valid: 2 objects/);
    assert.equal(validated.stderr, `${warnings[0]}\n`);
    const validGroup = run('validate', '-f', shared);
    assert.equal(validGroup.code, 0, validGroup.stderr);
    assert.equal(validGroup.stderr, '');
  });

  it('quotes a hostile model name in the warning: no raw control characters, bounded length', () => {
    // C0 controls (escape, newline) are refused in a model name (it goes into shell scripts); C1 ones pass there.
    const evil = `evil\u009b31m\u0085name\u009b${'x'.repeat(5000)}`;
    const service = (name: string) => `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: { name: ${name} }
spec:
  model: { uri: hf://org/m, name: ${JSON.stringify(evil)} }
`;
    const result = run('render', '-f', file('evil.yaml', [service('a1'), service('b1')].join('---\n')));
    assert.equal(result.code, 0, result.stderr);
    const raw = [...result.stderr].filter((ch) => {
      const code = ch.charCodeAt(0);
      return (code < 0x20 && ch !== '\n') || (code >= 0x7f && code <= 0x9f);
    });
    assert.deepEqual(raw, [], 'no raw control characters');
    assert.match(result.stderr, /claims model name "evil\\u009b31m\\u0085name\\u009bx+…"/);
    assert.ok(result.stderr.length < 2_000, `${result.stderr.length} characters`);
  });

  it('rejects an unknown output format', () => {
    const result = run('render', '-f', 'examples/quickstart.yaml', '-o', 'xml');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--output must be yaml or json/);
    assert.equal(parse(result.stdout ?? ''), null);
  });
});

describe('llmisvc render: autoscaling settings', () => {
  it('puts --prometheus-url into the WVA ScaledObject and --wva-discovery annotations on the HPA', () => {
    const result = run(
      'render',
      '-f',
      'examples/autoscaling-wva.yaml',
      '--prometheus-url',
      'https://thanos.monitoring:9091',
      '--wva-discovery',
      'annotations',
    );
    assert.equal(result.code, 0, result.stderr);
    const objects = parseAllDocuments(result.stdout).map((d) => d.toJS() as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
    const so = objects.find((o) => o['kind'] === 'ScaledObject')!;
    assert.equal(so['spec'].triggers[0].metadata.serverAddress, 'https://thanos.monitoring:9091');
    assert.equal(
      objects.find((o) => o['kind'] === 'HorizontalPodAutoscaler')!['metadata'].annotations[
        'llm-d.ai/managed'
      ],
      'true',
    );
    assert.equal(
      objects.some((o) => o['kind'] === 'VariantAutoscaling'),
      false,
    );
  });

  it('rejects a Prometheus URL that is not http(s), naming the flag', () => {
    const result = run(
      'render',
      '-f',
      'examples/autoscaling-wva.yaml',
      '--prometheus-url',
      'prometheus:9090',
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--prometheus-url must be an http\(s\) URL/);
    assertNoStack(result.stderr);
  });
});
