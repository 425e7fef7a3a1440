/**
 * Routing groups and model-name routing on the real API server: the weights in every member's HTTPRoute follow
 * the members' readiness (a member that is not Ready gets 0), `status.router.group`, GroupReady / GroupDegraded,
 * the routing-group label, and a ModelNameCollision (Event and condition) for a service outside the group that
 * claims the group's model name later.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Condition, RunningController } from '../src/controller/index.js';
import type { KubeClient, KubeObject, ResourceRef } from '../src/kube/index.js';
import { CORE_RESOURCES } from '../src/kube/index.js';
import {
  apply,
  client,
  createNamespace,
  DEPLOYMENT,
  getOrUndefined,
  installProject,
  readYaml,
  resourceOf,
  root,
  SERVICE,
  skip,
  startController,
  waitFor,
} from './controller-support.js';

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

type Group = {
  name: string;
  members: { name: string; weight: number; effectiveWeight: number; ready: boolean; stopped: boolean }[];
};
type Obj = KubeObject & {
  spec?: Record<string, unknown>;
  status?: { conditions?: Condition[]; router?: { group?: Group } };
};
type Rule = {
  matches?: { path?: { value?: string }; headers?: { name: string; value: string }[] }[];
  backendRefs?: { name: string; weight?: number }[];
};

let c: KubeClient;
let ns: string;
let sys: string;
let controller: RunningController | undefined;

before(async () => {
  if (skip) return;
  c = await client();
  sys = await createNamespace(c, 'rg-sys');
  ns = await createNamespace(c, 'rg');
  await installProject(c, sys);
  controller = await startController({ namespace: ns, systemNamespace: sys });
});

after(async () => {
  await controller?.stop();
  c?.close();
});

const members = readYaml(join(root, 'examples', 'routing-group.yaml')).map((o) => ({
  ...o,
  metadata: { ...(o['metadata'] as object), namespace: undefined },
})) as unknown as Obj[];

const service = (name: string) => c.get<Obj>(SERVICE, ns, name);
const condition = (o: Obj, type: string) => o.status?.conditions?.find((x) => x.type === type);
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const cond = (type: string) => ({
  type,
  status: 'True',
  reason: 'Test',
  message: 'set by the test',
  lastTransitionTime: now(),
});

async function patchStatus(
  object: KubeObject,
  status: Record<string, unknown>,
  ref?: ResourceRef,
): Promise<void> {
  await c.mergePatch(
    ref ?? (await resourceOf(c, object)),
    object.metadata.namespace,
    object.metadata.name,
    { status },
    'status',
  );
}

/** The weights of the header (model-name) rule of a service's route, by backend name. */
async function modelRuleWeights(name: string): Promise<Record<string, number> | undefined> {
  const route = await getOrUndefined<Obj>(c, ROUTE, ns, `${name}-kserve-route`);
  const rules = (route?.spec?.['rules'] ?? []) as Rule[];
  const rule = rules.find((r) =>
    r.matches?.some((m) => m.headers?.some((h) => h.name === 'X-Gateway-Model-Name')),
  );
  if (!rule) return undefined;
  return Object.fromEntries((rule.backendRefs ?? []).map((b) => [b.name, b.weight ?? 1]));
}

/** What a kubelet, the gateway and its controller would report for a Ready service (none of them runs here). */
async function makeReady(name: string): Promise<void> {
  const deployments = (await c.list<Obj>(DEPLOYMENT, ns)).items.filter(
    (d) => d.metadata.labels?.['app.kubernetes.io/name'] === name,
  );
  for (const d of deployments)
    await patchStatus(
      d,
      {
        observedGeneration: d.metadata.generation,
        replicas: d.spec?.['replicas'] ?? 1,
        readyReplicas: d.spec?.['replicas'] ?? 1,
        availableReplicas: d.spec?.['replicas'] ?? 1,
        updatedReplicas: d.spec?.['replicas'] ?? 1,
        conditions: [{ ...cond('Available'), lastUpdateTime: now() }],
      },
      DEPLOYMENT,
    );
  const parentRef = {
    group: 'gateway.networking.k8s.io',
    kind: 'Gateway',
    name: 'llmisvc-gateway',
    namespace: sys,
  };
  // The pool first: the last status written must be of a kind the controller watches, to wake it.
  const pool = await c.get<Obj>(POOL, ns, `${name}-inference-pool`);
  await patchStatus(pool, {
    parents: [
      { parentRef, conditions: [{ ...cond('Accepted'), observedGeneration: pool.metadata.generation }] },
    ],
  });
  const route = await c.get<Obj>(ROUTE, ns, `${name}-kserve-route`);
  await patchStatus(route, {
    parents: [
      {
        parentRef,
        controllerName: 'example.com/test',
        conditions: [cond('Accepted'), cond('ResolvedRefs')].map((x) => ({
          ...x,
          observedGeneration: route.metadata.generation,
        })),
      },
    ],
  });
}

