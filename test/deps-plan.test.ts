// `llmisvc deps plan` for each example's feature mix: which steps, in which order, for which provider — pure, from
// the renderer's needs of the merged spec; plus the CLI's output formats and exit codes (plan and lb need no cluster).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import {
  parseDocuments,
  toTypedObject,
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
} from '../src/api/index.js';
import {
  ALL_FEATURES,
  deriveRange,
  parseProvider,
  planSteps,
  PROVIDERS,
  type ServiceNeeds,
  servicesNeeds,
  stepOrder,
} from '../src/deps/index.js';
import { CLI, REPO_ROOT } from './harness/repo.js';

function example(name: string): ServiceNeeds[] {
  const typed = parseDocuments(readFileSync(join(REPO_ROOT, 'examples', `${name}.yaml`), 'utf8'), name).map(
    toTypedObject,
  );
  return servicesNeeds(
    typed.filter((o): o is LLMInferenceService => o.kind === 'LLMInferenceService'),
    typed.filter((o): o is LLMInferenceServiceConfig => o.kind === 'LLMInferenceServiceConfig'),
  );
}

const ROUTE_ONLY = ['gateway-api', 'envoy-gateway'];
const SCHEDULED = ['gateway-api', 'gateway-api-inference-extension', 'envoy-gateway'];
const MULTI_NODE = ['cert-manager', 'gateway-api', 'gateway-api-inference-extension', 'envoy-gateway', 'lws'];

describe('deps plan: the dependency matrix per example', () => {
  const cases: [string, string[]][] = [
    ['quickstart', SCHEDULED],
    ['single-node', SCHEDULED],
    ['no-scheduler', ROUTE_ONLY], // single node, no scheduler: no GIE, no LWS
    ['prefill-decode', SCHEDULED], // P/D always needs GIE
    ['lora', SCHEDULED],
    ['multi-node-data-parallel', MULTI_NODE], // a worker: LWS, and cert-manager first
    ['pipeline-parallel', MULTI_NODE],
    ['dp-ep', MULTI_NODE],
  ];
  for (const [name, expected] of cases) {
    it(`${name}: ${expected.join(' → ')}`, () => {
      assert.deepEqual(
        planSteps(example(name), 'envoy-gateway').map((s) => s.name),
        expected,
      );
    });
  }

  it('puts the chosen provider where envoy-gateway was, with the flags it needs for InferencePool', () => {
    const flags: Record<string, RegExp> = {
      istio: /ENABLE_GATEWAY_API_INFERENCE_EXTENSION=true/,
      kgateway: /inferenceExtension\.enabled=true/,
      agentgateway: /inferenceExtension\.enabled=true/,
      'envoy-gateway': /inference-pool\/envoy-gateway-values-addon\.yaml/,
    };
    for (const provider of PROVIDERS) {
      const steps = planSteps(example('dp-ep'), provider);
      assert.deepEqual(
        steps.map((s) => s.name),
        ['cert-manager', 'gateway-api', 'gateway-api-inference-extension', provider, 'lws'],
      );
      const step = steps.find((s) => s.name === provider)!;
      assert.match(step.commands.join('\n'), flags[provider]!);
      assert.match(step.version, /^v?\d+\.\d+\.\d+$/);
      assert.ok(
        step.verify.some((v) => v.includes('kubectl wait')),
        `${provider} has no wait command`,
      );
    }
  });

  it('merges several services: the union of their needs, still in order, each named in the reasons', () => {
    const steps = planSteps([...example('no-scheduler'), ...example('pipeline-parallel')], 'istio');
    assert.deepEqual(
      steps.map((s) => s.name),
      ['cert-manager', 'gateway-api', 'gateway-api-inference-extension', 'istio', 'lws'],
    );
    const gateway = steps.find((s) => s.name === 'gateway-api')!;
    assert.match(gateway.reason, /llm\/opt-plain/);
    assert.match(steps.find((s) => s.name === 'lws')!.reason, /a workload with a worker/);
  });

  it('counts what presets and baseRefs add: a worker from a baseRef config brings LWS and cert-manager', () => {
    const [config, service] = parseDocuments(
      `apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceServiceConfig
metadata: { name: multi-node, namespace: llm }
spec:
  worker: { containers: [{ name: main }] }
  parallelism: { data: 4, dataLocal: 2, tensor: 1 }
---
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: { name: via-base, namespace: llm }
spec:
  baseRefs: [{ name: multi-node }]
  model: { uri: hf://org/m, name: org/m }
  router: { route: {} }
`,
      'inline',
    ).map(toTypedObject) as [LLMInferenceServiceConfig, LLMInferenceService];
    assert.throws(() => servicesNeeds([service], []), { code: 'LLMISVC_ERR_NOT_FOUND' });
    const merged = servicesNeeds([service], [config]);
    assert.deepEqual(
      planSteps(merged, 'envoy-gateway').map((s) => s.name),
      ['cert-manager', 'gateway-api', 'envoy-gateway', 'lws'],
    );
  });

  it('plans every feature when no service is given, and every plan follows the one order', () => {
    assert.deepEqual(
      planSteps([ALL_FEATURES], 'kgateway').map((s) => s.name),
      stepOrder('kgateway'),
    );
    for (const name of ['quickstart', 'no-scheduler', 'dp-ep']) {
      const names = planSteps(example(name), 'agentgateway').map((s) => s.name);
      const order = stepOrder('agentgateway');
      assert.deepEqual(
        [...names].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
        names,
      );
    }
  });

  it('refuses an unknown provider with the list of known ones', () => {
    assert.throws(() => parseProvider('nginx'), {
      code: 'LLMISVC_ERR_CONFIG',
      hint: /envoy-gateway, istio, kgateway, agentgateway/,
    });
  });
});

