import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localSdsFile, proxyLaunch, type ProxyFiles } from './eg-proxy-bootstrap.js';

/** The parts of Envoy Gateway v1.8.1's proxy bootstrap this module changes, as its Deployment carries them. */
const CONFIG_YAML = `admin:
  access_log:
  - name: envoy.access_loggers.file
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
      path: /dev/null
  address:
    socket_address:
      address: 127.0.0.1
      port_value: 19000
node:
  locality:
    zone: $(ENVOY_SERVICE_ZONE)
layered_runtime:
  layers:
  - name: global_config
    static_layer:
      envoy.restart_features.use_eds_cache_for_ads: true
      re2.max_program_size.error_level: 4294967295
dynamic_resources:
  ads_config:
    api_type: DELTA_GRPC
    grpc_services:
    - envoy_grpc:
        cluster_name: xds_cluster
static_resources:
  listeners:
  - name: envoy-gateway-proxy-stats-0.0.0.0-19001
    address:
      socket_address:
        address: '0.0.0.0'
        port_value: 19001
  clusters:
  - name: prometheus_stats
    type: STATIC
  - name: llmisvc-system/gw
    type: EDS
  - connect_timeout: 10s
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: envoy-gateway.envoy-gateway-system.svc.cluster.local.
                port_value: 18000
    name: xds_cluster
    type: STRICT_DNS
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        common_tls_context:
          tls_certificate_sds_secret_configs:
          - name: xds_certificate
            sds_config:
              path_config_source:
                path: /sds/xds-certificate.json
          validation_context_sds_secret_config:
            name: xds_trusted_ca
            sds_config:
              path_config_source:
                path: /sds/xds-trusted-ca.json
`;

const ARGS = [
  '--service-cluster',
  'llmisvc-system/gw',
  '--service-node',
  '$(ENVOY_POD_NAME)',
  '--config-yaml',
  CONFIG_YAML,
  '--log-level',
  'warn',
  '--cpuset-threads',
];

const FILES: ProxyFiles = {
  xdsSocket: '/d/eg/xds.sock',
  certsDir: '/d/eg/proxy-1/certs',
  sdsDir: '/d/eg/proxy-1/sds',
  adminSocket: '/d/eg/proxy-1/admin.sock',
};

describe('the bootstrap of a gateway proxy run as a process', () => {
  const launch = proxyLaunch({ args: ARGS }, 'envoy-gw-1', FILES);
  const bootstrap = launch.bootstrap as {
    admin: unknown;
    node: Record<string, unknown>;
    layered_runtime: { layers: { static_layer: Record<string, unknown> }[] };
    static_resources: { listeners?: unknown[]; clusters: Record<string, unknown>[] };
  };

  it('dials Envoy Gateway’s xDS through the bridged Unix socket, with TLS and the local copies of its files', () => {
    const xds = bootstrap.static_resources.clusters.find((c) => c['name'] === 'xds_cluster')!;
    assert.equal(xds['type'], 'STATIC');
    assert.deepEqual(xds['load_assignment'], {
      cluster_name: 'xds_cluster',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: '/d/eg/xds.sock' } } } }] }],
    });
    const tls = JSON.stringify(xds['transport_socket']);
    assert.match(tls, /"path":"\/d\/eg\/proxy-1\/sds\/xds-certificate.json"/);
    assert.match(tls, /"path":"\/d\/eg\/proxy-1\/sds\/xds-trusted-ca.json"/);
    assert.equal(xds['connect_timeout'], '10s', 'the rest as Envoy Gateway wrote it');
  });

  it('moves the admin API to a private socket and leaves out the pod’s fixed stats port', () => {
    assert.deepEqual(bootstrap.admin, {
      address: { pipe: { path: '/d/eg/proxy-1/admin.sock', mode: 0o600 } },
    });
    assert.equal(bootstrap.static_resources.listeners, undefined);
    assert.deepEqual(
      bootstrap.static_resources.clusters.map((c) => c['name']),
      ['llmisvc-system/gw', 'xds_cluster'],
    );
  });

  it('expands what the kubelet would, and drops the runtime guard newer Envoys removed', () => {
    assert.deepEqual(launch.args, [
      '--service-cluster',
      'llmisvc-system/gw',
      '--service-node',
      'envoy-gw-1',
      '--log-level',
      'warn',
    ]);
    assert.equal(bootstrap.node['locality'], undefined);
    assert.deepEqual(bootstrap.layered_runtime.layers[0]!.static_layer, {
      're2.max_program_size.error_level': 4294967295,
    });
  });

  it('points the SDS files at the local certificate copies', () => {
    const sds = JSON.stringify({
      resources: [
        {
          name: 'xds_certificate',
          tls_certificate: {
            certificate_chain: { filename: '/certs/tls.crt' },
            private_key: { filename: '/certs/tls.key' },
          },
        },
      ],
    });
    assert.deepEqual(JSON.parse(localSdsFile(sds, FILES)).resources[0].tls_certificate, {
      certificate_chain: { filename: '/d/eg/proxy-1/certs/tls.crt' },
      private_key: { filename: '/d/eg/proxy-1/certs/tls.key' },
    });
  });

  it('refuses a container that is not an Envoy Gateway proxy', () => {
    assert.throws(() => proxyLaunch({ args: ['--log-level', 'warn'] }, 'x', FILES), /no --config-yaml/);
  });
});
