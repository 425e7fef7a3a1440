/**
 * @module gateway/envoy-bootstrap
 * A pure function that writes the Envoy bootstrap a GIE-conformant gateway generates for an InferencePool: an HTTP
 * listener whose `ext_proc` filter (before the router) asks the EPP over HTTP/2 for every request, and an
 * `ORIGINAL_DST` cluster that sends the request to the `ip:port` the EPP put in `x-gateway-destination-endpoint`
 * — or, when the pool's endpoints are known, a cluster of exactly those, which can also fail open (see
 * `failureMode`).
 */

import { LlmisvcError } from '../errors/index.js';
import { normalizedPrefix } from './path-prefix.js';

export interface EnvoyBootstrapOptions {
  /** Address the gateway listens on (default 127.0.0.1). */
  listenAddress?: string;
  /** Port the gateway listens on (0 = any free port; read it from the admin API). */
  listenPort: number;
  /** EPP ext_proc address: an IP or host name, and its port. */
  eppHost: string;
  eppPort: number;
  /**
   * Active-active EPP replicas, replacing `eppHost`/`eppPort`: all in the `epp` cluster, streams balanced by least
   * request, a stream that fails to open (connection refused or reset, REFUSED_STREAM of a draining replica)
   * retried on another replica, failing replicas ejected (outlier detection), and — given each replica's gRPC health
   * port — a replica that reports NOT_SERVING (draining) or stops answering taken out by active health checks.
   */
  eppReplicas?: { host: string; port: number; healthPort?: number }[];
  /** The EPP serves TLS (self-signed): connect with TLS without verifying it, as GIE gateways do. */
  eppTls?: boolean;
  /** Admin API (default 127.0.0.1:0). */
  adminAddress?: string;
  adminPort?: number;
  /**
   * `FULL_DUPLEX_STREAMED` (GIE's current choice, the default) or `BUFFERED` (older gateways; the default with
   * `FailOpen`, since Envoy cannot fail open once it has streamed a request body to the EPP).
   */
  requestBodyMode?: 'FULL_DUPLEX_STREAMED' | 'BUFFERED';
  /**
   * What the EPP sees of a response body. `NONE` (the default): nothing — the EPP hears the response headers and,
   * through `response_trailer_mode: SEND`, the end of the response (Envoy adds empty trailers at the end of a
   * response that has none, so the ext_proc stream stays open until the response is over), which is all its
   * in-flight accounting and post-response hooks need; the body's chunks go straight to the client. With
   * `FULL_DUPLEX_STREAMED` (GIE's choice) every chunk makes a round trip through the EPP before the client gets it,
   * which costs inter-token latency and EPP CPU, and buys the EPP's token and response-size metrics.
   */
  responseBodyMode?: 'NONE' | 'FULL_DUPLEX_STREAMED';
  /** How long Envoy waits for one EPP answer (default 10 s; GIE uses a long timeout). */
  messageTimeoutMs?: number;
  /** Route prefix rewrites (e.g. `/llm/ns/name/v1` → `/v1`); default: one route for `/` unchanged. */
  routes?: { prefix: string; rewrite?: string }[];
  /** Name of the pool's cluster (default `inference_pool`). */
  poolClusterName?: string;
  /**
   * The pool's endpoints, when the gateway knows them (`llmisvc up`): the pool cluster then lists them and routes by
   * Envoy's override-host policy, which honours the EPP's `x-gateway-destination-endpoint` only for a listed
   * endpoint and otherwise falls back to round robin. Without them the cluster is `ORIGINAL_DST` (GIE's reference
   * setup), which connects to whatever the header names.
   */
  poolEndpoints?: { host: string; port: number }[];
  /**
   * The InferencePool's `failureMode`: `FailClose` (default) answers an error when the EPP fails or is late;
   * `FailOpen` sends the request on without a pick, round robin over `poolEndpoints` (required: with ORIGINAL_DST
   * there is nothing to fall back to, and a client's own destination header would be obeyed).
   */
  failureMode?: 'FailOpen' | 'FailClose';
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

/**
 * A pool cluster of known endpoints, routed by the override-host policy: the EPP's pick when it names one of them,
 * round robin otherwise (no pick: fail-open; or a pick outside the pool, which is never obeyed).
 */
function listedPoolCluster(
  name: string,
  endpoints: { host: string; port: number }[],
): Record<string, unknown> {
  const policy = (policyName: string, type: string, config: Record<string, unknown> = {}) => ({
    typed_extension_config: { name: policyName, typed_config: { '@type': type, ...config } },
  });
  return {
    name,
    type: 'STATIC',
    connect_timeout: '2s',
    circuit_breakers: CIRCUIT_BREAKERS,
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: endpoints.map((e) => ({
            endpoint: { address: { socket_address: { address: e.host, port_value: e.port } } },
          })),
        },
      ],
    },
    load_balancing_policy: {
      policies: [
        policy(
          'envoy.load_balancing_policies.override_host',
          'type.googleapis.com/envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost',
          {
            override_host_sources: [{ header: DESTINATION_ENDPOINT_HEADER }],
            fallback_policy: {
              policies: [
                policy(
                  'envoy.load_balancing_policies.round_robin',
                  'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin',
                ),
              ],
            },
          },
        ),
      ],
    },
  };
}

