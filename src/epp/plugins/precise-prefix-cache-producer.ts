/**
 * @module epp/plugins/precise-prefix-cache-producer
 * `precise-prefix-cache-producer` (llm-d-router): routes on what the model servers report they cache. It subscribes
 * to their KV-cache events over ZMQ (kv-events/subscriber.ts), keeps the block index (kv-events/kv-block-index.ts),
 * and for every request turns the prompt's tokens (from `token-producer`, else llm-d's byte estimate) into block keys
 * and writes each candidate's longest cached prefix to the cycle state, where `prefix-cache-scorer` with
 * `prefixMatchInfoProducerName` reads it. With `speculativeIndexing` the routed endpoint is assumed to hold the
 * prompt's blocks for `speculativeTTL` until its own events confirm them.
 *
 * Events are taken only from endpoints of the pool: a topic naming any other pod is dropped (counted), so a flood of
 * topics or pods costs a lookup each and no memory.
 */
import {
  decodeKvEventBatch,
  KvBlockIndex,
  KvEventDecodeError,
  KvEventSubscriber,
  parseKvTopic,
  type KvEventMessage,
} from '../kv-events/index.js';
import { endpointNames } from '../metrics-http.js';
import type {
  DataProducer,
  Endpoint,
  PluginHost,
  PluginService,
  PreRequest,
  SchedulingContext,
  SchedulingResult,
  Scorer,
} from '../types.js';
import { durationParameterMs } from '../go-duration.js';
import type { Parameters } from './parameters.js';
import { tokenizersPool, type TokenizersPool } from './legacy-tokenizers.js';
import {
  defaultPrefixCacheParameters,
  PREFIX_MATCHES,
  prefixCacheScorer,
  prefixMatchKey,
  type PrefixMatches,
} from './prefix-cache-scorer.js';
import { estimateTokens, PENDING_TOKENS, TOKENIZED_PROMPT, type TokenizedPrompt } from './token-producer.js';

const KEYS_STATE = 'precise-prefix-cache/keys';

export interface PrecisePrefixCacheOptions {
  blockSizeTokens: number;
  hashSeed: string;
  maxEntries: number;
  podCacheSize: number;
  /** Device tiers weighted 0 in `kvCacheBackendConfigs`. */
  ignoredMedia: Set<string>;
  topicFilter: string;
  /** Central mode: bind here. */
  zmqEndpoint: string | undefined;
  /** Per-endpoint mode: connect to every endpoint on this port. */
  socketPort: number | undefined;
  speculativeIndexing: boolean;
  speculativeTtlMs: number;
  maxMessageBytes: number;
  /** Most blocks of one prompt considered. */
  maxBlocks: number;
  /**
   * The deprecated all-in-one scorer's `indexerConfig.tokenizersPoolConfig` (the producer refuses it, as upstream):
   * rendered at the pool's model servers when no token-producer renders (see config's token sources).
   */
  tokenizersPool?: TokenizersPool | undefined;
}

/** Counters of the event stream (metrics and tests read them). */
export interface KvEventStats {
  messages: number;
  malformedFrames: number;
  undecodable: number;
  skippedEvents: number;
  unknownPods: number;
  stored: number;
  orphans: number;
  removed: number;
  cleared: number;
  restarts: number;
}

export type PrecisePrefixCacheProducer = DataProducer &
  PreRequest &
  PluginService & {
    readonly index: KvBlockIndex;
    readonly options: PrecisePrefixCacheOptions;
    readonly stats: KvEventStats;
    /** The central socket's address once bound (with the port chosen for `:0`). */
    boundEndpoint(): string | undefined;
    /** Applies one message as if received (the subscriber calls this; tests may too). */
    handle(message: KvEventMessage): void;
  };

