/**
 * The controller when things go wrong, against the real API server: a missing system namespace (created when the
 * controller may, reported on the service when it may not), a broken template in a config (PresetsCombined False,
 * no retry loop), failures that back off and say so, Events aggregated like client-go's recorder, and deletion that
 * never waits for the controller (no finalizer; the one of earlier versions is removed).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Condition, RunningController } from '../src/controller/index.js';
import { LEGACY_FINALIZER } from '../src/controller/index.js';
import type { KubeClient, KubeObject } from '../src/kube/index.js';
import { CORE_RESOURCES } from '../src/kube/index.js';
import {
  apply,
  client,
  createNamespace,
  ensureNamespace,
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

type Service = KubeObject & { spec: Record<string, unknown>; status?: { conditions?: Condition[] } };
type Event = KubeObject & {
  involvedObject: { name: string; uid?: string };
  reason: string;
  message: string;
  count?: number;
  type: string;
};

let c: KubeClient;
let sys: string;
const running: RunningController[] = [];

before(async () => {
  if (skip) return;
  c = await client();
  sys = await createNamespace(c, 'fail-sys');
  await installProject(c, sys);
});

after(async () => {
  for (const r of running) await r.stop();
  c?.close();
});

async function controller(options: Parameters<typeof startController>[0]): Promise<RunningController> {
  const r = await startController(options);
  running.push(r);
  return r;
}

function example(file: string, name: string, namespace: string, spec: Record<string, unknown> = {}): Service {
  const [object] = readYaml(join(root, 'examples', file)) as Service[];
  return { ...object!, metadata: { name, namespace }, spec: { ...object!.spec, ...spec } };
}

const condition = (s: Service | undefined, type: string) =>
  s?.status?.conditions?.find((x) => x.type === type);

async function serviceWhere(
  namespace: string,
  name: string,
  what: string,
  check: (s: Service) => boolean,
): Promise<Service> {
  return waitFor(what, async () => {
    const s = await c.get<Service>(SERVICE, namespace, name);
    return check(s) ? s : undefined;
  });
}

async function eventsOf(namespace: string, name: string, reason: string): Promise<Event[]> {
  const list = await c.list<Event>(CORE_RESOURCES.event, namespace);
  return list.items.filter((e) => e.involvedObject.name === name && e.reason === reason);
}

/**
 * A user with the controller's ClusterRole (deploy/) plus reading namespaces, but not creating them: what someone
 * without admin rights runs `llmisvc controller --kubeconfig` as.
 */
