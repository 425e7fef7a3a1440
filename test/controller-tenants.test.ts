/**
 * What a namespace user cannot do through the controller, against the real API server: the controller writes with
 * cluster-wide rights, so a service must not let its author take over objects at a child's name, read another
 * namespace's Ingress or Gateway through the status, take another tenant's paths on the shared Gateway, or stop the
 * webhook that answers every tenant with one request.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { join } from 'node:path';
import type { Condition, RunningController } from '../src/controller/index.js';
import { VALIDATE_PATH } from '../src/controller/index.js';
import type { KubeClient, KubeObject, ResourceRef } from '../src/kube/index.js';
import { CORE_RESOURCES, KubeApiError } from '../src/kube/index.js';
import {
  apply,
  client,
  createNamespace,
  DEPLOYMENT,
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

const ROLE: ResourceRef = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'Role',
  plural: 'roles',
  namespaced: true,
};
const GATEWAY: ResourceRef = {
  group: 'gateway.networking.k8s.io',
  version: 'v1',
  kind: 'Gateway',
  plural: 'gateways',
  namespaced: true,
};
const INGRESS: ResourceRef = {
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'Ingress',
  plural: 'ingresses',
  namespaced: true,
};
const HTTP_ROUTE: ResourceRef = { ...GATEWAY, kind: 'HTTPRoute', plural: 'httproutes' };

type Service = KubeObject & {
  spec: Record<string, unknown>;
  status?: { conditions?: Condition[]; url?: string; addresses?: { url: string }[] };
};

let c: KubeClient;
let ns: string;
let other: string;
let sys: string;
let port: number;
let vwcName: string;
let controller: RunningController | undefined;

before(async () => {
  if (skip) return;
  c = await client();
  sys = await createNamespace(c, 'tn-sys');
  ns = await createNamespace(c, 'tn');
  other = await createNamespace(c, 'tn-victim');
  await installProject(c, sys);
  port = await freePort();
  vwcName = `llmisvc-tenants-${ns}`;
  await c.create(CORE_RESOURCES.validatingWebhookConfiguration, shippedWebhooks(vwcName, port, [ns]));
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

function example(name: string, spec: Record<string, unknown> = {}): Service {
  const [object] = readYaml(join(root, 'examples/single-node.yaml')) as Service[];
  return { ...object!, metadata: { name, namespace: ns }, spec: { ...object!.spec, ...spec } };
}

const condition = (s: Service | undefined, type: string) =>
  s?.status?.conditions?.find((x) => x.type === type);

function serviceWhere(name: string, what: string, check: (s: Service) => boolean): Promise<Service> {
  return waitFor(what, async () => {
    const s = await c.get<Service>(SERVICE, ns, name);
    return check(s) ? s : undefined;
  });
}

test(
  "an object at a child's name that the service did not create is neither taken over nor deleted",
  { skip },
  async () => {
    // An admin's Role, bound to a group, at the name the picker's Role would get: the service's author cannot
    // change it, and a forced apply used to replace its rules and own it (deleting it with the service).
    const rules = [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }];
    await c.create(ROLE, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'ops-epp-role', namespace: ns },
      rules,
    });
    await apply(c, [example('ops')], ns);
    const s = await serviceWhere('ops', 'the name conflict reported', (got) =>
      /Role \S+\/ops-epp-role already exists/.test(condition(got, 'Ready')?.message ?? ''),
    );
    assert.equal(condition(s, 'Ready')?.reason, 'ChildNameTaken');
    assert.match(condition(s, 'Ready')!.message!, /it has no owner.*delete or rename that Role/);
    // The rest of the service is there; the Role is as the admin wrote it.
    await waitFor('the workload', () => getOrUndefined(c, DEPLOYMENT, ns, 'ops-kserve'));
    const role = await c.get<KubeObject & { rules: unknown }>(ROLE, ns, 'ops-epp-role');
    assert.deepEqual(role.rules, rules);
    assert.equal(role.metadata.ownerReferences, undefined);

    // Without a scheduler the service no longer wants the Role: it still is not the service's to delete.
    await c.mergePatch(SERVICE, ns, 'ops', { spec: { router: { scheduler: null } } });
    await serviceWhere(
      'ops',
      'the conflict gone',
      (got) => !!condition(got, 'Ready') && !/ops-epp-role/.test(condition(got, 'Ready')?.message ?? ''),
    );
    assert.ok(await getOrUndefined(c, ROLE, ns, 'ops-epp-role'), 'the Role is still there');
  },
);

test("another namespace's Ingress and Gateway show nothing through the status", { skip }, async () => {
  await c.create(INGRESS, {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'internal', namespace: other },
    spec: {
      rules: [
        {
          host: 'secret-admin.internal.example',
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: 'admin', port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  });
  await apply(
    c,
    [example('peek-ingress', { router: { ingress: { refs: [{ name: 'internal', namespace: other }] } } })],
    ns,
  );
  let s = await serviceWhere('peek-ingress', 'the foreign Ingress refused', (got) =>
    /in another namespace/.test(condition(got, 'Ready')?.message ?? ''),
  );
  assert.equal(condition(s, 'Ready')?.reason, 'IngressInOtherNamespace');
  assert.doesNotMatch(JSON.stringify(s.status), /secret-admin/);

  // A Gateway whose only listener takes routes from its own namespace, programmed, with an address.
  await c.create(GATEWAY, {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'private', namespace: other },
    spec: {
      gatewayClassName: 'eg',
      listeners: [
        { name: 'https', port: 8443, protocol: 'HTTPS', allowedRoutes: { namespaces: { from: 'Same' } } },
      ],
    },
  });
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  await c.mergePatch(
    GATEWAY,
    other,
    'private',
    {
      status: {
        addresses: [{ type: 'IPAddress', value: '10.99.0.7' }],
        conditions: [
          {
            type: 'Programmed',
            status: 'True',
            reason: 'Programmed',
            message: 'internal',
            lastTransitionTime: now,
          },
          {
            type: 'Accepted',
            status: 'True',
            reason: 'Accepted',
            message: 'internal',
            lastTransitionTime: now,
          },
        ],
      },
    },
    'status',
  );
  await apply(
    c,
    [
      example('peek-gateway', {
        router: { route: {}, gateway: { refs: [{ name: 'private', namespace: other }] } },
      }),
    ],
    ns,
  );
  s = await serviceWhere(
    'peek-gateway',
    'GatewaysReady reported',
    (got) => !!condition(got, 'GatewaysReady'),
  );
  assert.equal(condition(s, 'GatewaysReady')?.reason, 'GatewayNotFound');
  assert.match(
    condition(s, 'GatewaysReady')!.message!,
    /does not exist, or none of its listeners takes routes/,
  );
  assert.doesNotMatch(JSON.stringify(s.status), /10\.99\.0\.7|8443/);

  // Once the Gateway does take this namespace's routes, its address is the service's.
  await c.mergePatch(GATEWAY, other, 'private', {
    spec: {
      listeners: [
        { name: 'https', port: 8443, protocol: 'HTTPS', allowedRoutes: { namespaces: { from: 'All' } } },
      ],
    },
  });
  s = await serviceWhere('peek-gateway', 'the address once admitted', (got) =>
    (got.status?.url ?? '').includes('10.99.0.7'),
  );
  assert.match(s.status!.url!, /^https:\/\/10\.99\.0\.7:8443\//);
});

test("a route on the shared Gateway cannot take another service's paths", { skip }, async () => {
  const hijack = {
    router: {
      route: {
        http: {
          spec: {
            rules: [
              {
                matches: [{ path: { type: 'Exact', value: `/${other}/chat/v1/chat/completions` } }],
                backendRefs: [{ name: 'grab-kserve-workload-svc', port: 8000 }],
              },
            ],
          },
        },
      },
      gateway: {},
    },
  };
  await apply(c, [example('grab', hijack)], ns);
  const s = await serviceWhere(
    'grab',
    'the rule refused',
    (got) => condition(got, 'Ready')?.reason === 'InvalidSpec',
  );
  assert.match(
    condition(s, 'Ready')!.message!,
    /rules\[0\]\.matches\[0\]\.path: matches Exact .*may match only paths under \/\S+\/grab/,
  );
  assert.equal(await getOrUndefined(c, HTTP_ROUTE, ns, 'grab-kserve-route'), undefined);
});

/** POSTs `body` to the webhook as any client in the cluster network could (no client certificate). */
function postToWebhook(path: string, body: Buffer | string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        rejectUnauthorized: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    // A refused body closes the connection while we may still be writing it: no answer to read then.
    req.on('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EPIPE' || error.code === 'ECONNRESET'
        ? resolve({ status: 0, body: '' })
        : reject(error),
    );
    req.end(body);
  });
}

