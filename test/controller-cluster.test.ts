/**
 * Controller behaviour that changes the cluster itself, on an API server of its own (started here, with the watch
 * cache off so that etcd compaction expires watches): a dependency CRD installed after start, watch expiry (410 Gone)
 * and dropped connections, leader election hand-over between two controller processes, and the validating and
 * conversion webhooks with the controller's own certificate.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Condition, RunningController } from '../src/controller/index.js';
import { CONVERT_PATH, VALIDATE_PATH } from '../src/controller/index.js';
import type { DevApiServer } from '../src/dev/index.js';
import { startDevApiServer } from '../src/dev/index.js';
import type { KubeObject } from '../src/kube/index.js';
import { CORE_RESOURCES, Informer, KubeApiError, KubeClient } from '../src/kube/index.js';
import {
  apply,
  createNamespace,
  freePort,
  getOrUndefined,
  installProject,
  loopbackWebhook,
  readYaml,
  resourceOf,
  root,
  SERVICE,
  startController,
  waitFor,
} from './controller-support.js';

const skip = process.env['KUBEBUILDER_ASSETS'] ? false : 'needs KUBEBUILDER_ASSETS (run through npm test)';

let dir: string;
let server: DevApiServer;
let c: KubeClient;
let sys: string;
const started: RunningController[] = [];
const processes: ChildProcess[] = [];

type Service = KubeObject & { spec: Record<string, unknown>; status?: { conditions?: Condition[] } };
const condition = (s: Service, type: string) => s.status?.conditions?.find((x) => x.type === type);
const configMaps = { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'llmisvc-ctl-cluster-'));
  server = await startDevApiServer({
    dir,
    crds: ['gateway-api', 'inference-extension'],
    env: process.env,
    apiServerArgs: ['--watch-cache=false'],
  });
  c = await KubeClient.create({ kubeconfig: server.kubeconfigPath, qps: 1000, burst: 1000 });
  sys = await createNamespace(c, 'sys');
  await installProject(c, sys);
});

after(async () => {
  for (const p of processes) if (p.exitCode === null) p.kill('SIGKILL');
  for (const r of started) await r.stop();
  c?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a dependency CRD installed after start is picked up without a restart', { skip }, async () => {
  const ns = await createNamespace(c, 'deps');
  const running = await startController({
    namespace: ns,
    systemNamespace: sys,
    kubeconfig: server.kubeconfigPath,
  });
  started.push(running);
  const [pp] = readYaml(join(root, 'examples/pipeline-parallel.yaml'));
  await apply(c, [pp!], ns);
  const name = pp!.metadata.name;
  const s = await waitFor('DependenciesReady False', async () => {
    const got = await c.get<Service>(SERVICE, ns, name);
    return condition(got, 'DependenciesReady')?.status === 'False' ? got : undefined;
  });
  const message = condition(s, 'DependenciesReady')!.message!;
  assert.match(message, /worker needs LeaderWorkerSet \(leaderworkerset\.x-k8s\.io\/v1\)/);
  assert.match(message, /install/i);
  assert.equal(condition(s, 'Ready')?.status, 'False');

  await server.installCrds(['leader-worker-set']);
  const lws = await waitFor('LeaderWorkerSet served', () =>
    resourceOf(c, { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet' }),
  );
  const created = await waitFor(
    'LeaderWorkerSet created',
    () => getOrUndefined(c, lws, ns, `${name}-kserve-mn`),
    90_000,
  );
  assert.equal(created.metadata.ownerReferences?.[0]?.uid, s.metadata.uid);
  await waitFor('DependenciesReady True', async () => {
    const got = await c.get<Service>(SERVICE, ns, name);
    return condition(got, 'DependenciesReady')?.status === 'True';
  });
  await running.stop();
});

/** etcd's current revision, through its gRPC gateway. */
async function etcdRevision(): Promise<string> {
  const res = await fetch(`${server.etcdUrl}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
  });
  return ((await res.json()) as { header: { revision: string } }).header.revision;
}

test('an informer relists after its watch expires (410 Gone) and misses nothing', { skip }, async () => {
  const ns = await createNamespace(c, 'expiry');
  const informer = new Informer(c, configMaps, {
    namespace: ns,
    labelSelector: 'watched=yes',
    watchTimeoutSeconds: 1,
    minBackoffMs: 50,
  });
  informer.start();
  try {
    await informer.waitForSync();
    // Move etcd past the informer's resourceVersion with writes it does not see, then compact the history away.
    for (let i = 0; i < 5; i++)
      await c.create(configMaps, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `other-${i}`, namespace: ns },
      });
    const revision = await etcdRevision();
    const compacted = await fetch(`${server.etcdUrl}/v3/kv/compaction`, {
      method: 'POST',
      body: JSON.stringify({ revision, physical: true }),
    });
    assert.equal(compacted.status, 200);
    await waitFor('relist after 410', () => informer.stats.relistsAfterGone > 0, 30_000);
    await c.create(configMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'seen', namespace: ns, labels: { watched: 'yes' } },
    });
    await waitFor('new object seen', () => informer.get(ns, 'seen'));
  } finally {
    await informer.stop();
  }
});

test('an informer survives dropped connections (API server restart, network loss)', { skip }, async () => {
  const ns = await createNamespace(c, 'drops');
  const upstream = new URL(server.server);
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((inbound) => {
    const outbound = net.connect(Number(upstream.port), upstream.hostname);
    sockets.add(inbound).add(outbound);
    inbound.pipe(outbound).pipe(inbound);
    const close = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', close).on('close', close);
    outbound.on('error', close).on('close', close);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as net.AddressInfo).port;
  const kubeconfig = join(dir, 'proxied-kubeconfig');
  await writeFile(
    kubeconfig,
    (await readFile(server.kubeconfigPath, 'utf8')).replace(server.server, `https://127.0.0.1:${port}`),
  );
  const proxied = await KubeClient.create({ kubeconfig });
  const informer = new Informer(proxied, configMaps, { namespace: ns, minBackoffMs: 50, maxBackoffMs: 500 });
  informer.start();
  try {
    await informer.waitForSync();
    await c.create(configMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'before', namespace: ns },
    });
    await waitFor('before seen', () => informer.get(ns, 'before'));
    // Cut every connection, change the cluster while the informer is blind, and let it reconnect.
    for (const s of sockets) s.destroy();
    await c.create(configMaps, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'during', namespace: ns },
    });
    await c.delete(configMaps, ns, 'before');
    await waitFor('during seen', () => informer.get(ns, 'during'));
    await waitFor('delete seen', () => !informer.get(ns, 'before'));
    assert.ok(informer.stats.errors + informer.stats.watches > 1);
  } finally {
    await informer.stop();
    proxied.close();
    for (const s of sockets) s.destroy();
    proxy.close();
  }
});

