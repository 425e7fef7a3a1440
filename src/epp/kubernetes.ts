/**
 * @module epp/kubernetes
 * Kubernetes mode: watches the InferencePool (v1 `inference.networking.k8s.io` or v1alpha2
 * `inference.networking.x-k8s.io`), the Ready pods its selector matches, and the InferenceModel (v1alpha2),
 * InferenceObjective (GIE's and llm-d.ai's) and InferenceModelRewrite objects that apply to the pool, and turns them
 * into endpoint specs and a model directory.
 * The translation is pure (exported for tests); the informers (`kube/`, as the controller's) are the thin edge.
 */
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import {
  CORE_RESOURCES,
  Informer,
  KubeClient,
  labelSelectorString,
  type KubeObject,
  type ResourceRef,
} from '../kube/index.js';
import { isRecord } from './is-record.js';
import type { EndpointSpec } from './datastore.js';
import {
  criticalityOfPriority,
  type ModelDirectory,
  type ModelRewrites,
  type ModelRoute,
  type ModelTarget,
} from './director.js';
import { matchesSelector, readMatchExpressions, type LabelSelector } from './plugins/index.js';
import type { Criticality, EndpointRole } from './types.js';

export const ROLE_LABEL = 'llm-d.ai/role';

/** The parts of an InferencePool the EPP uses, across API versions. */
export interface PoolSpec {
  selector: Record<string, string>;
  targetPorts: number[];
}

/** What the pure functions read of a pool, model, objective or rewrite (any version). */
type Obj = { metadata?: { name?: string; creationTimestamp?: string }; spec?: Record<string, unknown> };
type Watched = KubeObject & Obj;

