import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHostHeader } from '../transport/index.js';
import { envoyBootstrap } from './envoy-bootstrap.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- walking a generated config */
function parts(config: Record<string, unknown>) {
  const resources = config['static_resources'] as any;
  const hcm = resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const clusters = new Map<string, any>(resources.clusters.map((c: any) => [c.name, c]));
  return { hcm, clusters, filters: hcm.http_filters.map((f: any) => f.name) as string[] };
}

test('the GIE gateway shape: ext_proc before the router, HTTP/2 EPP cluster, ORIGINAL_DST pool keyed on the header', () => {
  const { hcm, clusters, filters } = parts(
    envoyBootstrap({ listenPort: 8080, eppHost: '10.0.0.5', eppPort: 9002 }),
  );
  assert.deepEqual(filters, [
    'envoy.filters.http.ext_proc',
    'llmisvc.epp_response',
    'envoy.filters.http.router',
  ]);
  const extProc = hcm.http_filters[0].typed_config;
  assert.equal(extProc.failure_mode_allow, false);
  assert.deepEqual(extProc.processing_mode, {
    request_header_mode: 'SEND',
    // The response observer hears them, without holding them up.
    response_header_mode: 'SKIP',
    request_body_mode: 'FULL_DUPLEX_STREAMED',
    // The EPP needs the end of the response, not its body: the trailers carry that without a round trip per chunk.
    response_body_mode: 'NONE',
    request_trailer_mode: 'SEND',
    response_trailer_mode: 'SEND',
  });
  const epp = clusters.get('epp');
  assert.equal(epp.type, 'STATIC');
  assert.ok(
    epp.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']
      .explicit_http_config.http2_protocol_options,
  );
  assert.equal(epp.transport_socket, undefined);
  const pool = clusters.get('inference_pool');
  assert.equal(pool.type, 'ORIGINAL_DST');
  assert.equal(pool.lb_policy, 'CLUSTER_PROVIDED');
  assert.deepEqual(pool.original_dst_lb_config, {
    use_http_header: true,
    http_header_name: 'x-gateway-destination-endpoint',
  });
  assert.deepEqual(extProc.metadata_options, { receiving_namespaces: { untyped: ['llmisvc.request'] } });
  const observer = hcm.http_filters[1].typed_config;
  assert.equal(observer.observability_mode, true);
  assert.equal(observer.failure_mode_allow, true);
  assert.equal(observer.grpc_service.envoy_grpc.cluster_name, 'epp');
  assert.deepEqual(observer.metadata_options, { forwarding_namespaces: { untyped: ['llmisvc.request'] } });
  assert.equal(observer.processing_mode.response_header_mode, 'SEND');
  assert.equal(observer.processing_mode.request_header_mode, 'SKIP');
  assert.deepEqual(hcm.route_config.virtual_hosts[0].response_headers_to_add[0].header, {
    key: 'x-served-by',
    value: '%DYNAMIC_METADATA(llmisvc.request:served_by)%',
  });
  assert.equal(hcm.route_config.virtual_hosts[0].routes[0].route.timeout, '0s');
  for (const c of clusters.values())
    assert.ok(c.circuit_breakers.thresholds[0].max_requests >= 100_000, c.name);
});

test('options: DNS name, TLS, buffered mode, prefix rewrites, access log, bypass baseline', () => {
  const c = parts(
    envoyBootstrap({
      listenPort: 0,
      eppHost: 'epp.default.svc',
      eppPort: 9002,
      eppTls: true,
      requestBodyMode: 'BUFFERED',
      routes: [{ prefix: '/llm/ns/name/', rewrite: '/' }],
      accessLog: { path: '/tmp/access.log', fields: { status: '%RESPONSE_CODE%' } },
    }),
  );
  assert.equal(c.hcm.access_log[0].typed_config.path, '/tmp/access.log');
  assert.deepEqual(c.hcm.access_log[0].typed_config.log_format, {
    json_format: { status: '%RESPONSE_CODE%' },
  });
  assert.equal(c.clusters.get('epp').type, 'STRICT_DNS');
  assert.equal(c.clusters.get('epp').transport_socket.name, 'envoy.transport_sockets.tls');
  assert.equal(c.hcm.http_filters[0].typed_config.processing_mode.request_body_mode, 'BUFFERED');
  // Gateway API PathPrefix: whole path elements; ReplacePrefixMatch `/` keeps one slash (test/gateway-path-prefix).
  assert.deepEqual(c.hcm.route_config.virtual_hosts[0].routes[0].match, {
    path_separated_prefix: '/llm/ns/name',
  });
  assert.deepEqual(c.hcm.route_config.virtual_hosts[0].routes[0].route.regex_rewrite, {
    pattern: { regex: '^/llm/ns/name(/|$)' },
    substitution: '/',
  });
  const bypass = parts(
    envoyBootstrap({
      listenPort: 0,
      eppHost: '127.0.0.1',
      eppPort: 1,
      bypassEpp: { host: '127.0.0.1', port: 8000 },
    }),
  );
  assert.deepEqual(bypass.filters, ['envoy.filters.http.router']);
  assert.equal(bypass.hcm.access_log, undefined, 'no access log unless asked for');
  assert.equal(bypass.clusters.get('inference_pool').type, 'STATIC');
  assert.equal(bypass.clusters.has('epp'), false);
});

