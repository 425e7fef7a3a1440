/**
 * @module epp/plugins
 * The plugin registry: each plugin type name (as llm-d and GIE spell it, plus their older aliases) maps to a
 * factory that reads and checks its parameters. One file per plugin beside this one.
 */
import type { FieldProblem } from '../../errors/index.js';
import type { LinkedPlugin, Plugin } from '../types.js';

export type { LinkedPlugin };
import { activeRequestScorerFactory } from './active-request-scorer.js';
import { kvCacheUtilizationScorer } from './kv-cache-utilization-scorer.js';
import {
  byLabelFilter,
  labelSelectorFilter,
  readMatchExpressions,
  type LabelSelector,
} from './label-filter.js';
import { loraAffinityScorer } from './lora-affinity-scorer.js';
import { maxScorePicker } from './max-score-picker.js';
import {
  APPROX_PREFIX_CACHE_PRODUCER,
  approxPrefixCacheParameters,
  approxPrefixCacheProducer,
  PREFIX_INDEX_PARAMETERS,
} from './approx-prefix-cache-producer.js';
import {
  alwaysDisaggPdDecider,
  disaggProfileHandlerFactory,
  prefixBasedPdDeciderFactory,
} from './disagg-profile-handler.js';
import { DEFAULT_NO_HIT_LRU_SIZE, noHitLruScorer, type NoHitLruParameters } from './no-hit-lru-scorer.js';
import { Parameters } from './parameters.js';
import { pdProfileHandlerFactory } from './pd-profile-handler.js';
import { prefillHeaderHandler } from './prefill-header-handler.js';
import { queueScorer } from './queue-scorer.js';
import {
  defaultPrefixCacheParameters,
  hashBlockSizeParameter,
  matchInfoProducerParameter,
  prefixCacheScorer,
  type PrefixCacheParameters,
  type PrefixCacheScorer,
} from './prefix-cache-scorer.js';
import { MAX_CHARS_PER_TOKEN, MIN_CHARS_PER_TOKEN } from './prefix-cache-tuning.js';
import {
  precisePrefixCacheOptions,
  precisePrefixCacheProducer,
  precisePrefixCacheScorer,
} from './precise-prefix-cache-producer.js';
import { randomPicker } from './random-picker.js';
import { decodeFilter, prefillFilter } from './role-filter.js';
import { singleProfileHandler } from './single-profile-handler.js';
import { tokenProducer, tokenProducerOptions } from './token-producer.js';
import { prefixCacheAffinityFilterFactory } from './prefix-cache-affinity-filter.js';
import { tokenLoadScorerFactory } from './token-load-scorer.js';
import { utilizationDetector } from './utilization-detector.js';
import { concurrencyDetector, type ConcurrencyMode } from './concurrency-detector.js';
import { flowControlPolicy, priorityHoldbackPlugin } from './flow-control-policies.js';
import { weightedRandomPicker } from './weighted-random-picker.js';
import { notImplementedMessage } from './unsupported.js';

export { Parameters } from './parameters.js';
export { parseDurationMs } from '../go-duration.js';
export { notSupported } from './unsupported.js';
export { checkTokenSources } from './token-sources.js';
export { isSaturationDetector, type SaturationDetectorPlugin } from './utilization-detector.js';
export { matchesSelector, readMatchExpressions, type LabelSelector } from './label-filter.js';
export {
  PrefixIndex,
  prefixBlockHashes,
  PREFIX_MATCHES,
  type PrefixCacheScorer,
  type PrefixMatches,
} from './prefix-cache-scorer.js';
export { type ApproxPrefixCacheProducer } from './approx-prefix-cache-producer.js';
export { CharsPerTokenMeter, tunedCapacityBlocks } from './prefix-cache-tuning.js';
export { PREFILL_HEADER } from './prefill-header-handler.js';
export {
  precisePrefixCacheProducer,
  precisePrefixCacheOptions,
  type PrecisePrefixCacheProducer,
  type PrecisePrefixCacheOptions,
  type KvEventStats,
} from './precise-prefix-cache-producer.js';
export {
  tokenProducer,
  estimateTokens,
  TOKENIZED_PROMPT,
  type TokenProducer,
  type TokenizedPrompt,
} from './token-producer.js';

