import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { gieEppObjects, gieStandaloneEnvoy } from './gie-epp.js';

/** The shape of GIE v1.5.0's standalone chart values, cut down to what the transformation touches. */
function values(envoy: unknown): string {
  return stringify({
    inferenceExtension: { sidecar: { configMap: { data: { 'envoy.yaml': stringify(envoy) } } } },
  });
}

interface ExtProcCluster {
  load_assignment: {
    endpoints: { lb_endpoints: { endpoint: { address: { socket_address: unknown } } }[] }[];
  };
}

const envoy = {
  admin: { address: { socket_address: { address: '127.0.0.1', port_value: 19000 } } },
  static_resources: {
    listeners: [
      { name: 'ready', address: { socket_address: { address: '0.0.0.0', port_value: 19001 } } },
      {
        name: 'vllm',
        address: { socket_address: { address: '0.0.0.0', port_value: 8081 } },
        keep: 'as written',
      },
    ],
    clusters: [
      { name: 'original_destination_cluster', type: 'ORIGINAL_DST' },
      {
        name: 'ext_proc',
        load_assignment: {
          endpoints: [
            {
              lb_endpoints: [
                { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9002 } } } },
              ],
            },
          ],
        },
      },
    ],
  },
};

test("GIE's standalone Envoy goes on loopback ports of the kernel's choosing, the traffic listener first, ext_proc at the EPP", () => {
  const bootstrap = gieStandaloneEnvoy(values(envoy), 4242) as typeof envoy;
  assert.deepEqual(bootstrap.admin.address.socket_address, { address: '127.0.0.1', port_value: 0 });
  assert.deepEqual(
    bootstrap.static_resources.listeners.map((l) => [l.name, l.address.socket_address]),
    [
      ['vllm', { address: '127.0.0.1', port_value: 0 }],
      ['ready', { address: '127.0.0.1', port_value: 0 }],
    ],
  );
  assert.equal((bootstrap.static_resources.listeners[0] as { keep?: string }).keep, 'as written');
  const extProc = bootstrap.static_resources.clusters[1] as ExtProcCluster;
  assert.deepEqual(extProc.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address, {
    address: '127.0.0.1',
    port_value: 4242,
  });
});

test('a chart whose layout changed is refused by name, not half-transformed', () => {
  assert.throws(
    () => gieStandaloneEnvoy(stringify({ inferenceExtension: {} }), 1),
    /inferenceExtension\.sidecar is not an object/,
  );
  const noTraffic = structuredClone(envoy);
  noTraffic.static_resources.listeners.pop();
  assert.throws(() => gieStandaloneEnvoy(values(noTraffic), 1), /no listener named "vllm"/);
  const twoEpps = structuredClone(envoy);
  const endpoints = (twoEpps.static_resources.clusters[1] as ExtProcCluster).load_assignment.endpoints;
  endpoints.push(structuredClone(endpoints[0]!));
  assert.throws(() => gieStandaloneEnvoy(values(twoEpps), 1), /ext_proc has 2 endpoints, not 1/);
});

test('the pool selects the one pod, each simulator a target port; a pool takes at most 8', () => {
  const { pool, pod, podStatus } = gieEppObjects('peers', 'bench', [8001, 8002], 9002);
  assert.deepEqual(pool['spec'], {
    selector: { matchLabels: { app: 'peers-model-servers' } },
    targetPorts: [{ number: 8001 }, { number: 8002 }],
    endpointPickerRef: { name: 'peers-epp', port: { number: 9002 } },
  });
  assert.deepEqual(pod.metadata.labels, { app: 'peers-model-servers' });
  assert.equal((podStatus['status'] as { podIP: string }).podIP, '127.0.0.1');
  assert.throws(
    () => gieEppObjects('peers', 'bench', [1, 2, 3, 4, 5, 6, 7, 8, 9], 9002),
    /1 to 8 target ports, not 9/,
  );
});
