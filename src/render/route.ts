/**
 * @module render/route
 * The HTTPRoute a managed `router.route` creates, and the default Gateway it attaches to when the service names
 * no Gateway of its own: the shared entry point for external traffic, owned by no single service.
 */
import { childNames, type LLMInferenceService, type LLMInferenceServiceSpec } from '../api/index.js';
import { GATEWAY_V1 } from './dependencies.js';
import { childMetadata, MANAGED_BY } from './labels.js';
import { modelBackendRef, modelNameRules, type ModelRouting, servedModelName } from './model-routing.js';
import type { KubeObject } from './workload.js';
import type { FieldProblem } from '../errors/index.js';

/** The default Gateway: where services without `gateway.refs` are exposed. */
export interface GatewayOptions {
  name: string;
  namespace: string;
  className: string;
  listeners: Record<string, unknown>[];
}

export const DEFAULT_GATEWAY: GatewayOptions = {
  name: 'llmisvc-gateway',
  namespace: 'llmisvc-system',
  // Envoy Gateway's conventional GatewayClass.
  className: 'eg',
  listeners: [{ name: 'http', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } }],
};

type ParentRef = { group?: string; kind?: string; name?: string; namespace?: string; sectionName?: string };

/**
 * The managed HTTPRoute, or nothing when the service uses existing routes (`route.http.refs`) or no route. Its
 * rules: the service's own (from the route preset or its spec), then the model-name rules (`model-routing.ts`).
 */
export function renderRoute(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
  routing: ModelRouting,
  inferencePoolGroup: string,
): KubeObject[] {
  const route = spec.router?.route;
  if (!route || (route.http?.refs?.length ?? 0) > 0) return [];
  const routeSpec = { ...(route.http?.spec ?? {}) } as Record<string, unknown>;
  const namespace = service.metadata.namespace ?? 'default';
  const shared = modelNameRules({
    namespace,
    name: service.metadata.name,
    model: servedModelName(spec, service.metadata.name),
    own: modelBackendRef(service.metadata.name, spec, inferencePoolGroup),
    ownWeight: route.group === undefined ? undefined : (route.weight ?? 0),
    routing,
  });
  if (shared.length > 0) {
    routeSpec['rules'] = [...((routeSpec['rules'] as unknown[] | undefined) ?? []), ...shared];
  }
  const parentRefs = routeParentRefs(service, spec);
  if (parentRefs !== undefined) routeSpec['parentRefs'] = parentRefs;
  return [
    {
      apiVersion: GATEWAY_V1,
      kind: 'HTTPRoute',
      metadata: childMetadata(service, childNames(service.metadata.name).route, {
        'app.kubernetes.io/component': 'llminferenceservice-router',
      }),
      spec: routeSpec,
    },
  ];
}

/** The route's parents: `gateway.refs` when given, else (undefined) those of the route spec as written. */
function routeParentRefs(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
): ParentRef[] | undefined {
  const gatewayRefs = spec.router?.gateway?.refs ?? [];
  if (gatewayRefs.length === 0)
    return (spec.router?.route?.http?.spec as { parentRefs?: ParentRef[] } | undefined)?.parentRefs;
  return gatewayRefs.map((ref) => ({
    group: 'gateway.networking.k8s.io',
    kind: 'Gateway',
    name: ref.name,
    namespace: ref.namespace ?? service.metadata.namespace ?? 'default',
    ...(ref.sectionName ? { sectionName: ref.sectionName } : {}),
  }));
}

interface PathMatch {
  path?: { type?: string; value?: string };
}

/**
 * Problems with the route rules a service writes (its spec or its configs) for the shared default Gateway. Every
 * service's route attaches there, and Gateway API gives an Exact or longer match precedence over another route's
 * prefix: a rule for `/<their namespace>/<their name>/v1/chat/completions`, or for `/v1/chat/completions` with a
 * model-name header, would take another tenant's traffic — through a route the controller writes with its own rights.
 * So on that Gateway each rule matches only paths under the service's own `/<namespace>/<name>` (PathPrefix or Exact;
 * a rule without a path matches every path). The model-name rules the renderer adds are not the spec's and not
 * checked here: who serves a model name is decided by `routing-plan.ts`. Another Gateway (`gateway.refs`) takes any
 * rule its listeners admit.
 */
export function sharedGatewayRouteProblems(
  service: LLMInferenceService,
  spec: LLMInferenceServiceSpec,
  gateway: Pick<GatewayOptions, 'name' | 'namespace'>,
): FieldProblem[] {
  const route = spec.router?.route;
  if (!route || (route.http?.refs?.length ?? 0) > 0) return [];
  const onShared = (routeParentRefs(service, spec) ?? []).some(
    (ref) =>
      (ref.kind ?? 'Gateway') === 'Gateway' &&
      ref.name === gateway.name &&
      (ref.namespace ?? service.metadata.namespace ?? 'default') === gateway.namespace,
  );
  if (!onShared) return [];
  const own = `/${service.metadata.namespace ?? 'default'}/${service.metadata.name}`;
  const confined = (match: PathMatch): boolean => {
    const type = match.path?.type ?? 'PathPrefix';
    const value = match.path?.value;
    if (value === undefined || (type !== 'PathPrefix' && type !== 'Exact')) return false;
    return (value === own || value.startsWith(`${own}/`)) && !value.split('/').includes('..');
  };
  const rules = (route.http?.spec as { rules?: { matches?: PathMatch[] }[] } | undefined)?.rules ?? [];
  const problems: FieldProblem[] = [];
  const advice =
    `on the shared Gateway ${gateway.namespace}/${gateway.name} a service's rules may match only paths under ` +
    `${own} (PathPrefix or Exact), so that no service takes another's traffic; for other paths attach the route to ` +
    'a Gateway of your own (spec.router.gateway.refs)';
  rules.forEach((rule, i) => {
    const at = `spec.router.route.http.spec.rules[${i}]`;
    const matches = rule.matches ?? [];
    if (matches.length === 0)
      problems.push({ path: `${at}.matches`, message: `is empty, which matches every path: ${advice}` });
    matches.forEach((match, j) => {
      if (confined(match)) return;
      const shown =
        match.path?.value === undefined
          ? 'every path'
          : `${match.path.type ?? 'PathPrefix'} ${JSON.stringify(match.path.value)}`;
      problems.push({ path: `${at}.matches[${j}].path`, message: `matches ${shown}: ${advice}` });
    });
  });
  return problems;
}

/** The default Gateway, when one of the rendered routes attaches to it. */
export function renderDefaultGateway(routes: readonly KubeObject[], gateway: GatewayOptions): KubeObject[] {
  const usesDefault = routes.some((route) =>
    (((route['spec'] as Record<string, unknown>)['parentRefs'] ?? []) as ParentRef[]).some(
      (ref) => ref.name === gateway.name && (ref.namespace ?? '') === gateway.namespace,
    ),
  );
  if (!usesDefault) return [];
  return [
    {
      apiVersion: GATEWAY_V1,
      kind: 'Gateway',
      metadata: { name: gateway.name, namespace: gateway.namespace, labels: { ...MANAGED_BY } },
      spec: { gatewayClassName: gateway.className, listeners: gateway.listeners },
    },
  ];
}
