/**
 * The controller against the real API server: every example reconciled to the renderer's children with owner
 * references, status driven by patching child status, prune on topology changes, the stop annotation, drift,
 * HPA-owned replicas and zero writes in steady state (failures and deletion: controller-failures.test.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Condition, RunningController } from '../src/controller/index.js';
import { pino } from 'pino';
import { Controller, defaultEngine, LEGACY_FINALIZER, STOP_ANNOTATION } from '../src/controller/index.js';
import type { KubeClient, KubeObject, ResourceRef } from '../src/kube/index.js';
import { Discovery, KubeApiError } from '../src/kube/index.js';
import {
  apply,
  client,
  createNamespace,
  getOrUndefined,
  installProject,
  readYaml,
  renderOptions,
  resourceOf,
  root,
  SERVICE,
  skip,
  startController,
  waitFor,
} from './controller-support.js';

let c: KubeClient;
let ns: string;
let sys: string;
let controller: RunningController;

type Service = KubeObject & {
  spec: Record<string, unknown>;
  status?: { conditions?: Condition[]; url?: string; observedGeneration?: number };
};

before(async () => {
  if (skip) return;
  c = await client();
  sys = await createNamespace(c, 'ctl-sys');
  ns = await createNamespace(c, 'ctl');
  await installProject(c, sys);
  controller = await startController({ namespace: ns, systemNamespace: sys });
});

after(async () => {
  await controller?.stop();
  c?.close();
});

function example(name: string): Service {
  const [object] = readYaml(join(root, 'examples', name));
  return { ...object!, metadata: { ...object!.metadata, namespace: ns } } as Service;
}

async function service(name: string): Promise<Service> {
  return c.get<Service>(SERVICE, ns, name);
}

function condition(s: Service, type: string): Condition | undefined {
  return s.status?.conditions?.find((x) => x.type === type);
}

/** What the renderer says the service should own, and which APIs it lacks, given what the cluster serves. */
async function expectedRender(live: Service) {
  const configs = [
    ...(
      await c.list(
        await resourceOf(c, { apiVersion: 'serving.kserve.io/v1alpha2', kind: 'LLMInferenceServiceConfig' }),
        sys,
      )
    ).items,
  ].map((o) => ({ ...o, apiVersion: 'serving.kserve.io/v1alpha2', kind: 'LLMInferenceServiceConfig' }));
  const served = await new Discovery(c).servedGroupVersions();
  return defaultEngine(renderOptions(sys)).render(live, configs, served);
}

async function expectedChildren(live: Service): Promise<KubeObject[]> {
  return (await expectedRender(live)).children;
}

async function liveChild(o: KubeObject): Promise<KubeObject | undefined> {
  return getOrUndefined(c, await resourceOf(c, o), ns, o.metadata.name);
}

async function waitForChildren(name: string): Promise<{ live: Service; children: KubeObject[] }> {
  const live = await service(name);
  const expected = await expectedChildren(live);
  assert.ok(expected.length > 0);
  const children: KubeObject[] = [];
  for (const child of expected) {
    const got = await waitFor(`${child.kind} ${child.metadata.name}`, () => liveChild(child));
    const owner = got.metadata.ownerReferences?.find((r) => r.uid === live.metadata.uid);
    assert.ok(owner, `${child.kind} ${child.metadata.name} has an owner reference to the service`);
    assert.equal(owner.controller, true);
    assert.equal(got.metadata.labels?.['app.kubernetes.io/part-of'], 'llminferenceservice');
    children.push(got);
  }
  return { live, children };
}

async function patchStatus(object: KubeObject, status: Record<string, unknown>): Promise<void> {
  const ref: ResourceRef = await resourceOf(c, object);
  await c.mergePatch(ref, object.metadata.namespace, object.metadata.name, { status }, 'status');
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const cond = (type: string, status: string, reason = 'Test') => ({
  type,
  status,
  reason,
  message: `${type} set by the test`,
  lastTransitionTime: now(),
  observedGeneration: 1,
});

test('every example is reconciled to the rendered children, owned by the service', { skip }, async () => {
  const files = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 5);
  await apply(c, files.map(example), ns);
  for (const file of files) {
    const { live } = await waitForChildren(example(file).metadata.name);
    const s = await waitFor(`status of ${file}`, async () => {
      const got = await service(live.metadata.name);
      return got.status?.observedGeneration === got.metadata.generation && condition(got, 'Ready')
        ? got
        : undefined;
    });
    assert.equal(condition(s, 'PresetsCombined')?.status, 'True', file);
    // The test cluster has no KEDA, external metrics API or WVA: the autoscaling examples must say so by name.
    const { missing } = await expectedRender(live);
    const dependencies = condition(s, 'DependenciesReady');
    assert.equal(dependencies?.status, missing.length ? 'False' : 'True', file);
    for (const need of missing) assert.ok(dependencies?.message?.includes(need.apiVersions[0]!), file);
    // No kubelet or controller-manager here: workloads never become available by themselves.
    assert.equal(condition(s, 'Ready')?.status, 'False', file);
    assert.ok(
      !(s.metadata.finalizers ?? []).includes(LEGACY_FINALIZER),
      'no finalizer: deletion never waits for the controller',
    );
  }
});

