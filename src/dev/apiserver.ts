/**
 * @module dev/apiserver
 * A real etcd and a real kube-apiserver on loopback, for development and integration tests — the same shape as
 * controller-runtime's envtest: no kubelet, no controller-manager, no scheduler. Deployments therefore get no Pods,
 * nothing garbage-collects owned objects, and a deleted Namespace stays Terminating; tests patch child status
 * themselves and clean up explicitly.
 *
 * Folder layout (`dir`): `kubeconfig`, `pki/` (admin token, service-account keys, the serving certificate the API
 * server generates), `etcd/` (data, reused when the same folder is started again), `logs/etcd.log`,
 * `logs/kube-apiserver.log`, `ports.json` (reused on the next start, so the kubeconfig stays valid when the ports are
 * still free) and `state.json` (the pids while it runs).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { LlmisvcError } from '../errors/index.js';
import { ensureCrdManifests, selectCrdSets, type CrdManifestSet, type CrdSetName } from './crd-sets.js';
import { ensureKubeAssets, type KubeAssets } from './kube-assets.js';
import { renderDevKubeconfig } from './kubeconfig.js';
import { installManifests, removeManifests } from './manifests.js';
import { llmisvcCacheDir, repoRoot } from './paths.js';
import { ensureDevPki, type DevPki } from './pki.js';
import {
  commandLineMentions,
  freeLoopbackPort,
  isPidAlive,
  killAndWait,
  lostPortRace,
  startProcess,
  waitReady,
  type ManagedProcess,
} from '../process/index.js';

export interface StartDevApiServerOptions {
  /** The server's folder; created when missing. Starting the same folder again keeps its etcd data. */
  dir: string;
  /** Which CRD sets to install once the server is up: all (default), none, or a selection by name. */
  crds?: boolean | readonly CrdSetName[];
  log?: (message: string) => void;
  /**
   * The environment to read `KUBEBUILDER_ASSETS` and `XDG_CACHE_HOME` from and to run `go` with. Callers at the
   * edge (CLI, test harness) pass `process.env`; that is also the default.
   */
  env?: NodeJS.ProcessEnv;
  /** The Kubernetes version to build when KUBEBUILDER_ASSETS is unset; default DEFAULT_KUBERNETES_VERSION. */
  kubernetesVersion?: string;
  /** Binaries already resolved by the caller (skips the KUBEBUILDER_ASSETS / cache lookup). */
  assets?: KubeAssets;
  /** Extra kube-apiserver flags, appended last so they override the defaults (e.g. `--v=4`). */
  apiServerArgs?: readonly string[];
  /** How long to wait for etcd and kube-apiserver to become ready; default 120 s (2 busy cores). */
  startTimeoutMs?: number;
  /**
   * Keep the ServiceAccount admission plugin on, as in a real cluster: a Pod is then admitted only once its
   * ServiceAccount exists, which needs kube-controller-manager (`llmisvc dev cluster`). Off by default.
   */
  admitServiceAccounts?: boolean;
}

export interface DevApiServer {
  dir: string;
  kubeconfigPath: string;
  /** `https://127.0.0.1:PORT` */
  server: string;
  /** The admin's bearer token (group system:masters). */
  token: string;
  /** PEM that verifies the serving certificate. */
  caPem: string;
  /** `http://127.0.0.1:PORT` of the etcd behind it. */
  etcdUrl: string;
  assets: KubeAssets;
  /** The credentials in `DIR/pki`: tokens, the service-account key pair, the serving certificate. */
  pki: DevPki;
  pids: { etcd: number; kubeApiserver: number };
  /** Installs CRD sets after start (tests of "a CRD installed later"). */
  installCrds(names: readonly CrdSetName[]): Promise<void>;
  /** Removes CRD sets and waits until they are gone. */
  removeCrds(names: readonly CrdSetName[]): Promise<void>;
  /**
   * Stops kube-apiserver and starts it again on the same port and etcd (objects, kubeconfig and token stay), for
   * tests of watches and clients that must survive an API server restart. `server` and `pids` are updated.
   */
  restartApiServer(): Promise<void>;
  /** Stops kube-apiserver, then etcd; resolves once both have exited. Safe to call more than once. */
  stop(): Promise<void>;
}

interface DevState {
  owner: number;
  etcd: number;
  kubeApiserver: number;
  server: string;
}

const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/**
 * Without a controller-manager no namespace gets its `default` ServiceAccount, which this plugin requires before it
 * admits a Pod; tests create Pods directly (as endpoints for the EPP), so it is off, as in envtest.
 */
const NO_SERVICE_ACCOUNT_ADMISSION = ['--disable-admission-plugins=ServiceAccount'];
const PORT_ATTEMPTS = 4;

/**
 * Starts etcd and kube-apiserver in `dir`, writes `dir/kubeconfig` and installs the selected CRDs.
 *
 * @example
 * const server = await startDevApiServer({ dir: await mkdtemp(join(tmpdir(), 'kube-')), log: console.log });
 * try { … new KubeConfig().loadFromFile(server.kubeconfigPath) … } finally { await server.stop(); }
 */
