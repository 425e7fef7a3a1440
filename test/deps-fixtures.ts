/**
 * @module test/deps-fixtures
 * What the dependency tests need on a real API server that has no kubelet and no controllers: Deployments and Pods
 * with the status a controller-manager and a kubelet would give them (start times set explicitly), GatewayClasses
 * and Gateways with the status a provider would write, and a small stand-in for the deployment controller + kubelet
 * so that `deps install` can wait for health and see a restarted provider roll its pods.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type DevApiServer, startDevApiServer, type CrdSetName } from '../src/dev/index.js';
import { KubeClient, type KubeObject } from '../src/deps/index.js';
import { CLI, REPO_ROOT } from './harness/repo.js';

export interface TestCluster {
  server: DevApiServer;
  client: KubeClient;
  stop(): Promise<void>;
}

export async function startTestCluster(name: string, crds: readonly CrdSetName[]): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), `llmisvc-${name}-`));
  const server = await startDevApiServer({ dir, crds, env: process.env });
  const client = await KubeClient.load(server.kubeconfigPath);
  return {
    server,
    client,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const condition = (type: string, status: string, reason: string, extra: Record<string, unknown> = {}) => ({
  type,
  status,
  reason,
  message: `${type} is ${status} (set by the test)`,
  lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  ...extra,
});

async function ok(
  client: KubeClient,
  method: string,
  path: string,
  body: unknown,
  type = 'application/merge-patch+json',
) {
  const response = await client.request(method, path, body, type);
  if (response.status >= 300)
    throw new Error(`${method} ${path}: HTTP ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as KubeObject;
}

export async function ensureNamespace(client: KubeClient, name: string): Promise<void> {
  await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

export function deploymentManifest(namespace: string, name: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'main', image: `example.com/${name}:test` }] },
      },
    },
  };
}

/**
 * What LWS's release manifests install besides its CRD and controller Deployment: the webhook Service and both webhook
 * configurations, with the CA bundle its controller writes at start (its internal certificate management; nothing
 * here runs that controller) and, for an install that uses cert-manager, `annotations` naming its Certificate. Their
 * rules match only LeaderWorkerSet creation, which no dependency test does, and failures are ignored.
 */
export function lwsWebhookObjects(annotations: Record<string, string> = {}): KubeObject[] {
  const service: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'lws-webhook-service', namespace: 'lws-system' },
    spec: { ports: [{ port: 443, targetPort: 9443 }], selector: { app: 'lws-controller-manager' } },
  };
  const configuration = (kind: 'Mutating' | 'Validating'): KubeObject => ({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: `${kind}WebhookConfiguration`,
    metadata: { name: `lws-${kind.toLowerCase()}-webhook-configuration`, annotations },
    webhooks: [
      {
        name: `${kind[0]!.toLowerCase()}leaderworkerset.x-k8s.io`,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Ignore',
        clientConfig: {
          caBundle: Buffer.from('the CA the LWS controller wrote').toString('base64'),
          service: { namespace: 'lws-system', name: 'lws-webhook-service', path: `/${kind.toLowerCase()}` },
        },
        rules: [
          {
            apiGroups: ['leaderworkerset.x-k8s.io'],
            apiVersions: ['v1'],
            operations: ['CREATE'],
            resources: ['leaderworkersets'],
          },
        ],
      },
    ],
  });
  return [service, configuration('Mutating'), configuration('Validating')];
}

/** A Deployment whose status says what a controller-manager would. */
export async function createDeployment(
  client: KubeClient,
  namespace: string,
  name: string,
  available = true,
): Promise<void> {
  await ensureNamespace(client, namespace);
  await client.apply(deploymentManifest(namespace, name));
  await markDeployment(client, namespace, name, available);
}

export async function markDeployment(
  client: KubeClient,
  namespace: string,
  name: string,
  available: boolean,
): Promise<void> {
  const path = `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`;
  const live = (await client.get(path))!;
  await ok(client, 'PATCH', `${path}/status`, {
    status: {
      observedGeneration: live.metadata?.generation ?? 1,
      replicas: 1,
      readyReplicas: available ? 1 : 0,
      availableReplicas: available ? 1 : 0,
      conditions: [
        condition(
          'Available',
          available ? 'True' : 'False',
          available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
          {
            lastUpdateTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
          },
        ),
      ],
    },
  });
}