type Factory = (name: string, p: Parameters) => Plugin;

/**
 * The prefix-cache-scorer's parameters, under GIE's and llm-d's names: `hashBlockSize` (GIE) or `blockSize` (some
 * llm-d samples) in characters, or `blockSizeTokens` (newer llm-d) in tokens × `averageCharactersPerToken`;
 * `autoTune` as GIE and llm-d spell it; llm-d-router's `matchLengthWeight` / `matchLengthScaleTokens` under their
 * current or earlier names (`prefixLengthWeight` / `maxModelLen`).
 */
function prefixCacheParameters(p: Parameters): PrefixCacheParameters {
  const d = defaultPrefixCacheParameters;
  const averageCharactersPerToken = p.number(
    'averageCharactersPerToken',
    d.averageCharactersPerToken,
    MIN_CHARS_PER_TOKEN,
    MAX_CHARS_PER_TOKEN,
  );
  return {
    hashBlockSize: hashBlockSizeParameter(
      p,
      ['hashBlockSize', 'blockSize'],
      averageCharactersPerToken,
      'hashBlockSize / blockSize',
    ),
    maxPrefixBlocksToMatch: p.integer('maxPrefixBlocksToMatch', d.maxPrefixBlocksToMatch, 1),
    lruCapacityPerServer: p.integer('lruCapacityPerServer', d.lruCapacityPerServer, 1),
    autoTune: p.boolean('autoTune', d.autoTune),
    averageCharactersPerToken,
    matchInfoProducer: matchInfoProducerParameter(p),
    matchLengthWeight: renamed(p, 'matchLengthWeight', 'prefixLengthWeight', (key) =>
      p.number(key, d.matchLengthWeight, 0, 1),
    ),
    matchLengthScaleTokens: renamed(p, 'matchLengthScaleTokens', 'maxModelLen', (key) =>
      p.integer(key, d.matchLengthScaleTokens, 1),
    ),
  };
}

/** A parameter upstream renamed: read under whichever name is given; both at once is a mistake. */
function renamed<T>(p: Parameters, current: string, earlier: string, read: (key: string) => T): T {
  if (p.has(current) && p.has(earlier))
    p.problem(earlier, `is the earlier name of ${current}: give one of them`);
  const value = read(earlier);
  return p.has(earlier) ? value : read(current);
}

/**
 * no-hit-lru-scorer's parameters (llm-d-router): `lruSize`, `prefixMatchInfoProducerName`, and the deprecated
 * `prefixPluginName` / `prefixPluginType`. llm-d-router documents those two as never used; in
 * llm-d-inference-scheduler `prefixPluginName` named the prefix-cache-scorer whose state decides "cold". Here every
 * prefix-cache-scorer with its own index leaves its matches under the one key this scorer reads by default, so
 * naming one would change nothing: they are accepted (old configs load) and not read.
 */
function noHitLruParameters(p: Parameters): NoHitLruParameters {
  p.string('prefixPluginName', '');
  p.string('prefixPluginType', '');
  return {
    lruSize: p.integer('lruSize', DEFAULT_NO_HIT_LRU_SIZE, 1),
    matchInfoProducer: matchInfoProducerParameter(p),
  };
}

function prefixCacheScorerFactory(name: string, p: Parameters): PrefixCacheScorer & LinkedPlugin {
  const scorer = prefixCacheScorer(name, prefixCacheParameters(p));
  const own = PREFIX_INDEX_PARAMETERS.filter((key) => p.has(key));
  return Object.assign(scorer, {
    link(plugins: ReadonlyMap<string, Plugin>): void {
      let producer =
        scorer.matchInfoProducer === undefined ? undefined : plugins.get(scorer.matchInfoProducer);
      const byDefault = plugins.get(APPROX_PREFIX_CACHE_PRODUCER);
      if (scorer.matchInfoProducer === undefined && byDefault?.type === APPROX_PREFIX_CACHE_PRODUCER) {
        producer = byDefault;
        scorer.readMatchesFrom(byDefault.name);
      }
      if (producer?.type !== APPROX_PREFIX_CACHE_PRODUCER || own.length === 0) return;
      p.problem(
        own[0]!,
        `prefix-cache-scorer "${name}" reads the prefix index of approx-prefix-cache-producer "${producer.name}", ` +
          `which sets the block size and capacities: give ${own.join(', ')} there instead ` +
          '(blockSizeTokens, maxPrefixBlocksToMatch or maxPrefixTokensToMatch, lruCapacityPerServer, autoTune)',
      );
    },
  });
}

