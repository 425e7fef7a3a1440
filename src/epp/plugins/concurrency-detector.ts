/**
 * @module epp/plugins/concurrency-detector
 * `concurrency-detector` (llm-d): saturation from the requests (or estimated tokens) this EPP has in flight, not
 * from scraped metrics, so it reacts at once and needs no scrape. Pool saturation is the aggregate load over the
 * aggregate capacity (`maxConcurrency` requests or `maxTokenConcurrency` tokens per endpoint; `hybrid` takes the
 * larger ratio). In a scheduling profile it filters out endpoints at capacity × (1 + `headroom`), keeping all when
 * none would be left. Both counts are the EPP's own (`Endpoint.inFlight` and `inFlightTokens`, tokens estimated at 4
 * characters a token), released when the response ends.
 */
import { isStale, type SaturationThresholds } from '../saturation.js';
import type { Endpoint, Filter, SchedulingContext } from '../types.js';
import type { SaturationDetectorPlugin } from './utilization-detector.js';

export type ConcurrencyMode = 'requests' | 'tokens' | 'hybrid';

export interface ConcurrencyParameters {
  mode: ConcurrencyMode;
  maxConcurrency: number;
  maxTokenConcurrency: number;
  headroom: number;
}

export function concurrencyDetector(
  name: string,
  p: ConcurrencyParameters,
  thresholds: SaturationThresholds,
): SaturationDetectorPlugin & Filter {
  const useRequests = p.mode !== 'tokens';
  const useTokens = p.mode !== 'requests';
  const saturation = (endpoints: readonly Endpoint[]): number => {
    if (endpoints.length === 0) return 1;
    let requests = 0;
    let toks = 0;
    for (const e of endpoints) {
      requests += e.inFlight;
      toks += e.inFlightTokens;
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
        (e) => (!useRequests || e.inFlight < maxRequests) && (!useTokens || e.inFlightTokens < maxTokens),
      );
      return kept.length > 0 ? kept : [...endpoints];
    },
  };
}
