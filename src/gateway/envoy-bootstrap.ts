/**
 * @module gateway/envoy-bootstrap
 * A pure function that writes the Envoy bootstrap a GIE-conformant gateway generates for an InferencePool: an HTTP
 * listener whose `ext_proc` filter (before the router) asks the EPP over HTTP/2 for every request, and an
 * `ORIGINAL_DST` cluster that sends the request to the `ip:port` the EPP put in `x-gateway-destination-endpoint`
 * — or, when the pool's endpoints are known, a cluster of exactly those, which can also fail open (see
 * `failureMode`). With several services (`services`, `llmisvc up` of a routing group), each gets its own pool and EPP
 * cluster, a body-router ext_proc filter runs before the EPP's so the model-name rules can match, and a split rule
 * becomes weighted clusters that each carry their member's EPP.
 */

import { RESPONSE_METADATA_NAMESPACE, SERVED_BY_HEADER, SERVED_BY_KEY } from '../epp/index.js';
import { LlmisvcError } from '../errors/index.js';
import { isLoopbackAddress, misdirectedHostMessage } from '../transport/index.js';
import { MODEL_NAME_HEADER, SPLIT_DRAW_HEADER } from './body-router.js';
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
   * The admin API on this Unix socket (mode 0600) instead of a TCP port, or (`false`) none: a web page rebound to
   * 127.0.0.1 can reach any loopback port, and Envoy's admin answers any Host (`/quitquitquit`, `/config_dump`).
   */
  adminSocket?: string | false;
  /**
   * `FULL_DUPLEX_STREAMED` (GIE's current choice, the default) or `BUFFERED` (older gateways; the default with
   * `FailOpen`, since Envoy cannot fail open once it has streamed a request body to the EPP).
   */
  requestBodyMode?: 'FULL_DUPLEX_STREAMED' | 'BUFFERED';
  /**
   * What the EPP sees of a response body. `NONE` (the default): nothing — the EPP hears the response headers
   * through the response observer (with one EPP; with several replicas on the routing stream) and, through
   * `response_trailer_mode: SEND`, the end of the response (the routing stream stays open until the response is
   * over), which is all its in-flight accounting and post-response hooks need; the body's chunks go straight to
   * the client. With `FULL_DUPLEX_STREAMED` (GIE's choice) every chunk makes a round trip through the EPP before the
   * client gets it, which costs inter-token latency and EPP CPU, and buys the EPP's token and response-size metrics;
   * the response headers then stay on the routing stream.
   */
  responseBodyMode?: 'NONE' | 'FULL_DUPLEX_STREAMED';
  /** How long Envoy waits for one EPP answer (default 10 s; GIE uses a long timeout). */
  messageTimeoutMs?: number;
  /**
   * Route prefix rewrites (e.g. `/llm/ns/name/v1` → `/v1`); default: one route for `/` unchanged. With `services`,
   * each route also names its service (`target`) or splits between several by weight (`split`), and may match
   * exact headers (the model-name rules).
   */
  routes?: EnvoyRoute[];
  /**
   * Several services behind the one gateway (`llmisvc up` with a file of several): each gets a pool cluster of its
   * endpoints (`pool-<i>`, routed as with `poolEndpoints`) and its own EPP (`epp-<i>`), which every route to that
   * service uses through a per-route ext_proc override — on a split, per weighted cluster. A request no route
   * matches gets a 404. Replaces `eppHost`/`eppPort`/`poolEndpoints`/`failureMode`.
   */
  services?: EnvoyService[];
  /**
   * The body-based router's ext_proc address (`body-router.ts`), run before the EPP: it sets the model-name header
   * from the body, so the header rules match. Envoy removes a client's model-name and split-draw headers before
   * matching any route, and buffers request bodies up to 16 MiB for it.
   */
  bodyRouter?: { host: string; port: number };
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

