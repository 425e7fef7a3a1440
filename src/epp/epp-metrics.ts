/**
 * @module epp/epp-metrics
 * The EPP's Prometheus metrics (served on `--metrics-port`), under three sets of names:
 *
 * - ours (`llmisvc_epp_*`): requests by model and outcome, scheduling latency, picks per endpoint, shed requests,
 *   prefix-cache hit ratio and the scraped state of every endpoint;
 * - GIE's (`inference_objective_*`, `inference_pool_*`, `inference_extension_*`) and llm-d-router's (`llm_d_epp_*`),
 *   with the upstream label names, so that upstream dashboards and alerts work unchanged. Only what this EPP can
 *   measure truthfully is exported; README.md lists the upstream metrics left out and why.
 *
 * Model names (and llm-d's fairness ids) come from clients, so their label values are bounded: the first
 * `modelLabelCap` distinct names keep their value, every later one is folded into `other` (as llm-d-router does).
 * A registry per EPP instance, so several can run in one process (tests, `llmisvc up`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Datastore } from './datastore.js';
import { OBJECTIVE_HEADER, type ModelDirectory } from './director.js';
import { fairnessIdOf, type FlowControlObserver } from './flow-control/index.js';
import { flowControlMetrics, type FlowControlMetricsSource } from './flow-control/metrics.js';
import type { Endpoint } from './types.js';

/** Default cap on distinct client-derived label values (model names; fairness ids), as in llm-d-router. */
export const DEFAULT_LABEL_CAP = 1000;
/** The value every client-derived label value past the cap is folded into. */
export const OVERFLOW_LABEL_VALUE = 'other';
/** llm-d's fairness id header (GIE's `x-gateway-inference-fairness-id` is read when it is absent). */
export const FAIRNESS_ID_HEADER = 'x-llm-d-inference-fairness-id';

/** Longest client-derived label value kept as is; a longer one reads as `other` (it would be kept in memory). */
export const MAX_LABEL_VALUE_LENGTH = 256;

/** Keeps the first `cap` distinct values of a client-derived label; later (or overlong) ones read as `other`. */
export class BoundedLabel {
  private readonly admitted = new Set<string>();
  constructor(private readonly cap: number) {}

  bound(value: string): string {
    if (value.length > MAX_LABEL_VALUE_LENGTH) return OVERFLOW_LABEL_VALUE;
    if (this.admitted.has(value)) return value;
    if (this.admitted.size >= this.cap) return OVERFLOW_LABEL_VALUE;
    this.admitted.add(value);
    return value;
  }
}

/** GIE's error codes (`error_code` label), from the HTTP status the EPP answered or the model server returned. */
export function upstreamErrorCode(status: number, fromModelServer = false): string {
  if (fromModelServer) return 'ModelServerError';
  if (status === 429) return 'InferencePoolResourceExhausted';
  if (status === 503) return 'ServiceUnavailable';
  if (status >= 400 && status < 500) return 'BadRequest';
  if (status >= 500) return 'Internal';
  return 'Unknown';
}

/** The labels a request's metrics carry (already bounded). */
interface RequestLabels {
  model_name: string;
  target_model_name: string;
  fairness_id: string;
  priority: string;
}

const LATENCY_BUCKETS = [
  0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60, 120,
  180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
];
const REQUEST_SIZE_BUCKETS = [
  64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152,
  4194304, 8388608, 16777216, 33554432, 67108864, 134217728, 268435456, 536870912, 1073741824,
];
const RESPONSE_SIZE_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
const INPUT_TOKEN_BUCKETS = [
  1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288,
  1048576,
];
const OUTPUT_TOKEN_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];
const NTPOT_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];
const SCHEDULER_BUCKETS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1];

/** How much of a response body is kept to find its `usage` (the tail, where streamed usage arrives). */
const RESPONSE_KEEP_BYTES = 1024 * 1024;
const RESPONSE_TAIL_BYTES = 64 * 1024;

