/**
 * @module epp/plugins/approx-prefix-cache-producer
 * `approx-prefix-cache-producer` (llm-d-router): owns an approximate prefix index (the one prefix-cache-scorer keeps
 * when it names no producer: hashed prompt blocks per endpoint, see prefix-cache-scorer.ts) and, before the profiles
 * run, leaves every request's matches in the cycle state under its name, where `prefix-cache-scorer` and
 * `no-hit-lru-scorer` read them (`prefixMatchInfoProducerName`, or by default the producer named
 * `approx-prefix-cache-producer`). So one index, configured in one place, serves every scorer that names it.
 */
import type { Endpoint, PostResponse, PreRequest, DataProducer, SchedulingResult } from '../types.js';
import type { Parameters } from './parameters.js';
import {
  approxPrefixIndexer,
  defaultPrefixCacheParameters,
  hashBlockSizeParameter,
  PREFIX_MATCHES,
  prefixMatchKey,
  type PrefixIndex,
  type PrefixIndexParameters,
} from './prefix-cache-scorer.js';

export const APPROX_PREFIX_CACHE_PRODUCER = 'approx-prefix-cache-producer';

export type ApproxPrefixCacheProducer = DataProducer &
  PreRequest &
  Partial<PostResponse> & {
    readonly index: PrefixIndex;
    readonly parameters: PrefixIndexParameters;
    /** The characters per token `autoTune` uses for an endpoint (undefined without `autoTune`). */
    charsPerToken(address: string): number | undefined;
  };

export function approxPrefixCacheProducer(
  name: string,
  parameters: PrefixIndexParameters,
): ApproxPrefixCacheProducer {
  const indexer = approxPrefixIndexer(parameters, {
    hashes: `prefix-hashes/${name}`,
    matches: prefixMatchKey(name),
  });
  const producer: ApproxPrefixCacheProducer = {
    type: APPROX_PREFIX_CACHE_PRODUCER,
    name,
    index: indexer.index,
    parameters,
    charsPerToken: indexer.charsPerToken,
    produce(context, _endpoints: readonly Endpoint[]): void {
      const matches = indexer.matches(context);
      // Readers that name no producer (pd-profile-handler, no-hit-lru-scorer, metrics) take the first one's.
      if (context.state.read(PREFIX_MATCHES) === undefined) context.state.write(PREFIX_MATCHES, matches);
    },
    preRequest(context, result: SchedulingResult): void {
      indexer.record(context, result);
    },
  };
  if (indexer.completed) producer.postResponse = indexer.completed;
  return producer;
}

/** Index parameters a prefix-cache-scorer may set itself only when it reads no approx producer's index. */
export const PREFIX_INDEX_PARAMETERS: readonly string[] = [
  'hashBlockSize',
  'blockSize',
  'blockSizeTokens',
  'maxPrefixBlocksToMatch',
  'lruCapacityPerServer',
  'autoTune',
  'averageCharactersPerToken',
];

/**
 * Reads llm-d-router's approx-prefix-cache-producer parameters: `blockSizeTokens` (tokens × 4 characters per token,
 * the estimate upstream uses too) or the deprecated `blockSize` (characters), `maxPrefixTokensToMatch` (tokens; when
 * > 0 it wins over `maxPrefixBlocksToMatch`, as upstream), `lruCapacityPerServer`, `autoTune`, `prefixHashSource`
 * (`body` only). Defaults are this EPP's prefix-cache-scorer defaults (16 tokens = 64 characters, 256 blocks,
 * 31,250 blocks per endpoint, autoTune off), so adding the producer without parameters routes as before; upstream
 * turns autoTune on by default and allows 131,072 tokens.
 */
export function approxPrefixCacheParameters(p: Parameters): PrefixIndexParameters {
  const d = defaultPrefixCacheParameters;
  const charsPerToken = d.averageCharactersPerToken;
  const hashBlockSize = hashBlockSizeParameter(p, ['blockSize'], charsPerToken, 'the deprecated blockSize');
  let maxPrefixBlocksToMatch = p.integer('maxPrefixBlocksToMatch', d.maxPrefixBlocksToMatch, 0);
  const maxPrefixTokensToMatch = p.integer('maxPrefixTokensToMatch', 0, 0);
  // The index hashes characters: a token cap becomes the blocks that hold that many tokens' worth of characters.
  if (maxPrefixTokensToMatch > 0)
    maxPrefixBlocksToMatch = Math.floor((maxPrefixTokensToMatch * charsPerToken) / hashBlockSize);
  const source = p.string('prefixHashSource', 'body');
  if (source !== 'body')
    p.problem(
      'prefixHashSource',
      `only "body" is supported (the prompt is hashed here); got ${JSON.stringify(source)}`,
    );
  return {
    hashBlockSize,
    maxPrefixBlocksToMatch,
    lruCapacityPerServer: p.integer('lruCapacityPerServer', d.lruCapacityPerServer, 1),
    autoTune: p.boolean('autoTune', d.autoTune),
    averageCharactersPerToken: charsPerToken,
  };
}