/** The parts of a Pod the EPP reads. */
export interface Pod extends KubeObject {
  metadata: KubeObject['metadata'] & { labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}

/** GIE v1's CRD allows at most this many `targetPorts` (`maxItems`); the EPP holds to it whatever the schema says. */
export const MAX_TARGET_PORTS = 8;

/**
 * Reads selector and ports from a v1 or v1alpha2 InferencePool. Ports outside 1–65535 or not integers, repeats, and
 * ports past the first MAX_TARGET_PORTS are left out and reported through `problem` (GIE's CRD refuses them, but the
 * CRD installed may be another's): each port is one endpoint per pod, scraped on its own.
 */
export function poolSpecOf(
  pool: Obj,
  problem: (field: string, message: string) => void = () => undefined,
): PoolSpec | undefined {
  const spec = pool.spec ?? {};
  const selector = spec['selector'] as Record<string, unknown> | undefined;
  if (!selector) return undefined;
  // v1: selector.matchLabels; v1alpha2: the selector is the label map itself.
  const labels =
    (selector['matchLabels'] as Record<string, string> | undefined) ?? (selector as Record<string, string>);
  const candidates: [string, unknown][] = [];
  const targetPorts = spec['targetPorts'];
  if (Array.isArray(targetPorts))
    targetPorts.forEach((p, i) => candidates.push([`spec.targetPorts[${i}].number`, p?.number]));
  if (spec['targetPortNumber'] !== undefined)
    candidates.push(['spec.targetPortNumber', spec['targetPortNumber']]);
  const ports: number[] = [];
  let problems = 0;
  for (const [i, [field, port]] of candidates.entries()) {
    if (ports.length === MAX_TARGET_PORTS || problems === MAX_TARGET_PORTS) {
      problem(field, `ignored with the ${candidates.length - i - 1} after it: too many ports`);
      break;
    }
    const fault =
      !Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535
        ? `${JSON.stringify(port)?.slice(0, 40)} is not a port number (1-65535)`
        : ports.includes(port as number)
          ? `port ${port as number} is listed already`
          : undefined;
    if (fault === undefined) ports.push(port as number);
    else {
      problems += 1;
      problem(field, `ignored: ${fault}`);
    }
  }
  if (ports.length === 0 || Object.keys(labels).length === 0) return undefined;
  return { selector: { ...labels }, targetPorts: ports };
}

/** Ready, not being deleted, with an IP: what the pod informer keeps (an unready pod costs its author nothing). */
export function isReady(pod: Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  if (!pod.status?.podIP) return false;
  return (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/**
 * What the EPP reads of a pod (name, labels, deletion, IP, conditions): the rest — annotations of up to 256 KiB,
 * managed fields, the spec — is its author's to size, and would sit in the cache of every pool member.
 */
export function slimPod(pod: Pod): Pod {
  const { name, namespace, labels, resourceVersion, uid, deletionTimestamp } = pod.metadata;
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: { name, namespace, labels, resourceVersion, uid, deletionTimestamp },
    status: { podIP: pod.status?.podIP, conditions: pod.status?.conditions },
  };
}

/**
 * The pod's IP as the host part of an endpoint address (IPv6 in brackets), or undefined when `status.podIP` is not an
 * IP address as `net.isIP` reads one: the API server's legacy validation admits e.g. `010.0.0.1`, which `net.connect`
 * (through getaddrinfo) reads as octal, 8.0.0.1 — an address outside the pool.
 */
export function podHost(pod: Pod): string | undefined {
  const ip = pod.status?.podIP;
  if (typeof ip !== 'string') return undefined;
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family === 6) return `[${ip}]`;
  return undefined;
}

function matches(labels: Record<string, string> | undefined, selector: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}

/** Ready pods matching the pool → one endpoint per (pod IP, target port). */
export function endpointsFromPods(spec: PoolSpec, pods: readonly Pod[]): EndpointSpec[] {
  const out: EndpointSpec[] = [];
  for (const pod of pods) {
    const host = podHost(pod);
    if (!isReady(pod) || host === undefined || !matches(pod.metadata?.labels, spec.selector)) continue;
    const labels = pod.metadata?.labels ?? {};
    const roleLabel = labels[ROLE_LABEL];
    const role: EndpointRole = roleLabel === 'prefill' || roleLabel === 'decode' ? roleLabel : 'both';
    spec.targetPorts.forEach((port, i) => {
      out.push({
        address: `${host}:${port}`,
        name: spec.targetPorts.length > 1 ? `${pod.metadata?.name}-rank-${i}` : (pod.metadata?.name ?? ''),
        role,
        labels,
      });
    });
  }
  return out.sort((a, b) => a.address.localeCompare(b.address));
}

/** The pool the EPP serves, as objects refer to it: by name, or (llm-d.ai's objectives) by its labels. */
export interface PoolIdentity {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/**
 * A Kubernetes label selector as written, or undefined when it is malformed (a non-string label value, an expression
 * the config loader would refuse: an unknown operator, In/NotIn without values, …): such a selector selects nothing,
 * as Kubernetes refuses to turn it into one — an objective must not apply to more pools than its author wrote.
 */
function labelSelectorOf(raw: unknown): LabelSelector | undefined {
  if (!isRecord(raw)) return undefined;
  const labels = raw['matchLabels'] ?? {};
  if (!isRecord(labels) || !Object.values(labels).every((v) => typeof v === 'string')) return undefined;
  let malformed = false;
  const matchExpressions = readMatchExpressions(raw['matchExpressions'] ?? [], () => {
    malformed = true;
  });
  if (malformed) return undefined;
  return { matchLabels: labels as Record<string, string>, matchExpressions };
}

/**
 * Whether an object applies to the pool: its `poolRef` names it (GIE), or — llm-d.ai's InferenceObjective — an entry
 * of `poolRefs` does, or its `poolSelector` matches the pool's labels (an empty selector: every pool).
 */
function refersToPool(obj: Obj, pool: PoolIdentity): boolean {
  if (namesPool(obj, pool.name)) return true;
  const raw = obj.spec?.['poolSelector'];
  const selector = raw == null ? undefined : labelSelectorOf(raw);
  return selector !== undefined && matchesSelector(pool.labels, selector);
}

/** Whether `poolRef` (GIE) or an entry of `poolRefs` (llm-d.ai) names the pool. */
function namesPool(obj: Obj, poolName: string): boolean {
  const spec = obj.spec ?? {};
  if ((spec['poolRef'] as { name?: string } | undefined)?.name === poolName) return true;
  const refs = spec['poolRefs'];
  return Array.isArray(refs) && refs.some((r) => (r as { name?: string } | null)?.name === poolName);
}

/**
 * Whether a model, objective or rewrite may apply to the pool named `poolName`, whatever the pool's labels: it names
 * the pool (`poolRef`, `poolRefs`) or selects pools by label (`poolSelector`, judged when the directory is built, as
 * the pool's labels can change). The EPP's caches hold only these: objects for other pools of the namespace are a
 * namespace user's to multiply.
 */
export function mayReferToPool(obj: Obj, poolName: string): boolean {
  return namesPool(obj, poolName) || obj.spec?.['poolSelector'] != null;
}

/**
 * What the EPP's caches hold of a model, objective or rewrite: name, identity and spec (the directory reads nothing
 * else); annotations of up to 256 KiB, managed fields and status are their author's to size.
 */
export function slimDirectoryObject<T extends Watched>(obj: T): T {
  const { name, namespace, resourceVersion, uid, creationTimestamp } = obj.metadata;
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: { name, namespace, resourceVersion, uid, creationTimestamp },
    spec: obj.spec,
  } as T;
}

/**
 * InferenceModels, InferenceObjectives and InferenceModelRewrites of the pool → the model directory. Objectives come
 * in GIE's group and llm-d's (`llm-d.ai`); of two with one name, the later in the list wins.
 */
export function directoryFrom(
  models: readonly Obj[],
  objectives: readonly Obj[],
  pool: PoolIdentity,
  rewrites: readonly Obj[] = [],
): ModelDirectory {
  const routes = new Map<string, ModelRoute>();
  for (const m of models) {
    if (!refersToPool(m, pool)) continue;
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
    if (!refersToPool(o, pool) || !o.metadata?.name) continue;
    const p = o.spec?.['priority'];
    priorities.set(o.metadata.name, typeof p === 'number' ? p : 0);
  }
  return { models: routes, objectives: priorities, rewrites: rewritesFrom(rewrites, pool) };
}

/** A rule's `targets`; weights are optional as long as none is given (then every target weighs 1). */
function rewriteTargets(raw: unknown): ModelTarget[] {
  if (!Array.isArray(raw)) return [];
  return (raw as { modelRewrite?: unknown; weight?: unknown }[])
    .filter((t) => typeof t?.modelRewrite === 'string' && t.modelRewrite !== '')
    .map((t) => ({
      name: t.modelRewrite as string,
      weight: typeof t.weight === 'number' && t.weight > 0 ? t.weight : 1,
    }));
}

/**
 * The pool's InferenceModelRewrites merged as GIE specifies: an exact model match wins over a generic rule (one with
 * no matches); between objects, the oldest (by creation time, then name) wins; within one, the first rule in order.
 * A rule without targets rewrites nothing and is skipped.
 */
export function rewritesFrom(rewrites: readonly Obj[], pool: PoolIdentity): ModelRewrites {
  const exact = new Map<string, ModelTarget[]>();
  let generic: ModelTarget[] | undefined;
  const ordered = rewrites
    .filter((r) => refersToPool(r, pool))
    .sort(
      (a, b) =>
        (a.metadata?.creationTimestamp ?? '').localeCompare(b.metadata?.creationTimestamp ?? '') ||
        (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
    );
  for (const r of ordered) {
    const rules = Array.isArray(r.spec?.['rules']) ? (r.spec['rules'] as Record<string, unknown>[]) : [];
    for (const rule of rules) {
      const targets = rewriteTargets(rule?.['targets']);
      if (targets.length === 0) continue;
      const matches = Array.isArray(rule['matches']) ? (rule['matches'] as Record<string, unknown>[]) : [];
      if (matches.length === 0) {
        generic ??= targets;
        continue;
      }
      for (const m of matches) {
        const model = m?.['model'] as { type?: unknown; value?: unknown } | undefined;
        // "Exact" is the only match type (and the default).
        if (typeof model?.value !== 'string' || (model.type !== undefined && model.type !== 'Exact'))
          continue;
        if (!exact.has(model.value)) exact.set(model.value, targets);
      }
    }
  }
  return { exact, generic };
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

const POOLS: ResourceRef[] = [
  {
    group: 'inference.networking.k8s.io',
    version: 'v1',
    plural: 'inferencepools',
    kind: 'InferencePool',
    namespaced: true,
  },
  {
    group: 'inference.networking.x-k8s.io',
    version: 'v1alpha2',
    plural: 'inferencepools',
    kind: 'InferencePool',
    namespaced: true,
  },
];
const MODELS: ResourceRef = {
  group: 'inference.networking.x-k8s.io',
  version: 'v1alpha2',
  plural: 'inferencemodels',
  kind: 'InferenceModel',
  namespaced: true,
};
const OBJECTIVES: ResourceRef = { ...MODELS, plural: 'inferenceobjectives', kind: 'InferenceObjective' };
/** llm-d-router's own InferenceObjective (llm-d.ai): GIE's, plus `poolRefs` and `poolSelector`. */
const LLMD_OBJECTIVES: ResourceRef = { ...OBJECTIVES, group: 'llm-d.ai', version: 'v1alpha2' };
const REWRITES: ResourceRef = { ...MODELS, plural: 'inferencemodelrewrites', kind: 'InferenceModelRewrite' };

/**
 * Watches the pool and its pods, models, objectives and rewrites. A kind whose CRD is not installed (one of the two
 * pool versions, InferenceModel on GIE v1, InferenceModelRewrite before GIE v1.1, every x-k8s.io kind on GIE v1.6,
 * which moved InferenceObjective and InferenceModelRewrite to llm-d-router) is checked for again at the informer's
 * back-off pace, quietly, so it is picked up once installed.
 */
export async function watchInferencePool(options: WatchOptions): Promise<KubernetesSource> {
  // Without --kubeconfig: $KUBECONFIG, ~/.kube/config, else the pod's service account.
  const client = await KubeClient.create({
    ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
    userAgent: 'llmisvc-epp',
  });
  const { name, namespace, logger } = options;
  const informerOptions = { namespace, logger, maxBackoffMs: 10_000 };
  // Every pool of the namespace arrives over the watch; only ours is kept (and said).
  const pools = POOLS.map(
    (ref) =>
      new Informer<Watched>(client, ref, {
        ...informerOptions,
        keep: (pool: Watched) => pool.metadata.name === name,
      }),
  );
  const directoryOptions = {
    ...informerOptions,
    keep: (obj: Watched) => mayReferToPool(obj, name),
    slim: slimDirectoryObject<Watched>,
  };
  const models = new Informer<Watched>(client, MODELS, directoryOptions);
  const objectives = new Informer<Watched>(client, OBJECTIVES, directoryOptions);
  const llmdObjectives = new Informer<Watched>(client, LLMD_OBJECTIVES, directoryOptions);
  const rewrites = new Informer<Watched>(client, REWRITES, directoryOptions);

  let podInformer: Informer<Pod> | undefined;
  let currentSelector = '';
  let spec: PoolSpec | undefined;
  let poolLabels: Readonly<Record<string, string>> = {};

  const publishEndpoints = () =>
    options.onEndpoints(spec && podInformer ? endpointsFromPods(spec, podInformer.list()) : []);
  const publishDirectory = () =>
    options.onDirectory(
      directoryFrom(
        models.list(),
        [...objectives.list(), ...llmdObjectives.list()],
        { name, labels: poolLabels },
        rewrites.list(),
      ),
    );

  const onPoolChange = () => {
    const pool = pools.map((p) => p.get(namespace, name)).find((p) => p !== undefined);
    spec = pool
      ? poolSpecOf(pool, (field, message) =>
          logger.warn({ pool: name, namespace, field }, `InferencePool ${field}: ${message}`),
        )
      : undefined;
    const labels = (pool?.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};
    // llm-d.ai objectives may select the pool by its labels.
    if (labelSelectorString(labels) !== labelSelectorString(poolLabels)) {
      poolLabels = labels;
      publishDirectory();
    }
    const selector = spec ? labelSelectorString(spec.selector) : '';
    if (selector !== currentSelector) {
      currentSelector = selector;
      void podInformer?.stop();
      podInformer = undefined;
      if (selector) {
        const pods = new Informer<Pod>(client, CORE_RESOURCES.pod, {
          ...informerOptions,
          labelSelector: selector,
          slim: slimPod,
          // Only Ready pods are cached: anyone who may create pods may create matching ones that never run.
          keep: (pod: Pod) => {
            if (!isReady(pod)) return false;
            if (podHost(pod) !== undefined) return true;
            logger.warn(
              {
                pod: pod.metadata.name,
                namespace,
                field: 'status.podIP',
                value: String(pod.status?.podIP).slice(0, 64),
              },
              'ignoring pod: status.podIP is not an IP address',
            );
            return false;
          },
        });
        const publish = () => podInformer === pods && publishEndpoints();
        pods.addHandlers({ add: publish, update: publish, delete: publish });
        podInformer = pods;
        pods.start();
      }
    }
    logger.info(
      { pool: name, namespace, selector, ports: spec?.targetPorts },
      spec ? 'InferencePool observed' : 'InferencePool not found yet',
    );
    publishEndpoints();
  };
  for (const p of pools) p.addHandlers({ add: onPoolChange, update: onPoolChange, delete: onPoolChange });
  const directorySources = [models, objectives, llmdObjectives, rewrites];
  for (const inf of directorySources)
    inf.addHandlers({ add: publishDirectory, update: publishDirectory, delete: publishDirectory });
  for (const inf of [...pools, ...directorySources]) inf.start();
  return {
    async close() {
      await Promise.all(
        [...pools, ...directorySources, ...(podInformer ? [podInformer] : [])].map((i) => i.stop()),
      );
      client.close();
    },
  };
}
