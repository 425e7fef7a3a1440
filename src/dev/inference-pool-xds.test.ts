import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  listenerOnAddress,
  originalDstCluster,
  pickerClusterName,
  pickerFilterName,
  withEndpointPickers,
  type EndpointPicker,
} from './inference-pool-xds.js';
import {
  anyField,
  messageField,
  messagesOf,
  stringField,
  stringOf,
  varintField,
  wireFields,
} from './xds-wire.js';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/** Envoy Gateway's shapes, built field by field (numbers from Envoy's protos, as in the module). */
const httpFilter = (name: string, typeUrl: string) =>
  messageField(5, stringField(1, name), anyField(4, typeUrl, Buffer.alloc(0)));
const hcm = (...filters: Buffer[]) =>
  Buffer.concat([
    stringField(2, 'http-10080'),
    messageField(3, stringField(2, 'llmisvc-system/gw/http')),
    ...filters,
  ]);
const listener = (name: string, hcmBytes: Buffer) =>
  Buffer.concat([
    stringField(1, name),
    // address 2 { socket_address 1 { address 2, port_value 3 } }
    messageField(2, messageField(1, stringField(2, '0.0.0.0'), varintField(3, 10080))),
    // default_filter_chain 25 { filters 3 [ { name 1, typed_config 4 } ] }
    messageField(
      25,
      messageField(
        3,
        stringField(1, 'envoy.filters.network.http_connection_manager'),
        anyField(4, HCM, hcmBytes),
      ),
    ),
  ]);
const route = (cluster: string) =>
  // Route { match 1 { prefix 1 }, route 2 { cluster 1 } }
  Buffer.concat([messageField(1, stringField(1, '/')), messageField(2, stringField(1, cluster))]);
const routeConfig = (...routes: Buffer[]) =>
  Buffer.concat([
    stringField(1, 'llmisvc-system/gw/http'),
    messageField(2, stringField(1, 'vhost'), ...routes.map((r) => messageField(3, r))),
  ]);
const cluster = (name: string, ...rest: Buffer[]) => Buffer.concat([stringField(1, name), ...rest]);

const POOL_CLUSTER = 'httproute/serving/q/rule/0';
const picker: EndpointPicker = {
  pool: { namespace: 'serving', name: 'q-pool' },
  endpoints: [{ host: '127.0.0.1', port: 40123 }],
  failOpen: false,
};

/** The HttpFilter names of the listener's connection manager, in order. */
function filterNames(l: Buffer): string[] {
  const chain = messagesOf(l, 25)[0]!;
  const filter = messagesOf(chain, 3)[0]!;
  const hcmBytes = messagesOf(messagesOf(filter, 4)[0]!, 2)[0]!;
  return messagesOf(hcmBytes, 5).map((f) => stringOf(f, 1)!);
}

function hcmOf(l: Buffer): Buffer {
  return messagesOf(messagesOf(messagesOf(messagesOf(l, 25)[0]!, 3)[0]!, 4)[0]!, 2)[0]!;
}