/** llm-d's utilization-detector defaults (its metrics staleness default is 200 ms). */
function utilizationDetectorFactory(name: string, p: Parameters): Plugin {
  const thresholds = {
    queueDepthThreshold: p.integer('queueDepthThreshold', 5, 1),
    kvCacheUtilThreshold: p.number('kvCacheUtilThreshold', 0.8, Number.MIN_VALUE, 1),
    metricsStalenessThresholdMs: p.duration('metricsStalenessThreshold', 200),
  };
  p.string('inFlightLoadProducerName', 'default');
  return utilizationDetector(name, thresholds, p.number('headroom', 0, 0));
}

/** llm-d's concurrency-detector defaults: 100 requests (or 1,000,000 tokens) per endpoint, no headroom. */
function concurrencyDetectorFactory(name: string, p: Parameters): Plugin {
  const mode = p.string('concurrencyMode', 'requests');
  if (!['requests', 'tokens', 'hybrid'].includes(mode))
    p.problem('concurrencyMode', `must be requests, tokens or hybrid, got "${mode}"`);
  return concurrencyDetector(
    name,
    {
      mode: (['requests', 'tokens', 'hybrid'].includes(mode) ? mode : 'requests') as ConcurrencyMode,
      maxConcurrency: p.integer('maxConcurrency', 100, 1),
      maxTokenConcurrency: p.integer('maxTokenConcurrency', 1_000_000, 1),
      headroom: p.number('headroom', 0, 0),
    },
    { queueDepthThreshold: 5, kvCacheUtilThreshold: 0.8, metricsStalenessThresholdMs: 2000 },
  );
}

/** What a `metrics-data-source` plugin carries: where the EPP scrapes each model server's metrics. */
export interface MetricsDataSource extends Plugin {
  type: 'metrics-data-source';
  /** The path of the Prometheus exposition on each model server. */
  metricsPath: string;
}

/** A request target the scraper can put on its request line: absolute, printable, no spaces. */
const METRICS_PATH = /^\/[!-~]{0,2047}$/;

/**
 * GIE's metrics data source (its chart passes `scheme`, `path` and `insecureSkipVerify`): the scrape's path is
 * honoured; the scrape is plain HTTP, as the model servers here serve it, so another scheme is refused rather than
 * leaving every endpoint stale. `insecureSkipVerify` only matters to TLS and is accepted as it is.
 */
function metricsDataSourceFactory(name: string, p: Parameters): MetricsDataSource {
  const scheme = p.string('scheme', 'http');
  if (scheme !== 'http')
    p.problem(
      'scheme',
      `"${scheme.slice(0, 32)}" is not scraped here: the EPP scrapes model servers over plain HTTP; use http`,
    );
  const path = p.string('path', '/metrics');
  if (!METRICS_PATH.test(path))
    p.problem(
      'path',
      'must be an absolute path of printable characters without spaces (at most 2048), like /metrics',
    );
  p.boolean('insecureSkipVerify', false);
  // A refused path never runs: the config with the problem does not load.
  return { type: 'metrics-data-source', name, metricsPath: path };
}

/** The scrape path a config's `metrics-data-source` names (`/metrics` without one). */
export function metricsPathOf(plugins: ReadonlyMap<string, Plugin>): string {
  for (const plugin of plugins.values())
    if (plugin.type === 'metrics-data-source') return (plugin as MetricsDataSource).metricsPath;
  return '/metrics';
}

/** A Kubernetes label selector from `matchLabels` and `matchExpressions`. */
function labelSelector(p: Parameters): LabelSelector {
  const matchLabels = p.stringMap('matchLabels');
  const matchExpressions = readMatchExpressions(p.raw('matchExpressions') ?? [], (path, message) =>
    p.problem(path, message),
  );
  return { matchLabels, matchExpressions };
}

function pickerFactory(make: (name: string, n: number) => Plugin): Factory {
  return (name, p) => make(name, p.integer('maxNumOfEndpoints', 1, 1, 1000));
}

