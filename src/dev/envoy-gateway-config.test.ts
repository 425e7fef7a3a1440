import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { replaceDirectives } from './cluster-assets.js';
import {
  allocateLoadBalancerIps,
  crdObjects,
  envoyGatewayConfig,
  inferencePoolParents,
  stripHelmGuards,
  type RouteLike,
} from './envoy-gateway-config.js';

const CONTROLLER = 'gateway.envoyproxy.io/gatewayclass-controller';
const NOW = '2026-01-01T00:00:00Z';

function route(
  conditions: { type: string; status: string; reason?: string; message?: string }[],
  controllerName = CONTROLLER,
): RouteLike {
  return {
    metadata: { name: 'svc-route', namespace: 'llm' },
    spec: {
      rules: [
        { backendRefs: [{ group: 'inference.networking.k8s.io', kind: 'InferencePool', name: 'pool' }] },
      ],
    },
    status: {
      parents: [
        {
          parentRef: { name: 'llmisvc-gateway', namespace: 'llmisvc-system' },
          controllerName,
          conditions,
        },
      ],
    },
  };
}

const pool = { metadata: { name: 'pool', namespace: 'llm', generation: 2 } };

describe('Envoy Gateway configuration for the dev cluster', () => {
  it('registers InferencePool v1 as an extension backend with the Cluster and Translation hooks, fails closed, and turns off leader election', () => {
    const config = parse(
      envoyGatewayConfig({ controllerName: CONTROLLER, extensionSocket: '/d/eg/ext.sock' }),
    );
    assert.equal(config.kind, 'EnvoyGateway');
    assert.equal(config.gateway.controllerName, CONTROLLER);
    assert.deepEqual(config.extensionManager.backendResources, [
      { group: 'inference.networking.k8s.io', version: 'v1', kind: 'InferencePool' },
    ]);
    assert.deepEqual(config.extensionManager.hooks.xdsTranslator.post, ['Cluster', 'Translation']);
    // Listeners and routes are left out of the Translation hook unless asked for (Envoy Gateway's default).
    assert.equal(config.extensionManager.hooks.xdsTranslator.translation.listener.includeAll, true);
    assert.equal(config.extensionManager.hooks.xdsTranslator.translation.route.includeAll, true);
    assert.equal(config.extensionManager.failOpen, false);
    assert.deepEqual(config.extensionManager.service, { unix: { path: '/d/eg/ext.sock' } });
    assert.equal(config.provider.kubernetes.leaderElection.disable, true);
    assert.equal(config.provider.kubernetes.topologyInjector.disable, true);
  });

  it('reads CRDs out of a Helm template guarded by if/end lines', () => {
    const template = [
      '{{- if .Values.crds.envoyGateway.enabled }}',
      '---',
      'apiVersion: apiextensions.k8s.io/v1',
      'kind: CustomResourceDefinition',
      'metadata:',
      '  name: envoyproxies.gateway.envoyproxy.io',
      '{{- end }}',
    ].join('\n');
    const crds = crdObjects(stripHelmGuards(template));
    assert.deepEqual(
      crds.map((c) => (c['metadata'] as { name: string }).name),
      ['envoyproxies.gateway.envoyproxy.io'],
    );
  });

  it('restates a module’s replace directives (block and single-line) for the go.mod that requires it', () => {
    const goMod = [
      'module example.com/m',
      'replace (',
      '\tgithub.com/a/b => github.com/c/b v1.2.3 // a fork',
      ')',
      'replace github.com/x/y v0.1.0 => github.com/z/y v0.2.0',
    ].join('\n');
    assert.equal(
      replaceDirectives(goMod),
      '\nreplace github.com/a/b => github.com/c/b v1.2.3\nreplace github.com/x/y v0.1.0 => github.com/z/y v0.2.0\n',
    );
    assert.equal(replaceDirectives('module m\n'), '');
  });
});

describe('load-balancer addresses', () => {
  it('gives each LoadBalancer Service without one the next free 127.2.x.y, and leaves the others alone', () => {
    const ips = allocateLoadBalancerIps([
      {
        metadata: { name: 'has', namespace: 'a' },
        spec: { type: 'LoadBalancer' },
        status: { loadBalancer: { ingress: [{ ip: '127.2.0.1' }] } },
      },
      { metadata: { name: 'new', namespace: 'a' }, spec: { type: 'LoadBalancer' } },
      {
        metadata: { name: 'other', namespace: 'a' },
        spec: { type: 'LoadBalancer', loadBalancerClass: 'x/y' },
      },
      { metadata: { name: 'cluster', namespace: 'a' }, spec: { type: 'ClusterIP' } },
      { metadata: { name: 'second' }, spec: { type: 'LoadBalancer' } },
    ]);
    assert.deepEqual(
      [...ips],
      [
        ['a/new', '127.2.0.2'],
        ['default/second', '127.2.0.3'],
      ],
    );
  });
});

describe('InferencePool parent status from Envoy Gateway’s HTTPRoute status', () => {
  it('a Gateway that accepted the route and resolved its references accepts the pool', () => {
    const parents = inferencePoolParents(
      pool,
      [
        route([
          { type: 'Accepted', status: 'True' },
          { type: 'ResolvedRefs', status: 'True' },
        ]),
      ],
      CONTROLLER,
      NOW,
    );
    assert.equal(parents.length, 1);
    assert.deepEqual(parents[0]!.parentRef, {
      group: 'gateway.networking.k8s.io',
      kind: 'Gateway',
      name: 'llmisvc-gateway',
      namespace: 'llmisvc-system',
    });
    assert.equal(parents[0]!.conditions[0]!.status, 'True');
    assert.equal(parents[0]!.conditions[0]!.observedGeneration, 2);
  });

  it('a refused reference makes the pool not Accepted, with Envoy Gateway’s reason and message', () => {
    const [parent] = inferencePoolParents(
      pool,
      [
        route([
          { type: 'Accepted', status: 'True' },
          {
            type: 'ResolvedRefs',
            status: 'False',
            reason: 'InvalidKind',
            message: 'Kind InferencePool is not supported',
          },
        ]),
      ],
      CONTROLLER,
      NOW,
    );
    assert.equal(parent!.conditions[0]!.status, 'False');
    assert.equal(parent!.conditions[0]!.reason, 'InvalidKind');
    assert.match(parent!.conditions[0]!.message!, /not ResolvedRefs.*Kind InferencePool is not supported/);
  });

  it('ignores other controllers, routes to other pools, and keeps an unchanged lastTransitionTime', () => {
    const accepted = [
      { type: 'Accepted', status: 'True' },
      { type: 'ResolvedRefs', status: 'True' },
    ];
    assert.deepEqual(
      inferencePoolParents(pool, [route(accepted, 'istio.io/gateway-controller')], CONTROLLER, NOW),
      [],
    );
    assert.deepEqual(
      inferencePoolParents(
        { metadata: { name: 'another', namespace: 'llm' } },
        [route(accepted)],
        CONTROLLER,
        NOW,
      ),
      [],
    );
    const first = inferencePoolParents(pool, [route(accepted)], CONTROLLER, NOW);
    const again = inferencePoolParents(
      { ...pool, status: { parents: first } },
      [route(accepted)],
      CONTROLLER,
      'later',
    );
    assert.equal(again[0]!.conditions[0]!.lastTransitionTime, NOW);
  });
});
