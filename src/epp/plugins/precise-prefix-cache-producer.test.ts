import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import { decodeKvEventBatch, KvEventDecodeError } from '../kv-events/index.js';
import { loadEndpointPickerConfig } from '../config.js';
import { Parameters } from './parameters.js';
import { withKvEventsEndpoint } from '../../local/kv-events-relay.js';
import { CycleState } from '../types.js';
import {
  precisePrefixCacheOptions,
  precisePrefixCacheProducer,
  type precisePrefixCacheScorer,
} from './precise-prefix-cache-producer.js';
import { prefixMatchKey } from './prefix-cache-scorer.js';

const POD = '127.0.0.1:8001';
const options = (params: Record<string, unknown> = {}) => {
  const problems: { path: string; message: string }[] = [];
  const o = precisePrefixCacheOptions(new Parameters(params, 'plugins[0].parameters', problems));
  return { options: o, problems };
};

function producer(maxEntries = 1000) {
  const { options: o } = options({
    tokenProcessorConfig: { blockSize: 4 },
    indexerConfig: { kvBlockIndexConfig: { inMemoryConfig: { size: maxEntries } } },
  });
  return precisePrefixCacheProducer('precise-prefix-cache-producer', o);
}

/** The plugin as the subscriber drives it, with a pool of `pods`. */
async function started(pods: string[], maxEntries?: number) {
  const p = producer(maxEntries);
  const endpoints = pods.map((address) => ({ address }));
  // No socket: neither a central endpoint nor per-endpoint discovery with the default options below.
  (p.options as { socketPort: number | undefined }).socketPort = undefined;
  await p.start({
    endpoints: () => endpoints as never,
    onEndpointsChange: () => undefined,
    onRemove: () => undefined,
    log: { warn: () => undefined, info: () => undefined, debug: () => undefined },
  });
  return p;
}

const message = (payload: Uint8Array, pod = POD, sequence = 1n) => ({
  source: undefined,
  topic: `kv@${pod}@m`,
  sequence,
  payload,
});

describe('KV events, hostile input', () => {
  it('rejects payloads that are not a batch with a decode error, and skips unknown or malformed events', () => {
    for (const bad of [
      new Uint8Array([0xc1]),
      new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]),
      encode('not a batch'),
      encode([1, 'events?']),
    ])
      assert.throws(() => decodeKvEventBatch(bad), KvEventDecodeError);
    const decoded = decodeKvEventBatch(
      encode([
        1,
        [['FutureEvent', 1], { type: 7 }, ['BlockStored', 'x', null, [1], 4], ['BlockRemoved', [1]], 42],
        0,
      ]),
    );
    assert.equal(decoded.events.length, 1);
    assert.equal(decoded.skipped.length, 4);
  });

  it('refuses a batch above the event limit before looking at its events', () => {
    const huge = encode([1, Array.from({ length: 70_000 }, () => ['AllBlocksCleared']), 0]);
    assert.throws(() => decodeKvEventBatch(huge), /70000 events in one batch/);
  });

  it('stays bounded under a flood of topics, pods and blocks', async () => {
    const p = await started([POD], 64);
    // Events naming pods outside the pool cost nothing.
    for (let i = 0; i < 5000; i++)
      p.handle(
        message(encode([1, [['BlockStored', [i], null, [1, 2, 3, 4], 4]], 0]), `10.9.${i >> 8}.${i & 255}:1`),
      );
    assert.equal(p.stats.unknownPods, 5000);
    assert.equal(p.index.size, 0);
    // A pool member flooding distinct blocks stays within the configured cap.
    for (let i = 0; i < 2000; i++)
      p.handle(message(encode([1, [['BlockStored', [i], null, [i, i, i, i], 4]], 0]), POD, BigInt(i + 1)));
    assert.equal(p.index.size, 64);
    assert.ok(p.index.engineMappings <= 64);
    // Garbage from a member is counted and dropped; the index stays as it was.
    p.handle(message(new Uint8Array([0x92, 0xc1, 0xc1]), POD, 5000n));
    assert.equal(p.stats.undecodable, 1);
    assert.equal(p.index.size, 64);
    await p.stop();
  });

  it("takes an IPv6 pod's events whether its topic brackets the address or not, with or without the port", async () => {
    const v6 = '[fd00::5]:8000';
    const p = await started([v6, '[fd00::6]:8000']);
    const stored = (pod: string, block: number, sequence: bigint) =>
      p.handle(message(encode([1, [['BlockStored', [block], null, [block, 1, 2, 3], 4]], 0]), pod, sequence));
    stored('fd00::5:8000', 1, 1n);
    stored('[fd00::5]:8000', 2, 2n);
    stored('fd00::5', 3, 3n);
    stored('[fd00::5]', 4, 4n);
    assert.equal(p.index.sizeOf(v6), 4);
    assert.equal(p.stats.unknownPods, 0);
    await p.stop();
  });

  it('forgets an endpoint whose publisher restarted (sequence going back)', async () => {
    const p = await started([POD]);
    p.handle(message(encode([1, [['BlockStored', [1], null, [1, 2, 3, 4], 4]], 0]), POD, 10n));
    assert.equal(p.index.sizeOf(POD), 1);
    p.handle(message(encode([1, [], 0]), POD, 1n));
    assert.equal(p.index.sizeOf(POD), 0);
    assert.equal(p.stats.restarts, 1);
    await p.stop();
  });
});

