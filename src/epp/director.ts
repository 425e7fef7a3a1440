/**
 * @module epp/director
 * One request's decision, pure: parse the body, resolve the model (InferenceModel / InferenceObjective mapping and
 * criticality), keep the candidates that are fresh and allowed by the gateway's subset hint, shed sheddable load
 * when saturated, then run the scheduler. The ext_proc server (I/O) calls this and turns the answer into messages.
 */
import type { EndpointPickerConfig } from './config.js';
import { PREFIX_MATCHES, type PrefixMatches } from './plugins/index.js';
import { priorityOfCriticality } from './flow-control/index.js';
import { RequestError, parseRequestBody, type ParsedBody } from './request.js';
import { isStale, shouldShed } from './saturation.js';
import { primaryTarget, schedule } from './scheduler.js';
import {
  CycleState,
  type Criticality,
  type Endpoint,
  type SchedulingRequest,
  type SchedulingResult,
} from './types.js';

/** vLLM's body field for KV-cache transfer between prefill and decode servers (NixlConnector). */
const KV_TRANSFER_PARAMS = 'kv_transfer_params';

/** How a client-facing model name is served (InferenceModel v1alpha2 / InferenceObjective v1). */
export interface ModelRoute {
  criticality: Criticality;
  /** Target models (base model or LoRA adapter) with weights; empty = serve the requested name as is. */
  targets: readonly { name: string; weight: number }[];
}

/** A model name the request's `model` is rewritten to, chosen by weight among its rule's targets. */
export type ModelTarget = { readonly name: string; readonly weight: number };

/**
 * GIE's InferenceModelRewrite rules of the pool, merged: a rule matching the model exactly wins over a generic one
 * (no matches: every model). A model no rule matches is served as requested (no 404, unlike InferenceModel).
 */
export interface ModelRewrites {
  readonly exact: ReadonlyMap<string, readonly ModelTarget[]>;
  readonly generic: readonly ModelTarget[] | undefined;
}

/** What Kubernetes (or static flags) say about models and objectives. */
export interface ModelDirectory {
  /** By client-facing model name; when non-empty, models not listed get 404. */
  readonly models: ReadonlyMap<string, ModelRoute>;
  /** InferenceObjective name → priority (negative = sheddable), selected by header `x-gateway-inference-objective`. */
  readonly objectives: ReadonlyMap<string, number>;
  /** InferenceModelRewrite rules (GIE v1's model aliasing and traffic splitting); an InferenceModel's targets win. */
  readonly rewrites?: ModelRewrites | undefined;
}

/** The targets a request for `model` is rewritten to: its InferenceModel's, else its InferenceModelRewrite rule's. */
function targetsOf(route: ModelRoute | undefined, model: string, rewrites: ModelRewrites | undefined) {
  if (route && route.targets.length > 0) return route.targets;
  if (!rewrites || !model) return [];
  return rewrites.exact.get(model) ?? rewrites.generic ?? [];
}

export const emptyModelDirectory: ModelDirectory = { models: new Map(), objectives: new Map() };

export const OBJECTIVE_HEADER = 'x-gateway-inference-objective';

export interface DecisionInput {
  requestId: string;
  path: string;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string>>;
  /** The request body; undefined for requests without one (then no prompt and no model are known). */
  body: Buffer | undefined;
  /** `envoy.lb.subset_hint` addresses, when the gateway sent some. */
  subsetHint?: ReadonlySet<string> | undefined;
  /** What the config's preparers (token-producer) produced for this request; copied into the cycle state. */
  requestData?: ReadonlyMap<string, unknown> | undefined;
  /** The body already parsed (flow control reads the model before queueing); undefined = parse `body` here. */
  parsed?: ParsedBody | undefined;
}

export type Decision =
  | {
      kind: 'route';
      endpoint: Endpoint;
      /** Headers to add (prefill header and the like). */
      headers: Record<string, string>;
      model: string;
      targetModel: string;
      /** The re-serialised body when the model name was rewritten; undefined = forward unchanged. */
      rewrittenBody: Buffer | undefined;
      result: SchedulingResult;
      criticality: Criticality;
      /** The request as the scheduler saw it (post-response hooks get it back). */
      request: SchedulingRequest;
      /** Share of the prompt's blocks the chosen endpoint held, when a prefix scorer ran. */
      prefixHitRatio: number | undefined;
    }
  | { kind: 'reject'; error: RequestError; model: string };

export function criticalityOfPriority(priority: number): Criticality {
  return priority < 0 ? 'Sheddable' : priority > 0 ? 'Critical' : 'Standard';
}

/**
 * The priority flow control queues a request at: its InferenceObjective's (header `x-gateway-inference-objective`),
 * else its model's criticality (InferenceModel form), else 0.
 */
export function requestPriority(
  model: string,
  headers: Readonly<Record<string, string>>,
  directory: ModelDirectory,
): number {
  const objective = headers[OBJECTIVE_HEADER];
  const priority = objective === undefined ? undefined : directory.objectives.get(objective);
  if (priority !== undefined) return priority;
  const route = model ? directory.models.get(model) : undefined;
  return route ? priorityOfCriticality(route.criticality) : 0;
}

