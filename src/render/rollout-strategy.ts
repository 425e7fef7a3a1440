/**
 * @module render/rollout-strategy
 * `rolloutStrategy` as the workload kinds spell it: a Deployment's `strategy.rollingUpdate`, a LeaderWorkerSet's
 * `rolloutStrategy.rollingUpdateConfiguration`. A field left out takes the kind's own default (25%/25% for a
 * Deployment, 1/0 for a LeaderWorkerSet); without `rolloutStrategy` nothing is written and the defaults apply.
 */
import { rolloutDefaults, type WorkloadSpec } from '../api/index.js';

function values(workload: WorkloadSpec, multiNode: boolean) {
  const defaults = rolloutDefaults(multiNode);
  return {
    maxUnavailable: workload.rolloutStrategy?.maxUnavailable ?? defaults.maxUnavailable,
    maxSurge: workload.rolloutStrategy?.maxSurge ?? defaults.maxSurge,
  };
}

/** The Deployment `strategy` field, when the workload sets a rollout strategy. */
export function deploymentStrategy(workload: WorkloadSpec): { strategy?: Record<string, unknown> } {
  if (!workload.rolloutStrategy) return {};
  return { strategy: { type: 'RollingUpdate', rollingUpdate: values(workload, false) } };
}

/** The LeaderWorkerSet `rolloutStrategy` field, when the workload sets a rollout strategy. */
export function leaderWorkerSetRolloutStrategy(workload: WorkloadSpec): {
  rolloutStrategy?: Record<string, unknown>;
} {
  if (!workload.rolloutStrategy) return {};
  return { rolloutStrategy: { type: 'RollingUpdate', rollingUpdateConfiguration: values(workload, true) } };
}
