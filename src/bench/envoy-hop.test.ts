import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envoyBootstrap } from '../gateway/index.js';
import { envoyHopTables, withExtProcAt, withListenPort, withoutExtProc, type HopRow } from './envoy-hop.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- walking a generated config */
function parts(config: any) {
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const clusters = new Map<string, any>(config.static_resources.clusters.map((c: any) => [c.name, c]));
  return { filters: hcm.http_filters.map((f: any) => f.name) as string[], clusters };
}
const addressOf = (cluster: any): string[] =>
  cluster.load_assignment.endpoints.flatMap((g: any) =>
    g.lb_endpoints.map((l: any) => {
      const { address, port_value } = l.endpoint.address.socket_address;
      return `${String(address)}:${String(port_value)}`;
    }),
  );

// The bootstrap `llmisvc up --gateway envoy` writes for one service: a routing filter and a response observer.
const upShape = envoyBootstrap({
  listenPort: 8080,
  eppHost: '127.0.0.1',
  eppPort: 9002,
  poolEndpoints: [
    { host: '127.0.0.1', port: 8001 },
    { host: '127.0.0.1', port: 8002 },
  ],
});

// A bootstrap with the body router before the EPP (for model-name routes).
const withBodyRouter = envoyBootstrap({
  listenPort: 8080,
  eppHost: '127.0.0.1',
  eppPort: 9002,
  bodyRouter: { host: '127.0.0.1', port: 9100 },
});

test('Envoy alone: no ext_proc filter is left (the body router neither), the router and the pool stay', () => {
  const before = structuredClone(upShape);
  const { filters, clusters } = parts(withoutExtProc(upShape));
  assert.deepEqual(filters, ['envoy.filters.http.router']);
  assert.deepEqual(addressOf(clusters.get('inference_pool')), ['127.0.0.1:8001', '127.0.0.1:8002']);
  assert.deepEqual(upShape, before, 'the input is not changed');
  assert.deepEqual(parts(withoutExtProc(withBodyRouter)).filters, ['envoy.filters.http.router']);
});

test('another ext_proc server: the EPP cluster points at it, filters and the body router stay as they were', () => {
  const moved = withExtProcAt(upShape, '127.0.0.1', 7000);
  const { filters, clusters } = parts(moved);
  assert.deepEqual(filters, parts(upShape).filters);
  assert.deepEqual(addressOf(clusters.get('epp')), ['127.0.0.1:7000']);
  assert.deepEqual(
    addressOf(parts(upShape).clusters.get('epp')),
    ['127.0.0.1:9002'],
    'the input is not changed',
  );

  const routed = parts(withExtProcAt(withBodyRouter, '127.0.0.1', 7000)).clusters;
  assert.deepEqual(addressOf(routed.get('epp')), ['127.0.0.1:7000']);
  assert.deepEqual(addressOf(routed.get('body_router')), ['127.0.0.1:9100']);
});

test('another ext_proc server in place of replicas: one endpoint, no health checks the stand-in could not answer', () => {
  const replicated = envoyBootstrap({
    listenPort: 8080,
    eppHost: '127.0.0.1',
    eppPort: 9002,
    eppReplicas: [
      { host: '127.0.0.1', port: 9002, healthPort: 9003 },
      { host: '127.0.0.1', port: 9012, healthPort: 9013 },
    ],
  });
  assert.ok(parts(replicated).clusters.get('epp').health_checks, 'replicas are health-checked');
  const epp = parts(withExtProcAt(replicated, '127.0.0.1', 7000)).clusters.get('epp');
  assert.deepEqual(addressOf(epp), ['127.0.0.1:7000']);
  assert.equal(epp.health_checks, undefined);
});

test('a bootstrap without what a variant needs is refused by name', () => {
  assert.throws(() => withoutExtProc({ static_resources: { listeners: [] } }), /no HTTP connection manager/);
  assert.throws(() => withExtProcAt(withoutExtProc(upShape), '127.0.0.1', 7000), /no ext_proc filter/);
});

test('the listener moves to the port given', () => {
  const config: any = withListenPort(upShape, 0);
  assert.equal(config.static_resources.listeners[0].address.socket_address.port_value, 0);
});

test('the report: every round, then the median of the rounds per path', () => {
  const row = (path: string, p50: number, envoy: number, server: number): HopRow => ({
    path,
    idleAddedP50: p50,
    idleAddedP99: p50 + 1,
    envoyCpuMs: envoy,
    extProcCpuMs: server,
    ok: 100,
    sent: 100,
  });
  const text = envoyHopTables([
    row('alone', 0.6, 2, 0),
    row('epp', 2.0, 3, 1),
    row('alone', 0.8, 2.2, 0),
    row('epp', 2.4, 3.4, 1.4),
    row('alone', 0.7, 1.8, 0),
    row('epp', 2.2, 3.2, 1.2),
    row('skewed', 1, 1, 3),
    row('skewed', 1, 3, 1),
    row('skewed', 1, 2, 0),
  ]).join('\n');
  assert.match(text, /\| epp \| 2\.40 \/ 3\.40 \| 3\.40 \| 1\.40 \| 4\.80 \| 100\/100 \|/);
  assert.match(text, /\| alone \| 0\.70 \/ 1\.70 \| 2\.00 \| 0\.00 \| 2\.00 \| 3 rounds \|/);
  assert.match(text, /\| epp \| 2\.20 \/ 3\.20 \| 3\.20 \| 1\.20 \| 4\.40 \| 3 rounds \|/);
  // The total is the median of the rounds' totals (4, 4, 2), not the sum of the two medians (2 + 1).
  assert.match(text, /\| skewed \| 1\.00 \/ 2\.00 \| 2\.00 \| 1\.00 \| 4\.00 \| 3 rounds \|/);
});
