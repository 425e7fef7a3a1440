/**
 * @module test/dev-apiserver
 * The development API server against itself: it starts, serves the CRDs (with their CEL rules intact), objects can
 * be created, read, patched and deleted through @kubernetes/client-node, a CRD set can be installed and removed after
 * start, and stop() leaves no process and no open port behind. Plus the shared server of `npm test`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApiException,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  VersionApi,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import {
  cachedDependencyCrds,
  dependencyCrdSet,
  installManifests,
  llmisvcCacheDir,
  removeManifests,
  startDevApiServer,
  type DevApiServer,
} from '../src/dev/index.js';
import { isPidAlive } from '../src/process/index.js';

function portAcceptsConnections(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function rejection(promise: Promise<unknown>): Promise<ApiException<string>> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ApiException, `expected an ApiException, got ${String(error)}`);
    return error as ApiException<string>;
  }
  assert.fail('expected the API server to reject the request');
}

describe('llmisvc dev apiserver', () => {
  let dir: string;
  let server: DevApiServer;
  let config: KubeConfig;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-dev-apiserver-test-'));
    server = await startDevApiServer({ dir, crds: ['gateway-api', 'leader-worker-set'], env: process.env });
    config = new KubeConfig();
    config.loadFromFile(server.kubeconfigPath);
  });

  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a kubeconfig for a loopback HTTPS server and answers /version', async () => {
    assert.equal(server.kubeconfigPath, join(dir, 'kubeconfig'));
    assert.match(server.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(config.getCurrentCluster()?.server, server.server);
    const version = await config.makeApiClient(VersionApi).getCode();
    assert.match(version.gitVersion, /^v1\.\d+\.\d+/);
  });

  it('serves the selected CRD sets and not the others', async () => {
    const custom = config.makeApiClient(CustomObjectsApi);
    const gateways = await custom.listClusterCustomObject({
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      plural: 'gateways',
    });
    assert.deepEqual((gateways as { items: unknown[] }).items, []);
    await custom.listClusterCustomObject({
      group: 'leaderworkerset.x-k8s.io',
      version: 'v1',
      plural: 'leaderworkersets',
    });
    const missing = await rejection(
      custom.listClusterCustomObject({
        group: 'inference.networking.k8s.io',
        version: 'v1',
        plural: 'inferencepools',
      }),
    );
    assert.equal(missing.code, 404);
  });

  it('creates, reads, patches and deletes objects, and enforces CRD CEL rules', async () => {
    const core = config.makeApiClient(CoreV1Api);
    const custom = config.makeApiClient(CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: 'crud' } } });
    const gateway = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'web', namespace: 'crud' },
      spec: { gatewayClassName: 'example', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
    };
    const target = {
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      namespace: 'crud',
      plural: 'gateways',
    };
    await custom.createNamespacedCustomObject({ ...target, body: gateway });
    const read = (await custom.getNamespacedCustomObject({ ...target, name: 'web' })) as typeof gateway;
    assert.equal(read.spec.gatewayClassName, 'example');

    await custom.patchNamespacedCustomObject({
      ...target,
      name: 'web',
      body: [{ op: 'replace', path: '/spec/gatewayClassName', value: 'other' }],
    });
    const patched = (await custom.getNamespacedCustomObject({ ...target, name: 'web' })) as typeof gateway;
    assert.equal(patched.spec.gatewayClassName, 'other');

    // The Gateway CRD's CEL rule "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']" only holds if the
    // manifest reached the API server with its x-kubernetes-validations intact.
    const invalid = structuredClone(gateway);
    invalid.metadata.name = 'invalid';
    (invalid.spec.listeners[0] as Record<string, unknown>)['tls'] = { mode: 'Terminate' };
    const refused = await rejection(custom.createNamespacedCustomObject({ ...target, body: invalid }));
    assert.equal(refused.code, 422);
    assert.match(String(refused.body), /tls must not be specified for protocols/);

    await custom.deleteNamespacedCustomObject({ ...target, name: 'web' });
    const gone = await rejection(custom.getNamespacedCustomObject({ ...target, name: 'web' }));
    assert.equal(gone.code, 404);
  });

  it('admits Pods without a default ServiceAccount (there is no controller-manager)', async () => {
    const core = config.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'pods' } } });
    const pod = await core.createNamespacedPod({
      namespace: 'pods',
      body: { metadata: { name: 'model-server' }, spec: { containers: [{ name: 'vllm', image: 'vllm' }] } },
    });
    assert.equal(pod.metadata?.name, 'model-server');
    assert.equal(pod.spec?.nodeName, undefined, 'no scheduler binds it');
  });

  it('issues service-account tokens that authenticate, and enforces RBAC on them', async () => {
    const core = config.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'rbac' } } });
    await core.createNamespacedServiceAccount({
      namespace: 'rbac',
      body: { metadata: { name: 'controller' } },
    });
    const request = await core.createNamespacedServiceAccountToken({
      namespace: 'rbac',
      name: 'controller',
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = request.status?.token;
    assert.ok(token, 'the TokenRequest API returned a token');
    const asServiceAccount = new KubeConfig();
    asServiceAccount.loadFromOptions({
      clusters: [config.getCurrentCluster()!],
      users: [{ name: 'sa', token }],
      contexts: [{ name: 'sa', cluster: config.getCurrentCluster()!.name, user: 'sa' }],
      currentContext: 'sa',
    });
    const review = await asServiceAccount.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    assert.equal(review.status?.userInfo?.username, 'system:serviceaccount:rbac:controller');
    const denied = await rejection(
      asServiceAccount.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: 'rbac' }),
    );
    assert.equal(denied.code, 403);
  });

  it("enforces Gateway API's safe-upgrades policy until it is removed", async () => {
    // A CRD in the Gateway API group that claims an old bundle version, as an older install would.
    const oldCrd = join(dir, 'old-gateway-crd.yaml');
    await writeFile(
      oldCrd,
      stringify({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: {
          name: 'legacyroutes.gateway.networking.k8s.io',
          annotations: {
            // Required of every CRD in a *.k8s.io group; the value only has to be a URL.
            'api-approved.kubernetes.io': 'https://github.com/kubernetes-sigs/gateway-api/pull/1538',
            'gateway.networking.k8s.io/bundle-version': 'v1.2.0',
            'gateway.networking.k8s.io/channel': 'standard',
          },
        },
        spec: {
          group: 'gateway.networking.k8s.io',
          scope: 'Namespaced',
          names: {
            kind: 'LegacyRoute',
            plural: 'legacyroutes',
            singular: 'legacyroute',
            listKind: 'LegacyRouteList',
          },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            },
          ],
        },
      }),
    );
    await assert.rejects(installManifests([oldCrd], { kubeconfigPath: server.kubeconfigPath }), {
      code: 'LLMISVC_ERR_KUBE',
      message: /Installing CRDs with version before v1\.5\.0 is prohibited/,
    });

    const gatewayApi = cachedDependencyCrds(llmisvcCacheDir(process.env), dependencyCrdSet('gateway-api'));
    const policy = gatewayApi!.files.filter((file) => file.endsWith('_vap_safeupgrades.yaml'));
    assert.equal(policy.length, 1);
    await removeManifests(policy, { kubeconfigPath: server.kubeconfigPath });
    // Admission policies take effect through an informer: allow it a moment to notice the removal.
    for (let attempt = 1; ; attempt++) {
      try {
        await installManifests([oldCrd], { kubeconfigPath: server.kubeconfigPath });
        break;
      } catch (error) {
        if (attempt >= 50) throw error;
        await sleep(200);
      }
    }
    await removeManifests([oldCrd], { kubeconfigPath: server.kubeconfigPath });
    await installManifests(policy, { kubeconfigPath: server.kubeconfigPath });
  });

  it('installs a CRD set after start and removes it again', async () => {
    const custom = config.makeApiClient(CustomObjectsApi);
    const pools = { group: 'inference.networking.k8s.io', version: 'v1', plural: 'inferencepools' };
    await server.installCrds(['inference-extension']);
    await custom.listClusterCustomObject(pools);
    await server.removeCrds(['inference-extension']);
    assert.equal((await rejection(custom.listClusterCustomObject(pools))).code, 404);
  });

  it('restarts kube-apiserver on the same address; objects and clients survive', async () => {
    const core = config.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'restart' } } });
    await core.createNamespacedConfigMap({
      namespace: 'restart',
      body: { metadata: { name: 'kept' }, data: { answer: '42' } },
    });
    const { server: before, pids } = { server: server.server, pids: { ...server.pids } };
    await server.restartApiServer();
    assert.equal(server.server, before);
    assert.notEqual(server.pids.kubeApiserver, pids.kubeApiserver);
    assert.ok(!isPidAlive(pids.kubeApiserver), 'the old kube-apiserver is gone');
    const kept = await core.readNamespacedConfigMap({ namespace: 'restart', name: 'kept' });
    assert.equal(kept.data?.['answer'], '42');
  });

  it('stops both processes and frees the port; stop() can be called again', async () => {
    const second = await startDevApiServer({
      dir: join(dir, 'second'),
      crds: false,
      env: process.env,
      assets: server.assets,
    });
    assert.ok(isPidAlive(second.pids.etcd) && isPidAlive(second.pids.kubeApiserver));
    assert.ok(await portAcceptsConnections(second.server));
    assert.ok(existsSync(join(second.dir, 'state.json')));
    const secondConfig = new KubeConfig();
    secondConfig.loadFromFile(second.kubeconfigPath);
    await secondConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'survivor' } } });
    await second.stop();
    await second.stop();
    assert.ok(!isPidAlive(second.pids.kubeApiserver), 'kube-apiserver still running');
    assert.ok(!isPidAlive(second.pids.etcd), 'etcd still running');
    assert.equal(await portAcceptsConnections(second.server), false);
    assert.equal(await portAcceptsConnections(second.etcdUrl), false);
    assert.ok(!existsSync(join(second.dir, 'state.json')));

    // The same folder again: same data, same token, and the same address while the port is still free.
    const again = await startDevApiServer({
      dir: second.dir,
      crds: false,
      env: process.env,
      assets: server.assets,
    });
    try {
      assert.equal(again.token, second.token);
      assert.equal(again.server, second.server);
      // The kubeconfig read before the restart still works, and the namespace made then is still there.
      const survivor = await secondConfig.makeApiClient(CoreV1Api).readNamespace({ name: 'survivor' });
      assert.equal(survivor.metadata?.name, 'survivor');
    } finally {
      await again.stop();
    }
  });

  it('leaves no process behind when its owner is killed with SIGKILL', async () => {
    // A child Node process owns the server; SIGKILL gives it no chance to clean up, so only the watchdogs can.
    const script =
      `const { startDevApiServer } = await import(${JSON.stringify(new URL('../src/dev/index.js', import.meta.url).href)});` +
      `const s = await startDevApiServer({ dir: ${JSON.stringify(join(dir, 'killed'))}, crds: false, env: process.env });` +
      'process.stdout.write(JSON.stringify(s.pids) + "\\n"); setInterval(() => {}, 1000);';
    const owner = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, KUBEBUILDER_ASSETS: server.assets.dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(createInterface({ input: owner.stdout }), 'line')) as [string];
    const pids = JSON.parse(line) as { etcd: number; kubeApiserver: number };
    assert.ok(isPidAlive(pids.etcd) && isPidAlive(pids.kubeApiserver));
    owner.kill('SIGKILL');
    await once(owner, 'exit');
    // Generous: kube-apiserver shuts down gracefully on the watchdog's SIGTERM, and the machine may be busy.
    const deadline = Date.now() + 30_000;
    while ((isPidAlive(pids.etcd) || isPidAlive(pids.kubeApiserver)) && Date.now() < deadline) {
      await sleep(200);
    }
    assert.ok(!isPidAlive(pids.kubeApiserver), 'kube-apiserver outlived its owner');
    assert.ok(!isPidAlive(pids.etcd), 'etcd outlived its owner');
  });

  it('refuses a folder whose owner process is still alive', async () => {
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { owner: number };
    assert.equal(state.owner, process.pid);
    // A folder whose state.json names another live owner (here: the test runner, our parent) must not be taken over.
    const foreign = join(dir, 'foreign');
    await mkdir(foreign, { recursive: true });
    await writeFile(
      join(foreign, 'state.json'),
      JSON.stringify({ owner: process.ppid, etcd: 0, kubeApiserver: 0, server: '' }),
    );
    await assert.rejects(
      startDevApiServer({ dir: foreign, crds: false, env: process.env, assets: server.assets }),
      {
        code: 'LLMISVC_ERR_CONFIG',
        message: new RegExp(`in use by a development API server \\(process ${process.ppid}\\)`),
      },
    );
  });
});

describe('the shared API server of npm test', () => {
  it('is reachable through LLMISVC_TEST_KUBECONFIG and serves every CRD set', async () => {
    const kubeconfig = process.env['LLMISVC_TEST_KUBECONFIG'];
    assert.ok(kubeconfig, 'LLMISVC_TEST_KUBECONFIG is unset: run the integration tests through `npm test`');
    const config = new KubeConfig();
    config.loadFromFile(kubeconfig);
    const custom = config.makeApiClient(CustomObjectsApi);
    for (const [group, version, plural] of [
      ['gateway.networking.k8s.io', 'v1', 'httproutes'],
      ['inference.networking.k8s.io', 'v1', 'inferencepools'],
      ['inference.networking.x-k8s.io', 'v1alpha2', 'inferencepools'],
      ['inference.networking.x-k8s.io', 'v1alpha2', 'inferencemodels'],
      ['leaderworkerset.x-k8s.io', 'v1', 'leaderworkersets'],
    ] as const) {
      await custom.listClusterCustomObject({ group, version, plural });
    }
  });
});
