/**
 * @module controller/status
 * The parts of status that say *what* a service is made of, in the shapes KServe v0.20 writes: `status.router`
 * (Gateways with their listeners and HTTPRoutes, the InferencePool and the Endpoint Picker Service),
 * `status.workloads` (primary, prefill, Service, scheduler), `status.appliedConfigs` (which
 * LLMInferenceServiceConfigs were merged, from where, and why) and, for a LLMInferenceServiceConfig,
 * `status.referencedBy`. Pure: rendered and observed objects in, plain data out, in a stable order so that an
 * unchanged cluster derives an identical status (and the controller writes nothing).
 */
import type { KubeObject } from '../kube/index.js';
import type { Condition, LiveObject, ObjectReference } from './conditions.js';

export type { ObjectReference } from './conditions.js';

/** A reference to an object in the service's namespace (Kubernetes' TypedLocalObjectReference). */
export interface TypedLocalObjectReference {
  /** Left out for the core group. */
  apiGroup?: string;
  kind: string;
  name: string;
}

/** A Gateway the service is exposed through, the listeners its routes target and the routes themselves. */
export interface ObservedGateway extends ObjectReference {
  /** The parentRefs' sectionNames; left out when a route attaches to every listener. */
  listeners?: string[];
  httpRoutes?: ObjectReference[];
}

export interface RouterStatus {
  gateways?: ObservedGateway[];
  scheduler?: { inferencePool?: ObjectReference; service?: ObjectReference };
  /** The routing group with every member's configured and effective weight (KServe v0.20's `router.group`). */
  group?: RoutingGroupStatus;
}

export interface RoutingGroupStatus {
  name: string;
  members: { name: string; weight: number; effectiveWeight: number; ready: boolean; stopped: boolean }[];
}

export interface WorkloadStatus {
  primary?: TypedLocalObjectReference;
  prefill?: TypedLocalObjectReference;
  service?: TypedLocalObjectReference;
  scheduler?: TypedLocalObjectReference;
}

export interface AppliedConfigRef {
  name: string;
  namespace: string;
  source: 'Preset' | 'UserRef';
}

export interface ServiceReference {
  name: string;
  namespace: string;
}

const GATEWAY_GROUP = 'gateway.networking.k8s.io';
const WORKLOAD_COMPONENT = 'llminferenceservice-workload';
const SCHEDULER_COMPONENT = 'llminferenceservice-router-scheduler';

/** The API group of an apiVersion (`apps/v1` → `apps`, `v1` → ``). */
export function groupOf(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
}

function component(o: KubeObject): string | undefined {
  return o.metadata.labels?.['app.kubernetes.io/component'];
}

function typedRef(o: KubeObject): TypedLocalObjectReference {
  const group = groupOf(o.apiVersion);
  return { ...(group ? { apiGroup: group } : {}), kind: o.kind, name: o.metadata.name };
}

function objectRef(o: KubeObject, namespace: string): ObjectReference {
  return { group: groupOf(o.apiVersion), kind: o.kind, name: o.metadata.name, namespace };
}

type ParentRef = { group?: string; kind?: string; name: string; namespace?: string; sectionName?: string };
type BackendRef = { group?: string; kind?: string; name?: string };

/** A child the service should have, and whether it exists (applied this pass or seen in the cache). */
export interface ExistingChild {
  object: KubeObject;
  exists: boolean;
}

/**
 * `status.workloads`: the primary and prefill workloads (Deployment or LeaderWorkerSet), the Service in front of
 * the primary one and the Endpoint Picker Deployment, each once it exists; undefined when none does.
 * @example workloadStatus([{ object: deployment, exists: true }]) // → { primary: { apiGroup: 'apps', kind: 'Deployment', name } }
 */
export function workloadStatus(
  children: readonly ExistingChild[],
  roleOf: (o: KubeObject) => string,
): WorkloadStatus | undefined {
  const status: WorkloadStatus = {};
  for (const { object, exists } of children) {
    if (!exists) continue;
    const role = roleOf(object);
    if (role === 'main-workload') status.primary ??= typedRef(object);
    else if (role === 'prefill-workload') status.prefill ??= typedRef(object);
    else if (role === 'scheduler-workload') status.scheduler ??= typedRef(object);
    else if (object.kind === 'Service' && component(object) === WORKLOAD_COMPONENT)
      status.service ??= typedRef(object);
  }
  return Object.keys(status).length ? status : undefined;
}

export interface RouterStatusInput {
  namespace: string;
  children: readonly ExistingChild[];
  /** Gateways the managed routes attach to, by `namespace/name`, live (undefined when not found). */
  gateways: ReadonlyMap<string, LiveObject | undefined>;
}

/**
 * `status.router`: every existing Gateway a managed HTTPRoute attaches to (with the listeners it targets and the
 * routes), and the InferencePool and Endpoint Picker Service the requests go through. The pool is the one the
 * route's backendRefs name (so `scheduler.pool.ref` is reported too), else the managed one. Undefined when the
 * service has no routing (and while it is stopped, as it then has no children).
 */
