/**
 * @module dev/envoy-gateway
 * Envoy Gateway in `llmisvc dev cluster`: upstream's `envoy-gateway server` with its Kubernetes provider, run out of
 * cluster against the dev API server, as the Gateway API + Inference Extension provider of the dependency plan
 * (deps/matrix `envoy-gateway`: its GatewayClass `eg` comes from there).
 *
 * How it runs on a shared machine without containers: Envoy Gateway listens on fixed ports (8081 health, 18000
 * xDS, 18002 Wasm, 19000 admin, 19001 metrics) and reads its xDS certificate from the fixed path /certs. So it runs
 * in its own user, network, mount and pid namespaces (`unshare`, no root needed where user namespaces are allowed):
 * its ports are its own, so several dev clusters (and other programs) can run side by side; its root is a tmpfs
 * holding bind mounts of the host's top-level folders plus this cluster's /certs, so nothing is written outside the
 * cluster folder. It reaches the API server through a Unix socket bridged to the host's loopback (dev/socket-bridge),
 * under the same address, so the kubeconfig and the server certificate work unchanged. When its `unshare` parent
 * dies, the kernel kills everything in the namespace.
 *
 * Beside it, in this process, two small status writers stand in for what a real cluster has and this machine
 * cannot run (see dev/envoy-gateway-config): load-balancer addresses for LoadBalancer Services (cloud-provider-kind's
 * job on kind), and InferencePool parent status (Envoy AI Gateway's controller's job, which the Go module proxy does
 * not serve). Each is represented in the cluster by the Deployment its real counterpart has, so `llmisvc deps
 * verify` sees the provider installed the way the plan installs it.
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Server } from 'node:net';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { COMPONENTS, PROVIDER_FACTS } from '../deps/index.js';
import { LlmisvcError } from '../errors/index.js';
import { KubeClient, statusMessage } from '../kube/index.js';
import { failExited, logTail, startProcess, type ManagedProcess } from '../process/index.js';
import type { DevApiServer } from './apiserver.js';
import {
  ENVOY_GATEWAY_CONFIG_DIRS,
  ENVOY_GATEWAY_VERSION,
  type EnvoyGatewayAssets,
} from './cluster-assets.js';
import {
  allocateLoadBalancerIps,
  crdObjects,
  ENVOY_GATEWAY_NAMESPACE,
  envoyGatewayConfig,
  PLAYED_BY,
  inferencePoolParents,
  sameParents,
  stripHelmGuards,
  type PoolLike,
  type RouteLike,
} from './envoy-gateway-config.js';
import { installManifests } from './manifests.js';
import { startEgExtension } from './eg-extension.js';
import { startGatewayProxies } from './eg-proxies.js';
import { pollEvery } from './poll.js';
import { writeSecretFiles } from './private-files.js';
import { ServiceProxies } from './service-proxy.js';
import { SOCKET_BRIDGE_SCRIPT, serveUnixToTcp } from './socket-bridge.js';

const FACTS = PROVIDER_FACTS['envoy-gateway'];
const AI_GATEWAY_NAMESPACE = 'envoy-ai-gateway-system';
const AI_GATEWAY_DEPLOYMENT = 'ai-gateway-controller';

export interface RunningEnvoyGateway {
  process: ManagedProcess;
  /** Stops the status writers, Envoy Gateway and the API bridge. */
  stop(): Promise<void>;
}

/**
 * The shell that runs inside the namespaces: loopback up, a private root with /certs, the API bridge, then Envoy
 * Gateway as the namespace's pid 1. Everything it needs comes from the environment (EG_*), so nothing is quoted.
 */