/** The Pod label naming a model server's engine (`vllm`, `sglang`, …), as llm-d reads it; then GIE's older one. */
export const ENGINE_TYPE_LABELS = [
  'llm-d.ai/engine-type',
  'inference.networking.k8s.io/engine-type',
] as const;

/**
 * The `priority` a model server's own scheduler should see for a request of `priority`. InferenceObjective priorities
 * are "higher is more urgent", as SGLang reads its field; vLLM serves lower values first, so for an endpoint labelled
 * as vLLM the sign flips (as llm-d-router does; an unlabelled endpoint gets the value as it is).
 */
export function enginePriority(priority: number, endpoint: Endpoint): number {
  const engine = endpoint.labels[ENGINE_TYPE_LABELS[0]] || endpoint.labels[ENGINE_TYPE_LABELS[1]];
  return engine?.toLowerCase() === 'vllm' ? 0 - priority : priority;
}

function chooseTarget(targets: readonly ModelTarget[], model: string, random: () => number): string {
  if (targets.length === 0) return model;
  const total = targets.reduce((sum, t) => sum + Math.max(0, t.weight), 0);
  if (total <= 0) return targets[0]!.name;
  let r = random() * total;
  for (const t of targets) {
    r -= Math.max(0, t.weight);
    if (r < 0) return t.name;
  }
  return targets[targets.length - 1]!.name;
}

/** Decides where one request goes, or why it is refused. */
export function decide(
  input: DecisionInput,
  endpoints: readonly Endpoint[],
  config: EndpointPickerConfig,
  directory: ModelDirectory,
  now: number,
  random: () => number = Math.random,
): Decision {
  let model = '';
  let prompt = '';
  let json: Record<string, unknown> | undefined;
  try {
    if (input.parsed !== undefined || (input.body !== undefined && input.body.length > 0)) {
      const parsed = input.parsed ?? parseRequestBody(input.path, input.body!);
      model = parsed.model;
      prompt = parsed.prompt;
      json = parsed.json;
    }
  } catch (error) {
    if (error instanceof RequestError) return { kind: 'reject', error, model };
    throw error;
  }

  const route = model ? directory.models.get(model) : undefined;
  if (model && directory.models.size > 0 && !route) {
    return {
      kind: 'reject',
      model,
      error: new RequestError(404, `model "${model}" is not served by this pool`, 'model_not_found'),
    };
  }
  let criticality: Criticality = route?.criticality ?? 'Standard';
  const objective = input.headers[OBJECTIVE_HEADER];
  if (objective !== undefined) {
    const priority = directory.objectives.get(objective);
    if (priority !== undefined) criticality = criticalityOfPriority(priority);
  }
  const targetModel = chooseTarget(targetsOf(route, model, directory.rewrites), model, random);

  const thresholds = config.saturation;
  const candidates: Endpoint[] = [];
  for (const e of endpoints) {
    if (isStale(e, now, thresholds)) continue;
    if (input.subsetHint && !input.subsetHint.has(e.address)) continue;
    candidates.push(e);
  }
  if (candidates.length === 0) {
    return {
      kind: 'reject',
      model,
      error: new RequestError(503, 'no ready model server endpoint with fresh metrics'),
    };
  }
  // With flow control, saturation made the request wait before it got here: it is not shed.
  if (!config.flowControl && shouldShed(criticality, config.detector.saturated(candidates, now))) {
    return {
      kind: 'reject',
      model,
      error: new RequestError(429, 'the pool is saturated and this request is sheddable; retry later'),
    };
  }

  const context = {
    request: {
      requestId: input.requestId,
      model,
      targetModel,
      prompt,
      criticality,
      headers: input.headers,
      subsetHint: input.subsetHint,
    },
    state: new CycleState(),
    now,
    random,
  };
  if (input.requestData) for (const [key, value] of input.requestData) context.state.write(key, value);
  const result = schedule(config.scheduler, context, candidates);
  if (!result) {
    return {
      kind: 'reject',
      model,
      error: new RequestError(503, 'no endpoint passed the scheduling filters'),
    };
  }
  const endpoint = primaryTarget(result);
  let rewrittenBody: Buffer | undefined;
  // The P/D connector's own parameters, which llm-d's routing sidecar writes between prefill and decode: a client's
  // would have a model server fetch KV blocks from whatever host they name (vLLM's NixlConnector dials
  // `remote_host`) or take a prompt for prefilled. They never pass the gateway.
  const clientKvTransfer = json !== undefined && KV_TRANSFER_PARAMS in json;
  if (json && (targetModel !== model || config.propagatePriority || clientKvTransfer)) {
    delete json[KV_TRANSFER_PARAMS];
    json['model'] = targetModel;
    // Written over whatever the client sent: a client does not get to promote itself in the server's queue.
    if (config.propagatePriority)
      json['priority'] = enginePriority(requestPriority(model, input.headers, directory), endpoint);
    rewrittenBody = Buffer.from(JSON.stringify(json));
  }
  const matches = context.state.read<PrefixMatches>(PREFIX_MATCHES);
  return {
    kind: 'route',
    endpoint,
    request: context.request,
    prefixHitRatio:
      matches && matches.totalBlocks > 0
        ? (matches.matched.get(endpoint.address) ?? 0) / matches.totalBlocks
        : undefined,
    headers: result.headers,
    model,
    targetModel,
    rewrittenBody,
    result,
    criticality,
  };
}
