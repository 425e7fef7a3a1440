/**
 * @module epp/plugins/max-score-picker
 * `max-score-picker`: the endpoints with the highest total score (`maxNumOfEndpoints`, default 1). Ties are broken
 * at random so that equal endpoints share load instead of the first one taking everything. A NaN total (a scorer fed
 * a hostile metric) ranks lowest: it compares false with everything, and once made the picker pick nothing.
 */
import type { Endpoint, Picker, ScoredEndpoint } from '../types.js';

function rankable(score: number): number {
  return Number.isNaN(score) ? -Infinity : score;
}

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
          const score = rankable(s.score);
          if (best === undefined || score > bestScore + 1e-12) {
            best = s.endpoint;
            bestScore = score;
            ties = 1;
          } else if (score === bestScore || Math.abs(score - bestScore) <= 1e-12) {
            ties++;
            if (context.random() * ties < 1) best = s.endpoint;
          }
        }
        return best ? [best] : [];
      }
      const shuffled = scored.map((s) => ({ s, score: rankable(s.score), r: context.random() }));
      // Compared, not subtracted: Infinity − Infinity is NaN, which would make the order inconsistent.
      shuffled.sort((a, b) => (b.score > a.score ? 1 : b.score < a.score ? -1 : 0) || a.r - b.r);
      return shuffled.slice(0, maxNumOfEndpoints).map((x) => x.s.endpoint);
    },
  };
}