export const NAMESPACE_SCRIPT = [
  'set -e',
  'ip link set lo up',
  'mount -t tmpfs eg-root "$EG_ROOT"',
  'for e in /*; do',
  '  n="$EG_ROOT$e"',
  '  if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$n"',
  '  elif [ -d "$e" ]; then mkdir "$n"; mount --rbind "$e" "$n"',
  '  fi',
  'done',
  'mkdir "$EG_ROOT/certs"',
  'mount --bind "$EG_CERTS" "$EG_ROOT/certs"',
  'rm -f "$EG_BRIDGE_READY"',
  '"$EG_NODE" "$EG_BRIDGE" tcp-to-unix 127.0.0.1 "$EG_API_PORT" "$EG_API_SOCKET" "$EG_BRIDGE_READY" &',
  // The gateway proxies, on the host, reach the xDS server through this socket.
  '"$EG_NODE" "$EG_BRIDGE" unix-to-tcp "$EG_XDS_SOCKET" 127.0.0.1 18000 &',
  // Envoy Gateway gives up at once when the API server does not answer: start it once the bridge listens.
  'i=0',
  'while [ ! -e "$EG_BRIDGE_READY" ]; do',
  '  i=$((i + 1)); [ "$i" -le 600 ] || { echo "the API bridge did not start" >&2; exit 1; }',
  '  sleep 0.05',
  'done',
  'cd "$EG_ROOT"',
  'exec chroot "$EG_ROOT" "$EG_BINARY" server --config-path "$EG_CONFIG"',
].join('\n');

/** The objects installed before Envoy Gateway starts: its namespaces, CRDs, stand-in Deployments and GatewayClass. */
export function envoyGatewayInstallObjects(crdYaml: string): Record<string, unknown>[] {
  const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  const apply = COMPONENTS['envoy-gateway'].apply;
  const classes = apply.kind === 'helm' ? [...(apply.objects ?? [])] : [];
  return [
    namespace(ENVOY_GATEWAY_NAMESPACE),
    namespace(AI_GATEWAY_NAMESPACE),
    ...crdObjects(crdYaml),
    standInDeployment(
      ENVOY_GATEWAY_NAMESPACE,
      FACTS.deployment,
      `docker.io/envoyproxy/gateway:${ENVOY_GATEWAY_VERSION}`,
      `the envoy-gateway process of llmisvc dev cluster (${ENVOY_GATEWAY_VERSION}, Kubernetes provider)`,
    ),
    standInDeployment(
      AI_GATEWAY_NAMESPACE,
      AI_GATEWAY_DEPLOYMENT,
      'docker.io/envoyproxy/ai-gateway-controller:v0.5.0',
      'llmisvc dev cluster: InferencePool parent status derived from the HTTPRoute status Envoy Gateway writes',
    ),
    ...(classes as Record<string, unknown>[]),
  ];
}

/**
 * A Deployment whose one pod KWOK plays, standing for a controller that runs as a process here; the annotation
 * says what really plays it.
 */
function standInDeployment(namespace: string, name: string, image: string, playedBy: string) {
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/managed-by': 'llmisvc-dev' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels, annotations: { [PLAYED_BY]: playedBy } },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, annotations: { [PLAYED_BY]: playedBy } },
        spec: { containers: [{ name: 'controller', image }] },
      },
    },
  };
}

export interface StartEnvoyGatewayInput {
  dir: string;
  apiServer: DevApiServer;
  assets: EnvoyGatewayAssets;
  /** The Envoy binary of the gateway proxies, resolved when the first proxy starts. */
  envoyBinary: () => Promise<string>;
  log: (message: string) => void;
  timeoutMs: number;
}

export async function startEnvoyGateway(input: StartEnvoyGatewayInput): Promise<RunningEnvoyGateway> {
  // Its own client: the status writers use it for as long as the cluster runs.
  const client = await KubeClient.create({
    kubeconfig: input.apiServer.kubeconfigPath,
    userAgent: 'llmisvc-dev-envoy-gateway',
  });
  try {
    return await startWithClient(input, client);
  } catch (error) {
    client.close();
    throw error;
  }
}

