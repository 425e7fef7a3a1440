/**
 * @module dev/eg-extension
 * The extension server Envoy Gateway calls in `llmisvc dev cluster` (`envoygateway.extension.EnvoyGatewayExtension`
 * over gRPC, on the Unix socket its configuration names), standing in for Envoy AI Gateway's controller, which the
 * Go module proxy does not serve. Two of its hooks are used:
 * - `PostClusterModify`, called for the placeholder cluster of each HTTPRoute backendRef to an InferencePool with
 *   that pool: the cluster becomes ORIGINAL_DST on the Endpoint Picker's header, and the pool is remembered by
 *   cluster name;
 * - `PostTranslateModify`, called with everything translated for one Gateway: the pools' Endpoint Pickers are wired
 *   in (dev/inference-pool-xds), each picker's cluster reaching the `endpointPickerRef` Service through the dev
 *   cluster's Service proxy (dev/service-proxy; there is no kube-proxy), and each listener is bound to its
 *   Gateway's load-balancer address.
 * Messages are handled as wire-format bytes (dev/xds-wire): what is not edited goes back as Envoy Gateway sent it.
 */
import { rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { type KubeClient } from '../kube/index.js';
import { ENVOY_GATEWAY_NAMESPACE, INFERENCE_POOL_GROUP } from './envoy-gateway-config.js';
import {
  clusterNames,
  listenerName,
  listenerOnAddress,
  originalDstCluster,
  withEndpointPickers,
  type EndpointPicker,
} from './inference-pool-xds.js';
import { type ServiceProxies } from './service-proxy.js';
import { messageField, messagesOf, stringOf } from './xds-wire.js';

const SERVICE_NAME = 'envoygateway.extension.EnvoyGatewayExtension';

/** An InferencePool as Envoy Gateway hands it over (its cached object, as JSON). */
interface InferencePoolResource {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  spec?: {
    endpointPickerRef?: { name?: string; kind?: string; port?: { number?: number }; failureMode?: string };
  };
}

export interface EgExtension {
  stop(): Promise<void>;
}

/** Reads the InferencePools among a hook's extension resources (`ExtensionResource.unstructured_bytes`, field 1). */
export function inferencePoolsOf(resources: readonly Buffer[]): InferencePoolResource[] {
  return resources
    .map((r) => {
      try {
        return JSON.parse(stringOf(r, 1) ?? 'null') as InferencePoolResource | null;
      } catch {
        return null;
      }
    })
    .filter(
      (o): o is InferencePoolResource =>
        o?.kind === 'InferencePool' && (o.apiVersion ?? '').startsWith(`${INFERENCE_POOL_GROUP}/`),
    );
}

/** Serves the extension on `socketPath`; `services` reaches the Endpoint Pickers' Services. */
export async function startEgExtension(input: {
  socketPath: string;
  client: KubeClient;
  services: ServiceProxies;
  log: (message: string) => void;
}): Promise<EgExtension> {
  const { socketPath, client, services, log } = input;
  /** Pool cluster name → its pool, from PostClusterModify (called before PostTranslateModify in a translation). */
  const poolClusters = new Map<string, InferencePoolResource>();

  const postClusterModify = (request: Buffer): Buffer => {
    const cluster = messagesOf(request, 1)[0] ?? Buffer.alloc(0);
    const context = messagesOf(request, 2)[0] ?? Buffer.alloc(0);
    const pool = inferencePoolsOf(messagesOf(context, 1))[0];
    const name = stringOf(cluster, 1) ?? '';
    if (!pool) return messageField(1, cluster);
    poolClusters.set(name, pool);
    return messageField(1, originalDstCluster(cluster));
  };

  const picker = async (pool: InferencePoolResource): Promise<EndpointPicker | undefined> => {
    const namespace = pool.metadata?.namespace ?? 'default';
    const ref = pool.spec?.endpointPickerRef;
    const port = ref?.port?.number;
    if (!ref?.name || port === undefined || (ref.kind ?? 'Service') !== 'Service') {
      log(
        `InferencePool ${namespace}/${pool.metadata?.name}: no Service port in spec.endpointPickerRef; not routed`,
      );
      return undefined;
    }
    return {
      pool: { namespace, name: pool.metadata?.name ?? '' },
      endpoints: [await services.address(namespace, ref.name, port)],
      failOpen: ref.failureMode === 'FailOpen',
    };
  };

  const postTranslateModify = async (request: Buffer): Promise<Buffer> => {
    const clusters = messagesOf(request, 2);
    const secrets = messagesOf(request, 3);
    const pickers = new Map<string, EndpointPicker>();
    for (const name of clusterNames(clusters)) {
      const pool = poolClusters.get(name);
      const p = pool && (await picker(pool));
      if (p) pickers.set(name, p);
    }
    const wired = withEndpointPickers(
      { clusters, listeners: messagesOf(request, 4), routes: messagesOf(request, 5) },
      pickers,
    );
    // One Gateway's resources per call: its listeners are named `<namespace>/<gateway>/<listener>`, and the
    // others (Envoy Gateway's readiness listener) belong to the same proxy.
    const [namespace, gateway] =
      wired.listeners.map((l) => listenerName(l).split('/')).find((parts) => parts.length >= 3) ?? [];
    const address = namespace && gateway ? await gatewayAddress(client, namespace, gateway) : undefined;
    const listeners = address ? wired.listeners.map((l) => listenerOnAddress(l, address)) : wired.listeners;
    return Buffer.concat([
      ...wired.clusters.map((c) => messageField(1, c)),
      ...secrets.map((s) => messageField(2, s)),
      ...listeners.map((l) => messageField(3, l)),
      ...wired.routes.map((r) => messageField(4, r)),
    ]);
  };

  const unary =
    (
      name: string,
      handle: (request: Buffer) => Buffer | Promise<Buffer>,
    ): grpc.handleUnaryCall<Buffer, Buffer> =>
    (call, callback) => {
      Promise.resolve()
        .then(() => handle(call.request))
        .then(
          (response) => callback(null, response),
          (error: unknown) => {
            const message = `${name}: ${(error as Error).message}`;
            log(`Envoy Gateway extension: ${message}`);
            callback({ code: grpc.status.INTERNAL, details: message });
          },
        );
    };
  const method = (name: string): grpc.MethodDefinition<Buffer, Buffer> => ({
    path: `/${SERVICE_NAME}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  });

  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  server.addService(
    { PostClusterModify: method('PostClusterModify'), PostTranslateModify: method('PostTranslateModify') },
    {
      PostClusterModify: unary('PostClusterModify', postClusterModify),
      PostTranslateModify: unary('PostTranslateModify', postTranslateModify),
    },
  );
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (error) =>
      error ? reject(error) : resolve(),
    ),
  );
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // A call Envoy Gateway left open must not hold the cluster's shutdown.
        setTimeout(() => server.forceShutdown(), 2_000).unref();
      }),
  };
}

/**
 * The load-balancer address of a Gateway's proxy Service (Envoy Gateway labels it with its Gateway), waiting up to
 * 30 s: Envoy Gateway makes the Service while it translates, and the dev cluster gives it an address moments later.
 */
async function gatewayAddress(client: KubeClient, namespace: string, gateway: string): Promise<string> {
  const labelSelector =
    `gateway.envoyproxy.io/owning-gateway-name=${gateway},` +
    `gateway.envoyproxy.io/owning-gateway-namespace=${namespace}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const list = await client.request<{
      items: { status?: { loadBalancer?: { ingress?: { ip?: string }[] } } }[];
    }>('GET', `/api/v1/namespaces/${ENVOY_GATEWAY_NAMESPACE}/services`, {
      verb: 'list',
      query: { labelSelector },
    });
    const ip = list.items.flatMap((s) => s.status?.loadBalancer?.ingress ?? []).find((i) => i.ip)?.ip;
    if (ip) return ip;
    if (Date.now() > deadline) {
      throw new Error(`Gateway ${namespace}/${gateway} has no load-balancer address after 30 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
