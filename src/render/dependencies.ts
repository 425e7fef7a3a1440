/**
 * @module render/dependencies
 * Which APIs a service needs from the cluster, and which of them a given cluster serves. One table, used by
 * `render --api-versions`, the controller's DependenciesReady condition and `llmisvc deps`.
 */
import type { LLMInferenceServiceSpec } from '../api/index.js';

export const GATEWAY_V1 = 'gateway.networking.k8s.io/v1';
export const INFERENCE_POOL_V1 = 'inference.networking.k8s.io/v1';
export const INFERENCE_X_V1ALPHA2 = 'inference.networking.x-k8s.io/v1alpha2';
export const LWS_V1 = 'leaderworkerset.x-k8s.io/v1';
export const KEDA_V1ALPHA1 = 'keda.sh/v1alpha1';
export const EXTERNAL_METRICS_V1BETA1 = 'external.metrics.k8s.io/v1beta1';
export const WVA_V1ALPHA1 = 'llmd.ai/v1alpha1';

/**
 * A current cluster: Gateway API v1, GIE v1, LeaderWorkerSet v1, and the autoscalers of KServe v0.20 (KEDA, an
 * external metrics API, WVA's VariantAutoscaling); the built-in APIs are always assumed.
 */
export const DEFAULT_API_VERSIONS: ReadonlySet<string> = new Set([
  GATEWAY_V1,
  INFERENCE_POOL_V1,
  LWS_V1,
  KEDA_V1ALPHA1,
  EXTERNAL_METRICS_V1BETA1,
  WVA_V1ALPHA1,
]);

export type Feature = 'route' | 'scheduler' | 'worker' | 'keda' | 'external-metrics' | 'wva';

/** What the needs depend on beyond the spec: how WVA discovers variants (see render/autoscaling). */
export interface NeedsOptions {
  wvaDiscovery: 'VariantAutoscaling' | 'annotations';
}

/** One API a service needs; satisfied when the cluster serves any of `apiVersions`. */
export interface ApiNeed {
  feature: Feature;
  /** The dependency that provides the API, as `llmisvc deps` names it. */
  dependency:
    | 'gateway-api'
    | 'gateway-api-inference-extension'
    | 'lws'
    | 'keda'
    | 'prometheus-adapter'
    | 'workload-variant-autoscaler';
  apiVersions: readonly string[];
  kinds: readonly string[];
  /** Why the service needs it, in a sentence. */
  reason: string;
  install: string;
}

const NEEDS: Record<Feature, Omit<ApiNeed, 'reason'>> = {
  route: {
    feature: 'route',
    dependency: 'gateway-api',
    apiVersions: [GATEWAY_V1],
    kinds: ['Gateway', 'HTTPRoute'],
    install: 'install the Gateway API CRDs and a gateway provider: `llmisvc deps plan` prints the commands',
  },
  scheduler: {
    feature: 'scheduler',
    dependency: 'gateway-api-inference-extension',
    apiVersions: [INFERENCE_POOL_V1, INFERENCE_X_V1ALPHA2],
    kinds: ['InferencePool'],
    install:
      'install the Gateway API Inference Extension CRDs, then restart the gateway provider: `llmisvc deps plan` prints the commands',
  },
  worker: {
    feature: 'worker',
    dependency: 'lws',
    apiVersions: [LWS_V1],
    kinds: ['LeaderWorkerSet'],
    install: 'install LeaderWorkerSet (it needs cert-manager): `llmisvc deps plan` prints the commands',
  },
  keda: {
    feature: 'keda',
    dependency: 'keda',
    apiVersions: [KEDA_V1ALPHA1],
    kinds: ['ScaledObject'],
    install: 'install KEDA (https://keda.sh/docs/latest/deploy/), for example its Helm chart kedacore/keda',
  },
  'external-metrics': {
    feature: 'external-metrics',
    dependency: 'prometheus-adapter',
    apiVersions: [EXTERNAL_METRICS_V1BETA1],
    kinds: ['external metrics API'],
    install:
      'install Prometheus Adapter with a rule exposing wva_desired_replicas as an external metric, or use scaling.wva.keda instead',
  },
  wva: {
    feature: 'wva',
    dependency: 'workload-variant-autoscaler',
    apiVersions: [WVA_V1ALPHA1],
    kinds: ['VariantAutoscaling'],
    install: 'install the Workload Variant Autoscaler (llm-d) and its CRDs',
  },
};

/** The autoscaling needs of one workload's `scaling`. */
function scalingNeeds(spec: LLMInferenceServiceSpec, options: NeedsOptions): ApiNeed[] {
  const workloads = [spec, ...(spec.prefill ? [spec.prefill] : [])];
  const needs = new Map<Feature, ApiNeed>();
  for (const { scaling } of workloads) {
    if (scaling?.wva && options.wvaDiscovery === 'VariantAutoscaling') {
      needs.set('wva', { ...NEEDS.wva, reason: 'scaling.wva names its variant in a VariantAutoscaling' });
    }
    if (scaling?.wva?.hpa) {
      needs.set('external-metrics', {
        ...NEEDS['external-metrics'],
        reason: 'scaling.wva.hpa makes an HPA read wva_desired_replicas from the external metrics API',
      });
    }
    if (scaling?.keda || scaling?.wva?.keda) {
      needs.set('keda', { ...NEEDS.keda, reason: 'scaling with keda runs through a KEDA ScaledObject' });
    }
  }
  return [...needs.values()];
}

/** The APIs a (merged) spec needs, each with the reason. */
export function apiNeeds(
  spec: LLMInferenceServiceSpec,
  options: NeedsOptions = { wvaDiscovery: 'VariantAutoscaling' },
): ApiNeed[] {
  const needs: ApiNeed[] = [];
  if (spec.router?.route) {
    needs.push({
      ...NEEDS.route,
      reason: 'spec.router.route exposes the service through a Gateway and an HTTPRoute',
    });
  }
  if (spec.router?.scheduler) {
    needs.push({
      ...NEEDS.scheduler,
      reason: spec.prefill
        ? 'prefill/decode routing runs through an InferencePool and its Endpoint Picker'
        : 'spec.router.scheduler routes through an InferencePool and its Endpoint Picker',
    });
  }
  if (spec.worker || spec.prefill?.worker) {
    needs.push({
      ...NEEDS.worker,
      reason: 'a workload with a worker runs on several nodes as a LeaderWorkerSet',
    });
  }
  needs.push(...scalingNeeds(spec, options));
  return needs;
}

/** The needs a cluster serving `served` does not satisfy. */
export function missingNeeds(needs: readonly ApiNeed[], served: ReadonlySet<string>): ApiNeed[] {
  return needs.filter((need) => !need.apiVersions.some((v) => served.has(v)));
}

/**
 * Parses `--api-versions` (comma-separated group/version strings, like `helm template --api-versions`).
 * An empty value means the default, a current cluster.
 */
export function parseApiVersions(value: string | undefined): ReadonlySet<string> {
  if (value === undefined || value.trim() === '') return DEFAULT_API_VERSIONS;
  return new Set(
    value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  );
}
