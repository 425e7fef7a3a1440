/**
 * @module epp/kubernetes
 * Kubernetes mode: watches the InferencePool (v1 `inference.networking.k8s.io` or v1alpha2
 * `inference.networking.x-k8s.io`), the Ready pods its selector matches, and the InferenceModel (v1alpha2) and
 * InferenceObjective objects that reference the pool, and turns them into endpoint specs and a model directory.
 * The translation is pure (exported for tests); the informers are the thin edge.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  type Informer,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
  type V1Pod,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { LlmisvcError } from '../errors/index.js';
import type { EndpointSpec } from './datastore.js';
import { criticalityOfPriority, type ModelDirectory, type ModelRoute } from './director.js';
import type { Criticality, EndpointRole } from './types.js';

export const ROLE_LABEL = 'llm-d.ai/role';

/** The parts of an InferencePool the EPP uses, across API versions. */
export interface PoolSpec {
  selector: Record<string, string>;
  targetPorts: number[];
}

type Obj = KubernetesObject & { spec?: Record<string, unknown> };

/** Reads selector and ports from a v1 or v1alpha2 InferencePool. */
export function poolSpecOf(pool: Obj): PoolSpec | undefined {
  const spec = pool.spec ?? {};
  const selector = spec['selector'] as Record<string, unknown> | undefined;
  if (!selector) return undefined;
  // v1: selector.matchLabels; v1alpha2: the selector is the label map itself.
  const labels =
    (selector['matchLabels'] as Record<string, string> | undefined) ?? (selector as Record<string, string>);
  const ports: number[] = [];
  const targetPorts = spec['targetPorts'];
  if (Array.isArray(targetPorts))
    for (const p of targetPorts) if (typeof p?.number === 'number') ports.push(p.number);
  if (typeof spec['targetPortNumber'] === 'number') ports.push(spec['targetPortNumber']);
  if (ports.length === 0 || Object.keys(labels).length === 0) return undefined;
  return { selector: { ...labels }, targetPorts: ports };
}

export function labelSelectorString(selector: Record<string, string>): string {
  return Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',');
}

