/**
 * @module deps
 * The dependencies of LLMInferenceService: the matrix (pinned versions, commands, health), install plans derived from
 * the renderer's needs, `install` / `verify` against a cluster, `doctor` for one service, and load-balancer helpers.
 */
export * from './matrix.js';
export * from './plan.js';
export {
  type Check,
  type CheckStatus,
  type ClusterSnapshot,
  compareVersions,
  detectProvider,
  evaluateCluster,
  formatVerify,
  observeCluster,
  type VerifyResult,
  type WebhookConfigurationState,
} from './verify.js';
export {
  type InstallOptions,
  type InstallResult,
  installPlan,
  manifestFileFor,
  parseManifest,
  providerOlderThanGie,
  restartDeployment,
} from './install.js';
export { type Diagnosis, diagnose, type Finding, formatDiagnosis } from './doctor.js';
export {
  deriveRange,
  kindLoadBalancer,
  type LbAdvice,
  metallbManifests,
  parseRange,
  portForward,
} from './lb.js';
export { KubeClient, type KubeObject } from './kube.js';