export async function startDevApiServer(options: StartDevApiServerOptions): Promise<DevApiServer> {
  const log = options.log ?? (() => {});
  const env = options.env ?? process.env;
  const dir = resolve(options.dir);
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const crdSetNames = selectCrdSets(options.crds ?? true);
  const cacheDir = llmisvcCacheDir(env);
  const go = { env, log };
  const root = repoRoot();

  await mkdir(join(dir, 'logs'), { recursive: true });
  await cleanUpPreviousRun(dir, log);

  // Everything that may take long (a first build, module downloads) happens before any port is taken.
  const assets =
    options.assets ??
    (await ensureKubeAssets({
      kubebuilderAssets: env['KUBEBUILDER_ASSETS'],
      kubernetesVersion: options.kubernetesVersion,
      cacheDir,
      go,
    }));
  const crdSets = await ensureCrdManifests(crdSetNames, { cacheDir, repoRoot: root, go });
  const pki = await ensureDevPki(join(dir, 'pki'));

  const ports = await readPorts(dir);
  let etcd: { process: ManagedProcess; url: string } | undefined;
  let apiserver: { process: ManagedProcess; url: string } | undefined;
  const stopAll = async () => {
    await apiserver?.process.stop();
    await etcd?.process.stop();
  };
  try {
    etcd = await startEtcd(dir, assets, ports, timeoutMs, log);
    const etcdUrl = etcd.url;
    const launchApiserver = async () =>
      startKubeApiserver(
        dir,
        assets,
        pki,
        etcdUrl,
        [
          ...(options.admitServiceAccounts ? [] : NO_SERVICE_ACCOUNT_ADMISSION),
          ...(options.apiServerArgs ?? []),
        ],
        ports,
        timeoutMs,
        log,
      );
    apiserver = await launchApiserver();

    const caPem = await readFile(pki.servingCert, 'utf8');
    const kubeconfigPath = join(dir, 'kubeconfig');
    const writeState = async () => {
      await writeFile(
        kubeconfigPath,
        renderDevKubeconfig({ server: apiserver!.url, caPem, token: pki.token }),
        { mode: 0o600 },
      );
      const state: DevState = {
        owner: process.pid,
        etcd: etcd!.process.pid,
        kubeApiserver: apiserver!.process.pid,
        server: apiserver!.url,
      };
      await writeFile(join(dir, 'state.json'), JSON.stringify(state, null, 2) + '\n');
      await writeFile(join(dir, 'ports.json'), JSON.stringify(ports, null, 2) + '\n');
    };
    await writeState();

    const manifestFiles = (sets: readonly CrdManifestSet[]) => sets.flatMap((s) => s.files);
    if (crdSets.length) {
      const files = manifestFiles(crdSets);
      const empty = crdSets.filter((s) => s.files.length === 0).map((s) => s.name);
      log(
        `installing CRD sets ${crdSets.map((s) => s.name).join(', ')}` +
          (empty.length ? ` (${empty.join(', ')} has no manifests yet)` : ''),
      );
      if (files.length) await installManifests(files, { kubeconfigPath, log });
    }

    let stopping: Promise<void> | undefined;
    const server: DevApiServer = {
      dir,
      kubeconfigPath,
      server: apiserver.url,
      token: pki.token,
      caPem,
      etcdUrl,
      assets,
      pki,
      pids: { etcd: etcd.process.pid, kubeApiserver: apiserver.process.pid },
      async installCrds(names) {
        const sets = await ensureCrdManifests(selectCrdSets(names), { cacheDir, repoRoot: root, go });
        await installManifests(manifestFiles(sets), { kubeconfigPath, log });
      },
      async removeCrds(names) {
        const sets = await ensureCrdManifests(selectCrdSets(names), { cacheDir, repoRoot: root, go });
        await removeManifests(manifestFiles(sets), { kubeconfigPath, log });
      },
      async restartApiServer() {
        if (stopping) throw new LlmisvcError('LLMISVC_ERR_PROCESS', 'the development API server was stopped');
        await apiserver!.process.stop();
        log('kube-apiserver stopped for a restart');
        apiserver = await launchApiserver();
        server.server = apiserver.url;
        server.pids.kubeApiserver = apiserver.process.pid;
        await writeState();
      },
      stop() {
        stopping ??= (async () => {
          await stopAll();
          await rm(join(dir, 'state.json'), { force: true });
          log('stopped kube-apiserver and etcd');
        })();
        return stopping;
      },
    };
    return server;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The loopback ports of the last run in a folder, tried first so that a restart keeps the kubeconfig valid. */
interface DevPorts {
  apiserver?: number;
  etcdClient?: number;
  etcdPeer?: number;
}

async function readPorts(dir: string): Promise<DevPorts> {
  try {
    return JSON.parse(await readFile(join(dir, 'ports.json'), 'utf8')) as DevPorts;
  } catch {
    return {};
  }
}

/**
 * Refuses a folder that a live process is serving, and kills the etcd / kube-apiserver a crashed owner left behind
 * (checked against /proc/PID/cmdline, so a recycled pid is never hit).
 */
async function cleanUpPreviousRun(dir: string, log: (m: string) => void): Promise<void> {
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) return;
  const state = JSON.parse(await readFile(statePath, 'utf8')) as DevState;
  const leftovers = [state.kubeApiserver, state.etcd].filter(
    (pid) => pid && isPidAlive(pid) && commandLineMentions(pid, dir),
  );
  const inUse = state.owner !== process.pid ? isPidAlive(state.owner) : leftovers.length > 0;
  if (inUse) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `${dir} is in use by a development API server (process ${state.owner})`,
      {
        hint: `stop that server first (Ctrl-C, or stop()), or use another folder; its kubeconfig is ${join(dir, 'kubeconfig')}`,
      },
    );
  }
  for (const pid of leftovers) {
    log(`stopping process ${pid} left behind by an earlier run in ${dir}`);
    await killAndWait(pid);
  }
  await rm(statePath, { force: true });
}

