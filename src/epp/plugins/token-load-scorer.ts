/**
 * @module epp/plugins/token-load-scorer
 * `token-load-scorer` (llm-d-router): prefers endpoints with fewer prompt tokens in flight, a finer signal than the
 * request count since it weighs long prompts more: score = 1 − min(1, tokens in flight / `queueThresholdTokens`).
 * The tokens are this EPP's own count ({@link InFlightTokens}), so llm-d's `inflight-load-producer` is not needed.
 */
import type { Endpoint, PostResponse, PreRequest, Scorer } from '../types.js';
import { InFlightTokens } from './in-flight-tokens.js';

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
    score(_context, endpoints: readonly Endpoint[]): Float64Array {
      const scores = new Float64Array(endpoints.length);
      for (let i = 0; i < endpoints.length; i++)
        scores[i] = 1 - Math.min(1, inFlight.of(endpoints[i]!.address) / queueThresholdTokens);
      return scores;
    },
    preRequest: (context, result) => inFlight.add(context, result),
    postResponse: (request, endpoint) => inFlight.release(request, endpoint),
  };
}
