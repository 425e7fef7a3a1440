/**
 * @module epp/plugins/active-request-scorer
 * `active-request-scorer`: prefers endpoints with fewer requests this EPP has sent and not yet seen finish. Unlike
 * the scraped queue it reacts within one request, which matters for bursts shorter than the scrape interval.
 *
 * llm-d-router's scoring (`scorer/activerequest/active_request.go`, `Score`): an endpoint with at most
 * `idleThreshold` requests in flight is idle and scores 1; a busy one scores `(max − count) / max × maxBusyScore`,
 * `max` being the largest count among the candidates. With the defaults (0, 1) that is the plain min-max score; with
 * `maxBusyScore: 0` (KServe's samples) every busy endpoint scores 0, so an idle one always wins this scorer.
 */
import type { Endpoint, Scorer } from '../types.js';
import type { Parameters } from './parameters.js';

export interface ActiveRequestParameters {
  /** Endpoints with at most this many requests in flight are idle and score 1. */
  idleThreshold: number;
  /** What the least busy endpoint scores at most; the busiest scores 0. In [0, 1]. */
  maxBusyScore: number;
}

export const DEFAULT_ACTIVE_REQUEST_PARAMETERS: Readonly<ActiveRequestParameters> = Object.freeze({
  idleThreshold: 0,
  maxBusyScore: 1,
});

export function activeRequestScorer(
  name: string,
  parameters: ActiveRequestParameters = DEFAULT_ACTIVE_REQUEST_PARAMETERS,
): Scorer {
  const { idleThreshold, maxBusyScore } = parameters;
  return {
    type: 'active-request-scorer',
    name,
    score(_context, endpoints: readonly Endpoint[]): Float64Array {
      const scores = new Float64Array(endpoints.length);
      let max = 0;
      for (const e of endpoints) if (e.inFlight > max) max = e.inFlight;
      for (let i = 0; i < endpoints.length; i++) {
        const count = endpoints[i]!.inFlight;
        // A busy endpoint has count > idleThreshold ≥ 0, so max ≥ 1 here.
        scores[i] = count <= idleThreshold ? 1 : ((max - count) / max) * maxBusyScore;
      }
      return scores;
    },
  };
}

/**
 * llm-d-router's parameters: `idleThreshold` and `maxBusyScore` as above; `requestTimeout` (deprecated upstream and
 * ignored there: a request counts until it finishes) and `inFlightLoadProducerName` (the EPP counts its in-flight
 * requests itself, there is no producer to name) are accepted with a warning. Upstream quietly falls back to the
 * default for a negative `idleThreshold` or a `maxBusyScore` outside [0, 1]; here such a value is refused, naming
 * the field: a config that says `maxBusyScore: 2` means something the scorer will not do.
 */
export function activeRequestScorerFactory(name: string, p: Parameters): Scorer {
  if (p.has('requestTimeout')) {
    p.duration('requestTimeout', 0);
    p.warn(
      'requestTimeout',
      'deprecated upstream and ignored, as there: a request counts as in flight until its response ends',
    );
  }
  if (p.has('inFlightLoadProducerName')) {
    p.string('inFlightLoadProducerName', '');
    p.warn(
      'inFlightLoadProducerName',
      'accepted, not acted on: the EPP counts the requests it has in flight itself (no inflight-load-producer to read)',
    );
  }
  return activeRequestScorer(name, {
    idleThreshold: p.integer('idleThreshold', DEFAULT_ACTIVE_REQUEST_PARAMETERS.idleThreshold, 0),
    maxBusyScore: p.number('maxBusyScore', DEFAULT_ACTIVE_REQUEST_PARAMETERS.maxBusyScore, 0, 1),
  });
}
