/**
 * Integration: the EPP behind a real Envoy arranged the way istiod arranges a Gateway route to an InferencePool
 * (istio.io/istio pilot/pkg/networking/core: route.go and cluster_builder.go, read from its Go module):
 * - one ext_proc filter on the connection manager that does nothing by itself (headers SKIP, failure_mode_allow,
 *   message_timeout 1000 s) and receives and forwards only the `envoy.lb` metadata namespace;
 * - on the route, an ExtProcPerRoute override naming the EPP's cluster, with FULL_DUPLEX_STREAMED request and response
 *   bodies and trailers SEND;
 * - on the pool's cluster, the override_host load-balancing policy reading the endpoint from the dynamic metadata
 *   `envoy.lb` / `x-gateway-destination-endpoint` — not from the header, which our own bootstrap reads.
 * So the EPP's routing metadata, not its header, decides where each request goes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { request } from 'undici';
import { startEpp, type RunningEpp } from '../src/epp/index.js';
import { startEnvoyWithBootstrap, type RunningEnvoy } from '../src/gateway/index.js';
import { startModelServerFixture, type ModelServerFixture } from '../src/bench/index.js';

const ENVOY_BIN = process.env['ENVOY_BIN'];
const skip = ENVOY_BIN ? false : 'ENVOY_BIN not set';
const type = (name: string) => `type.googleapis.com/${name}`;
const EXT_PROC_FILTER = 'envoy.filters.http.ext_proc';

function socket(address: string): { socket_address: { address: string; port_value: number } } {
  const colon = address.lastIndexOf(':');
  return {
    socket_address: { address: address.slice(0, colon), port_value: Number(address.slice(colon + 1)) },
  };
}

/** The listener, the EPP's cluster and the pool's cluster, as istiod would send them (trimmed to what matters). */
function istioLikeBootstrap(eppAddress: string, endpoints: readonly string[]): Record<string, unknown> {
  const perRoute = {
    '@type': type('envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute'),
    overrides: {
      failure_mode_allow: false,
      grpc_service: { envoy_grpc: { cluster_name: 'epp' } },
      processing_mode: {
        request_header_mode: 'SEND',
        request_body_mode: 'FULL_DUPLEX_STREAMED',
        request_trailer_mode: 'SEND',
        response_header_mode: 'SEND',
        response_body_mode: 'FULL_DUPLEX_STREAMED',
        response_trailer_mode: 'SEND',
      },
    },
  };
  const connectionManager = {
    '@type': type('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
    stat_prefix: 'gateway',
    route_config: {
      virtual_hosts: [
        {
          name: 'inference',
          domains: ['*'],
          routes: [
            {
              match: { prefix: '/' },
              route: { cluster: 'pool', timeout: '0s' },
              typed_per_filter_config: { [EXT_PROC_FILTER]: perRoute },
            },
          ],
        },
      ],
    },
    http_filters: [
      {
        name: EXT_PROC_FILTER,
        typed_config: {
          '@type': type('envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor'),
          grpc_service: { envoy_grpc: { cluster_name: 'epp' }, timeout: '10s' },
          failure_mode_allow: true,
          processing_mode: { request_header_mode: 'SKIP', response_header_mode: 'SKIP' },
          message_timeout: '1000s',
          metadata_options: {
            receiving_namespaces: { untyped: ['envoy.lb'] },
            forwarding_namespaces: { untyped: ['envoy.lb'] },
          },
        },
      },
      {
        name: 'envoy.filters.http.router',
        typed_config: { '@type': type('envoy.extensions.filters.http.router.v3.Router') },
      },
    ],
  };
  const lbPolicy = (name: string, config: string, fields: Record<string, unknown> = {}) => ({
    typed_extension_config: { name, typed_config: { '@type': type(config), ...fields } },
  });
  return {
    admin: { address: socket('127.0.0.1:0') },
    static_resources: {
      listeners: [
        {
          name: 'gateway',
          address: socket('127.0.0.1:0'),
          filter_chains: [
            {
              filters: [
                { name: 'envoy.filters.network.http_connection_manager', typed_config: connectionManager },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'epp',
          type: 'STATIC',
          connect_timeout: '1s',
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': type('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          load_assignment: {
            cluster_name: 'epp',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(eppAddress) } }] }],
          },
        },
        {
          name: 'pool',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: 'pool',
            endpoints: [{ lb_endpoints: endpoints.map((e) => ({ endpoint: { address: socket(e) } })) }],
          },
          load_balancing_policy: {
            policies: [
              lbPolicy(
                'envoy.load_balancing_policies.override_host',
                'envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost',
                {
                  override_host_sources: [
                    { metadata: { key: 'envoy.lb', path: [{ key: 'x-gateway-destination-endpoint' }] } },
                  ],
                  fallback_policy: {
                    policies: [
                      lbPolicy(
                        'envoy.load_balancing_policies.random',
                        'envoy.extensions.load_balancing_policies.random.v3.Random',
                      ),
                    ],
                  },
                },
              ),
            ],
          },
        },
      ],
    },
  };
}

let fixtures: ModelServerFixture[] = [];
let epp: RunningEpp | undefined;
let envoy: RunningEnvoy | undefined;

before(async () => {
  if (skip) return;
  fixtures = await Promise.all(['a', 'b', 'c'].map((name) => startModelServerFixture(name)));
  epp = await startEpp({
    host: '127.0.0.1',
    grpcPort: 0,
    grpcHealthPort: 0,
    metricsPort: 0,
    endpoints: fixtures.map((f) => ({ address: f.address, name: f.name })),
    logger: pino({ level: 'silent' }),
  });
  envoy = await startEnvoyWithBootstrap(
    ENVOY_BIN!,
    istioLikeBootstrap(
      `127.0.0.1:${epp.grpcPort}`,
      fixtures.map((f) => f.address),
    ),
  );
});

after(async () => {
  await envoy?.close();
  await epp?.close();
  await Promise.all(fixtures.map((f) => f.close()));
});

test(
  'every request reaches the endpoint the EPP put in envoy.lb, through the per-route override, and a repeated prefix stays put',
  { skip },
  async () => {
    const prefix = 'You are a careful assistant who answers in one sentence. '.repeat(30);
    const servedBy: string[] = [];
    for (let i = 0; i < 24; i++) {
      const res = await request(`http://127.0.0.1:${envoy!.port}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'test-model',
          prompt: i % 2 ? `${prefix}question ${i}` : `short ${i}`,
        }),
      });
      const body = (await res.body.json()) as { served_by: string };
      assert.equal(res.statusCode, 200, `request ${i}`);
      if (i % 2) servedBy.push(body.served_by);
    }
    // The cluster reads the endpoint only from the metadata; falling back to random over three servers, 24 requests
    // would all agree with the EPP's header by chance with a probability of 3^-24.
    for (const fixture of fixtures) {
      for (const received of fixture.received) {
        assert.equal(
          received.headers['x-gateway-destination-endpoint'],
          fixture.address,
          `a request at ${fixture.name}`,
        );
      }
    }
    assert.equal(
      fixtures.reduce((sum, f) => sum + f.received.length, 0),
      24,
    );
    assert.equal(
      new Set(servedBy).size,
      1,
      `the shared prefix went to one server, not ${[...new Set(servedBy)].join(', ')}`,
    );
    const counters = await envoy!.counters();
    assert.equal(counters.get('http.gateway.ext_proc.streams_started'), 24);
    assert.equal(counters.get('http.gateway.ext_proc.failure_mode_allowed') ?? 0, 0);
  },
);