describe('the InferencePool edits of the dev cluster’s Envoy Gateway extension', () => {
  it('turns the pool’s placeholder cluster into ORIGINAL_DST on the picker’s header, keeping its other fields', () => {
    const placeholder = cluster(
      POOL_CLUSTER,
      varintField(2, 3), // type: EDS
      messageField(3, stringField(2, POOL_CLUSTER)), // eds_cluster_config
      messageField(4, varintField(1, 10)), // connect_timeout 10 s
      messageField(41, Buffer.from([1, 2, 3])), // load_balancing_policy
      messageField(33, stringField(1, POOL_CLUSTER)), // load_assignment
      messageField(10, Buffer.from('breakers')), // circuit_breakers: not ours, kept
    );
    const edited = originalDstCluster(placeholder);
    const fields = wireFields(edited);
    assert.equal(stringOf(edited, 1), POOL_CLUSTER);
    for (const gone of [3, 33, 41]) assert.ok(!fields.some((f) => f.field === gone), `field ${gone} dropped`);
    assert.deepEqual(
      fields.filter((f) => f.field === 2).map((f) => f.value),
      [4],
      'one type: ORIGINAL_DST',
    );
    assert.equal(fields.find((f) => f.field === 6)?.value, 6, 'lb_policy CLUSTER_PROVIDED');
    const lbConfig = messagesOf(edited, 34)[0]!;
    assert.equal(wireFields(lbConfig).find((f) => f.field === 1)?.value, 1, 'use_http_header');
    assert.equal(stringOf(lbConfig, 2), 'x-gateway-destination-endpoint');
    assert.deepEqual(messagesOf(edited, 4), [varintField(1, 10)], 'connect_timeout kept');
    assert.equal(messagesOf(edited, 10)[0]!.toString(), 'breakers');
  });

  it('wires one picker per pool into every connection manager, before the router, and enables it on the pool’s routes only', () => {
    const resources = {
      clusters: [cluster(POOL_CLUSTER), cluster('httproute/serving/q/rule/1'), cluster('other/backend')],
      listeners: [listener('llmisvc-system/gw/http', hcm(httpFilter('envoy.filters.http.router', ROUTER)))],
      routes: [routeConfig(route(POOL_CLUSTER), route('httproute/serving/q/rule/1'), route('other/backend'))],
    };
    // Two route rules of one HTTPRoute send to the same pool: one filter, one picker cluster.
    const pickers = new Map([
      [POOL_CLUSTER, picker],
      ['httproute/serving/q/rule/1', picker],
      ['gone/cluster', { ...picker, pool: { namespace: 'x', name: 'gone' } }],
    ]);
    const wired = withEndpointPickers(resources, pickers);

    assert.deepEqual(
      wired.clusters.map((c) => stringOf(c, 1)),
      [POOL_CLUSTER, 'httproute/serving/q/rule/1', 'other/backend', pickerClusterName(picker.pool)],
      'one picker cluster, none for a pool no cluster is named for',
    );
    assert.deepEqual(filterNames(wired.listeners[0]!), [
      pickerFilterName(picker.pool),
      'envoy.filters.http.router',
    ]);
    const filter = messagesOf(hcmOf(wired.listeners[0]!), 5)[0]!;
    assert.equal(
      wireFields(filter).find((f) => f.field === 7)?.value,
      1,
      'disabled unless a route enables it',
    );
    // The client's own destination header is removed before any filter runs.
    const early = messagesOf(hcmOf(wired.listeners[0]!), 52)[0]!;
    assert.match(early.toString('latin1'), /x-gateway-destination-endpoint/);

    const routes = messagesOf(messagesOf(wired.routes[0]!, 2)[0]!, 3);
    const enabled = routes.map((r) => messagesOf(r, 13).map((entry) => stringOf(entry, 1)));
    assert.deepEqual(enabled, [[pickerFilterName(picker.pool)], [pickerFilterName(picker.pool)], []]);
  });

  it('enables the picker per weighted cluster of a split', () => {
    const split = Buffer.concat([
      messageField(1, stringField(1, '/')),
      // route 2 { weighted_clusters 3 { clusters 1 [ { name 1, weight 2 } ] } }
      messageField(
        2,
        messageField(
          3,
          messageField(1, stringField(1, POOL_CLUSTER), messageField(2, varintField(1, 80))),
          messageField(1, stringField(1, 'other/backend'), messageField(2, varintField(1, 20))),
        ),
      ),
    ]);
    const wired = withEndpointPickers(
      {
        clusters: [cluster(POOL_CLUSTER), cluster('other/backend')],
        listeners: [],
        routes: [routeConfig(split)],
      },
      new Map([[POOL_CLUSTER, picker]]),
    );
    const r = messagesOf(messagesOf(wired.routes[0]!, 2)[0]!, 3)[0]!;
    assert.equal(messagesOf(r, 13).length, 0, 'not on the whole route');
    const weights = messagesOf(messagesOf(messagesOf(r, 2)[0]!, 3)[0]!, 1);
    assert.deepEqual(
      weights.map((w) => messagesOf(w, 10).map((e) => stringOf(e, 1))),
      [[pickerFilterName(picker.pool)], []],
    );
  });

  it('changes nothing when no pool cluster was translated', () => {
    const resources = {
      clusters: [cluster('other/backend')],
      listeners: [listener('llmisvc-system/gw/http', hcm(httpFilter('envoy.filters.http.router', ROUTER)))],
      routes: [routeConfig(route('other/backend'))],
    };
    assert.equal(withEndpointPickers(resources, new Map([[POOL_CLUSTER, picker]])), resources);
  });

  it('binds a listener to its Gateway’s address, keeping its port, without SO_REUSEPORT', () => {
    const bound = listenerOnAddress(
      listener('llmisvc-system/gw/http', hcm(httpFilter('envoy.filters.http.router', ROUTER))),
      '127.2.9.7',
    );
    const socketAddress = messagesOf(messagesOf(bound, 2)[0]!, 1)[0]!;
    assert.equal(stringOf(socketAddress, 2), '127.2.9.7');
    assert.equal(wireFields(socketAddress).find((f) => f.field === 3)?.value, 10080);
    assert.deepEqual(messagesOf(bound, 29), [Buffer.alloc(0)], 'enable_reuse_port: false');
    assert.deepEqual(filterNames(bound), ['envoy.filters.http.router'], 'the rest as it was');
  });

  it('refuses a malformed message instead of guessing', () => {
    assert.throws(() => originalDstCluster(Buffer.from([0x0a, 0x05, 0x61])), /past its message|truncated/);
  });
});
