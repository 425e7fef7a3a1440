/**
 * @module epp/plugins/queue-scorer
 * `queue-scorer`: prefers endpoints with fewer waiting requests. Scores are min-max normalised over the
 * candidates, so the shortest queue scores 1 and the longest 0; equal queues all score 1. A queue length that is not
 * a count (NaN, infinite, negative: the scraper drops these, but metrics come from a pod its user controls) is read
 * as the longest possible, so the range stays finite and no score turns NaN.
 */
import type { Endpoint, Scorer } from '../types.js';

function queueLength(q: number): number {
  return q >= 0 && q <= Number.MAX_SAFE_INTEGER ? q : Number.MAX_SAFE_INTEGER;
}

export function queueScorer(name: string): Scorer {
  return {
    type: 'queue-scorer',
    name,
    score(_context, endpoints: readonly Endpoint[]): Float64Array {
      const scores = new Float64Array(endpoints.length);
      let min = Infinity;
      let max = -Infinity;
      // The queue lengths go into `scores` first and become scores in place: no second array per request.
      for (let i = 0; i < endpoints.length; i++) {
        const q = queueLength(endpoints[i]!.metrics.waitingQueueSize);
        scores[i] = q;
        if (q < min) min = q;
        if (q > max) max = q;
      }
      const range = max - min;
      for (let i = 0; i < endpoints.length; i++) {
        scores[i] = range === 0 ? 1 : (max - scores[i]!) / range;
      }
      return scores;
    },
  };
}
