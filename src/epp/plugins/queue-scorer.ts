/**
 * @module epp/plugins/queue-scorer
 * `queue-scorer`: prefers endpoints with fewer waiting requests. Scores are min-max normalised over the
 * candidates, so the shortest queue scores 1 and the longest 0; equal queues all score 1.
 */
import type { Endpoint, Scorer } from '../types.js';

export function queueScorer(name: string): Scorer {
  return {
    type: 'queue-scorer',
    name,
    score(_context, endpoints: readonly Endpoint[]): Float64Array {
      const scores = new Float64Array(endpoints.length);
      let min = Infinity;
      let max = -Infinity;
      for (const e of endpoints) {
        const q = e.metrics.waitingQueueSize;
        if (q < min) min = q;
        if (q > max) max = q;
      }
      const range = max - min;
      for (let i = 0; i < endpoints.length; i++) {
        scores[i] = range === 0 ? 1 : (max - endpoints[i]!.metrics.waitingQueueSize) / range;
      }
      return scores;
    },
  };
}
