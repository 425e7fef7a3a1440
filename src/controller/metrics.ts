/**
 * @module controller/metrics
 * The controller's Prometheus metrics, in their own registry so tests and several controllers in one process do
 * not collide: reconciles by result, reconcile duration, work-queue depth, API requests by verb and code.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ControllerMetrics {
  registry: Registry;
  reconciles: Counter<'result'>;
  reconcileErrors: Counter<'reason'>;
  reconcileDuration: Histogram;
  queueDepth: Gauge;
  apiRequests: Counter<'verb' | 'code'>;
  applies: Counter<'kind' | 'reason'>;
  leader: Gauge;
}

export function createMetrics(options: { queueDepth: () => number; defaults?: boolean }): ControllerMetrics {
  const registry = new Registry();
  if (options.defaults) collectDefaultMetrics({ register: registry, prefix: 'llmisvc_controller_' });
  return {
    registry,
    reconciles: new Counter({
      name: 'llmisvc_controller_reconcile_total',
      help: 'Reconciles by result (success, error, conflict).',
      labelNames: ['result'],
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: 'llmisvc_controller_reconcile_errors_total',
      help: 'Reconciles that failed, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: 'llmisvc_controller_reconcile_duration_seconds',
      help: 'Time spent in one reconcile.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'llmisvc_controller_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      registers: [registry],
      collect() {
        this.set(options.queueDepth());
      },
    }),
    apiRequests: new Counter({
      name: 'llmisvc_controller_api_requests_total',
      help: 'Kubernetes API requests by verb and HTTP status code.',
      labelNames: ['verb', 'code'],
      registers: [registry],
    }),
    applies: new Counter({
      name: 'llmisvc_controller_applies_total',
      help: 'Server-side applies of child objects, by kind and why (missing, changed, drifted).',
      labelNames: ['kind', 'reason'],
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'llmisvc_controller_leader',
      help: '1 while this replica holds the leader lease.',
      registers: [registry],
    }),
  };
}
