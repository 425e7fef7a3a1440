/**
 * @module epp/plugins/token-load-scorer
 * `token-load-scorer` (llm-d-router): prefers endpoints with less prompt work queued, a finer signal than the request
 * count since it weighs long prompts more: score = 1 − min(1, load / `queueThresholdTokens`), where an endpoint's load
 * is the prompt tokens in flight there (`Endpoint.inFlightTokens`, this EPP's own count, so llm-d's
 * `inflight-load-producer` is not needed) plus what this request would add there: its tokens less the prefix the
 * endpoint already holds, when a prefix producer or a prefix scorer before this one has matched it (as upstream adds
 * its producer's uncached request tokens).
 */
import { estimatedTokens, type Endpoint, type Scorer, type SchedulingContext } from '../types.js';
import type { Parameters } from './parameters.js';
import { PREFIX_MATCHES, type PrefixMatches } from './prefix-cache-scorer.js';

/** 128 requests of 32K tokens, upstream's default. */
export const DEFAULT_QUEUE_THRESHOLD_TOKENS = 4_194_304;

export function tokenLoadScorer(name: string, queueThresholdTokens: number): Scorer {
  return {
    type: 'token-load-scorer',
    name,
    score(context: SchedulingContext, endpoints: readonly Endpoint[]): Float64Array {
      const requestTokens = estimatedTokens(context.request.prompt);
      const matches = context.state.read<PrefixMatches>(PREFIX_MATCHES);
      const scores = new Float64Array(endpoints.length);
      for (let i = 0; i < endpoints.length; i++) {
        const endpoint = endpoints[i]!;
        const cached = matches ? (matches.matched.get(endpoint.address) ?? 0) * matches.blockTokens : 0;
        const load = endpoint.inFlightTokens + Math.max(0, requestTokens - cached);
        scores[i] = 1 - Math.min(1, load / queueThresholdTokens);
      }
      return scores;
    },
  };
}

/** llm-d-router's parameters: a non-positive threshold means the default, as upstream. */
export function tokenLoadScorerFactory(name: string, p: Parameters): Scorer {
  const threshold = p.integer(
    'queueThresholdTokens',
    DEFAULT_QUEUE_THRESHOLD_TOKENS,
    -Number.MAX_SAFE_INTEGER,
  );
  // Multimodal weights and the producer's name change nothing here: prompts are text, the count is the scorer's.
  p.number('nonTextTokenWeight', 1);
  p.string('inFlightLoadProducerName', '');
  return tokenLoadScorer(name, threshold > 0 ? threshold : DEFAULT_QUEUE_THRESHOLD_TOKENS);
}