export interface EppMetricsOptions {
  /**
   * Also export the process's own metrics (`process_cpu_seconds_total`, `nodejs_gc_duration_seconds`,
   * `nodejs_eventloop_lag_*`, heap…) — for an EPP that is its own process; not for one inside `llmisvc up`.
   */
  processMetrics?: boolean;
  /** The `name` label of the pool metrics: the InferencePool name (static mode: `epp`, as llm-d's file discovery). */
  poolName?: string;
  /** Namespace label of `llm_d_epp_scheduler_attempts_total` (static mode: `default`, as llm-d's file discovery). */
  poolNamespace?: string;
  /** Cap on distinct model names (and, separately, fairness ids) in labels; default 1000. */
  labelCap?: number;
  /** `build_ref` of the info metrics. */
  buildRef?: string;
  /** Hears an observation that failed when recorded later (see `later`); default: ignored. */
  onError?: (error: unknown) => void;
}

/** Token counts from an OpenAI response's `usage`, when it had one. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number | undefined;
}

/** Finds `usage` in a JSON response body or in the last `data:` events of a server-sent-events stream. */
export function usageFromResponse(body: string): Usage | undefined {
  const text = body.trimStart();
  if (text.startsWith('{')) {
    try {
      return usageOf(JSON.parse(text));
    } catch {
      return undefined;
    }
  }
  const events = text.split('\n').filter((line) => line.startsWith('data:'));
  for (let i = events.length - 1; i >= 0; i--) {
    const data = events[i]!.slice(5).trim();
    if (!data.startsWith('{')) continue;
    try {
      const usage = usageOf(JSON.parse(data));
      if (usage) return usage;
    } catch {
      // A partial event (the kept tail starts mid-event): look further back.
    }
  }
  return undefined;
}

function usageOf(json: unknown): Usage | undefined {
  const usage = (json as { usage?: Record<string, unknown> } | null)?.usage;
  if (typeof usage !== 'object' || usage === null) return undefined;
  const prompt = usage['prompt_tokens'];
  const completion = usage['completion_tokens'];
  if (typeof prompt !== 'number' || typeof completion !== 'number') return undefined;
  const cached = (usage['prompt_tokens_details'] as { cached_tokens?: unknown } | null | undefined)
    ?.cached_tokens;
  return {
    promptTokens: prompt,
    completionTokens: completion,
    cachedTokens: typeof cached === 'number' ? cached : undefined,
  };
}

/**
 * One routed request's metrics, from the pick to the end of its ext_proc stream: response status and body (when
 * the gateway sends them), then duration, sizes and tokens once it is done.
 */
export class RequestObservation {
  private responseBytes = 0;
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private modelServerStatus = 0;
  /** The body passed through the EPP (a chunk, or headers that ended the response): its size is known. */
  private bodySeen = false;
  private finished = false;

  constructor(
    private readonly metrics: EppMetrics,
    private readonly labels: RequestLabels,
    private readonly startedAt: number,
  ) {}

  /** The model server's HTTP status (`:status` of the response headers). */
  responseStatus(status: number, endOfStream = false): void {
    this.modelServerStatus = status;
    if (endOfStream) this.bodySeen = true;
  }

  responseBody(chunk: Uint8Array): void {
    this.bodySeen = true;
    if (chunk.length === 0) return;
    this.responseBytes += chunk.length;
    this.kept.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.keptBytes += chunk.length;
    // A long stream keeps only its tail: streamed usage comes last.
    if (this.keptBytes > RESPONSE_KEEP_BYTES) {
      while (this.kept.length > 1 && this.keptBytes - this.kept[0]!.length >= RESPONSE_TAIL_BYTES)
        this.keptBytes -= this.kept.shift()!.length;
    }
  }

  /** The request is over (response complete, or the stream ended). */
  done(now: number): void {
    if (this.finished) return;
    this.finished = true;
    this.metrics.finishRequest(this.labels, {
      seconds: Math.max(0, now - this.startedAt) / 1000,
      responseBytes: this.responseBytes,
      modelServerStatus: this.modelServerStatus,
      usage: this.keptBytes > 0 ? usageFromResponse(Buffer.concat(this.kept).toString('utf8')) : undefined,
      bodySeen: this.bodySeen,
    });
  }
}

