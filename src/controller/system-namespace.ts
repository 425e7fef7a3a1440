/**
 * @module controller/system-namespace
 * The controller's system namespace holds the leader-election Lease, the webhook certificate Secret, the presets and
 * the default Gateway. Installed with `kubectl apply -k deploy/`, it exists (the controller runs in it). Run from a
 * laptop against a fresh cluster (`llmisvc controller --kubeconfig K`), it may not: then the controller creates it
 * when its identity may (an admin kubeconfig), as `helm --create-namespace` would, and says so in its log. When it
 * may not, the caller decides: what cannot work without it fails at start with what to do, and services that need
 * it say so in their status.
 */
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/index.js';
import { CORE_RESOURCES, KubeApiError, isNotFound } from '../kube/index.js';
import { MANAGED_BY_LABEL } from './children.js';

/**
 * - `exists`: it is there.
 * - `created`: it was missing and the controller created it.
 * - `missing`: it is missing and the controller may not create it (403).
 * - `unknown`: the controller may not read namespaces (the least-privilege RBAC of deploy/, where it runs in the
 *   namespace, so it exists).
 */
export type SystemNamespaceState = 'exists' | 'created' | 'missing' | 'unknown';

const forbidden = (error: unknown): boolean => error instanceof KubeApiError && error.status === 403;

/** Checks the system namespace and creates it when it is missing and the identity may. */
export async function ensureSystemNamespace(
  client: KubeClient,
  name: string,
  logger: Logger,
): Promise<SystemNamespaceState> {
  try {
    await client.get(CORE_RESOURCES.namespace, undefined, name);
    return 'exists';
  } catch (error) {
    if (forbidden(error)) return 'unknown';
    if (!isNotFound(error)) throw error;
  }
  try {
    await client.create(CORE_RESOURCES.namespace, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { [MANAGED_BY_LABEL]: 'llmisvc' } },
    });
    logger.warn({ namespace: name }, `created the system namespace "${name}": it did not exist`);
    return 'created';
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 409) return 'exists'; // Created meanwhile.
    if (forbidden(error)) return 'missing';
    throw error;
  }
}