async function startWithClient(
  input: StartEnvoyGatewayInput,
  client: KubeClient,
): Promise<RunningEnvoyGateway> {
  const { dir, apiServer, assets, envoyBinary, log, timeoutMs } = input;
  // Short names: a Unix socket path must fit in 108 bytes.
  const home = join(dir, 'eg');
  const certs = join(home, 'certs');
  const root = join(home, 'root');
  await mkdir(certs, { recursive: true, mode: 0o700 });
  await mkdir(root, { recursive: true });

  const crdFolder = join(assets.configDir, ENVOY_GATEWAY_CONFIG_DIRS[0]!);
  const crdYaml = (
    await Promise.all(
      (await readdir(crdFolder))
        .filter((f) => f.endsWith('.yaml'))
        .sort()
        .map(async (f) => stripHelmGuards(await readFile(join(crdFolder, f), 'utf8'))),
    )
  ).join('\n---\n');
  const installFile = join(home, 'install.yaml');
  await writeFile(
    installFile,
    envoyGatewayInstallObjects(crdYaml)
      .map((o) => stringify(o))
      .join('---\n'),
  );
  await installManifests([installFile], { kubeconfigPath: apiServer.kubeconfigPath, timeoutMs });
  log(`installed Envoy Gateway ${ENVOY_GATEWAY_VERSION}'s CRDs and GatewayClass ${FACTS.gatewayClass}`);

  // Envoy Gateway's own certificate generator writes the Secrets its xDS server and the proxies use (the Helm chart
  // runs it as a Job); the xDS server reads its certificate from files, so they are written to /certs too.
  await runOnce(assets.binary, ['certgen', '--disable-topology-injector'], {
    KUBECONFIG: apiServer.kubeconfigPath,
    HOME: home,
  });
  await writeSecretFiles(client, { namespace: ENVOY_GATEWAY_NAMESPACE, name: 'envoy-gateway' }, certs, [
    'tls.crt',
    'tls.key',
    'ca.crt',
  ]);

  const configPath = join(home, 'envoy-gateway.yaml');
  const extensionSocket = join(home, 'ext.sock');
  const xdsSocket = join(home, 'xds.sock');
  await writeFile(configPath, envoyGatewayConfig({ controllerName: FACTS.controllerName, extensionSocket }));
  // Up before Envoy Gateway: it calls the extension on its first translation, and fails that translation without it.
  const services = new ServiceProxies(client, log);
  const extension = await startEgExtension({ socketPath: extensionSocket, client, services, log });
  const apiPort = Number(new URL(apiServer.server).port);
  const apiSocket = join(home, 'api.sock');
  const bridge: Server = await serveUnixToTcp(apiSocket, '127.0.0.1', apiPort);

  const eg = startProcess({
    name: 'envoy-gateway',
    command: 'unshare',
    args: [
      '--user',
      '--map-root-user',
      '--net',
      '--mount',
      '--pid',
      '--fork',
      '--kill-child',
      '--propagation',
      'private',
      '/bin/sh',
      '-c',
      NAMESPACE_SCRIPT,
      // $0 and $1 of the script: the folder on the command line lets a later run recognise a leftover.
      'envoy-gateway-namespace',
      dir,
    ],
    logPath: join(dir, 'logs', 'envoy-gateway.log'),
    env: {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: home,
      KUBECONFIG: apiServer.kubeconfigPath,
      ENVOY_GATEWAY_NAMESPACE,
      EG_ROOT: root,
      EG_CERTS: certs,
      EG_NODE: process.execPath,
      EG_BRIDGE: SOCKET_BRIDGE_SCRIPT,
      EG_API_PORT: String(apiPort),
      EG_API_SOCKET: apiSocket,
      EG_BRIDGE_READY: join(home, 'bridge.ready'),
      EG_XDS_SOCKET: xdsSocket,
      EG_BINARY: assets.binary,
      EG_CONFIG: configPath,
    },
    cwd: home,
  });
  log(`started Envoy Gateway ${ENVOY_GATEWAY_VERSION} (pid ${eg.pid}, in its own namespaces)`);
  const writers = startStatusWriters(client, log);
  const proxies = startGatewayProxies({ home, client, xdsSocket, envoyBinary, log });
  const stop = async () => {
    await proxies.stop();
    await writers.stop();
    // `unshare --fork` ignores SIGTERM while it waits for its child, so Envoy Gateway (the namespace's pid 1, the
    // child of `unshare`) gets it directly and shuts down gracefully; `unshare` then exits with it. Should that
    // fail, stop() falls back to SIGKILL of `unshare`, whose --kill-child takes the namespace down.
    signalNamespaceInit(eg.pid, 'SIGTERM');
    await eg.stop();
    await extension.stop();
    await services.close();
    await new Promise<void>((resolve) => bridge.close(() => resolve()));
  };
  try {
    await waitUntil(
      `GatewayClass ${FACTS.gatewayClass} to be Accepted by Envoy Gateway`,
      timeoutMs,
      eg,
      async () => {
        const gc = await client.request<{ status?: { conditions?: { type: string; status: string }[] } }>(
          'GET',
          `/apis/gateway.networking.k8s.io/v1/gatewayclasses/${FACTS.gatewayClass}`,
          { verb: 'get' },
        );
        return gc.status?.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True') ?? false;
      },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  log(`Envoy Gateway accepted GatewayClass ${FACTS.gatewayClass}`);
  return {
    process: eg,
    async stop() {
      await stop();
      client.close();
    },
  };
}

function signalNamespaceInit(unsharePid: number, signal: NodeJS.Signals): void {
  try {
    const children = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8')
      .trim()
      .split(/\s+/);
    if (children[0]) process.kill(Number(children[0]), signal);
  } catch {
    // Already gone, or no /proc: stop() escalates on its own.
  }
}

function runOnce(command: string, args: readonly string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        if (!error) return resolve();
        reject(
          new LlmisvcError(
            'LLMISVC_ERR_PROCESS',
            `${command} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`,
          ),
        );
      },
    );
  });
}