export class EppMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'model' | 'outcome'>;
  readonly schedulingSeconds: Histogram;
  readonly picks: Counter<'endpoint' | 'profile'>;
  readonly shed: Counter<'model'>;
  readonly prefixHitRatio: Histogram;
  readonly requestPhaseSeconds: Histogram;
  /** Failed scrapes of model-server metrics (`llm_d_epp_datalayer_poll_errors_total`). */
  readonly pollErrors: Counter<'source_type'>;

  private readonly models: BoundedLabel;
  private readonly fairnessIds: BoundedLabel;
  private readonly poolName: string;
  private readonly poolNamespace: string;
  private readonly upstream: ReturnType<typeof upstreamFamilies>;
  /** Observations waiting for `flush`, and the hook that hears one that fails. */
  private pending: (() => void)[] = [];
  private readonly onError: (error: unknown) => void;

  constructor(datastore: Datastore, options: EppMetricsOptions = {}) {
    this.onError = options.onError ?? (() => {});
    const registers = [this.registry];
    if (options.processMetrics) {
      // GC pauses stall every request in flight: buckets fine enough to see the ones that reach the tail.
      collectDefaultMetrics({
        register: this.registry,
        gcDurationBuckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      });
    }
    this.models = new BoundedLabel(options.labelCap ?? DEFAULT_LABEL_CAP);
    this.fairnessIds = new BoundedLabel(options.labelCap ?? DEFAULT_LABEL_CAP);
    this.poolName = options.poolName ?? 'epp';
    this.poolNamespace = options.poolNamespace ?? 'default';
    this.requests = new Counter({
      name: 'llmisvc_epp_requests_total',
      help: 'Requests seen by the endpoint picker, by model and outcome (routed, or the HTTP status it answered).',
      labelNames: ['model', 'outcome'],
      registers,
    });
    this.schedulingSeconds = new Histogram({
      name: 'llmisvc_epp_scheduling_duration_seconds',
      help: 'Time to decide one request (body parse, filters, scorers, picker).',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers,
    });
    this.picks = new Counter({
      name: 'llmisvc_epp_endpoint_picks_total',
      help: 'Endpoints chosen, by endpoint address and scheduling profile.',
      labelNames: ['endpoint', 'profile'],
      registers,
    });
    this.shed = new Counter({
      name: 'llmisvc_epp_shed_requests_total',
      help: 'Sheddable requests refused with 429 because the pool was saturated.',
      labelNames: ['model'],
      registers,
    });
    this.requestPhaseSeconds = new Histogram({
      name: 'llmisvc_epp_request_phase_seconds',
      help: 'From the first ext_proc message of a request to the answer that releases it (includes waiting for the body).',
      buckets: [0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.1],
      registers,
    });
    this.prefixHitRatio = new Histogram({
      name: 'llmisvc_epp_prefix_cache_hit_ratio',
      help: 'Fraction of the prompt blocks the chosen endpoint already held (prefix-cache-scorer estimate).',
      buckets: [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1],
      registers,
    });
    this.pollErrors = new Counter({
      name: 'llm_d_epp_datalayer_poll_errors_total',
      help: 'Failed scrapes of model-server /metrics, by data source type (llm-d name).',
      labelNames: ['source_type'],
      registers,
    });
    const endpointGauge = (name: string, help: string, read: (e: Endpoint) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['endpoint'],
        registers,
        collect() {
          this.reset();
          for (const e of datastore.endpoints()) this.set({ endpoint: e.address }, read(e));
        },
      });
    endpointGauge(
      'llmisvc_epp_endpoint_waiting_requests',
      'Scraped waiting queue per endpoint.',
      (e) => e.metrics.waitingQueueSize,
    );
    endpointGauge(
      'llmisvc_epp_endpoint_running_requests',
      'Scraped running requests per endpoint.',
      (e) => e.metrics.runningQueueSize,
    );
    endpointGauge(
      'llmisvc_epp_endpoint_kv_cache_usage',
      'Scraped KV-cache usage (0-1) per endpoint.',
      (e) => e.metrics.kvCacheUsage,
    );
    endpointGauge(
      'llmisvc_epp_endpoint_in_flight_requests',
      'Requests the EPP routed that are not finished.',
      (e) => e.inFlight,
    );
    endpointGauge(
      'llmisvc_epp_endpoint_stale',
      '1 when the endpoint failed its last scrape or has old metrics.',
      (e) => (e.stale ? 1 : 0),
    );
    this.upstream = upstreamFamilies(registers);
    poolGauges(registers, datastore, this.poolName);
    const info = { commit: 'unknown', build_ref: options.buildRef ?? 'unknown' };
    this.upstream.gieInfo.set(info, 1);
    this.upstream.llmdInfo.set(info, 1);
  }

  /**
   * Records observations once the request that made them is on its way (on the event loop's next check phase,
   * `setImmediate`), not on its path: a request's twenty-odd prom-client calls (label hashing, bucket search) took
   * about 0.14 ms of its idle time to first token (bench/results/peers/README.md). A scrape in between sees them a
   * moment later; none is lost.
   */
  later(record: () => void): void {
    if (this.pending.push(record) === 1) setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    const pending = this.pending;
    this.pending = [];
    for (const record of pending) {
      try {
        record();
      } catch (error) {
        this.onError(error);
      }
    }
  };

  /** Time to decide one request: ours and GIE's / llm-d's `scheduler_e2e_duration_seconds`. */
  observeScheduling(seconds: number): void {
    this.schedulingSeconds.observe(seconds);
    this.upstream.gieSchedulerE2E.observe(seconds);
    this.upstream.llmdSchedulerE2E.observe(seconds);
  }

  /** From request receipt until the request body is handled (llm-d `request_processing_duration_seconds`). */
  observeRequestPhase(seconds: number): void {
    this.requestPhaseSeconds.observe(seconds);
    this.upstream.llmdRequestProcessing.observe(seconds);
  }

  /** One plugin call (GIE / llm-d `plugin_duration_seconds`); `extensionPoint` as upstream: Filter, Scorer, Picker. */
  observePlugin(extensionPoint: string, pluginType: string, pluginName: string, seconds: number): void {
    const labels = { extension_point: extensionPoint, plugin_type: pluginType, plugin_name: pluginName };
    this.upstream.giePluginDuration.observe(labels, seconds);
    this.upstream.llmdPluginDuration.observe(labels, seconds);
  }

  /** The registry's flow-control metrics (registered once; read from `source` at scrape time). */
  flowControl(source: () => FlowControlMetricsSource | undefined): FlowControlObserver {
    return flowControlMetrics(this.registry, this.poolName, source);
  }

  /** The bounded labels of a request: model names capped, priority from its InferenceObjective (default 0). */
  requestLabels(
    model: string,
    targetModel: string,
    headers: Readonly<Record<string, string>>,
    directory: ModelDirectory,
  ): RequestLabels {
    const objective = headers[OBJECTIVE_HEADER];
    const priority = objective === undefined ? undefined : directory.objectives.get(objective);
    return {
      model_name: this.models.bound(model),
      target_model_name: this.models.bound(targetModel),
      fairness_id: this.fairnessIds.bound(fairnessIdOf(headers)),
      priority: String(priority ?? 0),
    };
  }

  /** A request the EPP answered itself (refused); `status` is the HTTP status it answered with. */
  recordRefusal(labels: RequestLabels, status: number): void {
    const u = this.upstream;
    const code = upstreamErrorCode(status);
    u.gieRequests.inc(gieLabels(labels));
    u.llmdRequests.inc(labels);
    u.gieErrors.inc({ ...gieLabels(labels), error_code: code });
    u.llmdErrors.inc({ ...labels, error_code: code });
    if (status === 503) {
      u.gieAttempts.inc({ status: 'failure' });
      u.llmdAttempts.inc({
        status: 'failure',
        target_model_name: labels.target_model_name,
        endpoint_name: '',
        namespace: '',
        port: '',
      });
    }
  }

  /** The counters of a routed request; a `RequestObservation` measures it until it is done. */
  countRouted(labels: RequestLabels, endpoint: Endpoint, requestBytes: number): void {
    const u = this.upstream;
    u.gieRequests.inc(gieLabels(labels));
    u.llmdRequests.inc(labels);
    u.gieRequestSizes.observe(gieLabels(labels), requestBytes);
    u.llmdRequestSizes.observe(labels, requestBytes);
    u.gieRunning.inc({ model_name: labels.model_name });
    u.llmdRunning.inc(labels);
    u.gieAttempts.inc({ status: 'success' });
    u.llmdAttempts.inc({
      status: 'success',
      target_model_name: labels.target_model_name,
      endpoint_name: endpoint.name,
      namespace: this.poolNamespace,
      port: endpoint.address.slice(endpoint.address.lastIndexOf(':') + 1),
    });
  }

  /** @internal Called by {@link RequestObservation.done}. */
  finishRequest(
    labels: RequestLabels,
    r: {
      seconds: number;
      responseBytes: number;
      modelServerStatus: number;
      usage: Usage | undefined;
      bodySeen: boolean;
    },
  ): void {
    const u = this.upstream;
    const gie = gieLabels(labels);
    u.gieRunning.dec({ model_name: labels.model_name });
    u.llmdRunning.dec(labels);
    if (r.modelServerStatus >= 500) {
      const code = upstreamErrorCode(r.modelServerStatus, true);
      u.gieErrors.inc({ ...gie, error_code: code });
      u.llmdErrors.inc({ ...labels, error_code: code });
    }
    u.gieDuration.observe(gie, r.seconds);
    u.llmdDuration.observe(labels, r.seconds);
    // Without the body (a gateway that sends the EPP only the request, or only the response's headers, as Envoy's
    // default body mode NONE and the builtin gateway do) there is no size or usage to measure.
    if (!r.bodySeen) return;
    u.gieResponseSizes.observe(gie, r.responseBytes);
    u.llmdResponseSizes.observe(labels, r.responseBytes);
    if (!r.usage) return;
    if (r.usage.promptTokens > 0) {
      u.gieInputTokens.observe(gie, r.usage.promptTokens);
      u.llmdInputTokens.observe(labels, r.usage.promptTokens);
    }
    if (r.usage.completionTokens > 0) {
      u.gieOutputTokens.observe(gie, r.usage.completionTokens);
      u.llmdOutputTokens.observe(labels, r.usage.completionTokens);
      const ntpot = r.seconds / r.usage.completionTokens;
      u.gieNtpot.observe(gie, ntpot);
      u.llmdNtpot.observe(labels, ntpot);
    }
    if (r.usage.cachedTokens !== undefined) {
      u.giePromptCached.observe(gie, r.usage.cachedTokens);
      u.llmdCachedTokens.observe(labels, r.usage.cachedTokens);
    }
  }
}

