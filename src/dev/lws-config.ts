/**
 * @module dev/lws-config
 * What the LeaderWorkerSet controller of `llmisvc dev cluster` runs with, as plain data: its configuration file,
 * its webhook configurations rewritten from in-cluster Services to a loopback URL with a CA bundle the API server
 * trusts, and its RBAC bound to the user it authenticates as. The manifests come from the `sigs.k8s.io/lws` module
 * (see dev/cluster-assets); pure: the caller reads and writes the files.
 */
import { parse, parseAllDocuments, stringify } from 'yaml';
import { COMPONENT_USERS } from './pki.js';

/** The user the LWS manager authenticates as (a static token, like the other controllers). */
export const LWS_USER = COMPONENT_USERS.leaderWorkerSet;
/** What upstream's kustomization prefixes every object name with. */
const NAME_PREFIX = 'lws-';

export function lwsConfiguration(input: {
  webhookPort: number;
  healthPort: number;
  certDir: string;
}): string {
  return stringify({
    apiVersion: 'config.lws.x-k8s.io/v1alpha1',
    kind: 'Configuration',
    // One replica that lives as long as the cluster.
    leaderElection: { leaderElect: false },
    // The serving certificate is made here and trusted through caBundle; its own rotation would want a Service.
    internalCertManagement: { enable: false },
    webhook: { host: '127.0.0.1', port: input.webhookPort, certDir: input.certDir },
    // "0" turns the metrics server off: nothing scrapes it here and it would take a port on every interface.
    metrics: { bindAddress: '0' },
    health: { healthProbeBindAddress: `127.0.0.1:${input.healthPort}` },
  });
}

interface Webhook {
  name: string;
  clientConfig: { service?: { path?: string }; url?: string; caBundle?: string };
  [key: string]: unknown;
}

interface WebhookConfiguration {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  webhooks: Webhook[];
}

interface PatchOperation {
  op: string;
  path: string;
  value?: unknown;
}

/** Applies the `replace` operations of a JSON patch (all upstream's webhook patches use). */
export function applyReplaceOperations<T>(object: T, operations: readonly PatchOperation[]): T {
  const result = structuredClone(object) as Record<string, unknown>;
  for (const { op, path, value } of operations) {
    if (op !== 'replace') throw new Error(`unsupported JSON patch operation ${op} at ${path}`);
    const keys = path.split('/').slice(1);
    const last = keys.pop();
    let target: Record<string, unknown> | unknown[] = result;
    for (const key of keys) target = target[key] as Record<string, unknown>;
    if (last === undefined || target === undefined || !(last in target)) {
      throw new Error(`JSON patch path ${path} does not exist`);
    }
    target[last] = structuredClone(value);
  }
  return result as T;
}

/**
 * The Mutating- and ValidatingWebhookConfiguration of LWS as upstream's kustomization makes them (name prefix, the
 * patches that narrow the pod webhooks to pods with the `leaderworkerset.sigs.k8s.io/name` label), but pointing at
 * `baseUrl` (`https://127.0.0.1:PORT`) with `caPem` as the CA bundle.
 */
export function lwsWebhookConfigurations(input: {
  manifests: string;
  mutatingPatch: string;
  validatingPatch: string;
  baseUrl: string;
  caPem: string;
}): WebhookConfiguration[] {
  const caBundle = Buffer.from(input.caPem, 'utf8').toString('base64');
  const patches: Record<string, PatchOperation[]> = {
    MutatingWebhookConfiguration: parse(input.mutatingPatch) as PatchOperation[],
    ValidatingWebhookConfiguration: parse(input.validatingPatch) as PatchOperation[],
  };
  return parseAllDocuments(input.manifests)
    .map((doc) => doc.toJS() as WebhookConfiguration | null)
    .filter((doc): doc is WebhookConfiguration => !!doc && doc.kind in patches)
    .map((doc) => {
      const patched = applyReplaceOperations(doc, patches[doc.kind]!);
      return {
        ...patched,
        metadata: { ...patched.metadata, name: NAME_PREFIX + patched.metadata.name },
        webhooks: patched.webhooks.map((webhook) => ({
          ...webhook,
          clientConfig: { url: `${input.baseUrl}${webhook.clientConfig.service?.path ?? '/'}`, caBundle },
        })),
      };
    });
}

/** Upstream's manager ClusterRole (prefixed like its kustomization does) and a binding of it to LWS_USER. */
export function lwsRbac(roleManifest: string): Record<string, unknown>[] {
  const role = parse(roleManifest) as { metadata: { name: string } } & Record<string, unknown>;
  const name = NAME_PREFIX + role.metadata.name;
  return [
    { ...role, metadata: { ...role.metadata, name } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: LWS_USER }],
    },
  ];
}
