/**
 * @module epp/types
 * The plain data the scheduling core works on: endpoints with their scraped state, the parsed request, and the
 * plugin interfaces (profile handler, filter, scorer, picker, pre-request / post-response hooks) that mirror the
 * stages of the GIE / llm-d scheduler. Nothing here does I/O.
 */

/** The role a model server plays in prefill/decode disaggregation (`llm-d.ai/role` pod label). */
export type EndpointRole = 'both' | 'prefill' | 'decode';

/** What the metrics scraper last saw on an endpoint (vLLM or SGLang names, normalised). */
export interface EndpointMetrics {
  /** Requests queued, not yet running (`vllm:num_requests_waiting`). */
  waitingQueueSize: number;
  /** Requests running (`vllm:num_requests_running`). */
  runningQueueSize: number;
  /** KV-cache usage in [0, 1] (`vllm:kv_cache_usage_perc`, older `vllm:gpu_cache_usage_perc`). */
  kvCacheUsage: number;
  /** LoRA adapters loaded and running, from `vllm:lora_requests_info`. */
  activeAdapters: ReadonlySet<string>;
  /** LoRA adapters requests are waiting for. */
  waitingAdapters: ReadonlySet<string>;
  /** The most adapters the server holds at once (0 when unknown). */
  maxActiveAdapters: number;
  /** Tokens per KV block from `vllm:cache_config_info` (0 when unknown). */
  blockSize: number;
  /** KV blocks on the GPU from `vllm:cache_config_info` (0 when unknown). */
  numGpuBlocks: number;
  /** Prompt tokens the server has processed since it started (`vllm:prompt_tokens_total`); -1 when not reported. */
  promptTokensTotal: number;
  /** When these numbers were scraped (ms since epoch); 0 = never. */
  updatedAt: number;
}

/** One model-server endpoint in the pool, as the scheduler sees it. */
export interface Endpoint {
  /** `ip:port`, the value written to `x-gateway-destination-endpoint`. */
  readonly address: string;
  /** A stable name (pod name in Kubernetes mode, the address in static mode). */
  readonly name: string;
  readonly role: EndpointRole;
  /** Pod labels (empty in static mode except `llm-d.ai/role`). */
  readonly labels: Readonly<Record<string, string>>;
  metrics: EndpointMetrics;
  /** Requests the EPP sent to this endpoint that have not finished yet (its own count, not scraped). */
  inFlight: number;
  /**
   * Their prompt tokens, estimated at 4 characters a token ({@link estimatedTokens}): the load `token-load-scorer`,
   * `prefix-cache-affinity-filter` and `concurrency-detector` (tokens mode) read.
   */
  inFlightTokens: number;
  /**
   * True when the last scrape failed (a late answer is not a failure) or the metrics are older than the staleness
   * threshold.
   */
  stale: boolean;
}

/** Criticality of a request, as InferenceModel (v1alpha2) names it; priority < 0 maps to Sheddable. */
export type Criticality = 'Critical' | 'Standard' | 'Sheddable';

/** The part of an OpenAI request the scheduler uses. */
export interface SchedulingRequest {
  /** Id for logs (`x-request-id` when the gateway sent one). */
  readonly requestId: string;
  /** The model name the client asked for. */
  readonly model: string;
  /** The model the server should run (after InferenceModel mapping; equal to `model` when unmapped). */
  readonly targetModel: string;
  /** The prompt as one string (chat messages are flattened in order), used for prefix hashing. */
  readonly prompt: string;
  readonly criticality: Criticality;
  /** Request headers, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** Endpoint addresses the gateway allows (`envoy.lb.subset_hint`); undefined = all. */
  readonly subsetHint?: ReadonlySet<string> | undefined;
}

/** Per-request scratch space plugins share within one scheduling cycle (e.g. prefix hashes computed once). */
export class CycleState {
  private readonly values = new Map<string, unknown>();
  read<T>(key: string): T | undefined {
    return this.values.get(key) as T | undefined;
  }
  write(key: string, value: unknown): void {
    this.values.set(key, value);
  }
}

/** Everything a plugin may look at; `now` is passed in so the core stays deterministic under test. */
export interface SchedulingContext {
  readonly request: SchedulingRequest;
  readonly state: CycleState;
  readonly now: number;
  /** Random numbers in [0, 1); injected so pickers are testable. */
  readonly random: () => number;
}

/** Common shape of every plugin: its type name and instance name from the config. */
export interface Plugin {
  readonly type: string;
  readonly name: string;
}

/**
 * A plugin that refers to others by name: linked by the config loader once every plugin is created. `refused` names
 * the plugins whose creation failed (already reported: a reference to one is not reported again).
 */
export interface LinkedPlugin extends Plugin {
  link(plugins: ReadonlyMap<string, Plugin>, refused: ReadonlySet<string>): void;
}

/**
 * A prefix-cache-scorer, linked once all plugins exist (its producer may be listed after it): with no
 * `prefixMatchInfoProducerName` it reads the index of the approx-prefix-cache-producer named
 * `approx-prefix-cache-producer`, when there is one (llm-d-router's default). A scorer reading an approx producer's
 * index may not set index parameters of its own, so the block size is given in one place.
 */

/** A prompt's tokens as llm-d estimates them without a tokenizer: 4 characters a token, at least 1. */
export function estimatedTokens(prompt: string): number {
  return Math.max(1, Math.ceil(prompt.length / 4));
}

export interface Filter extends Plugin {
  filter(context: SchedulingContext, endpoints: readonly Endpoint[]): Endpoint[];
}