export function routerStatus(input: RouterStatusInput): RouterStatus | undefined {
  const { namespace } = input;
  const gateways = new Map<string, ObservedGateway>();
  const allListeners = new Set<string>();
  let pool: ObjectReference | undefined;
  for (const { object: route, exists } of input.children) {
    if (route.kind !== 'HTTPRoute' || !exists) continue;
    const spec = (route['spec'] ?? {}) as {
      parentRefs?: ParentRef[];
      rules?: { backendRefs?: BackendRef[] }[];
    };
    const routeRef = objectRef(route, namespace);
    for (const p of spec.parentRefs ?? []) {
      if ((p.kind ?? 'Gateway') !== 'Gateway' || (p.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP) continue;
      const gwNamespace = p.namespace ?? namespace;
      const key = `${gwNamespace}/${p.name}`;
      if (!input.gateways.get(key)) continue; // Not observed: GatewaysReady says it is missing.
      const gw = gateways.get(key) ?? {
        group: GATEWAY_GROUP,
        kind: 'Gateway',
        name: p.name,
        namespace: gwNamespace,
        listeners: [],
        httpRoutes: [],
      };
      if (!p.sectionName) allListeners.add(key);
      else if (!gw.listeners!.includes(p.sectionName)) gw.listeners!.push(p.sectionName);
      if (!gw.httpRoutes!.some((r) => r.name === routeRef.name)) gw.httpRoutes!.push(routeRef);
      gateways.set(key, gw);
    }
    for (const rule of spec.rules ?? [])
      for (const b of rule.backendRefs ?? [])
        if (b.kind === 'InferencePool' && b.name && !pool)
          pool = { group: b.group ?? '', kind: 'InferencePool', name: b.name, namespace };
  }
  for (const [key, gw] of gateways) {
    // A parentRef without sectionName attaches to every listener: KServe leaves listeners out then.
    if (allListeners.has(key) || gw.listeners!.length === 0) delete gw.listeners;
    else gw.listeners!.sort();
  }
  const existing = input.children.filter((c) => c.exists).map((c) => c.object);
  const managedPool = existing.find((o) => o.kind === 'InferencePool');
  pool ??= managedPool ? objectRef(managedPool, namespace) : undefined;
  const epp = existing.find((o) => o.kind === 'Service' && component(o) === SCHEDULER_COMPONENT);
  const scheduler = {
    ...(pool ? { inferencePool: pool } : {}),
    ...(epp ? { service: objectRef(epp, namespace) } : {}),
  };
  const status: RouterStatus = {
    ...(gateways.size
      ? { gateways: [...gateways.values()].sort((a, b) => refKey(a).localeCompare(refKey(b))) }
      : {}),
    ...(Object.keys(scheduler).length ? { scheduler } : {}),
  };
  return Object.keys(status).length ? status : undefined;
}

function refKey(r: { namespace?: string; name: string }): string {
  return `${r.namespace ?? ''}/${r.name}`;
}

/**
 * How many services a LLMInferenceServiceConfig lists in `status.referencedBy`. The list is for people and tools
 * that want to know who to ask before changing a shared config; a preset can be used by thousands of services and
 * a status of that size would be rewritten on every change of any of them (and approach etcd's object size
 * limit). The ConfigInUse condition always gives the full count; deletion protection does not rely on this list.
 */
export const REFERENCED_BY_LIMIT = 100;

/** A service as seen by config bookkeeping: its baseRefs, what the controller merged into it, and its phase. */
export type ServiceLike = KubeObject & {
  spec?: { baseRefs?: { name: string }[] };
  status?: { observedGeneration?: number; appliedConfigs?: AppliedConfigRef[] };
};

/**
 * The services (`namespace/name`, sorted) that use a config: those whose `status.appliedConfigs` lists it (the
 * controller records what it merged, presets included) and, for a service the controller has not reconciled at
 * its current generation yet, those whose `spec.baseRefs` name it (a baseRef resolves in the service's own
 * namespace first, then in the system namespace). Services being deleted no longer count.
 */
export function configUsers(
  config: { namespace: string; name: string },
  services: readonly ServiceLike[],
  systemNamespace: string,
): string[] {
  const users: string[] = [];
  for (const s of services) {
    if (s.metadata.deletionTimestamp) continue;
    const ns = s.metadata.namespace ?? '';
    const applied = (s.status?.appliedConfigs ?? []).some(
      (a) => a.name === config.name && a.namespace === config.namespace,
    );
    const pending =
      s.status?.observedGeneration !== s.metadata.generation &&
      (ns === config.namespace || config.namespace === systemNamespace) &&
      (s.spec?.baseRefs ?? []).some((r) => r.name === config.name);
    if (applied || pending) users.push(`${ns}/${s.metadata.name}`);
  }
  return users.sort();
}

export interface ConfigStatus {
  referencedBy?: ServiceReference[];
  conditions: Condition[];
}

/** A LLMInferenceServiceConfig's status from the keys of the services that use it (see `configUsers`). */
export function configStatus(users: readonly string[]): ConfigStatus {
  if (users.length === 0)
    return {
      conditions: [
        {
          type: 'ConfigInUse',
          status: 'False',
          reason: 'NotReferenced',
          message: 'no LLMInferenceService uses this config; it can be deleted',
        },
      ],
    };
  const referencedBy = users.slice(0, REFERENCED_BY_LIMIT).map((key) => {
    const [namespace, name] = key.split('/') as [string, string];
    return { name, namespace };
  });
  const count = users.length === 1 ? '1 LLMInferenceService' : `${users.length} LLMInferenceServices`;
  const listed =
    users.length > REFERENCED_BY_LIMIT
      ? `the first ${REFERENCED_BY_LIMIT} by namespace/name are listed in status.referencedBy`
      : 'listed in status.referencedBy';
  return {
    referencedBy,
    conditions: [
      {
        type: 'ConfigInUse',
        status: 'True',
        reason: 'Referenced',
        message: `used by ${count} (${listed}); it cannot be deleted while they use it`,
      },
    ],
  };
}

/** The configs a service's status names, as `namespace/name` keys (for re-checking their referencedBy). */
export function appliedConfigKeys(service: ServiceLike | undefined): string[] {
  return (service?.status?.appliedConfigs ?? []).map((a) => `${a.namespace}/${a.name}`);
}