test('EPP replicas: all in the epp cluster, round robin, health-checked on their health ports, streams retried elsewhere', () => {
  const { hcm, clusters, filters } = parts(
    envoyBootstrap({
      listenPort: 8080,
      eppHost: '127.0.0.1',
      eppPort: 9002,
      eppReplicas: [
        { host: '127.0.0.1', port: 9002, healthPort: 9003 },
        { host: '127.0.0.1', port: 9012, healthPort: 9013 },
        { host: '127.0.0.1', port: 9022, healthPort: 9023 },
      ],
    }),
  );
  const epp = clusters.get('epp');
  assert.deepEqual(
    epp.load_assignment.endpoints[0].lb_endpoints.map((e: any) => [
      e.endpoint.address.socket_address.port_value,
      e.endpoint.health_check_config.port_value,
    ]),
    [
      [9002, 9003],
      [9012, 9013],
      [9022, 9023],
    ],
  );
  assert.equal(epp.lb_policy, 'ROUND_ROBIN');
  assert.equal(epp.health_checks[0].grpc_health_check.service_name, 'readiness');
  assert.equal(epp.outlier_detection.consecutive_local_origin_failure, 1);
  assert.equal(epp.common_lb_config.healthy_panic_threshold.value, 0);
  const retry = hcm.http_filters[0].typed_config.grpc_service.retry_policy;
  // An observer's stream could reach another replica than the request's: the routing stream hears the response.
  assert.deepEqual(filters, ['envoy.filters.http.ext_proc', 'envoy.filters.http.router']);
  assert.equal(hcm.http_filters[0].typed_config.processing_mode.response_header_mode, 'SEND');
  assert.equal(hcm.route_config.virtual_hosts[0].response_headers_to_add, undefined);
  assert.match(retry.retry_on, /connect-failure/);
  assert.equal(retry.num_retries, 3);
  assert.equal(retry.retry_host_predicate[0].name, 'envoy.retry_host_predicates.previous_hosts');
});

test('EPP replicas with TLS: no health checks (the health port serves plaintext), outlier detection still', () => {
  const { clusters } = parts(
    envoyBootstrap({
      listenPort: 8080,
      eppHost: 'x',
      eppPort: 1,
      eppTls: true,
      eppReplicas: [
        { host: 'epp-0.example', port: 9002, healthPort: 9003 },
        { host: 'epp-1.example', port: 9002, healthPort: 9003 },
      ],
    }),
  );
  const epp = clusters.get('epp');
  assert.equal(epp.type, 'STRICT_DNS');
  assert.equal(epp.health_checks, undefined);
  assert.ok(epp.outlier_detection);
});

test('one EPP: no retry policy and no replica settings (the single-replica bootstrap is unchanged)', () => {
  const { hcm, clusters } = parts(envoyBootstrap({ listenPort: 8080, eppHost: '127.0.0.1', eppPort: 9002 }));
  assert.equal(hcm.http_filters[0].typed_config.grpc_service.retry_policy, undefined);
  assert.equal(clusters.get('epp').lb_policy, undefined);
  assert.equal(clusters.get('epp').outlier_detection, undefined);
});

test('a response body through the EPP: its stream hears the response headers too, no observer', () => {
  const { hcm, filters } = parts(
    envoyBootstrap({
      listenPort: 8080,
      eppHost: '127.0.0.1',
      eppPort: 9002,
      responseBodyMode: 'FULL_DUPLEX_STREAMED',
    }),
  );
  assert.deepEqual(filters, ['envoy.filters.http.ext_proc', 'envoy.filters.http.router']);
  assert.equal(hcm.http_filters[0].typed_config.processing_mode.response_header_mode, 'SEND');
  assert.equal(hcm.http_filters[0].typed_config.metadata_options, undefined);
});

