/**
 * @module epp/plugins/weighted-random-picker
 * `weighted-random-picker`: random endpoints with probability proportional to score (weighted sampling without
 * replacement, Efraimidis–Spirakis keys r^(1/w)). Spreads load more than max-score while still favouring good
 * endpoints; all-zero scores fall back to uniform. A NaN score weighs 0 (the lowest), as NaN keys would leave the
 * sort's order undefined.
 */
import type { Endpoint, Picker, ScoredEndpoint } from '../types.js';

export function weightedRandomPicker(name: string, maxNumOfEndpoints = 1): Picker {
  return {
    type: 'weighted-random-picker',
    name,
    pick(context, scored: readonly ScoredEndpoint[]): Endpoint[] {
      const anyPositive = scored.some((s) => s.score > 0);
      const keyed = scored.map((s) => {
        const w = anyPositive ? (s.score > 0 ? s.score : 0) : 1;
        return { endpoint: s.endpoint, key: w === 0 ? -1 : Math.pow(context.random(), 1 / w) };
      });
      keyed.sort((a, b) => b.key - a.key);
      return keyed
        .filter((k) => k.key >= 0)
        .slice(0, maxNumOfEndpoints)
        .map((k) => k.endpoint);
    },
  };
}
