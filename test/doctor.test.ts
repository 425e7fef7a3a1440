// `llmisvc doctor NAME` against the shared real API server: a missing service, a service no controller has touched,
// and one whose children exist but whose Gateway has no address, whose InferencePool no gateway has accepted and
// whose Endpoint Picker has no pod — each reported with the next command, the first problem repeated at the end.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type LLMInferenceService, toTypedObject } from '../src/api/index.js';
import { KubeClient, type KubeObject } from '../src/deps/index.js';
import { DEFAULT_RENDER_OPTIONS, parseApiVersions, renderService } from '../src/render/index.js';
import { createGateway, ensureNamespace, markDeployment } from './deps-fixtures.js';
import { CLI, REPO_ROOT } from './harness/repo.js';

const exec = promisify(execFile);
const kubeconfig = process.env['LLMISVC_TEST_KUBECONFIG'];
const NS = `doctor-${process.pid}`;

async function doctor(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(
      process.execPath,
      [CLI, 'doctor', '--kubeconfig', kubeconfig!, ...args],
      { cwd: REPO_ROOT },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const condition = (type: string, status: string, reason: string) => ({
  type,
  status,
  reason,
  message: `${reason} (set by the test)`,
  lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
});

async function patchStatus(client: KubeClient, path: string, status: unknown): Promise<void> {
  const response = await client.request(
    'PATCH',
    `${path}/status`,
    { status },
    'application/merge-patch+json',
  );
  assert.ok(
    response.status < 300,
    `${path}/status: HTTP ${response.status} ${JSON.stringify(response.body)}`,
  );
}

describe('llmisvc doctor (real API server)', () => {
  let client: KubeClient;
  const service: KubeObject = {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name: 'chat', namespace: NS },
    spec: {
      model: { uri: 'hf://Qwen/Qwen2.5-0.5B-Instruct', name: 'Qwen/Qwen2.5-0.5B-Instruct' },
      replicas: 2,
      router: { route: {}, gateway: { refs: [{ name: 'gw', namespace: NS }] }, scheduler: {} },
    },
  };

  before(async () => {
    assert.ok(kubeconfig, 'LLMISVC_TEST_KUBECONFIG is unset: run the integration tests through `npm test`');
    client = await KubeClient.load(kubeconfig);
    await ensureNamespace(client, NS);
  });

  after(async () => {
    // No namespace controller: delete what was created so the shared server stays small.
    await client?.request(
      'DELETE',
      `/apis/serving.kserve.io/v1alpha2/namespaces/${NS}/llminferenceservices/chat`,
    );
  });

  it('says when the service does not exist, and how to list the ones that do', async () => {
    const result = await doctor('nope', '-n', NS);
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      new RegExp(
        `FAIL LLMInferenceService ${NS}/nope: not found\\n {5}next: kubectl get llminferenceservices -n ${NS}`,
      ),
    );
  });

  it('says when no controller has reconciled the service, and which children are missing', async () => {
    await client.apply(service);
    const result = await doctor('chat', '-n', NS);
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      /FAIL LLMInferenceService .*: has no status conditions: no controller has reconciled it/,
    );
    assert.match(
      result.stdout,
      new RegExp(`FAIL Deployment ${NS}/chat-kserve: missing: the controller has not created it`),
    );
    assert.match(
      result.stdout,
      /diagnosis: not ready — start with LLMInferenceService .*\nnext: kubectl get pods -A -l app.kubernetes.io\/name=llmisvc-controller/,
    );
  });

  it("warns of an HTTPS probe on an image of its own; a KServe-style one on the presets' vLLM is written as HTTP", async () => {
    const https = { httpGet: { path: '/health', port: 8000, scheme: 'HTTPS' } };
    const probed = (main: object): KubeObject => ({
      ...service,
      metadata: { name: 'probed', namespace: NS },
      spec: { ...(service['spec'] as object), template: { containers: [{ name: 'main', ...main }] } },
    });
    await client.apply(probed({ readinessProbe: https }));
    try {
      const vllm = await doctor('probed', '-n', NS);
      assert.doesNotMatch(
        vllm.stdout,
        /httpGet\.scheme/,
        "the presets' vLLM: its probe is rendered with HTTP",
      );
      await client.apply(
        probed({ image: 'example.com/own-server:1', command: ['/server'], readinessProbe: https }),
      );
      const result = await doctor('probed', '-n', NS);
      assert.match(
        result.stdout,
        new RegExp(
          `warn LLMInferenceService ${NS}/probed: spec\\.template\\.containers\\[main\\]\\.readinessProbe\\.httpGet\\.scheme: HTTPS, but the model servers here serve plain HTTP.*\\n {5}next: kubectl edit llminferenceservice probed -n ${NS}  # drop scheme: HTTPS`,
        ),
      );
    } finally {
      await client.request(
        'DELETE',
        `/apis/serving.kserve.io/v1alpha2/namespaces/${NS}/llminferenceservices/probed`,
      );
    }
  });

  it('walks conditions, children, Gateway, route, pool, Endpoint Picker and endpoints', async () => {
    const live = (await client.get(
      `/apis/serving.kserve.io/v1alpha2/namespaces/${NS}/llminferenceservices/chat`,
    ))!;
    const typed = toTypedObject({
      object: {
        apiVersion: live.apiVersion,
        kind: live.kind,
        metadata: { name: 'chat', namespace: NS, uid: live.metadata!.uid },
        spec: live['spec'],
      },
      source: 'test',
    }) as LLMInferenceService;
    const rendered = renderService({
      service: typed,
      configs: [],
      apiVersions: parseApiVersions(undefined),
      options: DEFAULT_RENDER_OPTIONS,
    });
    for (const child of rendered.children) await client.apply(child);
    // What a controller and the cluster would have reported by now.
    await patchStatus(client, `/apis/serving.kserve.io/v1alpha2/namespaces/${NS}/llminferenceservices/chat`, {
      observedGeneration: live.metadata!.generation,
      conditions: [
        condition('Ready', 'False', 'RouterNotReady'),
        condition('RouterReady', 'False', 'GatewayNotProgrammed'),
      ],
    });
    await markDeployment(client, NS, 'chat-kserve', true);
    await markDeployment(client, NS, 'chat-kserve-router-scheduler', false);
    await createGateway(client, NS, 'gw', 'eg');
    await patchStatus(
      client,
      `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes/chat-kserve-route`,
      {
        parents: [
          {
            parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw', namespace: NS },
            controllerName: 'gateway.envoyproxy.io/gatewayclass-controller',
            conditions: [
              condition('Accepted', 'True', 'Accepted'),
              condition('ResolvedRefs', 'True', 'ResolvedRefs'),
            ],
          },
        ],
      },
    );
    await client.apply({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'chat-workload-1',
        namespace: NS,
        labels: { 'kubernetes.io/service-name': 'chat-kserve-workload-svc' },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.1.0.5'], conditions: { ready: true } }],
      ports: [{ name: 'https', port: 8000, protocol: 'TCP' }],
    });

    const result = await doctor('chat', '-n', NS);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const out = result.stdout;
    for (const expected of [
      new RegExp(
        `FAIL LLMInferenceService ${NS}/chat: Ready=False \\(RouterNotReady\\).*; RouterReady=False \\(GatewayNotProgrammed\\)`,
      ),
      new RegExp(`ok {3}Deployment ${NS}/chat-kserve: Available`),
      new RegExp(`FAIL Deployment ${NS}/chat-kserve-router-scheduler: not Available: 0/1 replicas ready`),
      new RegExp(
        `FAIL InferencePool ${NS}/chat-inference-pool: no gateway has reported on it .*\\n {5}next: llmisvc deps verify`,
      ),
      new RegExp(`ok {3}HTTPRoute ${NS}/chat-kserve-route: accepted by gw`),
      new RegExp(`FAIL Gateway ${NS}/gw: not Programmed: Programmed=False \\(AddressNotAssigned\\)`),
      new RegExp(
        `FAIL Gateway ${NS}/gw: has no address: the cluster hands out no LoadBalancer IP\\n {5}next: llmisvc deps lb kind`,
      ),
      new RegExp(
        `FAIL Endpoint Picker ${NS}/chat-epp-service: no ready pod behind Service chat-epp-service \\(0 ready endpoints\\)`,
      ),
      new RegExp(`ok {3}Service ${NS}/chat-kserve-workload-svc: 1 ready model-server endpoint`),
      new RegExp(`diagnosis: not ready — start with Deployment ${NS}/chat-kserve-router-scheduler`),
    ]) {
      assert.match(out, expected);
    }
    assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+/);

    const json = await doctor('chat', '-n', NS, '-o', 'json');
    const diagnosis = JSON.parse(json.stdout) as {
      ready: boolean;
      findings: { status: string; next?: string }[];
    };
    assert.equal(diagnosis.ready, false);
    assert.ok(
      diagnosis.findings.filter((f) => f.status === 'fail').every((f) => f.next),
      'every problem has a next command',
    );
  });
});