function gieLabels(l: RequestLabels): { model_name: string; target_model_name: string } {
  return { model_name: l.model_name, target_model_name: l.target_model_name };
}

/** The per-request families, each under GIE's name and llm-d-router's. */
function upstreamFamilies(registers: Registry[]) {
  const gie = ['model_name', 'target_model_name'] as const;
  const llmd = ['model_name', 'target_model_name', 'fairness_id', 'priority'] as const;
  const histogram = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: number[],
  ) => new Histogram<L>({ name, help, labelNames, buckets, registers });
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter<L>({ name, help, labelNames, registers });
  return {
    gieRequests: counter(
      'inference_objective_request_total',
      'Requests by model and target model (GIE).',
      gie,
    ),
    llmdRequests: counter('llm_d_epp_request_total', 'Requests by model and target model (llm-d).', llmd),
    gieErrors: counter('inference_objective_request_error_total', 'Failed requests by error code (GIE).', [
      ...gie,
      'error_code',
    ]),
    llmdErrors: counter('llm_d_epp_request_error_total', 'Failed requests by error code (llm-d).', [
      ...llmd,
      'error_code',
    ]),
    gieDuration: histogram(
      'inference_objective_request_duration_seconds',
      'From the first ext_proc message of a routed request to the end of its response (GIE).',
      gie,
      LATENCY_BUCKETS,
    ),
    llmdDuration: histogram(
      'llm_d_epp_request_duration_seconds',
      'From the first ext_proc message of a routed request to the end of its response (llm-d).',
      llmd,
      LATENCY_BUCKETS,
    ),
    gieRequestSizes: histogram(
      'inference_objective_request_sizes',
      'Request body size in bytes (GIE).',
      gie,
      REQUEST_SIZE_BUCKETS,
    ),
    llmdRequestSizes: histogram(
      'llm_d_epp_request_size_bytes',
      'Request body size in bytes (llm-d).',
      llmd,
      REQUEST_SIZE_BUCKETS,
    ),
    gieResponseSizes: histogram(
      'inference_objective_response_sizes',
      'Response body size in bytes, when the gateway sends the response to the EPP (GIE).',
      gie,
      RESPONSE_SIZE_BUCKETS,
    ),
    llmdResponseSizes: histogram(
      'llm_d_epp_response_size_bytes',
      'Response body size in bytes, when the gateway sends the response to the EPP (llm-d).',
      llmd,
      RESPONSE_SIZE_BUCKETS,
    ),
    gieInputTokens: histogram(
      'inference_objective_input_tokens',
      'Prompt tokens from the response usage (GIE).',
      gie,
      INPUT_TOKEN_BUCKETS,
    ),
    llmdInputTokens: histogram(
      'llm_d_epp_request_input_tokens',
      'Prompt tokens from the response usage (llm-d).',
      llmd,
      INPUT_TOKEN_BUCKETS,
    ),
    gieOutputTokens: histogram(
      'inference_objective_output_tokens',
      'Completion tokens from the response usage (GIE).',
      gie,
      OUTPUT_TOKEN_BUCKETS,
    ),
    llmdOutputTokens: histogram(
      'llm_d_epp_request_output_tokens',
      'Completion tokens from the response usage (llm-d).',
      llmd,
      OUTPUT_TOKEN_BUCKETS,
    ),
    giePromptCached: histogram(
      'inference_objective_prompt_cached_tokens',
      'Prompt tokens served from cache, when the response usage reports them (GIE).',
      gie,
      INPUT_TOKEN_BUCKETS,
    ),
    llmdCachedTokens: histogram(
      'llm_d_epp_request_cached_tokens',
      'Prompt tokens served from cache, when the response usage reports them (llm-d).',
      llmd,
      INPUT_TOKEN_BUCKETS,
    ),
    gieNtpot: histogram(
      'inference_objective_normalized_time_per_output_token_seconds',
      'Request duration divided by completion tokens (GIE).',
      gie,
      NTPOT_BUCKETS,
    ),
    llmdNtpot: histogram(
      'llm_d_epp_request_ntpot_seconds',
      'Request duration divided by completion tokens (llm-d).',
      llmd,
      NTPOT_BUCKETS,
    ),
    gieRunning: new Gauge({
      name: 'inference_objective_running_requests',
      help: 'Routed requests whose response has not finished, by model (GIE).',
      labelNames: ['model_name'],
      registers,
    }),
    llmdRunning: new Gauge({
      name: 'llm_d_epp_request_running',
      help: 'Routed requests whose response has not finished (llm-d).',
      labelNames: llmd,
      registers,
    }),
    gieSchedulerE2E: new Histogram({
      name: 'inference_extension_scheduler_e2e_duration_seconds',
      help: 'Time to decide one request (GIE).',
      buckets: SCHEDULER_BUCKETS,
      registers,
    }),
    llmdSchedulerE2E: new Histogram({
      name: 'llm_d_epp_scheduler_e2e_duration_seconds',
      help: 'Time to decide one request (llm-d).',
      buckets: SCHEDULER_BUCKETS,
      registers,
    }),
    gieAttempts: counter('inference_extension_scheduler_attempts_total', 'Scheduling attempts (GIE).', [
      'status',
    ]),
    llmdAttempts: counter('llm_d_epp_scheduler_attempts_total', 'Scheduling attempts (llm-d).', [
      'status',
      'target_model_name',
      'endpoint_name',
      'namespace',
      'port',
    ]),
    giePluginDuration: histogram(
      'inference_extension_plugin_duration_seconds',
      'Time in one plugin call, by extension point, plugin type and plugin name (GIE).',
      ['extension_point', 'plugin_type', 'plugin_name'],
      SCHEDULER_BUCKETS,
    ),
    llmdPluginDuration: histogram(
      'llm_d_epp_plugin_duration_seconds',
      'Time in one plugin call, by extension point, plugin type and plugin name (llm-d).',
      ['extension_point', 'plugin_type', 'plugin_name'],
      SCHEDULER_BUCKETS,
    ),
    llmdRequestProcessing: new Histogram({
      name: 'llm_d_epp_request_processing_duration_seconds',
      help: 'From request receipt until the request body has been handled (llm-d).',
      buckets: SCHEDULER_BUCKETS,
      registers,
    }),
    gieInfo: new Gauge({
      name: 'inference_extension_info',
      help: 'Build information (GIE).',
      labelNames: ['commit', 'build_ref'],
      registers,
    }),
    llmdInfo: new Gauge({
      name: 'llm_d_epp_info',
      help: 'Build information (llm-d).',
      labelNames: ['commit', 'build_ref'],
      registers,
    }),
  };
}