export function precisePrefixCacheProducer(
  name: string,
  options: PrecisePrefixCacheOptions,
): PrecisePrefixCacheProducer {
  const index = new KvBlockIndex({
    blockSize: options.blockSizeTokens,
    hashSeed: options.hashSeed,
    maxEntries: options.maxEntries,
    podCacheSize: options.podCacheSize,
    ignoredMedia: options.ignoredMedia,
  });
  const stats: KvEventStats = {
    messages: 0,
    malformedFrames: 0,
    undecodable: 0,
    skippedEvents: 0,
    unknownPods: 0,
    stored: 0,
    orphans: 0,
    removed: 0,
    cleared: 0,
    restarts: 0,
  };
  /** Last sequence number per endpoint: one going backwards means the publisher restarted with an empty cache. */
  const sequences = new Map<string, bigint>();
  let host: PluginHost | undefined;
  let subscriber: KvEventSubscriber | undefined;

  /** The pool endpoint an event is from: the connected endpoint, or the topic's `ip:port` / unique `ip`. */
  function endpointOf(source: string | undefined, pod: string): string | undefined {
    if (source !== undefined) return source;
    const endpoints = host?.endpoints() ?? [];
    let byHost: string | undefined;
    let hosts = 0;
    for (const e of endpoints) {
      const names = endpointNames(e.address);
      if (names.withPort.includes(pod)) return e.address;
      if (names.host.includes(pod)) {
        byHost = e.address;
        hosts++;
      }
    }
    return hosts === 1 ? byHost : undefined;
  }

  function handle(message: KvEventMessage): void {
    stats.messages++;
    const topic = parseKvTopic(message.topic);
    const pod = endpointOf(message.source, topic?.pod ?? '');
    if (pod === undefined || topic === undefined) {
      stats.unknownPods++;
      return;
    }
    const last = sequences.get(pod);
    // Clearing costs only what the pod stored since it last cleared, so a pod that keeps resetting its sequence
    // pays for its own entries, once each: no rate limit needed.
    let clean = false;
    if (last !== undefined && message.sequence < last) {
      stats.restarts++;
      index.clearPod(pod);
      clean = true;
    }
    sequences.set(pod, message.sequence);
    let batch;
    try {
      batch = decodeKvEventBatch(message.payload);
    } catch (error) {
      if (!(error instanceof KvEventDecodeError)) throw error;
      stats.undecodable++;
      host?.log.debug({ endpoint: pod, reason: error.message }, 'undecodable KV event batch dropped');
      return;
    }
    stats.skippedEvents += batch.skipped.length;
    for (const event of batch.events) {
      switch (event.type) {
        case 'BlockStored':
          if (index.stored(pod, topic.model, event) === 'orphan') stats.orphans++;
          else stats.stored++;
          clean = false;
          break;
        case 'BlockRemoved':
          index.removed(pod, event);
          stats.removed++;
          break;
        case 'AllBlocksCleared':
          // Nothing was stored since the last clear of this batch (routing cannot speculate mid-batch): a repeat
          // would find nothing to clear.
          if (!clean) index.clearPod(pod);
          clean = true;
          stats.cleared++;
          break;
      }
    }
  }

  function keysOf(context: SchedulingContext): number[] {
    const cached = context.state.read<number[]>(KEYS_STATE);
    if (cached) return cached;
    const prepared = context.state.read<TokenizedPrompt>(TOKENIZED_PROMPT);
    const tokens = prepared?.tokens ?? estimateTokens(context.request.prompt);
    const keys = index.keysOf(context.request.targetModel, tokens, options.maxBlocks);
    context.state.write(KEYS_STATE, keys);
    return keys;
  }

  /** The prompt's blocks: more than its keys when the tokens cover only its beginning (a prefix-store hit). */
  function promptBlocks(context: SchedulingContext, keys: readonly number[]): number {
    const whole = context.state.read<TokenizedPrompt>(TOKENIZED_PROMPT)?.promptTokens;
    if (whole === undefined) return keys.length;
    return Math.max(keys.length, Math.min(options.maxBlocks, Math.floor(whole / options.blockSizeTokens)));
  }

  return {
    type: 'precise-prefix-cache-producer',
    name,
    index,
    options,
    stats,
    handle,
    boundEndpoint: () => subscriber?.boundEndpoint,
    produce(context, endpoints: readonly Endpoint[]): void {
      const keys = keysOf(context);
      const all = index.match(keys, context.now);
      // Only the candidates: the scorer divides by the prompt's blocks.
      const matched = new Map<string, number>();
      for (const e of endpoints) {
        const n = all.get(e.address);
        if (n !== undefined) matched.set(e.address, n);
      }
      const matches: PrefixMatches = {
        totalBlocks: promptBlocks(context, keys),
        matched,
        blockSize: options.blockSizeTokens,
        blockUnit: 'tokens',
        blockTokens: options.blockSizeTokens,
      };
      context.state.write(prefixMatchKey(name), matches);
      if (context.state.read(PREFIX_MATCHES) === undefined) context.state.write(PREFIX_MATCHES, matches);
    },
    preRequest(context, result: SchedulingResult): void {
      if (!options.speculativeIndexing) return;
      const targets: string[] = [];
      for (const profile of result.results.values())
        if (profile.targets[0]) targets.push(profile.targets[0].address);
      const speculate = (keys: readonly number[], now: number) => {
        for (const target of targets) index.speculate(target, keys, now, options.speculativeTtlMs);
      };
      const pending = context.state.read<Promise<ArrayLike<number> | undefined>>(PENDING_TOKENS);
      if (pending !== undefined && context.state.read(TOKENIZED_PROMPT) === undefined) {
        // Routed without its tokens (a prompt not seen before): record where it went once its render is back, so
        // the next requests sharing it follow it before the server's own events arrive.
        const model = context.request.targetModel;
        const routedAt = performance.now();
        void pending.then((tokens) => {
          if (tokens)
            speculate(
              index.keysOf(model, tokens, options.maxBlocks),
              context.now + performance.now() - routedAt,
            );
        });
        return;
      }
      const keys = keysOf(context);
      if (keys.length > 0) speculate(keys, context.now);
    },
    async start(h: PluginHost): Promise<void> {
      host = h;
      const sub = new KvEventSubscriber({
        topicFilter: options.topicFilter,
        bindEndpoint: options.zmqEndpoint,
        socketPort: options.socketPort,
        maxMessageBytes: options.maxMessageBytes,
        onMessage: handle,
        onMalformed: () => stats.malformedFrames++,
        onError: (error, where) =>
          h.log.warn({ err: String(error), plugin: name }, `KV events: ${where} failed`),
      });
      subscriber = sub;
      h.onRemove((address) => {
        index.clearPod(address);
        sequences.delete(address);
      });
      const follow = () => sub.setEndpoints(h.endpoints().map((e) => e.address));
      h.onEndpointsChange(follow);
      await sub.start();
      follow();
      h.log.info(
        {
          plugin: name,
          bind: sub.boundEndpoint,
          socketPort: options.socketPort,
          blockSizeTokens: options.blockSizeTokens,
        },
        'subscribed to KV-cache events',
      );
    },
    stop(): Promise<void> {
      subscriber?.close();
      subscriber = undefined;
      return Promise.resolve();
    },
  };
}

