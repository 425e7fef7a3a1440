/**
 * @module sim/metrics
 * The simulator's `/metrics`, in vLLM's metric names and label sets so an Endpoint Picker scraping a real vLLM
 * scrapes the simulator unchanged. Gauges are read from the engine only when scraped (the EPP scrapes every 50 ms,
 * so a scrape must stay cheap); histograms and counters are updated as requests progress. Each simulator has its own
 * registry, so several can run in one process.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineStats } from './performance-model.js';

// vLLM's histogram buckets (vllm/v1/metrics/loggers.py), so dashboards built for vLLM read the same.
const ttftBuckets = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640,
  2560,
];
const itlBuckets = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
const requestBuckets = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];

export interface MetricsSource {
  stats(): EngineStats;
}

export interface SimulatorMetricsOptions {
  model: string;
  maxLoras: number;
  blockSize: number;
  numGpuBlocks: number;
  enablePrefixCaching: boolean;
  /** Wall clock in seconds, for `lora_requests_info`'s value (vLLM reports the time of the update). */
  wallSeconds: () => number;
}

export class SimulatorMetrics {
  readonly registry = new Registry();
  private readonly labels: { model_name: string; engine: string };
  private readonly ttft: Histogram<'model_name' | 'engine'>;
  private readonly itl: Histogram<'model_name' | 'engine'>;
  private readonly e2e: Histogram<'model_name' | 'engine'>;
  private readonly queueTime: Histogram<'model_name' | 'engine'>;
  private readonly promptTokens: Counter<'model_name' | 'engine'>;
  private readonly generationTokens: Counter<'model_name' | 'engine'>;
  private readonly success: Counter<'model_name' | 'engine' | 'finished_reason'>;

