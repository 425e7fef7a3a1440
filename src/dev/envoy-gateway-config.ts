/**
 * @module dev/envoy-gateway-config
 * What Envoy Gateway runs with in `llmisvc dev cluster`, as plain data, and the two small controllers the dev
 * cluster adds beside it (each stands in for something a real cluster has and this machine cannot run):
 * - its EnvoyGateway configuration file: the Kubernetes provider, the InferencePool of Gateway API Inference
 *   Extension registered as an extension backend (the way Envoy AI Gateway's Helm values register it), no leader
 *   election, no topology-injector webhook;
 * - its own CRDs, read out of the Helm chart templates its module ships;
 * - load-balancer addresses for LoadBalancer Services, as cloud-provider-kind gives them on kind;
 * - InferencePool parent status derived from the HTTPRoute status Envoy Gateway writes, as Envoy AI Gateway's
 *   controller does (that controller is not served by the Go module proxy, so it cannot be built here).
 * Pure: the caller reads and writes the cluster.
 */
import { parseAllDocuments, stringify } from 'yaml';

/** The namespace Envoy Gateway runs in (its `ENVOY_GATEWAY_NAMESPACE` default). */
export const ENVOY_GATEWAY_NAMESPACE = 'envoy-gateway-system';

export const INFERENCE_POOL_GROUP = 'inference.networking.k8s.io';

/** The annotation of a stand-in Deployment (and its pods): what really plays it on this machine. */
export const PLAYED_BY = 'llmisvc.dev/played-by';

export interface EnvoyGatewayConfigInput {
  controllerName: string;
  /** The Unix socket of the extension server (dev/eg-extension) Envoy Gateway calls. */
  extensionSocket: string;
}

/**
 * The EnvoyGateway configuration file (`envoy-gateway server --config-path`).
 *
 * InferencePool is registered as an extension-manager backend resource: Envoy Gateway v1.8 has no built-in
 * InferencePool support, and without this it refuses an HTTPRoute backendRef to one (ResolvedRefs=False,
 * InvalidKind). With it, Envoy Gateway checks that the pool exists and resolves the reference, and hands the pool
 * to the extension server when it translates to xDS — Envoy AI Gateway's controller in a real install, the dev
 * cluster's stand-in here (dev/eg-extension), through the `Cluster` hook (the pool's cluster) and the
 * `Translation` hook with every listener, route and cluster (where the Endpoint Picker is wired in). Not fail-open:
 * without the extension a translation would bind the proxies' listeners to every address of this machine and route
 * to a placeholder cluster, so Envoy Gateway keeps the last good configuration instead.
 */
export function envoyGatewayConfig(input: EnvoyGatewayConfigInput): string {
  return stringify({
    apiVersion: 'gateway.envoyproxy.io/v1alpha1',
    kind: 'EnvoyGateway',
    gateway: { controllerName: input.controllerName },
    logging: { level: { default: 'info' } },
    provider: {
      type: 'Kubernetes',
      kubernetes: {
        // One replica that lives as long as the cluster.
        leaderElection: { disable: true },
        // The topology injector is a pod webhook the API server would have to reach; KWOK pods need no zone.
        topologyInjector: { disable: true },
      },
    },
    extensionManager: {
      backendResources: [{ group: INFERENCE_POOL_GROUP, version: 'v1', kind: 'InferencePool' }],
      hooks: {
        xdsTranslator: {
          post: ['Cluster', 'Translation'],
          translation: {
            listener: { includeAll: true },
            route: { includeAll: true },
            cluster: { includeAll: true },
            secret: { includeAll: true },
          },
        },
      },
      service: { unix: { path: input.extensionSocket } },
      failOpen: false,
    },
  });
}

/**
 * The CRD manifests of a Helm chart template with its `{{- if … }}` / `{{- end }}` guard lines removed (Envoy
 * Gateway's generated CRD templates are plain YAML inside one such guard).
 */
export function stripHelmGuards(template: string): string {
  return template
    .split('\n')
    .filter((line) => !/^\s*\{\{-?\s*(if|end|else)\b.*\}\}\s*$/.test(line))
    .join('\n');
}

/** The CustomResourceDefinitions in a YAML stream. */
export function crdObjects(yaml: string): Record<string, unknown>[] {
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o?.['kind'] === 'CustomResourceDefinition');
}

/** The block load-balancer addresses come from: 127.2.0.0/16 on loopback, apart from the pods' 127.1.0.0/16. */
export const LOAD_BALANCER_PREFIX = '127.2';

