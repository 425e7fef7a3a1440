/**
 * @module epp/plugins
 * The plugin registry: each plugin type name (as llm-d and GIE spell it, plus their older aliases) maps to a
 * factory that reads and checks its parameters. One file per plugin beside this one.
 */
import type { FieldProblem } from '../../errors/index.js';
import type { Plugin } from '../types.js';
import { activeRequestScorer } from './active-request-scorer.js';
import { kvCacheUtilizationScorer } from './kv-cache-utilization-scorer.js';
import { loraAffinityScorer } from './lora-affinity-scorer.js';
import { maxScorePicker } from './max-score-picker.js';
import { noHitLruScorer } from './no-hit-lru-scorer.js';
import { Parameters } from './parameters.js';
import { pdProfileHandler } from './pd-profile-handler.js';
import { prefillHeaderHandler } from './prefill-header-handler.js';
import { queueScorer } from './queue-scorer.js';
import {
  defaultPrefixCacheParameters,
  prefixCacheScorer,
  type PrefixCacheParameters,
} from './prefix-cache-scorer.js';
import { MAX_CHARS_PER_TOKEN, MIN_CHARS_PER_TOKEN } from './prefix-cache-tuning.js';
import { randomPicker } from './random-picker.js';
import { decodeFilter, prefillFilter } from './role-filter.js';
import { singleProfileHandler } from './single-profile-handler.js';
import { weightedRandomPicker } from './weighted-random-picker.js';

export { Parameters } from './parameters.js';
export {
  PrefixIndex,
  prefixBlockHashes,
  PREFIX_MATCHES,
  type PrefixCacheScorer,
  type PrefixMatches,
} from './prefix-cache-scorer.js';
export { CharsPerTokenMeter, tunedCapacityBlocks } from './prefix-cache-tuning.js';
export { PREFILL_HEADER } from './prefill-header-handler.js';

type Factory = (name: string, p: Parameters) => Plugin;

/**
 * The prefix-cache-scorer's parameters, under GIE's and llm-d's names: `hashBlockSize` (GIE) or `blockSize` (some
 * llm-d samples) in characters, or `blockSizeTokens` (newer llm-d) in tokens × `averageCharactersPerToken`;
 * `autoTune` as GIE and llm-d spell it.
 */
function prefixCacheParameters(p: Parameters): PrefixCacheParameters {
  const d = defaultPrefixCacheParameters;
  const averageCharactersPerToken = p.number(
    'averageCharactersPerToken',
    d.averageCharactersPerToken,
    MIN_CHARS_PER_TOKEN,
    MAX_CHARS_PER_TOKEN,
  );
  let hashBlockSize = p.integer('hashBlockSize', p.integer('blockSize', d.hashBlockSize, 1), 1);
  const blockSizeTokens = p.integer('blockSizeTokens', 0, 1, 1 << 20);
  if (p.has('blockSizeTokens')) {
    if (p.has('hashBlockSize') || p.has('blockSize'))
      p.problem(
        'blockSizeTokens',
        'give the block size once: blockSizeTokens (tokens) or hashBlockSize / blockSize (characters)',
      );
    else if (blockSizeTokens > 0)
      hashBlockSize = Math.max(1, Math.round(blockSizeTokens * averageCharactersPerToken));
  }
  return {
    hashBlockSize,
    maxPrefixBlocksToMatch: p.integer('maxPrefixBlocksToMatch', d.maxPrefixBlocksToMatch, 1),
    lruCapacityPerServer: p.integer('lruCapacityPerServer', d.lruCapacityPerServer, 1),
    autoTune: p.boolean('autoTune', d.autoTune),
    averageCharactersPerToken,
  };
}

function pickerFactory(make: (name: string, n: number) => Plugin): Factory {
  return (name, p) => make(name, p.integer('maxNumOfEndpoints', 1, 1, 1000));
}

const factories: Record<string, Factory> = {
  'queue-scorer': (name) => queueScorer(name),
  'kv-cache-utilization-scorer': (name) => kvCacheUtilizationScorer(name),
  'prefix-cache-scorer': (name, p) => prefixCacheScorer(name, prefixCacheParameters(p)),
  'lora-affinity-scorer': (name) => loraAffinityScorer(name),
  'active-request-scorer': (name) => activeRequestScorer(name),
  'no-hit-lru-scorer': (name) => noHitLruScorer(name),
  'max-score-picker': pickerFactory(maxScorePicker),
  'random-picker': pickerFactory(randomPicker),
  'weighted-random-picker': pickerFactory(weightedRandomPicker),
  'prefill-filter': (name) => prefillFilter(name),
  'decode-filter': (name) => decodeFilter(name),
  'single-profile-handler': (name) => singleProfileHandler(name),
  'pd-profile-handler': (name, p) =>
    pdProfileHandler(name, {
      threshold: p.integer('threshold', 256, 0),
      hashBlockSize: p.integer('hashBlockSize', defaultPrefixCacheParameters.hashBlockSize, 1),
      decodeProfile: p.string('decodeProfile', 'decode'),
      prefillProfile: p.string('prefillProfile', 'prefill'),
    }),
  'prefill-header-handler': (name, p) => prefillHeaderHandler(name, p.string('prefillProfile', 'prefill')),
};

/** Older or shorter names found in published configs, mapped to the canonical type. */
const aliases: Record<string, string> = {
  'kv-cache-scorer': 'kv-cache-utilization-scorer',
  'prefix-cache': 'prefix-cache-scorer',
  'max-score': 'max-score-picker',
  'single-profile': 'single-profile-handler',
  'lora-affinity': 'lora-affinity-scorer',
  queue: 'queue-scorer',
};

/** Every plugin type this EPP understands (canonical names). */
export const pluginTypes: readonly string[] = Object.keys(factories).sort();

/** Canonical type for a configured type name, or undefined when unknown. */
export function canonicalPluginType(type: string): string | undefined {
  const t = aliases[type] ?? type;
  return t in factories ? t : undefined;
}

/**
 * Instantiates one plugin, recording problems (unknown type, bad parameters) instead of throwing.
 * Returns undefined when the type is unknown.
 */
export function createPlugin(
  type: string,
  name: string,
  parameters: Readonly<Record<string, unknown>>,
  path: string,
  problems: FieldProblem[],
): Plugin | undefined {
  const canonical = canonicalPluginType(type);
  if (!canonical) {
    problems.push({
      path: `${path}.type`,
      message: `unknown plugin type "${type}" (known: ${pluginTypes.join(', ')})`,
    });
    return undefined;
  }
  const p = new Parameters(parameters, `${path}.parameters`, problems);
  const plugin = factories[canonical]!(name, p);
  p.rejectUnknown(type);
  return plugin;
}
