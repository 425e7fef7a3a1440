/**
 * @module render/workload
 * The model-server workloads: a Deployment for a single-node workload, a LeaderWorkerSet when it has a `worker`
 * (multi-node), for the main (or decode) workload and for the prefill workload. Also the vLLM flags that follow
 * from the spec (tensor parallelism, LoRA) and the model storage.
 */
import type {
  Container,
  LLMInferenceService,
  LLMInferenceServiceSpec,
  ParallelismSpec,
  PodSpec,
  WorkloadSpec,
} from '../api/index.js';
import { childNames } from '../api/index.js';
import {
  childMetadata,
  type Component,
  componentSelector,
  poolSelector,
  propagatedMetadata,
  ROLE_LABEL,
  type Role,
} from './labels.js';
import { kvTransferFlags, withKVCacheTiers } from './kv-cache-offloading.js';
import { LORA_PATH, modelMounts, withModelStorage } from './model-storage.js';
import { deploymentStrategy, leaderWorkerSetRolloutStrategy } from './rollout-strategy.js';
import { tracingFlags } from './tracing.js';

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown>;
  [field: string]: unknown;
};

/**
 * Pods per LeaderWorkerSet group: data / dataLocal (integer division, at least 1) for data parallelism, or the
 * pipeline size; tensor parallelism stays inside a node and does not count.
 * @example lwsGroupSize({ data: 8, dataLocal: 2 }) // 4: one leader and three workers
 */
export function lwsGroupSize(parallelism: ParallelismSpec | undefined): number {
  if (parallelism?.pipeline !== undefined) return Math.max(1, parallelism.pipeline);
  if (parallelism?.data !== undefined && parallelism.dataLocal !== undefined) {
    return Math.max(1, Math.floor(parallelism.data / parallelism.dataLocal));
  }
  return 1;
}

/** vLLM flags that follow from the spec, added to the main container unless its args already set them. */
export function vllmFlags(spec: LLMInferenceServiceSpec, workload: WorkloadSpec): string[] {
  const flags: string[] = [];
  const tensor = workload.parallelism?.tensor;
  if (tensor !== undefined) flags.push('--tensor-parallel-size', String(tensor));
  const lora = spec.model?.lora;
  const adapters = (lora?.adapters ?? []).filter((a) => a.name);
  if (adapters.length > 0) {
    flags.push('--enable-lora', '--lora-modules', ...adapters.map((a) => `${a.name}=${LORA_PATH}/${a.name}`));
    flags.push('--max-loras', String(lora?.maxAdapters ?? adapters.length));
    flags.push('--max-cpu-loras', String(lora?.maxCpuAdapters ?? adapters.length));
  }
  if (lora?.maxRank !== undefined) flags.push('--max-lora-rank', String(lora.maxRank));
  flags.push(...kvTransferFlags(workload.kvCacheOffloading), ...tracingFlags(spec.tracing));
  return flags;
}

function withFlags(container: Container, flags: readonly string[]): Container {
  const args = container.args ?? [];
  const text = [...(container.command ?? []), ...args].join(' ');
  const missing: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i]!;
    const takesValue = i + 1 < flags.length && !flags[i + 1]!.startsWith('--');
    const values: string[] = [];
    if (takesValue) {
      while (i + 1 < flags.length && !flags[i + 1]!.startsWith('--')) values.push(flags[++i]!);
    }
    // A flag the user (or a preset) already passes wins over the one derived from the spec.
    if (!new RegExp(`(^|\\s)${flag}(=|\\s|$)`).test(text)) missing.push(flag, ...values);
  }
  return missing.length ? { ...container, args: [...args, ...missing] } : container;
}

/** The pod spec of one workload's pods: model storage and derived vLLM flags on the `main` container. */
function podSpec(
  template: PodSpec | undefined,
  spec: LLMInferenceServiceSpec,
  workload: WorkloadSpec,
  withStorage: boolean,
): PodSpec {
  const pod: PodSpec = template ?? { containers: [] };
  const flags = vllmFlags(spec, workload);
  const flagged: PodSpec = withKVCacheTiers(
    { ...pod, containers: (pod.containers ?? []).map((c) => (c.name === 'main' ? withFlags(c, flags) : c)) },
    workload.kvCacheOffloading,
  );
  return withStorage ? withModelStorage(flagged, modelMounts(spec)) : flagged;
}

interface WorkloadPlan {
  workload: WorkloadSpec;
  role: Role;
  /** The Deployment or LeaderWorkerSet name. */
  name: string;
  /** The component of the pods that serve (the Deployment's, or the LeaderWorkerSet leaders'). */
  component: Component;
  /** The component of LeaderWorkerSet workers, which do not join the pool. */
  workerComponent: Component;
}