test('a routing group splits its model name by weight, and weights follow readiness', { skip }, async () => {
  await apply(c, members, ns);
  // Neither member is Ready: both get weight 0, the group serves nothing. The members reconcile one at a time, so
  // the first route written may name only itself until the other member exists: wait until both name both.
  const complete = (weights: Record<string, number> | undefined) =>
    weights && Object.keys(weights).length === 2;
  const both = await waitFor('both routes with the group rule', async () => {
    const stable = await modelRuleWeights('qwen-stable');
    const canary = await modelRuleWeights('qwen-canary');
    return complete(stable) && complete(canary) ? { stable, canary } : undefined;
  });
  const zero = { 'qwen-canary-inference-pool': 0, 'qwen-stable-inference-pool': 0 };
  assert.deepEqual(both, { stable: zero, canary: zero });
  let canary = await waitFor('group status', async () => {
    const got = await service('qwen-canary');
    return got.status?.router?.group && condition(got, 'GroupReady') ? got : undefined;
  });
  assert.deepEqual(canary.status!.router!.group, {
    name: 'qwen',
    members: [
      { name: 'qwen-canary', weight: 10, effectiveWeight: 0, ready: false, stopped: false },
      { name: 'qwen-stable', weight: 90, effectiveWeight: 0, ready: false, stopped: false },
    ],
  });
  assert.equal(condition(canary, 'GroupReady')?.status, 'False');
  assert.equal(condition(canary, 'GroupReady')?.reason, 'NoMemberServing');
  assert.equal(condition(canary, 'GroupDegraded')?.status, 'True');
  const deployment = await c.get<Obj>(DEPLOYMENT, ns, 'qwen-canary-kserve');
  assert.equal(deployment.metadata.labels?.['serving.kserve.io/routing-group'], 'qwen');

  // The Gateway is programmed with an address, and qwen-stable becomes Ready: it gets its 90, in both routes.
  const gateway = await waitFor('default gateway', () =>
    getOrUndefined<Obj>(c, GATEWAY, sys, 'llmisvc-gateway'),
  );
  await patchStatus(gateway, {
    conditions: [cond('Accepted'), cond('Programmed')],
    addresses: [{ type: 'IPAddress', value: '192.0.2.10' }],
  });
  await makeReady('qwen-stable');
  await waitFor('qwen-stable WorkloadsReady', async () =>
    condition(await service('qwen-stable'), 'WorkloadsReady')?.status === 'True' ? true : undefined,
  );
  const stableOnly = { 'qwen-canary-inference-pool': 0, 'qwen-stable-inference-pool': 90 };
  for (const name of ['qwen-stable', 'qwen-canary'])
    await waitFor(`${name}'s route gives qwen-stable its weight`, async () =>
      JSON.stringify(await modelRuleWeights(name)) === JSON.stringify(stableOnly) ? true : undefined,
    );
  canary = await waitFor('GroupReady on the canary', async () => {
    const got = await service('qwen-canary');
    return condition(got, 'GroupReady')?.status === 'True' ? got : undefined;
  });
  assert.equal(condition(canary, 'GroupDegraded')?.status, 'True');
  assert.match(condition(canary, 'GroupDegraded')!.message!, /qwen-canary \(not Ready\) get weight 0/);

  // The canary becomes Ready too: 90/10, and the group is no longer degraded.
  await makeReady('qwen-canary');
  const split = { 'qwen-canary-inference-pool': 10, 'qwen-stable-inference-pool': 90 };
  for (const name of ['qwen-stable', 'qwen-canary'])
    await waitFor(`${name}'s route splits 90/10`, async () =>
      JSON.stringify(await modelRuleWeights(name)) === JSON.stringify(split) ? true : undefined,
    );
  const stable = await waitFor('GroupDegraded False', async () => {
    const got = await service('qwen-stable');
    return condition(got, 'GroupDegraded')?.status === 'False' ? got : undefined;
  });
  assert.equal(condition(stable, 'GroupReady')?.status, 'True');
  assert.match(condition(stable, 'GroupReady')!.message!, /qwen-canary 10\.0%, qwen-stable 90\.0%/);
  // Each member's own paths still go to it alone.
  const route = await c.get<Obj>(ROUTE, ns, 'qwen-canary-kserve-route');
  const own = ((route.spec!['rules'] ?? []) as Rule[]).find((r) =>
    r.matches?.some((m) => m.path?.value === `/${ns}/qwen-canary/v1/chat/completions`),
  );
  assert.deepEqual(
    own?.backendRefs?.map((b) => b.name),
    ['qwen-canary-inference-pool'],
  );
});

test(
  'a later service outside the group that claims its model name gets a ModelNameCollision',
  { skip },
  async () => {
    const [first] = members;
    const rival: Obj = {
      ...first!,
      metadata: { name: 'qwen-rival' },
      spec: { ...first!.spec, router: { route: {}, gateway: {}, scheduler: {} } },
    };
    await apply(c, [rival], ns);
    const got = await waitFor('ModelNameRouted False', async () => {
      const s = await service('qwen-rival');
      return condition(s, 'ModelNameRouted')?.status === 'False' ? s : undefined;
    });
    assert.equal(condition(got, 'ModelNameRouted')?.reason, 'ModelNameCollision');
    assert.match(
      condition(got, 'ModelNameRouted')!.message!,
      /already served in this namespace by qwen-(canary|stable)/,
    );
    await waitFor('its route has no model-name rule, only its own paths', async () =>
      (await getOrUndefined(c, ROUTE, ns, 'qwen-rival-kserve-route')) &&
      (await modelRuleWeights('qwen-rival')) === undefined
        ? true
        : undefined,
    );
    const events = await waitFor('a ModelNameCollision Event', async () => {
      const list = await c.list<KubeObject & { reason?: string; involvedObject: { name: string } }>(
        CORE_RESOURCES.event,
        ns,
      );
      const found = list.items.filter(
        (e) => e.involvedObject.name === 'qwen-rival' && e.reason === 'ModelNameCollision',
      );
      return found.length ? found : undefined;
    });
    assert.equal(events.length, 1);
    // The group keeps the name: its members carry no collision.
    assert.equal(condition(await service('qwen-stable'), 'ModelNameRouted'), undefined);
  },
);
