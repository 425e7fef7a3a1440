/**
 * @module dev/inference-pool-xds
 * What the dev cluster's Envoy Gateway extension does to the xDS Envoy Gateway translated, as pure functions on
 * wire-format messages (dev/xds-wire). Envoy Gateway v1.8 has no InferencePool support of its own: it resolves an
 * HTTPRoute backendRef to an InferencePool, makes a placeholder cluster for it and hands both to its extension
 * server, which in a real install is Envoy AI Gateway's controller (not served by the Go module proxy, so not
 * buildable here). These edits do that controller's job the way Gateway API Inference Extension describes a
 * gateway's part, and the way `llmisvc up --gateway envoy` configures its own Envoy (gateway/envoy-bootstrap):
 * - the pool's cluster becomes `ORIGINAL_DST`, connecting to the `ip:port` the Endpoint Picker puts in
 *   `x-gateway-destination-endpoint`;
 * - every HTTP connection manager gets one ext_proc filter per pool, disabled by default and enabled on the routes
 *   (or weighted clusters) that send to that pool, calling a cluster of that pool's Endpoint Picker;
 * - a client's own `x-gateway-destination-endpoint` is removed before any filter runs (an early header mutation),
 *   so only the picker's header can steer the `ORIGINAL_DST` cluster.
 * And one edit a real cluster does not need (`listenerOnAddress`): the proxies run as processes on this machine's
 * network, so each listener binds its Gateway's load-balancer address instead of every address.
 */
import { DESTINATION_ENDPOINT_HEADER, EXT_PROC } from '../gateway/index.js';
import {
  anyField,
  durationField,
  editMessages,
  messageField,
  stringField,
  stringOf,
  typedMapEntry,
  varintField,
  wireFields,
  withFields,
} from './xds-wire.js';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const EXT_PROC_PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const EARLY_HEADER_MUTATION =
  'type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation';
const ROUTER_FILTER = 'envoy.filters.http.router';
const UPSTREAM_TLS_CONTEXT =
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** Field numbers of Envoy's v3 API used here (from its protos). */
const F = {
  any: { typeUrl: 1, value: 2 },
  cluster: {
    name: 1,
    type: 2,
    edsClusterConfig: 3,
    connectTimeout: 4,
    lbPolicy: 6,
    healthChecks: 8,
    lbSubsetConfig: 22,
    transportSocket: 24,
    ringHashLbConfig: 23,
    commonLbConfig: 27,
    loadAssignment: 33,
    originalDstLbConfig: 34,
    typedExtensionProtocolOptions: 36,
    leastRequestLbConfig: 37,
    clusterType: 38,
    loadBalancingPolicy: 41,
    maglevLbConfig: 52,
    roundRobinLbConfig: 56,
  },
  listener: { name: 1, address: 2, filterChains: 3, defaultFilterChain: 25, enableReusePort: 29 },
  filterChain: { filters: 3 },
  filter: { name: 1, typedConfig: 4 },
  hcm: { httpFilters: 5, earlyHeaderMutationExtensions: 52 },
  httpFilter: { name: 1, typedConfig: 4, disabled: 7 },
  routeConfiguration: { virtualHosts: 2 },
  virtualHost: { routes: 3 },
  route: { route: 2, typedPerFilterConfig: 13 },
  routeAction: { cluster: 1, weightedClusters: 3 },
  weightedCluster: { clusters: 1 },
  clusterWeight: { name: 1, typedPerFilterConfig: 10 },
} as const;

const DISCOVERY_ORIGINAL_DST = 4;
const LB_CLUSTER_PROVIDED = 6;
const SEND = 1;
const BODY_BUFFERED = 2;
const BODY_FULL_DUPLEX_STREAMED = 4;

/** An InferencePool as the edits need it. */
export interface PoolRef {
  namespace: string;
  name: string;
}

/** One pool's Endpoint Picker: where it listens now, and the pool's failure mode. */
export interface EndpointPicker {
  pool: PoolRef;
  endpoints: { host: string; port: number }[];
  /** `FailOpen`: the request goes on when the picker fails (Envoy then needs a body it has not streamed). */
  failOpen: boolean;
  /** How long Envoy waits for each answer of the picker (default 10 s). */
  messageTimeoutMs?: number;
}

export const pickerClusterName = (pool: PoolRef) => `endpointpicker/${pool.namespace}/${pool.name}`;
export const pickerFilterName = (pool: PoolRef) =>
  `envoy.filters.http.ext_proc/${pool.namespace}/${pool.name}`;

/**
 * The pool's cluster as an `ORIGINAL_DST` cluster on the picker's header: its name, connect timeout and the rest
 * of what Envoy Gateway set are kept; its discovery, endpoints and load-balancing settings (which ORIGINAL_DST
 * does not allow beside it) are replaced.
 */