describe('deps lb: address ranges', () => {
  const cases: [string[], number, string][] = [
    [['172.18.0.2', '172.18.0.3'], 16, '172.18.255.200-172.18.255.250'], // kind's Docker network
    [['192.168.1.17'], 24, '192.168.1.200-192.168.1.250'],
    [['10.0.0.30'], 27, '10.0.0.1-10.0.0.26'],
  ];
  for (const [ips, prefix, range] of cases) {
    it(`${ips.join(',')}/${prefix} → ${range}`, () => assert.equal(deriveRange(ips, prefix), range));
  }
  it('refuses a derived range that would contain a node', () => {
    assert.throws(() => deriveRange(['192.168.1.220'], 24), { code: 'LLMISVC_ERR_CONFIG', hint: /--range/ });
  });
  it('refuses nodes without IPv4 addresses, saying to pass --range', () => {
    assert.throws(() => deriveRange(['fd00::2'], 24), { hint: /--range A-B/ });
  });
});

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('llmisvc deps plan / lb (CLI)', () => {
  it('prints JSON steps {name, version, reason, commands, verify} for the given files', () => {
    const result = run('deps', 'plan', '-f', 'examples/multi-node-data-parallel.yaml', '-o', 'json');
    assert.equal(result.code, 0, result.stderr);
    const steps = JSON.parse(result.stdout) as Record<string, unknown>[];
    assert.deepEqual(
      steps.map((s) => s['name']),
      MULTI_NODE,
    );
    for (const step of steps) {
      for (const key of ['name', 'version', 'reason', 'commands', 'verify'])
        assert.ok(key in step, `${key} missing`);
    }
  });

  it('prints a numbered text runbook naming the next command', () => {
    const result = run('deps', 'plan', '-f', 'examples/quickstart.yaml', '--provider', 'istio');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /## 1\. gateway-api v\d/);
    assert.match(result.stdout, /## 3\. istio 1\.\d+\.\d+/);
    assert.match(result.stdout, /llmisvc deps install --provider istio/);
  });

  it('exits 1 with the hint on a bad provider, format or file, without a stack trace', () => {
    for (const [args, message] of [
      [['deps', 'plan', '--provider', 'traefik'], /unknown gateway provider "traefik"/],
      [['deps', 'plan', '-o', 'yaml'], /--output must be text or json/],
      [['deps', 'plan', '-f', 'nope.yaml'], /cannot read nope\.yaml/],
    ] as const) {
      const result = run(...args);
      assert.equal(result.code, 1);
      assert.match(result.stderr, message);
      assert.match(result.stderr, /hint: |error LLMISVC_ERR_CONFIG/);
      assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+/);
    }
  });

  it('prints MetalLB pools in the current and the legacy form', () => {
    const current = run('deps', 'lb', 'metallb', '--range', '172.18.255.200-172.18.255.250');
    assert.equal(current.code, 0, current.stderr);
    const objects = parseAllDocuments(current.stdout).map(
      (d) => d.toJS() as { kind: string; spec: Record<string, unknown> },
    );
    assert.deepEqual(
      objects.map((o) => o.kind),
      ['IPAddressPool', 'L2Advertisement'],
    );
    assert.deepEqual(objects[0]!.spec['addresses'], ['172.18.255.200-172.18.255.250']);
    const legacy = run('deps', 'lb', 'metallb', '--range', '192.168.1.240/28', '--legacy');
    const configMap = parseAllDocuments(legacy.stdout)[0]!.toJS() as {
      kind: string;
      data: { config: string };
    };
    assert.equal(configMap.kind, 'ConfigMap');
    assert.match(configMap.data.config, /protocol: layer2\n {2}addresses:\n {2}- 192\.168\.1\.240\/28/);
    const bad = run('deps', 'lb', 'metallb', '--range', '10.0.0.9-10.0.0.1');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /hint: for example --range/);
  });

  it('prints the kind and port-forward commands with their limits', () => {
    const kind = run('deps', 'lb', 'kind');
    assert.match(kind.stdout, /go install sigs\.k8s\.io\/cloud-provider-kind@v\d/);
    assert.match(kind.stdout, /exclude-from-external-load-balancers-/);
    const forward = run('deps', 'lb', 'port-forward', '--provider', 'istio', '--gateway', 'gw/web');
    assert.match(
      forward.stdout,
      /kubectl port-forward -n gw .*gateway\.networking\.k8s\.io\/gateway-name=web/,
    );
    assert.match(forward.stdout, /no load balancing across gateway replicas/);
    assert.equal(run('deps', 'lb', 'port-forward', '--gateway', 'web').code, 1);
  });
});

// The plan's air-gapped lines name the files `install --from DIR` reads.
describe('deps plan: air-gapped file names', () => {
  it('names one file per step, matching install --from', () => {
    for (const step of planSteps([ALL_FEATURES], 'envoy-gateway')) {
      assert.ok(
        step.airGapped.some((line) => line.includes(`DIR/${step.name}.yaml`)),
        step.name,
      );
    }
  });
});
