import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../kube/index.js';
import { childRole } from './children.js';
import type { LiveObject } from './conditions.js';
import type { ServiceLike } from './status.js';
import { REFERENCED_BY_LIMIT, configStatus, configUsers, routerStatus, workloadStatus } from './status.js';

const obj = (
  apiVersion: string,
  kind: string,
  name: string,
  extra: Record<string, unknown> = {},
): KubeObject => {
  const { labels, ...rest } = extra as { labels?: Record<string, string> };
  return { apiVersion, kind, metadata: { name, namespace: 'ns', ...(labels ? { labels } : {}) }, ...rest };
};
const component = (c: string) => ({ labels: { 'app.kubernetes.io/component': c } });
const route = (parentRefs: Record<string, unknown>[], pool = 'm-inference-pool') =>
  obj('gateway.networking.k8s.io/v1', 'HTTPRoute', 'm-kserve-route', {
    spec: {
      parentRefs,
      rules: [{ backendRefs: [{ group: 'inference.networking.k8s.io', kind: 'InferencePool', name: pool }] }],
    },
  });
const live: LiveObject = { metadata: { name: 'gw' } };
const gwRef = { group: 'gateway.networking.k8s.io', kind: 'Gateway' };
const routeRef = {
  group: 'gateway.networking.k8s.io',
  kind: 'HTTPRoute',
  name: 'm-kserve-route',
  namespace: 'ns',
};

test('workloads: primary, prefill, Service and scheduler, each once it exists; nothing for nothing', () => {
  const children = [
    {
      object: obj('apps/v1', 'Deployment', 'm-kserve', component('llminferenceservice-workload')),
      exists: true,
    },
    {
      object: obj(
        'leaderworkerset.x-k8s.io/v1',
        'LeaderWorkerSet',
        'm-kserve-mn-prefill',
        component('llminferenceservice-workload-prefill'),
      ),
      exists: true,
    },
    {
      object: obj('v1', 'Service', 'm-kserve-workload-svc', component('llminferenceservice-workload')),
      exists: true,
    },
    {
      object: obj(
        'apps/v1',
        'Deployment',
        'm-kserve-router-scheduler',
        component('llminferenceservice-router-scheduler'),
      ),
      exists: false,
    },
    { object: obj('v1', 'ConfigMap', 'other'), exists: true },
  ];
  assert.deepEqual(workloadStatus(children, childRole), {
    primary: { apiGroup: 'apps', kind: 'Deployment', name: 'm-kserve' },
    prefill: { apiGroup: 'leaderworkerset.x-k8s.io', kind: 'LeaderWorkerSet', name: 'm-kserve-mn-prefill' },
    service: { kind: 'Service', name: 'm-kserve-workload-svc' },
  });
  assert.equal(workloadStatus([], childRole), undefined);
});

test('router: gateways with listeners and routes, the pool the route sends to and the EPP Service', () => {
  const status = routerStatus({
    namespace: 'ns',
    children: [
      {
        object: route([
          { name: 'gw', namespace: 'sys', sectionName: 'https' },
          { name: 'gw', namespace: 'sys', sectionName: 'http' },
          { name: 'other' },
          { name: 'missing', namespace: 'sys' },
        ]),
        exists: true,
      },
      { object: obj('inference.networking.k8s.io/v1', 'InferencePool', 'm-inference-pool'), exists: true },
      {
        object: obj('v1', 'Service', 'm-epp-service', component('llminferenceservice-router-scheduler')),
        exists: true,
      },
    ],
    gateways: new Map([
      ['sys/gw', live],
      ['ns/other', live],
      ['sys/missing', undefined],
    ]),
  });
  assert.deepEqual(status, {
    gateways: [
      { ...gwRef, name: 'other', namespace: 'ns', httpRoutes: [routeRef] },
      { ...gwRef, name: 'gw', namespace: 'sys', listeners: ['http', 'https'], httpRoutes: [routeRef] },
    ],
    scheduler: {
      inferencePool: {
        group: 'inference.networking.k8s.io',
        kind: 'InferencePool',
        name: 'm-inference-pool',
        namespace: 'ns',
      },
      service: { group: '', kind: 'Service', name: 'm-epp-service', namespace: 'ns' },
    },
  });
});

test('router: a pool given by ref is reported from the route; no routing at all is no router status', () => {
  const status = routerStatus({
    namespace: 'ns',
    children: [{ object: route([{ name: 'gw' }], 'mine'), exists: true }],
    gateways: new Map([['ns/gw', live]]),
  });
  assert.equal(status?.scheduler?.inferencePool?.name, 'mine');
  assert.equal(status?.gateways?.[0]?.listeners, undefined, 'no sectionName: every listener');
  assert.equal(routerStatus({ namespace: 'ns', children: [], gateways: new Map() }), undefined);
});

const svc = (
  namespace: string,
  name: string,
  status: ServiceLike['status'] = {},
  baseRefs: string[] = [],
  extra: Partial<KubeObject['metadata']> = {},
): ServiceLike => ({
  apiVersion: 'serving.kserve.io/v1alpha2',
  kind: 'LLMInferenceService',
  metadata: { name, namespace, generation: 1, ...extra },
  spec: { baseRefs: baseRefs.map((n) => ({ name: n })) },
  status,
});

test('config users: what services merged, plus baseRefs of services not reconciled yet; not those being deleted', () => {
  const applied = (name: string, namespace: string) => ({
    observedGeneration: 1,
    appliedConfigs: [{ name, namespace, source: 'UserRef' as const }],
  });
  const services = [
    svc('a', 'merged', applied('base', 'a'), ['base']),
    svc('a', 'other-ns-config', applied('base', 'sys'), ['base']),
    svc('b', 'new', {}, ['base']),
    svc('a', 'new-here', {}, ['base']),
    svc('a', 'gone', applied('base', 'a'), ['base'], { deletionTimestamp: '2026-01-01T00:00:00Z' }),
    svc('a', 'reconciled-without', { observedGeneration: 1 }, ['base']),
  ];
  assert.deepEqual(configUsers({ namespace: 'a', name: 'base' }, services, 'sys'), [
    'a/merged',
    'a/new-here',
  ]);
  // A system config serves baseRefs of every namespace.
  assert.deepEqual(configUsers({ namespace: 'sys', name: 'base' }, services, 'sys'), [
    'a/new-here',
    'a/other-ns-config',
    'b/new',
  ]);
});

test('config status: referencedBy sorted and bounded, ConfigInUse with the full count', () => {
  assert.deepEqual(configStatus([]), {
    conditions: [
      {
        type: 'ConfigInUse',
        status: 'False',
        reason: 'NotReferenced',
        message: 'no LLMInferenceService uses this config; it can be deleted',
      },
    ],
  });
  const one = configStatus(['a/x']);
  assert.deepEqual(one.referencedBy, [{ name: 'x', namespace: 'a' }]);
  assert.match(one.conditions[0]!.message!, /used by 1 LLMInferenceService \(listed/);
  const many = Array.from({ length: REFERENCED_BY_LIMIT + 5 }, (_, i) => `ns/s${String(i).padStart(3, '0')}`);
  const bounded = configStatus(many);
  assert.equal(bounded.referencedBy!.length, REFERENCED_BY_LIMIT);
  assert.equal(bounded.referencedBy![0]!.name, 's000');
  assert.match(bounded.conditions[0]!.message!, /used by 105 LLMInferenceServices \(the first 100/);
});