export function originalDstCluster(cluster: Uint8Array): Buffer {
  const c = F.cluster;
  return withFields(
    cluster,
    [
      c.type,
      c.clusterType,
      c.edsClusterConfig,
      c.loadAssignment,
      c.lbPolicy,
      c.loadBalancingPolicy,
      c.healthChecks,
      c.lbSubsetConfig,
      c.commonLbConfig,
      c.ringHashLbConfig,
      c.originalDstLbConfig,
      c.leastRequestLbConfig,
      c.maglevLbConfig,
      c.roundRobinLbConfig,
    ],
    [
      varintField(c.type, DISCOVERY_ORIGINAL_DST),
      varintField(c.lbPolicy, LB_CLUSTER_PROVIDED),
      // OriginalDstLbConfig: use_http_header 1, http_header_name 2.
      messageField(c.originalDstLbConfig, varintField(1, 1), stringField(2, DESTINATION_ENDPOINT_HEADER)),
    ],
  );
}

/**
 * A static HTTP/2 cluster of the picker's endpoints over TLS, with keepalive PINGs that bound a picker that stopped
 * answering. TLS without verification, as Gateway API Inference Extension's reference gateway configuration
 * reaches an Endpoint Picker (which serves TLS by default, with a self-signed certificate unless given one).
 */
export function pickerCluster(picker: EndpointPicker): Buffer {
  const name = pickerClusterName(picker.pool);
  const socketAddress = (host: string, port: number) =>
    // Address.socket_address 1 { address 2, port_value 3 }.
    messageField(1, stringField(2, host), varintField(3, port));
  const lbEndpoint = (host: string, port: number) =>
    // LbEndpoint.endpoint 1 { address 1 }.
    messageField(2, messageField(1, messageField(1, socketAddress(host, port))));
  const loadAssignment = messageField(
    F.cluster.loadAssignment,
    stringField(1, name),
    // ClusterLoadAssignment.endpoints 2 [LocalityLbEndpoints { lb_endpoints 2 }].
    messageField(2, ...picker.endpoints.map((e) => lbEndpoint(e.host, e.port))),
  );
  const timeoutMs = picker.messageTimeoutMs ?? 10_000;
  // HttpProtocolOptions.explicit_http_config 3 { http2_protocol_options 2 { connection_keepalive 15 } }.
  const http2 = messageField(
    3,
    messageField(
      2,
      messageField(15, durationField(1, Math.min(timeoutMs, 1_000)), durationField(2, timeoutMs)),
    ),
  );
  return Buffer.concat([
    stringField(F.cluster.name, name),
    varintField(F.cluster.type, 0),
    durationField(F.cluster.connectTimeout, 1_000),
    loadAssignment,
    // TransportSocket { name 1, typed_config 3: UpstreamTlsContext { common_tls_context 1 { alpn_protocols 4 } } }.
    messageField(
      F.cluster.transportSocket,
      stringField(1, 'envoy.transport_sockets.tls'),
      anyField(3, UPSTREAM_TLS_CONTEXT, messageField(1, stringField(4, 'h2'))),
    ),
    typedMapEntry(
      F.cluster.typedExtensionProtocolOptions,
      HTTP_PROTOCOL_OPTIONS,
      `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`,
      http2,
    ),
  ]);
}

/**
 * The pool's ext_proc filter (an HttpFilter), disabled until a route enables it. Like `llmisvc up`'s Envoy: the
 * request headers and body go to the picker (streamed, or buffered under FailOpen, since Envoy fails closed once
 * it has streamed a body), and the response headers and trailers, so the picker hears when a response ends.
 */
export function pickerFilter(picker: EndpointPicker): Buffer {
  const timeoutMs = picker.messageTimeoutMs ?? 10_000;
  const processingMode = Buffer.concat([
    varintField(1, SEND),
    varintField(2, SEND),
    varintField(3, picker.failOpen ? BODY_BUFFERED : BODY_FULL_DUPLEX_STREAMED),
    varintField(5, SEND),
    varintField(6, SEND),
  ]);
  const externalProcessor = Buffer.concat([
    // grpc_service 1 { envoy_grpc 1 { cluster_name 1 } }.
    messageField(1, messageField(1, stringField(1, pickerClusterName(picker.pool)))),
    ...(picker.failOpen ? [varintField(2, 1)] : []),
    messageField(3, processingMode),
    durationField(7, timeoutMs),
  ]);
  return Buffer.concat([
    stringField(F.httpFilter.name, pickerFilterName(picker.pool)),
    anyField(F.httpFilter.typedConfig, EXT_PROC, externalProcessor),
    varintField(F.httpFilter.disabled, 1),
  ]);
}

/** The per-route config that turns a pool's filter on: `ExtProcPerRoute { overrides {} }`. */
function enablePicker(field: number, pool: PoolRef): Buffer {
  return typedMapEntry(field, pickerFilterName(pool), EXT_PROC_PER_ROUTE, messageField(2));
}

