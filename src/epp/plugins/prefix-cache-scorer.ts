/**
 * @module epp/plugins/prefix-cache-scorer
 * `prefix-cache-scorer`: approximates which model server still holds the KV-cache for the start of a prompt. The
 * prompt is cut into fixed-size blocks (`hashBlockSize` characters, default 64); each block's hash chains the previous
 * one, so a block hash identifies the whole prefix up to it. When a request is sent to an endpoint its block hashes
 * are recorded in that endpoint's LRU (`lruCapacityPerServer` blocks); the score of an endpoint is the number of
 * leading blocks it holds divided by the prompt's blocks (at most `maxPrefixBlocksToMatch`); with `matchLengthWeight`
 * (llm-d-router) the matched length in tokens counts too (see {@link prefixScores}).
 *
 * The index is kept by the scorer itself unless it reads a producer's matches: a precise or an approx producer
 * named by `prefixMatchInfoProducerName`, or by default the approx-prefix-cache-producer named so, which then owns
 * the index and its parameters (approx-prefix-cache-producer.ts).
 *
 * Scoring asks every endpoint for the first block and only the endpoints still matching for the next, so a decision
 * costs one probe per endpoint plus the blocks that match, not endpoints × blocks.
 *
 * With `autoTune` (GIE's name for it) each endpoint's LRU holds what its server reports it can cache instead of a
 * fixed count: `num_gpu_blocks` × `block_size` tokens × the characters per token measured for that endpoint (see
 * prefix-cache-tuning.ts). Servers that report no `cache_config_info` keep `lruCapacityPerServer`.
 */
import type {
  Endpoint,
  EndpointMetrics,
  PostResponse,
  PreRequest,
  Scorer,
  SchedulingContext,
  SchedulingRequest,
  SchedulingResult,
} from '../types.js';
import { BlockLru } from './block-lru.js';
import type { Parameters } from './parameters.js';
import { CharsPerTokenMeter, DEFAULT_CHARS_PER_TOKEN, tunedCapacityBlocks } from './prefix-cache-tuning.js';

export const PREFIX_HASHES = 'prefix-cache/hashes';
export const PREFIX_MATCHES = 'prefix-cache/matches';

/** Cycle-state key under which a data producer named `name` leaves its {@link PrefixMatches} (llm-d's match info). */
export function prefixMatchKey(name: string): string {
  return `prefix-match-info/${name}`;
}

/** Where a plugin reads prefix matches: those of the producer it names, else the first ones written this cycle. */
export function prefixMatchesKeyOf(producer: string | undefined): string {
  return producer === undefined ? PREFIX_MATCHES : prefixMatchKey(producer);
}

/**
 * The approximate index's block size in characters, as prefix-cache-scorer and approx-prefix-cache-producer take it:
 * `blockSizeTokens` (tokens × `charsPerToken`) or one of `characterKeys` in characters (the first given wins); both
 * at once is refused, the message naming the character keys as `charactersNamed`.
 */
export function hashBlockSizeParameter(
  p: Parameters,
  characterKeys: readonly string[],
  charsPerToken: number,
  charactersNamed: string,
): number {
  let size = characterKeys.reduceRight(
    (fallback, key) => p.integer(key, fallback, 1),
    defaultPrefixCacheParameters.hashBlockSize,
  );
  const blockSizeTokens = p.integer('blockSizeTokens', 0, 1, 1 << 20);
  if (!p.has('blockSizeTokens')) return size;
  if (characterKeys.some((key) => p.has(key)))
    p.problem(
      'blockSizeTokens',
      `give the block size once: blockSizeTokens (tokens) or ${charactersNamed} (characters)`,
    );
  else if (blockSizeTokens > 0) size = Math.max(1, Math.round(blockSizeTokens * charsPerToken));
  return size;
}

/** `prefixMatchInfoProducerName`, as every plugin reading prefix matches takes it: a name, or undefined when absent. */
export function matchInfoProducerParameter(p: Parameters): string | undefined {
  return p.has('prefixMatchInfoProducerName') ? p.string('prefixMatchInfoProducerName', '') : undefined;
}

/** How this EPP's approximate prefix index cuts and keeps prompts (the scorer's own, or an approx producer's). */
export interface PrefixIndexParameters {
  /** Characters per hashed block. */
  hashBlockSize: number;
  /** Most leading blocks of a prompt hashed and matched (0: none). */
  maxPrefixBlocksToMatch: number;
  /** Blocks per endpoint; with `autoTune`, only for endpoints that do not report their KV cache. */
  lruCapacityPerServer: number;
  /** Size each endpoint's LRU after the KV cache its server reports (`vllm:cache_config_info`). */
  autoTune: boolean;
  /** Characters per token assumed by `autoTune` until it has measured one (and to turn blocks into tokens). */
  averageCharactersPerToken: number;
}

