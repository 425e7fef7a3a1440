/**
 * @module render/autoscaling
 * The autoscaler of each workload with `scaling` (KServe v0.20): with `scaling.wva`, the Workload Variant Autoscaler
 * computes `wva_desired_replicas` and an HPA (through the external metrics API) or a KEDA ScaledObject (querying
 * Prometheus) acts on it; with `scaling.keda`, a ScaledObject on the user's own triggers. The workload itself leaves
 * `replicas` unset so that the autoscaler owns it.
 *
 * WVA learns which workload is a variant either from a `VariantAutoscaling` object (llmd.ai/v1alpha1, the form
 * KServe v0.20.0 creates) or from `llm-d.ai/*` annotations on the HPA or ScaledObject (the form that replaced it in
 * WVA and KServe main); `AutoscalingOptions.wvaDiscovery` chooses.
 */
import {
  childName,
  type LLMInferenceService,
  type LLMInferenceServiceSpec,
  type ScalingSpec,
  type WorkloadSpec,
} from '../api/index.js';
import { KEDA_V1ALPHA1, WVA_V1ALPHA1 } from './dependencies.js';
import { childMetadata, type Component } from './labels.js';
import type { KubeObject } from './workload.js';

export const WVA_METRIC = 'wva_desired_replicas';
/** The label WVA reads the accelerator of a variant from. */
export const ACCELERATOR_LABEL = 'inference.optimization/acceleratorName';
const DEFAULT_VARIANT_COST = '10.0';

/** Controller configuration for autoscaling (KServe's `autoscaling-wva-controller-config`). */
export interface AutoscalingOptions {
  /** Prometheus that KEDA queries for `wva_desired_replicas`. */
  prometheusUrl: string;
  /** Skip TLS verification of the Prometheus connection (KEDA `unsafeSsl`). */
  prometheusUnsafeSsl: boolean;
  /** How WVA discovers variants: a VariantAutoscaling object, or annotations on the HPA / ScaledObject. */
  wvaDiscovery: 'VariantAutoscaling' | 'annotations';
}

export const DEFAULT_AUTOSCALING: AutoscalingOptions = {
  prometheusUrl: 'http://prometheus-operated.monitoring.svc:9090',
  prometheusUnsafeSsl: false,
  wvaDiscovery: 'VariantAutoscaling',
};

interface Target {
  apiVersion: string;
  kind: string;
  name: string;
}

interface Variant {
  service: LLMInferenceService;
  namespace: string;
  scaling: ScalingSpec;
  workload: WorkloadSpec;
  target: Target;
  component: Component;
  modelId: string;
  options: AutoscalingOptions;
}

/** The name WVA gives the variant in its metric labels. */
function variantName(v: Variant): string {
  return v.options.wvaDiscovery === 'VariantAutoscaling' ? childName(v.target.name, '-va') : v.target.name;
}

function wvaAnnotations(v: Variant): { annotations?: Record<string, string> } {
  if (!v.scaling.wva || v.options.wvaDiscovery !== 'annotations') return {};
  return {
    annotations: {
      'llm-d.ai/managed': 'true',
      'llm-d.ai/model-id': v.modelId,
      'llm-d.ai/variant-cost': v.scaling.wva.variantCost ?? DEFAULT_VARIANT_COST,
    },
  };
}

function metadata(v: Variant, suffix: string, extraLabels: Record<string, string> = {}) {
  const base = childMetadata(v.service, childName(v.target.name, suffix), {
    'app.kubernetes.io/component': v.component,
    ...extraLabels,
  });
  return { ...base, ...wvaAnnotations(v) };
}

function variantAutoscaling(v: Variant): KubeObject {
  const accelerator = v.workload.labels?.[ACCELERATOR_LABEL] || 'unknown';
  return {
    apiVersion: WVA_V1ALPHA1,
    kind: 'VariantAutoscaling',
    metadata: metadata(v, '-va', { [ACCELERATOR_LABEL]: accelerator }),
    spec: {
      scaleTargetRef: v.target,
      modelID: v.modelId,
      variantCost: v.scaling.wva?.variantCost ?? DEFAULT_VARIANT_COST,
    },
  };
}

