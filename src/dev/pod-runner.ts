/**
 * @module dev/pod-runner
 * `llmisvc dev cluster --run-pods`: the kubelet's part for the containers this machine can stand in for
 * (dev/pod-commands) — the model servers as simulators and this project's own programs as themselves, each a
 * process on its pod's IP. KWOK still plays the pods (scheduling, phase, Ready); this runs what they would run, so
 * `kubectl apply -f examples/quickstart.yaml` gives a service that answers through its Gateway.
 *
 * A container that talks to the API server (the EPP) gets a kubeconfig with a token of the pod's ServiceAccount
 * (TokenRequest, as the kubelet projects one), so it has the rights the rendered RBAC gives it and no more. llm-d's
 * routing sidecar is served in this process (dev/routing-sidecar), sending prefills only to the simulators run here
 * in its pod's namespace. A pod that goes away has its processes stopped; a process that exits is started again
 * after 10 s. Polls every second.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type KubeClient } from '../kube/index.js';
import { startProcess, type ManagedProcess } from '../process/index.js';
import { normalizeHostPort } from '../sim/index.js';
import { PROXY_LABELS } from './eg-proxies.js';
import { PLAYED_BY } from './envoy-gateway-config.js';
import {
  containerPlans,
  type ContainerProcess,
  type PodSpecLike,
  type RoutingSidecarPlan,
} from './pod-commands.js';
import { pollEvery, PROCESS_RESTART_DELAY_MS } from './poll.js';
import { writeTokenKubeconfig } from './private-files.js';
import { startRoutingSidecar, type RunningRoutingSidecar } from './routing-sidecar.js';

type PodObject = PodSpecLike & {
  metadata: PodSpecLike['metadata'] & { uid?: string; deletionTimestamp?: string };
  spec?: PodSpecLike['spec'] & { nodeName?: string };
  status?: PodSpecLike['status'] & { phase?: string };
};

type RunningContainer =
  | { plan: ContainerProcess; process: ManagedProcess; startedAt: number }
  | { plan: RoutingSidecarPlan; sidecar: RunningRoutingSidecar };

function stopContainer(container: RunningContainer): Promise<unknown> {
  return 'process' in container ? container.process.stop(5_000) : container.sidecar.close();
}

/** At most this many processes stand for containers: pods are cheap to create, processes are not. */
const MAX_PROCESSES = 64;

/**
 * Pods the dev cluster already plays with a process of its own: Envoy Gateway's proxies (dev/eg-proxies runs their
 * Envoy) and the stand-in Deployments of controllers that run as processes (annotated `llmisvc.dev/played-by`).
 */
function playedElsewhere(pod: PodObject): boolean {
  const meta = pod.metadata as { labels?: Record<string, string>; annotations?: Record<string, string> };
  return (
    meta.annotations?.[PLAYED_BY] !== undefined ||
    Object.entries(PROXY_LABELS).every(([k, v]) => meta.labels?.[k] === v)
  );
}
/** A ServiceAccount token's lifetime; the processes live no longer than the cluster (restarts get a new one). */
const TOKEN_SECONDS = 24 * 3600;

export interface PodRunner {
  /** The running processes by `namespace/pod/container`. */
  running(): ReadonlyMap<string, ManagedProcess>;
  stop(): Promise<void>;
}