/**
 * Checks that `value` is a mapping whose keys are all `known`; reports the others, with `hints[key]` when a key is a
 * known mistake.
 */
function section(
  p: Parameters,
  path: string,
  value: unknown,
  known: readonly string[],
  hints: Readonly<Record<string, string>> = {},
): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    p.problem(path, 'must be a mapping');
    return undefined;
  }
  const m = value as Record<string, unknown>;
  for (const key of Object.keys(m))
    if (!known.includes(key))
      p.problem(`${path}.${key}`, hints[key] ?? `unknown field (known: ${known.join(', ')})`);
  return m;
}

function positiveInteger(p: Parameters, path: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    p.problem(path, `must be a positive integer, got ${JSON.stringify(value)}`);
    return fallback;
  }
  return value;
}

function text(p: Parameters, path: string, value: unknown, fallback: string): string {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string') {
    p.problem(path, 'must be a string');
    return fallback;
  }
  return value;
}

/** What a `tokenProcessorConfig` gives; undefined fields were not given. */
interface TokenProcessorSettings {
  blockSizeTokens: number | undefined;
  hashSeed: string | undefined;
}

/** llm-d-kv-cache's TokenProcessorConfig: `blockSizeTokens` or the deprecated `blockSize`, `hashSeed`, `hashAlgorithm`. */
function tokenProcessorConfig(
  p: Parameters,
  path: string,
  value: unknown,
): TokenProcessorSettings | undefined {
  const tp = section(p, path, value, ['blockSize', 'blockSizeTokens', 'hashSeed', 'hashAlgorithm']);
  if (!tp) return undefined;
  const given = (key: string) => tp[key] !== undefined && tp[key] !== null;
  const legacy = given('blockSize')
    ? positiveInteger(p, `${path}.blockSize`, tp['blockSize'], 16)
    : undefined;
  const blockSizeTokens = given('blockSizeTokens')
    ? positiveInteger(p, `${path}.blockSizeTokens`, tp['blockSizeTokens'], 16)
    : legacy;
  const algorithm = text(p, `${path}.hashAlgorithm`, tp['hashAlgorithm'], '');
  if (!['', 'cbor-fnv', 'xxh64'].includes(algorithm))
    p.problem(`${path}.hashAlgorithm`, 'must be "cbor-fnv" or "xxh64"');
  return {
    blockSizeTokens,
    hashSeed: given('hashSeed') ? text(p, `${path}.hashSeed`, tp['hashSeed'], '') : undefined,
  };
}

