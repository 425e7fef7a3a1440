/**
 * @module test/dev-cluster
 * `llmisvc dev cluster` against itself: a Deployment's pods are created by the real Deployment and ReplicaSet
 * controllers, bound by the real scheduler to a KWOK node and marked Running/Ready (with a loopback pod IP) by KWOK;
 * a pod asking for `nvidia.com/gpu` lands on a GPU node and one asking for more GPUs than any node has stays
 * Pending; deleting the owner removes its dependents through the real garbage collector, and a deleted namespace
 * really goes away; a LeaderWorkerSet becomes a leader and its workers through the LWS controller, its webhooks and
 * the StatefulSet controller; stop(), Ctrl-C and SIGKILL leave no process behind.
 *
 * The binaries come from the cache `npm test` provisions (see test/harness/provision.ts); started on its own, the
 * test builds what is missing first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { GPU_RESOURCE, startDevCluster, type DevCluster } from '../src/dev/index.js';
import { isPidAlive } from '../src/process/index.js';
import { CLI } from './harness/repo.js';

/** Polls until `probe` returns a value; the bound only keeps a broken cluster from hanging the run. */
async function eventually<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | undefined;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error instanceof Error ? error : new Error(String(error));
    }
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(300);
  }
}

function deployment(name: string, replicas: number, resources?: Record<string, string>): V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'server',
              image: 'vllm/vllm-openai:latest',
              ...(resources ? { resources: { requests: resources, limits: resources } } : {}),
            },
          ],
        },
      },
    },
  };
}