function controllerProcess(identity: string, ns: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      join(root, 'bin/llmisvc.js'),
      'controller',
      '--kubeconfig',
      server.kubeconfigPath,
      '--namespace',
      ns,
      '--system-namespace',
      sys,
      '--leader-elect',
      '--lease-name',
      `lease-${ns}`,
      '--leader-elect-lease-duration',
      '4s',
      '--leader-elect-renew-deadline',
      '3s',
      '--leader-elect-retry-period',
      '500ms',
      '--no-webhook',
      '--probe-port',
      '0',
      '--log-level',
      'warn',
    ],
    { env: { ...process.env, POD_NAME: identity }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  processes.push(child);
  return child;
}

const leases = CORE_RESOURCES.lease;
type Lease = KubeObject & { spec?: { holderIdentity?: string; leaseTransitions?: number } };

test('leader election hands over between two controller processes', { skip }, async () => {
  const ns = await createNamespace(c, 'leader');
  const a = controllerProcess('replica-a', ns);
  await waitFor(
    'a leads',
    async () =>
      (await getOrUndefined<Lease>(c, leases, sys, `lease-${ns}`))?.spec?.holderIdentity === 'replica-a',
  );
  const b = controllerProcess('replica-b', ns);
  const [plain] = readYaml(join(root, 'examples/no-scheduler.yaml'));
  await apply(c, [plain!], ns);
  const deployments = await resourceOf(c, { apiVersion: 'apps/v1', kind: 'Deployment' });
  const name = plain!.metadata.name;
  const first = await waitFor('children by a', () => getOrUndefined(c, deployments, ns, `${name}-kserve`));
  assert.equal(
    (await c.get<Lease>(leases, sys, `lease-${ns}`)).spec?.holderIdentity,
    'replica-a',
    'b stays standby',
  );
  void first;

  // Graceful stop releases the lease; b takes over and reconciles from then on.
  a.kill('SIGTERM');
  await new Promise((r) => a.once('exit', r));
  await waitFor(
    'b leads',
    async () => (await c.get<Lease>(leases, sys, `lease-${ns}`)).spec?.holderIdentity === 'replica-b',
    30_000,
  );
  await c.mergePatch(SERVICE, ns, name, { metadata: { annotations: { 'serving.kserve.io/stop': 'true' } } });
  await waitFor(
    'b reconciles',
    async () => !(await getOrUndefined(c, deployments, ns, `${name}-kserve`)),
    30_000,
  );
  const lease = await c.get<Lease>(leases, sys, `lease-${ns}`);
  assert.ok((lease.spec?.leaseTransitions ?? 0) >= 1);
  b.kill('SIGTERM');
  await new Promise((r) => b.once('exit', r));
});

