/**
 * @module epp/plugins/kv-cache-utilization-scorer
 * `kv-cache-utilization-scorer` (also accepted as `kv-cache-scorer`): prefers endpoints with free KV-cache,
 * score = 1 − usage, because a full cache means preemption and recomputation on the model server. A usage that is
 * not a number scores as a full cache rather than turning the endpoint's total NaN.
 */
import type { Endpoint, Scorer } from '../types.js';

export function kvCacheUtilizationScorer(name: string): Scorer {
  return {
    type: 'kv-cache-utilization-scorer',
    name,
    score(_context, endpoints: readonly Endpoint[]): Float64Array {
      const scores = new Float64Array(endpoints.length);
      for (let i = 0; i < endpoints.length; i++) {
        const usage = endpoints[i]!.metrics.kvCacheUsage;
        scores[i] = Number.isNaN(usage) ? 0 : 1 - Math.min(1, Math.max(0, usage));
      }
      return scores;
    },
  };
}
