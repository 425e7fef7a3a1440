/**
 * @module epp/plugins/prefix-cache-affinity-filter
 * `prefix-cache-affinity-filter` (llm-d-router; llm-d's P/D and optimized-baseline guides use it): keeps only the
 * "sticky" endpoints — those holding at least `affinityThreshold` of the request's prefix blocks — so the scorers
 * after it spread load among the cache-warm ones instead of trading cache hits against load in one weighted sum.
 * Stickiness breaks (every endpoint is kept) when it would cost too much: the best sticky endpoint's estimated
 * time to first token exceeds the best other one's by more than `maxTTFTPenaltyMs`, the estimate being its prompt
 * tokens in flight / `peakPrefillThroughput` (`Endpoint.inFlightTokens`, this EPP's own count). With
 * `explorationProbability` a request skips the filter, so other endpoints warm up too. No sticky endpoint, or no
 * prefix data: every endpoint is kept.
 *
 * The matches must exist before the profile's scorers run, so the config needs a prefix producer
 * (`approx-prefix-cache-producer` or the precise one); the loader says so when there is none.
 */
import type { Endpoint, Filter, LinkedPlugin, Plugin, SchedulingContext } from '../types.js';
import type { Parameters } from './parameters.js';
import { matchInfoProducerParameter, prefixMatchesKeyOf, type PrefixMatches } from './prefix-cache-scorer.js';

export interface PrefixAffinityParameters {
  /** Share of the prompt's blocks an endpoint must hold to be sticky, in [0, 1] (0 turns the filter off). */
  affinityThreshold: number;
  /** Chance, in [0, 1], that a request skips the filter. */
  explorationProbability: number;
  /** How much slower (ms) the best sticky endpoint may be than the best other one; 0 = always stick. */
  maxTTFTPenaltyMs: number;
  /** Prompt tokens an endpoint prefills per second, to turn tokens in flight into milliseconds. */
  peakPrefillThroughput: number;
  /** Whose matches to read (`prefixMatchInfoProducerName`); undefined = the first producer's. */
  matchInfoProducer: string | undefined;
}

export const DEFAULT_PREFIX_AFFINITY: Omit<PrefixAffinityParameters, 'matchInfoProducer'> = {
  affinityThreshold: 0.8,
  explorationProbability: 0,
  maxTTFTPenaltyMs: 18_000,
  // Upstream's default, measured for Qwen 32B on 2 × H100 (TP 2): calibrate for your own hardware.
  peakPrefillThroughput: 15_928,
};

export type PrefixCacheAffinityFilter = Filter & { readonly matchInfoProducer: string | undefined };

export function prefixCacheAffinityFilter(
  name: string,
  parameters: PrefixAffinityParameters,
): PrefixCacheAffinityFilter {
  const ttftMs = (e: Endpoint) => (e.inFlightTokens / parameters.peakPrefillThroughput) * 1000;
  const bestTtftMs = (endpoints: readonly Endpoint[]) => Math.min(...endpoints.map(ttftMs));
  const matchesKey = prefixMatchesKeyOf(parameters.matchInfoProducer);
  const matchesOf = (context: SchedulingContext) => context.state.read<PrefixMatches>(matchesKey);
  return {
    type: 'prefix-cache-affinity-filter',
    name,
    matchInfoProducer: parameters.matchInfoProducer,
    filter(context, endpoints): Endpoint[] {
      if (endpoints.length <= 1 || parameters.affinityThreshold <= 0) return [...endpoints];
      if (context.random() < parameters.explorationProbability) return [...endpoints];
      const matches = matchesOf(context);
      if (!matches || matches.totalBlocks === 0) return [...endpoints];
      const sticky: Endpoint[] = [];
      const others: Endpoint[] = [];
      for (const e of endpoints) {
        const share = (matches.matched.get(e.address) ?? 0) / matches.totalBlocks;
        (share >= parameters.affinityThreshold ? sticky : others).push(e);
      }
      if (sticky.length === 0) return [...endpoints];
      if (
        parameters.maxTTFTPenaltyMs > 0 &&
        others.length > 0 &&
        bestTtftMs(sticky) - bestTtftMs(others) > parameters.maxTTFTPenaltyMs
      )
        return [...endpoints];
      return sticky;
    },
  };
}

/**
 * llm-d-router's `prefix-cache-affinity-filter` parameters. Its TTFT estimate here is the prefill-throughput one
 * (`ttftSource: prefillThroughput`): there is no latency predictor, and no calibration record is read (give
 * `peakPrefillThroughput`). Linked once every plugin exists: it needs a prefix producer, whose matches exist before
 * the profile's scorers run.
 */
export function prefixCacheAffinityFilterFactory(
  name: string,
  p: Parameters,
): PrefixCacheAffinityFilter & LinkedPlugin {
  const d = DEFAULT_PREFIX_AFFINITY;
  const source = p.string('ttftSource', 'prefillThroughput');
  if (source === 'latencyPredictor')
    p.problem(
      'ttftSource',
      'latencyPredictor is not supported: there is no latency predictor here; use prefillThroughput',
    );
  else if (source !== 'prefillThroughput')
    p.problem('ttftSource', `must be prefillThroughput or latencyPredictor, got ${JSON.stringify(source)}`);
  for (const key of ['prefillCalibrationFile', 'prefillCalibrationFingerprint', 'prefillCalibrationRequired'])
    // Read (so not reported again as unknown), and refused when given.
    if (p.raw(key) !== undefined && p.has(key))
      p.problem(key, 'calibration records are not read here: give peakPrefillThroughput (prompt tokens/s)');
  const maxTTFTPenaltyMs = p.number('maxTTFTPenaltyMs', d.maxTTFTPenaltyMs, 0);
  const peakPrefillThroughput = p.number('peakPrefillThroughput', d.peakPrefillThroughput, 0);
  if (maxTTFTPenaltyMs > 0 && peakPrefillThroughput === 0)
    p.problem(
      'peakPrefillThroughput',
      'must be > 0 while maxTTFTPenaltyMs is (it turns tokens in flight into time)',
    );
  p.string('inFlightLoadProducerName', '');
  p.string('latencyPredictionInfoProducerName', '');
  const filter = prefixCacheAffinityFilter(name, {
    affinityThreshold: p.number('affinityThreshold', d.affinityThreshold, 0, 1),
    explorationProbability: p.number('explorationProbability', d.explorationProbability, 0, 1),
    maxTTFTPenaltyMs,
    peakPrefillThroughput,
    matchInfoProducer: matchInfoProducerParameter(p),
  });
  return Object.assign(filter, {
    link(plugins: ReadonlyMap<string, Plugin>): void {
      const producers = [
        'approx-prefix-cache-producer',
        'precise-prefix-cache-producer',
        'precise-prefix-cache-scorer',
      ];
      if (
        filter.matchInfoProducer !== undefined ||
        [...plugins.values()].some((x) => producers.includes(x.type))
      )
        return;
      p.problem(
        'prefixMatchInfoProducerName',
        `prefix-cache-affinity-filter "${name}" needs the prefix matches before the profile's scorers run: add an approx-prefix-cache-producer (or a precise-prefix-cache-producer) to plugins`,
      );
    },
  });
}
