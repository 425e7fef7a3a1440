import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Condition, LiveObject, ObservedChild, StatusInput } from './conditions.js';
import {
  deriveStatus,
  gatewayReadiness,
  ingressAddresses,
  ingressReadiness,
  mergeConditionTimes,
  poolsRoutedTo,
  routeReadiness,
  workloadReadiness,
} from './conditions.js';

const deployment = (
  available: 'True' | 'False' | undefined,
  extra: Record<string, unknown> = {},
): LiveObject => ({
  kind: 'Deployment',
  metadata: { name: 'm-kserve', generation: 1 },
  spec: { replicas: 2 },
  status: {
    observedGeneration: 1,
    readyReplicas: available === 'True' ? 2 : 0,
    conditions: available
      ? [{ type: 'Available', status: available, reason: 'MinimumReplicasUnavailable' }]
      : [],
    ...extra,
  },
});
const gateway = (programmed: boolean, addresses: string[]): LiveObject => ({
  kind: 'Gateway',
  metadata: { name: 'gw' },
  spec: { listeners: [{ protocol: 'HTTP', port: 80 }] },
  status: {
    conditions: [{ type: 'Programmed', status: programmed ? 'True' : 'False', reason: 'Pending' }],
    addresses: addresses.map((value) => ({ type: 'IPAddress', value })),
  },
});
const accepted = {
  parents: [
    {
      parentRef: { name: 'gw' },
      conditions: [
        { type: 'Accepted', status: 'True' },
        { type: 'ResolvedRefs', status: 'True' },
      ],
    },
  ],
};
const child = (role: ObservedChild['role'], kind: string, live: LiveObject | undefined): ObservedChild => ({
  role,
  kind,
  name: live?.metadata.name ?? `x-${kind}`,
  live,
});

const base = (over: Partial<StatusInput>): StatusInput => ({
  generation: 1,
  stopped: false,
  missing: [],
  children: [],
  gateways: new Map(),
  ...over,
});
const find = (cs: Condition[], type: string) => cs.find((c) => c.type === type);

test('workload readiness reads the Available condition and generations', () => {
  assert.equal(
    workloadReadiness(child('main-workload', 'Deployment', deployment('True')), 'MainWorkloadReady').status,
    'True',
  );
  const notReady = workloadReadiness(
    child('main-workload', 'Deployment', deployment('False')),
    'MainWorkloadReady',
  );
  assert.equal(notReady.status, 'False');
  assert.match(notReady.message!, /0\/2 replicas ready/);
  const stale = deployment('True');
  stale.metadata.generation = 2;
  assert.equal(workloadReadiness(child('main-workload', 'Deployment', stale), 'X').reason, 'Progressing');
  assert.equal(workloadReadiness(child('main-workload', 'Deployment', undefined), 'X').reason, 'NotCreated');
});

test('gateway without an address explains the LoadBalancer options', () => {
  const c = gatewayReadiness('ns/gw', gateway(true, []));
  assert.equal(c.reason, 'AddressPending');
  assert.match(c.message!, /MetalLB/);
  assert.match(c.message!, /port-forward/);
  assert.equal(gatewayReadiness('ns/gw', gateway(false, [])).status, 'False');
  assert.equal(gatewayReadiness('ns/gw', gateway(true, ['10.0.0.1'])).status, 'True');
});

