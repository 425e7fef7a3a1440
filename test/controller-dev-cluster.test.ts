/**
 * @module test/controller-dev-cluster
 * `llmisvc controller` and the EPP on `llmisvc dev cluster`, where the children are consumed by the real programs:
 * the Deployment/ReplicaSet, StatefulSet and garbage-collection controllers, the scheduler, the LeaderWorkerSet
 * controller and its webhooks, and KWOK's nodes. No test writes any child's status here.
 *
 * - the real LWS webhook accepts every LeaderWorkerSet the examples render (and refuses a broken one);
 * - a multi-node service (a LeaderWorkerSet) reaches Ready=True from the status the real controllers write;
 * - a topology change (LeaderWorkerSet → Deployment) rolls over: the Deployment becomes Available, the
 *   LeaderWorkerSet and its pods go away;
 * - deleting the service removes every child through the real garbage collector (the controller keeps no finalizer);
 * - `llmisvc doctor` explains a service whose Endpoint Picker is scaled to 0 (before, it called the Deployment
 *   "Available (0/0 ready)" and blamed the gateway);
 * - the EPP in Kubernetes mode follows the pool's Ready pods as the real controllers create and delete them, with
 *   model-server stand-ins listening on the pods' (loopback) IPs; a scale-down fails no request;
 * - the quickstart, multi-node and P/D examples reach Ready=True with Envoy Gateway as the Gateway API provider:
 *   Gateway Programmed and HTTPRoute Accepted/ResolvedRefs are written by the real Envoy Gateway (which also
 *   refuses an InferencePool backendRef of the wrong group), and `llmisvc deps verify` passes.
 *
 * What is simulated: KWOK plays the nodes and the pod lifecycle (no kubelet, no containers, no probes), so "Ready"
 * means KWOK marked the pod Ready; the model servers are fixtures started by the test on each pod's IP; the dev
 * cluster (not the test) gives LoadBalancer Services their address and writes InferencePool parent status from
 * Envoy Gateway's route status, standing in for cloud-provider-kind and Envoy AI Gateway's controller.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONFIG_RESOURCE as CONFIG, type RunningController } from '../src/controller/index.js';
import { startDevCluster, type DevCluster } from '../src/dev/index.js';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import { createExtProcClient, pickEndpoint, type ExtProcClient } from '../src/gateway/index.js';
import { CORE_RESOURCES, KubeClient, type KubeObject, type ResourceRef } from '../src/kube/index.js';
import { parseDocuments, toTypedObject } from '../src/api/index.js';
import { DEFAULT_API_VERSIONS, renderService } from '../src/render/index.js';
import {
  DEPLOYMENT,
  getOrUndefined,
  installProject,
  renderOptions,
  SERVICE,
  startController,
  waitFor,
} from './controller-support.js';
import { CLI, REPO_ROOT } from './harness/repo.js';
import { request } from 'undici';
import { logTail, startProcess } from '../src/process/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';

const SYSTEM_NAMESPACE = 'llmisvc-system';
const NAMESPACE = 'serving';
const LWS: ResourceRef = {
  group: 'leaderworkerset.x-k8s.io',
  version: 'v1',
  kind: 'LeaderWorkerSet',
  plural: 'leaderworkersets',
  namespaced: true,
};
const GPU = { 'nvidia.com/gpu': '1' };
/** The model-server pods of the pooled service (its EPP's pod carries the service's name too). */
const POOL_PODS = 'app.kubernetes.io/name=pooled,app.kubernetes.io/component=llminferenceservice-workload';

type Pod = KubeObject & {
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
};
type Service = KubeObject & { status?: { conditions?: { type: string; status: string; reason?: string }[] } };

function service(name: string, spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'serving.kserve.io/v1alpha2',
    kind: 'LLMInferenceService',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      model: { uri: 'hf://Qwen/Qwen2.5-0.5B-Instruct', name: 'qwen' },
      template: { containers: [{ name: 'main', resources: { limits: GPU, requests: GPU } }] },
      ...spec,
    },
  };
}

