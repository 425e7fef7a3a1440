/**
 * @module epp/epp-metrics
 * The EPP's own Prometheus metrics (served on `--metrics-port`): requests by model and outcome, scheduling latency,
 * picks per endpoint, shed requests, prefix-cache hit ratio and the scraped state of every endpoint, and optionally
 * the process's own metrics. A registry per EPP instance, so several can run in one process (tests, `llmisvc up`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Datastore } from './datastore.js';

export class EppMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'model' | 'outcome'>;
  readonly schedulingSeconds: Histogram;
  readonly picks: Counter<'endpoint' | 'profile'>;
  readonly shed: Counter<'model'>;
  readonly prefixHitRatio: Histogram;
  readonly requestPhaseSeconds: Histogram;

  /**
   * `processMetrics`: also export the process's own (`process_cpu_seconds_total`, `nodejs_gc_duration_seconds`,
   * `nodejs_eventloop_lag_*`, heap…) — for an EPP that is its own process; not for one inside `llmisvc up`.
   */
  constructor(datastore: Datastore, options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics) {
      // GC pauses stall every request in flight: buckets fine enough to see the ones that reach the tail.
      collectDefaultMetrics({
        register: this.registry,
        gcDurationBuckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      });
    }
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
    const endpointGauge = (
      name: string,
      help: string,
      read: (e: ReturnType<Datastore['endpoints']>[number]) => number,
    ) =>
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
  }
}
