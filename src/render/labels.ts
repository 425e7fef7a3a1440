/**
 * @module render/labels
 * Labels, selectors and owner references of child objects, as KServe's controller sets them, so that tools and
 * users see familiar objects and the controller can find (and prune) what a service owns.
 */
import type { LLMInferenceService } from '../api/index.js';

export const PART_OF = 'llminferenceservice';
export const ROLE_LABEL = 'llm-d.ai/role';
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'llmisvc' } as const;

/** The pod roles the Endpoint Picker's prefill/decode filters select on. */
export type Role = 'both' | 'decode' | 'prefill';

/** Which part of a service an object or pod belongs to (`app.kubernetes.io/component`). */
export type Component =
  | 'llminferenceservice-workload'
  | 'llminferenceservice-workload-prefill'
  | 'llminferenceservice-workload-worker'
  | 'llminferenceservice-workload-worker-prefill'
  | 'llminferenceservice-router'
  | 'llminferenceservice-router-scheduler';

/** The labels every child carries: how the controller lists what a service owns. */
export function ownedLabels(service: LLMInferenceService): Record<string, string> {
  return { 'app.kubernetes.io/name': service.metadata.name, 'app.kubernetes.io/part-of': PART_OF };
}

/** Labels that select one component's pods. */
export function componentSelector(
  service: LLMInferenceService,
  component: Component,
): Record<string, string> {
  return { ...ownedLabels(service), 'app.kubernetes.io/component': component };
}

/**
 * The labels an InferencePool selects: the serving pods of a service (not LeaderWorkerSet workers), as KServe's
 * GetWorkloadLabelSelector and the shipped scheduler preset spell them.
 */
export function poolSelector(service: LLMInferenceService): Record<string, string> {
  return { ...ownedLabels(service), 'kserve.io/component': 'workload' };
}

/**
 * The controller owner reference to the service. Offline (`llmisvc render` on a file) the service has no uid
 * yet; the reference then leaves it out and the controller fills it in when it applies the children.
 */
export function ownerReference(service: LLMInferenceService) {
  return {
    apiVersion: service.apiVersion,
    kind: service.kind,
    name: service.metadata.name,
    ...(service.metadata.uid ? { uid: service.metadata.uid } : {}),
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Metadata of a child object: name, namespace, owned labels (plus extra) and the owner reference. */
export function childMetadata(
  service: LLMInferenceService,
  name: string,
  labels: Record<string, string> = {},
) {
  return {
    name,
    namespace: service.metadata.namespace ?? 'default',
    labels: { ...ownedLabels(service), ...labels },
    ownerReferences: [ownerReference(service)],
  };
}

/**
 * Prefixes of the service's own (top-level) annotations and labels its workloads carry too, as KServe propagates
 * them: secondary networks (Multus), Kueue admission, Prometheus scraping, KServe's local-model cache and, on a
 * LeaderWorkerSet, its own placement annotations (exclusive topology). Anything else on the service stays there.
 */
const PROPAGATED_ANNOTATION_PREFIXES = [
  'k8s.v1.cni.cncf.io',
  'kueue.x-k8s.io',
  'prometheus.io',
  'internal.serving.kserve.io/localmodel',
];
const PROPAGATED_LABEL_PREFIXES = ['kueue.x-k8s.io', 'internal.serving.kserve.io/localmodel'];
const LEADER_WORKER_SET_PREFIXES = ['leaderworkerset.sigs.k8s.io'];

function withPrefixes(
  from: Record<string, string> | undefined,
  prefixes: readonly string[],
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(from ?? {}).filter(([key]) => prefixes.some((prefix) => key.startsWith(prefix))),
  );
}

/** The service's annotations and labels a Deployment or LeaderWorkerSet (the object and its pods) carries. */
export function propagatedMetadata(
  service: LLMInferenceService,
  workload: 'Deployment' | 'LeaderWorkerSet',
): { labels: Record<string, string>; annotations: Record<string, string> } {
  const annotationPrefixes =
    workload === 'LeaderWorkerSet'
      ? [...LEADER_WORKER_SET_PREFIXES, ...PROPAGATED_ANNOTATION_PREFIXES]
      : PROPAGATED_ANNOTATION_PREFIXES;
  return {
    labels: withPrefixes(service.metadata.labels, PROPAGATED_LABEL_PREFIXES),
    annotations: withPrefixes(service.metadata.annotations, annotationPrefixes),
  };
}