function condition(s: Service | undefined, type: string) {
  return s?.status?.conditions?.find((c) => c.type === type);
}

const isReady = (p: Pod) =>
  Boolean(p.status?.podIP) &&
  (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

describe('the controller and the EPP on llmisvc dev cluster (real controllers)', () => {
  let dir: string;
  let cluster: DevCluster;
  let c: KubeClient;
  let controller: RunningController;

  const pods = async (selector: string) =>
    (await c.list<Pod>(CORE_RESOURCES.pod, NAMESPACE, { labelSelector: selector })).items;
  const readService = (name: string) => getOrUndefined<Service>(c, SERVICE, NAMESPACE, name);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmisvc-controller-dev-cluster-'));
    cluster = await startDevCluster({
      dir,
      crds: true,
      env: process.env,
      // Enough GPUs for the quickstart, multi-node and P/D examples at once (KWOK nodes are only capacity numbers).
      nodes: { cpuNodes: 1, gpuNodes: 2, gpusPerNode: 32 },
      log: () => undefined,
    });
    c = await KubeClient.create({ kubeconfig: cluster.kubeconfigPath, qps: 1000, burst: 1000 });
    await installProject(c, SYSTEM_NAMESPACE);
    await c.create(CORE_RESOURCES.namespace, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NAMESPACE },
    });
    controller = await startController({
      kubeconfig: cluster.kubeconfigPath,
      namespace: NAMESPACE,
      systemNamespace: SYSTEM_NAMESPACE,
    });
  });

  after(async () => {
    await controller?.stop();
    c?.close();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the real LeaderWorkerSet webhook accepts every LeaderWorkerSet the examples render', async () => {
    const rendered: unknown[] = [];
    for (const file of readdirSync(join(REPO_ROOT, 'examples')).filter((f) => f.endsWith('.yaml'))) {
      const [document] = parseDocuments(readFileSync(join(REPO_ROOT, 'examples', file), 'utf8'), file);
      const typed = toTypedObject(document!);
      if (typed.kind !== 'LLMInferenceService') continue;
      const service = { ...typed, metadata: { ...typed.metadata, namespace: NAMESPACE, uid: 'dry-run' } };
      const { children } = renderService({
        service,
        configs: [],
        apiVersions: DEFAULT_API_VERSIONS,
        options: renderOptions(SYSTEM_NAMESPACE),
      });
      rendered.push(...children.filter((o) => o.kind === 'LeaderWorkerSet'));
    }
    assert.ok(rendered.length >= 3, `LeaderWorkerSets rendered: ${rendered.length}`);
    for (const lws of rendered) {
      // A server-side dry run goes through admission, so the LWS validating webhook judges the object.
      await c.apply(LWS, lws as KubeObject, { fieldManager: 'test', force: true, dryRun: true });
    }
    // The webhook is really asked: a group of size 0, which the CRD schema alone lets through, is refused.
    const broken = structuredClone(rendered[0]) as { spec: { leaderWorkerTemplate: { size: number } } };
    broken.spec.leaderWorkerTemplate.size = 0;
    await assert.rejects(
      c.apply(LWS, broken as unknown as KubeObject, { fieldManager: 'test', force: true, dryRun: true }),
      /size/,
    );
  });

  it('a multi-node service becomes Ready from the status the real LeaderWorkerSet controller writes', async () => {
    await c.create(
      SERVICE,
      service('multi', {
        replicas: 1,
        parallelism: { data: 2, dataLocal: 1, tensor: 1 },
        worker: { containers: [{ name: 'main', resources: { limits: GPU, requests: GPU } }] },
      }),
    );
    const ready = await waitFor(
      'the multi-node service to be Ready',
      async () => {
        const s = await readService('multi');
        return condition(s, 'Ready')?.status === 'True' ? s : undefined;
      },
      120_000,
    );
    assert.equal(condition(ready, 'WorkloadsReady')?.status, 'True');
    const lws = await c.get<KubeObject & { status?: { readyReplicas?: number } }>(
      LWS,
      NAMESPACE,
      'multi-kserve-mn',
    );
    assert.equal(lws.status?.readyReplicas, 1, 'the LWS controller counted its group ready');
    // Leader and worker pods, made by the LWS controller (through a StatefulSet), Ready on GPU nodes.
    const groupPods = await pods('leaderworkerset.sigs.k8s.io/name=multi-kserve-mn');
    assert.equal(groupPods.length, 2);
    assert.ok(groupPods.every(isReady));
  });

  it('a topology change rolls over: LeaderWorkerSet → Deployment, with the real controllers', async () => {
    await c.mergePatch(SERVICE, NAMESPACE, 'multi', { spec: { worker: null, parallelism: null } });
    await waitFor(
      'the Deployment to be Available and the LeaderWorkerSet and its pods gone',
      async () => {
        const deployment = await getOrUndefined<KubeObject & { status?: { availableReplicas?: number } }>(
          c,
          DEPLOYMENT,
          NAMESPACE,
          'multi-kserve',
        );
        const lws = await getOrUndefined(c, LWS, NAMESPACE, 'multi-kserve-mn');
        const lwsPods = await pods('leaderworkerset.sigs.k8s.io/name=multi-kserve-mn');
        return deployment?.status?.availableReplicas === 1 && !lws && lwsPods.length === 0;
      },
      120_000,
    );
    await waitFor(
      'Ready again',
      async () => condition(await readService('multi'), 'Ready')?.status === 'True',
    );
  });

  it('deleting the service removes its children through the real garbage collector', async () => {
    await c.delete(SERVICE, NAMESPACE, 'multi');
    await waitFor(
      'the service, its Deployment and its pods to be gone',
      async () =>
        !(await readService('multi')) &&
        !(await getOrUndefined(c, DEPLOYMENT, NAMESPACE, 'multi-kserve')) &&
        (await pods('app.kubernetes.io/name=multi')).length === 0,
      120_000,
    );
  });

  it('llmisvc doctor explains a service whose Endpoint Picker is scaled to 0', async () => {
    // Validation refuses a service's own scheduler replicas 0 (as KServe's webhook does); a config may still scale it
    // to 0, and a service stored before the rule keeps it.
    await c.create(CONFIG, {
      apiVersion: 'serving.kserve.io/v1alpha2',
      kind: 'LLMInferenceServiceConfig',
      metadata: { name: 'picker-off', namespace: NAMESPACE },
      spec: { router: { scheduler: { replicas: 0 } } },
    });
    await c.create(
      SERVICE,
      service('broken', { replicas: 1, baseRefs: [{ name: 'picker-off' }], router: { scheduler: {} } }),
    );
    await waitFor('the controller to create the picker Deployment', () =>
      getOrUndefined(c, DEPLOYMENT, NAMESPACE, 'broken-kserve-router-scheduler'),
    );
    const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        [CLI, 'doctor', 'broken', '-n', NAMESPACE, '--kubeconfig', cluster.kubeconfigPath, '-o', 'json'],
        (error, stdout) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout }),
      );
    });
    assert.notEqual(result.code, 0, 'doctor exits non-zero for a service that is not ready');
    const diagnosis = JSON.parse(result.stdout) as {
      findings: { status: string; subject: string; message: string; next?: string }[];
    };
    const picker = diagnosis.findings.find((f) => f.subject.endsWith('/broken-kserve-router-scheduler'));
    assert.equal(picker?.status, 'fail', JSON.stringify(picker));
    assert.match(picker.message, /scaled to 0 replicas: no Endpoint Picker runs/);
    assert.match(picker.next ?? '', /"scheduler":\{"replicas":1\}/);
    await c.delete(SERVICE, NAMESPACE, 'broken');
    await c.delete(CONFIG, NAMESPACE, 'picker-off');
  });

  describe('the EPP in Kubernetes mode follows the real pod churn', () => {
    let epp: RunningEpp;
    let client: ExtProcClient;
    const fixtures = new Map<string, ModelServerFixture>();

    /** A model-server stand-in on every Ready pod's IP (the pool's target port, 8000), started once per IP. */
    async function serveReadyPods(): Promise<string[]> {
      const ready = (await pods(POOL_PODS)).filter(isReady);
      for (const pod of ready) {
        const ip = pod.status!.podIP!;
        if (!fixtures.has(ip))
          fixtures.set(
            ip,
            await startModelServerFixture(pod.metadata.name, 'qwen', { host: ip, port: 8000 }),
          );
      }
      return ready.map((p) => `${p.status!.podIP}:8000`).sort();
    }

    const eppEndpoints = () =>
      epp.datastore
        .endpoints()
        .filter((e) => !e.stale)
        .map((e) => e.address)
        .sort();

    async function pick(): Promise<string> {
      const body = Buffer.from(JSON.stringify({ model: 'qwen', prompt: 'hello' }));
      const result = await pickEndpoint(client, { path: '/v1/completions', body });
      result.done();
      assert.equal(result.immediateResponse, undefined, JSON.stringify(result.immediateResponse));
      return result.endpoint!;
    }

    before(async () => {
      await c.create(SERVICE, service('pooled', { replicas: 2, router: { scheduler: {} } }));
      await waitFor('2 Ready pods of the pool', async () => (await serveReadyPods()).length === 2, 120_000);
      epp = await startEpp({
        pool: { name: 'pooled-inference-pool', namespace: NAMESPACE, kubeconfig: cluster.kubeconfigPath },
        host: '127.0.0.1',
        grpcPort: 0,
        grpcHealthPort: 0,
        metricsPort: 0,
        refreshMetricsIntervalMs: 50,
      });
      client = createExtProcClient(`127.0.0.1:${epp.grpcPort}`);
    });

    after(async () => {
      client?.close();
      await epp?.close();
      for (const f of fixtures.values()) await f.close();
      await c.delete(SERVICE, NAMESPACE, 'pooled').catch(() => undefined);
    });

    it('routes to the Ready pods of the pool', async () => {
      const expected = await serveReadyPods();
      await waitFor('the EPP to hold fresh metrics of both pods', () =>
        JSON.stringify(eppEndpoints()) === JSON.stringify(expected) ? true : undefined,
      );
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) seen.add(await pick());
      assert.ok(
        [...seen].every((e) => expected.includes(e)),
        `${[...seen].join(',')} ⊆ ${expected.join(',')}`,
      );
    });

    it('scaling up adds the new pod; scaling down removes pods with no failed request', async () => {
      const scale = (replicas: number) => c.mergePatch(SERVICE, NAMESPACE, 'pooled', { spec: { replicas } });
      await scale(3);
      const three = await waitFor(
        '3 Ready pods served',
        async () => {
          const ready = await serveReadyPods();
          return ready.length === 3 ? ready : undefined;
        },
        120_000,
      );
      await waitFor('the EPP to route to all 3', () =>
        JSON.stringify(eppEndpoints()) === JSON.stringify(three) ? true : undefined,
      );

      // Requests keep flowing while the Deployment controller deletes two pods.
      let stop = false;
      let picks = 0;
      const traffic = (async () => {
        while (!stop) {
          assert.ok(three.includes(await pick()));
          picks++;
        }
      })();
      await scale(1);
      const one = await waitFor(
        'the EPP to route to the one pod left',
        async () => {
          const ready = (await pods(POOL_PODS)).filter(isReady);
          const expected = ready.map((p) => `${p.status!.podIP}:8000`);
          return ready.length === 1 && JSON.stringify(eppEndpoints()) === JSON.stringify(expected)
            ? expected
            : undefined;
        },
        120_000,
      );
      stop = true;
      await traffic;
      assert.ok(picks > 0, 'requests were sent during the scale-down');
      for (let i = 0; i < 10; i++) assert.equal(await pick(), one[0]);
    });
  });
  describe('Envoy Gateway serves the examples: Gateway, HTTPRoute and InferencePool status from the real provider', () => {
    const EXAMPLES = ['quickstart.yaml', 'multi-node-data-parallel.yaml', 'prefill-decode.yaml'];
    const EG_CONTROLLER = 'gateway.envoyproxy.io/gatewayclass-controller';
    type Conditioned = KubeObject & {
      status?: {
        conditions?: { type: string; status: string }[];
        addresses?: { value: string }[];
        parents?: {
          controllerName?: string;
          parentRef: { name: string };
          conditions?: { type: string; status: string; reason?: string; message?: string }[];
        }[];
      };
    };
    const ROUTE: ResourceRef = {
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      kind: 'HTTPRoute',
      plural: 'httproutes',
      namespaced: true,
    };
    const GATEWAY: ResourceRef = { ...ROUTE, kind: 'Gateway', plural: 'gateways' };
    const POOL: ResourceRef = {
      group: 'inference.networking.k8s.io',
      version: 'v1',
      kind: 'InferencePool',
      plural: 'inferencepools',
      namespaced: true,
    };
    const names: string[] = [];
    const conditionOf = (o: Conditioned['status'] & object, type: string) =>
      o.conditions?.find((x) => x.type === type)?.status;

    before(async () => {
      for (const file of EXAMPLES) {
        const [document] = parseDocuments(readFileSync(join(REPO_ROOT, 'examples', file), 'utf8'), file);
        const typed = toTypedObject(document!) as unknown as KubeObject;
        names.push(typed.metadata.name);
        await c.create(SERVICE, { ...typed, metadata: { ...typed.metadata, namespace: NAMESPACE } });
      }
    });

    it('quickstart, a multi-node (LeaderWorkerSet) and the P/D example reach Ready=True', async () => {
      for (const name of names) {
        await waitFor(
          `${name} to be Ready`,
          async () => {
            const s = await readService(name);
            return condition(s, 'Ready')?.status === 'True' ? s : undefined;
          },
          180_000,
        );
      }
      // Envoy Gateway programmed the default Gateway: its envoy Deployment is Available (KWOK plays the pods) and
      // its LoadBalancer Service has an address from the dev cluster's load-balancer writer.
      const gateway = await c.get<Conditioned>(GATEWAY, SYSTEM_NAMESPACE, 'llmisvc-gateway');
      assert.equal(conditionOf(gateway.status!, 'Programmed'), 'True');
      assert.match(gateway.status!.addresses![0]!.value, /^127\.2\.\d+\.\d+$/);
    });

    it('Envoy Gateway accepts every HTTPRoute and InferencePool the examples render', async () => {
      const routes = (await c.list<Conditioned>(ROUTE, NAMESPACE)).items;
      assert.ok(routes.length >= EXAMPLES.length, `routes: ${routes.map((r) => r.metadata.name).join(', ')}`);
      for (const route of routes) {
        const parents = route.status?.parents ?? [];
        assert.ok(parents.length > 0, `${route.metadata.name} has parent status`);
        for (const parent of parents) {
          assert.equal(
            parent.controllerName,
            EG_CONTROLLER,
            `${route.metadata.name} judged by Envoy Gateway`,
          );
          for (const type of ['Accepted', 'ResolvedRefs']) {
            const found = parent.conditions?.find((x) => x.type === type);
            assert.equal(found?.status, 'True', `${route.metadata.name} ${type}: ${JSON.stringify(found)}`);
          }
        }
      }
      const pools = (await c.list<Conditioned>(POOL, NAMESPACE)).items;
      assert.ok(pools.length >= EXAMPLES.length);
      for (const pool of pools) {
        assert.ok(
          (pool.status?.parents ?? []).some(
            (p) => p.parentRef.name === 'llmisvc-gateway' && conditionOf(p, 'Accepted') === 'True',
          ),
          `${pool.metadata.name}: ${JSON.stringify(pool.status)}`,
        );
      }
    });

    it('the quickstart answers through its Gateway: Envoy Gateway’s xDS in a real Envoy, the EPP as its Deployment runs it, the pods', async () => {
      const podsOf = async (name: string, component: string) =>
        (await pods(`app.kubernetes.io/name=${name},app.kubernetes.io/component=${component}`)).filter(
          isReady,
        );
      const workload = await podsOf('quickstart', 'llminferenceservice-workload');
      const [picker] = await podsOf('quickstart', 'llminferenceservice-router-scheduler');
      assert.ok(workload.length > 0 && picker, 'the quickstart has Ready pods and an EPP pod');
      const servers = await Promise.all(
        workload.map((p) =>
          startModelServerFixture(p.metadata.name, 'Qwen/Qwen2.5-0.5B-Instruct', {
            host: p.status!.podIP!,
            port: 8000,
          }),
        ),
      );
      // The EPP container's own command line, on its pod's IP (a real kubelet would also give it a ServiceAccount).
      const deployment = await c.get<
        KubeObject & { spec: { template: { spec: { containers: { args: string[] }[] } } } }
      >(DEPLOYMENT, NAMESPACE, 'quickstart-kserve-router-scheduler');
      const epp = startProcess({
        name: 'quickstart EPP',
        command: process.execPath,
        args: [
          CLI,
          'epp',
          ...deployment.spec.template.spec.containers[0]!.args,
          '--host',
          picker.status!.podIP!,
          '--kubeconfig',
          cluster.kubeconfigPath,
        ],
        logPath: join(dir, 'quickstart-epp.log'),
      });
      try {
        const gateway = await c.get<Conditioned>(GATEWAY, SYSTEM_NAMESPACE, 'llmisvc-gateway');
        // The proxy's listener port: the Service's port 80 goes to 10080 in the pod (there is no kube-proxy here).
        const base = `http://${gateway.status!.addresses![0]!.value}:10080`;
        const names = new Set(servers.map((s) => s.name));
        // undici's request, not fetch: fetch refuses port 10080 (on the Fetch standard's list of bad ports).
        const complete = async (path: string, headers: Record<string, string> = {}) => {
          const res = await request(`${base}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...headers },
            body: JSON.stringify({ model: 'Qwen/Qwen2.5-0.5B-Instruct', prompt: 'hello', max_tokens: 4 }),
          });
          return {
            status: res.statusCode,
            servedBy: res.headers['x-served-by'],
            text: await res.body.text(),
          };
        };
        let last = 'no answer yet';
        const first = await waitFor(
          'a completion through the Gateway',
          async () => {
            const res = await complete('/serving/quickstart/v1/completions').catch((e: Error) => {
              last = e.message;
              return undefined;
            });
            if (res && res.status !== 200) last = `HTTP ${res.status}: ${res.text}`;
            return res?.status === 200 ? res : undefined;
          },
          90_000,
        ).catch(async (error: Error) => {
          const logs = readdirSync(join(dir, 'logs')).filter((f) => f.startsWith('envoy'));
          throw new Error(
            `${error.message}; last: ${last}\nEPP log:\n${await logTail(epp.logPath, 15)}\n` +
              (
                await Promise.all(logs.map(async (f) => `${f}:\n${await logTail(join(dir, 'logs', f), 15)}`))
              ).join('\n'),
          );
        });
        assert.ok(names.has(String(first.servedBy)), 'served by a quickstart pod');
        assert.equal((JSON.parse(first.text) as { object: string }).object, 'text_completion');
        // Envoy Gateway's URL rewrite took the service's path prefix off before the model server saw it.
        assert.deepEqual(
          [...new Set(servers.flatMap((s) => s.received.map((r) => r.path)))],
          ['/v1/completions'],
        );

        // A client's own destination header steers nothing: the EPP picks, and the pods answer.
        for (let i = 0; i < 5; i++) {
          const res = await complete('/serving/quickstart/v1/completions', {
            'x-gateway-destination-endpoint': new URL(cluster.server).host,
          });
          assert.equal(res.status, 200);
          assert.ok(names.has(String(res.servedBy)));
        }
        // Nor where no EPP answers (the P/D example's picker runs nowhere here): its pool fails closed, the header
        // naming a quickstart pod notwithstanding.
        const before = servers.reduce((n, s) => n + s.received.length, 0);
        const orphan = await complete('/serving/llama-pd/v1/completions', {
          'x-gateway-destination-endpoint': `${workload[0]!.status!.podIP}:8000`,
        });
        assert.ok(orphan.status >= 500, `status ${orphan.status}`);
        assert.equal(
          servers.reduce((n, s) => n + s.received.length, 0),
          before,
          'no pod reached',
        );
      } finally {
        await epp.stop();
        await Promise.all(servers.map((s) => s.close()));
      }
    });

    it('Envoy Gateway really judges backendRefs: an InferencePool of the x-k8s.io group is refused (kserve#4833)', async () => {
      const route = {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'wrong-pool-group', namespace: NAMESPACE },
        spec: {
          parentRefs: [{ name: 'llmisvc-gateway', namespace: SYSTEM_NAMESPACE }],
          rules: [
            {
              backendRefs: [
                {
                  group: 'inference.networking.x-k8s.io',
                  kind: 'InferencePool',
                  name: 'quickstart-inference-pool',
                  port: 8000,
                },
              ],
            },
          ],
        },
      };
      await c.create(ROUTE, route);
      const refused = await waitFor('Envoy Gateway to judge the route', async () => {
        const live = await c.get<Conditioned>(ROUTE, NAMESPACE, 'wrong-pool-group');
        const resolved = live.status?.parents?.[0]?.conditions?.find((x) => x.type === 'ResolvedRefs');
        return resolved ? resolved : undefined;
      });
      assert.equal(refused.status, 'False', JSON.stringify(refused));
      await c.delete(ROUTE, NAMESPACE, 'wrong-pool-group');
    });

    it('llmisvc deps verify exits 0 for the examples, the multi-node (LeaderWorkerSet) one among them', async () => {
      const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            CLI,
            'deps',
            'verify',
            '--kubeconfig',
            cluster.kubeconfigPath,
            '-f',
            join(REPO_ROOT, 'examples', 'quickstart.yaml'),
            '-f',
            join(REPO_ROOT, 'examples', 'prefill-decode.yaml'),
            '-f',
            join(REPO_ROOT, 'examples', 'multi-node-data-parallel.yaml'),
          ],
          (error, stdout) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout }),
        );
      });
      assert.equal(result.code, 0, result.stdout);
      assert.match(result.stdout, /GatewayClass eg Accepted/);
      assert.match(result.stdout, /Gateway llmisvc-system\/llmisvc-gateway has address 127\.2\./);
      // LWS runs as a process with its own webhook certificate: no cert-manager, no Deployment, and verify says why.
      assert.match(result.stdout, /ok {3}cert-manager: not required: LWS's webhook configurations carry no/);
      assert.match(result.stdout, /ok {3}lws: CRD leaderworkersets\.leaderworkerset\.x-k8s\.io Established/);
      assert.match(
        result.stdout,
        /ok {3}lws: validatingwebhookconfigurations\/lws-validating-webhook-configuration: \d+ webhook\(s\) with a CA bundle/,
      );
      assert.match(
        result.stdout,
        /ok {3}lws: the webhooks call https:\/\/127\.0\.0\.1:\d+: the LWS controller runs outside the cluster/,
      );
    });
  });
});
