/**
 * @module cli/dev
 * `llmisvc dev apiserver --dir DIR`: a real etcd + kube-apiserver on loopback with this project's CRDs and its
 * dependencies' CRDs, running until Ctrl-C; `llmisvc dev cluster --dir DIR`: the same plus kube-controller-manager,
 * kube-scheduler and KWOK's fake (GPU) nodes; `llmisvc dev assets`: provision their binaries and manifests ahead of
 * time. Thin: flags in, src/dev does the work.
 */
import { dirname } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import {
  ALL_CRD_SETS,
  DEFAULT_KUBERNETES_VERSION,
  DEFAULT_NODE_COUNTS,
  GPU_RESOURCE,
  ENVOY_GATEWAY_VERSION,
  KWOK_VERSION,
  provisionDevAssets,
  provisionDevClusterAssets,
  selectCrdSets,
  startDevApiServer,
  startDevCluster,
  type CrdSetName,
} from '../dev/index.js';

/** The flags `dev apiserver` and `dev cluster` share (see `controlPlaneOptions`). */
interface ControlPlaneFlags {
  dir: string;
  crds: boolean;
  crdSets?: string;
  kubernetesVersion?: string;
}

interface ApiServerFlags extends ControlPlaneFlags {
  apiserverArg: string[];
}

interface ClusterFlags extends ControlPlaneFlags {
  cpuNodes: number;
  gpuNodes: number;
  gpusPerNode: number;
  lws: boolean;
  envoyGateway: boolean;
  runPods: boolean;
}

function crdSelection(flags: { crds: boolean; crdSets?: string | undefined }): boolean | CrdSetName[] {
  if (flags.crds === false) return false;
  return flags.crdSets ? selectCrdSets(flags.crdSets.split(',').map((s) => s.trim())) : true;
}

