/**
 * @module controller/conditions
 * Status as a pure function of what the cluster says: the children's own status (Deployment and LeaderWorkerSet
 * `Available`, Gateway `Programmed` + addresses, HTTPRoute parents `Accepted` + `ResolvedRefs`, InferencePool parents
 * `Accepted`), the dependency check and the render outcome go in; conditions, `url` and `addresses` come out. Every
 * False condition carries a reason and a message that says what to do.
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  severity?: string;
}

/** What a child does for the service; decides which condition its readiness feeds. */
export type ChildRole =
  | 'main-workload'
  | 'worker-workload'
  | 'prefill-workload'
  | 'prefill-worker-workload'
  | 'scheduler-workload'
  | 'route'
  | 'pool'
  | 'other';

export const WORKLOAD_CONDITIONS: Record<string, string> = {
  'main-workload': 'MainWorkloadReady',
  'worker-workload': 'WorkerWorkloadReady',
  'prefill-workload': 'PrefillWorkloadReady',
  'prefill-worker-workload': 'PrefillWorkerWorkloadReady',
};

/** A child the service should have, with its live counterpart (undefined while it does not exist yet). */
export interface ObservedChild {
  role: ChildRole;
  /** The rendered apiVersion (both InferencePool API groups can be rendered side by side). */
  apiVersion?: string;
  kind: string;
  name: string;
  live: LiveObject | undefined;
}