export interface PrefixCacheParameters extends PrefixIndexParameters {
  /**
   * llm-d's `prefixMatchInfoProducerName`: score from the match info this producer left in the cycle state (the
   * precise or the approximate producer's); a producer that leaves none falls back to the scorer's own index.
   */
  matchInfoProducer?: string | undefined;
  /**
   * llm-d-router's `matchLengthWeight` (earlier `prefixLengthWeight`), in [0, 1]: the share of the score given to the
   * matched length in tokens rather than to the matched fraction of the prompt. 0 = the fraction only.
   */
  matchLengthWeight: number;
  /** llm-d-router's `matchLengthScaleTokens` (earlier `maxModelLen`): matched tokens at which the length term is 1. */
  matchLengthScaleTokens: number;
}

export const defaultPrefixCacheParameters: PrefixCacheParameters = {
  hashBlockSize: 64,
  maxPrefixBlocksToMatch: 256,
  lruCapacityPerServer: 31250,
  autoTune: false,
  averageCharactersPerToken: DEFAULT_CHARS_PER_TOKEN,
  matchLengthWeight: 0,
  matchLengthScaleTokens: 8192,
};

/** What a prefix index computed for the current request, readable by other plugins through the cycle state. */
export interface PrefixMatches {
  /** Blocks in the prompt considered (after the cap). */
  totalBlocks: number;
  /** Leading blocks each endpoint (by address) holds; absent = 0. */
  matched: Map<string, number>;
  /** Size of one block, in `blockUnit`s. */
  blockSize: number;
  /**
   * What `blockSize` counts: prompt `characters` for this EPP's approximate index (it hashes text), `tokens` for the
   * precise producer (the model server's KV blocks).
   */
  blockUnit: 'characters' | 'tokens';
  /** Tokens per block: `blockSize` for token blocks, `blockSize` / the characters per token for character blocks. */
  blockTokens: number;
}

/**
 * Chained 53-bit block hashes of `text` (the model name seeds the chain so two models never share blocks).
 * Only full blocks are hashed: a partial tail block cannot be reused by the model server either.
 */
export function prefixBlockHashes(
  model: string,
  text: string,
  blockSize: number,
  maxBlocks: number,
): number[] {
  const blocks = Math.min(Math.floor(text.length / blockSize), maxBlocks);
  const hashes = new Array<number>(blocks);
  let previous = hashRange(model, 0, model.length, 0x9e3779b9);
  for (let b = 0; b < blocks; b++) {
    previous = hashRange(text, b * blockSize, (b + 1) * blockSize, previous);
    hashes[b] = previous;
  }
  return hashes;
}

