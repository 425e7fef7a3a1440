/**
 * @module local/topology
 * What `llmisvc up` runs, read from the renderer's output (the same children the controller applies): the model
 * server workloads with their replicas and P/D roles (a LeaderWorkerSet group is one endpoint, its leader), the
 * served model name, the Endpoint Picker's config from the scheduler Deployment, and the HTTPRoute's paths with
 * their rewrites. Pure: rendered objects in, plain data out.
 */
import { LlmisvcError } from '../errors/index.js';
import { commandWords, lastFlagValues } from '../presets/index.js';
import type { KubeObject, RenderOutput } from '../render/index.js';

export type LocalRole = 'both' | 'prefill' | 'decode';

/** One Deployment or LeaderWorkerSet of model servers. */
export interface LocalWorkload {
  /** The rendered object's name (`quickstart-kserve`, `llama-pd-kserve-prefill`). */
  name: string;
  kind: 'Deployment' | 'LeaderWorkerSet';
  role: LocalRole;
  /** Endpoints to run: Deployment replicas, or LeaderWorkerSet groups (one leader each). */
  replicas: number;
  /** Stable pod names, one per endpoint (`<workload>-<i>`, the leader of group i for a LeaderWorkerSet). */
  podNames: string[];
}

/** One HTTPRoute rule as the local gateway serves it. */
export interface LocalRoute {
  /** The matched path prefix (`/default/quickstart/v1/completions`). */
  prefix: string;
  /** ReplacePrefixMatch value (`/v1/completions`); undefined = path unchanged. */
  rewrite: string | undefined;
  /** `pool`: through the Endpoint Picker; `service`: round robin over the workload, like a Kubernetes Service. */
  backend: 'pool' | 'service';
  /** Exact header matches, all required (the model-name rules' `X-Gateway-Model-Name`); absent: none. */
  headers?: { name: string; value: string }[];
  /**
   * The rule's backendRefs with their weights when it splits traffic (a routing group's shared rules): names of
   * InferencePools or Services, resolved to services by the stack. Absent: the service's own backend.
   */
  split?: { name: string; weight: number }[];
}

export interface LocalTopology {
  namespace: string;
  name: string;
  /** The model name clients send (`--served-model-name`). */
  model: string;
  workloads: LocalWorkload[];
  /** EndpointPickerConfig YAML from the scheduler Deployment; undefined when the service has no scheduler. */
  eppConfigText: string | undefined;
  /** Replicas of the scheduler Deployment (`router.scheduler.replicas`): active-active EPPs; 1 without one. */
  eppReplicas: number;
  /** HTTPRoute rules, longest prefix first; empty when the service renders no route. */
  routes: LocalRoute[];
  /** The InferencePool's `failureMode` (GIE's default FailClose when it states none or there is no pool). */
  failureMode: 'FailOpen' | 'FailClose';
}

type Obj = Record<string, unknown>;

function obj(value: unknown): Obj {
  return value !== null && typeof value === 'object' ? (value as Obj) : {};
}

function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

const WORKLOAD_COMPONENTS = new Set(['llminferenceservice-workload', 'llminferenceservice-workload-prefill']);
const SCHEDULER_COMPONENT = 'llminferenceservice-router-scheduler';

function component(o: KubeObject): string | undefined {
  return str(obj(obj(o.metadata).labels)['app.kubernetes.io/component']);
}

function roleOf(labels: Obj, name: string): LocalRole {
  const role = str(labels['llm-d.ai/role']);
  if (role === 'prefill' || role === 'decode' || role === 'both') return role;
  return name.endsWith('-prefill') ? 'prefill' : 'both';
}

/** The containers of a pod template (`spec.template` or a LeaderWorkerSet leader/worker template). */
function podTemplate(o: KubeObject): Obj {
  const spec = obj(o.spec);
  if (o.kind === 'LeaderWorkerSet') {
    const lwt = obj(spec.leaderWorkerTemplate);
    return obj(lwt.leaderTemplate ?? lwt.workerTemplate);
  }
  return obj(spec.template);
}

function mainContainer(template: Obj): Obj {
  const containers = arr(obj(template.spec).containers).map(obj);
  return containers.find((c) => c.name === 'main') ?? containers[0] ?? {};
}

/** The first name of `--served-model-name` in a container's command line (its arguments, or its `-c` script). */
export function servedModelName(container: Obj): string | undefined {
  const words = commandWords({
    command: arr(container.command).map(String),
    args: arr(container.args).map(String),
  });
  return lastFlagValues(words, '--served-model-name')?.[0];
}

/** `--config-text` of the scheduler container, or `--config-file` resolved through its ConfigMap volume. */
function eppConfigOf(scheduler: KubeObject, children: readonly KubeObject[]): string | undefined {
  const template = podTemplate(scheduler);
  const container = mainContainer(template);
  const args = arr(container.args).map((a) => String(a));
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(name);
    if (i >= 0) return args[i + 1];
    const inline = args.find((a) => a.startsWith(`${name}=`));
    return inline?.slice(name.length + 1);
  };
  const text = flag('--config-text');
  if (text !== undefined) return text;
  const file = flag('--config-file');
  if (file === undefined) return undefined;
  // A file path inside the pod: find the mounted ConfigMap key that backs it.
  for (const mount of arr(container.volumeMounts).map(obj)) {
    const mountPath = str(mount.mountPath);
    if (!mountPath || !file.startsWith(mountPath)) continue;
    const volume = arr(obj(template.spec).volumes)
      .map(obj)
      .find((v) => v.name === mount.name);
    const configMapName = str(obj(volume?.configMap).name);
    const configMap = children.find((c) => c.kind === 'ConfigMap' && obj(c.metadata).name === configMapName);
    const key = file.slice(mountPath.length).replace(/^\//, '') || str(mount.subPath);
    const data = obj(configMap?.data);
    if (key && typeof data[key] === 'string') return data[key];
  }
  throw new LlmisvcError(
    'LLMISVC_ERR_CONFIG',
    `the scheduler of this service reads its EndpointPickerConfig from ${file}, which no rendered ConfigMap provides`,
    { hint: 'Give the scheduler --config-text, or a ConfigMap mounted at that path.' },
  );
}