export function startPodRunner(input: {
  dir: string;
  client: KubeClient;
  server: string;
  caPem: string;
  /** The CLI the processes run (`bin/llmisvc.js` of this checkout). */
  cli: string;
  log: (message: string) => void;
}): PodRunner {
  const { dir, client, server, caPem, cli, log } = input;
  /** By pod uid. */
  const pods = new Map<
    string,
    { key: string; namespace: string; containers: Map<string, RunningContainer> }
  >();
  const said = new Set<string>();

  /** Whether `endpoint` is a model server this runner runs in `namespace`: where its routing sidecars may prefill. */
  const isModelServerOf = (namespace: string, endpoint: string): boolean => {
    for (const pod of pods.values()) {
      if (pod.namespace !== namespace) continue;
      for (const container of pod.containers.values()) {
        const served = 'process' in container ? container.plan.modelServer : undefined;
        if (served !== undefined && normalizeHostPort(served) === endpoint) return true;
      }
    }
    return false;
  };

  const startSidecar = async (pod: PodObject, plan: RoutingSidecarPlan): Promise<RunningContainer> => {
    const namespace = pod.metadata.namespace ?? 'default';
    const sidecar = await startRoutingSidecar({
      ...plan.routingSidecar,
      allowPrefill: (endpoint) => isModelServerOf(namespace, endpoint),
    });
    log(
      `pod ${namespace}/${pod.metadata.name}: serving ${plan.container} (llm-d routing sidecar) on ${sidecar.url}`,
    );
    return { plan, sidecar };
  };

  const kubeconfigFor = async (pod: PodObject): Promise<string> => {
    const namespace = pod.metadata.namespace ?? 'default';
    const account = pod.spec?.serviceAccountName ?? 'default';
    const review = await client.request<{ status?: { token?: string } }>(
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts/${account}/token`,
      {
        verb: 'create',
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: {
            expirationSeconds: TOKEN_SECONDS,
            boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
          },
        },
      },
    );
    const token = review.status?.token;
    if (!token) throw new Error(`no token for ServiceAccount ${namespace}/${account}`);
    return writeTokenKubeconfig(join(dir, 'pods', `${namespace}_${pod.metadata.name}`, 'kubeconfig'), {
      server,
      caPem,
      token,
      namespace,
      user: `${namespace}/${account}`,
    });
  };

  const start = async (
    pod: PodObject,
    plan: ContainerProcess,
  ): Promise<RunningContainer & { process: ManagedProcess }> => {
    const args = [
      ...plan.cliArgs,
      ...(plan.needsKubeconfig ? ['--kubeconfig', await kubeconfigFor(pod)] : []),
    ];
    const namespace = pod.metadata.namespace ?? 'default';
    await mkdir(join(dir, 'logs', 'pods'), { recursive: true });
    const process = startProcess({
      name: `${namespace}/${pod.metadata.name}/${plan.container}`,
      command: globalThis.process.execPath,
      args: [cli, ...args],
      env: { PATH: globalThis.process.env['PATH'] ?? '/usr/bin:/bin' },
      logPath: join(dir, 'logs', 'pods', `${namespace}_${pod.metadata.name}_${plan.container}.log`),
    });
    log(`pod ${namespace}/${pod.metadata.name}: started ${plan.container} (${args[0]}, pid ${process.pid})`);
    return { plan, process, startedAt: Date.now() };
  };

  /** Logs a line once (a pod is looked at every second). */
  const sayOnce = (line: string): void => {
    if (said.has(line)) return;
    log(line);
    if (said.size > 10_000) said.clear();
    said.add(line);
  };

  /** Starts the stand-ins of a pod's containers: all of them, or none (the next round tries the pod again). */
  const startPod = async (pod: PodObject, key: string): Promise<void> => {
    const containers = new Map<string, RunningContainer>();
    try {
      for (const plan of containerPlans(pod)) {
        const total = [...pods.values()].reduce((n, p) => n + p.containers.size, containers.size);
        const reason =
          'skipped' in plan
            ? plan.skipped
            : total >= MAX_PROCESSES
              ? `${MAX_PROCESSES} processes run already (each takes ~60 MB)`
              : undefined;
        if (reason !== undefined || 'skipped' in plan) {
          sayOnce(`pod ${key}: container ${plan.container} not run: ${reason}`);
          continue;
        }
        containers.set(
          plan.container,
          'routingSidecar' in plan ? await startSidecar(pod, plan) : await start(pod, plan),
        );
      }
    } catch (error) {
      await Promise.all([...containers.values()].map(stopContainer));
      throw error;
    }
    pods.set(pod.metadata.uid!, { key, namespace: pod.metadata.namespace ?? 'default', containers });
  };

  /** Starts again, 10 s after it exited, each process of a pod that has exited. */
  const restartExited = async (
    pod: PodObject,
    key: string,
    containers: Map<string, RunningContainer>,
  ): Promise<void> => {
    for (const [name, running] of containers) {
      if (!('process' in running)) continue;
      if (!running.process.hasExited || Date.now() - running.startedAt < PROCESS_RESTART_DELAY_MS) continue;
      log(`pod ${key}: ${name} exited (see ${running.process.logPath}); starting it again`);
      containers.set(name, await start(pod, running.plan));
    }
  };

  const round = async (): Promise<void> => {
    const list = await client.request<{ items: PodObject[] }>('GET', '/api/v1/pods', { verb: 'list' });
    const live = list.items.filter(
      (p) =>
        p.metadata.uid &&
        p.spec?.nodeName &&
        p.status?.podIP &&
        p.status.phase === 'Running' &&
        !p.metadata.deletionTimestamp,
    );
    const liveUids = new Set(live.map((p) => p.metadata.uid!));
    for (const [uid, pod] of pods) {
      if (liveUids.has(uid)) continue;
      pods.delete(uid);
      await Promise.all([...pod.containers.values()].map(stopContainer));
      log(`pod ${pod.key}: gone, its processes stopped`);
    }
    for (const pod of live) {
      const key = `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
      // One pod's failure (a spec the OS refuses to run, a port taken) is that pod's: the others still start.
      try {
        const entry = pods.get(pod.metadata.uid!);
        if (entry) await restartExited(pod, key, entry.containers);
        else if (!playedElsewhere(pod)) await startPod(pod, key);
      } catch (error) {
        sayOnce(`pod ${key}: not run: ${(error as Error).message}; trying again`);
      }
    }
  };

  const polling = pollEvery(1_000, 'dev cluster pod runner', round, log);
  return {
    running: () =>
      new Map(
        [...pods.values()].flatMap((p) =>
          [...p.containers].flatMap(([name, c]) =>
            'process' in c ? [[`${p.key}/${name}`, c.process] as const] : [],
          ),
        ),
      ),
    async stop() {
      await polling.stop();
      await Promise.all([...pods.values()].flatMap((p) => [...p.containers.values()].map(stopContainer)));
      pods.clear();
    },
  };
}
