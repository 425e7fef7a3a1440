/**
 * @module gateway/envoy-bootstrap
 * A pure function that writes the Envoy bootstrap a GIE-conformant gateway generates for an InferencePool: an HTTP
 * listener whose `ext_proc` filter (before the router) asks the EPP over HTTP/2 for every request, and an
 * `ORIGINAL_DST` cluster that sends the request to the `ip:port` the EPP put in `x-gateway-destination-endpoint`.
 * Fail closed (`failure_mode_allow: false`): without a pick there is no destination to fail open to.
 */

import { normalizedPrefix } from './path-prefix.js';

export interface EnvoyBootstrapOptions {
  /** Address the gateway listens on (default 127.0.0.1). */
  listenAddress?: string;
  /** Port the gateway listens on (0 = any free port; read it from the admin API). */
  listenPort: number;
  /** EPP ext_proc address: an IP or host name, and its port. */
  eppHost: string;
  eppPort: number;
  /** The EPP serves TLS (self-signed): connect with TLS without verifying it, as GIE gateways do. */
  eppTls?: boolean;
  /** Admin API (default 127.0.0.1:0). */
  adminAddress?: string;
  adminPort?: number;
  /** `FULL_DUPLEX_STREAMED` (GIE's current choice, default) or `BUFFERED` (older gateways). */
  requestBodyMode?: 'FULL_DUPLEX_STREAMED' | 'BUFFERED';
  /** How long Envoy waits for one EPP answer (default 10 s; GIE uses a long timeout). */
  messageTimeoutMs?: number;
  /** Route prefix rewrites (e.g. `/llm/ns/name/v1` → `/v1`); default: one route for `/` unchanged. */
  routes?: { prefix: string; rewrite?: string }[];
  /** Name of the ORIGINAL_DST cluster (default `inference_pool`). */
  poolClusterName?: string;
  /**
   * Baseline for benchmarks: no ext_proc filter and a plain cluster to this one model server, so the cost of the
   * EPP can be measured as the difference between the two gateways.
   */
  bypassEpp?: { host: string; port: number };
  accessLog?: EnvoyAccessLog;
}

/**
 * One JSON line per request into `path`: each field is an Envoy access-log command operator (`%DURATION%`,
 * `%FILTER_STATE(envoy.filters.http.ext_proc:FIELD:request_header_latency_us)%`, ...).
 */
export interface EnvoyAccessLog {
  path: string;
  fields: Record<string, string>;
}

export const DESTINATION_ENDPOINT_HEADER = 'x-gateway-destination-endpoint';

/**
 * Envoy's default circuit breakers allow 1,024 concurrent requests per cluster; every in-flight inference request
 * holds one ext_proc stream to the EPP and one upstream request for its whole (long, streaming) lifetime, so those
 * defaults would turn load into 503s long before the model servers are busy.
 */
const CIRCUIT_BREAKERS = {
  thresholds: [
    { max_connections: 100_000, max_pending_requests: 100_000, max_requests: 100_000, max_retries: 3 },
  ],
};

const IP_PATTERN = /^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-fA-F:]+$/;

/** Gateway API `PathPrefix` in Envoy terms: whole path elements (`path_separated_prefix`), `/` matching all. */
function pathPrefixMatch(prefix: string): Record<string, string> {
  const p = normalizedPrefix(prefix);
  return p === '/' ? { prefix: '/' } : { path_separated_prefix: p };
}

/**
 * `ReplacePrefixMatch` in Envoy terms (see `path-prefix.ts`). Envoy's `prefix_rewrite: /` would turn `/ns/name/v1`
 * into `//v1`, so a replacement that is only slashes drops the prefix and its one following slash by regex instead,
 * as Gateway API implementations do; any other replacement takes the prefix's place.
 */
function prefixRewrite(prefix: string, replacement: string): Record<string, unknown> {
  const head = replacement.replace(/\/+$/, '');
  const p = normalizedPrefix(prefix);
  if (p === '/')
    return head === '' ? {} : { regex_rewrite: { pattern: { regex: '^/' }, substitution: `${head}/` } };
  if (head !== '') return { prefix_rewrite: head };
  return { regex_rewrite: { pattern: { regex: `^${escapeRegex(p)}(/|$)` }, substitution: '/' } };
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}