test('route readiness requires every parent to accept and resolve refs', () => {
  const live: LiveObject = { metadata: { name: 'r' }, status: accepted };
  assert.equal(routeReadiness(child('route', 'HTTPRoute', live)).status, 'True');
  const rejected: LiveObject = {
    metadata: { name: 'r' },
    status: {
      parents: [
        {
          parentRef: { name: 'gw' },
          conditions: [
            { type: 'Accepted', status: 'True' },
            { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', message: 'no pool' },
          ],
        },
      ],
    },
  };
  const c = routeReadiness(child('route', 'HTTPRoute', rejected));
  assert.equal(c.reason, 'BackendNotFound');
  assert.match(c.message!, /no pool/);
});

test('everything ready: Ready True with url and addresses from the gateway', () => {
  const status = deriveStatus(
    base({
      children: [
        child('main-workload', 'Deployment', deployment('True')),
        child('route', 'HTTPRoute', { metadata: { name: 'r' }, status: accepted }),
      ],
      gateways: new Map([['ns/gw', gateway(true, ['10.0.0.1'])]]),
      routePath: '/ns/m',
    }),
  );
  assert.deepEqual(
    status.conditions.map((c) => [c.type, c.status]),
    [
      ['PresetsCombined', 'True'],
      ['DependenciesReady', 'True'],
      ['MainWorkloadReady', 'True'],
      ['GatewaysReady', 'True'],
      ['HTTPRoutesReady', 'True'],
      ['WorkloadsReady', 'True'],
      ['RouterReady', 'True'],
      ['Ready', 'True'],
    ],
  );
  assert.equal(status.url, 'http://10.0.0.1/ns/m');
  assert.deepEqual(status.addresses, [
    {
      url: 'http://10.0.0.1/ns/m',
      origin: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw', namespace: 'ns' },
    },
  ]);
});

test('a not-ready workload rolls up into WorkloadsReady and Ready with its message', () => {
  const status = deriveStatus(
    base({ children: [child('main-workload', 'Deployment', deployment('False'))] }),
  );
  assert.equal(find(status.conditions, 'WorkloadsReady')!.status, 'False');
  assert.equal(find(status.conditions, 'Ready')!.status, 'False');
  assert.match(find(status.conditions, 'Ready')!.message!, /MainWorkloadReady: Deployment m-kserve: 0\/2/);
});

test('missing dependency names the API, the feature and how to install it', () => {
  const status = deriveStatus(
    base({
      missing: [
        {
          feature: 'scheduler',
          apiVersions: ['inference.networking.k8s.io/v1', 'inference.networking.x-k8s.io/v1alpha2'],
          kinds: ['InferencePool'],
          install: 'llmisvc deps install gie',
        },
      ],
    }),
  );
  const deps = find(status.conditions, 'DependenciesReady')!;
  assert.equal(deps.status, 'False');
  assert.equal(deps.reason, 'MissingAPI');
  assert.match(
    deps.message!,
    /scheduler needs InferencePool \(inference.networking.k8s.io\/v1 or inference.networking.x-k8s.io\/v1alpha2\)/,
  );
  assert.match(deps.message!, /llmisvc deps install gie/);
  assert.equal(find(status.conditions, 'Ready')!.status, 'False');
});

test('a feature the API server dropped fails DependenciesReady with its own reason, after any missing API', () => {
  const dropped = {
    reason: 'ImageVolumeUnsupported',
    message: 'the API server dropped the image volume "m"',
  };
  const alone = deriveStatus(base({ unsupported: [dropped] }));
  const deps = find(alone.conditions, 'DependenciesReady')!;
  assert.equal(deps.status, 'False');
  assert.equal(deps.reason, 'ImageVolumeUnsupported');
  assert.equal(deps.message, dropped.message);
  assert.equal(find(alone.conditions, 'Ready')!.status, 'False');
  assert.match(find(alone.conditions, 'Ready')!.message!, /dropped the image volume "m"/);

  const both = deriveStatus(
    base({
      unsupported: [dropped],
      missing: [{ feature: 'worker', apiVersions: ['lws/v1'], kinds: ['LeaderWorkerSet'], install: 'x' }],
    }),
  );
  const combined = find(both.conditions, 'DependenciesReady')!;
  assert.equal(combined.reason, 'MissingAPI');
  assert.match(
    combined.message!,
    /worker needs LeaderWorkerSet.*; the API server dropped the image volume "m"/,
  );
});

test('stopped and render failures', () => {
  const stopped = deriveStatus(base({ stopped: true }));
  assert.equal(find(stopped.conditions, 'Ready')!.reason, 'Stopped');
  const failed = deriveStatus(
    base({ renderProblem: { reason: 'ConfigNotFound', message: 'config x missing' } }),
  );
  assert.equal(find(failed.conditions, 'PresetsCombined')!.status, 'False');
  assert.equal(find(failed.conditions, 'Ready')!.reason, 'ConfigNotFound');
});

test('transition times are kept for unchanged conditions', () => {
  const prev: Condition[] = [{ type: 'Ready', status: 'False', lastTransitionTime: 'old' }];
  assert.equal(
    mergeConditionTimes([{ type: 'Ready', status: 'False' }], prev, 'now')[0]!.lastTransitionTime,
    'old',
  );
  assert.equal(
    mergeConditionTimes([{ type: 'Ready', status: 'True' }], prev, 'now')[0]!.lastTransitionTime,
    'now',
  );
});

test('children the API server refused make Ready False with the reason', () => {
  const status = deriveStatus(
    base({
      children: [child('main-workload', 'Deployment', deployment('True'))],
      applyErrors: ['Service m-kserve-workload-svc: failed to allocate a serviceIP: range is full'],
    }),
  );
  const ready = find(status.conditions, 'Ready')!;
  assert.equal(ready.status, 'False');
  assert.equal(ready.reason, 'ApplyFailed');
  assert.match(ready.message!, /range is full/);
});

test('objects the pass could not write make Ready False with their reason, what to do and the retry', () => {
  const status = deriveStatus(
    base({
      children: [child('main-workload', 'Deployment', deployment('True'))],
      problems: [
        { reason: 'SystemNamespaceNotFound', message: 'the default Gateway x/y: create namespace x' },
      ],
      retry: 'retrying in 200ms (attempt 2)',
    }),
  );
  const ready = find(status.conditions, 'Ready')!;
  assert.equal(ready.status, 'False');
  assert.equal(ready.reason, 'SystemNamespaceNotFound');
  assert.match(ready.message!, /create namespace x; retrying in 200ms \(attempt 2\)$/);
});

const ingress = (spec: Record<string, unknown>, lb: Record<string, string>[] = []): LiveObject => ({
  kind: 'Ingress',
  metadata: { name: 'edge', namespace: 'ns' },
  spec,
  status: { loadBalancer: { ingress: lb } },
});
const ingressOrigin = { group: 'networking.k8s.io', kind: 'Ingress', name: 'edge', namespace: 'ns' };

test('ingress readiness: missing and address-less Ingresses say what to do', () => {
  const backend = { name: 'm-kserve-workload-svc', port: 8000 };
  const missing = ingressReadiness('ns/edge', undefined, backend);
  assert.equal(missing.reason, 'IngressNotFound');
  assert.match(
    missing.message!,
    /Ingress ns\/edge does not exist: create it \(backend: Service m-kserve-workload-svc, port 8000\), or remove it from spec.router.ingress.refs/,
  );
  const pending = ingressReadiness('ns/edge', ingress({ ingressClassName: 'nginx' }), backend);
  assert.equal(pending.reason, 'AddressPending');
  assert.match(pending.message!, /ingress controller runs for its class "nginx"/);
  assert.equal(ingressReadiness('ns/edge', ingress({}, [{ ip: '192.0.2.1' }])).status, 'True');
});

test('ingress addresses: rule hosts with the path to our Service, https from tls; else the load balancer', () => {
  const rules = [
    {
      host: 'llm.example.com',
      http: {
        paths: [
          { path: '/other', backend: { service: { name: 'x' } } },
          { path: '/qwen/', backend: { service: { name: 'svc' } } },
        ],
      },
    },
    { host: 'plain.example.com' },
  ];
  assert.deepEqual(
    ingressAddresses('ns/edge', ingress({ rules, tls: [{ hosts: ['llm.example.com'] }] }), 'svc'),
    [
      { url: 'https://llm.example.com/qwen', origin: ingressOrigin },
      { url: 'http://plain.example.com', origin: ingressOrigin },
    ],
  );
  assert.deepEqual(
    ingressAddresses('ns/edge', ingress({}, [{ ip: '192.0.2.1' }, { hostname: 'lb.example.net' }]), 'svc'),
    [
      { url: 'http://192.0.2.1', origin: ingressOrigin },
      { url: 'http://lb.example.net', origin: ingressOrigin },
    ],
  );
});

test('an Ingress feeds RouterReady and the url; while it has no address the cluster-local url stays', () => {
  const withIngress = (live: LiveObject | undefined) =>
    deriveStatus(
      base({
        children: [child('main-workload', 'Deployment', deployment('True'))],
        ingresses: new Map([['ns/edge', live]]),
        serviceUrl: 'http://m-kserve-workload-svc.ns.svc.cluster.local',
      }),
    );
  const missing = withIngress(undefined);
  assert.equal(find(missing.conditions, 'RouterReady')!.reason, 'IngressNotFound');
  assert.equal(find(missing.conditions, 'Ready')!.status, 'False');
  assert.equal(missing.url, 'http://m-kserve-workload-svc.ns.svc.cluster.local');
  const ready = withIngress(ingress({ tls: [{}] }, [{ hostname: 'lb.example.net' }]));
  assert.equal(find(ready.conditions, 'Ready')!.status, 'True');
  assert.equal(ready.url, 'https://lb.example.net');
  assert.deepEqual(ready.addresses![0]!.origin, ingressOrigin);
});

test('only the InferencePools of the group the HTTPRoute sends to count (both groups rendered)', () => {
  const pool = (apiVersion: string, accepted: boolean): ObservedChild => ({
    role: 'pool',
    apiVersion,
    kind: 'InferencePool',
    name: 'm-inference-pool',
    live: {
      metadata: { name: 'm-inference-pool' },
      status: accepted
        ? { parents: [{ parentRef: { name: 'gw' }, conditions: [{ type: 'Accepted', status: 'True' }] }] }
        : {
            parent: [
              { conditions: [{ type: 'Accepted', status: 'Unknown', message: 'Waiting for controller' }] },
            ],
          },
    },
  });
  const v1 = pool('inference.networking.k8s.io/v1', true);
  const alpha = pool('inference.networking.x-k8s.io/v1alpha2', false);
  const route = (group: string): ObservedChild => ({
    role: 'route',
    kind: 'HTTPRoute',
    name: 'm-route',
    live: {
      metadata: { name: 'm-route' },
      spec: { rules: [{ backendRefs: [{ group, kind: 'InferencePool', name: 'm-inference-pool' }] }] },
    },
  });
  assert.deepEqual(poolsRoutedTo([v1, alpha], [route('inference.networking.k8s.io')]), [v1]);
  assert.deepEqual(poolsRoutedTo([v1, alpha], [route('inference.networking.x-k8s.io')]), [alpha]);
  // No route names a pool: every pool counts, as before.
  assert.deepEqual(poolsRoutedTo([v1, alpha], []), [v1, alpha]);
});
