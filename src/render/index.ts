/**
 * @module render
 * The heart of llmisvc: one pure function from (service, configs, the cluster's API versions, options) to every
 * object the service needs. The CLI (`render`), the controller and the local stack (`up`) all call it, so a child's
 * name, labels and ports are computed in exactly one place.
 */
import {
  type LLMInferenceService,
  type LLMInferenceServiceConfig,
  type LLMInferenceServiceSpec,
  semanticProblems,
} from '../api/index.js';
import { type FieldProblem, ValidationError } from '../errors/index.js';
import { type AppliedConfig, composeSpec, type GlobalConfig } from '../presets/index.js';
import {
  type ApiNeed,
  apiNeeds,
  INFERENCE_POOL_V1,
  INFERENCE_X_V1ALPHA2,
  missingNeeds,
} from './dependencies.js';
import { type AutoscalingOptions, DEFAULT_AUTOSCALING, renderAutoscaling } from './autoscaling.js';
import { storageProblems } from './model-storage.js';
import { DEFAULT_GATEWAY, type GatewayOptions, renderDefaultGateway, renderRoute } from './route.js';
import { renderScheduler } from './scheduler.js';
import { withTracing } from './tracing.js';
import { type KubeObject, renderWorkloads, renderWorkloadService } from './workload.js';

export * from './dependencies.js';
export { componentSelector, ownedLabels, ownerReference, PART_OF, ROLE_LABEL, type Role } from './labels.js';
export { DEFAULT_GATEWAY, type GatewayOptions } from './route.js';
export type { AppliedConfig } from '../presets/index.js';
export { type AutoscalingOptions, DEFAULT_AUTOSCALING } from './autoscaling.js';
export { type KubeObject, lwsGroupSize, vllmFlags } from './workload.js';

export interface RenderOptions {
  /** The controller's namespace: where shared configs live. */
  systemNamespace: string;
  gateway: GatewayOptions;
  /** The image that runs `llmisvc epp` in the scheduler Deployment. */
  schedulerImage: string;
  autoscaling: AutoscalingOptions;
}

export const DEFAULT_RENDER_OPTIONS: RenderOptions = {
  systemNamespace: 'llmisvc-system',
  gateway: DEFAULT_GATEWAY,
  schedulerImage: 'ghcr.io/llmisvc/llmisvc:0.1.0',
  autoscaling: DEFAULT_AUTOSCALING,
};

export interface RenderInput {
  service: LLMInferenceService;
  /** LLMInferenceServiceConfigs visible to the service (its namespace and the system namespace). */
  configs: readonly LLMInferenceServiceConfig[];
  /** The group/versions the cluster serves (built-in APIs are assumed). */
  apiVersions: ReadonlySet<string>;
  options: RenderOptions;
}

export interface RenderOutput {
  /** The effective spec: presets → baseRefs → the service's own spec, templates rendered. */
  spec: LLMInferenceServiceSpec;
  /** The configs merged under the service's spec, in order. */
  applied: string[];
  /** The same, with the namespace each came from and whether it was a preset or a baseRef. */
  appliedConfigs: AppliedConfig[];
  /** Objects the service owns, in apply order. Children of APIs the cluster lacks are left out (see `missing`). */
  children: KubeObject[];
  /** Objects the service uses but does not own: the default Gateway. */
  shared: KubeObject[];
  /** Every API the service needs. */
  needs: ApiNeed[];
  /** The needs the cluster does not serve. */
  missing: ApiNeed[];
}

/** Rules that only the merged spec can answer (they depend on presets and baseRefs). */
function mergedProblems(spec: LLMInferenceServiceSpec, name: string): FieldProblem[] {
  const problems = [...semanticProblems(spec, name), ...storageProblems(spec)];
  if (spec.prefill && !spec.router?.scheduler) {
    problems.push({
      path: 'spec.prefill',
      message:
        'prefill/decode needs the Endpoint Picker to send requests to prefill pods: add spec.router.scheduler (for example `scheduler: {}`)',
    });
  }
  if (
    spec.prefill &&
    (spec.parallelism?.pipeline !== undefined || spec.prefill.parallelism?.pipeline !== undefined)
  ) {
    problems.push({
      path: 'spec.prefill',
      message:
        'prefill/decode runs with data parallelism only: replace parallelism.pipeline with data and dataLocal',
    });
  }
  return problems;
}

function dedupe(problems: FieldProblem[]): FieldProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Every child object of a service.
 * @throws ValidationError when the merged spec breaks a rule; LlmisvcError (NOT_FOUND) for a missing baseRef.
 */
export function renderService(input: RenderInput): RenderOutput {
  const { service, apiVersions, options } = input;
  const namespace = service.metadata.namespace ?? 'default';
  const global: GlobalConfig = {
    IngressGatewayName: options.gateway.name,
    IngressGatewayNamespace: options.gateway.namespace,
    SchedulerImage: options.schedulerImage,
    InferencePoolGroup:
      apiVersions.has(INFERENCE_POOL_V1) || !apiVersions.has(INFERENCE_X_V1ALPHA2)
        ? 'inference.networking.k8s.io'
        : 'inference.networking.x-k8s.io',
  };
  const { spec, applied, appliedConfigs } = composeSpec({
    service,
    configs: input.configs,
    global,
    namespaces: [...new Set([namespace, options.systemNamespace])],
  });
  const problems = dedupe(mergedProblems(spec, service.metadata.name));
  if (problems.length > 0) {
    throw new ValidationError(
      `LLMInferenceService "${namespace}/${service.metadata.name}" (merged with ${applied.join(', ')})`,
      problems,
    );
  }
  const needs = apiNeeds(spec, options.autoscaling);
  const missing = missingNeeds(needs, apiVersions);
  const lacks = (feature: ApiNeed['feature']) => missing.some((m) => m.feature === feature);

  const workloads = lacks('worker')
    ? renderWorkloads(service, spec).filter((o) => o.kind !== 'LeaderWorkerSet')
    : renderWorkloads(service, spec);
  const scheduler = lacks('scheduler') ? [] : renderScheduler(service, spec, apiVersions);
  const routes = lacks('route') ? [] : renderRoute(service, spec);
  const autoscaling = renderAutoscaling(service, spec, workloads, options.autoscaling, (kind) =>
    lacks(kind === 'ScaledObject' ? 'keda' : 'wva'),
  );
  const order = [
    'ServiceAccount',
    'Role',
    'RoleBinding',
    'Service',
    'Deployment',
    'LeaderWorkerSet',
    'VariantAutoscaling',
    'HorizontalPodAutoscaler',
    'ScaledObject',
    'InferencePool',
    'InferenceModel',
    'HTTPRoute',
  ];
  const children = withTracing(
    [renderWorkloadService(service), ...workloads, ...autoscaling, ...scheduler, ...routes],
    spec,
  ).sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  return {
    spec,
    applied,
    appliedConfigs,
    children,
    shared: renderDefaultGateway(routes, options.gateway),
    needs,
    missing,
  };
}
