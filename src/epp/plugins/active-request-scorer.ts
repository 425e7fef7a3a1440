/**
 * @module epp/plugins/active-request-scorer
 * `active-request-scorer`: prefers endpoints with fewer requests this EPP has sent and not yet seen finish. Unlike
 * the scraped queue it reacts within one request, which matters for bursts shorter than the scrape interval.
 */
import type { Endpoint, Scorer } from '../types.js';

export function activeRequestScorer(name: string): Scorer {
  return {
    type: 'active-request-scorer',
    name,
    score(_context, endpoints: readonly Endpoint[]): Float64Array {
      const scores = new Float64Array(endpoints.length);
      let max = 0;
      for (const e of endpoints) if (e.inFlight > max) max = e.inFlight;
      for (let i = 0; i < endpoints.length; i++) {
        scores[i] = max === 0 ? 1 : (max - endpoints[i]!.inFlight) / max;
      }
      return scores;
    },
  };
}