function fileAccessLog(log: EnvoyAccessLog): Record<string, unknown> {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path: log.path,
      log_format: { json_format: log.fields },
    },
  };
}

/** The bootstrap as a plain object; `JSON.stringify` it into a file Envoy reads with `-c`. */
export function envoyBootstrap(options: EnvoyBootstrapOptions): Record<string, unknown> {
  const pool = options.poolClusterName ?? 'inference_pool';
  const routes = [...(options.routes ?? [{ prefix: '/' }])]
    .sort((a, b) => normalizedPrefix(b.prefix).length - normalizedPrefix(a.prefix).length)
    .map((r) => ({
      match: pathPrefixMatch(r.prefix),
      // No route timeout: completions stream for as long as the model generates.
      route: {
        cluster: pool,
        timeout: '0s',
        ...(r.rewrite !== undefined ? prefixRewrite(r.prefix, r.rewrite) : {}),
      },
    }));
  const eppCluster: Record<string, unknown> = {
    name: 'epp',
    type: IP_PATTERN.test(options.eppHost) ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: '1s',
    circuit_breakers: CIRCUIT_BREAKERS,
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: {
      cluster_name: 'epp',
      endpoints: [
        {
          lb_endpoints: [
            {
              endpoint: {
                address: { socket_address: { address: options.eppHost, port_value: options.eppPort } },
              },
            },
          ],
        },
      ],
    },
  };
  if (options.eppTls) {
    eppCluster['transport_socket'] = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        common_tls_context: { alpn_protocols: ['h2'] },
      },
    };
  }
  const extProcFilter = {
    name: 'envoy.filters.http.ext_proc',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
      grpc_service: {
        envoy_grpc: { cluster_name: 'epp' },
        timeout: seconds(options.messageTimeoutMs ?? 10_000),
      },
      // The response body streams through the EPP too, as GIE gateways configure it: its end is the EPP's only sign
      // that a request has finished. With the body left out, Envoy ends the ext_proc stream after the response
      // headers, and a completion that streams for minutes stopped counting as in flight at its first byte.
      processing_mode: {
        request_header_mode: 'SEND',
        response_header_mode: 'SEND',
        request_body_mode: options.requestBodyMode ?? 'FULL_DUPLEX_STREAMED',
        response_body_mode: 'FULL_DUPLEX_STREAMED',
        request_trailer_mode: 'SEND',
        response_trailer_mode: 'SEND',
      },
      message_timeout: seconds(options.messageTimeoutMs ?? 10_000),
      failure_mode_allow: false,
    },
  };
  const router = {
    name: 'envoy.filters.http.router',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
  };
  const poolCluster = options.bypassEpp
    ? {
        name: pool,
        type: 'STATIC',
        connect_timeout: '2s',
        circuit_breakers: CIRCUIT_BREAKERS,
        load_assignment: {
          cluster_name: pool,
          endpoints: [
            {
              lb_endpoints: [
                {
                  endpoint: {
                    address: {
                      socket_address: { address: options.bypassEpp.host, port_value: options.bypassEpp.port },
                    },
                  },
                },
              ],
            },
          ],
        },
      }
    : {
        name: pool,
        type: 'ORIGINAL_DST',
        lb_policy: 'CLUSTER_PROVIDED',
        connect_timeout: '2s',
        circuit_breakers: CIRCUIT_BREAKERS,
        original_dst_lb_config: { use_http_header: true, http_header_name: DESTINATION_ENDPOINT_HEADER },
      };
  return {
    admin: {
      address: {
        socket_address: { address: options.adminAddress ?? '127.0.0.1', port_value: options.adminPort ?? 0 },
      },
    },
    static_resources: {
      listeners: [
        {
          name: 'gateway',
          address: {
            socket_address: { address: options.listenAddress ?? '127.0.0.1', port_value: options.listenPort },
          },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'gateway',
                    ...(options.accessLog ? { access_log: [fileAccessLog(options.accessLog)] } : {}),
                    route_config: {
                      name: 'gateway',
                      virtual_hosts: [{ name: 'inference', domains: ['*'], routes }],
                    },
                    http_filters: options.bypassEpp ? [router] : [extProcFilter, router],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: options.bypassEpp ? [poolCluster] : [eppCluster, poolCluster],
    },
  };
}