/** Two services, one FailOpen, with a routing group's shared rules (examples/routing-group.yaml's shape). */
function twoServiceBootstrap(split: { target: string; weight: number }[]) {
  return envoyBootstrap({
    listenPort: 8080,
    eppHost: '127.0.0.1',
    eppPort: 1,
    bodyRouter: { host: '127.0.0.1', port: 9100 },
    services: [
      {
        name: 'default/stable',
        eppHost: '127.0.0.1',
        eppPort: 9002,
        poolEndpoints: [{ host: '127.0.0.1', port: 8001 }],
      },
      {
        name: 'default/canary',
        eppHost: '127.0.0.1',
        eppPort: 9012,
        poolEndpoints: [{ host: '127.0.0.1', port: 8002 }],
        failureMode: 'FailOpen',
      },
    ],
    routes: [
      { prefix: '/v1/chat/completions', headers: [{ name: 'X-Gateway-Model-Name', value: 'm' }], split },
      { prefix: '/publishers/default/models/m/v1/chat/completions', rewrite: '/v1/chat/completions', split },
      {
        prefix: '/default/stable/v1/chat/completions',
        rewrite: '/v1/chat/completions',
        target: 'default/stable',
      },
      {
        prefix: '/default/canary/v1/chat/completions',
        rewrite: '/v1/chat/completions',
        target: 'default/canary',
      },
    ],
  });
}

test('several services: body router first, each route to its service through its own EPP, a split per weighted cluster, 404 otherwise', () => {
  const { hcm, clusters, filters } = parts(
    twoServiceBootstrap([
      { target: 'default/canary', weight: 10 },
      { target: 'default/stable', weight: 90 },
    ]),
  );
  assert.deepEqual(filters, [
    'llmisvc.body_router',
    'envoy.filters.http.ext_proc',
    'llmisvc.epp_response',
    'envoy.filters.http.router',
  ]);
  const bbr = hcm.http_filters[0].typed_config;
  assert.equal(bbr.grpc_service.envoy_grpc.cluster_name, 'body_router');
  assert.equal(bbr.processing_mode.request_body_mode, 'BUFFERED');
  assert.equal(bbr.processing_mode.response_header_mode, 'SKIP');
  assert.equal(bbr.failure_mode_allow, false);
  // A client's model-name and split-draw headers are gone before any route is matched.
  assert.deepEqual(hcm.early_header_mutation_extensions[0].typed_config.mutations, [
    { remove: 'x-gateway-model-name' },
    { remove: 'x-llmisvc-split-draw' },
  ]);
  assert.deepEqual([...clusters.keys()].sort(), ['body_router', 'epp-0', 'epp-1', 'pool-0', 'pool-1']);
  const routes = hcm.route_config.virtual_hosts[0].routes as any[];
  // Longest prefix first; the catch-all last.
  assert.deepEqual(
    routes.map((r) => r.match.path_separated_prefix ?? r.match.prefix),
    [
      '/publishers/default/models/m/v1/chat/completions',
      '/default/stable/v1/chat/completions',
      '/default/canary/v1/chat/completions',
      '/v1/chat/completions',
      '/',
    ],
  );
  const own = routes[2];
  assert.equal(own.route.cluster, 'pool-1');
  const canaryOverride = own.typed_per_filter_config['envoy.filters.http.ext_proc'].overrides;
  assert.equal(canaryOverride.grpc_service.envoy_grpc.cluster_name, 'epp-1');
  assert.equal(canaryOverride.failure_mode_allow, true);
  assert.equal(canaryOverride.processing_mode.request_body_mode, 'BUFFERED');
  assert.equal(canaryOverride.processing_mode.response_header_mode, 'SKIP');
  // The service's responses go to its own EPP as well.
  assert.equal(
    own.typed_per_filter_config['llmisvc.epp_response'].overrides.grpc_service.envoy_grpc.cluster_name,
    'epp-1',
  );
  const stableOverride = routes[1].typed_per_filter_config['envoy.filters.http.ext_proc'].overrides;
  assert.equal(stableOverride.failure_mode_allow, false);
  assert.equal(stableOverride.processing_mode.request_body_mode, 'FULL_DUPLEX_STREAMED');
  const byHeader = routes[3];
  assert.deepEqual(byHeader.match.headers, [{ name: 'x-gateway-model-name', string_match: { exact: 'm' } }]);
  const weighted = byHeader.route.weighted_clusters;
  assert.equal(weighted.header_name, 'x-llmisvc-split-draw');
  assert.deepEqual(
    weighted.clusters.map((c: any) => [
      c.name,
      c.weight,
      c.typed_per_filter_config['envoy.filters.http.ext_proc'].overrides.grpc_service.envoy_grpc.cluster_name,
    ]),
    [
      ['pool-1', 10, 'epp-1'],
      ['pool-0', 90, 'epp-0'],
    ],
  );
  assert.deepEqual(routes[0].route.regex_rewrite, undefined);
  assert.equal(routes[0].route.prefix_rewrite, '/v1/chat/completions');
  assert.equal(routes[4].direct_response.status, 404);
  assert.equal(routes[4].typed_per_filter_config['envoy.filters.http.ext_proc'].disabled, true);
  assert.equal(routes[4].typed_per_filter_config['llmisvc.epp_response'].disabled, true);
  assert.match(routes[4].direct_response.body.inline_string, /NotFoundError/);
});