/** Unset replicas leave the live value alone, so that an autoscaler can own it. */
function replicasField(workload: WorkloadSpec): { replicas?: number } {
  return workload.replicas !== undefined ? { replicas: workload.replicas } : {};
}

function podLabels(
  service: LLMInferenceService,
  component: Component,
  role: Role,
  workload: WorkloadSpec,
  inPool: boolean,
) {
  return {
    ...(workload.labels ?? {}),
    ...componentSelector(service, component),
    ...(inPool ? poolSelector(service) : {}),
    [ROLE_LABEL]: role,
  };
}

/** A pod template's metadata: the service's propagated keys, then the workload's own, then the system labels. */
function templateMetadata(
  labels: Record<string, string>,
  workload: WorkloadSpec,
  propagated: ReturnType<typeof propagatedMetadata>,
) {
  const annotations = { ...propagated.annotations, ...(workload.annotations ?? {}) };
  return {
    labels: { ...propagated.labels, ...labels },
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

/** A workload object's metadata: the child's, with the service's propagated labels and annotations. */
function workloadMetadata(
  service: LLMInferenceService,
  plan: WorkloadPlan,
  propagated: ReturnType<typeof propagatedMetadata>,
) {
  return {
    ...childMetadata(service, plan.name, {
      ...propagated.labels,
      'app.kubernetes.io/component': plan.component,
    }),
    ...(Object.keys(propagated.annotations).length > 0 ? { annotations: propagated.annotations } : {}),
  };
}

function deployment(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
  plan: WorkloadPlan,
): KubeObject {
  const propagated = propagatedMetadata(service, 'Deployment');
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: workloadMetadata(service, plan, propagated),
    spec: {
      ...replicasField(plan.workload),
      ...deploymentStrategy(plan.workload),
      selector: { matchLabels: componentSelector(service, plan.component) },
      template: {
        metadata: templateMetadata(
          podLabels(service, plan.component, plan.role, plan.workload, true),
          plan.workload,
          propagated,
        ),
        spec: podSpec(plan.workload.template, spec, plan.workload, true),
      },
    },
  };
}

function leaderWorkerSet(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
  plan: WorkloadPlan,
): KubeObject {
  // Only leaders join the InferencePool: they serve the OpenAI API for their group.
  const leaderLabels = podLabels(service, plan.component, plan.role, plan.workload, true);
  const workerLabels = podLabels(service, plan.workerComponent, plan.role, plan.workload, false);
  const propagated = propagatedMetadata(service, 'LeaderWorkerSet');
  return {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: workloadMetadata(service, plan, propagated),
    spec: {
      ...replicasField(plan.workload),
      ...leaderWorkerSetRolloutStrategy(plan.workload),
      startupPolicy: 'LeaderCreated',
      leaderWorkerTemplate: {
        size: lwsGroupSize(plan.workload.parallelism),
        restartPolicy: 'RecreateGroupOnPodRestart',
        leaderTemplate: {
          metadata: templateMetadata(leaderLabels, plan.workload, propagated),
          spec: podSpec(plan.workload.template, spec, plan.workload, true),
        },
        workerTemplate: {
          metadata: templateMetadata(workerLabels, plan.workload, propagated),
          spec: podSpec(plan.workload.worker, spec, plan.workload, true),
        },
      },
    },
  };
}

/** The workload objects of a merged spec: main (or decode) and, with `prefill`, the prefill workload. */
export function renderWorkloads(service: LLMInferenceService, spec: LLMInferenceServiceSpec): KubeObject[] {
  const names = childNames(service.metadata.name);
  const plans: WorkloadPlan[] = [
    {
      workload: spec,
      role: spec.prefill ? 'decode' : 'both',
      name: spec.worker ? names.multiNode : names.mainWorkload,
      component: 'llminferenceservice-workload',
      workerComponent: 'llminferenceservice-workload-worker',
    },
  ];
  if (spec.prefill) {
    plans.push({
      workload: spec.prefill,
      role: 'prefill',
      name: spec.prefill.worker ? names.multiNodePrefill : names.prefillWorkload,
      component: 'llminferenceservice-workload-prefill',
      workerComponent: 'llminferenceservice-workload-worker-prefill',
    });
  }
  return plans.map((plan) =>
    plan.workload.worker ? leaderWorkerSet(service, spec, plan) : deployment(service, spec, plan),
  );
}

/** The Service in front of the main workload's pods (the route's catch-all backend). */
export function renderWorkloadService(service: LLMInferenceService): KubeObject {
  const names = childNames(service.metadata.name);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMetadata(service, names.workloadService, {
      'app.kubernetes.io/component': 'llminferenceservice-workload',
    }),
    spec: {
      type: 'ClusterIP',
      selector: componentSelector(service, 'llminferenceservice-workload'),
      ports: [{ name: 'http', port: 8000, targetPort: 8000, protocol: 'TCP' }],
    },
  };
}
