/**
 * @module cli/dev
 * `llmisvc dev apiserver --dir DIR`: a real etcd + kube-apiserver on loopback with this project's CRDs and its
 * dependencies' CRDs, running until Ctrl-C; `llmisvc dev assets`: provision its binaries and manifests ahead of time.
 * Thin: flags in, src/dev does the work.
 */
import { dirname } from 'node:path';
import type { Command } from 'commander';
import {
  ALL_CRD_SETS,
  DEFAULT_KUBERNETES_VERSION,
  provisionDevAssets,
  selectCrdSets,
  startDevApiServer,
  type CrdSetName,
} from '../dev/index.js';

interface ApiServerFlags {
  dir: string;
  crds: boolean;
  crdSets?: string;
  apiserverArg: string[];
  kubernetesVersion?: string;
}

export function register(program: Command): void {
  const dev = program.command('dev').description('development helpers (a real Kubernetes API server, …)');
  dev
    .command('apiserver')
    .description(
      'run a real etcd + kube-apiserver on loopback (no kubelet, no controllers), write DIR/kubeconfig and install ' +
        'the CRDs of llmisvc, Gateway API, the Inference Extension and LeaderWorkerSet; runs until Ctrl-C. ' +
        'Binaries come from KUBEBUILDER_ASSETS, else they are built once per machine from Go modules.',
    )
    .requiredOption(
      '--dir <dir>',
      'folder for the kubeconfig, logs, credentials and etcd data (kept between runs)',
    )
    .option('--no-crds', 'install no CRDs')
    .option('--crd-sets <names>', `comma-separated CRD sets to install (of ${ALL_CRD_SETS.join(', ')})`)
    .option(
      '--kubernetes-version <version>',
      `the Kubernetes release to build when KUBEBUILDER_ASSETS is unset (default ${DEFAULT_KUBERNETES_VERSION})`,
    )
    .option(
      '--apiserver-arg <flag>',
      'an extra kube-apiserver flag, e.g. --apiserver-arg=--v=4 (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .action(async (flags: ApiServerFlags) => {
      const crds: boolean | CrdSetName[] =
        flags.crds === false
          ? false
          : flags.crdSets
            ? selectCrdSets(flags.crdSets.split(',').map((s) => s.trim()))
            : true;
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
    .action(async (flags: { kubernetesVersion?: string }) => {
      const { assets, crdSets } = await provisionDevAssets({
        env: process.env,
        kubernetesVersion: flags.kubernetesVersion,
        log: (message) => console.error(`[dev assets] ${message}`),
      });
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