/** An HTTP connection manager with the pickers' filters before its router, and the client's header removed. */
function withPickerFilters(hcm: Buffer, pickers: readonly EndpointPicker[]): Buffer {
  const fields = wireFields(hcm);
  const filters = pickers.map((p) => messageField(F.hcm.httpFilters, pickerFilter(p)));
  const routerAt = fields.findIndex(
    (f) => f.field === F.hcm.httpFilters && stringOf(f.payload, F.httpFilter.name) === ROUTER_FILTER,
  );
  const at = routerAt === -1 ? fields.length : routerAt;
  // HeaderMutation { mutations 1 [ { remove 1 } ] }, as a TypedExtensionConfig { name 1, typed_config 2 }.
  const removeClientHeader = messageField(
    F.hcm.earlyHeaderMutationExtensions,
    stringField(1, 'envoy.http.early_header_mutation.header_mutation'),
    anyField(2, EARLY_HEADER_MUTATION, messageField(1, stringField(1, DESTINATION_ENDPOINT_HEADER))),
  );
  return Buffer.concat([
    ...fields.slice(0, at).map((f) => f.raw),
    ...filters,
    ...fields.slice(at).map((f) => f.raw),
    removeClientHeader,
  ]);
}

/** A listener filter chain's HTTP connection managers, each with the pickers' filters. */
function chainWithPickers(chain: Buffer, pickers: readonly EndpointPicker[]): Buffer {
  return editMessages(chain, F.filterChain.filters, (filter) =>
    editMessages(filter, F.filter.typedConfig, (any) =>
      stringOf(any, F.any.typeUrl) === HCM
        ? editMessages(any, F.any.value, (hcm) => withPickerFilters(hcm, pickers))
        : any,
    ),
  );
}

/** A route (or weighted cluster) that sends to a pool's cluster gets that pool's picker enabled. */
function routeWithPickers(route: Buffer, pickers: ReadonlyMap<string, EndpointPicker>): Buffer {
  let enabled: Buffer[] = [];
  const edited = editMessages(route, F.route.route, (action) => {
    const cluster = stringOf(action, F.routeAction.cluster);
    const picker = cluster === undefined ? undefined : pickers.get(cluster);
    if (picker) enabled = [enablePicker(F.route.typedPerFilterConfig, picker.pool)];
    return editMessages(action, F.routeAction.weightedClusters, (weighted) =>
      editMessages(weighted, F.weightedCluster.clusters, (clusterWeight) => {
        const target = pickers.get(stringOf(clusterWeight, F.clusterWeight.name) ?? '');
        return target
          ? Buffer.concat([clusterWeight, enablePicker(F.clusterWeight.typedPerFilterConfig, target.pool)])
          : clusterWeight;
      }),
    );
  });
  return Buffer.concat([edited, ...enabled]);
}

export interface XdsResources {
  clusters: Buffer[];
  listeners: Buffer[];
  routes: Buffer[];
}

/**
 * The translated resources with the pools' Endpoint Pickers wired in. `pickers` maps the name of each pool's
 * (already ORIGINAL_DST) cluster to its picker; pools no cluster of `resources` is named for are left out.
 */
export function withEndpointPickers(
  resources: XdsResources,
  pickers: ReadonlyMap<string, EndpointPicker>,
): XdsResources {
  const names = new Set(resources.clusters.map((c) => stringOf(c, F.cluster.name)));
  const present = new Map([...pickers].filter(([cluster]) => names.has(cluster)));
  if (present.size === 0) return resources;
  // One filter and one picker cluster per pool, however many route rules (clusters) send to it.
  const used = [...new Map([...present.values()].map((p) => [pickerFilterName(p.pool), p])).values()];
  const chains = (listener: Buffer) =>
    [F.listener.filterChains, F.listener.defaultFilterChain].reduce(
      (l, field) => editMessages(l, field, (chain) => chainWithPickers(chain, used)),
      listener,
    );
  return {
    clusters: [...resources.clusters, ...used.map(pickerCluster)],
    listeners: resources.listeners.map(chains),
    routes: resources.routes.map((config) =>
      editMessages(config, F.routeConfiguration.virtualHosts, (vhost) =>
        editMessages(vhost, F.virtualHost.routes, (route) => routeWithPickers(route, present)),
      ),
    ),
  };
}

/** The listener's name (Envoy Gateway's `<gateway namespace>/<gateway name>/<listener name>`). */
export function listenerName(listener: Uint8Array): string {
  return stringOf(listener, F.listener.name) ?? '';
}

/**
 * The listener bound to `host` (its port kept), when it is bound to a socket address, and without SO_REUSEPORT: a
 * second proxy on the same address and port then fails to bind rather than share the connections.
 */
export function listenerOnAddress(listener: Uint8Array, host: string): Buffer {
  const bound = editMessages(listener, F.listener.address, (address) =>
    // Address.socket_address 1 { address 2 }.
    editMessages(address, 1, (socketAddress) => withFields(socketAddress, [2], [stringField(2, host)])),
  );
  // enable_reuse_port: BoolValue { value: false } (an empty BoolValue).
  return withFields(bound, [F.listener.enableReusePort], [messageField(F.listener.enableReusePort)]);
}

/** The names of the clusters in a list (for logs and tests). */
export function clusterNames(clusters: readonly Uint8Array[]): string[] {
  return clusters.map((c) => stringOf(c, F.cluster.name) ?? '');
}
