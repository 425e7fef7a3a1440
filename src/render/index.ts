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
import {
  DEFAULT_GATEWAY,
  type GatewayOptions,
  renderDefaultGateway,
  renderRoute,
  sharedGatewayRouteProblems,
} from './route.js';
import {
  type BackendRef,
  DEFAULT_MODEL_ROUTING,
  MODEL_NAME_HEADER,
  modelBackendRef,
  type ModelRouting,
  ROUTING_GROUP_LABEL,
  servedModelName,
} from './model-routing.js';
import { planModelRouting, type RoutingCandidate, type RoutingPlan } from './routing-plan.js';
import { renderScheduler } from './scheduler.js';
import { withPlainHttpProbes } from './probe-scheme.js';
import { withTracing } from './tracing.js';
import { type KubeObject, renderWorkloads, renderWorkloadService } from './workload.js';

export * from './dependencies.js';
export { componentSelector, ownedLabels, ownerReference, PART_OF, ROLE_LABEL, type Role } from './labels.js';
export { DEFAULT_GATEWAY, type GatewayOptions } from './route.js';
export {
  type BackendRef,
  DEFAULT_MODEL_ROUTING,
  type GroupMemberBackend,
  MAX_GROUP_BACKENDS,
  MODEL_API_PATHS,
  MODEL_NAME_HEADER,
  modelBackendRef,
  modelNameRoutable,
  type ModelRouting,
  ROUTING_GROUP_LABEL,
  servedModelName,
} from './model-routing.js';
export type { AppliedConfig } from '../presets/index.js';
export {
  collisionMessage,
  groupConditions,
  type GroupMemberState,
  planModelRouting,
  quotedModelName,
  type RoutingCandidate,
  type RoutingPlan,
} from './routing-plan.js';
export { type AutoscalingOptions, DEFAULT_AUTOSCALING } from './autoscaling.js';
export { type KubeObject, lwsGroupSize, vllmFlags } from './workload.js';
export { SERVED_BY_ANNOTATION, servedByHeader } from './scheduler.js';
export { ISTIO_NETWORKING_V1, eppServesTls } from './istio-epp-tls.js';
export { httpsProbeWarnings } from './probe-scheme.js';

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
  /** Model-name routing and the routing group's members, decided by the controller; default: the service alone. */
  modelRouting?: ModelRouting | undefined;
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
  /**
   * Where this service's model-name traffic goes (its InferencePool or workload Service): what the other members of
   * its routing group put in their weighted rules for it.
   */
  modelBackend: BackendRef;
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
    SystemNamespace: options.systemNamespace,
    IngressGatewayName: options.gateway.name,
    IngressGatewayNamespace: options.gateway.namespace,
    // The model servers the presets start serve plain HTTP (probes and the pool's target ports say so too).
    EnableTLS: false,
    TLSMinVersion: '',
    TLSCipherSuites: '',
    TLSCipherSuitesOpenSSL: '',
    ModelBasedRoutingHeaderName: MODEL_NAME_HEADER,
    SchedulerImage: options.schedulerImage,
    InferencePoolGroup:
      apiVersions.has(INFERENCE_POOL_V1) || !apiVersions.has(INFERENCE_X_V1ALPHA2)
        ? 'inference.networking.k8s.io'
        : 'inference.networking.x-k8s.io',
  };
  const composed = composeSpec({
    service,
    configs: input.configs,
    global,
    namespaces: [...new Set([namespace, options.systemNamespace])],
  });
  const { applied, appliedConfigs } = composed;
  // KServe's manifests probe its TLS vLLM with HTTPS; the vLLM here serves plain HTTP (see the module).
  const spec = withPlainHttpProbes(composed.spec);
  const problems = dedupe([
    ...mergedProblems(spec, service.metadata.name),
    ...sharedGatewayRouteProblems(service, spec, options.gateway),
  ]);
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
  const routes = lacks('route')
    ? []
    : renderRoute(service, spec, input.modelRouting ?? DEFAULT_MODEL_ROUTING, global.InferencePoolGroup);
  const autoscaling = renderAutoscaling(service, spec, workloads, options.autoscaling, (kind) =>
    lacks(kind === 'ScaledObject' ? 'keda' : 'wva'),
  );
  const order = [
    'ServiceAccount',
    'Role',
    'RoleBinding',
    'Service',
    'DestinationRule',
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
  const group = spec.router?.route?.group;
  if (group !== undefined) for (const child of children) withLabel(child, ROUTING_GROUP_LABEL, group);
  return {
    spec,
    applied,
    appliedConfigs,
    children,
    modelBackend: modelBackendRef(service.metadata.name, spec, global.InferencePoolGroup),
    shared: renderDefaultGateway(routes, options.gateway),
    needs,
    missing,
  };
}

/** Adds a label to a child's metadata (the routing group is on every child, as KServe labels them). */
function withLabel(child: KubeObject, key: string, value: string): void {
  const metadata = child['metadata'] as { labels?: Record<string, string> };
  metadata.labels = { ...metadata.labels, [key]: value };
}

/** The routing candidate of a rendered service: its model name, group, weight and backend, with its state. */
export function routingCandidate(
  service: LLMInferenceService,
  output: Pick<RenderOutput, 'spec' | 'modelBackend'>,
  state: { ready: boolean; stopped: boolean },
): RoutingCandidate {
  const route = output.spec.router?.route;
  return {
    name: service.metadata.name,
    model: servedModelName(output.spec, service.metadata.name),
    group: route?.group,
    weight: route?.weight,
    backend: output.modelBackend,
    ...state,
    creationTimestamp: (service.metadata as { creationTimestamp?: string }).creationTimestamp,
  };
}

/**
 * Renders several services together, offline (`render`, `up`): the services of a file that share a namespace and a
 * routing group split their model name, every member assumed Ready; model-name collisions are resolved as the
 * controller resolves them. Returns each service's output and routing plan, in input order.
 */
export function renderTogether(
  services: readonly LLMInferenceService[],
  base: Omit<RenderInput, 'service' | 'modelRouting'>,
): { service: LLMInferenceService; output: RenderOutput; plan: RoutingPlan | undefined }[] {
  const first = services.map((service) => ({ service, output: renderService({ ...base, service }) }));
  const byNamespace = new Map<string, RoutingCandidate[]>();
  for (const { service, output } of first) {
    const namespace = service.metadata.namespace ?? 'default';
    const candidate = routingCandidate(service, output, { ready: true, stopped: false });
    byNamespace.set(namespace, [...(byNamespace.get(namespace) ?? []), candidate]);
  }
  const plans = new Map([...byNamespace].map(([namespace, c]) => [namespace, planModelRouting(c)]));
  return first.map(({ service }) => {
    const plan = plans.get(service.metadata.namespace ?? 'default')?.get(service.metadata.name);
    return {
      service,
      output: renderService({ ...base, service, modelRouting: plan?.routing }),
      plan,
    };
  });
}
