/**
 * @module epp/plugins/token-load-scorer
 * `token-load-scorer` (llm-d-router): prefers endpoints with less prompt work queued, a finer signal than the request
 * count since it weighs long prompts more: score = 1 − min(1, load / `queueThresholdTokens`), where an endpoint's load
 * is the prompt tokens in flight there ({@link InFlightTokens}, this EPP's own count, so llm-d's
 * `inflight-load-producer` is not needed) plus what this request would add there: its tokens less the prefix the
 * endpoint already holds, when a prefix producer or a prefix scorer before this one has matched it (as upstream adds
 * its producer's uncached request tokens).
 */
import type { Endpoint, PostResponse, PreRequest, Scorer, SchedulingContext } from '../types.js';
import type { Parameters } from './parameters.js';
import { InFlightTokens, estimatedTokens } from './in-flight-tokens.js';
import { PREFIX_MATCHES, type PrefixMatches } from './prefix-cache-scorer.js';

/** 128 requests of 32K tokens, upstream's default. */
export const DEFAULT_QUEUE_THRESHOLD_TOKENS = 4_194_304;

export function tokenLoadScorer(
  name: string,
  queueThresholdTokens: number,
): Scorer & PreRequest & PostResponse {
  const inFlight = new InFlightTokens();
  return {
    type: 'token-load-scorer',
    name,
    score(context: SchedulingContext, endpoints: readonly Endpoint[]): Float64Array {
      const requestTokens = estimatedTokens(context.request.prompt);
      const matches = context.state.read<PrefixMatches>(PREFIX_MATCHES);
      const scores = new Float64Array(endpoints.length);
      for (let i = 0; i < endpoints.length; i++) {
        const address = endpoints[i]!.address;
        const cached = matches ? (matches.matched.get(address) ?? 0) * matches.blockTokens : 0;
        const load = inFlight.of(address) + Math.max(0, requestTokens - cached);
        scores[i] = 1 - Math.min(1, load / queueThresholdTokens);
      }
      return scores;
    },
    preRequest: (context, result) => inFlight.add(context, result),
    postResponse: (request, endpoint) => inFlight.release(request, endpoint),
  };
}

/** llm-d-router's parameters: a non-positive threshold means the default, as upstream. */
export function tokenLoadScorerFactory(name: string, p: Parameters): Scorer & PreRequest & PostResponse {
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