function horizontalPodAutoscaler(v: Variant): KubeObject {
  const behavior = v.scaling.wva?.hpa?.behavior;
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: metadata(v, '-hpa'),
    spec: {
      scaleTargetRef: v.target,
      minReplicas: v.scaling.minReplicas ?? 1,
      maxReplicas: v.scaling.maxReplicas,
      // WVA publishes the replica count itself: an average of 1 per pod makes the HPA scale to exactly that.
      metrics: [
        {
          type: 'External',
          external: {
            metric: {
              name: WVA_METRIC,
              selector: { matchLabels: { variant_name: variantName(v), exported_namespace: v.namespace } },
            },
            target: { type: 'AverageValue', averageValue: '1' },
          },
        },
      ],
      ...(behavior ? { behavior } : {}),
    },
  };
}

/** KEDA settings: those of `wva.keda` (no triggers), or of `keda` (with the user's triggers). */
type KedaSettings = NonNullable<NonNullable<ScalingSpec['wva']>['keda']> & { triggers?: unknown[] };

function scaledObject(v: Variant, keda: KedaSettings): KubeObject {
  const { triggers: own, ...settings } = keda;
  const triggers = own ?? [
    {
      type: 'prometheus',
      name: 'wva-desired-replicas',
      metadata: {
        serverAddress: v.options.prometheusUrl,
        query: `${WVA_METRIC}{variant_name="${variantName(v)}",exported_namespace="${v.namespace}"}`,
        threshold: '1',
        unsafeSsl: String(v.options.prometheusUnsafeSsl),
      },
    },
  ];
  return {
    apiVersion: KEDA_V1ALPHA1,
    kind: 'ScaledObject',
    metadata: metadata(v, '-keda'),
    spec: {
      scaleTargetRef: v.target,
      minReplicaCount: v.scaling.minReplicas ?? 1,
      maxReplicaCount: v.scaling.maxReplicas,
      ...settings,
      triggers,
    },
  };
}

/** What a workload's autoscaling consists of, by kind; `lacks` leaves out kinds of APIs the cluster lacks. */
function autoscalers(v: Variant, lacks: (kind: string) => boolean): KubeObject[] {
  const { wva, keda } = v.scaling;
  const objects: KubeObject[] = [];
  if (wva && v.options.wvaDiscovery === 'VariantAutoscaling' && !lacks('VariantAutoscaling')) {
    objects.push(variantAutoscaling(v));
  }
  if (wva?.hpa) objects.push(horizontalPodAutoscaler(v));
  const kedaSpec = wva?.keda ?? keda;
  if (kedaSpec && !lacks('ScaledObject')) objects.push(scaledObject(v, kedaSpec));
  return objects;
}

/**
 * The autoscaling objects of the rendered workloads (Deployments and LeaderWorkerSets): each is matched to its part
 * of the spec by its component label, and targeted by kind and name as rendered.
 * @param lacks whether the cluster lacks the API of a kind (VariantAutoscaling, ScaledObject)
 */
export function renderAutoscaling(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
  workloads: readonly KubeObject[],
  options: AutoscalingOptions,
  lacks: (kind: string) => boolean = () => false,
): KubeObject[] {
  const namespace = service.metadata.namespace ?? 'default';
  const modelId = spec.model?.name ?? spec.model?.uri ?? service.metadata.name;
  return workloads.flatMap((object) => {
    const component = (object.metadata['labels'] as Record<string, string> | undefined)?.[
      'app.kubernetes.io/component'
    ] as Component | undefined;
    const workload =
      component === 'llminferenceservice-workload'
        ? spec
        : component === 'llminferenceservice-workload-prefill'
          ? spec.prefill
          : undefined;
    if (!workload?.scaling) return [];
    const target = {
      apiVersion: object.apiVersion,
      kind: object.kind,
      name: String(object.metadata['name']),
    };
    return autoscalers(
      {
        service,
        namespace,
        scaling: workload.scaling,
        workload,
        target,
        component: component!,
        modelId,
        options,
      },
      lacks,
    );
  });
}