/** A fast 53-bit string hash over text[start, end) seeded by `seed` (two 32-bit multiply-xorshift lanes). */
export function hashRange(text: string, start: number, end: number, seed: number): number {
  let h1 = 0xdeadbeef ^ (seed >>> 0);
  let h2 = 0x41c6ce57 ^ Math.floor(seed / 4294967296);
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * The block index shared by the scorer and its pre-request hook: per endpoint, an exact LRU of the blocks it was
 * sent ({@link BlockLru}), with its own capacity (the default until {@link PrefixIndex.setCapacity} says otherwise),
 * so the index can follow what each model server reports it can cache.
 */
export class PrefixIndex {
  /** address → its blocks. */
  private readonly servers = new Map<string, BlockLru>();

  constructor(private readonly defaultCapacity: number) {}

  private server(address: string): BlockLru {
    let server = this.servers.get(address);
    if (!server) {
      server = new BlockLru(this.defaultCapacity);
      this.servers.set(address, server);
    }
    return server;
  }

  /** Records that `address` now caches `hashes` (most recent last). */
  add(address: string, hashes: readonly number[]): void {
    const server = this.server(address);
    for (const h of hashes) server.touch(h);
  }

  /**
   * Sets how many blocks `address` may hold; when it shrinks, the oldest blocks go at once (the server has evicted
   * them too), so the next match no longer counts them.
   */
  setCapacity(address: string, capacity: number): void {
    this.server(address).setCapacity(capacity);
  }

  /** The number of blocks `address` may hold. */
  capacity(address: string): number {
    return this.servers.get(address)?.capacity ?? this.defaultCapacity;
  }

  /** Forgets an endpoint that left the pool (or restarted with an empty cache), capacity included. */
  remove(address: string): void {
    this.servers.delete(address);
  }

  /**
   * Leading blocks held per address. Every endpoint is asked for the first block (one table probe each); only those
   * holding it are asked for the next, each dropping out at the first block it lacks.
   */
  match(hashes: readonly number[]): Map<string, number> {
    const matched = new Map<string, number>();
    if (hashes.length === 0) return matched;
    const alive: [string, BlockLru][] = [];
    for (const entry of this.servers) if (entry[1].has(hashes[0]!)) alive.push(entry);
    let count = alive.length;
    let b = 1;
    for (; b < hashes.length && count > 0; b++) {
      const h = hashes[b]!;
      let kept = 0;
      for (let i = 0; i < count; i++) {
        const entry = alive[i]!;
        if (entry[1].has(h)) alive[kept++] = entry;
        else matched.set(entry[0], b);
      }
      count = kept;
    }
    for (let i = 0; i < count; i++) matched.set(alive[i]![0], b);
    return matched;
  }

  /** Blocks recorded for an endpoint (for metrics and tests). */
  size(address: string): number {
    return this.servers.get(address)?.size ?? 0;
  }
}

/** Cycle-state keys under which an approximate index leaves the request's block hashes and matches. */
export interface PrefixStateKeys {
  hashes: string;
  matches: string;
}

/**
 * This EPP's approximate prefix index with what maintains it: the request's block hashes and matches (computed
 * once per cycle, cached in the cycle state), recording where a request went, and `autoTune`. The prefix-cache-scorer
 * keeps one of its own; an approx-prefix-cache-producer owns one that scorers name by `prefixMatchInfoProducerName`.
 */
export interface ApproxPrefixIndexer {
  readonly index: PrefixIndex;
  readonly parameters: PrefixIndexParameters;
  /** The request's matches, computed on first use in a cycle. */
  matches(context: SchedulingContext): PrefixMatches;
  /** Records the request's blocks on every endpoint that will process its prompt. */
  record(context: SchedulingContext, result: SchedulingResult): void;
  /** Counts a completed prompt (only with `autoTune`, which measures characters per token). */
  completed: ((request: SchedulingRequest, endpoint: Endpoint) => void) | undefined;
  /** The characters per token `autoTune` uses for an endpoint (undefined without `autoTune`). */
  charsPerToken(address: string): number | undefined;
}

/** What `autoTune` keeps per endpoint. */
interface EndpointTuning {
  meter: CharsPerTokenMeter;
  /** The scrape last applied; a new one replaces the object, so identity tells whether anything changed. */
  metrics: EndpointMetrics | undefined;
}

export function approxPrefixIndexer(
  parameters: PrefixIndexParameters,
  keys: PrefixStateKeys,
): ApproxPrefixIndexer {
  const index = new PrefixIndex(parameters.lruCapacityPerServer);
  const tuning = parameters.autoTune ? new Map<string, EndpointTuning>() : undefined;
  /** The latest measurement from any endpoint: a better first guess for a new endpoint than the default. */
  let poolCharsPerToken: number | undefined;

  const charsPerTokenOf = (t: EndpointTuning | undefined): number =>
    t?.meter.charsPerToken ?? poolCharsPerToken ?? parameters.averageCharactersPerToken;

  function tuningOf(address: string, tuned: Map<string, EndpointTuning>): EndpointTuning {
    let t = tuned.get(address);
    if (!t) {
      t = { meter: new CharsPerTokenMeter(), metrics: undefined };
      tuned.set(address, t);
    }
    return t;
  }

  /**
   * When a new scrape of the endpoint arrived, updates its chars/token and resizes its LRU. Only the endpoints a
   * request goes to are tuned, so a decision costs O(1) more, not O(endpoints).
   */
  function tune(endpoint: Endpoint, tuned: Map<string, EndpointTuning>): void {
    const t = tuningOf(endpoint.address, tuned);
    if (t.metrics === endpoint.metrics) return;
    t.metrics = endpoint.metrics;
    const measured = t.meter.charsPerToken;
    // The token counter went backwards: the server restarted with an empty cache, so forget what it held.
    if (t.meter.observe(endpoint.metrics.promptTokensTotal, endpoint.metrics.waitingQueueSize) === 'reset')
      index.remove(endpoint.address);
    if (t.meter.charsPerToken !== measured) poolCharsPerToken = t.meter.charsPerToken;
    index.setCapacity(
      endpoint.address,
      tunedCapacityBlocks(
        endpoint.metrics,
        charsPerTokenOf(t),
        parameters.hashBlockSize,
        parameters.lruCapacityPerServer,
      ),
    );
  }

  function matches(context: SchedulingContext): PrefixMatches {
    const cached = context.state.read<PrefixMatches>(keys.matches);
    if (cached) return cached;
    const hashes = prefixBlockHashes(
      context.request.targetModel,
      context.request.prompt,
      parameters.hashBlockSize,
      parameters.maxPrefixBlocksToMatch,
    );
    const result: PrefixMatches = {
      totalBlocks: hashes.length,
      matched: index.match(hashes),
      blockSize: parameters.hashBlockSize,
      blockUnit: 'characters',
      // The pool's measure, not each endpoint's: one number per request keeps scoring O(1) per endpoint.
      blockTokens: parameters.hashBlockSize / (poolCharsPerToken ?? parameters.averageCharactersPerToken),
    };
    context.state.write(keys.hashes, hashes);
    context.state.write(keys.matches, result);
    return result;
  }

  return {
    index,
    parameters,
    matches,
    record(context, result): void {
      matches(context);
      const hashes = context.state.read<number[]>(keys.hashes) ?? [];
      // Every endpoint that will process the prompt (decode and, for P/D, prefill) ends up holding its blocks.
      for (const profile of result.results.values()) {
        const target = profile.targets[0];
        if (!target) continue;
        if (tuning) {
          tune(target, tuning);
          tuningOf(target.address, tuning).meter.addRouted(context.request.prompt.length);
        }
        if (hashes.length > 0) index.add(target.address, hashes);
      }
    },
    completed: tuning
      ? (request, endpoint) => tuningOf(endpoint.address, tuning).meter.addCompleted(request.prompt.length)
      : undefined,
    charsPerToken(address: string): number | undefined {
      return tuning ? charsPerTokenOf(tuning.get(address)) : undefined;
    },
  };
}

export type PrefixCacheScorer = Scorer &
  PreRequest &
  Partial<PostResponse> & {
    readonly index: PrefixIndex;
    /** `prefixMatchInfoProducerName`, when given (or bound to the default approx producer). */
    readonly matchInfoProducer: string | undefined;
    /** The characters per token `autoTune` uses for an endpoint (undefined without `autoTune`). */
    charsPerToken(address: string): number | undefined;
    /**
     * Reads its matches from the approx-prefix-cache-producer `producer` from now on (llm-d-router's default when
     * the scorer names no producer); called while the config is loaded, before any request.
     */
    readMatchesFrom(producer: string): void;
  };

/**
 * The score of each endpoint: the fraction of the prompt's blocks it holds, and with `matchLengthWeight` w > 0
 * llm-d-router's blend w·min(1, matched tokens / `matchLengthScaleTokens`)² + (1 − w)·fraction, which favours long
 * cached prefixes (attention cost grows with the square of the length they save).
 */
function prefixScores(
  matches: PrefixMatches,
  endpoints: readonly Endpoint[],
  parameters: PrefixCacheParameters,
): Float64Array {
  const { totalBlocks, matched } = matches;
  const scores = new Float64Array(endpoints.length);
  if (totalBlocks === 0 || matched.size === 0) return scores;
  const w = parameters.matchLengthWeight;
  if (w === 0) {
    for (let i = 0; i < endpoints.length; i++) {
      scores[i] = (matched.get(endpoints[i]!.address) ?? 0) / totalBlocks;
    }
    return scores;
  }
  const tokensPerScale = matches.blockTokens / parameters.matchLengthScaleTokens;
  for (let i = 0; i < endpoints.length; i++) {
    const blocks = matched.get(endpoints[i]!.address) ?? 0;
    const length = Math.min(1, blocks * tokensPerScale);
    scores[i] = w * length * length + (1 - w) * (blocks / totalBlocks);
  }
  return scores;
}

export function prefixCacheScorer(name: string, parameters: PrefixCacheParameters): PrefixCacheScorer {
  const own = approxPrefixIndexer(parameters, { hashes: PREFIX_HASHES, matches: PREFIX_MATCHES });
  let producer = parameters.matchInfoProducer;

  const producedMatches = (context: SchedulingContext): PrefixMatches | undefined =>
    producer === undefined ? undefined : context.state.read<PrefixMatches>(prefixMatchKey(producer));

  const scorer: PrefixCacheScorer = {
    type: 'prefix-cache-scorer',
    name,
    index: own.index,
    get matchInfoProducer() {
      return producer;
    },
    charsPerToken: own.charsPerToken,
    readMatchesFrom(name: string): void {
      producer = name;
    },
    score(context, endpoints: readonly Endpoint[]): Float64Array {
      return prefixScores(producedMatches(context) ?? own.matches(context), endpoints, parameters);
    },
    preRequest(context, result: SchedulingResult): void {
      // Scored from a producer's index: the producer records where the request went.
      if (producedMatches(context)) return;
      own.record(context, result);
    },
  };
  // Only with autoTune: a plugin with this hook is called for every response.
  if (own.completed) scorer.postResponse = own.completed;
  return scorer;
}