async function limitedUser(): Promise<{ user: string; groups: string[] }> {
  const user = 'llmisvc-limited';
  await apply(
    c,
    readYaml(join(root, 'deploy/controller/rbac.yaml')).filter((o) => o.kind === 'ClusterRole'),
  );
  await apply(c, [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'llmisvc-test-namespace-reader' },
      rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }],
    },
    ...['llmisvc-controller', 'llmisvc-test-namespace-reader'].map((role) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `${user}-${role}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    })),
  ]);
  return { user, groups: ['system:authenticated'] };
}

test(
  'a missing system namespace is created when the controller may, and the default Gateway lands in it',
  { skip },
  async () => {
    const ns = await createNamespace(c, 'ns-create');
    const missing = `sys-created-${Date.now().toString(36)}`;
    await controller({ namespace: ns, systemNamespace: missing });
    assert.ok(await getOrUndefined(c, CORE_RESOURCES.namespace, undefined, missing), 'created at start');
    await apply(c, [example('single-node.yaml', 'uses-gateway', ns)], ns);
    const gateways = await resourceOf(c, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway' });
    await waitFor('default Gateway in the created namespace', () =>
      getOrUndefined(c, gateways, missing, 'llmisvc-gateway'),
    );
  },
);

test(
  'without the right to create it, the service says why and what to do, in one Event, and the retries back off',
  { skip },
  async () => {
    const impersonate = await limitedUser();
    const ns = await createNamespace(c, 'ns-missing');
    const missing = `sys-missing-${Date.now().toString(36)}`;

    // The webhook certificate has to live there: that cannot work, so the controller stops at once and says why.
    await assert.rejects(
      startController({
        namespace: ns,
        systemNamespace: missing,
        impersonate,
        webhook: {
          port: 0,
          host: '127.0.0.1',
          serviceName: 'llmisvc-webhook',
          secretName: 'llmisvc-webhook-cert',
          webhookConfigurations: [],
          crds: [],
        },
      }),
      (e: Error & { hint?: string }) =>
        e.message.includes(`"${missing}" does not exist and this identity may not create it`) &&
        /webhook certificate Secret/.test(e.message) &&
        e.hint!.includes(`kubectl create namespace ${missing}`),
    );

    // Reconciling alone can run: services that need the namespace say so.
    const r = await controller({ namespace: ns, systemNamespace: missing, impersonate });
    const name = 'no-system-ns';
    await apply(c, [example('single-node.yaml', name, ns)], ns);
    const s = await serviceWhere(
      ns,
      name,
      'Ready False because the system namespace is missing',
      (x) => condition(x, 'Ready')?.reason === 'SystemNamespaceNotFound',
    );
    const ready = condition(s, 'Ready')!;
    assert.equal(ready.status, 'False');
    assert.match(ready.message!, new RegExp(`default Gateway ${missing}/llmisvc-gateway`));
    assert.match(ready.message!, new RegExp(`kubectl create namespace ${missing}`));
    assert.match(ready.message!, /retrying in \S+ \(attempt \d+; the controller backs off exponentially/);
    assert.equal(condition(s, 'PresetsCombined')?.status, 'True', 'the rest of the status is there');

    // Every failed pass bumps the count of one Warning Event, and each retry waits longer than the one before.
    const event = await waitFor('one Event counting the failures', async () => {
      const events = await eventsOf(ns, name, 'SystemNamespaceNotFound');
      assert.equal(events.length, 1, 'one Event, not one per pass');
      return (events[0]!.count ?? 1) >= 3 ? events[0] : undefined;
    });
    assert.equal(event.type, 'Warning');
    assert.match(event.message, /kubectl create namespace/);
    const key = `${ns}/${name}`;
    assert.ok(r.controller.queue.failureCount(key) >= 3);
    assert.ok(r.controller.queue.nextDelay(key) >= 800, 'the back-off grew');

    // Once someone creates the namespace, the next retry goes through.
    await ensureNamespace(c, missing);
    await serviceWhere(
      ns,
      name,
      'the failure cleared after the namespace was created',
      (x) => condition(x, 'Ready')?.reason !== 'SystemNamespaceNotFound',
    );
  },
);

test(
  'a broken template in a baseRef ends as PresetsCombined False naming the config and field, without retries',
  { skip },
  async () => {
    const ns = await createNamespace(c, 'ns-template');
    const r = await controller({ namespace: ns, systemNamespace: sys });
    const config = (team: string): KubeObject => ({
      apiVersion: 'serving.kserve.io/v1alpha2',
      kind: 'LLMInferenceServiceConfig',
      metadata: { name: 'team-labels', namespace: ns },
      spec: { labels: { team } },
    });
    // A Go string literal with an escape JSON does not know: a raw SyntaxError before the fix.
    await apply(c, [config('{{ ChildName .ObjectMeta.Name "-\\q" }}')], ns);
    const name = 'bad-template';
    await apply(c, [example('no-scheduler.yaml', name, ns, { baseRefs: [{ name: 'team-labels' }] })], ns);
    const s = await serviceWhere(ns, name, 'PresetsCombined False', (x) => !!condition(x, 'PresetsCombined'));
    const combined = condition(s, 'PresetsCombined')!;
    assert.equal(combined.status, 'False');
    assert.equal(combined.reason, 'InvalidTemplate');
    assert.match(
      combined.message!,
      /^LLMInferenceServiceConfig "team-labels" \(spec.baseRefs\[0\]\), spec.labels.team: template .* has a malformed string/,
    );
    assert.equal(condition(s, 'Ready')?.status, 'False');
    assert.equal(condition(s, 'Ready')?.reason, 'InvalidTemplate');
    assert.equal(r.controller.queue.failureCount(`${ns}/${name}`), 0, 'bad input is not retried');
    // The Event is written beside the status, not before it: wait for it, as the tests above do.
    const events = await waitFor('the InvalidTemplate Event', async () => {
      const found = await eventsOf(ns, name, 'InvalidTemplate');
      return found.length ? found : undefined;
    });
    assert.equal(events.length, 1);

    // Fixing the config is what brings it back (configs are watched), not a retry.
    await apply(c, [config('{{ ChildName .ObjectMeta.Name "-team" }}')], ns);
    await serviceWhere(
      ns,
      name,
      'PresetsCombined True',
      (x) => condition(x, 'PresetsCombined')?.status === 'True',
    );
    const deployments = await resourceOf(c, { apiVersion: 'apps/v1', kind: 'Deployment' });
    const d = await waitFor('Deployment', () => getOrUndefined(c, deployments, ns, `${name}-kserve`));
    const pod = (d['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template;
    assert.equal(pod.metadata.labels['team'], 'bad-template-team');
  },
);

test(
  "a KServe-style HTTPS probe on the presets' plain-HTTP vLLM is a Warning Event naming the field, once per spec",
  { skip },
  async () => {
    const ns = await createNamespace(c, 'ns-probe');
    const r = await controller({ namespace: ns, systemNamespace: sys });
    const name = 'https-probe';
    await apply(
      c,
      [
        example('no-scheduler.yaml', name, ns, {
          template: {
            containers: [
              {
                name: 'main',
                // An image of its own: the presets' vLLM would have the probe written with HTTP instead.
                image: 'example.com/own-server:1',
                command: ['/server'],
                readinessProbe: { httpGet: { path: '/health', port: 8000, scheme: 'HTTPS' } },
              },
            ],
          },
        }),
      ],
      ns,
    );
    const [event] = await waitFor('the warning', async () => {
      const found = await eventsOf(ns, name, 'SpecWarning');
      return found.length ? found : undefined;
    });
    assert.equal(event!.type, 'Warning');
    assert.match(
      event!.message,
      /^spec\.template\.containers\[main\]\.readinessProbe\.httpGet\.scheme: HTTPS, but/,
    );
    // Another pass over the same spec (once the controller has seen its own status for it) says nothing new.
    const services = r.controller.informers()[0]! as unknown as {
      get(
        ns: string,
        name: string,
      ): { metadata: { generation?: number }; status?: { observedGeneration?: number } } | undefined;
    };
    await waitFor('the pass is recorded', () => {
      const seen = services.get(ns, name);
      return seen?.status?.observedGeneration === seen?.metadata.generation ? true : undefined;
    });
    await r.controller.reconcile(`${ns}/${name}`);
    const after = await eventsOf(ns, name, 'SpecWarning');
    assert.equal(after.length, 1);
    assert.equal(after[0]!.count ?? 1, 1);
  },
);

test('a drift loop is one Event whose count grows, not an Event per pass', { skip }, async () => {
  const ns = await createNamespace(c, 'ns-drift');
  await controller({ namespace: ns, systemNamespace: sys });
  const name = 'drift-loop';
  await apply(c, [example('no-scheduler.yaml', name, ns)], ns);
  const deployments = await resourceOf(c, { apiVersion: 'apps/v1', kind: 'Deployment' });
  await waitFor('Deployment', () => getOrUndefined(c, deployments, ns, `${name}-kserve`));
  const passes = 4;
  for (let i = 0; i < passes; i++) {
    // Someone (another controller, a script) keeps setting a label the controller owns.
    await c.mergePatch(deployments, ns, `${name}-kserve`, {
      metadata: { labels: { 'app.kubernetes.io/name': 'edited' } },
    });
    await waitFor('label restored', async () => {
      const d = await c.get(deployments, ns, `${name}-kserve`);
      return d.metadata.labels?.['app.kubernetes.io/name'] === name;
    });
  }
  const events = await waitFor('the count caught up', async () => {
    const found = await eventsOf(ns, name, 'DriftCorrected');
    return found.length && found[0]!.count! >= passes ? found : undefined;
  });
  assert.equal(events.length, 1, 'one Event for the same correction');
  assert.match(events[0]!.message, /app.kubernetes.io\/name.*re-applied/);
});

test(
  'deleting a service does not wait for the controller: no finalizer, owner references for the GC',
  { skip },
  async () => {
    const ns = await createNamespace(c, 'ns-delete');
    const r = await controller({ namespace: ns, systemNamespace: sys });
    const name = 'deleted-while-down';
    await apply(c, [example('no-scheduler.yaml', name, ns)], ns);
    const deployments = await resourceOf(c, { apiVersion: 'apps/v1', kind: 'Deployment' });
    const d = await waitFor('Deployment', () => getOrUndefined(c, deployments, ns, `${name}-kserve`));
    const live = await c.get<Service>(SERVICE, ns, name);
    assert.deepEqual(live.metadata.finalizers ?? [], []);
    const owner = d.metadata.ownerReferences?.find((o) => o.uid === live.metadata.uid);
    assert.equal(owner?.controller, true, 'the garbage collector deletes the children');
    await r.stop();
    await c.delete(SERVICE, ns, name);
    await waitFor(
      'service gone with the controller down',
      async () => !(await getOrUndefined(c, SERVICE, ns, name)),
    );
  },
);

test(
  'the finalizer of earlier versions is removed, from services being deleted too (upgrade)',
  { skip },
  async () => {
    const ns = await createNamespace(c, 'ns-upgrade');
    const withFinalizer = (name: string): Service => {
      const s = example('no-scheduler.yaml', name, ns);
      return { ...s, metadata: { ...s.metadata, finalizers: [LEGACY_FINALIZER, 'example.com/keep'] } };
    };
    await c.create(SERVICE, withFinalizer('kept'));
    await c.create(SERVICE, withFinalizer('leaving'));
    await c.delete(SERVICE, ns, 'leaving'); // Held by the finalizers: no controller watches this namespace yet.
    assert.ok((await c.get<Service>(SERVICE, ns, 'leaving')).metadata.deletionTimestamp);
    await controller({ namespace: ns, systemNamespace: sys });
    for (const name of ['kept', 'leaving'])
      await serviceWhere(
        ns,
        name,
        `${name}: legacy finalizer removed`,
        (s) => JSON.stringify(s.metadata.finalizers) === JSON.stringify(['example.com/keep']),
      );
    // Other finalizers are someone else's: they stay; ours no longer holds the deletion.
    await c.mergePatch(SERVICE, ns, 'leaving', { metadata: { finalizers: null } });
    await waitFor('deleted service gone', async () => !(await getOrUndefined(c, SERVICE, ns, 'leaving')));
  },
);
