// `llmisvc deps install --from DIR` against a real API server: every step in order, waiting for health, the
// provider restarted because it ran before the GIE CRDs, a second run that changes nothing, --dry-run that touches
// nothing, and a missing file that says what to fetch. The manifests are the cached upstream CRDs (Gateway API, GIE,
// LWS) plus small controller Deployments and LWS's webhook objects the test writes; a stand-in controller makes
// Deployments Available.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { DEPENDENCY_CRD_SETS, cachedDependencyCrds, llmisvcCacheDir } from '../src/dev/index.js';
import { INFERENCE_POOL_CRD, type KubeObject } from '../src/deps/index.js';
import {
  createDeployment,
  createPod,
  deploymentManifest,
  fakeControllers,
  lwsWebhookObjects,
  startTestCluster,
  type TestCluster,
  cli,
} from './deps-fixtures.js';

async function cachedFiles(name: string): Promise<string> {
  const set = DEPENDENCY_CRD_SETS.find((s) => s.name === name)!;
  const cached = cachedDependencyCrds(llmisvcCacheDir(process.env), set);
  assert.ok(
    cached,
    `${name} CRDs are not cached: run through npm test (the kube-apiserver provisioner fetches them)`,
  );
  const texts = await Promise.all(cached.files.map((f) => readFile(f, 'utf8')));
  return texts.join('\n---\n');
}

function crd(group: string, kind: string, plural: string): KubeObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
}

const yaml = (objects: object[]) => objects.map((o) => stringify(o)).join('---\n');
const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