test('conditions follow the children’s status; url comes from the Gateway', { skip }, async () => {
  const { live, children } = await waitForChildren('llama-single');
  const gateway = await waitFor('default gateway', () =>
    getOrUndefined(
      c,
      {
        group: 'gateway.networking.k8s.io',
        version: 'v1',
        kind: 'Gateway',
        plural: 'gateways',
        namespaced: true,
      },
      sys,
      'llmisvc-gateway',
    ),
  );
  const available = (o: KubeObject, status: 'True' | 'False') =>
    patchStatus(o, {
      observedGeneration: o.metadata.generation,
      replicas: 1,
      readyReplicas: status === 'True' ? 1 : 0,
      conditions: [
        {
          type: 'Available',
          status,
          reason: 'Test',
          message: 'set by the test',
          lastUpdateTime: now(),
          lastTransitionTime: now(),
        },
      ],
    });
  for (const d of children.filter((o) => o.kind === 'Deployment')) await available(d, 'True');
  for (const route of children.filter((o) => o.kind === 'HTTPRoute'))
    await patchStatus(route, {
      parents: [
        {
          parentRef: {
            group: 'gateway.networking.k8s.io',
            kind: 'Gateway',
            name: 'llmisvc-gateway',
            namespace: sys,
          },
          controllerName: 'example.com/test',
          conditions: [cond('Accepted', 'True'), cond('ResolvedRefs', 'True')],
        },
      ],
    });
  for (const pool of children.filter((o) => o.kind === 'InferencePool')) {
    const parents = [
      {
        parentRef: {
          group: 'gateway.networking.k8s.io',
          kind: 'Gateway',
          name: 'llmisvc-gateway',
          namespace: sys,
        },
        conditions: [cond('Accepted', 'True')],
      },
    ];
    await patchStatus(pool, pool.apiVersion.endsWith('/v1') ? { parents } : { parent: parents });
  }
  let s = await waitFor('RouterReady waits for the gateway', async () => {
    const got = await service(live.metadata.name);
    return condition(got, 'WorkloadsReady')?.status === 'True' &&
      condition(got, 'GatewaysReady')?.status === 'False'
      ? got
      : undefined;
  });
  assert.equal(condition(s, 'Ready')?.status, 'False');
  await patchStatus(gateway, {
    conditions: [cond('Accepted', 'True'), cond('Programmed', 'True')],
    addresses: [],
  });
  s = await waitFor('address pending explained', async () => {
    const got = await service(live.metadata.name);
    return condition(got, 'GatewaysReady')?.reason === 'AddressPending' ? got : undefined;
  });
  assert.match(condition(s, 'GatewaysReady')!.message!, /LoadBalancer/);
  await patchStatus(gateway, { addresses: [{ type: 'IPAddress', value: '192.0.2.10' }] });
  s = await waitFor('Ready', async () => {
    const got = await service(live.metadata.name);
    return condition(got, 'Ready')?.status === 'True' ? got : undefined;
  });
  assert.match(s.status!.url!, /^http:\/\/192\.0\.2\.10/);
  for (const type of [
    'MainWorkloadReady',
    'SchedulerWorkloadReady',
    'HTTPRoutesReady',
    'InferencePoolReady',
    'RouterReady',
  ])
    assert.equal(condition(s, type)?.status, 'True', type);

  const main = children.find((o) => o.kind === 'Deployment' && o.metadata.name === 'llama-single-kserve')!;
  await available(main, 'False');
  s = await waitFor('MainWorkloadReady False', async () => {
    const got = await service(live.metadata.name);
    return condition(got, 'MainWorkloadReady')?.status === 'False' ? got : undefined;
  });
  assert.equal(condition(s, 'Ready')?.status, 'False');
  assert.match(condition(s, 'Ready')!.message!, /llama-single-kserve: 0\/2 replicas ready/);
});

