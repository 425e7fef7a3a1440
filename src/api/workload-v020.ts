/**
 * @module api/workload-v020
 * The workload fields KServe v0.20 added to `spec` and `spec.prefill` — `scaling` (WVA with an HPA or KEDA actuator,
 * or KEDA with your own triggers), `rolloutStrategy` and `kvCacheOffloading` — and the service-wide `tracing`. Here:
 * their zod schemas (spread into schema.ts), the cross-field rules as problems (for validate.ts) and as CEL (for
 * crd.ts), so the three stay side by side.
 *
 * Defaults (minReplicas 1, variantCost "10.0", the tracing endpoint and sampler) are applied by the renderer, not by
 * the CRD: a defaulted field in a partial LLMInferenceServiceConfig would override the service's own value when they
 * are merged, and the API server would hand back a spec that differs from the one applied.
 */
import { z } from 'zod';
import type { FieldProblem } from '../errors/index.js';
import { QUANTITY_PATTERN, quantityValue } from './quantity.js';

const PRESERVE = { 'x-kubernetes-preserve-unknown-fields': true } as const;
const INT_OR_STRING = { 'x-kubernetes-int-or-string': true } as const;

const atLeast = (min: number) =>
  z.int32({ error: 'must be a whole number' }).min(min, { error: `must be ${min} or more` });

const stringMap = z.record(z.string(), z.string());