/** Default number of (block, endpoint) entries: ~205 MB at the measured ~410 bytes per entry. */
export const DEFAULT_MAX_ENTRIES = 500_000;

/**
 * Reads llm-d-router's parameters: `tokenProcessorConfig` {blockSize | blockSizeTokens, hashSeed, hashAlgorithm},
 * `indexerConfig` {kvBlockIndexConfig {inMemoryConfig {size, podCacheSize}, enableMetrics, metricsLoggingInterval},
 * kvCacheBackendConfigs [{name, weight}], tokenProcessorConfig (as the top-level one; the block size may be given in
 * either place, not differently in both)}, `kvEventsConfig` {zmqEndpoint, topicFilter, concurrency, engineType,
 * tracing, discoverPods, podDiscoveryConfig {socketPort, podLabelSelector, podNamespace, replaySocketPort}},
 * `speculativeIndexing`, `speculativeTTL`. Defaults are llm-d's (block size 16, topic `kv@`, pod discovery on port
 * 5557), except the index size: llm-d allows 10^8 keys; here 500,000 entries unless `inMemoryConfig.size` says more.
 */
export function precisePrefixCacheOptions(
  p: Parameters,
  type: 'precise-prefix-cache-producer' | 'precise-prefix-cache-scorer' = 'precise-prefix-cache-producer',
): PrecisePrefixCacheOptions {
  const tp = tokenProcessorConfig(p, 'tokenProcessorConfig', p.raw('tokenProcessorConfig'));
  const ic = section(p, 'indexerConfig', p.raw('indexerConfig'), [
    'kvBlockIndexConfig',
    'kvCacheBackendConfigs',
    'tokenizersPoolConfig',
    'tokenProcessorConfig',
  ]);
  // llm-d-kv-cache's kvcache.Config has its own tokenProcessorConfig (llm-d-router's sim configs set the block size
  // there only). There is one block size here, the one the keys are cut with: either place gives it, both must agree.
  const itp = tokenProcessorConfig(p, 'indexerConfig.tokenProcessorConfig', ic?.['tokenProcessorConfig']);
  if (
    tp?.blockSizeTokens !== undefined &&
    itp?.blockSizeTokens !== undefined &&
    tp.blockSizeTokens !== itp.blockSizeTokens
  )
    p.problem(
      'indexerConfig.tokenProcessorConfig',
      `block size ${itp.blockSizeTokens} disagrees with tokenProcessorConfig's ${tp.blockSizeTokens}: give it once, or the same in both`,
    );
  if (tp?.hashSeed !== undefined && itp?.hashSeed !== undefined && tp.hashSeed !== itp.hashSeed)
    p.problem(
      'indexerConfig.tokenProcessorConfig.hashSeed',
      "disagrees with tokenProcessorConfig's hashSeed: give it once, or the same in both",
    );
  const blockSizeTokens = tp?.blockSizeTokens ?? itp?.blockSizeTokens ?? 16;
  // Upstream's tokens-only producer refuses the in-process tokenizer pool (producer.go PluginFactory); the deprecated
  // all-in-one scorer still takes it and tokenizes with it (legacy_producer.go), which here maps onto a renderer.
  const pool =
    type === 'precise-prefix-cache-scorer'
      ? tokenizersPool(p, 'indexerConfig.tokenizersPoolConfig', ic?.['tokenizersPoolConfig'])
      : undefined;
  if (type === 'precise-prefix-cache-producer' && ic?.['tokenizersPoolConfig'] !== undefined)
    p.problem(
      'indexerConfig.tokenizersPoolConfig',
      'is refused by precise-prefix-cache-producer, as upstream (it takes its tokens from a token-producer): add a token-producer with modelName and vllm.url or vllm.endpointDiscovery (only the deprecated precise-prefix-cache-scorer reads tokenizersPoolConfig)',
    );
  const bic = section(
    p,
    'indexerConfig.kvBlockIndexConfig',
    ic?.['kvBlockIndexConfig'],
    ['inMemoryConfig', 'costAwareMemoryConfig', 'redisConfig', 'enableMetrics', 'metricsLoggingInterval'],
    {
      // In llm-d-router's sim-epp-no-hit-lru.yaml, but no field of kvblock.IndexConfig (llm-d-kv-cache nor
      // llm-d-router): upstream's strict decoder refuses it too, so it is not silently accepted here.
      maxPrefixTokensToMatch:
        'unknown field: kvBlockIndexConfig has no maxPrefixTokensToMatch (nor upstream); it is a parameter of approx-prefix-cache-producer',
    },
  );
  if (bic?.['redisConfig'] !== undefined || bic?.['costAwareMemoryConfig'] !== undefined)
    p.problem(
      'indexerConfig.kvBlockIndexConfig',
      'only inMemoryConfig is supported: every EPP replica keeps its own index from the events',
    );
  const mem = section(p, 'indexerConfig.kvBlockIndexConfig.inMemoryConfig', bic?.['inMemoryConfig'], [
    'size',
    'podCacheSize',
  ]);
  const maxEntries = positiveInteger(
    p,
    'indexerConfig.kvBlockIndexConfig.inMemoryConfig.size',
    mem?.['size'],
    DEFAULT_MAX_ENTRIES,
  );
  const podCacheSize = positiveInteger(
    p,
    'indexerConfig.kvBlockIndexConfig.inMemoryConfig.podCacheSize',
    mem?.['podCacheSize'],
    10,
  );
  const ignoredMedia = new Set<string>();
  const backends = ic?.['kvCacheBackendConfigs'];
  if (backends !== undefined && backends !== null) {
    if (!Array.isArray(backends))
      p.problem('indexerConfig.kvCacheBackendConfigs', 'must be a list of {name, weight}');
    else
      backends.forEach((b, i) => {
        const path = `indexerConfig.kvCacheBackendConfigs[${i}]`;
        const m = section(p, path, b, ['name', 'weight']);
        if (!m) return;
        if (typeof m['name'] !== 'string' || typeof m['weight'] !== 'number' || m['weight'] < 0)
          p.problem(path, 'needs a string name and a weight >= 0');
        else if (m['weight'] === 0) ignoredMedia.add(m['name'].toLowerCase());
        else if (m['weight'] !== 1)
          // Upstream adds each matched block's tier weight (gpu 1.0, cpu 0.8 by default); here a tier is in or out.
          p.warn(
            `${path}.weight`,
            `accepted as 1: a block on tier "${m['name'].slice(0, 64)}" counts fully here (only weight 0, which leaves the tier out, is acted on), where upstream counts it ${m['weight']}`,
          );
      });
  }

  const ke = section(p, 'kvEventsConfig', p.raw('kvEventsConfig'), [
    'zmqEndpoint',
    'topicFilter',
    'concurrency',
    'engineType',
    'tracing',
    'discoverPods',
    'podDiscoveryConfig',
  ]);
  const zmqEndpoint = text(p, 'kvEventsConfig.zmqEndpoint', ke?.['zmqEndpoint'], '') || undefined;
  if (zmqEndpoint !== undefined && !/^tcp:\/\/(\*|[^\s:]+|\[[0-9a-fA-F:]+\]):\d{1,5}$/.test(zmqEndpoint))
    p.problem('kvEventsConfig.zmqEndpoint', 'must be tcp://HOST:PORT, e.g. tcp://*:5557');
  const engineType = text(p, 'kvEventsConfig.engineType', ke?.['engineType'], 'vllm');
  if (engineType !== 'vllm')
    p.problem(
      'kvEventsConfig.engineType',
      `only "vllm" events are decoded here, got ${JSON.stringify(engineType)}`,
    );
  positiveInteger(p, 'kvEventsConfig.concurrency', ke?.['concurrency'], 4);
  const discover = ke?.['discoverPods'];
  if (discover !== undefined && typeof discover !== 'boolean')
    p.problem('kvEventsConfig.discoverPods', 'must be true or false');
  const pd = section(p, 'kvEventsConfig.podDiscoveryConfig', ke?.['podDiscoveryConfig'], [
    'podLabelSelector',
    'podNamespace',
    'socketPort',
    'replaySocketPort',
  ]);
  const socketPort = positiveInteger(
    p,
    'kvEventsConfig.podDiscoveryConfig.socketPort',
    pd?.['socketPort'],
    5557,
  );
  // Read (and type-checked) for llm-d's configs, but the EPP subscribes to every pool endpoint it routes to, one
  // connection each: say so where a config expects them to narrow or tune that.
  const notActedOn: [string, unknown, string][] = [
    [
      'kvEventsConfig.podDiscoveryConfig.podLabelSelector',
      pd?.['podLabelSelector'],
      'every pool endpoint is subscribed to, whatever its labels',
    ],
    [
      'kvEventsConfig.podDiscoveryConfig.podNamespace',
      pd?.['podNamespace'],
      "the pool's endpoints are the pods subscribed to",
    ],
    [
      'kvEventsConfig.podDiscoveryConfig.replaySocketPort',
      pd?.['replaySocketPort'],
      'missed events are not replayed (a publisher whose sequence goes back, a restart, has its blocks cleared)',
    ],
    [
      'kvEventsConfig.concurrency',
      ke?.['concurrency'],
      'events are decoded on the event loop as they arrive',
    ],
    ['kvEventsConfig.tracing', ke?.['tracing'], 'KV events are not traced'],
  ];
  for (const [path, value, why] of notActedOn)
    if (value !== undefined && value !== null) p.warn(path, `accepted, not acted on: ${why}`);
  // llm-d discovers pods by default; with a central socket (publishers connect to it) per-pod connections are only
  // made when asked for explicitly, since they would be dialled on the same port the central socket binds.
  const discoverPods = discover === true || (discover === undefined && zmqEndpoint === undefined);

  const speculativeIndexing = p.boolean('speculativeIndexing', false);
  // Upstream reads it with time.ParseDuration; empty, zero (or, refused here, negative) means its 2 s default.
  const ttlRaw = p.raw('speculativeTTL');
  let speculativeTtlMs = 2000;
  if (ttlRaw !== undefined && ttlRaw !== null && ttlRaw !== '') {
    const ms = durationParameterMs(ttlRaw, 'non-negative');
    if (typeof ms === 'string') p.problem('speculativeTTL', ms);
    else if (ms > 0) speculativeTtlMs = ms;
  }
  return {
    blockSizeTokens,
    hashSeed: tp?.hashSeed || itp?.hashSeed || '',
    maxEntries,
    podCacheSize,
    ignoredMedia,
    topicFilter: text(p, 'kvEventsConfig.topicFilter', ke?.['topicFilter'], 'kv@'),
    zmqEndpoint,
    socketPort: discoverPods ? socketPort : undefined,
    speculativeIndexing,
    speculativeTtlMs,
    // vLLM sends one batch per engine step: its token ids (at most 5 bytes each) are bounded by the step's token
    // budget (`max_num_batched_tokens`, thousands to ~100k), well under 1 MiB; 4 MiB is room for ~800k tokens a step
    // while bounding what one message costs to scan and decode.
    maxMessageBytes: 4 << 20,
    maxBlocks: 4096,
    tokenizersPool: pool,
  };
}

/**
 * llm-d's deprecated all-in-one `precise-prefix-cache-scorer` (upstream still registers it): the precise producer
 * with these options and a prefix-cache-scorer reading its matches, as one plugin under one name. New configs say
 * the same with a `precise-prefix-cache-producer` and a `prefix-cache-scorer` naming it.
 */
export function precisePrefixCacheScorer(
  name: string,
  options: PrecisePrefixCacheOptions,
): PrecisePrefixCacheProducer & Scorer {
  const producer = precisePrefixCacheProducer(name, options);
  const scorer = prefixCacheScorer(name, { ...defaultPrefixCacheParameters, matchInfoProducer: name });
  // The scorer's own hooks have nothing to do when it reads a producer: only its score joins the producer's.
  return Object.assign(producer, { type: 'precise-prefix-cache-scorer', score: scorer.score });
}
