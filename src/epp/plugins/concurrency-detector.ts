/**
 * @module epp/plugins/concurrency-detector
 * `concurrency-detector` (llm-d): saturation from the requests (or estimated tokens) this EPP has in flight, not
 * from scraped metrics, so it reacts at once and needs no scrape. Pool saturation is the aggregate load over the
 * aggregate capacity (`maxConcurrency` requests or `maxTokenConcurrency` tokens per endpoint; `hybrid` takes the
 * larger ratio). In a scheduling profile it filters out endpoints at capacity × (1 + `headroom`), keeping all when
 * none would be left. Tokens are estimated from the prompt (4 characters a token); the request count is the EPP's
 * own in-flight count, released when the response ends.
 */
import { isStale, type SaturationThresholds } from '../saturation.js';
import type {
  Endpoint,
  Filter,
  PostResponse,
  PreRequest,
  SchedulingContext,
  SchedulingRequest,
  SchedulingResult,
} from '../types.js';
import type { SaturationDetectorPlugin } from './utilization-detector.js';

export type ConcurrencyMode = 'requests' | 'tokens' | 'hybrid';

export interface ConcurrencyParameters {
  mode: ConcurrencyMode;
  maxConcurrency: number;
  maxTokenConcurrency: number;
  headroom: number;
}

const CHARS_PER_TOKEN = 4;

export function concurrencyDetector(
  name: string,
  p: ConcurrencyParameters,
  thresholds: SaturationThresholds,
): SaturationDetectorPlugin & Filter & PreRequest & PostResponse {
  /** Estimated tokens in flight per endpoint address, and what each routed request added (released once). */
  const tokens = new Map<string, number>();
  const added = new WeakMap<SchedulingRequest, { address: string; tokens: number }>();
  const tokensOf = (e: Endpoint) => tokens.get(e.address) ?? 0;
  const useRequests = p.mode !== 'tokens';
  const useTokens = p.mode !== 'requests';
  const saturation = (endpoints: readonly Endpoint[]): number => {
    if (endpoints.length === 0) return 1;
    let requests = 0;
    let toks = 0;
    for (const e of endpoints) {
      requests += e.inFlight;
      toks += tokensOf(e);
    }
    const byRequests = useRequests ? requests / (endpoints.length * p.maxConcurrency) : 0;
    const byTokens = useTokens ? toks / (endpoints.length * p.maxTokenConcurrency) : 0;
    return Math.max(byRequests, byTokens);
  };
  return {
    type: 'concurrency-detector',
    name,
    thresholds,
    saturated: (endpoints) => saturation(endpoints) >= 1,
    saturation,
    staleCount: (endpoints, now) => endpoints.filter((e) => isStale(e, now, thresholds)).length,
    filter(_context: SchedulingContext, endpoints: readonly Endpoint[]): Endpoint[] {
      const maxRequests = p.maxConcurrency * (1 + p.headroom);
      const maxTokens = p.maxTokenConcurrency * (1 + p.headroom);
      const kept = endpoints.filter(
        (e) => (!useRequests || e.inFlight < maxRequests) && (!useTokens || tokensOf(e) < maxTokens),
      );
      return kept.length > 0 ? kept : [...endpoints];
    },
    preRequest(context: SchedulingContext, result: SchedulingResult): void {
      if (!useTokens) return;
      const target = result.results.get(result.primaryProfile)?.targets[0];
      if (!target) return;
      const estimate = Math.max(1, Math.ceil(context.request.prompt.length / CHARS_PER_TOKEN));
      tokens.set(target.address, tokensOf(target) + estimate);
      added.set(context.request, { address: target.address, tokens: estimate });
    },
    postResponse(request: SchedulingRequest, endpoint: Endpoint): void {
      const entry = added.get(request);
      if (!entry || entry.address !== endpoint.address) return;
      added.delete(request);
      const left = (tokens.get(entry.address) ?? 0) - entry.tokens;
      if (left > 0) tokens.set(entry.address, left);
      else tokens.delete(entry.address);
    },
  };
}