test('steady state makes no API writes, even after a full resync', { skip }, async () => {
  await waitForChildren('opt-plain');
  // Let the queue drain, then count writes across a forced resync of every service.
  await waitFor('queue idle', () => controller.controller.queue.length === 0);
  const reconciles = async () =>
    (await controller.controller.metrics.reconciles.get()).values.reduce((a, v) => a + v.value, 0);
  await waitFor('quiet', async () => {
    const before = controller.client.writes();
    const r = await reconciles();
    controller.controller.enqueueAll();
    await waitFor(
      'resync done',
      async () => (await reconciles()) >= r + 8 && controller.controller.queue.length === 0,
    );
    return controller.client.writes() === before;
  });
  const writes = controller.client.writes();
  const r = await reconciles();
  controller.controller.enqueueAll();
  await waitFor(
    'second resync done',
    async () => (await reconciles()) >= r + 8 && controller.controller.queue.length === 0,
  );
  assert.equal(controller.client.writes(), writes, 'a resync of converged services wrote to the API');
});

test(
  'drift in an owned field is corrected; replicas owned by an autoscaler are left alone',
  { skip },
  async () => {
    const base = example('no-scheduler.yaml');
    const name = 'hpa-owned';
    const spec = { ...base.spec };
    delete spec['replicas'];
    await apply(c, [{ ...base, metadata: { name, namespace: ns }, spec }], ns);
    const { children } = await waitForChildren(name);
    const deployment = children.find((o) => o.kind === 'Deployment')!;
    assert.equal((deployment['spec'] as { replicas?: number }).replicas, 1, 'API server default');
    const deployments = await resourceOf(c, deployment);
    // An autoscaler takes replicas with its own field manager.
    await c.apply(
      deployments,
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: deployment.metadata.name, namespace: ns },
        spec: { replicas: 5 },
      },
      { fieldManager: 'hpa', force: true },
    );
    // Someone edits a label the controller owns.
    await c.mergePatch(deployments, ns, deployment.metadata.name, {
      metadata: { labels: { 'app.kubernetes.io/part-of': 'edited', keep: 'me' } },
    });
    // The edit also moves the object out of the child informer's label selector: that counts as a change too.
    const got = await waitFor('label restored', async () => {
      const o = await c.get(deployments, ns, deployment.metadata.name);
      return o.metadata.labels?.['app.kubernetes.io/part-of'] === 'llminferenceservice' ? o : undefined;
    });
    assert.equal((got['spec'] as { replicas: number }).replicas, 5, 'replicas stay with the autoscaler');
    assert.equal(got.metadata.labels?.['keep'], 'me', 'labels of other managers stay');
  },
);

