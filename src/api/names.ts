/**
 * @module api/names
 * Child object names. Every child is named `<service><suffix>` and must be a DNS label of at most 63 characters;
 * when the plain name is longer, the service part is cut and a hash of the whole service name keeps it unique
 * and stable (the scheme of Knative's kmeta.ChildName, which KServe uses too).
 */
import { createHash } from 'node:crypto';

const MAX_LENGTH = 63;

/**
 * `<parent><suffix>`, shortened with a stable hash when longer than 63 characters.
 * @example childName('llama', '-kserve') // 'llama-kserve'
 */
export function childName(parent: string, suffix: string): string {
  const plain = parent + suffix;
  if (plain.length <= MAX_LENGTH) return plain;
  const hash = createHash('md5').update(parent).digest('hex');
  if (suffix.length + hash.length >= MAX_LENGTH) {
    // The suffix alone is too long to keep: hash the whole name instead.
    return (parent.slice(0, MAX_LENGTH - hash.length) + hash).slice(0, MAX_LENGTH);
  }
  const head = parent.slice(0, MAX_LENGTH - hash.length - suffix.length).replace(/-+$/, '');
  return head + hash + suffix;
}

/** The names of every child of a service, in one place so that no two modules compute them differently. */
export function childNames(service: string) {
  return {
    mainWorkload: childName(service, '-kserve'),
    prefillWorkload: childName(service, '-kserve-prefill'),
    multiNode: childName(service, '-kserve-mn'),
    multiNodePrefill: childName(service, '-kserve-mn-prefill'),
    workloadService: childName(service, '-kserve-workload-svc'),
    inferencePool: childName(service, '-inference-pool'),
    inferenceModel: childName(service, '-inference-model'),
    scheduler: childName(service, '-kserve-router-scheduler'),
    eppService: childName(service, '-epp-service'),
    eppServiceAccount: childName(service, '-epp-sa'),
    eppRole: childName(service, '-epp-role'),
    eppRoleBinding: childName(service, '-epp-rolebinding'),
    eppConfig: childName(service, '-epp-config'),
    route: childName(service, '-kserve-route'),
  };
}