async function startEtcd(
  dir: string,
  assets: KubeAssets,
  ports: DevPorts,
  timeoutMs: number,
  log: (m: string) => void,
): Promise<{ process: ManagedProcess; url: string }> {
  const logPath = join(dir, 'logs', 'etcd.log');
  for (let attempt = 1; ; attempt++) {
    const clientPort = await freeLoopbackPort(attempt === 1 ? ports.etcdClient : undefined);
    const peerPort = await freeLoopbackPort(attempt === 1 ? ports.etcdPeer : undefined, [clientPort]);
    ports.etcdClient = clientPort;
    ports.etcdPeer = peerPort;
    const url = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const etcd = startProcess({
      name: 'etcd',
      command: assets.etcd,
      logPath,
      args: [
        '--name=default',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=default=${peer}`,
        // A development store: losing the last writes on a machine crash is fine, waiting for fsync is not.
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
    });
    log(`started etcd (pid ${etcd.pid}) on ${url}`);
    const ready = await waitReady(etcd, timeoutMs, async () => {
      const response = await request(`${url}/health`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
      const body = (await response.body.json().catch(() => ({}))) as { health?: string };
      return response.statusCode === 200 && body.health === 'true';
    });
    if (ready) return { process: etcd, url };
    await lostPortRace(etcd, attempt, PORT_ATTEMPTS);
  }
}

async function startKubeApiserver(
  dir: string,
  assets: KubeAssets,
  pki: DevPki,
  etcdUrl: string,
  extraArgs: readonly string[],
  ports: DevPorts,
  timeoutMs: number,
  log: (m: string) => void,
): Promise<{ process: ManagedProcess; url: string }> {
  const logPath = join(dir, 'logs', 'kube-apiserver.log');
  for (let attempt = 1; ; attempt++) {
    const port = await freeLoopbackPort(attempt === 1 ? ports.apiserver : undefined);
    ports.apiserver = port;
    const url = `https://127.0.0.1:${port}`;
    const apiserver = startProcess({
      name: 'kube-apiserver',
      command: assets.kubeApiserver,
      logPath,
      args: [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${port}`,
        // No --tls-cert-file: the API server generates a self-signed certificate for 127.0.0.1 into --cert-dir.
        `--cert-dir=${pki.dir}`,
        `--token-auth-file=${pki.tokenFile}`,
        '--authorization-mode=RBAC',
        `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
        `--service-account-key-file=${pki.serviceAccountPub}`,
        `--service-account-signing-key-file=${pki.serviceAccountKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        // Nothing routes to the `kubernetes` Service here; skipping its endpoint reconciler saves writes and CPU.
        '--endpoint-reconciler-type=none',
        '--profiling=false',
        // As from Kubernetes 1.35, where it is on by default: with it off (1.34's default) the API server silently
        // drops the image volume that an oci:// or oci+native:// model is. `apiServerArgs` can turn it off again.
        '--feature-gates=ImageVolume=true',
        ...extraArgs,
      ],
    });
    log(`started kube-apiserver (pid ${apiserver.pid}) on ${url}`);
    let agent: Agent | undefined;
    const ready = await waitReady(apiserver, timeoutMs, async () => {
      if (!agent) {
        if (!existsSync(pki.servingCert)) return false;
        agent = new Agent({ connect: { ca: await readFile(pki.servingCert, 'utf8') } });
      }
      const response = await request(`${url}/readyz`, {
        dispatcher: agent,
        headers: { authorization: `Bearer ${pki.token}` },
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
      });
      await response.body.dump();
      return response.statusCode === 200;
    });
    await agent?.close();
    if (ready) return { process: apiserver, url };
    await lostPortRace(apiserver, attempt, PORT_ATTEMPTS);
  }
}