test(
  'topology changes prune: Deployment ↔ LeaderWorkerSet, removing the scheduler removes pool and EPP',
  { skip },
  async () => {
    const single = example('single-node.yaml');
    const name = 'topology';
    await apply(c, [{ ...single, metadata: { name, namespace: ns } }], ns);
    let { children } = await waitForChildren(name);
    const kinds = (objs: KubeObject[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.ok(kinds(children).includes(`Deployment/${name}-kserve`));
    assert.ok(kinds(children).some((k) => k.startsWith('InferencePool/')));

    // Add a worker: the main workload becomes a LeaderWorkerSet.
    await apply(
      c,
      [
        {
          ...single,
          metadata: { name, namespace: ns },
          spec: {
            ...single.spec,
            worker: { containers: [{ name: 'main' }] },
            parallelism: { tensor: 1, pipeline: 2 },
          },
        },
      ],
      ns,
    );
    ({ children } = await waitForChildren(name));
    assert.ok(kinds(children).some((k) => k.startsWith('LeaderWorkerSet/')));
    const deployments = await resourceOf(c, { apiVersion: 'apps/v1', kind: 'Deployment' });
    await waitFor(
      'Deployment pruned',
      async () => !(await getOrUndefined(c, deployments, ns, `${name}-kserve`)),
    );

    // Back to one node, and without the scheduler.
    const router = { ...(single.spec['router'] as Record<string, unknown>) };
    delete router['scheduler'];
    await apply(c, [{ ...single, metadata: { name, namespace: ns }, spec: { ...single.spec, router } }], ns);
    ({ children } = await waitForChildren(name));
    assert.ok(kinds(children).includes(`Deployment/${name}-kserve`));
    const lws = await resourceOf(c, { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet' });
    await waitFor(
      'LeaderWorkerSet pruned',
      async () => !(await getOrUndefined(c, lws, ns, `${name}-kserve-mn`)),
    );
    const pools = await resourceOf(c, {
      apiVersion: 'inference.networking.k8s.io/v1',
      kind: 'InferencePool',
    });
    await waitFor('pool pruned', async () => !(await getOrUndefined(c, pools, ns, `${name}-inference-pool`)));
    await waitFor(
      'EPP pruned',
      async () => !(await getOrUndefined(c, deployments, ns, `${name}-kserve-router-scheduler`)),
    );
  },
);

test(
  'the stop annotation removes the children and says Stopped; removing it brings them back',
  { skip },
  async () => {
    const base = example('no-scheduler.yaml');
    const name = 'stoppable';
    await apply(c, [{ ...base, metadata: { name, namespace: ns } }], ns);
    const { children } = await waitForChildren(name);
    await c.mergePatch(SERVICE, ns, name, { metadata: { annotations: { [STOP_ANNOTATION]: 'true' } } });
    for (const child of children)
      await waitFor(`${child.kind} removed`, async () => !(await liveChild(child)));
    const s = await waitFor('Stopped', async () => {
      const got = await service(name);
      return condition(got, 'Ready')?.reason === 'Stopped' ? got : undefined;
    });
    assert.equal(condition(s, 'WorkloadsReady')?.reason, 'Stopped');
    await c.mergePatch(SERVICE, ns, name, { metadata: { annotations: { [STOP_ANNOTATION]: null } } });
    await waitForChildren(name);
  },
);

test('a default Gateway that users manage is left alone', { skip }, async () => {
  const gateways = await resourceOf(c, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway' });
  await waitFor('default gateway', () => getOrUndefined(c, gateways, sys, 'llmisvc-gateway'));
  // The user takes the Gateway over: drops the managed-by label and changes its listeners.
  await c.mergePatch(gateways, sys, 'llmisvc-gateway', {
    metadata: { labels: { 'app.kubernetes.io/managed-by': null } },
    spec: { listeners: [{ name: 'mine', port: 8080, protocol: 'HTTP' }] },
  });
  const edited = await c.get(gateways, sys, 'llmisvc-gateway');
  const reconciles = async () =>
    (await controller.controller.metrics.reconciles.get()).values.reduce((a, v) => a + v.value, 0);
  const before = await reconciles();
  // A change to a service that routes through the Gateway: its pass sees the user's Gateway.
  await c.mergePatch(SERVICE, ns, 'llama-single', { metadata: { annotations: { touched: 'yes' } } });
  await waitFor(
    'reconciled',
    async () => (await reconciles()) > before && controller.controller.queue.length === 0,
  );
  const after = await c.get(gateways, sys, 'llmisvc-gateway');
  assert.equal(
    after.metadata.resourceVersion,
    edited.metadata.resourceVersion,
    'the controller did not write to it',
  );
  assert.equal((after['spec'] as { listeners: { name: string }[] }).listeners[0]!.name, 'mine');
});

test(
  'a 409 Conflict is retried with a fresh read, counted as a conflict, not an error',
  { skip },
  async () => {
    const calls: string[] = [];
    // The real reconcile, preceded by a conflict on the first attempt: what a stale cache meets on a precondition.
    class Conflicting extends Controller {
      override async reconcile(key: string): Promise<void> {
        calls.push(key);
        if (calls.length === 1) throw new KubeApiError(409, 'Conflict', 'the object has been modified');
        return super.reconcile(key);
      }
    }
    const other = await createNamespace(c, 'conflict');
    const conflicting = new Conflicting({
      client: controller.client,
      engine: defaultEngine(renderOptions(sys)),
      logger: pino({ level: 'silent' }),
      namespace: other,
      systemNamespace: sys,
      resyncMs: 0,
    });
    await conflicting.start();
    try {
      const base = example('no-scheduler.yaml');
      await apply(c, [{ ...base, metadata: { name: 'conflicted', namespace: other } }], other);
      const deployments = await resourceOf(c, { apiVersion: 'apps/v1', kind: 'Deployment' });
      await waitFor('reconciled after the conflict', () =>
        getOrUndefined(c, deployments, other, 'conflicted-kserve'),
      );
      const results = (await conflicting.metrics.reconciles.get()).values;
      assert.equal(results.find((v) => v.labels['result'] === 'conflict')?.value, 1);
      assert.equal(
        results.find((v) => v.labels['result'] === 'error'),
        undefined,
      );
      assert.ok(calls.length >= 2);
    } finally {
      await conflicting.stop();
    }
  },
);