function isReady(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  if (!pod.status?.podIP) return false;
  return (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

function matches(labels: Record<string, string> | undefined, selector: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}

/** Ready pods matching the pool → one endpoint per (pod IP, target port). */
export function endpointsFromPods(spec: PoolSpec, pods: readonly V1Pod[]): EndpointSpec[] {
  const out: EndpointSpec[] = [];
  for (const pod of pods) {
    if (!isReady(pod) || !matches(pod.metadata?.labels, spec.selector)) continue;
    const labels = pod.metadata?.labels ?? {};
    const roleLabel = labels[ROLE_LABEL];
    const role: EndpointRole = roleLabel === 'prefill' || roleLabel === 'decode' ? roleLabel : 'both';
    spec.targetPorts.forEach((port, i) => {
      out.push({
        address: `${pod.status!.podIP}:${port}`,
        name: spec.targetPorts.length > 1 ? `${pod.metadata?.name}-rank-${i}` : (pod.metadata?.name ?? ''),
        role,
        labels,
      });
    });
  }
  return out.sort((a, b) => a.address.localeCompare(b.address));
}

function refersToPool(obj: Obj, poolName: string): boolean {
  const ref = obj.spec?.['poolRef'] as { name?: string } | undefined;
  return ref?.name === poolName;
}

/** InferenceModels and InferenceObjectives of the pool → model routes and objective priorities. */
export function directoryFrom(
  models: readonly Obj[],
  objectives: readonly Obj[],
  poolName: string,
): ModelDirectory {
  const routes = new Map<string, ModelRoute>();
  for (const m of models) {
    if (!refersToPool(m, poolName)) continue;
    const spec = m.spec ?? {};
    const name = spec['modelName'];
    if (typeof name !== 'string') continue;
    const c = spec['criticality'];
    const criticality: Criticality = c === 'Critical' || c === 'Sheddable' ? c : 'Standard';
    const targets = Array.isArray(spec['targetModels'])
      ? (spec['targetModels'] as { name?: unknown; weight?: unknown }[])
          .filter((t) => typeof t.name === 'string')
          .map((t) => ({ name: t.name as string, weight: typeof t.weight === 'number' ? t.weight : 1 }))
      : [];
    routes.set(name, { criticality, targets });
  }
  const priorities = new Map<string, number>();
  for (const o of objectives) {
    if (!refersToPool(o, poolName) || !o.metadata?.name) continue;
    const p = o.spec?.['priority'];
    priorities.set(o.metadata.name, typeof p === 'number' ? p : 0);
  }
  return { models: routes, objectives: priorities };
}

export { criticalityOfPriority };

export interface WatchOptions {
  name: string;
  namespace: string;
  kubeconfig?: string | undefined;
  logger: Logger;
  onEndpoints(specs: EndpointSpec[]): void;
  onDirectory(directory: ModelDirectory): void;
}

export interface KubernetesSource {
  close(): Promise<void>;
}

type Watched<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/** Starts an informer and restarts it after errors (a CRD not installed yet, an API server restart). */
function keepRunning<T extends KubernetesObject>(
  informer: Watched<T>,
  what: string,
  logger: Logger,
  closed: () => boolean,
): void {
  informer.on('error', (error: unknown) => {
    logger.debug({ err: String(error) }, `watch of ${what} failed; retrying`);
    setTimeout(() => {
      if (!closed()) informer.start().catch(() => undefined);
    }, 1000).unref();
  });
  informer.start().catch(() => undefined);
}

/** Watches the pool and its pods, models and objectives; resolves after the first list of each kind. */
export async function watchInferencePool(options: WatchOptions): Promise<KubernetesSource> {
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
    else kc.loadFromDefault();
  } catch (error) {
    throw new LlmisvcError('LLMISVC_ERR_CONFIG', `cannot load the kubeconfig: ${(error as Error).message}`, {
      hint: 'Pass --kubeconfig, or run inside a pod with a service account.',
    });
  }
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const { name, namespace, logger } = options;
  let closed = false;
  const isClosed = () => closed;
  const custList = (group: string, version: string, plural: string) => () =>
    custom.listNamespacedCustomObject({ group, version, namespace, plural }) as Promise<
      KubernetesListObject<Obj>
    >;

  const pools = [
    makeInformer<Obj>(
      kc,
      `/apis/inference.networking.k8s.io/v1/namespaces/${namespace}/inferencepools`,
      custList('inference.networking.k8s.io', 'v1', 'inferencepools'),
    ),
    makeInformer<Obj>(
      kc,
      `/apis/inference.networking.x-k8s.io/v1alpha2/namespaces/${namespace}/inferencepools`,
      custList('inference.networking.x-k8s.io', 'v1alpha2', 'inferencepools'),
    ),
  ];
  const models = makeInformer<Obj>(
    kc,
    `/apis/inference.networking.x-k8s.io/v1alpha2/namespaces/${namespace}/inferencemodels`,
    custList('inference.networking.x-k8s.io', 'v1alpha2', 'inferencemodels'),
  );
  const objectives = makeInformer<Obj>(
    kc,
    `/apis/inference.networking.x-k8s.io/v1alpha2/namespaces/${namespace}/inferenceobjectives`,
    custList('inference.networking.x-k8s.io', 'v1alpha2', 'inferenceobjectives'),
  );

  let podInformer: Watched<V1Pod> | undefined;
  let currentSelector = '';
  let spec: PoolSpec | undefined;

  const publishEndpoints = () =>
    options.onEndpoints(spec && podInformer ? endpointsFromPods(spec, podInformer.list(namespace)) : []);
  const publishDirectory = () =>
    options.onDirectory(directoryFrom(models.list(namespace), objectives.list(namespace), name));

  const onPoolChange = () => {
    const pool = pools.map((p) => p.get(name, namespace)).find((p) => p !== undefined);
    spec = pool ? poolSpecOf(pool) : undefined;
    const selector = spec ? labelSelectorString(spec.selector) : '';
    if (selector !== currentSelector) {
      currentSelector = selector;
      const old = podInformer;
      podInformer = undefined;
      if (old) void stopForGood(old as Watched<KubernetesObject>);
      if (selector) {
        const pods = makeInformer<V1Pod>(
          kc,
          `/api/v1/namespaces/${namespace}/pods`,
          () => core.listNamespacedPod({ namespace, labelSelector: selector }),
          selector,
        );
        for (const verb of ['add', 'update', 'delete'] as const)
          pods.on(verb, () => podInformer === pods && publishEndpoints());
        pods.on('connect', () => podInformer === pods && publishEndpoints());
        podInformer = pods;
        keepRunning(pods, 'pods', logger, isClosed);
      }
    }
    logger.info(
      { pool: name, namespace, selector, ports: spec?.targetPorts },
      spec ? 'InferencePool observed' : 'InferencePool not found yet',
    );
    publishEndpoints();
  };
  for (const p of pools) {
    for (const verb of ['add', 'update', 'delete', 'connect'] as const) p.on(verb as 'add', onPoolChange);
    keepRunning(p, 'InferencePool', logger, isClosed);
  }
  for (const inf of [models, objectives]) {
    for (const verb of ['add', 'update', 'delete', 'connect'] as const)
      inf.on(verb as 'add', publishDirectory);
    keepRunning(inf, 'InferenceModel/InferenceObjective', logger, isClosed);
  }
  return {
    async close() {
      closed = true;
      const informers: Watched<KubernetesObject>[] = [...pools, models, objectives];
      if (podInformer) informers.push(podInformer as Watched<KubernetesObject>);
      await Promise.all(informers.map(stopForGood));
    },
  };
}

/**
 * Stops an informer for good. client-node's ListWatch can outlive `stop()`: a stop that lands while it is listing
 * or opening its watch finds no request to abort, and the watch it opens a moment later then runs on (keeping the
 * process alive: seen as a test file that never exits). So after stopping, keep aborting any request that
 * appears, for a while, on an unref'd timer that never holds the process up.
 */
async function stopForGood(informer: Watched<KubernetesObject>): Promise<void> {
  await informer.stop().catch(() => undefined);
  const late = informer as unknown as { request?: unknown };
  const sweep = setInterval(() => {
    if (late.request) void informer.stop().catch(() => undefined);
  }, 50);
  sweep.unref();
  setTimeout(() => clearInterval(sweep), 30_000).unref();
}