const factories: Record<string, Factory> = {
  'queue-scorer': (name) => queueScorer(name),
  'kv-cache-utilization-scorer': (name) => kvCacheUtilizationScorer(name),
  'prefix-cache-scorer': prefixCacheScorerFactory,
  'lora-affinity-scorer': (name) => loraAffinityScorer(name),
  'active-request-scorer': activeRequestScorerFactory,
  'prefix-cache-affinity-filter': prefixCacheAffinityFilterFactory,
  'token-load-scorer': tokenLoadScorerFactory,
  'no-hit-lru-scorer': (name, p) => noHitLruScorer(name, noHitLruParameters(p)),
  'max-score-picker': pickerFactory(maxScorePicker),
  'random-picker': pickerFactory(randomPicker),
  'weighted-random-picker': pickerFactory(weightedRandomPicker),
  'prefill-filter': (name) => prefillFilter(name),
  'decode-filter': (name) => decodeFilter(name),
  'single-profile-handler': (name) => singleProfileHandler(name),
  'pd-profile-handler': pdProfileHandlerFactory,
  'disagg-profile-handler': disaggProfileHandlerFactory,
  'always-disagg-pd-decider': (name) => alwaysDisaggPdDecider(name),
  'prefix-based-pd-decider': prefixBasedPdDeciderFactory,
  'prefill-header-handler': (name, p) => prefillHeaderHandler(name, p.string('prefillProfile', 'prefill')),
  'by-label': (name, p) => {
    const label = p.string('label', '');
    if (label === '') p.problem('label', 'is required: the pod label to filter on');
    return byLabelFilter(name, label, p.stringList('validValues'), p.boolean('allowsNoLabel', false));
  },
  'label-selector-filter': (name, p) => labelSelectorFilter(name, labelSelector(p)),
  'by-label-selector': (name, p) => labelSelectorFilter(name, labelSelector(p), 'by-label-selector'),
  'utilization-detector': utilizationDetectorFactory,
  'approx-prefix-cache-producer': (name, p) =>
    approxPrefixCacheProducer(name, approxPrefixCacheParameters(p)),
  'precise-prefix-cache-scorer': (name, p) =>
    precisePrefixCacheScorer(name, precisePrefixCacheOptions(p, 'precise-prefix-cache-scorer')),
  'precise-prefix-cache-producer': (name, p) =>
    precisePrefixCacheProducer(name, precisePrefixCacheOptions(p)),
  'token-producer': (name, p) => tokenProducer(name, tokenProducerOptions(p)),
  'concurrency-detector': concurrencyDetectorFactory,
  'fcfs-ordering-policy': (name) => flowControlPolicy('fcfs-ordering-policy', name),
  'edf-ordering-policy': (name) => flowControlPolicy('edf-ordering-policy', name),
  'slo-deadline-ordering-policy': (name) => flowControlPolicy('slo-deadline-ordering-policy', name),
  'global-strict-fairness-policy': (name) => flowControlPolicy('global-strict-fairness-policy', name),
  'round-robin-fairness-policy': (name) => flowControlPolicy('round-robin-fairness-policy', name),
  'priority-holdback-policy': priorityHoldbackPlugin,
  // The OpenAI parser is what this EPP always does; naming it in requestHandler.parsers is accepted and honoured.
  'openai-parser': (name) => ({ type: 'openai-parser', name }),
  'metrics-data-source': metricsDataSourceFactory,
};

/**
 * Plugin types from llm-d configs that this EPP accepts (with any parameters) but does not act on, and why. Each
 * instance is reported at start as a warning naming the plugin.
 */
export const acceptedNotActedOn: Readonly<Record<string, string>> = {
  'core-metrics-extractor': 'the vLLM and SGLang metric names are built in; its parameters are not read',
  'inflight-load-producer': 'the EPP counts its in-flight requests itself (active-request-scorer)',
  'endpoint-notification-source':
    "the EPP's endpoint set is the source: precise-prefix-cache-producer follows it (subscriptions, evictions) itself",
  'program-aware-fairness':
    'program-aware fairness is not implemented; a band that names it is served round-robin between flows',
};