test('the webhook answers hostile requests with an error and keeps serving', { skip }, async () => {
  // Nested far deeper than a stack: the API server stores schemaless fields that deep, and the review crashed the
  // whole controller (every tenant's admission then failed).
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 3000; i++) deep = { a: deep };
  await assert.rejects(
    apply(c, [example('deep', { router: { route: { http: { spec: deep } } } })], ns),
    (e: unknown) =>
      e instanceof KubeApiError &&
      /denied the request/.test(e.message) &&
      /spec\.router\.route\.http\.spec\.a\.a.*nests deeper than 100 levels/.test(e.message),
  );

  assert.equal((await postToWebhook(VALIDATE_PATH, 'null')).status, 400);
  assert.equal((await postToWebhook(VALIDATE_PATH, '[1]')).status, 400);
  assert.equal((await postToWebhook(VALIDATE_PATH, '{"request": 5}')).status, 400);
  assert.equal((await postToWebhook(VALIDATE_PATH, '{')).status, 400);
  const huge = await postToWebhook(VALIDATE_PATH, Buffer.alloc(9 * 1024 * 1024, 0x20));
  assert.ok(huge.status === 413 || huge.status === 0, `a body past the limit is refused (${huge.status})`);

  // Still serving: a valid service passes the webhook and is reconciled.
  await apply(c, [example('after')], ns);
  await serviceWhere('after', 'reconciled', (got) => !!condition(got, 'PresetsCombined'));
});