describe('precise-prefix-cache-producer parameters', () => {
  it('has llm-d-router defaults: block size 16, topic kv@, pod discovery on port 5557', () => {
    const { options: o, problems } = options();
    assert.deepEqual(problems, []);
    assert.equal(o.blockSizeTokens, 16);
    assert.equal(o.topicFilter, 'kv@');
    assert.equal(o.socketPort, 5557);
    assert.equal(o.zmqEndpoint, undefined);
  });

  it('leaves a tier weighted 0 out, and says a weight between 0 and 1 counts as 1 here', () => {
    const problems: { path: string; message: string }[] = [];
    const warnings: { path: string; message: string }[] = [];
    const o = precisePrefixCacheOptions(
      new Parameters(
        {
          indexerConfig: {
            kvCacheBackendConfigs: [
              { name: 'GPU', weight: 1 },
              { name: 'cpu', weight: 0.8 },
              { name: 'disk', weight: 0 },
            ],
          },
        },
        'plugins[0].parameters',
        problems,
        warnings,
      ),
    );
    assert.deepEqual(problems, []);
    assert.deepEqual([...o.ignoredMedia], ['disk']);
    assert.deepEqual(
      warnings.map((w) => w.path),
      ['plugins[0].parameters.indexerConfig.kvCacheBackendConfigs[1].weight'],
    );
    assert.match(
      warnings[0]!.message,
      /accepted as 1: a block on tier "cpu" counts fully here.*upstream counts it 0.8/,
    );
  });

  it("says which of llm-d's pod-discovery and event settings it reads but does not act on", () => {
    const warnings: { path: string; message: string }[] = [];
    precisePrefixCacheOptions(
      new Parameters(
        {
          kvEventsConfig: {
            concurrency: 8,
            podDiscoveryConfig: { podLabelSelector: 'llm-d.ai/inference-serving=true', socketPort: 5557 },
          },
        },
        'plugins[0].parameters',
        [],
        warnings,
      ),
    );
    assert.deepEqual(warnings.map((w) => w.path).sort(), [
      'plugins[0].parameters.kvEventsConfig.concurrency',
      'plugins[0].parameters.kvEventsConfig.podDiscoveryConfig.podLabelSelector',
    ]);
    assert.ok(warnings.every((w) => w.message.startsWith('accepted, not acted on: ')));
  });

  it('names the field of every mistake', () => {
    const { problems } = options({
      tokenProcessorConfig: { blockSize: -1, typo: 1 },
      indexerConfig: { kvBlockIndexConfig: { redisConfig: { address: 'x' } } },
      kvEventsConfig: { zmqEndpoint: 'udp://x', engineType: 'sglang' },
    });
    const paths = problems.map((p) => p.path).sort();
    assert.deepEqual(paths, [
      'plugins[0].parameters.indexerConfig.kvBlockIndexConfig',
      'plugins[0].parameters.kvEventsConfig.engineType',
      'plugins[0].parameters.kvEventsConfig.zmqEndpoint',
      'plugins[0].parameters.tokenProcessorConfig.blockSize',
      'plugins[0].parameters.tokenProcessorConfig.typo',
    ]);
  });

  it("loads llm-d-router's sample precise config unchanged", () => {
    // deploy/config/epp-precise-prefix-cache-config.yaml of llm-d-router.
    const config = loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
  - type: token-producer
    parameters:
      backend: vllm
      modelName: hf-repo/model-name
      vllm:
        url: http://localhost:8000
  - type: endpoint-notification-source
  - type: metrics-data-source
  - type: core-metrics-extractor
  - type: single-profile-handler
  - type: decode-filter
  - type: precise-prefix-cache-producer
    parameters:
      tokenProcessorConfig:
        blockSize: 64
      indexerConfig:
        kvBlockIndexConfig:
          enableMetrics: true
  - type: prefix-cache-scorer
    parameters:
      prefixMatchInfoProducerName: precise-prefix-cache-producer
  - type: kv-cache-utilization-scorer
  - type: queue-scorer
  - type: max-score-picker
dataLayer:
  sources:
    - pluginRef: metrics-data-source
      extractors:
        - pluginRef: core-metrics-extractor
    - pluginRef: endpoint-notification-source
      extractors:
        - pluginRef: precise-prefix-cache-producer
schedulingProfiles:
  - name: default
    plugins:
      - pluginRef: decode-filter
      - pluginRef: prefix-cache-scorer
        weight: 2.0
      - pluginRef: kv-cache-utilization-scorer
        weight: 1.0
      - pluginRef: queue-scorer
        weight: 1.0
      - pluginRef: max-score-picker
`);
    assert.equal(config.preparers.length, 1);
    assert.equal(config.services.length, 1);
    assert.equal(config.scheduler.producers?.length, 1);
  });

  it('refuses a prefixMatchInfoProducerName that names no plugin', () => {
    assert.throws(
      () =>
        loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
  - type: prefix-cache-scorer
    parameters: { prefixMatchInfoProducerName: nowhere }
  - type: max-score-picker
`),
      /no plugin named "nowhere"/,
    );
  });
});