/**
 * What several EPP replicas add to the `epp` cluster: least-request balancing (each ext_proc stream lives as long as
 * its request, so open streams are the load), outlier detection ejecting a replica after one local-origin failure
 * (connect refused, reset — a killed replica) for 5 s at first, and with health ports, gRPC health checks of the
 * `readiness` service every second (a draining replica answers NOT_SERVING). The health server serves plaintext, so
 * with a TLS EPP the checks are left out and outlier detection alone takes a replica out.
 */
function replicaResilience(replicas: { healthPort?: number }[], tls: boolean): Record<string, unknown> {
  const checked = !tls && replicas.every((r) => r.healthPort !== undefined);
  return {
    lb_policy: 'LEAST_REQUEST',
    // Every stream that was opening on a replica when it died retries at once: Envoy's budget of 3 concurrent
    // retries per cluster would fail the rest of them.
    circuit_breakers: {
      thresholds: [{ ...CIRCUIT_BREAKERS.thresholds[0], max_retries: 100_000 }],
    },
    // No panic mode: below 50 % healthy replicas Envoy would otherwise balance over all of them, dead ones included
    // (one draining or restarting and one killed, of three). With none healthy the request fails closed anyway.
    common_lb_config: { healthy_panic_threshold: { value: 0 } },
    outlier_detection: {
      split_external_local_origin_errors: true,
      consecutive_local_origin_failure: 1,
      consecutive_gateway_failure: 1,
      interval: '1s',
      base_ejection_time: '5s',
      max_ejection_percent: 100,
      enforcing_consecutive_local_origin_failure: 100,
      enforcing_consecutive_gateway_failure: 100,
    },
    ...(checked
      ? {
          health_checks: [
            {
              timeout: '1s',
              interval: '1s',
              no_traffic_interval: '1s',
              unhealthy_threshold: 1,
              healthy_threshold: 1,
              grpc_health_check: { service_name: 'readiness' },
            },
          ],
        }
      : {}),
  };
}

/**
 * Retries of an ext_proc stream that failed on one replica before that replica answered (connect refused, reset —
 * including a stream that reached a replica in the instant it died —, REFUSED_STREAM from a draining one): on another
 * replica (previous hosts skipped), at once. Envoy retries only while no response has come back on the stream, which
 * for ext_proc means before the replica sent anything — before it routed; a stream that breaks later is not retried.
 */