/** Pool aggregates over the endpoints with fresh metrics, computed at scrape time (GIE and llm-d names). */
function poolGauges(registers: Registry[], datastore: Datastore, poolName: string): void {
  const fresh = () => datastore.endpoints().filter((e) => !e.stale && e.metrics.updatedAt > 0);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const stdDev = (xs: number[]) => {
    const m = mean(xs);
    return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
  };
  const aggregate = (
    name: string,
    help: string,
    of: (xs: number[]) => number,
    read: (e: Endpoint) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        const endpoints = fresh();
        // No fresh endpoint, no average: an absent series rather than a made-up 0.
        if (endpoints.length > 0) this.set({ name: poolName }, of(endpoints.map(read)));
      },
    });
  const kv = (e: Endpoint) => e.metrics.kvCacheUsage;
  const queue = (e: Endpoint) => e.metrics.waitingQueueSize;
  const running = (e: Endpoint) => e.metrics.runningQueueSize;
  aggregate('inference_pool_average_kv_cache_utilization', 'Mean KV-cache utilization (GIE).', mean, kv);
  aggregate('llm_d_epp_average_kv_cache_utilization', 'Mean KV-cache utilization (llm-d).', mean, kv);
  aggregate('llm_d_epp_std_dev_kv_cache_utilization', 'Spread of KV-cache utilization (llm-d).', stdDev, kv);
  aggregate('inference_pool_average_queue_size', 'Mean waiting queue (GIE).', mean, queue);
  aggregate('llm_d_epp_average_queue_size', 'Mean waiting queue (llm-d).', mean, queue);
  aggregate('llm_d_epp_std_dev_queue_size', 'Spread of the waiting queue (llm-d).', stdDev, queue);
  aggregate('inference_pool_average_running_requests', 'Mean running requests (GIE).', mean, running);
  aggregate('llm_d_epp_average_running_requests', 'Mean running requests (llm-d).', mean, running);
  aggregate('llm_d_epp_std_dev_running_requests', 'Spread of running requests (llm-d).', stdDev, running);
  for (const name of ['inference_pool_ready_pods', 'llm_d_epp_ready_endpoints']) {
    new Gauge({
      name,
      help: 'Endpoints with fresh metrics in the pool.',
      labelNames: ['name'],
      registers,
      collect() {
        this.set({ name: poolName }, fresh().length);
      },
    });
  }
  const perEndpoint = (name: string, endpointLabel: string) =>
    new Gauge({
      name,
      help: 'Waiting queue per model server.',
      labelNames: ['name', endpointLabel],
      registers,
      collect() {
        this.reset();
        for (const e of fresh())
          this.set({ name: poolName, [endpointLabel]: e.name }, e.metrics.waitingQueueSize);
      },
    });
  perEndpoint('inference_pool_per_pod_queue_size', 'model_server_pod');
  perEndpoint('llm_d_epp_per_endpoint_queue_size', 'model_server_endpoint');
}
