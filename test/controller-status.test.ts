/**
 * Status as KServe v0.20 writes it, on the real API server: `status.workloads`, `status.router`,
 * `status.appliedConfigs` and address origins on a service; `status.referencedBy` and ConfigInUse on a
 * LLMInferenceServiceConfig; and the deletion protection of configs through the shipped webhook rules
 * (deploy/controller/webhook.yaml, pointed at the in-process webhook and limited to this test's namespaces).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Condition, RunningController } from '../src/controller/index.js';
import type { KubeClient, KubeObject, ResourceRef } from '../src/kube/index.js';
import { CORE_RESOURCES, KubeApiError } from '../src/kube/index.js';
import {
  apply,
  client,
  createNamespace,
  freePort,
  getOrUndefined,
  installProject,
  loopbackWebhook,
  readYaml,
  root,
  SERVICE,
  shippedWebhooks,
  skip,
  startController,
  waitFor,
} from './controller-support.js';

const CONFIG: ResourceRef = {
  ...SERVICE,
  kind: 'LLMInferenceServiceConfig',
  plural: 'llminferenceserviceconfigs',
};
const GATEWAY: ResourceRef = {
  group: 'gateway.networking.k8s.io',
  version: 'v1',
  kind: 'Gateway',
  plural: 'gateways',
  namespaced: true,
};

type Status = {
  conditions?: Condition[];
  url?: string;
  addresses?: { url: string; origin?: Record<string, string> }[];
  router?: {
    gateways?: { name: string; namespace: string; httpRoutes?: { name: string }[] }[];
    scheduler?: { inferencePool?: { name: string; group: string }; service?: { name: string } };
  };
  workloads?: Record<string, { apiGroup?: string; kind: string; name: string } | undefined>;
  appliedConfigs?: { name: string; namespace: string; source: string }[];
  referencedBy?: { name: string; namespace: string }[];
};
type Obj = KubeObject & { spec?: Record<string, unknown>; status?: Status };

let c: KubeClient;
let ns: string;
let sys: string;
let controller: RunningController | undefined;
let vwcName: string;

before(async () => {
  if (skip) return;
  c = await client();
  sys = await createNamespace(c, 'st-sys');
  ns = await createNamespace(c, 'st');
  vwcName = `llmisvc-status-${ns}`;
  await installProject(c, sys);
  const port = await freePort();
  await c.create(CORE_RESOURCES.validatingWebhookConfiguration, shippedWebhooks(vwcName, port, [ns, sys]));
  controller = await startController({
    namespace: ns,
    systemNamespace: sys,
    webhook: loopbackWebhook(port, [vwcName]),
  });
});

after(async () => {
  await controller?.stop();
  if (c && vwcName)
    await c.delete(CORE_RESOURCES.validatingWebhookConfiguration, undefined, vwcName).catch(() => undefined);
  c?.close();
});

function example(file: string, name: string, spec: Record<string, unknown> = {}): Obj {
  const [object] = readYaml(join(root, 'examples', file));
  return {
    ...object!,
    metadata: { name, namespace: ns },
    spec: { ...(object!['spec'] as object), ...spec },
  };
}

const get = (ref: ResourceRef, namespace: string, name: string) => c.get<Obj>(ref, namespace, name);
const condition = (o: Obj, type: string) => o.status?.conditions?.find((x) => x.type === type);
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

test(
  'a service reports its workloads, router, merged configs and where each address comes from',
  { skip },
  async () => {
    await apply(c, [example('single-node.yaml', 'st')], ns);
    let s = await waitFor('workloads and router in status', async () => {
      const got = await get(SERVICE, ns, 'st');
      return got.status?.workloads?.['scheduler'] && got.status.router?.gateways ? got : undefined;
    });
    assert.deepEqual(s.status!.workloads, {
      primary: { apiGroup: 'apps', kind: 'Deployment', name: 'st-kserve' },
      service: { kind: 'Service', name: 'st-kserve-workload-svc' },
      scheduler: { apiGroup: 'apps', kind: 'Deployment', name: 'st-kserve-router-scheduler' },
    });
    assert.deepEqual(s.status!.router!.gateways, [
      {
        group: 'gateway.networking.k8s.io',
        kind: 'Gateway',
        name: 'llmisvc-gateway',
        namespace: sys,
        httpRoutes: [
          { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'st-kserve-route', namespace: ns },
        ],
      },
    ]);
    assert.equal(s.status!.router!.scheduler?.inferencePool?.name, 'st-inference-pool');
    assert.ok(s.status!.router!.scheduler?.service?.name, 'the Endpoint Picker Service');
    const applied = s.status!.appliedConfigs ?? [];
    assert.ok(applied.some((a) => a.name === 'config-llm-template'));
    for (const a of applied) assert.deepEqual([a.namespace, a.source], [sys, 'Preset']);

    // The Gateway gets an address: it becomes the service's, with the Gateway as its origin.
    const gateway = await get(GATEWAY, sys, 'llmisvc-gateway');
    await c.mergePatch(
      GATEWAY,
      sys,
      gateway.metadata.name,
      {
        status: {
          addresses: [{ type: 'IPAddress', value: '192.0.2.20' }],
          conditions: [
            {
              type: 'Programmed',
              status: 'True',
              reason: 'Test',
              message: 'set by the test',
              lastTransitionTime: now(),
            },
            {
              type: 'Accepted',
              status: 'True',
              reason: 'Test',
              message: 'set by the test',
              lastTransitionTime: now(),
            },
          ],
        },
      },
      'status',
    );
    s = await waitFor('address from the gateway', async () => {
      const got = await get(SERVICE, ns, 'st');
      return got.status?.addresses?.[0]?.origin?.['kind'] === 'Gateway' ? got : undefined;
    });
    assert.match(s.status!.url!, /^http:\/\/192\.0\.2\.20\//);
    assert.deepEqual(s.status!.addresses![0]!.origin, {
      group: 'gateway.networking.k8s.io',
      kind: 'Gateway',
      name: 'llmisvc-gateway',
      namespace: sys,
    });

    // Stopped: nothing runs, so nothing is reported as router or workloads.
    await c.mergePatch(SERVICE, ns, 'st', {
      metadata: { annotations: { 'serving.kserve.io/stop': 'true' } },
    });
    s = await waitFor('stopped', async () => {
      const got = await get(SERVICE, ns, 'st');
      return condition(got, 'Ready')?.reason === 'Stopped' ? got : undefined;
    });
    assert.equal(s.status!.router, undefined);
    assert.equal(s.status!.workloads, undefined);
  },
);

test(
  'a service behind an Ingress: missing says what to do; its host and tls give the url',
  { skip },
  async () => {
    const ingresses: ResourceRef = {
      group: 'networking.k8s.io',
      version: 'v1',
      kind: 'Ingress',
      plural: 'ingresses',
      namespaced: true,
    };
    await apply(c, [example('ingress.yaml', 'behind')], ns);
    let s = await waitFor('IngressReady False', async () => {
      const got = await get(SERVICE, ns, 'behind');
      return condition(got, 'IngressReady')?.reason === 'IngressNotFound' ? got : undefined;
    });
    assert.match(
      condition(s, 'IngressReady')!.message!,
      new RegExp(
        `Ingress ${ns}/llm-ingress does not exist: create it \\(backend: Service behind-kserve-workload-svc, port 8000\\)`,
      ),
    );
    assert.equal(condition(s, 'RouterReady')?.status, 'False');
    assert.match(s.status!.url!, /^http:\/\/behind-kserve-workload-svc\./, 'the cluster-local url meanwhile');

    await c.create(ingresses, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'llm-ingress', namespace: ns },
      spec: {
        tls: [{ hosts: ['llm.example.com'], secretName: 'llm-tls' }],
        rules: [
          {
            host: 'llm.example.com',
            http: {
              paths: [
                {
                  path: '/behind',
                  pathType: 'Prefix',
                  backend: { service: { name: 'behind-kserve-workload-svc', port: { number: 8000 } } },
                },
              ],
            },
          },
        ],
      },
    });
    s = await waitFor('address pending', async () => {
      const got = await get(SERVICE, ns, 'behind');
      return condition(got, 'IngressReady')?.reason === 'AddressPending' ? got : undefined;
    });
    assert.match(
      condition(s, 'IngressReady')!.message!,
      /ingress controller runs for the default IngressClass/,
    );
    await c.mergePatch(
      ingresses,
      ns,
      'llm-ingress',
      { status: { loadBalancer: { ingress: [{ ip: '192.0.2.30' }] } } },
      'status',
    );
    s = await waitFor('IngressReady', async () => {
      const got = await get(SERVICE, ns, 'behind');
      return condition(got, 'IngressReady')?.status === 'True' ? got : undefined;
    });
    assert.equal(s.status!.url, 'https://llm.example.com/behind');
    assert.deepEqual(s.status!.addresses, [
      {
        url: 'https://llm.example.com/behind',
        origin: { group: 'networking.k8s.io', kind: 'Ingress', name: 'llm-ingress', namespace: ns },
      },
    ]);
    assert.equal(s.status!.router, undefined, 'no Gateway API objects');
  },
);

test('a config lists the services that use it and cannot be deleted while they do', { skip }, async () => {
  await apply(
    c,
    [
      {
        apiVersion: 'serving.kserve.io/v1alpha2',
        kind: 'LLMInferenceServiceConfig',
        metadata: { name: 'team-base', namespace: ns },
        spec: { labels: { team: 'a' } },
      },
    ],
    ns,
  );
  await apply(c, [example('no-scheduler.yaml', 'uses-base', { baseRefs: [{ name: 'team-base' }] })], ns);
  const s = await waitFor('appliedConfigs with the baseRef', async () => {
    const got = await get(SERVICE, ns, 'uses-base');
    return got.status?.appliedConfigs?.some((a) => a.source === 'UserRef') ? got : undefined;
  });
  assert.deepEqual(s.status!.appliedConfigs!.at(-1), { name: 'team-base', namespace: ns, source: 'UserRef' });
  const config = await waitFor('referencedBy', async () => {
    const got = await get(CONFIG, ns, 'team-base');
    return got.status?.referencedBy?.length ? got : undefined;
  });
  assert.deepEqual(config.status!.referencedBy, [{ name: 'uses-base', namespace: ns }]);
  assert.equal(condition(config, 'ConfigInUse')?.status, 'True');
  assert.match(condition(config, 'ConfigInUse')!.message!, /used by 1 LLMInferenceService/);

  // Deleting it is refused, naming the service and what to do.
  await assert.rejects(
    c.delete(CONFIG, ns, 'team-base'),
    (e: unknown) =>
      e instanceof KubeApiError &&
      /denied the request/.test(e.message) &&
      new RegExp(
        `in use by LLMInferenceService ${ns}/uses-base: remove "team-base" from their spec.baseRefs`,
      ).test(e.message),
  );
  // So is deleting a preset the service was built from, in the system namespace.
  await assert.rejects(
    c.delete(CONFIG, sys, 'config-llm-template'),
    (e: unknown) => e instanceof KubeApiError && new RegExp(`${ns}/uses-base`).test(e.message),
  );

  // Once the service no longer names it, the config says so and can go.
  await c.mergePatch(SERVICE, ns, 'uses-base', { spec: { baseRefs: null } });
  const unused = await waitFor('no longer referenced', async () => {
    const got = await get(CONFIG, ns, 'team-base');
    return condition(got, 'ConfigInUse')?.status === 'False' ? got : undefined;
  });
  assert.equal(unused.status!.referencedBy, undefined);
  await c.delete(CONFIG, ns, 'team-base');
  assert.equal(await getOrUndefined(c, CONFIG, ns, 'team-base'), undefined);
});

test(
  'config deletion fails open: with the controller down, a used config can be deleted',
  { skip },
  async () => {
    await apply(
      c,
      [
        {
          apiVersion: 'serving.kserve.io/v1alpha2',
          kind: 'LLMInferenceServiceConfig',
          metadata: { name: 'doomed', namespace: ns },
          spec: { labels: { team: 'b' } },
        },
      ],
      ns,
    );
    await apply(c, [example('no-scheduler.yaml', 'uses-doomed', { baseRefs: [{ name: 'doomed' }] })], ns);
    await waitFor('referencedBy', async () => (await get(CONFIG, ns, 'doomed')).status?.referencedBy?.length);
    await controller!.stop();
    controller = undefined;
    // The webhook's failurePolicy is Ignore: no answer means the deletion goes through.
    await c.delete(CONFIG, ns, 'doomed');
    await waitFor('deleted', async () => !(await getOrUndefined(c, CONFIG, ns, 'doomed')));
  },
);