function routesOf(route: KubeObject): LocalRoute[] {
  const routes: LocalRoute[] = [];
  for (const rule of arr(obj(route.spec).rules).map(obj)) {
    const backend = arr(rule.backendRefs)
      .map(obj)
      .some((b) => b.kind === 'InferencePool')
      ? 'pool'
      : 'service';
    const rewrite = arr(rule.filters)
      .map(obj)
      .map((f) => obj(obj(obj(f.urlRewrite).path)))
      .find((p) => p.type === 'ReplacePrefixMatch');
    const refs = arr(rule.backendRefs).map(obj);
    const weighted = refs.length > 1 || refs.some((b) => typeof b.weight === 'number');
    const split = weighted
      ? refs.map((b) => ({ name: String(b.name), weight: typeof b.weight === 'number' ? b.weight : 1 }))
      : undefined;
    for (const match of arr(rule.matches).map(obj)) {
      const path = obj(match.path);
      const prefix = str(path.value) ?? '/';
      const headers = arr(match.headers)
        .map(obj)
        .filter((h) => (h.type ?? 'Exact') === 'Exact' && str(h.name) && str(h.value) !== undefined)
        .map((h) => ({ name: String(h.name), value: String(h.value) }));
      routes.push({
        prefix,
        rewrite: str(rewrite?.replacePrefixMatch),
        backend,
        ...(headers.length ? { headers } : {}),
        ...(split ? { split } : {}),
      });
    }
  }
  return sortRoutes(routes);
}

/** Gateway API's precedence: the longest path first, then the rule with more header matches. */
export function sortRoutes<R extends { prefix: string; headers?: unknown[] | undefined }>(routes: R[]): R[] {
  return routes.sort(
    (a, b) => b.prefix.length - a.prefix.length || (b.headers?.length ?? 0) - (a.headers?.length ?? 0),
  );
}

/**
 * The local topology of a rendered service.
 * @example localTopology(renderService({ service, configs: [], apiVersions, options })).workloads[0].podNames
 *   // → ['quickstart-kserve-0', 'quickstart-kserve-1', 'quickstart-kserve-2', 'quickstart-kserve-3']
 */
export function localTopology(rendered: Pick<RenderOutput, 'spec' | 'children'>): LocalTopology {
  const { children, spec } = rendered;
  const workloadObjects = children.filter(
    (c) =>
      (c.kind === 'Deployment' || c.kind === 'LeaderWorkerSet') &&
      WORKLOAD_COMPONENTS.has(component(c) ?? ''),
  );
  const anyWorkload = workloadObjects[0] ?? children.find((c) => c.kind === 'Deployment');
  const meta = obj(anyWorkload?.metadata);
  const workloads: LocalWorkload[] = workloadObjects.map((o) => {
    const name = String(obj(o.metadata).name);
    const replicas = Number(obj(o.spec).replicas ?? 1);
    const labels = obj(obj(podTemplate(o).metadata).labels);
    return {
      name,
      kind: o.kind as LocalWorkload['kind'],
      role: roleOf(labels, name),
      replicas,
      podNames: Array.from({ length: replicas }, (_, i) => `${name}-${i}`),
    };
  });
  if (workloads.length === 0 || workloads.every((w) => w.replicas === 0)) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', 'the service renders no model-server replicas to run', {
      hint: 'Set spec.replicas to 1 or more.',
    });
  }
  const scheduler = children.find((c) => c.kind === 'Deployment' && component(c) === SCHEDULER_COMPONENT);
  const route = children.find((c) => c.kind === 'HTTPRoute');
  const model =
    workloadObjects.map((o) => servedModelName(mainContainer(podTemplate(o)))).find(Boolean) ??
    spec.model?.name ??
    String(meta.name);
  return {
    namespace: str(meta.namespace) ?? 'default',
    name: str(obj(obj(arr(meta.ownerReferences)[0])).name) ?? String(meta.name),
    model,
    workloads,
    eppConfigText: scheduler ? eppConfigOf(scheduler, children) : undefined,
    eppReplicas: Math.max(1, Number(obj(scheduler?.spec).replicas ?? 1) || 1),
    routes: route ? routesOf(route) : [],
    failureMode: failureModeOf(children.find((c) => c.kind === 'InferencePool')),
  };
}

/** `failureMode` of a v1 (`endpointPickerRef`) or v1alpha2 (`extensionRef`) InferencePool. */
function failureModeOf(pool: KubeObject | undefined): LocalTopology['failureMode'] {
  const spec = obj(pool?.spec);
  const mode = str(obj(spec['endpointPickerRef'] ?? spec['extensionRef']).failureMode);
  return mode === 'FailOpen' ? 'FailOpen' : 'FailClose';
}