interface ServiceLike {
  metadata: { name: string; namespace?: string };
  spec?: { type?: string; loadBalancerClass?: string };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

/**
 * The load-balancer address for each LoadBalancer Service that has none yet: the next free one in 127.2.0.0/16
 * from the `first`-th on (Services with a loadBalancerClass belong to another implementation and are left alone).
 * Each dev cluster starts at a random place, so that two on one machine do not hand out the same address (their
 * gateway proxies listen on it).
 * @example allocateLoadBalancerIps([{ metadata: { name: 'a' }, spec: { type: 'LoadBalancer' } }]) // Map { 'default/a' => '127.2.0.1' }
 */
export function allocateLoadBalancerIps(services: readonly ServiceLike[], first = 1): Map<string, string> {
  const used = new Set(
    services.flatMap((s) => (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter(Boolean)),
  );
  const wanted = services.filter(
    (s) =>
      s.spec?.type === 'LoadBalancer' &&
      !s.spec.loadBalancerClass &&
      (s.status?.loadBalancer?.ingress ?? []).length === 0,
  );
  const result = new Map<string, string>();
  let tried = 0;
  let next = first;
  for (const service of wanted) {
    let ip: string;
    do {
      if (tried++ > 65_536) return result;
      if (next > 65_534) next = 1;
      ip = `${LOAD_BALANCER_PREFIX}.${next >> 8}.${next & 255}`;
      next++;
    } while (used.has(ip) || ip.endsWith('.0') || ip.endsWith('.255'));
    used.add(ip);
    result.set(`${service.metadata.namespace ?? 'default'}/${service.metadata.name}`, ip);
  }
  return result;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

interface ParentRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
}

export interface RouteLike {
  metadata: { name: string; namespace?: string; generation?: number };
  spec?: {
    rules?: { backendRefs?: { group?: string; kind?: string; name: string; namespace?: string }[] }[];
  };
  status?: { parents?: { parentRef: ParentRef; controllerName?: string; conditions?: Condition[] }[] };
}

export interface PoolLike {
  metadata: { name: string; namespace?: string; generation?: number };
  status?: { parents?: PoolParentStatus[] };
}

export interface PoolParentStatus {
  parentRef: { group: string; kind: string; name: string; namespace: string };
  conditions: Condition[];
}

/**
 * The `status.parents` an InferencePool gets from the Gateways whose HTTPRoutes send to it, judged from what Envoy
 * Gateway wrote on those routes: a Gateway (of `controllerName`) that accepted a route and resolved its references
 * — which for an InferencePool backendRef means Envoy Gateway found the pool — accepts the pool; a Gateway that
 * refused the route or a reference reports the pool not Accepted with the route's reason and message. Pools no
 * route of this controller sends to get no parents. `now` is the lastTransitionTime of new conditions; conditions
 * whose status did not change keep theirs.
 */
export function inferencePoolParents(
  pool: PoolLike,
  routes: readonly RouteLike[],
  controllerName: string,
  now: string,
): PoolParentStatus[] {
  const namespace = pool.metadata.namespace ?? 'default';
  const byGateway = new Map<string, PoolParentStatus>();
  for (const route of routes) {
    const routeNamespace = route.metadata.namespace ?? 'default';
    const sendsToPool = (route.spec?.rules ?? []).some((rule) =>
      (rule.backendRefs ?? []).some(
        (ref) =>
          ref.group === INFERENCE_POOL_GROUP &&
          ref.kind === 'InferencePool' &&
          ref.name === pool.metadata.name &&
          (ref.namespace ?? routeNamespace) === namespace,
      ),
    );
    if (!sendsToPool) continue;
    for (const parent of route.status?.parents ?? []) {
      if (parent.controllerName !== controllerName) continue;
      if ((parent.parentRef.kind ?? 'Gateway') !== 'Gateway') continue;
      const gateway = {
        group: parent.parentRef.group ?? 'gateway.networking.k8s.io',
        kind: 'Gateway',
        name: parent.parentRef.name,
        namespace: parent.parentRef.namespace ?? routeNamespace,
      };
      const key = `${gateway.namespace}/${gateway.name}`;
      const failing = ['Accepted', 'ResolvedRefs']
        .map((type) => ({ type, condition: parent.conditions?.find((c) => c.type === type) }))
        .find(({ condition }) => condition?.status !== 'True');
      const accepted: Condition = failing
        ? {
            type: 'Accepted',
            status: 'False',
            reason: failing.condition?.reason ?? 'Pending',
            message: `HTTPRoute ${routeNamespace}/${route.metadata.name} is not ${failing.type} by this Gateway${
              failing.condition?.message ? `: ${failing.condition.message}` : ''
            }`,
          }
        : {
            type: 'Accepted',
            status: 'True',
            reason: 'Accepted',
            message: `referenced by HTTPRoute ${routeNamespace}/${route.metadata.name}, which the Gateway accepted`,
          };
      const previous = byGateway.get(key);
      // A Gateway that accepts the pool through one route and refuses it through another reports the refusal.
      if (previous && previous.conditions[0]!.status === 'False') continue;
      byGateway.set(key, { parentRef: gateway, conditions: [accepted] });
    }
  }
  const existing = pool.status?.parents ?? [];
  return [...byGateway.values()].map((parent) => {
    const old = existing.find(
      (p) =>
        p.parentRef.name === parent.parentRef.name && p.parentRef.namespace === parent.parentRef.namespace,
    );
    return {
      ...parent,
      conditions: parent.conditions.map((c) => {
        const before = old?.conditions.find((x) => x.type === c.type);
        return {
          ...c,
          observedGeneration: pool.metadata.generation ?? 1,
          lastTransitionTime:
            before?.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : now,
        };
      }),
    };
  });
}

/** Whether two parent lists say the same thing (so an unchanged status is not written again). */
export function sameParents(a: readonly PoolParentStatus[], b: readonly PoolParentStatus[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