test('several services: a split with no weight left answers 503; a header rule needs the body router; targets must exist', () => {
  const { hcm } = parts(twoServiceBootstrap([{ target: 'default/canary', weight: 0 }]));
  const routes = hcm.route_config.virtual_hosts[0].routes as any[];
  assert.equal(routes.find((r) => r.match.headers).direct_response.status, 503);
  assert.throws(
    () =>
      envoyBootstrap({
        listenPort: 0,
        eppHost: '127.0.0.1',
        eppPort: 1,
        routes: [{ prefix: '/v1', headers: [{ name: 'X-Gateway-Model-Name', value: 'm' }] }],
      }),
    /need the body router/,
  );
  assert.throws(
    () =>
      envoyBootstrap({
        listenPort: 0,
        eppHost: '127.0.0.1',
        eppPort: 1,
        services: [
          { name: 'a', eppHost: '127.0.0.1', eppPort: 1, poolEndpoints: [{ host: '127.0.0.1', port: 2 }] },
        ],
        routes: [{ prefix: '/v1', target: 'b' }],
      }),
    /route target b is not one of the services/,
  );
});

test('on loopback it serves the loopback names only; any other Host gets 421 from Envoy, without asking the EPP', () => {
  const config = envoyBootstrap({ listenPort: 8080, eppHost: '127.0.0.1', eppPort: 9002 });
  const { hcm } = parts(config);
  const [served, misdirected] = hcm.route_config.virtual_hosts as any[];
  assert.equal(hcm.route_config.ignore_port_in_host_matching, true);
  // Every domain is a loopback name by the builtin gateway's rule (so no `127.*`, which `127.evil.example` matches).
  for (const domain of served.domains as string[])
    assert.ok(isLoopbackHostHeader(domain.replace('*', 'any')), domain);
  for (const needed of ['localhost', '127.0.0.1', '[::1]', '*.localhost'])
    assert.ok(served.domains.includes(needed));
  assert.deepEqual(misdirected.domains, ['*']);
  const [refuse] = misdirected.routes;
  assert.equal(refuse.direct_response.status, 421);
  assert.match(JSON.parse(refuse.direct_response.body.inline_string).error.message, /DNS rebinding/);
  // No ext_proc server hears of a refused request.
  for (const filter of ['envoy.filters.http.ext_proc', 'llmisvc.epp_response', 'llmisvc.body_router'])
    assert.equal(refuse.typed_per_filter_config[filter].disabled, true, filter);
});

test('on any other address every Host is served: the gateway is meant to be reached by name', () => {
  const { hcm } = parts(
    envoyBootstrap({ listenAddress: '0.0.0.0', listenPort: 8080, eppHost: 'epp', eppPort: 9002 }),
  );
  assert.equal(hcm.route_config.virtual_hosts.length, 1);
  assert.deepEqual(hcm.route_config.virtual_hosts[0].domains, ['*']);
});

test('the admin API on a loopback port by default, on a Unix socket, or not at all', () => {
  const base = { listenPort: 8080, eppHost: '127.0.0.1', eppPort: 9002 };
  assert.deepEqual((envoyBootstrap(base) as any).admin.address, {
    socket_address: { address: '127.0.0.1', port_value: 0 },
  });
  assert.deepEqual((envoyBootstrap({ ...base, adminSocket: '/run/a.sock' }) as any).admin.address, {
    pipe: { path: '/run/a.sock', mode: 0o600 },
  });
  assert.equal('admin' in envoyBootstrap({ ...base, adminSocket: false }), false);
});