  constructor(source: MetricsSource, options: SimulatorMetricsOptions) {
    const registry = this.registry;
    const labels = { model_name: options.model, engine: '0' };
    this.labels = labels;
    const labelNames = ['model_name', 'engine'] as const;
    let last: EngineStats | undefined;
    // One engine snapshot per scrape, shared by every gauge collected in it.
    const snapshot = (): EngineStats => (last ??= source.stats());
    const clear = (): void => {
      last = undefined;
    };
    new Gauge({
      name: 'vllm:num_requests_running',
      help: 'Number of requests in model execution batches.',
      labelNames,
      registers: [registry],
      collect() {
        clear();
        this.set(labels, snapshot().running);
      },
    });
    new Gauge({
      name: 'vllm:num_requests_waiting',
      help: 'Number of requests waiting to be processed.',
      labelNames,
      registers: [registry],
      collect() {
        this.set(labels, snapshot().waiting);
      },
    });
    new Gauge({
      name: 'vllm:kv_cache_usage_perc',
      help: 'KV-cache usage. 1 means 100 percent usage.',
      labelNames,
      registers: [registry],
      collect() {
        this.set(labels, snapshot().kvUsage);
      },
    });
    new Gauge({
      // The name vLLM used before 0.10; older Endpoint Picker configurations still scrape it.
      name: 'vllm:gpu_cache_usage_perc',
      help: 'GPU KV-cache usage. 1 means 100 percent usage (deprecated name of vllm:kv_cache_usage_perc).',
      labelNames,
      registers: [registry],
      collect() {
        this.set(labels, snapshot().kvUsage);
      },
    });
    new Gauge({
      name: 'vllm:lora_requests_info',
      help: 'Running stats on lora requests.',
      labelNames: ['max_lora', 'waiting_lora_adapters', 'running_lora_adapters'],
      registers: [registry],
      collect() {
        const stats = snapshot();
        this.reset();
        this.set(
          {
            max_lora: String(options.maxLoras),
            waiting_lora_adapters: stats.waitingLoras.join(','),
            running_lora_adapters: stats.runningLoras.join(','),
          },
          options.wallSeconds(),
        );
      },
    });
    new Gauge({
      name: 'vllm:cache_config_info',
      help: 'Information of the LLMEngine CacheConfig',
      labelNames: ['block_size', 'num_gpu_blocks', 'enable_prefix_caching', 'cache_dtype', 'engine'],
      registers: [registry],
    }).set(
      {
        block_size: String(options.blockSize),
        num_gpu_blocks: String(options.numGpuBlocks),
        enable_prefix_caching: options.enablePrefixCaching ? 'True' : 'False',
        cache_dtype: 'auto',
        engine: '0',
      },
      1,
    );
    let reportedQueries = 0;
    let reportedHits = 0;
    new Counter({
      name: 'vllm:prefix_cache_queries_total',
      help: 'Prefix cache queries, in terms of number of queried tokens.',
      labelNames,
      registers: [registry],
      collect() {
        const total = snapshot().prefixQueriedTokens;
        this.inc(labels, total - reportedQueries);
        reportedQueries = total;
      },
    });
    new Counter({
      name: 'vllm:prefix_cache_hits_total',
      help: 'Prefix cache hits, in terms of number of cached tokens.',
      labelNames,
      registers: [registry],
      collect() {
        const total = snapshot().prefixHitTokens;
        this.inc(labels, total - reportedHits);
        reportedHits = total;
      },
    });
    this.promptTokens = new Counter({
      name: 'vllm:prompt_tokens_total',
      help: 'Number of prefill tokens processed.',
      labelNames,
      registers: [registry],
    });
    this.generationTokens = new Counter({
      name: 'vllm:generation_tokens_total',
      help: 'Number of generation tokens processed.',
      labelNames,
      registers: [registry],
    });
    this.success = new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: ['model_name', 'engine', 'finished_reason'],
      registers: [registry],
    });
    this.ttft = new Histogram({
      name: 'vllm:time_to_first_token_seconds',
      help: 'Histogram of time to first token in seconds.',
      labelNames,
      buckets: ttftBuckets,
      registers: [registry],
    });
    this.itl = new Histogram({
      name: 'vllm:inter_token_latency_seconds',
      help: 'Histogram of inter-token latency in seconds.',
      labelNames,
      buckets: itlBuckets,
      registers: [registry],
    });
    this.e2e = new Histogram({
      name: 'vllm:e2e_request_latency_seconds',
      help: 'Histogram of e2e request latency in seconds.',
      labelNames,
      buckets: requestBuckets,
      registers: [registry],
    });
    this.queueTime = new Histogram({
      name: 'vllm:request_queue_time_seconds',
      help: 'Histogram of time spent in WAITING phase for request.',
      labelNames,
      buckets: requestBuckets,
      registers: [registry],
    });
    // Zero-valued series from the start, so a scraper sees every metric before the first request.
    this.promptTokens.inc(labels, 0);
    this.generationTokens.inc(labels, 0);
  }

  // Recorded as the engine produces them, as vLLM does, so a scraper sees latency and throughput while long
  // requests are still running. Times are modelled seconds.

  /** A request's first token: its prompt is processed. */
  firstToken(record: { promptTokens: number; queueSeconds: number; ttftSeconds: number }): void {
    this.promptTokens.inc(this.labels, record.promptTokens);
    this.generationTokens.inc(this.labels, 1);
    this.queueTime.observe(this.labels, record.queueSeconds);
    this.ttft.observe(this.labels, record.ttftSeconds);
  }

  /** Each later token, with the gap since the one before. */
  nextToken(gapSeconds: number): void {
    this.generationTokens.inc(this.labels, 1);
    this.itl.observe(this.labels, gapSeconds);
  }

  requestFinished(record: { e2eSeconds: number; finishedReason: 'stop' | 'length' }): void {
    this.success.inc({ ...this.labels, finished_reason: record.finishedReason });
    this.e2e.observe(this.labels, record.e2eSeconds);
  }

  /** The Prometheus exposition text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
