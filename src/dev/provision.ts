/**
 * @module dev/provision
 * Everything the development API server needs on this machine, in one call: the binaries (KUBEBUILDER_ASSETS, else
 * built once into the cache) and the dependency CRD manifests (fetched once into the cache). Used by the test
 * harness and by `llmisvc dev assets` to warm a machine ahead of time.
 */
import {
  ensureClusterAssets,
  ensureEnvoyGatewayAssets,
  ensureLwsAssets,
  type ClusterAssets,
} from './cluster-assets.js';
import { DEPENDENCY_CRD_SETS, ensureCrdManifests, type CrdManifestSet } from './crd-sets.js';
import { ensureKubeAssets, type KubeAssets } from './kube-assets.js';
import { llmisvcCacheDir, repoRoot } from './paths.js';

export interface DevAssets {
  assets: KubeAssets;
  crdSets: CrdManifestSet[];
}

export async function provisionDevAssets(options: {
  /** Read for KUBEBUILDER_ASSETS and XDG_CACHE_HOME, and passed to `go`. */
  env: NodeJS.ProcessEnv;
  kubernetesVersion?: string | undefined;
  log: (message: string) => void;
}): Promise<DevAssets> {
  const cacheDir = llmisvcCacheDir(options.env);
  const go = { env: options.env, log: options.log };
  const assets = await ensureKubeAssets({
    kubebuilderAssets: options.env['KUBEBUILDER_ASSETS'],
    kubernetesVersion: options.kubernetesVersion,
    cacheDir,
    go,
  });
  const crdSets = await ensureCrdManifests(
    DEPENDENCY_CRD_SETS.map((set) => set.name),
    { cacheDir, repoRoot: repoRoot(), go },
  );
  return { assets, crdSets };
}

/**
 * What `llmisvc dev cluster` adds on this machine: kube-controller-manager, kube-scheduler, KWOK, the
 * LeaderWorkerSet manager and Envoy Gateway, built once into the cache (kube-apiserver's build first, whose compiled packages the controllers reuse).
 */
export async function provisionDevClusterAssets(options: {
  env: NodeJS.ProcessEnv;
  kubernetesVersion?: string | undefined;
  log: (message: string) => void;
}): Promise<ClusterAssets & { lwsManager: string; envoyGateway: string }> {
  const cacheDir = llmisvcCacheDir(options.env);
  const go = { env: options.env, log: options.log };
  await ensureKubeAssets({
    kubebuilderAssets: options.env['KUBEBUILDER_ASSETS'],
    kubernetesVersion: options.kubernetesVersion,
    cacheDir,
    go,
  });
  const cluster = await ensureClusterAssets({ cacheDir, kubernetesVersion: options.kubernetesVersion, go });
  const lws = await ensureLwsAssets({ cacheDir, go });
  const envoyGateway = await ensureEnvoyGatewayAssets({ cacheDir, go });
  return { ...cluster, lwsManager: lws.manager, envoyGateway: envoyGateway.binary };
}