/** One route of the gateway: a path prefix, its rewrite, and with `services` its exact headers and service(s). */
export interface EnvoyRoute {
  prefix: string;
  rewrite?: string;
  headers?: { name: string; value: string }[];
  /** The service (by `EnvoyService.name`) this route goes to. */
  target?: string;
  /** Services to split between by weight (Gateway API backendRef weights); overrides `target`. */
  split?: { target: string; weight: number }[];
}

/** One service of several behind the gateway: its Endpoint Picker and its model servers. */
export interface EnvoyService {
  name: string;
  eppHost: string;
  eppPort: number;
  poolEndpoints: { host: string; port: number }[];
  failureMode?: 'FailOpen' | 'FailClose';
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
 * What several EPP replicas add to the `epp` cluster: round-robin balancing, outlier detection ejecting a replica
 * after one local-origin failure (connect refused, reset — a killed replica) for 5 s at first, and with health ports,
 * gRPC health checks of the `readiness` service every second (a draining replica answers NOT_SERVING). The health
 * server serves plaintext, so with a TLS EPP the checks are left out and outlier detection alone takes a replica out.
 */
function replicaResilience(replicas: { healthPort?: number }[], tls: boolean): Record<string, unknown> {
  const checked = !tls && replicas.every((r) => r.healthPort !== undefined);
  return {
    // Not least-request: a killed replica has no open stream left, so until every worker has seen it ejected it
    // would win every pick, retries included (seen as requests started after a SIGKILL failing under CPU load).
    lb_policy: 'ROUND_ROBIN',
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

/** The type of Envoy's ext_proc filter config, and of its HTTP connection manager's. */
export const EXT_PROC = 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor';
export const HTTP_CONNECTION_MANAGER =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const EXT_PROC_PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute';
/** The EPP's ext_proc filter (the name per-route configs refer to). */
export const EPP_FILTER = 'envoy.filters.http.ext_proc';
/** The body-based router's ext_proc filter. */
export const BODY_ROUTER_FILTER = 'llmisvc.body_router';
/** The EPP's response observer (`epp/response-observer.ts`): the response headers, in observability mode. */
export const RESPONSE_OBSERVER_FILTER = 'llmisvc.epp_response';

/** The response observer hears the response headers only, with the routing answer's metadata. */
const OBSERVER_PROCESSING_MODE = {
  request_header_mode: 'SKIP',
  response_header_mode: 'SEND',
  request_body_mode: 'NONE',
  response_body_mode: 'NONE',
  request_trailer_mode: 'SKIP',
  response_trailer_mode: 'SKIP',
};

/**
 * `x-served-by` from the routing answer's metadata, when the EPP put the pod's name there (it is on for the
 * service); without it the header is not added.
 */
const SERVED_BY_FROM_METADATA = {
  header: {
    key: SERVED_BY_HEADER,
    value: `%DYNAMIC_METADATA(${RESPONSE_METADATA_NAMESPACE}:${SERVED_BY_KEY})%`,
  },
  append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
  keep_empty_value: false,
};
/** The most a request body may hold when the body router reads it (as the builtin gateway's body limit). */
const BODY_ROUTER_BUFFER_BYTES = 16 * 1024 * 1024;

type RequestBodyMode = NonNullable<EnvoyBootstrapOptions['requestBodyMode']>;

/** FailOpen needs a buffered body: Envoy fails closed once it has streamed a request body to the EPP. */
function requestBodyModeFor(failOpen: boolean, requested: RequestBodyMode | undefined): RequestBodyMode {
  const mode = requested ?? (failOpen ? 'BUFFERED' : 'FULL_DUPLEX_STREAMED');
  if (failOpen && mode === 'FULL_DUPLEX_STREAMED') {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      'failureMode FailOpen cannot work with the FULL_DUPLEX_STREAMED request body mode: Envoy fails closed once a ' +
        'request body has been streamed to the EPP',
      { hint: 'Use requestBodyMode BUFFERED (the default with FailOpen), or FailClose.' },
    );
  }
  return mode;
}

/**
 * What Envoy sends the EPP. The EPP must hear when a response ends (in-flight counts, post-response hooks). Without
 * the body, the end of the ext_proc stream tells it: with response_trailer_mode SEND, Envoy keeps the stream open
 * until the response has ended (Envoy 1.40 then closes it without a trailers message when the model server sent no
 * trailers) — without the body, and without the trailers, Envoy would end the ext_proc stream at the response
 * headers, and a completion streaming for minutes would stop counting as in flight at its first byte. The response
 * headers go to the response observer instead when there is one (`observed`), so they do not wait for the EPP.
 */
function eppProcessingMode(
  requestBodyMode: RequestBodyMode,
  responseBodyMode: EnvoyBootstrapOptions['responseBodyMode'],
  observed: boolean,
): Record<string, string> {
  return {
    request_header_mode: 'SEND',
    response_header_mode: observed ? 'SKIP' : 'SEND',
    request_body_mode: requestBodyMode,
    response_body_mode: responseBodyMode ?? 'NONE',
    request_trailer_mode: 'SEND',
    response_trailer_mode: 'SEND',
  };
}

/** A static cluster of endpoints that speaks HTTP/2 (an ext_proc server), keepalive-bounded. */
function eppClusterOf(
  name: string,
  replicas: { host: string; port: number; healthPort?: number }[],
  messageTimeoutMs: number,
): Record<string, unknown> {
  return {
    name,
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
      cluster_name: name,
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
  };
}

/** A JSON error Envoy answers itself, in the OpenAI shape the EPP and the builtin gateway answer with. */
function directError(
  status: number,
  message: string,
  type: string,
  eppFilters: string[],
): Record<string, unknown> {
  return {
    direct_response: {
      status,
      body: { inline_string: JSON.stringify({ error: { message, type, param: null, code: status } }) },
    },
    response_headers_to_add: [
      {
        header: { key: 'content-type', value: 'application/json' },
        append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
      },
    ],
    typed_per_filter_config: Object.fromEntries(
      eppFilters.map((name) => [name, { '@type': EXT_PROC_PER_ROUTE, disabled: true }]),
    ),
  };
}

/**
 * The Host names a loopback listener answers (DNS rebinding, `transport/loopback-host.ts`), as Envoy domains: its
 * virtual hosts match names exactly or by a leading or trailing `*`, and no regex, so of 127.0.0.0/8 only 127.0.0.1
 * is listed — a trailing wildcard (`127.*`) would also match `127.attacker.example`.
 */
export const LOOPBACK_DOMAINS = [
  'localhost',
  'localhost.',
  '*.localhost',
  '*.localhost.',
  '127.0.0.1',
  '[::1]',
];

/**
 * A loopback listener's routes: `virtualHost` for the loopback names (any port), and for any other Host a 421 that
 * Envoy answers itself, without asking any ext_proc server (`filters`) about it.
 */
function loopbackRouteConfig(
  virtualHost: Record<string, unknown>,
  filters: string[],
): Record<string, unknown> {
  return {
    name: 'gateway',
    ignore_port_in_host_matching: true,
    virtual_hosts: [
      { ...virtualHost, domains: LOOPBACK_DOMAINS },
      {
        name: 'misdirected',
        domains: ['*'],
        routes: [
          {
            match: { prefix: '/' },
            ...directError(
              421,
              misdirectedHostMessage(
                undefined,
                'this gateway',
                '127.0.0.1',
                'localhost, *.localhost, 127.0.0.1 or [::1]',
              ),
              'MisdirectedRequestError',
              filters,
            ),
          },
        ],
      },
    ],
  };
}

/** Gateway API precedence: the longest path first, then the rule with more header matches. */
function byPrecedence(a: EnvoyRoute, b: EnvoyRoute): number {
  return (
    normalizedPrefix(b.prefix).length - normalizedPrefix(a.prefix).length ||
    (b.headers?.length ?? 0) - (a.headers?.length ?? 0)
  );
}

function routeMatch(r: EnvoyRoute): Record<string, unknown> {
  return {
    ...pathPrefixMatch(r.prefix),
    ...(r.headers?.length
      ? {
          // Envoy keeps header names in lower case; Gateway API's header names are case-insensitive.
          headers: r.headers.map((h) => ({ name: h.name.toLowerCase(), string_match: { exact: h.value } })),
        }
      : {}),
  };
}

/**
 * The routes of several services: each to its service's pool with that service's EPP (a per-route override of the
 * EPP filter's gRPC service, failure mode and body mode), a split as weighted clusters each with its own member's
 * override, and a 404 for everything else. The weighted draw reads the body router's split-draw header, so Envoy
 * picks the same member each time it matches the routes again — after the body router, and after the EPP, whose
 * pick names an endpoint of that member's pool only.
 */
function serviceRoutes(
  services: EnvoyService[],
  routes: EnvoyRoute[],
  override: (index: number) => Record<string, unknown>,
  eppFilters: string[],
): Record<string, unknown>[] {
  const indexOf = (target: string | undefined): number => {
    const i = services.findIndex((s) => s.name === target);
    if (i < 0) {
      throw new LlmisvcError(
        'LLMISVC_ERR_CONFIG',
        `route target ${String(target)} is not one of the services`,
        {
          hint: `Name one of: ${services.map((s) => s.name).join(', ')}.`,
        },
      );
    }
    return i;
  };
  const out = [...routes].sort(byPrecedence).map((r) => {
    const rewrite = r.rewrite !== undefined ? prefixRewrite(r.prefix, r.rewrite) : {};
    if (!r.split) {
      const i = indexOf(r.target);
      return {
        match: routeMatch(r),
        route: { cluster: `pool-${i}`, timeout: '0s', ...rewrite },
        typed_per_filter_config: override(i),
      };
    }
    const weighted = r.split.filter((s) => s.weight > 0);
    // Every weight 0 (no member ready): nothing to send the request to.
    if (weighted.length === 0) {
      return {
        match: routeMatch(r),
        ...directError(503, 'no backend with a weight above 0', 'ServiceUnavailableError', eppFilters),
      };
    }
    return {
      match: routeMatch(r),
      route: {
        timeout: '0s',
        ...rewrite,
        weighted_clusters: {
          header_name: SPLIT_DRAW_HEADER,
          clusters: weighted.map((s) => {
            const i = indexOf(s.target);
            return { name: `pool-${i}`, weight: s.weight, typed_per_filter_config: override(i) };
          }),
        },
      },
    };
  });
  out.push({
    match: { prefix: '/' },
    ...directError(404, 'no route for this path and model', 'NotFoundError', eppFilters),
  });
  return out;
}

/** The bootstrap as a plain object; `JSON.stringify` it into a file Envoy reads with `-c`. */
export function envoyBootstrap(options: EnvoyBootstrapOptions): Record<string, unknown> {
  const pool = options.poolClusterName ?? 'inference_pool';
  const services = options.services?.length ? options.services : undefined;
  const failOpen = (services?.[0]?.failureMode ?? options.failureMode) === 'FailOpen';
  const messageTimeoutMs = options.messageTimeoutMs ?? 10_000;
  const requestBodyMode = requestBodyModeFor(failOpen, options.requestBodyMode);
  if (failOpen && !services && !options.poolEndpoints?.length) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      'failureMode FailOpen needs the pool endpoints: an ORIGINAL_DST cluster has no endpoint to fall back to',
      { hint: 'Pass poolEndpoints, or use FailClose.' },
    );
  }
  const headerRoutes = options.routes?.some((r) => r.headers?.length) ?? false;
  if (headerRoutes && !options.bodyRouter) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      'routes that match headers (the model-name rules) need the body router: nothing else sets the header',
      { hint: 'Pass bodyRouter, the address of a body-router ext_proc server (startBodyRouter).' },
    );
  }
  // The response headers go to the observer unless the EPP reads the body (it then hears them on the same stream)
  // or there are several replicas (the observer's stream could reach another one than the request's).
  const observed =
    !options.bypassEpp &&
    (options.responseBodyMode ?? 'NONE') === 'NONE' &&
    (options.eppReplicas?.length ?? 0) <= 1;
  const eppFilters = observed ? [EPP_FILTER, RESPONSE_OBSERVER_FILTER] : [EPP_FILTER];
  const grpcService = (cluster: string, retryReplicas = 1) => ({
    envoy_grpc: { cluster_name: cluster },
    timeout: seconds(messageTimeoutMs),
    ...(retryReplicas > 1 ? { retry_policy: streamRetryPolicy(retryReplicas) } : {}),
  });
  /** The EPP filters' per-route config that sends a service's requests (and responses) to its own EPP. */
  const serviceOverride = (i: number) => {
    const serviceFailOpen = services![i]!.failureMode === 'FailOpen';
    return {
      [EPP_FILTER]: {
        '@type': EXT_PROC_PER_ROUTE,
        overrides: {
          grpc_service: grpcService(`epp-${i}`),
          processing_mode: eppProcessingMode(
            requestBodyModeFor(serviceFailOpen, options.requestBodyMode),
            options.responseBodyMode,
            observed,
          ),
          failure_mode_allow: serviceFailOpen,
        },
      },
      ...(observed
        ? {
            [RESPONSE_OBSERVER_FILTER]: {
              '@type': EXT_PROC_PER_ROUTE,
              overrides: { grpc_service: grpcService(`epp-${i}`) },
            },
          }
        : {}),
    };
  };
  const routes = services
    ? serviceRoutes(
        services,
        options.routes ?? [{ prefix: '/', target: services[0]!.name }],
        serviceOverride,
        eppFilters,
      )
    : [...(options.routes ?? [{ prefix: '/' }])].sort(byPrecedence).map((r) => ({
        match: routeMatch(r),
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
  const eppClusters = services
    ? services.map((s, i) =>
        eppClusterOf(`epp-${i}`, [{ host: s.eppHost, port: s.eppPort }], messageTimeoutMs),
      )
    : [
        {
          ...eppClusterOf('epp', replicas, messageTimeoutMs),
          ...(options.eppReplicas?.length
            ? replicaResilience(options.eppReplicas, Boolean(options.eppTls))
            : {}),
        },
      ];
  if (options.eppTls) {
    for (const cluster of eppClusters) {
      cluster['transport_socket'] = {
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
          common_tls_context: { alpn_protocols: ['h2'] },
        },
      };
    }
  }
  const extProcFilter = {
    name: EPP_FILTER,
    typed_config: {
      '@type': EXT_PROC,
      // Several services: the first one's EPP, which every route overrides with its own service's.
      grpc_service: grpcService(services ? 'epp-0' : 'epp', services ? 1 : replicas.length),
      processing_mode: eppProcessingMode(requestBodyMode, options.responseBodyMode, observed),
      message_timeout: seconds(messageTimeoutMs),
      failure_mode_allow: failOpen,
      // The routing answer's token for the response observer (Envoy keeps no namespace it is not told to).
      ...(observed
        ? { metadata_options: { receiving_namespaces: { untyped: [RESPONSE_METADATA_NAMESPACE] } } }
        : {}),
    },
  };
  // Observability mode: Envoy sends the response headers and forwards them at once. It never fails a request.
  const responseObserverFilter = {
    name: RESPONSE_OBSERVER_FILTER,
    typed_config: {
      '@type': EXT_PROC,
      grpc_service: grpcService(services ? 'epp-0' : 'epp'),
      processing_mode: OBSERVER_PROCESSING_MODE,
      observability_mode: true,
      failure_mode_allow: true,
      // Its own statistics, apart from the routing filter's.
      stat_prefix: 'response_observer',
      metadata_options: { forwarding_namespaces: { untyped: [RESPONSE_METADATA_NAMESPACE] } },
    },
  };
  // The body router hears the request headers and the whole body, never the response; it fails closed (without it
  // the model-name rules would match nothing).
  const bodyRouterFilter = options.bodyRouter
    ? {
        name: BODY_ROUTER_FILTER,
        typed_config: {
          '@type': EXT_PROC,
          grpc_service: grpcService('body_router'),
          processing_mode: {
            request_header_mode: 'SEND',
            response_header_mode: 'SKIP',
            request_body_mode: 'BUFFERED',
            response_body_mode: 'NONE',
            request_trailer_mode: 'SKIP',
            response_trailer_mode: 'SKIP',
          },
          message_timeout: seconds(messageTimeoutMs),
          failure_mode_allow: false,
        },
      }
    : undefined;
  const router = {
    name: 'envoy.filters.http.router',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
  };
  const poolClusters = services
    ? services.map((s, i) => listedPoolCluster(`pool-${i}`, s.poolEndpoints))
    : [
        options.bypassEpp
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
                            socket_address: {
                              address: options.bypassEpp.host,
                              port_value: options.bypassEpp.port,
                            },
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
                original_dst_lb_config: {
                  use_http_header: true,
                  http_header_name: DESTINATION_ENDPOINT_HEADER,
                },
              },
      ];
  const bodyRouterClusters = options.bodyRouter
    ? [eppClusterOf('body_router', [options.bodyRouter], messageTimeoutMs)]
    : [];
  const httpFilters = options.bypassEpp
    ? [router]
    : [
        ...(bodyRouterFilter ? [bodyRouterFilter] : []),
        extProcFilter,
        ...(observed ? [responseObserverFilter] : []),
        router,
      ];
  const virtualHost = {
    name: 'inference',
    routes,
    ...(observed ? { response_headers_to_add: [SERVED_BY_FROM_METADATA] } : {}),
  };
  return {
    ...(options.adminSocket === false
      ? {}
      : {
          admin: {
            address: options.adminSocket
              ? { pipe: { path: options.adminSocket, mode: 0o600 } }
              : {
                  socket_address: {
                    address: options.adminAddress ?? '127.0.0.1',
                    port_value: options.adminPort ?? 0,
                  },
                },
          },
        }),
    static_resources: {
      listeners: [
        {
          name: 'gateway',
          address: {
            socket_address: { address: options.listenAddress ?? '127.0.0.1', port_value: options.listenPort },
          },
          // The body router reads whole bodies: Envoy buffers them up to this (its default is 1 MiB).
          ...(options.bodyRouter ? { per_connection_buffer_limit_bytes: BODY_ROUTER_BUFFER_BYTES } : {}),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HTTP_CONNECTION_MANAGER,
                    stat_prefix: 'gateway',
                    // Slowloris: a client gets this long to send its request headers (Envoy's default is no limit),
                    // as the builtin gateway's clientHeadersTimeoutMs.
                    request_headers_timeout: '30s',
                    // The model-name and split-draw headers are the body router's: a client's are gone before any
                    // route is matched (the body router removes them too), so none steers a request.
                    ...(options.bodyRouter
                      ? {
                          early_header_mutation_extensions: [
                            {
                              name: 'envoy.http.early_header_mutation.header_mutation',
                              typed_config: {
                                '@type':
                                  'type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation',
                                mutations: [{ remove: MODEL_NAME_HEADER }, { remove: SPLIT_DRAW_HEADER }],
                              },
                            },
                          ],
                        }
                      : {}),
                    ...(options.accessLog ? { access_log: [fileAccessLog(options.accessLog)] } : {}),
                    route_config: isLoopbackAddress(options.listenAddress ?? '127.0.0.1')
                      ? loopbackRouteConfig(virtualHost, [...eppFilters, BODY_ROUTER_FILTER])
                      : { name: 'gateway', virtual_hosts: [{ ...virtualHost, domains: ['*'] }] },
                    http_filters: httpFilters,
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: options.bypassEpp ? poolClusters : [...eppClusters, ...poolClusters, ...bodyRouterClusters],
    },
  };
}
