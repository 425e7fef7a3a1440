/**
 * @module epp/plugins/max-score-picker
 * `max-score-picker`: the endpoints with the highest total score (`maxNumOfEndpoints`, default 1). Ties are broken
 * at random so that equal endpoints share load instead of the first one taking everything.
 */
import type { Endpoint, Picker, ScoredEndpoint } from '../types.js';

export function maxScorePicker(name: string, maxNumOfEndpoints = 1): Picker {
  return {
    type: 'max-score-picker',
    name,
    pick(context, scored: readonly ScoredEndpoint[]): Endpoint[] {
      if (maxNumOfEndpoints === 1) {
        // The hot path: one pass, reservoir-style random tie break, no sorting or copying.
        let best: Endpoint | undefined;
        let bestScore = -Infinity;
        let ties = 0;
        for (const s of scored) {
          if (s.score > bestScore + 1e-12) {
            best = s.endpoint;
            bestScore = s.score;
            ties = 1;
          } else if (Math.abs(s.score - bestScore) <= 1e-12) {
            ties++;
            if (context.random() * ties < 1) best = s.endpoint;
          }
        }
        return best ? [best] : [];
      }
      const shuffled = scored.map((s) => ({ s, r: context.random() }));
      shuffled.sort((a, b) => b.s.score - a.s.score || a.r - b.r);
      return shuffled.slice(0, maxNumOfEndpoints).map((x) => x.s.endpoint);
    },
  };
}
