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
  const gatewayRefs = spec.router?.gateway?.refs ?? [];
  if (gatewayRefs.length > 0) {
    routeSpec['parentRefs'] = gatewayRefs.map((ref) => ({
      group: 'gateway.networking.k8s.io',
      kind: 'Gateway',
      name: ref.name,
      namespace: ref.namespace ?? service.metadata.namespace ?? 'default',
      ...(ref.sectionName ? { sectionName: ref.sectionName } : {}),
    }));
  }
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