/** A running, ready Pod that started at `startTime` (as a kubelet would report it). */
export async function createPod(
  client: KubeClient,
  namespace: string,
  name: string,
  labels: Record<string, string>,
  startTime: Date,
  annotations: Record<string, string> = {},
): Promise<void> {
  await ok(
    client,
    'POST',
    `/api/v1/namespaces/${namespace}/pods`,
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels, annotations },
      spec: { containers: [{ name: 'main', image: 'example.com/test:1' }] },
    },
    'application/json',
  );
  const at = startTime.toISOString().replace(/\.\d+Z$/, 'Z');
  await ok(client, 'PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, {
    status: {
      phase: 'Running',
      startTime: at,
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: at }],
    },
  });
}

export async function deletePod(client: KubeClient, namespace: string, name: string): Promise<void> {
  await client.request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}?gracePeriodSeconds=0`);
}

export async function acceptGatewayClass(
  client: KubeClient,
  name: string,
  controllerName: string,
): Promise<void> {
  await client.apply({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name },
    spec: { controllerName },
  });
  await markGatewayClass(client, name);
}

async function markGatewayClass(client: KubeClient, name: string): Promise<void> {
  const path = `/apis/gateway.networking.k8s.io/v1/gatewayclasses/${name}`;
  const live = (await client.get(path))!;
  await ok(client, 'PATCH', `${path}/status`, {
    status: {
      conditions: [
        condition('Accepted', 'True', 'Accepted', { observedGeneration: live.metadata?.generation ?? 1 }),
      ],
    },
  });
}

/** A Gateway as its provider reports it: Programmed, with or without an address. */
export async function createGateway(
  client: KubeClient,
  namespace: string,
  name: string,
  className: string,
  address?: string,
): Promise<void> {
  await ensureNamespace(client, namespace);
  await client.apply({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace },
    spec: { gatewayClassName: className, listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
  });
  await setGatewayAddress(client, namespace, name, address);
}

export async function setGatewayAddress(
  client: KubeClient,
  namespace: string,
  name: string,
  address?: string,
): Promise<void> {
  const path = `/apis/gateway.networking.k8s.io/v1/namespaces/${namespace}/gateways/${name}`;
  const live = (await client.get(path))!;
  const generation = live.metadata?.generation ?? 1;
  await ok(client, 'PATCH', `${path}/status`, {
    status: {
      addresses: address ? [{ type: 'IPAddress', value: address }] : null,
      conditions: [
        condition('Accepted', 'True', 'Accepted', { observedGeneration: generation }),
        address
          ? condition('Programmed', 'True', 'Programmed', { observedGeneration: generation })
          : condition('Programmed', 'False', 'AddressNotAssigned', { observedGeneration: generation }),
      ],
    },
  });
}

/**
 * Stands in for the deployment controller and the kubelet: every Deployment becomes Available at its generation
 * with one pod of that generation (a new generation replaces the pod, starting now), and every GatewayClass is
 * Accepted. Returns a function that stops it.
 */
export function fakeControllers(client: KubeClient): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        await reconcileOnce(client);
      } catch {
        // objects come and go while install runs; the next round sees the settled state
      }
      await sleep(150);
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

async function reconcileOnce(client: KubeClient): Promise<void> {
  for (const d of await client.list('/apis/apps/v1/deployments')) {
    const ns = d.metadata!.namespace!;
    const name = d.metadata!.name!;
    const generation = String(d.metadata?.generation ?? 1);
    const labels = (d['spec'] as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    const selector = Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const pods = await client.list(
      `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(selector)}`,
    );
    const current = pods.filter((p) => p.metadata?.annotations?.['test/generation'] === generation);
    for (const pod of pods.filter((p) => !current.includes(p)))
      await deletePod(client, ns, pod.metadata!.name!);
    if (current.length === 0) {
      await createPod(client, ns, `${name}-g${generation}`, labels, new Date(), {
        'test/generation': generation,
      });
    }
    const status = d['status'] as { observedGeneration?: number } | undefined;
    if (String(status?.observedGeneration ?? '') !== generation) await markDeployment(client, ns, name, true);
  }
  const served = await client.request('GET', '/apis/gateway.networking.k8s.io/v1');
  if (served.status !== 200) return;
  for (const gc of await client.list('/apis/gateway.networking.k8s.io/v1/gatewayclasses')) {
    const conditions =
      (gc['status'] as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? [];
    if (!conditions.some((c) => c.type === 'Accepted' && c.status === 'True'))
      await markGatewayClass(client, gc.metadata!.name!);
  }
}

const exec = promisify(execFile);

/** Runs `llmisvc` as a user would and returns its exit code and output (never throws on a non-zero exit). */
export async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
