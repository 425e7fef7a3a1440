/**
 * @module kube/resources
 * Plain data about Kubernetes objects and where they live in the REST API: the object shape the controller
 * handles, a resource reference (group, version, plural, scope) and the paths built from it.
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
  managedFields?: unknown[];
  [key: string]: unknown;
}

/** Any Kubernetes object; fields beyond metadata are left open. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** Where a kind lives in the API: enough to build every path for it. */
export interface ResourceRef {
  /** '' for the core group. */
  group: string;
  version: string;
  kind: string;
  /** Lower-case plural, as in the URL. */
  plural: string;
  namespaced: boolean;
}

/** Splits `apps/v1` into group `apps`, version `v1`; `v1` is the core group. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

export function apiVersionOf(ref: { group: string; version: string }): string {
  return ref.group ? `${ref.group}/${ref.version}` : ref.version;
}

/** `group/Kind` — the identity of a kind independent of version. */
export function groupKind(apiVersion: string, kind: string): string {
  return `${splitApiVersion(apiVersion).group}/${kind}`;
}

/**
 * The REST path of a collection (no name) or an object, optionally a subresource.
 * @example resourcePath(deployments, 'ns', 'web', 'status') // '/apis/apps/v1/namespaces/ns/deployments/web/status'
 */
export function resourcePath(
  ref: ResourceRef,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  let path = ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
  if (ref.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${ref.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}

/** `namespace/name` (or `name` for cluster-scoped objects), the key used by caches and the work queue. */
export function objectKey(object: { metadata: { namespace?: string; name: string } }): string {
  return object.metadata.namespace
    ? `${object.metadata.namespace}/${object.metadata.name}`
    : object.metadata.name;
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf('/');
  return slash < 0
    ? { namespace: undefined, name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Resources the controller itself always uses (built-in, no discovery needed). */
export const CORE_RESOURCES = {
  namespace: { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false },
  pod: { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
  event: { group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true },
  lease: { group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true },
  crd: {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    kind: 'CustomResourceDefinition',
    plural: 'customresourcedefinitions',
    namespaced: false,
  },
  validatingWebhookConfiguration: {
    group: 'admissionregistration.k8s.io',
    version: 'v1',
    kind: 'ValidatingWebhookConfiguration',
    plural: 'validatingwebhookconfigurations',
    namespaced: false,
  },
  secret: { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
} satisfies Record<string, ResourceRef>;

/**
 * A label map as a label selector (`a=1,b=2`, sorted, so equal maps give equal strings).
 * @example labelSelectorString({ b: '2', a: '1' }) // 'a=1,b=2'
 */
export function labelSelectorString(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',');
}
