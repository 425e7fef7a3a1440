// `llmisvc deps verify` against a real API server: dependency CRDs missing, installed after the provider's pods
// started (the restart command), a Gateway without an address, and finally healthy — exit codes and messages as a
// user sees them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  compareVersions,
  evaluateCluster,
  INFERENCE_POOL_CRD,
  observeCluster,
  planSteps,
  ALL_FEATURES,
} from '../src/deps/index.js';
import {
  acceptGatewayClass,
  createDeployment,
  createGateway,
  createPod,
  deletePod,
  lwsWebhookObjects,
  setGatewayAddress,
  startTestCluster,
  type TestCluster,
  cli,
} from './deps-fixtures.js';

const EG = 'envoy-gateway-system';
const HOUR_AGO = new Date(Date.now() - 3_600_000);

describe('llmisvc deps verify (real API server)', () => {
  let cluster: TestCluster;
  let verify: (...files: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

  before(async () => {
    // Gateway API only: GIE and LWS are missing at first.
    cluster = await startTestCluster('deps-verify', ['gateway-api']);
    verify = (...files) =>
      cli(
        'deps',
        'verify',
        '--kubeconfig',
        cluster.server.kubeconfigPath,
        ...files.flatMap((f) => ['-f', f]),
      );
    // An Envoy Gateway that has been running for an hour, a class it accepted, a Gateway with no address.
    await createDeployment(cluster.client, EG, 'envoy-gateway');
    await createDeployment(cluster.client, 'envoy-ai-gateway-system', 'ai-gateway-controller');
    await createPod(cluster.client, EG, 'envoy-gateway-old', { app: 'envoy-gateway' }, HOUR_AGO);
    await acceptGatewayClass(cluster.client, 'eg', 'gateway.envoyproxy.io/gatewayclass-controller');
    await createGateway(cluster.client, 'llmisvc-system', 'llmisvc-gateway', 'eg');
  });

  after(async () => cluster?.stop());

  it('a single-node service without scheduler needs no GIE: only the missing address fails', async () => {
    const result = await verify('examples/no-scheduler.yaml');
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(
      result.stdout,
      /# llmisvc deps verify \(provider envoy-gateway\)/,
      'the running provider is detected',
    );
    assert.match(
      result.stdout,
      /ok {3}gateway-api: CRD gateways\.gateway\.networking\.k8s\.io Established \(bundle v1\.\d+\.\d+\)/,
    );
    assert.match(result.stdout, /ok {3}envoy-gateway: GatewayClass eg Accepted/);
    assert.doesNotMatch(result.stdout, /inference/);
    assert.match(
      result.stdout,
      /FAIL load-balancer: Gateway llmisvc-system\/llmisvc-gateway has no address \(Programmed=False, AddressNotAssigned\)/,
    );
    assert.match(result.stdout, /next: on kind: `llmisvc deps lb kind`/);
    assert.equal(result.stdout.match(/^FAIL/gm)?.length, 1);
  });

  it('a scheduled service fails while the GIE CRDs are missing, naming the install command', async () => {
    const result = await verify('examples/quickstart.yaml');
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      /FAIL gateway-api-inference-extension: CRD inferencepools\.inference\.networking\.k8s\.io is not installed\n {5}next: llmisvc deps install/,
    );
    assert.match(
      result.stdout,
      /FAIL gateway-api-inference-extension: the API group inference\.networking\.k8s\.io is not served/,
    );
  });

  it('GIE CRDs created after the provider started: says to restart it, with the exact command', async () => {
    await cluster.server.installCrds(['inference-extension']);
    const result = await verify('examples/quickstart.yaml');
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      /ok {3}gateway-api-inference-extension: CRD inferencepools\.inference\.networking\.k8s\.io Established/,
    );
    assert.match(
      result.stdout,
      /FAIL envoy-gateway: envoy-gateway pod\(s\) envoy-gateway-old \(started [^)]+\) started before the InferencePool CRD was created/,
    );
    assert.match(
      result.stdout,
      /next: kubectl rollout restart deployment\/envoy-gateway -n envoy-gateway-system && kubectl rollout status deployment\/envoy-gateway -n envoy-gateway-system --timeout=5m/,
    );
  });

  it('exits 0 once the provider restarted after the CRDs and the Gateway has an address', async () => {
    const crd = await cluster.client.get(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${INFERENCE_POOL_CRD}`,
    );
    const created = Date.parse(crd!.metadata!.creationTimestamp!);
    await deletePod(cluster.client, EG, 'envoy-gateway-old');
    await createPod(
      cluster.client,
      EG,
      'envoy-gateway-new',
      { app: 'envoy-gateway' },
      new Date(created + 60_000),
    );
    await setGatewayAddress(cluster.client, 'llmisvc-system', 'llmisvc-gateway', '172.18.255.200');
    const result = await verify('examples/quickstart.yaml');
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /envoy-gateway started after the InferencePool CRD was created/);
    assert.match(
      result.stdout,
      /ok {3}load-balancer: Gateway llmisvc-system\/llmisvc-gateway has address 172\.18\.255\.200/,
    );
    assert.match(result.stdout, /healthy: every dependency the services need is installed and running/);
  });

  it('a multi-node service still fails: LWS and cert-manager are missing (JSON output)', async () => {
    const result = await cli(
      'deps',
      'verify',
      '--kubeconfig',
      cluster.server.kubeconfigPath,
      '-f',
      'examples/dp-ep.yaml',
      '-o',
      'json',
    );
    assert.equal(result.code, 1);
    const parsed = JSON.parse(result.stdout) as {
      healthy: boolean;
      checks: { step: string; status: string; fix?: string }[];
    };
    assert.equal(parsed.healthy, false);
    const failed = new Set(parsed.checks.filter((c) => c.status === 'fail').map((c) => c.step));
    assert.deepEqual([...failed].sort(), ['cert-manager', 'lws']);
    assert.ok(
      parsed.checks.filter((c) => c.status === 'fail').every((c) => c.fix),
      'every failure says what to do',
    );
  });

  it("LWS installed the standard way: its own webhook certificates need no cert-manager; cert-manager's annotation does", async () => {
    // What LWS's release manifests install (CRD, controller Deployment, webhook Service, webhook configurations whose
    // CA bundle the controller writes), with rules no object of this test matches.
    await cluster.server.installCrds(['leader-worker-set']);
    await createDeployment(cluster.client, 'lws-system', 'lws-controller-manager');
    const installWebhooks = async (annotations: Record<string, string>) => {
      for (const object of lwsWebhookObjects(annotations)) await cluster.client.apply(object);
    };

    await installWebhooks({});
    const own = await verify('examples/multi-node-data-parallel.yaml');
    assert.equal(own.code, 0, own.stdout);
    assert.match(own.stdout, /ok {3}cert-manager: not required: LWS's webhook configurations carry no/);
    assert.match(own.stdout, /ok {3}lws: Deployment lws-system\/lws-controller-manager Available/);
    assert.match(
      own.stdout,
      /ok {3}lws: mutatingwebhookconfigurations\/lws-mutating-webhook-configuration: 1 webhook\(s\) with a CA bundle/,
    );

    await installWebhooks({ 'cert-manager.io/inject-ca-from': 'lws-system/lws-serving-cert' });
    const withCertManager = await verify('examples/multi-node-data-parallel.yaml');
    assert.equal(withCertManager.code, 1, withCertManager.stdout);
    assert.match(
      withCertManager.stdout,
      /FAIL cert-manager: CRD certificates\.cert-manager\.io is not installed/,
    );
    assert.match(withCertManager.stdout, /injected by cert-manager from lws-system\/lws-serving-cert/);
    assert.deepEqual([...new Set(withCertManager.stdout.match(/^FAIL [^:]+/gm))], ['FAIL cert-manager']);
  });

  it('a provider that does not run is reported for the one asked for', async () => {
    const snapshot = await observeCluster(cluster.client);
    const result = evaluateCluster(snapshot, [ALL_FEATURES], 'istio');
    const istio = result.checks.filter((c) => c.step === 'istio');
    assert.ok(
      istio.some(
        (c) => c.status === 'fail' && /Deployment istio-system\/istiod does not exist/.test(c.message),
      ),
    );
    assert.ok(istio.every((c) => c.status !== 'fail' || /--provider istio/.test(c.fix ?? '')));
    assert.deepEqual(
      result.steps.map((s) => s.name),
      planSteps([ALL_FEATURES], 'istio').map((s) => s.name),
    );
  });

  it('explains an unreachable cluster instead of a stack trace', async () => {
    const result = await cli('deps', 'verify', '--kubeconfig', '/nonexistent/kubeconfig');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /error LLMISVC_ERR_CONFIG: cannot read the kubeconfig/);
    assert.match(result.stderr, /hint: pass --kubeconfig FILE or set KUBECONFIG/);
    assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+/);
  });
});

describe('version comparison', () => {
  it('orders release tags numerically', () => {
    assert.ok(compareVersions('v1.10.0', 'v1.9.9') > 0);
    assert.ok(compareVersions('v1.5.0', 'v1.5.0') === 0);
    assert.ok(compareVersions('1.4.1', 'v1.5.0') < 0);
  });
});
