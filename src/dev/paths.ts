/**
 * @module dev/paths
 * Where the development API server keeps what it builds or downloads once per machine. Pure: the caller passes the
 * environment in, so that configuration enters at the edge.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The per-machine cache root, `${XDG_CACHE_HOME:-~/.cache}/llmisvc`. */
export function llmisvcCacheDir(env: NodeJS.ProcessEnv): string {
  const xdg = env['XDG_CACHE_HOME'];
  // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
  const base = xdg && xdg.startsWith('/') ? xdg : join(env['HOME'] || homedir(), '.cache');
  return join(base, 'llmisvc');
}

/** The folder holding `kube-apiserver`, `etcd` and `kubectl` built for one Kubernetes version. */
export function kubeAssetsDir(cacheDir: string, kubernetesVersion: string): string {
  return join(cacheDir, 'kube-assets', kubernetesVersion);
}

/** The folder holding the CRD manifests copied out of one Go module version. */
export function crdCacheDir(cacheDir: string, module: string, version: string): string {
  return join(cacheDir, 'crds', `${module.replaceAll('/', '_')}@${version}`);
}

/** The repository root, resolved from this compiled file (dist/src/dev/paths.js → three levels up). */
export function repoRoot(): string {
  return fileURLToPath(new URL('../../..', import.meta.url));
}
