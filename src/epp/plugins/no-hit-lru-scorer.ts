/**
 * @module epp/plugins/no-hit-lru-scorer
 * `no-hit-lru-scorer`: for requests no endpoint has a cached prefix for ("cold" requests), prefers the endpoints
 * that least recently received a cold request, so new prefixes spread over the pool instead of piling onto the
 * endpoint that happens to win the other scores. Warm requests get a neutral 0.5 everywhere. "Cold" is read from
 * the prefix matches in the cycle state: those of the producer named by `prefixMatchInfoProducerName`, else the
 * first ones written (an approx or precise producer's, or a `prefix-cache-scorer` scored earlier in the profile).
 */
import type { Endpoint, PreRequest, Scorer, SchedulingContext, SchedulingResult } from '../types.js';
import { prefixMatchesKeyOf, type PrefixMatches } from './prefix-cache-scorer.js';

export interface NoHitLruParameters {
  /** Endpoints remembered (llm-d's `lruSize`); past it the least recently used is forgotten, i.e. "never used". */
  lruSize: number;
  /** llm-d's `prefixMatchInfoProducerName`: whose matches decide "cold". */
  matchInfoProducer?: string | undefined;
}

/** llm-d-router's default `lruSize`. */
export const DEFAULT_NO_HIT_LRU_SIZE = 1024;

/** As llm-d-router, the prefill profile's pick counts too: a cold prompt fills that endpoint's cache as well. */
const PREFILL_PROFILE = 'prefill';

export type NoHitLruScorer = Scorer &
  PreRequest & {
    /** Read by the config loader, which checks that the producer exists. */
    readonly matchInfoProducer: string | undefined;
  };

export function noHitLruScorer(
  name: string,
  parameters: NoHitLruParameters = { lruSize: DEFAULT_NO_HIT_LRU_SIZE },
): NoHitLruScorer {
  const matchesKey = prefixMatchesKeyOf(parameters.matchInfoProducer);
  const isCold = (context: SchedulingContext): boolean => {
    const matches = context.state.read<PrefixMatches>(matchesKey);
    return !matches || matches.matched.size === 0;
  };
  /**
   * address → sequence number of its last cold request (absent = never: most preferred). A Map iterates in insertion
   * order and each use re-inserts, so the first key is the least recently used: the one evicted past `lruSize`.
   */
  const lastCold = new Map<string, number>();
  let sequence = 0;
  const touch = (address: string): void => {
    lastCold.delete(address);
    lastCold.set(address, ++sequence);
    if (lastCold.size > parameters.lruSize) lastCold.delete(lastCold.keys().next().value!);
  };
  return {
    type: 'no-hit-lru-scorer',
    name,
    matchInfoProducer: parameters.matchInfoProducer,
    score(context, endpoints: readonly Endpoint[]): Float64Array {
      const scores = new Float64Array(endpoints.length);
      if (!isCold(context)) return scores.fill(0.5);
      // Rank by recency: never used = 1, the most recently used = 0.
      const order = endpoints.map((e, i) => ({ i, last: lastCold.get(e.address) ?? -1 }));
      order.sort((a, b) => a.last - b.last);
      const n = order.length;
      for (let r = 0; r < n; r++) scores[order[r]!.i] = n === 1 ? 1 : 1 - r / (n - 1);
      return scores;
    },
    preRequest(context, result: SchedulingResult): void {
      if (!isCold(context)) return;
      const target = result.results.get(result.primaryProfile)?.targets[0];
      if (target) touch(target.address);
      const prefill = result.results.get(PREFILL_PROFILE)?.targets[0];
      if (prefill && result.primaryProfile !== PREFILL_PROFILE) touch(prefill.address);
    },
  };
}