test(
  'webhooks: invalid specs are rejected, v1alpha1 ⇄ v1alpha2 converted, CA bundle injected',
  { skip },
  async () => {
    const ns = await createNamespace(c, 'hooks');
    const port = await freePort();
    const crds = CORE_RESOURCES.crd;
    for (const name of [
      'llminferenceservices.serving.kserve.io',
      'llminferenceserviceconfigs.serving.kserve.io',
    ])
      await c.mergePatch(crds, undefined, name, {
        spec: {
          conversion: {
            strategy: 'Webhook',
            webhook: {
              conversionReviewVersions: ['v1'],
              clientConfig: { service: null, url: `https://127.0.0.1:${port}${CONVERT_PATH}` },
            },
          },
        },
      });
    const vwcName = `llmisvc-test-${ns}`;
    await c.create(CORE_RESOURCES.validatingWebhookConfiguration, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: vwcName },
      webhooks: [
        {
          name: 'llminferenceservices.serving.kserve.io',
          clientConfig: { url: `https://127.0.0.1:${port}${VALIDATE_PATH}` },
          rules: [
            {
              apiGroups: ['serving.kserve.io'],
              apiVersions: ['*'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['llminferenceservices', 'llminferenceserviceconfigs'],
            },
          ],
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
        },
      ],
    });
    const running = await startController({
      namespace: ns,
      systemNamespace: sys,
      kubeconfig: server.kubeconfigPath,
      webhook: loopbackWebhook(
        port,
        [vwcName],
        ['llminferenceservices.serving.kserve.io', 'llminferenceserviceconfigs.serving.kserve.io'],
      ),
    });
    started.push(running);
    const vwc = await c.get<KubeObject & { webhooks: { clientConfig: { caBundle?: string } }[] }>(
      CORE_RESOURCES.validatingWebhookConfiguration,
      undefined,
      vwcName,
    );
    assert.ok(vwc.webhooks[0]!.clientConfig.caBundle, 'CA bundle injected');

    // Rejected by the webhook (a rule CEL cannot express: adapter names unique).
    const [lora] = readYaml(join(root, 'examples/lora.yaml'));
    const spec = structuredClone(lora!['spec']) as {
      model: { lora?: { adapters?: { name: string; uri: string }[] } };
    };
    spec.model.lora = {
      adapters: [
        { name: 'a', uri: 'hf://x/a' },
        { name: 'a', uri: 'hf://x/b' },
      ],
    };
    await assert.rejects(
      apply(c, [{ ...lora!, metadata: { name: 'dup', namespace: ns }, spec }], ns),
      (e: unknown) =>
        e instanceof KubeApiError && /denied the request/.test(e.message) && /already used/.test(e.message),
    );
    // Rejected by the webhook: an inline EndpointPickerConfig the EPP would refuse at start (it would crash-loop).
    const [single] = readYaml(join(root, 'examples/single-node.yaml'));
    const badPicker = {
      apiVersion: 'inference.networking.x-k8s.io/v1alpha1',
      kind: 'EndpointPickerConfig',
      plugins: [{ type: 'queue-scorer' }, { type: 'no-such-scorer' }],
      schedulingProfiles: [{ name: 'default', plugins: [{ pluginRef: 'queue-scorer' }] }],
    };
    await assert.rejects(
      apply(
        c,
        [
          {
            ...single!,
            metadata: { name: 'bad-picker', namespace: ns },
            spec: {
              ...(single!['spec'] as object),
              router: { route: {}, gateway: {}, scheduler: { config: { inline: badPicker } } },
            },
          },
        ],
        ns,
      ),
      (e: unknown) =>
        e instanceof KubeApiError &&
        /denied the request/.test(e.message) &&
        /spec\.router\.scheduler\.config\.inline\.plugins\[1\]/.test(e.message) &&
        /no-such-scorer/.test(e.message),
    );
    // Rejected by the webhook, as KServe's: a scheduler with 0 replicas routes nothing.
    await assert.rejects(
      apply(
        c,
        [
          {
            ...single!,
            metadata: { name: 'no-picker', namespace: ns },
            spec: {
              ...(single!['spec'] as object),
              router: { route: {}, gateway: {}, scheduler: { replicas: 0 } },
            },
          },
        ],
        ns,
      ),
      (e: unknown) =>
        e instanceof KubeApiError &&
        /denied the request/.test(e.message) &&
        /spec\.router\.scheduler\.replicas: must be greater than zero/.test(e.message),
    );
    // Rejected by the CRD's own CEL rules, before any webhook.
    await assert.rejects(
      apply(
        c,
        [
          {
            ...single!,
            metadata: { name: 'cel', namespace: ns },
            spec: { ...(single!['spec'] as object), parallelism: { pipeline: 2, data: 2, dataLocal: 1 } },
          },
        ],
        ns,
      ),
      (e: unknown) =>
        e instanceof KubeApiError && e.status === 422 && /pipeline cannot be combined/.test(e.message),
    );

    // A v1alpha1 object is stored as v1alpha2 and read back in either version through the conversion webhook.
    const v1alpha1 = {
      ...single!,
      apiVersion: 'serving.kserve.io/v1alpha1',
      metadata: { name: 'old', namespace: ns },
    };
    await apply(c, [v1alpha1], ns);
    const asV1alpha1 = await c.get({ ...SERVICE, version: 'v1alpha1' }, ns, 'old');
    assert.equal(asV1alpha1.apiVersion, 'serving.kserve.io/v1alpha1');
    const asV1alpha2 = await c.get(SERVICE, ns, 'old');
    assert.equal(asV1alpha2.apiVersion, 'serving.kserve.io/v1alpha2');
    await running.stop();
  },
);
