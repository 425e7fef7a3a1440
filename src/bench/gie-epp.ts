/**
 * @module bench/gie-epp
 * The Gateway API Inference Extension's own Endpoint Picker as a peer of `bench:peers`, run as GIE ships it: its
 * standalone Helm chart's Envoy configuration in front (FULL_DUPLEX_STREAMED request and response bodies, TLS to the
 * EPP, an ORIGINAL_DST cluster on `x-gateway-destination-endpoint`) and its chart's default plugins behind. GIE's EPP
 * reads its pool from a Kubernetes API server, so the benchmark gives it one with an InferencePool and one ready Pod
 * at 127.0.0.1 whose target ports are the simulators' (an InferencePool v1 takes up to 8 ports per pod; each
 * pod-and-port is an endpoint, as for data-parallel ranks). Pure functions; bench/peers.ts runs them.
 */
import { parse } from 'yaml';
import type { KubeObject } from '../kube/index.js';

/**
 * GIE v1.5.0's chart plugins file (`config/charts/epplib/templates/_config.yaml`, `default-plugins.yaml`) as the chart
 * renders it for vLLM over HTTP without the latency predictor: queue 2, KV-cache utilisation 2, prefix cache 3, the
 * picker left to the EPP's default (max score).
 */
export const GIE_DEFAULT_PLUGINS = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: metrics-data-source
  parameters:
    scheme: "http"
    path: "/metrics"
    insecureSkipVerify: true
- type: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
`;

/** At most this many target ports per InferencePool (its CRD's maxItems). */
export const MAX_TARGET_PORTS = 8;

type Json = Record<string, unknown>;

function record(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`GIE's standalone chart: ${what} is not an object; has the chart's layout changed?`);
  return value as Json;
}

function list(value: unknown, what: string): Json[] {
  if (!Array.isArray(value))
    throw new Error(`GIE's standalone chart: ${what} is not a list; has the chart's layout changed?`);
  return value.map((v, i) => record(v, `${what}[${i}]`));
}

/** The object at `keys` below `root`, each step checked and named in the error (`a.b is not an object`). */
function recordAt(root: Json, keys: readonly string[]): Json {
  return keys.reduce((at, key, i) => record(at[key], keys.slice(0, i + 1).join('.')), root);
}

function socketAddress(holder: Json, what: string): Json {
  return record(
    record(holder['address'], `${what}.address`)['socket_address'],
    `${what}.address.socket_address`,
  );
}

/**
 * The Envoy bootstrap of GIE's standalone chart (`inferenceExtension.sidecar.configMap.data["envoy.yaml"]` of its
 * values) as written, but on loopback: every listener and the admin on a port of the kernel's choosing, the traffic
 * listener (`vllm`) first so that it is the one reported, and the `ext_proc` cluster pointing at `eppPort`.
 */
export function gieStandaloneEnvoy(valuesYaml: string, eppPort: number): Json {
  const data = recordAt(record(parse(valuesYaml), 'the values'), [
    'inferenceExtension',
    'sidecar',
    'configMap',
    'data',
  ]);
  const text = data['envoy.yaml'];
  if (typeof text !== 'string')
    throw new Error(`GIE's standalone chart: no envoy.yaml in the sidecar's ConfigMap`);
  const bootstrap = record(parse(text), 'envoy.yaml');
  Object.assign(socketAddress(record(bootstrap['admin'], 'admin'), 'admin'), {
    address: '127.0.0.1',
    port_value: 0,
  });
  const resources = record(bootstrap['static_resources'], 'static_resources');
  const listeners = list(resources['listeners'], 'static_resources.listeners');
  for (const [i, listener] of listeners.entries())
    Object.assign(socketAddress(listener, `listeners[${i}]`), { address: '127.0.0.1', port_value: 0 });
  const traffic = listeners.findIndex((l) => l['name'] === 'vllm');
  if (traffic < 0) throw new Error(`GIE's standalone chart: no listener named "vllm"`);
  resources['listeners'] = [listeners[traffic], ...listeners.filter((_, i) => i !== traffic)];
  const extProc = list(resources['clusters'], 'static_resources.clusters').find(
    (c) => c['name'] === 'ext_proc',
  );
  if (!extProc) throw new Error(`GIE's standalone chart: no cluster named "ext_proc"`);
  const endpoints = list(
    record(extProc['load_assignment'], 'ext_proc.load_assignment')['endpoints'],
    'endpoints',
  );
  const lbEndpoints = endpoints.flatMap((e, i) => list(e['lb_endpoints'], `endpoints[${i}].lb_endpoints`));
  if (lbEndpoints.length !== 1)
    throw new Error(`GIE's standalone chart: ext_proc has ${lbEndpoints.length} endpoints, not 1`);
  Object.assign(
    socketAddress(record(lbEndpoints[0]!['endpoint'], 'ext_proc endpoint'), 'ext_proc endpoint'),
    {
      address: '127.0.0.1',
      port_value: eppPort,
    },
  );
  return bootstrap;
}

/**
 * The objects GIE's EPP reads: an InferencePool `name` selecting one Pod, and that Pod, whose status (written
 * separately: the status subresource) makes it ready at 127.0.0.1 — its endpoints are 127.0.0.1:<each port>.
 */
export function gieEppObjects(
  name: string,
  namespace: string,
  ports: readonly number[],
  eppPort: number,
): { pool: KubeObject; pod: KubeObject; podStatus: Json } {
  if (ports.length === 0 || ports.length > MAX_TARGET_PORTS)
    throw new Error(`an InferencePool takes 1 to ${MAX_TARGET_PORTS} target ports, not ${ports.length}`);
  const labels = { app: `${name}-model-servers` };
  return {
    pool: {
      apiVersion: 'inference.networking.k8s.io/v1',
      kind: 'InferencePool',
      metadata: { name, namespace },
      spec: {
        selector: { matchLabels: labels },
        targetPorts: ports.map((number) => ({ number })),
        endpointPickerRef: { name: `${name}-epp`, port: { number: eppPort } },
      },
    },
    pod: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `${name}-model-servers`, namespace, labels },
      spec: { containers: [{ name: 'model-servers', image: 'llm-d-inference-sim' }] },
    },
    podStatus: {
      status: {
        phase: 'Running',
        podIP: '127.0.0.1',
        podIPs: [{ ip: '127.0.0.1' }],
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    },
  };
}