const isReady = (pod: V1Pod) =>
  pod.status?.phase === 'Running' &&
  (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** Pids of processes whose command line mentions `text` (the cluster's folder is in every component's flags). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text) && isPidAlive(Number(entry))) {
        pids.push(Number(entry));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('llmisvc dev cluster', () => {
  let dir: string;
  let cluster: DevCluster;
  /** `127.B`, this cluster's block of pod IPs. */
  const podPrefix = () => cluster.nodes[0]!.podCIDR.split('.').slice(0, 2).join('.');
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let custom: CustomObjectsApi;
  const namespace = 'workloads';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-dev-cluster-test-'));
    cluster = await startDevCluster({
      dir,
      crds: false,
      env: process.env,
      nodes: { cpuNodes: 1, gpuNodes: 1, gpusPerNode: 2 },
      log: (m) => console.error(`[dev cluster] ${m}`),
    });
    const config = new KubeConfig();
    config.loadFromFile(cluster.kubeconfigPath);
    core = config.makeApiClient(CoreV1Api);
    apps = config.makeApiClient(AppsV1Api);
    custom = config.makeApiClient(CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves KWOK nodes that are Ready, one of them with nvidia.com/gpu', async () => {
    const nodes = (await core.listNode()).items;
    assert.deepEqual(nodes.map((n) => n.metadata?.name).sort(), ['kwok-cpu-0', 'kwok-gpu-0']);
    for (const node of nodes) {
      assert.ok(
        node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        `${node.metadata?.name} is Ready`,
      );
    }
    const gpu = nodes.find((n) => n.metadata?.name === 'kwok-gpu-0');
    assert.equal(gpu?.status?.allocatable?.[GPU_RESOURCE], '2');
  });

  it("runs a Deployment's pods through the real controllers and scheduler to Ready on a KWOK node", async () => {
    await apps.createNamespacedDeployment({ namespace, body: deployment('web', 2) });
    const pods = await eventually('2 Ready pods of the Deployment', async () => {
      const list = (await core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items;
      return list.length === 2 && list.every(isReady) ? list : undefined;
    });
    for (const pod of pods) {
      // Created by the ReplicaSet controller, bound by the scheduler, started by KWOK.
      assert.equal(pod.metadata?.ownerReferences?.[0]?.kind, 'ReplicaSet');
      assert.match(pod.spec?.nodeName ?? '', /^kwok-(cpu|gpu)-0$/);
      // From its node's pod CIDR: 127.B.N.0/24, B this cluster's block of loopback (127.1 unless another cluster holds it).
      const node = cluster.nodes.find((n) => n.name === pod.spec?.nodeName)!;
      assert.ok(node.podCIDR.startsWith(`${podPrefix()}.`) && /^127\.\d+\.\d+\.0\/24$/.test(node.podCIDR));
      assert.ok(pod.status?.podIP?.startsWith(node.podCIDR.replace(/0\/24$/, '')), pod.status?.podIP);
      // The ServiceAccount admission plugin mounted the token of the ServiceAccount the controller-manager made.
      assert.equal(pod.spec?.serviceAccountName, 'default');
    }
    assert.notEqual(pods[0]!.status?.podIP, pods[1]!.status?.podIP);
    const ready = await eventually('the Deployment to report 2 ready replicas', async () => {
      const d = await apps.readNamespacedDeployment({ namespace, name: 'web' });
      return d.status?.readyReplicas === 2 ? d : undefined;
    });
    assert.equal(ready.status?.availableReplicas, 2);
  });

  it('schedules a pod asking for a GPU onto the GPU node, and leaves one asking for too many Pending', async () => {
    await apps.createNamespacedDeployment({ namespace, body: deployment('llm', 1, { [GPU_RESOURCE]: '1' }) });
    await apps.createNamespacedDeployment({
      namespace,
      body: deployment('huge', 1, { [GPU_RESOURCE]: '3' }),
    });
    const pod = await eventually('the GPU pod to be Ready', async () => {
      const [p] = (await core.listNamespacedPod({ namespace, labelSelector: 'app=llm' })).items;
      return p && isReady(p) ? p : undefined;
    });
    assert.equal(pod.spec?.nodeName, 'kwok-gpu-0');
    assert.ok(
      pod.status?.podIP?.startsWith(`${podPrefix()}.2.`),
      `${pod.status?.podIP}: an IP from the GPU node’s pod CIDR`,
    );
    const pending = await eventually('the scheduler to give up on the 3-GPU pod', async () => {
      const [p] = (await core.listNamespacedPod({ namespace, labelSelector: 'app=huge' })).items;
      const scheduled = p?.status?.conditions?.find((c) => c.type === 'PodScheduled');
      return scheduled?.status === 'False' ? { pod: p!, scheduled } : undefined;
    });
    assert.equal(pending.scheduled.reason, 'Unschedulable');
    assert.match(pending.scheduled.message ?? '', /Insufficient nvidia\.com\/gpu/);
    assert.equal(pending.pod.spec?.nodeName, undefined);
  });

  it("removes a Deployment's ReplicaSets and pods through the garbage collector, and a namespace through its controller", async () => {
    const before = (await apps.listNamespacedReplicaSet({ namespace, labelSelector: 'app=web' })).items;
    assert.equal(before.length, 1);
    await apps.deleteNamespacedDeployment({ namespace, name: 'web', propagationPolicy: 'Background' });
    await eventually('the ReplicaSet and pods of the deleted Deployment to be gone', async () => {
      const replicaSets = (await apps.listNamespacedReplicaSet({ namespace, labelSelector: 'app=web' }))
        .items;
      const pods = (await core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items;
      return replicaSets.length === 0 && pods.length === 0 ? true : undefined;
    });
    // The other Deployments are untouched.
    assert.equal((await core.listNamespacedPod({ namespace, labelSelector: 'app=llm' })).items.length, 1);

    await core.deleteNamespace({ name: namespace });
    await eventually('the namespace to be deleted with everything in it', async () => {
      const names = (await core.listNamespace()).items.map((n) => n.metadata?.name);
      return names.includes(namespace) ? undefined : true;
    });
  });

  it('turns a LeaderWorkerSet into a Ready leader and workers through the LWS controller and its webhooks', async () => {
    const lwsNamespace = 'multi-node';
    await core.createNamespace({ body: { metadata: { name: lwsNamespace } } });
    const template = {
      spec: {
        containers: [
          {
            name: 'vllm',
            image: 'vllm/vllm-openai:latest',
            resources: { requests: { [GPU_RESOURCE]: '1' }, limits: { [GPU_RESOURCE]: '1' } },
          },
        ],
      },
    };
    await custom.createNamespacedCustomObject({
      group: 'leaderworkerset.x-k8s.io',
      version: 'v1',
      namespace: lwsNamespace,
      plural: 'leaderworkersets',
      body: {
        apiVersion: 'leaderworkerset.x-k8s.io/v1',
        kind: 'LeaderWorkerSet',
        metadata: { name: 'deepseek' },
        spec: { replicas: 1, leaderWorkerTemplate: { size: 2, workerTemplate: template } },
      },
    });
    const pods = await eventually('the leader and its worker to be Ready', async () => {
      const list = (await core.listNamespacedPod({ namespace: lwsNamespace })).items;
      return list.length === 2 && list.every(isReady) ? list : undefined;
    });
    const byIndex = new Map(
      pods.map((p) => [p.metadata?.labels?.['leaderworkerset.sigs.k8s.io/worker-index'], p] as const),
    );
    // The pod webhook labels each pod with its group and worker index; the leader's StatefulSet is owned by the
    // LeaderWorkerSet, the worker's by the leader pod.
    assert.equal(byIndex.get('0')?.metadata?.name, 'deepseek-0');
    assert.equal(byIndex.get('1')?.metadata?.name, 'deepseek-0-1');
    assert.equal(byIndex.get('0')?.metadata?.labels?.['leaderworkerset.sigs.k8s.io/name'], 'deepseek');
    for (const pod of pods) assert.equal(pod.spec?.nodeName, 'kwok-gpu-0', 'each asks for a GPU');
    const workers = await apps.readNamespacedStatefulSet({ namespace: lwsNamespace, name: 'deepseek-0' });
    assert.equal(workers.metadata?.ownerReferences?.[0]?.kind, 'Pod');

    // The validating webhook (not the CRD schema, which has no minimum here) refuses a group of size 0.
    await assert.rejects(
      custom.createNamespacedCustomObject({
        group: 'leaderworkerset.x-k8s.io',
        version: 'v1',
        namespace: lwsNamespace,
        plural: 'leaderworkersets',
        body: {
          apiVersion: 'leaderworkerset.x-k8s.io/v1',
          kind: 'LeaderWorkerSet',
          metadata: { name: 'invalid' },
          spec: { replicas: 1, leaderWorkerTemplate: { size: 0, workerTemplate: template } },
        },
      }),
      (error: { body?: unknown }) => /size must be equal or greater than 1/.test(String(error.body)),
    );
  });

  it('stops every process it started', async () => {
    const pids = Object.entries(cluster.pids);
    assert.equal(pids.length, 7);
    for (const [name, pid] of pids) assert.ok(isPidAlive(pid), `${name} runs`);
    assert.ok(processesMentioning(dir).length >= 6, 'the components name the folder in their flags');
    await cluster.stop();
    for (const [name, pid] of pids) assert.ok(!isPidAlive(pid), `${name} (pid ${pid}) still runs`);
    assert.deepEqual(processesMentioning(dir), [], 'no process mentioning the cluster folder is left');
  });
});

describe('llmisvc dev cluster on the command line', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-dev-cluster-cli-test-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts the CLI and resolves once it printed that the cluster is ready, with what it printed. */
  async function startCli(folder: string) {
    const child = spawn(
      process.execPath,
      [CLI, 'dev', 'cluster', '--dir', folder, '--no-crds', '--cpu-nodes', '0', '--gpu-nodes', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await eventually(
      'the CLI to say the cluster is ready',
      () => {
        if (child.exitCode !== null) assert.fail(`the CLI exited (${child.exitCode}):\n${stderr}`);
        return /is ready/.test(stdout) ? true : undefined;
      },
      180_000,
    );
    return { child, exited, output: () => ({ stdout, stderr }) };
  }

  it('writes DIR/kubeconfig, prints progress, and stops everything on Ctrl-C (SIGINT)', async () => {
    const folder = join(dir, 'interrupted');
    const cli = await startCli(folder);
    assert.match(cli.output().stdout, new RegExp(`kubeconfig: ${folder}/kubeconfig`));
    assert.match(cli.output().stderr, /started kube-controller-manager .*kube-scheduler .*KWOK/);
    assert.match(cli.output().stderr, /created 1 KWOK nodes: kwok-gpu-0 \(8 GPUs\)/);
    assert.match(cli.output().stderr, /Envoy Gateway accepted GatewayClass eg/);
    assert.ok(processesMentioning(folder).length >= 6, 'etcd, kube-apiserver and the controllers run');
    cli.child.kill('SIGINT');
    const [code] = await cli.exited;
    assert.equal(code, 0, cli.output().stderr);
    assert.match(cli.output().stderr, /stopped kube-apiserver and etcd/);
    assert.deepEqual(processesMentioning(folder), [], 'no process mentioning the cluster folder is left');
  });

  it('leaves no process behind when the CLI is killed with SIGKILL', async () => {
    const folder = join(dir, 'killed');
    const cli = await startCli(folder);
    const running = processesMentioning(folder);
    assert.ok(running.length >= 6);
    cli.child.kill('SIGKILL');
    await cli.exited;
    // Only the parent-death watchdogs can clean up now; kube-apiserver shuts down gracefully on their SIGTERM.
    await eventually('the watchdogs to stop every component', () =>
      processesMentioning(folder).length === 0 ? true : undefined,
    );
  });
});