/** A union's message: "is required" when the field is missing, `message` otherwise. */
const unionError = (message: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? 'is required' : message;

const PERCENT_MESSAGE = 'must be a whole number (pods) or a percentage such as "25%"';
/** An int or a percentage (`1`, `"25%"`), as Kubernetes' intstr fields take it. */
const IntOrPercent = z
  .union([atLeast(0), z.string().regex(/^[0-9]+%$/, { error: PERCENT_MESSAGE })], {
    error: unionError(PERCENT_MESSAGE),
  })
  .meta(INT_OR_STRING);

const QUANTITY_MESSAGE = 'must be a size such as "10Gi", "500M" or a number of bytes';
/** A resource quantity (`10Gi`, `100G`, or a number of bytes). */
const Quantity = z
  .union(
    [
      z.int({ error: 'must be a whole number' }).min(0, { error: 'must be 0 or more' }),
      z.string().regex(new RegExp(QUANTITY_PATTERN), { error: QUANTITY_MESSAGE }),
    ],
    { error: unionError(QUANTITY_MESSAGE) },
  )
  .meta({ ...INT_OR_STRING, description: 'A resource quantity, for example 10Gi.' });

// ---- scaling ----

const HPABehavior = z
  .looseObject({ scaleUp: z.looseObject({}).optional(), scaleDown: z.looseObject({}).optional() })
  .meta({ ...PRESERVE, description: 'autoscaling/v2 HorizontalPodAutoscalerBehavior (scaleUp, scaleDown).' });

const KEDAFallback = z
  .strictObject({
    failureThreshold: atLeast(0),
    replicas: atLeast(0),
    behavior: z
      .enum(['static', 'currentReplicas', 'currentReplicasIfHigher', 'currentReplicasIfLower'], {
        error: 'must be one of static, currentReplicas, currentReplicasIfHigher, currentReplicasIfLower',
      })
      .optional(),
  })
  .meta({ description: 'Replicas to hold while the scaler fails (KEDA fallback).' });

const KEDAAdvanced = z
  .strictObject({
    restoreToOriginalReplicaCount: z.boolean().optional(),
    horizontalPodAutoscalerConfig: z
      .strictObject({ name: z.string().optional(), behavior: HPABehavior.optional() })
      .optional(),
    scalingModifiers: z
      .strictObject({
        formula: z.string().optional(),
        target: z.string().optional(),
        activationTarget: z.string().optional(),
        metricType: z.string().optional(),
      })
      .optional(),
  })
  .meta({ description: 'KEDA advanced settings (HPA behavior, restoreToOriginalReplicaCount).' });

const kedaFields = {
  pollingInterval: atLeast(1).optional().meta({ description: 'Seconds between trigger checks.' }),
  cooldownPeriod: atLeast(0)
    .optional()
    .meta({ description: 'Seconds after the last active trigger before scaling to idleReplicaCount.' }),
  initialCooldownPeriod: atLeast(0)
    .optional()
    .meta({ description: 'Seconds after creation before triggers are evaluated (model load time).' }),
  idleReplicaCount: atLeast(0)
    .optional()
    .meta({ description: 'Replicas when no trigger is active; 0 scales to zero. Below minReplicas.' }),
  fallback: KEDAFallback.optional(),
  advanced: KEDAAdvanced.optional(),
};

const KEDATrigger = z
  .looseObject({
    type: z.string().min(1, { error: 'must not be empty' }),
    name: z.string().optional(),
    metadata: stringMap.optional(),
    authenticationRef: z
      .looseObject({
        name: z.string(),
        // The ScaledObject is written by the controller, not by the service's author: a cluster-wide credential
        // would be usable by every tenant, and sent wherever the trigger's metadata (serverAddress…) points.
        kind: z
          .literal('TriggerAuthentication', {
            error:
              "must be TriggerAuthentication (in the service's namespace): a ClusterTriggerAuthentication holds a " +
              'cluster-wide credential that this trigger would send wherever its metadata points',
          })
          .optional(),
      })
      .optional(),
    metricType: z
      .enum(['AverageValue', 'Value', 'Utilization'], { error: 'must be AverageValue, Value or Utilization' })
      .optional(),
    useCachedMetrics: z.boolean().optional(),
  })
  .meta({ ...PRESERVE, description: 'A KEDA trigger, passed to the ScaledObject unchanged.' });

export const ScalingSchema = z
  .strictObject({
    minReplicas: atLeast(1).optional().meta({
      description: 'Replicas while scaling (default 1); scale to zero with keda.idleReplicaCount: 0.',
    }),
    maxReplicas: atLeast(1).meta({ description: 'The most replicas the autoscaler may create.' }),
    wva: z
      .strictObject({
        variantCost: z
          .string()
          .regex(/^\d+(\.\d+)?$/, { error: 'must be a non-negative number as a string, such as "10.0"' })
          .optional()
          .meta({ description: 'Cost per replica in the saturation analysis (default "10.0").' }),
        hpa: z
          .strictObject({ behavior: HPABehavior.optional() })
          .optional()
          .meta({ description: 'An HPA reads wva_desired_replicas from the external metrics API.' }),
        keda: z
          .strictObject(kedaFields)
          .optional()
          .meta({ description: 'A KEDA ScaledObject queries wva_desired_replicas from Prometheus.' }),
      })
      .optional()
      .meta({ description: 'Scale on the Workload Variant Autoscaler; set exactly one of hpa or keda.' }),
    keda: z
      .strictObject({
        ...kedaFields,
        triggers: z
          .array(KEDATrigger)
          .min(1, { error: 'needs at least one trigger' })
          .meta({ description: 'KEDA triggers, used as written.' }),
      })
      .optional()
      .meta({ description: 'Scale with a KEDA ScaledObject on your own triggers.' }),
  })
  .meta({ description: 'Autoscaling of this workload; replaces replicas. Set exactly one of wva or keda.' });

// ---- rolloutStrategy ----

export const RolloutStrategySchema = z
  .strictObject({
    maxUnavailable: IntOrPercent.optional().meta({
      ...INT_OR_STRING,
      description:
        'Pods (or groups) that may be unavailable during a rollout; default 25% (Deployment), 1 (LWS).',
    }),
    maxSurge: IntOrPercent.optional().meta({
      ...INT_OR_STRING,
      description: 'Extra pods (or groups) during a rollout; default 25% (Deployment), 0 (LWS).',
    }),
  })
  .meta({ description: 'Rolling update of the Deployment or LeaderWorkerSet.' });

// ---- kvCacheOffloading ----

const FileSystemTier = z
  .strictObject({
    emptyDir: z
      .strictObject({ size: Quantity })
      .optional()
      .meta({ description: 'A node-local emptyDir of this size.' }),
    pvc: z
      .strictObject({
        spec: z
          .looseObject({})
          .optional()
          .meta({ ...PRESERVE, description: 'A PersistentVolumeClaim spec: an ephemeral claim per pod.' }),
        ref: z
          .strictObject({
            name: z.string().min(1, { error: 'must not be empty' }),
            path: z.string().optional().meta({ description: 'A sub-path inside the claim.' }),
          })
          .optional()
          .meta({ description: 'An existing PersistentVolumeClaim, shared by the pods.' }),
      })
      .optional(),
  })
  .meta({ description: 'A file-system tier; set exactly one of emptyDir or pvc.' });

export const KVCacheOffloadingSchema = z
  .strictObject({
    cpu: Quantity.meta({
      ...INT_OR_STRING,
      description: 'CPU memory for offloaded KV blocks (vLLM cpu_bytes_to_use), for example 10Gi.',
    }),
    evictionPolicy: z
      .enum(['lru', 'arc'], { error: 'must be lru or arc' })
      .optional()
      .meta({ description: 'Eviction policy of the CPU tier (vLLM default lru).' }),
    secondary: z
      .array(z.strictObject({ fileSystem: FileSystemTier }))
      .optional()
      .meta({ description: 'Tiers below the CPU tier, in order.' }),
  })
  .meta({ description: "KV cache offloading through vLLM's OffloadingConnector." });

// ---- tracing ----

const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

export const TracingSchema = z
  .strictObject({
    exporterEndpoint: z
      .string()
      .regex(/^https?:\/\/[^\s]+$/, { error: 'must be an http:// or https:// URL' })
      .optional()
      .meta({ description: 'OTLP endpoint (default http://otel-collector:4317).' }),
    sampler: z
      .enum(SAMPLERS, { error: `must be one of ${SAMPLERS.join(', ')}` })
      .optional()
      .meta({ description: 'OTEL_TRACES_SAMPLER (default parentbased_traceidratio).' }),
    samplerArg: z
      .string()
      .regex(/^(0(\.\d+)?|1(\.0+)?)$/, { error: 'must be a ratio from "0" to "1", such as "0.05"' })
      .optional()
      .meta({ description: 'OTEL_TRACES_SAMPLER_ARG (default "0.05").' }),
    exporter: z
      .enum(['otlp', 'console', 'none'], { error: 'must be otlp, console or none' })
      .optional()
      .meta({ description: 'OTEL_TRACES_EXPORTER (default otlp).' }),
  })
  .meta({
    description: 'OpenTelemetry tracing of the model servers and the scheduler; `{}` means defaults.',
  });

/** The v0.20 fields of a workload (`spec` and `spec.prefill`). */
export const workloadV020Fields = {
  scaling: ScalingSchema.optional(),
  rolloutStrategy: RolloutStrategySchema.optional(),
  kvCacheOffloading: KVCacheOffloadingSchema.optional(),
};

export type ScalingSpec = z.infer<typeof ScalingSchema>;
export type RolloutStrategySpec = z.infer<typeof RolloutStrategySchema>;
export type KVCacheOffloadingSpec = z.infer<typeof KVCacheOffloadingSchema>;
export type TracingSpec = z.infer<typeof TracingSchema>;
export type IntOrString = number | string;

/** What the cross-field rules need of a workload. */
interface WorkloadV020 {
  replicas?: number | undefined;
  worker?: unknown;
  scaling?: ScalingSpec | undefined;
  rolloutStrategy?: RolloutStrategySpec | undefined;
  kvCacheOffloading?: KVCacheOffloadingSpec | undefined;
}

/** Effective rollout defaults: Kubernetes' for a Deployment, LeaderWorkerSet's for a multi-node workload. */
export function rolloutDefaults(multiNode: boolean): { maxUnavailable: IntOrString; maxSurge: IntOrString } {
  return multiNode ? { maxUnavailable: 1, maxSurge: 0 } : { maxUnavailable: '25%', maxSurge: '25%' };
}

const isZero = (value: IntOrString) => value === 0 || value === '0%';

function scalingProblems(scaling: ScalingSpec, path: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (scaling.wva !== undefined && scaling.keda !== undefined) {
    problems.push({
      path,
      message:
        'wva and keda cannot both be set: use wva to scale on the Workload Variant Autoscaler, or keda for your own triggers',
    });
  } else if (scaling.wva === undefined && scaling.keda === undefined) {
    problems.push({
      path,
      message: 'needs wva (Workload Variant Autoscaler) or keda (a ScaledObject with your own triggers)',
    });
  }
  const min = scaling.minReplicas ?? 1;
  if (min > scaling.maxReplicas) {
    problems.push({
      path: `${path}.minReplicas`,
      message: `${min} is more than maxReplicas (${scaling.maxReplicas}); raise maxReplicas or lower minReplicas`,
    });
  }
  const wva = scaling.wva;
  if (wva !== undefined) {
    if (wva.hpa !== undefined && wva.keda !== undefined) {
      problems.push({
        path: `${path}.wva`,
        message: 'hpa and keda cannot both be set: choose one actuator for the WVA metric',
      });
    } else if (wva.hpa === undefined && wva.keda === undefined) {
      problems.push({
        path: `${path}.wva`,
        message: 'needs an actuator: set hpa (`hpa: {}`) or keda (`keda: {}`)',
      });
    }
    const modifiers = wva.keda?.advanced?.scalingModifiers;
    if (modifiers && Object.values(modifiers).some((v) => v !== undefined && v !== '')) {
      problems.push({
        path: `${path}.wva.keda.advanced.scalingModifiers`,
        message:
          'must not be set: WVA computes the desired replicas; use scaling.keda to write your own formula',
      });
    }
    if (wva.keda?.advanced?.horizontalPodAutoscalerConfig?.name) {
      problems.push({
        path: `${path}.wva.keda.advanced.horizontalPodAutoscalerConfig.name`,
        message: 'must not be set: the controller names the HPA that KEDA creates',
      });
    }
  }
  for (const [keda, at] of [
    [wva?.keda, `${path}.wva.keda`],
    [scaling.keda, `${path}.keda`],
  ] as const) {
    const idle = keda?.idleReplicaCount;
    if (idle !== undefined && idle >= min) {
      problems.push({
        path: `${at}.idleReplicaCount`,
        message: `must be less than minReplicas (${min}): it is the replica count when no trigger is active (0 scales to zero)`,
      });
    }
  }
  return problems;
}

function kvCacheProblems(kv: KVCacheOffloadingSpec, path: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (!quantityValue(kv.cpu)) {
    problems.push({
      path: `${path}.cpu`,
      message: 'must be more than 0: the CPU memory the KV cache may use',
    });
  }
  (kv.secondary ?? []).forEach((tier, index) => {
    const at = `${path}.secondary[${index}].fileSystem`;
    const fs = tier.fileSystem;
    if ((fs.emptyDir === undefined) === (fs.pvc === undefined)) {
      problems.push({ path: at, message: 'set exactly one of emptyDir or pvc' });
    }
    if (fs.pvc && (fs.pvc.spec === undefined) === (fs.pvc.ref === undefined)) {
      problems.push({
        path: `${at}.pvc`,
        message: 'set exactly one of spec (a claim per pod) or ref (an existing claim)',
      });
    }
  });
  return problems;
}

/**
 * The cross-field rules of the v0.20 workload fields of one workload.
 * @param path `spec` or `spec.prefill`
 */
export function workloadV020Problems(workload: WorkloadV020, path: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (workload.scaling !== undefined) {
    if (workload.replicas !== undefined) {
      problems.push({
        path: `${path}.scaling`,
        message: `${path}.replicas and ${path}.scaling cannot both be set: keep scaling for an autoscaled workload, or replicas for a fixed count`,
      });
    }
    problems.push(...scalingProblems(workload.scaling, `${path}.scaling`));
  }
  const rollout = workload.rolloutStrategy;
  if (rollout !== undefined) {
    const defaults = rolloutDefaults(workload.worker !== undefined);
    const unavailable = rollout.maxUnavailable ?? defaults.maxUnavailable;
    const surge = rollout.maxSurge ?? defaults.maxSurge;
    if (isZero(unavailable) && isZero(surge)) {
      problems.push({
        path: `${path}.rolloutStrategy`,
        message: `maxUnavailable and maxSurge cannot both be 0 (maxSurge defaults to ${String(defaults.maxSurge)} here): a rollout could never make progress`,
      });
    }
  }
  if (workload.kvCacheOffloading !== undefined) {
    problems.push(...kvCacheProblems(workload.kvCacheOffloading, `${path}.kvCacheOffloading`));
  }
  return problems;
}

/** A CEL rule at a path of property names below `spec`. */
export interface CelRule {
  path: string[];
  rule: string;
  message: string;
}

const IDLE_BELOW_MIN =
  '!has(self.keda) || !has(self.keda.idleReplicaCount) || self.keda.idleReplicaCount < (has(self.minReplicas) ? self.minReplicas : 1)';
const ZERO = "['0', '0%']";
const MODIFIERS = ['formula', 'target', 'activationTarget', 'metricType'];

/** CEL versions of the rules above, for each workload (`spec` and `spec.prefill`) of the service CRD. */
export function workloadV020CelRules(base: string[]): CelRule[] {
  const scaling = [...base, 'scaling'];
  return [
    {
      path: base,
      rule: '!(has(self.replicas) && has(self.scaling))',
      message:
        'replicas and scaling cannot both be set: keep scaling for an autoscaled workload, or replicas for a fixed count',
    },
    {
      path: scaling,
      rule: 'has(self.wva) != has(self.keda)',
      message:
        'set exactly one of wva (Workload Variant Autoscaler) or keda (a ScaledObject with your own triggers)',
    },
    {
      path: scaling,
      rule: '!has(self.minReplicas) || self.minReplicas <= self.maxReplicas',
      message: 'minReplicas cannot exceed maxReplicas',
    },
    {
      path: scaling,
      rule: IDLE_BELOW_MIN,
      message: 'keda.idleReplicaCount must be less than minReplicas (default 1)',
    },
    {
      path: [...scaling, 'wva'],
      rule: 'has(self.hpa) != has(self.keda)',
      message: 'set exactly one of hpa or keda as the actuator of the WVA metric',
    },
    {
      path: scaling,
      rule: IDLE_BELOW_MIN.replaceAll('self.keda', 'self.wva.keda').replace(
        '!has(self.wva.keda)',
        '!has(self.wva) || !has(self.wva.keda)',
      ),
      message: 'wva.keda.idleReplicaCount must be less than minReplicas (default 1)',
    },
    {
      path: [...scaling, 'wva', 'keda', 'advanced'],
      rule: `!has(self.scalingModifiers) || (${MODIFIERS.map((m) => `(!has(self.scalingModifiers.${m}) || size(self.scalingModifiers.${m}) == 0)`).join(' && ')})`,
      message: 'scalingModifiers must not be set: WVA computes the desired replicas',
    },
    {
      path: [...scaling, 'wva', 'keda', 'advanced'],
      rule: '!has(self.horizontalPodAutoscalerConfig) || !has(self.horizontalPodAutoscalerConfig.name) || size(self.horizontalPodAutoscalerConfig.name) == 0',
      message: 'horizontalPodAutoscalerConfig.name must not be set: the controller names the HPA',
    },
    {
      path: [...base, 'kvCacheOffloading', 'secondary'],
      rule: 'self.all(t, has(t.fileSystem.emptyDir) != has(t.fileSystem.pvc))',
      message: 'each fileSystem tier needs exactly one of emptyDir or pvc',
    },
    {
      path: [...base, 'kvCacheOffloading', 'secondary'],
      rule: 'self.all(t, !has(t.fileSystem.pvc) || has(t.fileSystem.pvc.spec) != has(t.fileSystem.pvc.ref))',
      message: 'each pvc tier needs exactly one of spec (a claim per pod) or ref (an existing claim)',
    },
    {
      path: [...base, 'rolloutStrategy'],
      rule: `!(has(self.maxUnavailable) && has(self.maxSurge) && string(self.maxUnavailable) in ${ZERO} && string(self.maxSurge) in ${ZERO})`,
      message: 'maxUnavailable and maxSurge cannot both be 0',
    },
  ];
}