export interface Scorer extends Plugin {
  /** Scores in [0, 1], one per endpoint, same order; higher is better. */
  score(context: SchedulingContext, endpoints: readonly Endpoint[]): Float64Array;
}

export interface ScoredEndpoint {
  endpoint: Endpoint;
  score: number;
}

export interface Picker extends Plugin {
  pick(context: SchedulingContext, scored: readonly ScoredEndpoint[]): Endpoint[];
}

/** Outcome of one profile run. */
export interface ProfileResult {
  readonly profile: string;
  /** Chosen endpoints, best first; empty when filters left none. */
  readonly targets: readonly Endpoint[];
}

/** A named pipeline: filters → weighted scorers → picker. */
export interface SchedulingProfile {
  readonly name: string;
  readonly filters: readonly Filter[];
  readonly scorers: readonly { scorer: Scorer; weight: number }[];
  readonly picker: Picker;
}

/** Decides which profiles run (one at a time, seeing earlier results) and which result is primary. */
export interface ProfileHandler extends Plugin {
  /** Names of the profiles to run next, given the results so far; empty = done. */
  pickProfiles(
    context: SchedulingContext,
    profiles: ReadonlyMap<string, SchedulingProfile>,
    results: ReadonlyMap<string, ProfileResult>,
  ): string[];
  /** The profile whose first target receives the request. */
  primaryProfile(results: ReadonlyMap<string, ProfileResult>): string;
}

/** The scheduler's answer. */
export interface SchedulingResult {
  readonly primaryProfile: string;
  readonly results: ReadonlyMap<string, ProfileResult>;
  /** Headers the gateway must add to the request (e.g. `x-prefiller-host-port`). */
  readonly headers: Record<string, string>;
}

/** Runs after a request is scheduled, before it is sent (may add headers, record state). */
export interface PreRequest extends Plugin {
  preRequest(context: SchedulingContext, result: SchedulingResult): void;
}

/**
 * Runs when the response for a request has arrived (or its stream ended), once for each endpoint the request went to:
 * for prefill/decode, the decode and the prefill endpoint.
 */
export interface PostResponse extends Plugin {
  postResponse(request: SchedulingRequest, endpoint: Endpoint): void;
}

/**
 * Runs once per request before the profiles (llm-d's data producers): computes what scorers read from the cycle
 * state, e.g. the precise prefix matches of every candidate.
 */
export interface DataProducer extends Plugin {
  produce(context: SchedulingContext, endpoints: readonly Endpoint[]): void;
}

/** What an asynchronous request-data step sees: the request as it arrived. */
export interface RequestDataInput {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/**
 * Runs before scheduling and may wait (llm-d's token-producer calling the model server's render endpoint); what it
 * writes to `data` is in the request's cycle state when the scheduler runs.
 */
export interface RequestDataPreparer extends Plugin {
  prepareRequestData(
    input: RequestDataInput,
    endpoints: readonly Endpoint[],
    data: Map<string, unknown>,
  ): Promise<void>;
}

/** What a plugin with a background job (e.g. a KV-event subscription) gets from the running EPP. */
export interface PluginHost {
  endpoints(): readonly Endpoint[];
  /** Called after every change of the endpoint set. */
  onEndpointsChange(listener: () => void): void;
  /** Called with the address of every endpoint that leaves. */
  onRemove(listener: (address: string) => void): void;
  readonly log: {
    warn(fields: object, message: string): void;
    info(fields: object, message: string): void;
    debug(fields: object, message: string): void;
  };
}

/** A plugin that runs something while the EPP runs; started after the config loads, stopped at shutdown. */
export interface PluginService extends Plugin {
  start(host: PluginHost): Promise<void>;
  stop(): Promise<void>;
}

export function isFilter(p: Plugin): p is Filter {
  return typeof (p as Partial<Filter>).filter === 'function';
}
export function isScorer(p: Plugin): p is Scorer {
  return typeof (p as Partial<Scorer>).score === 'function';
}
export function isPicker(p: Plugin): p is Picker {
  return typeof (p as Partial<Picker>).pick === 'function';
}
export function isProfileHandler(p: Plugin): p is ProfileHandler {
  return typeof (p as Partial<ProfileHandler>).pickProfiles === 'function';
}
export function isPreRequest(p: Plugin): p is PreRequest {
  return typeof (p as Partial<PreRequest>).preRequest === 'function';
}
export function isPostResponse(p: Plugin): p is PostResponse {
  return typeof (p as Partial<PostResponse>).postResponse === 'function';
}
export function isDataProducer(p: Plugin): p is DataProducer {
  return typeof (p as Partial<DataProducer>).produce === 'function';
}
export function isRequestDataPreparer(p: Plugin): p is RequestDataPreparer {
  return typeof (p as Partial<RequestDataPreparer>).prepareRequestData === 'function';
}
export function isPluginService(p: Plugin): p is PluginService {
  const s = p as Partial<PluginService>;
  return typeof s.start === 'function' && typeof s.stop === 'function';
}

/** Metrics of an endpoint never scraped. */
export function emptyMetrics(): EndpointMetrics {
  return {
    waitingQueueSize: 0,
    runningQueueSize: 0,
    kvCacheUsage: 0,
    activeAdapters: new Set(),
    waitingAdapters: new Set(),
    maxActiveAdapters: 0,
    blockSize: 0,
    numGpuBlocks: 0,
    promptTokensTotal: -1,
    updatedAt: 0,
  };
}
