/**
 * @module epp/plugins/no-hit-lru-scorer
 * `no-hit-lru-scorer`: for requests no endpoint has a cached prefix for ("cold" requests), prefers the endpoints
 * that least recently received a cold request, so new prefixes spread over the pool instead of piling onto the
 * endpoint that happens to win the other scores. Warm requests get a neutral 0.5 everywhere. Needs a
 * `prefix-cache-scorer` in the same profile (it reads the prefix matches from the cycle state).
 */
import type { Endpoint, PreRequest, Scorer, SchedulingResult } from '../types.js';
import { PREFIX_MATCHES, type PrefixMatches } from './prefix-cache-scorer.js';

function isCold(matches: PrefixMatches | undefined): boolean {
  return !matches || matches.matched.size === 0;
}

export function noHitLruScorer(name: string): Scorer & PreRequest {
  /** address → sequence number of its last cold request (absent = never: most preferred). */
  const lastCold = new Map<string, number>();
  let sequence = 0;
  return {
    type: 'no-hit-lru-scorer',
    name,
    score(context, endpoints: readonly Endpoint[]): Float64Array {
      const scores = new Float64Array(endpoints.length);
      if (!isCold(context.state.read<PrefixMatches>(PREFIX_MATCHES))) return scores.fill(0.5);
      // Rank by recency: never used = 1, the most recently used = 0.
      const order = endpoints.map((e, i) => ({ i, last: lastCold.get(e.address) ?? -1 }));
      order.sort((a, b) => a.last - b.last);
      const n = order.length;
      for (let r = 0; r < n; r++) scores[order[r]!.i] = n === 1 ? 1 : 1 - r / (n - 1);
      return scores;
    },
    preRequest(context, result: SchedulingResult): void {
      if (!isCold(context.state.read<PrefixMatches>(PREFIX_MATCHES))) return;
      const target = result.results.get(result.primaryProfile)?.targets[0];
      if (target) lastCold.set(target.address, ++sequence);
    },
  };
}