function count(name: string, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from 0 to ${max}`);
    }
    return n;
  };
}

/** The options of `dev apiserver` and `dev cluster`: where the control plane lives, its CRDs, its version. */
function controlPlaneOptions(command: Command): Command {
  return command
    .requiredOption(
      '--dir <dir>',
      'folder for the kubeconfig, logs, credentials and etcd data (kept between runs)',
    )
    .option('--no-crds', 'install no CRDs')
    .option('--crd-sets <names>', `comma-separated CRD sets to install (of ${ALL_CRD_SETS.join(', ')})`)
    .option(
      '--kubernetes-version <version>',
      `the Kubernetes release to build when KUBEBUILDER_ASSETS is unset (default ${DEFAULT_KUBERNETES_VERSION})`,
    );
}

export function register(program: Command): void {
  const dev = program.command('dev').description('development helpers (a real Kubernetes API server, …)');
  controlPlaneOptions(dev.command('apiserver'))
    .description(
      'run a real etcd + kube-apiserver on loopback (no kubelet, no controllers), write DIR/kubeconfig and install ' +
        'the CRDs of llmisvc, Gateway API, the Inference Extension and LeaderWorkerSet; runs until Ctrl-C. ' +
        'Binaries come from KUBEBUILDER_ASSETS, else they are built once per machine from Go modules.',
    )
    .option(
      '--apiserver-arg <flag>',
      'an extra kube-apiserver flag, e.g. --apiserver-arg=--v=4 (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .action(async (flags: ApiServerFlags) => {
      const crds = crdSelection(flags);
      const server = await startDevApiServer({
        dir: flags.dir,
        crds,
        env: process.env,
        apiServerArgs: flags.apiserverArg,
        kubernetesVersion: flags.kubernetesVersion,
        log: (message) => console.error(`[dev apiserver] ${message}`),
      });
      const kubectl = server.assets.kubectl ?? 'kubectl';
      console.log(`API server ${server.server} is ready.`);
      console.log(`kubeconfig: ${server.kubeconfigPath}`);
      console.log(`try:        ${kubectl} --kubeconfig ${server.kubeconfigPath} get crds`);
      console.log(`or:         export KUBECONFIG=${server.kubeconfigPath}`);
      console.log(`logs:       ${server.dir}/logs/   (Ctrl-C stops etcd and kube-apiserver)`);
      await untilInterrupted();
      console.error('[dev apiserver] stopping …');
      await server.stop();
    });

  controlPlaneOptions(dev.command('cluster'))
    .description(
      'run a Kubernetes control plane as processes on this machine, no Docker: etcd, kube-apiserver, ' +
        'kube-controller-manager, kube-scheduler and KWOK playing the kubelet of fake nodes (some with ' +
        `${GPU_RESOURCE}); pods are scheduled by the real scheduler and become Running/Ready with loopback IPs ` +
        '(127.1.N.x), but no container runs; plus the LeaderWorkerSet controller and Envoy Gateway (the Gateway API ' +
        '+ Inference Extension provider, GatewayClass eg; LoadBalancer Services get 127.2.x.y addresses), with a ' +
        'real Envoy per Gateway serving its routes at ADDRESS:10080 (InferencePools through their Endpoint Picker ' +
        'Service). Writes ' +
        'DIR/kubeconfig, installs the CRDs like `dev apiserver`, runs ' +
        `until Ctrl-C. Binaries are built once per machine from Go modules (KWOK ${KWOK_VERSION}, Envoy Gateway ` +
        `${ENVOY_GATEWAY_VERSION}).`,
    )
    .option(
      '--cpu-nodes <n>',
      'fake nodes without GPUs',
      count('--cpu-nodes', 100),
      DEFAULT_NODE_COUNTS.cpuNodes,
    )
    .option(
      '--gpu-nodes <n>',
      `fake nodes with ${GPU_RESOURCE}`,
      count('--gpu-nodes', 100),
      DEFAULT_NODE_COUNTS.gpuNodes,
    )
    .option(
      '--gpus-per-node <n>',
      `${GPU_RESOURCE} capacity of each GPU node`,
      count('--gpus-per-node', 64),
      DEFAULT_NODE_COUNTS.gpusPerNode,
    )
    .option(
      '--no-lws',
      'without the LeaderWorkerSet controller (by default it runs, with its webhooks and CRDs, whatever --crd-sets says)',
    )
    .option(
      '--no-envoy-gateway',
      'without Envoy Gateway (by default it runs, with its CRDs and GatewayClass eg, and the Gateway API and ' +
        'Inference Extension CRDs whatever --crd-sets says)',
    )
    .option(
      '--run-pods',
      'run what pods would where this machine can stand in: vLLM containers as `llmisvc sim`, llmisvc ' +
        "containers (the EPP) as this CLI, each on its pod's IP, the EPP with a token of its pod's ServiceAccount, " +
        "and llm-d's routing sidecar; with the controller, an LLMInferenceService then answers through its Gateway",
      false,
    )
    .action(async (flags: ClusterFlags) => {
      const log = (message: string) => console.error(`[dev cluster] ${message}`);
      const started = Date.now();
      const cluster = await startDevCluster({
        dir: flags.dir,
        crds: crdSelection(flags),
        env: process.env,
        kubernetesVersion: flags.kubernetesVersion,
        nodes: { cpuNodes: flags.cpuNodes, gpuNodes: flags.gpuNodes, gpusPerNode: flags.gpusPerNode },
        leaderWorkerSet: flags.lws,
        envoyGateway: flags.envoyGateway,
        runPods: flags.runPods,
        log,
      });
      const kubectl = cluster.apiServer.assets.kubectl ?? 'kubectl';
      console.log(`Cluster ${cluster.server} is ready (${((Date.now() - started) / 1000).toFixed(1)} s).`);
      console.log(
        `nodes:      ${cluster.nodes.map((n) => (n.gpus ? `${n.name} (${n.gpus} GPUs)` : n.name)).join(', ')}`,
      );
      console.log(`kubeconfig: ${cluster.kubeconfigPath}`);
      console.log(`try:        ${kubectl} --kubeconfig ${cluster.kubeconfigPath} get nodes,pods -A -o wide`);
      console.log(`or:         export KUBECONFIG=${cluster.kubeconfigPath}`);
      console.log(`logs:       ${cluster.dir}/logs/   (Ctrl-C stops every process)`);
      if (flags.runPods) {
        // Outside the cluster the controller's webhooks are reached at a URL (there is no Service routing here):
        // without them no v1alpha1 object can be converted.
        console.log(
          `controller: KUBECONFIG=${cluster.kubeconfigPath} npx llmisvc controller --webhook-url https://127.0.0.1:9443 --webhook-host 127.0.0.1`,
        );
        console.log('services:   answer at their status.url (kubectl get llminferenceservices -A)');
      }
      await untilInterrupted();
      log('stopping …');
      await cluster.stop();
    });

  dev
    .command('assets')
    .description(
      'make sure kube-apiserver, etcd, kubectl and the dependency CRD manifests are on this machine (building them ' +
        'once from Go modules when KUBEBUILDER_ASSETS is unset) and print where they are',
    )
    .option(
      '--kubernetes-version <version>',
      `the Kubernetes release to build (default ${DEFAULT_KUBERNETES_VERSION})`,
    )
    .option(
      '--cluster',
      'also kube-controller-manager, kube-scheduler, KWOK, the LeaderWorkerSet controller and Envoy Gateway, for ' +
        '`dev cluster`',
    )
    .action(async (flags: { kubernetesVersion?: string; cluster?: boolean }) => {
      const log = (message: string) => console.error(`[dev assets] ${message}`);
      const { assets, crdSets } = await provisionDevAssets({
        env: process.env,
        kubernetesVersion: flags.kubernetesVersion,
        log,
      });
      if (flags.cluster) {
        const cluster = await provisionDevClusterAssets({
          env: process.env,
          kubernetesVersion: flags.kubernetesVersion,
          log,
        });
        console.log(`kube-controller-manager: ${cluster.kubeControllerManager}`);
        console.log(`kube-scheduler: ${cluster.kubeScheduler}`);
        console.log(`kwok: ${cluster.kwok}`);
        console.log(`lws-manager: ${cluster.lwsManager}`);
        console.log(`envoy-gateway: ${cluster.envoyGateway}`);
      }
      console.log(`KUBEBUILDER_ASSETS=${assets.dir}`);
      if (assets.kubectl) console.log(`kubectl: ${assets.kubectl}`);
      for (const set of crdSets) {
        console.log(
          `CRDs ${set.name}: ${set.files.length} files in ${set.files[0] ? dirname(set.files[0]) : '-'}`,
        );
      }
    });
}

/** Resolves on the first SIGINT / SIGTERM / SIGHUP; a second one exits at once (the exit hook kills children). */
function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = () => {
      if (received) process.exit(130);
      received = true;
      resolve();
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  });
}