/** A reference to an object by group, kind, name and namespace (Gateway API's ObjectReference). */
export interface ObjectReference {
  /** `` for the core group. */
  group: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** Where a service is reachable, and which object gives it that address (KServe's SourcedAddress). */
export interface SourcedAddress {
  url: string;
  name?: string;
  origin?: ObjectReference;
}

export interface LiveObject {
  kind?: string;
  metadata: { name: string; namespace?: string; generation?: number };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** An API the service needs that the cluster does not serve (the renderer's `missing`). */
export interface MissingDependency {
  feature: string;
  apiVersions: readonly string[];
  kinds: readonly string[];
  /** Why the service needs it. */
  reason?: string;
  install: string;
}

export interface StatusInput {
  generation: number | undefined;
  /** undefined when presets combined; otherwise why not (reason + message). */
  renderProblem?: { reason: string; message: string };
  stopped: boolean;
  missing: readonly MissingDependency[];
  /**
   * Cluster features the API server showed it lacks by dropping what was written (an image volume with the
   * ImageVolume feature gate off), each with its reason and what to do; they fail DependenciesReady like a missing API.
   */
  unsupported?: readonly { reason: string; message: string }[];
  children: readonly ObservedChild[];
  /** Gateways the route attaches to (live, or undefined when not found), by `namespace/name`. */
  gateways: ReadonlyMap<string, LiveObject | undefined>;
  /** Ingresses of `spec.router.ingress.refs` (live, or undefined when not found), by `namespace/name`. */
  ingresses?: ReadonlyMap<string, LiveObject | undefined>;
  /** The Service an Ingress should send traffic to, for the messages that say how to fix one. */
  ingressBackend?: { name: string; port: number };
  /** Fallback URL when the service has no route (the main Service's cluster DNS name). */
  serviceUrl?: string;
  /** The Service `serviceUrl` points at, as the address's origin. */
  serviceOrigin?: ObjectReference;
  /** The path prefix the route matches, appended to the gateway address. */
  routePath?: string;
  /** Children the API server refused this pass (for example "Service x: failed to allocate a serviceIP"). */
  applyErrors?: readonly string[];
  /** Objects this pass could not write, each with a reason and what to do (children and the default Gateway). */
  problems?: readonly { reason: string; message: string }[];
  /** When problems cut the pass short: when it is retried (appended to Ready's message). */
  retry?: string;
}

export interface DerivedStatus {
  conditions: Condition[];
  url?: string;
  addresses?: SourcedAddress[];
}

const ok = (type: string, reason = 'Ready', message?: string): Condition => ({
  type,
  status: 'True',
  reason,
  ...(message ? { message } : {}),
});
const bad = (type: string, reason: string, message: string): Condition => ({
  type,
  status: 'False',
  reason,
  message,
});

type ConditionList = { status?: string; type?: string; reason?: string; message?: string }[];

function conditionOf(status: Record<string, unknown> | undefined, type: string) {
  return ((status?.['conditions'] as ConditionList | undefined) ?? []).find((c) => c.type === type);
}

/** Deployment or LeaderWorkerSet readiness from its own status. */
export function workloadReadiness(child: ObservedChild, type: string): Condition {
  const what = `${child.kind} ${child.name}`;
  const live = child.live;
  if (!live)
    return bad(type, 'NotCreated', `${what} does not exist yet; the controller creates it on its next pass`);
  const status = live.status ?? {};
  const observed = status['observedGeneration'] as number | undefined;
  if (live.metadata.generation !== undefined && observed !== undefined && observed < live.metadata.generation)
    return bad(type, 'Progressing', `${what} has a new spec that its controller has not observed yet`);
  const available = conditionOf(status, 'Available');
  if (available?.status === 'True') return ok(type);
  const replicas = (live.spec?.['replicas'] as number | undefined) ?? 1;
  const ready = (status['readyReplicas'] as number | undefined) ?? 0;
  if (child.kind === 'Deployment' && !available && observed === undefined)
    return bad(
      type,
      'NotObserved',
      `${what} has no status yet: is kube-controller-manager running? (${ready}/${replicas} replicas ready)`,
    );
  const progressing = conditionOf(status, 'Progressing');
  const detail = available?.message ?? progressing?.message;
  return bad(
    type,
    available?.reason ?? 'MinimumReplicasUnavailable',
    `${what}: ${ready}/${replicas} replicas ready${detail ? ` (${detail})` : ''}; check its pods with kubectl describe pods -l app.kubernetes.io/name=${child.name}`,
  );
}

interface RouteParentStatus {
  parentRef?: { name?: string; namespace?: string };
  conditions?: ConditionList;
}

/** HTTPRoute: every parent must have Accepted and ResolvedRefs True. */
export function routeReadiness(child: ObservedChild): Condition {
  const type = 'HTTPRoutesReady';
  const what = `HTTPRoute ${child.name}`;
  if (!child.live) return bad(type, 'NotCreated', `${what} does not exist yet`);
  const parents = ((child.live.status?.['parents'] as RouteParentStatus[] | undefined) ?? []).filter(Boolean);
  if (parents.length === 0)
    return bad(
      type,
      'NotAccepted',
      `no Gateway has accepted ${what} yet: check that a Gateway controller (Envoy Gateway, Istio, kgateway…) runs for the Gateway's class`,
    );
  for (const parent of parents) {
    const gw = parent.parentRef?.name ?? '?';
    for (const want of ['Accepted', 'ResolvedRefs']) {
      const c = parent.conditions?.find((x) => x.type === want);
      if (c?.status !== 'True')
        return bad(
          type,
          c?.reason ?? `Not${want}`,
          `${what} is not ${want} by Gateway ${gw}${c?.message ? `: ${c.message}` : ''}`,
        );
    }
  }
  return ok(type);
}

/**
 * The pools whose readiness counts: while both InferencePool API groups are rendered (a cluster serving v1 and
 * x-k8s.io v1alpha2), only those of the group the HTTPRoutes send to. No Gateway reports on a pool nothing routes
 * to, so judging it kept such services Pending for ever (found with Envoy Gateway on `llmisvc dev cluster`). When
 * no route names an InferencePool (no route, or the user's own routes), every pool counts, as before.
 */
export function poolsRoutedTo(
  pools: readonly ObservedChild[],
  routes: readonly ObservedChild[],
): ObservedChild[] {
  const groups = new Set<string>();
  for (const route of routes) {
    const rules =
      (route.live?.spec?.['rules'] as { backendRefs?: { group?: string; kind?: string }[] }[]) ?? [];
    for (const ref of rules.flatMap((r) => r.backendRefs ?? [])) {
      if (ref.kind === 'InferencePool') groups.add(ref.group ?? '');
    }
  }
  if (groups.size === 0) return [...pools];
  return pools.filter((p) => !p.apiVersion || groups.has(p.apiVersion.split('/')[0]!));
}

/** InferencePool: v1 reports `status.parents[]`, v1alpha2 `status.parent[]`; each needs Accepted True. */
export function poolReadiness(child: ObservedChild): Condition {
  const type = 'InferencePoolReady';
  const what = `InferencePool ${child.name}`;
  if (!child.live) return bad(type, 'NotCreated', `${what} does not exist yet`);
  const status = child.live.status ?? {};
  const parents = ((status['parents'] ?? status['parent']) as RouteParentStatus[] | undefined) ?? [];
  if (parents.length === 0)
    return bad(
      type,
      'NotAccepted',
      `no Gateway reports ${what} as accepted yet: the Gateway implementation must support Gateway API Inference Extension`,
    );
  for (const parent of parents) {
    const c = parent.conditions?.find((x) => x.type === 'Accepted');
    if (c?.status !== 'True')
      return bad(
        type,
        c?.reason ?? 'NotAccepted',
        `${what} is not accepted${c?.message ? `: ${c.message}` : ''}`,
      );
  }
  return ok(type);
}

interface GatewayAddress {
  type?: string;
  value?: string;
}

/** Gateway: Programmed True and at least one address. */
export function gatewayReadiness(key: string, gateway: LiveObject | undefined): Condition {
  const type = 'GatewaysReady';
  if (!gateway)
    return bad(
      type,
      'GatewayNotFound',
      `Gateway ${key} does not exist, or none of its listeners takes routes from this service's namespace: create ` +
        "it, allow this namespace in its listeners' allowedRoutes, or point spec.router.gateway.refs at another",
    );
  const programmed = conditionOf(gateway.status, 'Programmed');
  const addresses = (gateway.status?.['addresses'] as GatewayAddress[] | undefined) ?? [];
  if (programmed?.status !== 'True') {
    return bad(
      type,
      programmed?.reason ?? 'NotProgrammed',
      `Gateway ${key} is not Programmed${programmed?.message ? `: ${programmed.message}` : ''}; check that a Gateway controller runs for its gatewayClassName`,
    );
  }
  if (addresses.length === 0)
    return bad(
      type,
      'AddressPending',
      `Gateway ${key} is programmed but has no address: this cluster gives LoadBalancer Services no IP. Use a cloud provider, cloud-provider-kind or MetalLB, or kubectl port-forward to the gateway's Service`,
    );
  return ok(type);
}

interface IngressRule {
  host?: string;
  http?: { paths?: { path?: string; backend?: { service?: { name?: string } } }[] };
}

/** Ingress: it exists and its controller gave it an address (`status.loadBalancer.ingress`). */
export function ingressReadiness(
  key: string,
  ingress: LiveObject | undefined,
  backend?: { name: string; port: number },
): Condition {
  const type = 'IngressReady';
  const target = backend ? ` (backend: Service ${backend.name}, port ${backend.port})` : '';
  if (!ingress)
    return bad(
      type,
      'IngressNotFound',
      `Ingress ${key} does not exist: create it${target}, or remove it from spec.router.ingress.refs`,
    );
  const lb = ingress.status?.['loadBalancer'] as { ingress?: unknown[] } | undefined;
  if (!lb?.ingress?.length) {
    const className = ingress.spec?.['ingressClassName'] as string | undefined;
    return bad(
      type,
      'AddressPending',
      `Ingress ${key} has no address yet: check that an ingress controller runs for ${className ? `its class "${className}"` : 'the default IngressClass'}`,
    );
  }
  return ok(type);
}

/**
 * The URLs an Ingress gives: one per rule host (the path of the rule that sends to `serviceName` appended),
 * else one per load-balancer IP or hostname; https when a `spec.tls` entry covers the host.
 */
export function ingressAddresses(
  key: string,
  ingress: LiveObject,
  serviceName: string | undefined,
): SourcedAddress[] {
  const [namespace, name] = key.split('/') as [string, string];
  const origin: ObjectReference = { group: 'networking.k8s.io', kind: 'Ingress', name, namespace };
  const tls = (ingress.spec?.['tls'] as { hosts?: string[] }[] | undefined) ?? [];
  const secure = (host: string | undefined) =>
    tls.some((t) => !t.hosts?.length || (host !== undefined && t.hosts.includes(host)));
  const rules = (ingress.spec?.['rules'] as IngressRule[] | undefined) ?? [];
  const urls: string[] = [];
  for (const rule of rules) {
    if (!rule.host) continue;
    const path = rule.http?.paths?.find((p) => p.backend?.service?.name === serviceName)?.path;
    const suffix = path && path !== '/' ? path.replace(/\/$/, '') : '';
    urls.push(`${secure(rule.host) ? 'https' : 'http'}://${rule.host}${suffix}`);
  }
  if (urls.length === 0) {
    const lb =
      (ingress.status?.['loadBalancer'] as { ingress?: { ip?: string; hostname?: string }[] })?.ingress ?? [];
    for (const entry of lb) {
      const host = entry.hostname ?? (entry.ip?.includes(':') ? `[${entry.ip}]` : entry.ip);
      if (host) urls.push(`${secure(undefined) ? 'https' : 'http'}://${host}`);
    }
  }
  return [...new Set(urls)].map((url) => ({ url, origin }));
}

/**
 * Combines sub-conditions into one: True when all are, otherwise the first failing one's reason and every failing
 * message (prefixed with its condition type when `prefix`, for roll-ups of different conditions).
 */
export function aggregate(
  type: string,
  parts: readonly Condition[],
  emptyReason: string,
  prefix = true,
): Condition {
  const failing = parts.filter((p) => p.status !== 'True');
  if (parts.length === 0) return ok(type, emptyReason);
  if (failing.length === 0) return ok(type);
  const first = failing[0]!;
  return {
    type,
    status: first.status,
    reason: first.reason ?? 'NotReady',
    message: failing
      .map((f) => `${prefix ? `${f.type}: ` : ''}${f.message ?? f.reason ?? 'not ready'}`)
      .join('; '),
  };
}

function gatewayAddresses(key: string, gateway: LiveObject, path: string | undefined): SourcedAddress[] {
  const [namespace, name] = key.split('/') as [string, string];
  const origin: ObjectReference = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name, namespace };
  return addressUrls(gateway, path).map((url) => ({ url, origin }));
}

function addressUrls(gateway: LiveObject, path: string | undefined): string[] {
  const addresses = (gateway.status?.['addresses'] as GatewayAddress[] | undefined) ?? [];
  const listeners = (gateway.spec?.['listeners'] as { protocol?: string; port?: number }[] | undefined) ?? [];
  const https = listeners.length > 0 && listeners.every((l) => l.protocol === 'HTTPS');
  const port = listeners[0]?.port;
  const defaultPort = https ? 443 : 80;
  const portPart = port && port !== defaultPort ? `:${port}` : '';
  const suffix = path && path !== '/' ? path.replace(/\/$/, '') : '';
  return addresses
    .filter((a) => a.value)
    .map((a) => {
      const host = a.type === 'IPAddress' && a.value!.includes(':') ? `[${a.value}]` : a.value!;
      return `${https ? 'https' : 'http'}://${host}${portPart}${suffix}`;
    });
}

/** Every condition plus url/addresses, from the observed state. */
export function deriveStatus(input: StatusInput): DerivedStatus {
  const conditions: Condition[] = [];
  if (input.renderProblem) {
    conditions.push(bad('PresetsCombined', input.renderProblem.reason, input.renderProblem.message));
    conditions.push(bad('Ready', input.renderProblem.reason, input.renderProblem.message));
    return { conditions };
  }
  conditions.push(ok('PresetsCombined', 'Combined'));
  const unsupported = input.unsupported ?? [];
  const deps =
    input.missing.length === 0 && unsupported.length === 0
      ? ok('DependenciesReady', 'Available')
      : bad(
          'DependenciesReady',
          input.missing.length ? 'MissingAPI' : unsupported[0]!.reason,
          [
            ...input.missing.map(
              (m) =>
                `${m.feature} needs ${m.kinds.join(', ')} (${m.apiVersions.join(' or ')}), which this cluster does not serve${m.reason ? ` (${m.reason})` : ''}; to fix: ${m.install}`,
            ),
            ...unsupported.map((u) => u.message),
          ].join('; '),
        );
  conditions.push(deps);
  if (input.stopped) {
    const msg =
      'stopped by the serving.kserve.io/stop annotation; remove it or set it to "false" to start again';
    conditions.push(
      bad('WorkloadsReady', 'Stopped', msg),
      bad('RouterReady', 'Stopped', msg),
      bad('Ready', 'Stopped', msg),
    );
    return { conditions };
  }
  const workloadParts: Condition[] = [];
  const routerParts: Condition[] = [];
  const byRole = (role: ChildRole) => input.children.filter((c) => c.role === role);
  for (const role of [
    'main-workload',
    'worker-workload',
    'prefill-workload',
    'prefill-worker-workload',
  ] as const) {
    const type = WORKLOAD_CONDITIONS[role]!;
    const kids = byRole(role);
    if (kids.length)
      workloadParts.push(
        aggregate(
          type,
          kids.map((k) => workloadReadiness(k, type)),
          'Ready',
          false,
        ),
      );
    // A LeaderWorkerSet runs leader and workers together; its Available covers the worker pods as well.
    const lws = kids.filter((k) => k.kind === 'LeaderWorkerSet');
    const workerType =
      role === 'main-workload'
        ? 'WorkerWorkloadReady'
        : role === 'prefill-workload'
          ? 'PrefillWorkerWorkloadReady'
          : undefined;
    if (lws.length && workerType)
      workloadParts.push(
        aggregate(
          workerType,
          lws.map((k) => workloadReadiness(k, workerType)),
          'Ready',
          false,
        ),
      );
  }
  if (input.gateways.size)
    routerParts.push(
      aggregate(
        'GatewaysReady',
        [...input.gateways].map(([k, g]) => gatewayReadiness(k, g)),
        'Ready',
        false,
      ),
    );
  if (input.ingresses?.size)
    routerParts.push(
      aggregate(
        'IngressReady',
        [...input.ingresses].map(([k, i]) => ingressReadiness(k, i, input.ingressBackend)),
        'Ready',
        false,
      ),
    );
  const routes = byRole('route');
  if (routes.length)
    routerParts.push(aggregate('HTTPRoutesReady', routes.map(routeReadiness), 'Ready', false));
  const pools = poolsRoutedTo(byRole('pool'), routes);
  if (pools.length)
    routerParts.push(aggregate('InferencePoolReady', pools.map(poolReadiness), 'Ready', false));
  const schedulers = byRole('scheduler-workload');
  if (schedulers.length)
    routerParts.push(
      aggregate(
        'SchedulerWorkloadReady',
        schedulers.map((k) => workloadReadiness(k, 'SchedulerWorkloadReady')),
        'Ready',
        false,
      ),
    );
  conditions.push(...workloadParts, ...routerParts);
  const workloads = aggregate('WorkloadsReady', workloadParts, 'NoWorkloads');
  const router = aggregate('RouterReady', routerParts, 'NoRouter');
  conditions.push(workloads, router);
  // Ready names the leaf conditions that fail, not the roll-ups, so its message says what to fix.
  const problems = [
    ...(input.applyErrors ?? []).map((e) => ({
      reason: 'ApplyFailed',
      message: `the API server refused: ${e}`,
    })),
    ...(input.problems ?? []),
  ];
  const applied = problems.length
    ? [bad('ChildrenApplied', problems[0]!.reason, problems.map((p) => p.message).join('; '))]
    : [];
  const ready = aggregate('Ready', [...applied, deps, ...workloadParts, ...routerParts], 'Ready');
  if (input.retry && problems.length && ready.status !== 'True') ready.message += `; ${input.retry}`;
  conditions.push(ready);

  const addresses = [...input.gateways].flatMap(([key, g]) =>
    g ? gatewayAddresses(key, g, input.routePath) : [],
  );
  addresses.push(
    ...[...(input.ingresses ?? [])].flatMap(([key, i]) =>
      i ? ingressAddresses(key, i, input.ingressBackend?.name) : [],
    ),
  );
  if (addresses.length) return { conditions, url: addresses[0]!.url, addresses };
  if (input.gateways.size === 0 && input.serviceUrl)
    return {
      conditions,
      url: input.serviceUrl,
      addresses: [{ url: input.serviceUrl, ...(input.serviceOrigin ? { origin: input.serviceOrigin } : {}) }],
    };
  return { conditions };
}

/**
 * Keeps `lastTransitionTime` of conditions whose status did not change, and stamps `now` on the others, so that
 * re-deriving an unchanged status yields an identical object (and therefore no write).
 */
export function mergeConditionTimes(
  next: readonly Condition[],
  previous: readonly Condition[],
  now: string,
): Condition[] {
  return next.map((c) => {
    const old = previous.find((p) => p.type === c.type);
    return {
      ...c,
      lastTransitionTime:
        old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : now,
    };
  });
}

/** Conditions whose status changed, for events. */
export function transitions(next: readonly Condition[], previous: readonly Condition[]): Condition[] {
  return next.filter((c) => previous.find((p) => p.type === c.type)?.status !== c.status);
}
