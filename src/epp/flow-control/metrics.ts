/**
 * @module epp/flow-control/metrics
 * Flow control's metrics under llm-d-router's names (`llm_d_epp_flow_control_*`) and labels. Queue sizes, bytes,
 * band utilisation and saturation are read from the controller at scrape time, so a flow that has left leaves no
 * series behind; the client-derived labels (fairness id, model names) arrive already bounded by the EPP's caps.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AdmissionRequest, FlowControlObserver, FlowController, QueueOutcome } from './controller.js';

const QUEUE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const CYCLE_BUCKETS = [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05];

export interface FlowControlMetricsSource {
  controller: FlowController;
  /** Pool saturation and stale endpoints now. */
  saturation(): number;
  staleEndpoints(): number;
  detectorName: string;
}

/** Registers the metrics; returns the observer the controller reports outcomes to. */
export function flowControlMetrics(
  registry: Registry,
  poolName: string,
  source: () => FlowControlMetricsSource | undefined,
): FlowControlObserver {
  const registers = [registry];
  const queueDuration = new Histogram({
    name: 'llm_d_epp_flow_control_request_queue_duration_seconds',
    help: 'Time from queue entry to terminal outcome (llm-d flow control).',
    labelNames: ['fairness_id', 'priority', 'outcome', 'inference_pool', 'model_name', 'target_model_name'],
    buckets: QUEUE_BUCKETS,
    registers,
  });
  const requests = new Counter({
    name: 'llm_d_epp_flow_control_requests_total',
    help: 'Requests by terminal flow-control outcome (llm-d).',
    labelNames: ['outcome', 'priority', 'inference_pool'],
    registers,
  });
  const cycle = new Histogram({
    name: 'llm_d_epp_flow_control_dispatch_cycle_duration_seconds',
    help: 'Cost of one dispatch cycle (llm-d flow control).',
    buckets: CYCLE_BUCKETS,
    registers,
  });
  const perFlow = (name: string, help: string, read: (r: AdmissionRequest) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['fairness_id', 'priority', 'inference_pool', 'model_name', 'target_model_name'],
      registers,
      collect() {
        this.reset();
        const s = source();
        if (!s) return;
        for (const r of s.controller.waiting())
          this.inc(
            {
              fairness_id: r.labels.fairness_id,
              priority: String(r.priority),
              inference_pool: poolName,
              model_name: r.labels.model_name,
              target_model_name: r.labels.target_model_name,
            },
            read(r),
          );
      },
    });
  perFlow('llm_d_epp_flow_control_queue_size', 'Requests held in the flow-control queue (llm-d).', () => 1);
  perFlow(
    'llm_d_epp_flow_control_queue_bytes',
    'Bytes held in the flow-control queue (llm-d).',
    (r) => r.bytes,
  );
  const perBand = (name: string, help: string, of: 'requests' | 'bytes') =>
    new Gauge({
      name,
      help,
      labelNames: ['priority', 'inference_pool'],
      registers,
      collect() {
        this.reset();
        const s = source();
        if (!s) return;
        for (const band of s.controller.bandStates()) {
          const limit = of === 'requests' ? band.settings.maxRequests : band.settings.maxBytes;
          const used = of === 'requests' ? band.size : band.bytes;
          this.set(
            { priority: String(band.priority), inference_pool: poolName },
            limit > 0 ? used / limit : 1,
          );
        }
      },
    });
  perBand(
    'llm_d_epp_flow_control_capacity_utilization_requests',
    "Share of a band's request capacity in use (llm-d).",
    'requests',
  );
  perBand(
    'llm_d_epp_flow_control_capacity_utilization_bytes',
    "Share of a band's byte capacity in use (llm-d).",
    'bytes',
  );
  const global = (name: string, help: string, of: 'requests' | 'bytes') =>
    new Gauge({
      name,
      help,
      labelNames: ['inference_pool'],
      registers,
      collect() {
        this.reset();
        const s = source();
        if (!s) return;
        const limit = of === 'requests' ? s.controller.settings.maxRequests : s.controller.settings.maxBytes;
        // Unset by default: absent, not 0.
        if (limit > 0)
          this.set(
            { inference_pool: poolName },
            (of === 'requests' ? s.controller.size : s.controller.bytes) / limit,
          );
      },
    });
  global(
    'llm_d_epp_flow_control_global_capacity_utilization_requests',
    'Share of the global request capacity in use (llm-d).',
    'requests',
  );
  global(
    'llm_d_epp_flow_control_global_capacity_utilization_bytes',
    'Share of the global byte capacity in use (llm-d).',
    'bytes',
  );
  new Gauge({
    name: 'llm_d_epp_flow_control_pool_saturation',
    help: 'Saturation signal gating dispatch; 1.0 is the gate (llm-d).',
    labelNames: ['inference_pool', 'stage'],
    registers,
    collect() {
      this.reset();
      const s = source();
      if (s) this.set({ inference_pool: poolName, stage: 'effective' }, s.saturation());
    },
  });
  new Gauge({
    name: 'llm_d_epp_flow_control_stale_endpoints',
    help: 'Candidate endpoints with missing or stale metrics (llm-d).',
    labelNames: ['detector'],
    registers,
    collect() {
      this.reset();
      const s = source();
      if (s) this.set({ detector: s.detectorName }, s.staleEndpoints());
    },
  });
  return {
    outcome(request: AdmissionRequest, outcome: QueueOutcome, waitedSeconds: number) {
      const priority = String(request.priority);
      requests.inc({ outcome, priority, inference_pool: poolName });
      queueDuration.observe(
        {
          fairness_id: request.labels.fairness_id,
          priority,
          outcome,
          inference_pool: poolName,
          model_name: request.labels.model_name,
          target_model_name: request.labels.target_model_name,
        },
        waitedSeconds,
      );
    },
    dispatchCycle(seconds: number) {
      cycle.observe(seconds);
    },
  };
}