describe('llmisvc deps install --from DIR (real API server)', () => {
  let cluster: TestCluster;
  let dir: string;
  let stopControllers: () => Promise<void>;
  let install: (...extra: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

  before(async () => {
    cluster = await startTestCluster('deps-install', []);
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-deps-from-'));
    await writeFile(
      join(dir, 'cert-manager.yaml'),
      yaml([
        namespace('cert-manager'),
        crd('cert-manager.io', 'Certificate', 'certificates'),
        crd('cert-manager.io', 'Issuer', 'issuers'),
        ...['cert-manager', 'cert-manager-cainjector', 'cert-manager-webhook'].map((n) =>
          deploymentManifest('cert-manager', n),
        ),
      ]),
    );
    await writeFile(join(dir, 'gateway-api.yaml'), await cachedFiles('gateway-api'));
    await writeFile(
      join(dir, 'gateway-api-inference-extension.yaml'),
      await cachedFiles('inference-extension'),
    );
    // The provider's own file, as `helm template` would render it (namespaces come from the step).
    await writeFile(
      join(dir, 'envoy-gateway.yaml'),
      yaml([
        deploymentManifest('envoy-gateway-system', 'envoy-gateway'),
        deploymentManifest('envoy-ai-gateway-system', 'ai-gateway-controller'),
      ]),
    );
    await writeFile(
      join(dir, 'lws.yaml'),
      yaml([
        namespace('lws-system'),
        deploymentManifest('lws-system', 'lws-controller-manager'),
        ...lwsWebhookObjects(),
      ]) +
        '---\n' +
        (await cachedFiles('leader-worker-set')),
    );
    // Envoy Gateway already runs (installed by hand, an hour ago), before any GIE CRD existed.
    await createDeployment(cluster.client, 'envoy-gateway-system', 'envoy-gateway');
    await createPod(
      cluster.client,
      'envoy-gateway-system',
      'envoy-gateway-manual',
      { app: 'envoy-gateway' },
      new Date(Date.now() - 3_600_000),
    );
    install = (...extra) =>
      cli(
        'deps',
        'install',
        '--kubeconfig',
        cluster.server.kubeconfigPath,
        '--from',
        dir,
        '--timeout',
        '90',
        ...extra,
      );
  });

  after(async () => {
    await stopControllers?.();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('--dry-run prints every step and touches nothing (no cluster needed)', async () => {
    const result = await cli('deps', 'install', '--dry-run', '--from', dir, '--kubeconfig', '/nonexistent');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /# dry run: nothing is applied/);
    assert.match(
      result.stdout,
      /\[1\/5\] cert-manager v[\d.]+\n {2}kubectl apply --server-side -f .*cert-manager\.yaml/,
    );
    assert.match(result.stdout, /kubectl rollout restart deployment\/envoy-gateway -n envoy-gateway-system/);
    assert.equal(
      await cluster.client.get(
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${INFERENCE_POOL_CRD}`,
      ),
      undefined,
    );
  });

  it('names the missing file and where to get it', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'llmisvc-deps-empty-'));
    try {
      const result = await cli(
        'deps',
        'install',
        '--kubeconfig',
        cluster.server.kubeconfigPath,
        '--from',
        empty,
      );
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /error LLMISVC_ERR_INPUT: --from .*: cert-manager\.yaml is missing for step cert-manager/,
      );
      assert.match(
        result.stderr,
        /hint: fetch it where there is network with the airGapped lines of `llmisvc deps plan -o json`/,
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('installs every step in order, waits for health, and restarts the provider that predates the GIE CRDs', async () => {
    stopControllers = fakeControllers(cluster.client);
    const result = await install();
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const order = [
      'cert-manager',
      'gateway-api',
      'gateway-api-inference-extension',
      'envoy-gateway',
      'lws',
    ].map((s) => result.stdout.indexOf(`] ${s} v`));
    assert.ok(
      order.every((i, n) => i >= 0 && (n === 0 || i > order[n - 1]!)),
      `steps out of order:\n${result.stdout}`,
    );
    assert.match(
      result.stdout,
      /\[4\/5\] envoy-gateway v[\d.]+: restarted so that it watches InferencePools/,
    );
    assert.match(result.stdout, /done: 5 step\(s\) applied, 0 already healthy, envoy-gateway restarted/);
    const deployment = await cluster.client.get(
      '/apis/apps/v1/namespaces/envoy-gateway-system/deployments/envoy-gateway',
    );
    const template = (
      deployment!['spec'] as { template: { metadata: { annotations?: Record<string, string> } } }
    ).template;
    assert.ok(
      template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt'],
      'no rollout restart happened',
    );
    const gatewayClass = await cluster.client.get('/apis/gateway.networking.k8s.io/v1/gatewayclasses/eg');
    assert.equal(
      (gatewayClass!['spec'] as { controllerName: string }).controllerName,
      'gateway.envoyproxy.io/gatewayclass-controller',
    );
  });

  it('is idempotent: a second run skips every step and restarts nothing', async () => {
    const result = await install();
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(result.stdout.match(/already installed and healthy, skipping/g)?.length, 5);
    assert.match(result.stdout, /done: 0 step\(s\) applied, 5 already healthy;/);
  });

  it('renders a helm provider with `helm template` and applies it, namespaces included', async () => {
    // helm cannot reach a chart registry here, so a stand-in records its arguments and prints what the chart would:
    // objects without a namespace (as some charts render them) must land in the release namespace.
    const log = join(dir, 'helm-args.log');
    const helm = join(dir, 'helm');
    await writeFile(
      helm,
      [
        '#!/bin/sh',
        `echo "$*" >> ${JSON.stringify(log)}`,
        'if [ "$2" = istiod ]; then',
        "cat <<'EOF'",
        yaml([
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'istiod' },
            spec: deploymentManifest('x', 'istiod')['spec'],
          },
          {
            apiVersion: 'gateway.networking.k8s.io/v1',
            kind: 'GatewayClass',
            metadata: { name: 'istio' },
            spec: { controllerName: 'istio.io/gateway-controller' },
          },
        ]),
        'EOF',
        'fi',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const result = await cli(
      'deps',
      'install',
      '--kubeconfig',
      cluster.server.kubeconfigPath,
      '--provider',
      'istio',
      '-f',
      'examples/no-scheduler.yaml',
      '--helm',
      helm,
      '--timeout',
      '90',
    );
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /\[1\/2\] gateway-api v[\d.]+: already installed and healthy, skipping/);
    assert.match(result.stdout, /\[2\/2\] istio 1\.\d+\.\d+: healthy/);
    const calls = (await readFile(log, 'utf8')).trim().split('\n');
    assert.equal(calls.length, 2);
    assert.match(
      calls[0]!,
      /^template istio-base base --repo https:\/\/istio-release\.storage\.googleapis\.com\/charts --version 1\.\d+\.\d+ -n istio-system --include-crds$/,
    );
    assert.match(
      calls[1]!,
      /^template istiod istiod .* -n istio-system --set pilot\.env\.ENABLE_GATEWAY_API_INFERENCE_EXTENSION=true$/,
    );
    assert.ok(
      await cluster.client.get('/apis/apps/v1/namespaces/istio-system/deployments/istiod'),
      'istiod not in istio-system',
    );
  });

  it('leaves a cluster that deps verify calls healthy', async () => {
    const result = await cli('deps', 'verify', '--kubeconfig', cluster.server.kubeconfigPath);
    // Both streams: a failure that prints only to stderr (seen once under full-suite load) must say what it was.
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /warn load-balancer: no Gateway of class eg exists yet/);
  });
});
