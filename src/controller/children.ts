/**
 * @module controller/children
 * Pure decisions about child objects: which role a child plays (for status), which live objects belong to a service
 * (label + owner UID, never the name alone), and which of those must be pruned because the renderer no longer wants
 * them (for example a Deployment after the topology switched to a LeaderWorkerSet).
 */
import type { KubeObject } from '../kube/index.js';
import { groupKind } from '../kube/index.js';
import type { ChildRole } from './conditions.js';

export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
export const PART_OF_VALUE = 'llminferenceservice';
export const NAME_LABEL = 'app.kubernetes.io/name';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
/** Selects every object any service owns; child informers watch only these. */
export const CHILD_SELECTOR = `${PART_OF_LABEL}=${PART_OF_VALUE}`;

const COMPONENT_ROLES: Record<string, ChildRole> = {
  'llminferenceservice-workload': 'main-workload',
  'llminferenceservice-workload-worker': 'worker-workload',
  'llminferenceservice-workload-prefill': 'prefill-workload',
  'llminferenceservice-workload-worker-prefill': 'prefill-worker-workload',
  'llminferenceservice-router-scheduler': 'scheduler-workload',
};

/**
 * The role of a child: from its component label when the renderer sets one, otherwise from its kind and the name
 * suffix the renderer gives it (suffixes survive the shortening of long names).
 */
export function childRole(child: KubeObject): ChildRole {
  const component = child.metadata.labels?.[COMPONENT_LABEL];
  const kind = child.kind;
  if (kind === 'HTTPRoute') return 'route';
  if (kind === 'InferencePool') return 'pool';
  if (kind !== 'Deployment' && kind !== 'LeaderWorkerSet') return 'other';
  if (component && COMPONENT_ROLES[component]) return COMPONENT_ROLES[component];
  const name = child.metadata.name;
  if (name.endsWith('-router-scheduler')) return 'scheduler-workload';
  if (name.endsWith('-prefill')) return 'prefill-workload';
  return 'main-workload';
}

/** `group/Kind/name`: identity of a child inside one namespace, independent of API version. */
export function childId(object: KubeObject): string {
  return `${groupKind(object.apiVersion, object.kind)}/${object.metadata.name}`;
}

/** True when `object` is controlled by the service with `uid` (owner reference, not just a matching label). */
export function isOwnedBy(object: KubeObject, uid: string): boolean {
  return (object.metadata.ownerReferences ?? []).some(
    (o) => o.uid === uid && o.kind === 'LLMInferenceService',
  );
}

/** The service a child belongs to, as a work-queue key, from its controller owner reference. */
export function ownerKey(object: KubeObject): string | undefined {
  const owner = (object.metadata.ownerReferences ?? []).find(
    (o) => o.kind === 'LLMInferenceService' && o.apiVersion.startsWith('serving.kserve.io/'),
  );
  if (!owner || !object.metadata.namespace) return undefined;
  return `${object.metadata.namespace}/${owner.name}`;
}

/**
 * The live objects to delete: owned by the service (`uid`) and not among the desired children.
 * @example planPrune([deployment], [lws, deployment], uid) // → [] ; planPrune([lws], [deployment], uid) // → [deployment]
 */
export function planPrune(
  desired: readonly KubeObject[],
  live: readonly KubeObject[],
  uid: string,
): KubeObject[] {
  const wanted = new Set(desired.map(childId));
  return live.filter((o) => isOwnedBy(o, uid) && !wanted.has(childId(o)) && !o.metadata.deletionTimestamp);
}