/** Older or shorter names found in published configs, mapped to the canonical type. */
const aliases: Record<string, string> = {
  'kv-cache-scorer': 'kv-cache-utilization-scorer',
  'prefix-cache': 'prefix-cache-scorer',
  'max-score': 'max-score-picker',
  'single-profile': 'single-profile-handler',
  'lora-affinity': 'lora-affinity-scorer',
  queue: 'queue-scorer',
  // llm-d-inference-scheduler registers both names with one factory.
  'disagg-headers-handler': 'prefill-header-handler',
  // llm-d-router still registers token-producer's earlier name (RegisterDeprecated, tokenizer.LegacyPluginFactory).
  tokenizer: 'token-producer',
};

/** Aliases upstream deprecates: loading one is a warning saying which name to use. */
const deprecatedAliases: Readonly<Record<string, string>> = {
  tokenizer:
    'deprecated upstream since llm-d-router v0.9.0 (to be removed in v0.11.0): loaded as token-producer',
};

/** Every plugin type this EPP understands (canonical names). */
export const pluginTypes: readonly string[] = [
  ...Object.keys(factories),
  ...Object.keys(acceptedNotActedOn),
].sort();

/** Canonical type for a configured type name, or undefined when unknown. */
export function canonicalPluginType(type: string): string | undefined {
  const t = aliases[type] ?? type;
  return t in factories || t in acceptedNotActedOn ? t : undefined;
}

/**
 * Types whose upstream factory never decodes its parameters (`func …Factory(name string, _ *json.Decoder, …)` in
 * llm-d-router), so upstream loads them with any parameters: here each parameter given is a warning, not an error.
 * Every other type decodes strictly upstream (unknown parameters refused), and is refused here the same way.
 */
const IGNORES_PARAMETERS: ReadonlySet<string> = new Set([
  'queue-scorer',
  'kv-cache-utilization-scorer',
  'lora-affinity-scorer',
  'prefill-filter',
  'decode-filter',
  'single-profile-handler',
  'always-disagg-pd-decider',
  'openai-parser',
  'fcfs-ordering-policy',
  'edf-ordering-policy',
  'slo-deadline-ordering-policy',
  'global-strict-fairness-policy',
  'round-robin-fairness-policy',
]);

/** Where one config's plugins report: problems refuse the config, warnings are logged at start. */
export interface PluginReport {
  readonly problems: FieldProblem[];
  readonly warnings: FieldProblem[];
  /** Where the known types were listed, once per config (an unknown type after that refers there). */
  knownTypesListedAt?: string | undefined;
}

/** The problem of an unknown type: the known types are listed once per config, however many types are unknown. */
function unknownTypeMessage(type: string, path: string, report: PluginReport): string {
  if (report.knownTypesListedAt !== undefined)
    return `unknown plugin type "${type}" (the known types are listed at ${report.knownTypesListedAt})`;
  report.knownTypesListedAt = path;
  return `unknown plugin type "${type}" (known: ${pluginTypes.join(', ')})`;
}

/**
 * Instantiates one plugin, recording problems (unknown type, bad parameters) and warnings (parameters accepted but
 * not acted on) in `report` instead of throwing. Returns undefined when the type is refused.
 */
export function createPlugin(
  type: string,
  name: string,
  parameters: Readonly<Record<string, unknown>>,
  path: string,
  report: PluginReport,
): Plugin | undefined {
  const { problems, warnings } = report;
  const canonical = canonicalPluginType(type);
  const unsupported = notImplementedMessage(type);
  if (unsupported !== undefined) {
    problems.push({ path: `${path}.type`, message: unsupported });
    return undefined;
  }
  if (!canonical) {
    problems.push({ path: `${path}.type`, message: unknownTypeMessage(type, `${path}.type`, report) });
    return undefined;
  }
  if (Object.hasOwn(deprecatedAliases, type))
    warnings.push({ path: `${path}.type`, message: `"${type}": ${deprecatedAliases[type]}` });
  // Accepted but not acted on: any parameters (they are not read); the config loader warns.
  if (canonical in acceptedNotActedOn) return { type: canonical, name };
  const p = new Parameters(parameters, `${path}.parameters`, problems, warnings);
  const plugin = factories[canonical]!(name, p);
  if (IGNORES_PARAMETERS.has(canonical)) p.ignoreUnknown(type);
  else p.rejectUnknown(type);
  return plugin;
}
