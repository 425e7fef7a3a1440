/**
 * @module dev
 * A real Kubernetes API server for development and tests (`llmisvc dev apiserver`): etcd + kube-apiserver on
 * loopback, the binaries from KUBEBUILDER_ASSETS or built once per machine from Go modules, and the CRDs of this
 * project and its dependencies installed on start. `llmisvc dev cluster` adds kube-controller-manager,
 * kube-scheduler, KWOK's fake nodes, the LeaderWorkerSet controller and Envoy Gateway.
 */
export { startDevApiServer, type DevApiServer, type StartDevApiServerOptions } from './apiserver.js';
export { startDevCluster, type DevCluster, type StartDevClusterOptions } from './cluster.js';
export {
  ENVOY_GATEWAY_VERSION,
  KWOK_VERSION,
  cachedClusterAssets,
  ensureClusterAssets,
  singleRequireGoMod,
  type ClusterAssets,
  type EnsureClusterAssetsOptions,
} from './cluster-assets.js';
export {
  DEFAULT_NODE_COUNTS,
  GPU_RESOURCE,
  KWOK_NODE_ANNOTATION,
  devNodes,
  type DevNodeCounts,
  type DevNodeSpec,
} from './cluster-config.js';
export { ensureGoBuild, goBuildInfo, type GoBuildInfo, type GoBuildSpec } from './go-build.js';
export { goModDownload, toolsGo } from './go.js';
export {
  ALL_CRD_SETS,
  DEFAULT_CRD_SETS,
  DEPENDENCY_CRD_SETS,
  PROJECT_CRD_SET,
  cachedDependencyCrds,
  dependencyCrdSet,
  ensureCrdManifests,
  projectCrdManifests,
  selectCrdSets,
  type CrdManifestSet,
  type CrdSetName,
  type DependencyCrdSet,
  type DependencyCrdSetName,
} from './crd-sets.js';
export {
  DEFAULT_KUBERNETES_VERSION,
  cachedKubeAssets,
  ensureKubeAssets,
  goDirectives,
  type EnsureKubeAssetsOptions,
  type KubeAssets,
} from './kube-assets.js';
export { DEV_CONTEXT_NAME, renderDevKubeconfig } from './kubeconfig.js';
export { DEV_FIELD_MANAGER, installManifests, readManifestObjects, removeManifests } from './manifests.js';
export { DEV_ADMIN_GROUP, DEV_ADMIN_USER } from './pki.js';
export { provisionDevAssets, provisionDevClusterAssets, type DevAssets } from './provision.js';
export { kubeAssetsDir, llmisvcCacheDir, repoRoot } from './paths.js';
export {
  applyObjects,
  createNamespace,
  ensureNamespace,
  installProject,
  readYaml,
  renderOptionsFor,
  resourceOf,
} from './project.js';
export { ensureNodeBinary, NODE_22_VERSION, type EnsureNodeBinaryOptions } from './node-binary.js';
