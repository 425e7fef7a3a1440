/**
 * @module render/model-routing
 * Model-name routing on the shared Gateway, as KServe v0.20 renders it: besides a service's own
 * `/<ns>/<name>/v1/…` rules, its managed HTTPRoute carries rules that match the model name — the header
 * `X-Gateway-Model-Name: <model>` (set by the gateway's body-based router from the request's `model`) on the OpenAI
 * paths, and KServe's `/publishers/<ns>/models/<model>/v1/…` paths rewritten to `/v1/…`.
 *
 * For a service in a routing group (`spec.router.route.group`), those shared rules carry one weighted backendRef per
 * group member, so the gateway splits the model's traffic by weight; the member's own paths keep going to it alone.
 * Every member renders the same shared rules into its own route (KServe's choice): Gateway API resolves identical
 * matches in favour of the oldest route, so while any member lives the group is served, deleting a member deletes
 * only its route, and no object has to be shared between owners or written by two reconcilers at once.
 *
 * Pure: the controller decides the members and their effective weights (`ModelRouting`) from the cluster's state.
 */
import { childNames, type LLMInferenceServiceSpec } from '../api/index.js';

export const MODEL_NAME_HEADER = 'X-Gateway-Model-Name';
export const ROUTING_GROUP_LABEL = 'serving.kserve.io/routing-group';
/** The OpenAI (and Anthropic) paths the model-name rules serve, as the per-service rules do. */
export const MODEL_API_PATHS = [
  '/v1/completions',
  '/v1/chat/completions',
  '/v1/responses',
  '/v1/messages',
  '/v1/embeddings',
] as const;

/** A backendRef as Gateway API spells it. */
export interface BackendRef {
  group: string;
  kind: string;
  name: string;
  port: number;
}

/** One member of a routing group as the route serves it. */
export interface GroupMemberBackend {
  /** The member's metadata.name. */
  name: string;
  backend: BackendRef;
  /** The weight the gateway gives it: its spec weight, or 0 while it is not Ready or is stopped. */
  weight: number;
}

/** What the controller tells the renderer about model-name routing; offline renders use the default. */
export interface ModelRouting {
  /**
   * False when another service in the namespace keeps this model name (a ModelNameCollision): the service then
   * renders no model-name rules, so two services never answer one name.
   */
  enabled: boolean;
  /** The routing group's members, this service included; undefined: the service alone at its spec weight. */
  members?: readonly GroupMemberBackend[] | undefined;
}

/** Gateway API's limit of backendRefs in one HTTPRoute rule. */
export const MAX_GROUP_BACKENDS = 16;

export const DEFAULT_MODEL_ROUTING: ModelRouting = { enabled: true };

/** The model name clients send: `spec.model.name`, else the service's name. */
export function servedModelName(spec: LLMInferenceServiceSpec, serviceName: string): string {
  return spec.model?.name ?? serviceName;
}

/**
 * Where a service's model traffic goes: its InferencePool (its own or `pool.ref`) behind a scheduler, else its
 * workload Service — the same backend its own `/<ns>/<name>/v1/…` rules use.
 */
export function modelBackendRef(
  serviceName: string,
  spec: LLMInferenceServiceSpec,
  inferencePoolGroup: string,
): BackendRef {
  const scheduler = spec.router?.scheduler;
  if (!scheduler) {
    return { group: '', kind: 'Service', name: childNames(serviceName).workloadService, port: 8000 };
  }
  return {
    group: inferencePoolGroup,
    kind: 'InferencePool',
    name: scheduler.pool?.ref?.name ?? childNames(serviceName).inferencePool,
    port: 8000,
  };
}

// Gateway API's pattern for a path match value: a model name outside it cannot form a /publishers/ path.
const GATEWAY_PATH = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;
// Gateway API's header value: visible ASCII, single inner spaces or tabs; at most 4096 characters.
const HEADER_VALUE = /^[!-~]+(?:[ \t][!-~]+)*$/;

/** Whether the model name can be matched by header (and by path), as Gateway API validates those fields. */
export function modelNameRoutable(model: string): { header: boolean; path: boolean } {
  const header = model.length <= 4096 && HEADER_VALUE.test(model);
  return { header, path: header && GATEWAY_PATH.test(model) && !model.split('/').includes('..') };
}

const NO_TIMEOUTS = { request: '0s', backendRequest: '0s' };

/**
 * The model-name rules of a service's route: one rule matching the header on the API paths, and one
 * `/publishers/<ns>/models/<model>/v1/…` rule per API path. Empty when routing is disabled or the name is not
 * routable. Weighted backendRefs only for a group (a lone service keeps the plain form of its other rules).
 */
export function modelNameRules(input: {
  namespace: string;
  /** The service's metadata.name. */
  name: string;
  model: string;
  own: BackendRef;
  /** The service's spec weight when it is in a group. */
  ownWeight: number | undefined;
  routing: ModelRouting;
}): Record<string, unknown>[] {
  const { namespace, name, model, own, ownWeight, routing } = input;
  if (!routing.enabled) return [];
  const routable = modelNameRoutable(model);
  if (!routable.header) return [];
  const backendRefs =
    ownWeight === undefined
      ? [own]
      : (routing.members ?? [{ name, backend: own, weight: ownWeight }])
          .slice()
          .sort((a, b) => a.name.localeCompare(b.name))
          // Gateway API allows 16 backendRefs per rule; the controller reports members past that (GroupDegraded).
          .slice(0, MAX_GROUP_BACKENDS)
          .map((m) => ({ ...m.backend, weight: m.weight }));
  const rules: Record<string, unknown>[] = [
    {
      matches: MODEL_API_PATHS.map((path) => ({
        path: { type: 'PathPrefix', value: path },
        headers: [{ type: 'Exact', name: MODEL_NAME_HEADER, value: model }],
      })),
      backendRefs,
      timeouts: NO_TIMEOUTS,
    },
  ];
  if (routable.path) {
    for (const path of MODEL_API_PATHS) {
      rules.push({
        matches: [{ path: { type: 'PathPrefix', value: `/publishers/${namespace}/models/${model}${path}` } }],
        filters: [
          {
            type: 'URLRewrite',
            urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: path } },
          },
        ],
        backendRefs,
        timeouts: NO_TIMEOUTS,
      });
    }
  }
  return rules;
}