function streamRetryPolicy(replicas: number): Record<string, unknown> {
  return {
    retry_on: 'connect-failure,refused-stream,reset,unavailable',
    num_retries: replicas,
    retry_back_off: { base_interval: '0.005s', max_interval: '0.05s' },
    retry_host_predicate: [
      {
        name: 'envoy.retry_host_predicates.previous_hosts',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
        },
      },
    ],
    host_selection_retry_max_attempts: 5,
  };
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
  const failOpen = options.failureMode === 'FailOpen';
  const messageTimeoutMs = options.messageTimeoutMs ?? 10_000;
  const requestBodyMode = options.requestBodyMode ?? (failOpen ? 'BUFFERED' : 'FULL_DUPLEX_STREAMED');
  if (failOpen && requestBodyMode === 'FULL_DUPLEX_STREAMED') {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      'failureMode FailOpen cannot work with the FULL_DUPLEX_STREAMED request body mode: Envoy fails closed once a ' +
        'request body has been streamed to the EPP',
      { hint: 'Use requestBodyMode BUFFERED (the default with FailOpen), or FailClose.' },
    );
  }
  if (failOpen && !options.poolEndpoints?.length) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      'failureMode FailOpen needs the pool endpoints: an ORIGINAL_DST cluster has no endpoint to fall back to',
      { hint: 'Pass poolEndpoints, or use FailClose.' },
    );
  }
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
  const replicas = options.eppReplicas?.length
    ? options.eppReplicas
    : [{ host: options.eppHost, port: options.eppPort }];
  const eppCluster: Record<string, unknown> = {
    name: 'epp',
    type: replicas.every((r) => IP_PATTERN.test(r.host)) ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: '1s',
    circuit_breakers: CIRCUIT_BREAKERS,
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        // Keepalive PINGs bound an EPP that accepts the connection and then never answers (hung, or a black hole):
        // in full-duplex mode Envoy applies no message_timeout, so without them such a request waits forever.
        explicit_http_config: {
          http2_protocol_options: {
            connection_keepalive: {
              interval: seconds(Math.min(messageTimeoutMs, 1_000)),
              timeout: seconds(messageTimeoutMs),
            },
          },
        },
      },
    },
    load_assignment: {
      cluster_name: 'epp',
      endpoints: [
        {
          lb_endpoints: replicas.map((r) => ({
            endpoint: {
              address: { socket_address: { address: r.host, port_value: r.port } },
              ...(r.healthPort !== undefined ? { health_check_config: { port_value: r.healthPort } } : {}),
            },
          })),
        },
      ],
    },
    ...(options.eppReplicas?.length ? replicaResilience(options.eppReplicas, Boolean(options.eppTls)) : {}),
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
        timeout: seconds(messageTimeoutMs),
        ...(replicas.length > 1 ? { retry_policy: streamRetryPolicy(replicas.length) } : {}),
      },
      // The EPP must hear when a response ends (in-flight counts, post-response hooks). Without the body, the
      // trailers tell it: with response_trailer_mode SEND, Envoy adds empty trailers to a response that ends without
      // any and sends them to the EPP, so the stream lasts as long as the response — without the body, and without
      // the trailers, Envoy would end the ext_proc stream at the response headers, and a completion streaming for
      // minutes would stop counting as in flight at its first byte.
      processing_mode: {
        request_header_mode: 'SEND',
        response_header_mode: 'SEND',
        request_body_mode: requestBodyMode,
        response_body_mode: options.responseBodyMode ?? 'NONE',
        request_trailer_mode: 'SEND',
        response_trailer_mode: 'SEND',
      },
      message_timeout: seconds(messageTimeoutMs),
      failure_mode_allow: failOpen,
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
    : options.poolEndpoints?.length
      ? listedPoolCluster(pool, options.poolEndpoints)
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
                    // Slowloris: a client gets this long to send its request headers (Envoy's default is no limit),
                    // as the builtin gateway's clientHeadersTimeoutMs.
                    request_headers_timeout: '30s',
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