describe('precise-prefix-cache-producer: indexerConfig.tokenProcessorConfig', () => {
  it('gives the block size when the top level does not (llm-d-router sim sample: 5 tokens)', () => {
    const { options: o, problems } = options({
      indexerConfig: { tokenProcessorConfig: { blockSizeTokens: 5 } },
    });
    assert.deepEqual(problems, []);
    assert.equal(o.blockSizeTokens, 5);
    const p = precisePrefixCacheProducer('pp', o);
    assert.equal(
      p.index.keysOf(
        'm',
        Array.from({ length: 12 }, (_, i) => i),
        100,
      ).length,
      2,
      '12 tokens = 2 blocks',
    );
  });

  it('may repeat the top-level block size, not contradict it', () => {
    const same = options({
      tokenProcessorConfig: { blockSize: 64, hashSeed: 's' },
      indexerConfig: { tokenProcessorConfig: { blockSizeTokens: 64, hashSeed: 's' } },
    });
    assert.deepEqual(same.problems, []);
    assert.equal(same.options.blockSizeTokens, 64);
    assert.equal(same.options.hashSeed, 's');
    const { problems } = options({
      tokenProcessorConfig: { blockSizeTokens: 16, hashSeed: 'a' },
      indexerConfig: { tokenProcessorConfig: { blockSizeTokens: 5, hashSeed: 'b', typo: 1 } },
    });
    assert.deepEqual(problems.map((p) => p.path).sort(), [
      'plugins[0].parameters.indexerConfig.tokenProcessorConfig',
      'plugins[0].parameters.indexerConfig.tokenProcessorConfig.hashSeed',
      'plugins[0].parameters.indexerConfig.tokenProcessorConfig.typo',
    ]);
    assert.match(problems.find((p) => p.path.endsWith('tokenProcessorConfig'))!.message, /5 disagrees.*16/);
  });

  it('refuses kvBlockIndexConfig.maxPrefixTokensToMatch, which upstream has not either, saying where it belongs', () => {
    const { problems } = options({ indexerConfig: { kvBlockIndexConfig: { maxPrefixTokensToMatch: 1280 } } });
    assert.equal(problems.length, 1);
    assert.equal(
      problems[0]!.path,
      'plugins[0].parameters.indexerConfig.kvBlockIndexConfig.maxPrefixTokensToMatch',
    );
    assert.match(problems[0]!.message, /approx-prefix-cache-producer/);
  });

  it('loads the audit repro: the block size under indexerConfig with a scorer naming the producer', () => {
    const config = loadEndpointPickerConfig(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: precise-prefix-cache-producer
  parameters:
    indexerConfig:
      tokenProcessorConfig:
        blockSizeTokens: 5
- type: prefix-cache-scorer
  parameters:
    prefixMatchInfoProducerName: precise-prefix-cache-producer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
`);
    const producer = config.plugins.get('precise-prefix-cache-producer') as unknown as {
      options: { blockSizeTokens: number };
    };
    assert.equal(producer.options.blockSizeTokens, 5);
  });
});

describe("llm-d's deprecated all-in-one precise-prefix-cache-scorer", () => {
  it('loads as upstream samples write it, and scores from the matches of its own producer', () => {
    const config = loadEndpointPickerConfig(`apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: precise-prefix-cache-scorer
  parameters: {tokenProcessorConfig: {blockSize: 4}}
- type: decode-filter
- type: max-score-picker
- type: single-profile-handler
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
  - {pluginRef: precise-prefix-cache-scorer, weight: 2}
`);
    const plugin = config.plugins.get('precise-prefix-cache-scorer') as ReturnType<
      typeof precisePrefixCacheScorer
    >;
    assert.equal(plugin.type, 'precise-prefix-cache-scorer');
    assert.equal(plugin.options.blockSizeTokens, 4);
    // One plugin in every role: the producer (before the profiles), the KV-event service, and the profile's scorer.
    assert.ok(config.scheduler.producers!.includes(plugin));
    assert.ok(config.services.includes(plugin));
    const scorer = config.scheduler.profiles.get('default')!.scorers[0]!;
    assert.equal(scorer.weight, 2);
    const state = new CycleState();
    state.write(prefixMatchKey('precise-prefix-cache-scorer'), {
      totalBlocks: 4,
      matched: new Map([['10.0.0.1:8000', 3]]),
      blockSize: 4,
      blockUnit: 'tokens',
      blockTokens: 4,
    });
    const scores = scorer.scorer.score(
      { state } as never,
      [{ address: '10.0.0.1:8000' }, { address: '10.0.0.2:8000' }] as never,
    );
    assert.deepEqual([...scores], [0.75, 0]);
    // It subscribes to KV events like the producer, so a local stack's replicas get their own events socket.
    const text = `plugins:\n- type: precise-prefix-cache-scorer\n  parameters: {kvEventsConfig: {zmqEndpoint: "tcp://*:5557"}}\n`;
    assert.match(
      withKvEventsEndpoint(text, 'tcp://127.0.0.1:6000')!,
      /zmqEndpoint: "tcp:\/\/127\.0\.0\.1:6000"/,
    );
  });
});

describe('KV events, repeated clears', () => {
  /** Calls of the index's clearPod while `fn` runs. */
  function clearsDuring(p: { index: { clearPod(pod: string): void } }, fn: () => void): number {
    let calls = 0;
    const original = p.index.clearPod.bind(p.index);
    p.index.clearPod = (pod: string) => {
      calls++;
      original(pod);
    };
    fn();
    return calls;
  }

  it('clears a pod once for a batch of 65,536 AllBlocksCleared, and again only after something was stored', async () => {
    const p = await started([POD]);
    p.handle(message(encode([1, [['BlockStored', [1], null, [1, 2, 3, 4], 4]], 0]), POD, 10n));
    const clears = Array.from({ length: 65_536 }, () => ['AllBlocksCleared']);
    assert.equal(
      clearsDuring(p, () => p.handle(message(encode([1, clears, 0]), POD, 11n))),
      1,
    );
    assert.equal(p.stats.cleared, 65_536);
    assert.equal(p.index.sizeOf(POD), 0);
    const stored = ['BlockStored', [2], null, [5, 6, 7, 8], 4];
    const calls = clearsDuring(p, () =>
      p.handle(
        message(
          encode([1, [['AllBlocksCleared'], stored, ['AllBlocksCleared'], ['AllBlocksCleared']], 0]),
          POD,
          12n,
        ),
      ),
    );
    assert.equal(calls, 2);
    assert.equal(p.index.sizeOf(POD), 0);
    await p.stop();
  });

  it('counts a sequence reset as the batch clear: AllBlocksCleared right after it clears nothing more', async () => {
    const p = await started([POD]);
    p.handle(message(encode([1, [['BlockStored', [1], null, [1, 2, 3, 4], 4]], 0]), POD, 10n));
    const calls = clearsDuring(p, () =>
      p.handle(message(encode([1, [['AllBlocksCleared'], ['AllBlocksCleared']], 0]), POD, 1n)),
    );
    assert.equal(calls, 1);
    assert.equal(p.stats.restarts, 1);
    assert.equal(p.index.sizeOf(POD), 0);
    await p.stop();
  });
});