async function waitUntil(
  what: string,
  timeoutMs: number,
  process: ManagedProcess,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (process.hasExited) await failExited(process, 'while the cluster started');
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new LlmisvcError(
        'LLMISVC_ERR_PROCESS',
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}; last lines of ${process.logPath}:\n` +
          (await logTail(process.logPath, 20)),
        { hint: `see ${process.logPath}` },
      );
    }
    await sleep(250);
  }
}

/**
 * The two status writers, polling twice a second: load-balancer addresses for LoadBalancer Services, and
 * InferencePool parent status from Envoy Gateway's HTTPRoute status. A failed round is logged once per distinct
 * message and retried; they never throw.
 */
export function startStatusWriters(
  client: KubeClient,
  log: (message: string) => void,
): { stop(): Promise<void> } {
  const firstAddress = randomInt(1, 60_000);
  return pollEvery(
    500,
    'dev cluster status writers',
    async () => {
      await assignLoadBalancerIps(client, firstAddress, log);
      await writeInferencePoolStatus(client);
    },
    log,
  );
}

async function assignLoadBalancerIps(
  client: KubeClient,
  firstAddress: number,
  log: (message: string) => void,
): Promise<void> {
  const services = await client.request<{ items: Parameters<typeof allocateLoadBalancerIps>[0][number][] }>(
    'GET',
    '/api/v1/services',
    { verb: 'list' },
  );
  for (const [key, ip] of allocateLoadBalancerIps(services.items, firstAddress)) {
    const [namespace, name] = key.split('/');
    const response = await client.send(
      'PATCH',
      `/api/v1/namespaces/${namespace}/services/${name}/status`,
      { status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } },
      'application/merge-patch+json',
    );
    if (response.status >= 300 && response.status !== 404) {
      throw new Error(`setting the load-balancer address of Service ${key}: ${statusMessage(response)}`);
    }
    if (response.status < 300) log(`gave LoadBalancer Service ${key} the address ${ip}`);
  }
}

async function writeInferencePoolStatus(client: KubeClient): Promise<void> {
  const pools = await client.send('GET', '/apis/inference.networking.k8s.io/v1/inferencepools');
  if (pools.status === 404) return;
  const routes = await client.request<{ items: RouteLike[] }>(
    'GET',
    '/apis/gateway.networking.k8s.io/v1/httproutes',
    { verb: 'list' },
  );
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  for (const pool of (pools.body as { items?: PoolLike[] }).items ?? []) {
    const parents = inferencePoolParents(pool, routes.items, FACTS.controllerName, now);
    if (sameParents(parents, pool.status?.parents ?? [])) continue;
    const response = await client.send(
      'PATCH',
      `/apis/inference.networking.k8s.io/v1/namespaces/${pool.metadata.namespace}/inferencepools/${pool.metadata.name}/status`,
      { status: { parents: parents.length ? parents : null } },
      'application/merge-patch+json',
    );
    if (response.status >= 300 && response.status !== 404) {
      throw new Error(
        `writing the status of InferencePool ${pool.metadata.namespace}/${pool.metadata.name}: ${statusMessage(response)}`,
      );
    }
  }
}
