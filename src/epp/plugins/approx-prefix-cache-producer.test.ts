import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, schedulingContext } from '../../../test/harness/endpoints.js';
import { loadEndpointPickerConfig, type EndpointPickerConfig } from '../config.js';
import { schedule } from '../scheduler.js';
import type { ApproxPrefixCacheProducer } from './approx-prefix-cache-producer.js';
import { pdProfileHandler } from './pd-profile-handler.js';
import { PREFIX_MATCHES, type PrefixCacheScorer, type PrefixMatches } from './prefix-cache-scorer.js';

const context = (prompt: string) => schedulingContext(prompt);

const HEADER = 'apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n';
const PROFILE = `schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
`;

/** Schedules `prompt` over `endpoints` as the EPP does; returns the matches the profile saw. */
function route(config: EndpointPickerConfig, prompt: string, addresses: string[]): PrefixMatches {
  const ctx = context(prompt);
  assert.ok(
    schedule(
      config.scheduler,
      ctx,
      addresses.map((a) => endpoint(a)),
    ),
  );
  return ctx.state.read<PrefixMatches>(PREFIX_MATCHES)!;
}

test('approx-prefix-cache-producer: its parameters shape the index the scorer reads, even listed after it', () => {
  const config = loadEndpointPickerConfig(`${HEADER}plugins:
- type: prefix-cache-scorer
- type: approx-prefix-cache-producer
  parameters:
    blockSizeTokens: 2
    maxPrefixTokensToMatch: 6
    lruCapacityPerServer: 100
    autoTune: false
${PROFILE}`);
  assert.deepEqual(config.warnings, [], 'acted on, so not reported as dropped');
  const producer = config.plugins.get('approx-prefix-cache-producer') as ApproxPrefixCacheProducer;
  const scorer = config.plugins.get('prefix-cache-scorer') as PrefixCacheScorer;
  assert.equal(scorer.matchInfoProducer, 'approx-prefix-cache-producer', "upstream's default producer");
  // 2 tokens × 4 characters = 8-character blocks; 6 tokens = 3 blocks at most.
  assert.deepEqual(producer.parameters, {
    hashBlockSize: 8,
    maxPrefixBlocksToMatch: 3,
    lruCapacityPerServer: 100,
    autoTune: false,
    averageCharactersPerToken: 4,
  });
  const prompt = 'abcdefgh'.repeat(10);
  const first = route(config, prompt, ['e1']);
  assert.equal(first.totalBlocks, 3, 'capped by maxPrefixTokensToMatch');
  assert.equal(first.blockSize, 8);
  assert.equal(producer.index.size('e1'), 3, 'the producer recorded where the request went');
  assert.equal(scorer.index.size('e1'), 0, "the scorer's own index is not used");
  const scores = scorer.score(
    (() => {
      const ctx = context(prompt);
      producer.produce(ctx, []);
      return ctx;
    })(),
    [endpoint('e1'), endpoint('e2')],
  );
  assert.deepEqual([...scores], [1, 0]);
});

test('approx-prefix-cache-producer: a scorer names one of several by prefixMatchInfoProducerName', () => {
  const config = loadEndpointPickerConfig(`${HEADER}plugins:
- type: approx-prefix-cache-producer
  name: gpu
  parameters: {blockSizeTokens: 1}
- type: approx-prefix-cache-producer
  name: cpu
  parameters: {blockSizeTokens: 4}
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: cpu}
${PROFILE}`);
  route(config, 'x'.repeat(64), ['e1']);
  // Both producers index every request; the scorer reads the cpu one's matches (4 tokens × 4 characters a block).
  assert.equal((config.plugins.get('gpu') as ApproxPrefixCacheProducer).index.size('e1'), 16);
  assert.equal((config.plugins.get('cpu') as ApproxPrefixCacheProducer).index.size('e1'), 4);
  const ctx = context('x'.repeat(32) + 'y'.repeat(32));
  for (const producer of config.scheduler.producers ?? []) producer.produce(ctx, []);
  const scorer = config.plugins.get('prefix-cache-scorer') as PrefixCacheScorer;
  assert.deepEqual(
    [...scorer.score(ctx, [endpoint('e1')])],
    [0.5],
    '2 of 4 cpu blocks (the gpu index says 8 of 16)',
  );
});

test('approx-prefix-cache-producer: the block size is given in one place, the error names both plugins', () => {
  const load =
    (scorer: string, producerName = 'approx-prefix-cache-producer') =>
    () =>
      loadEndpointPickerConfig(`${HEADER}plugins:
- type: prefix-cache-scorer
  parameters: ${scorer}
- type: approx-prefix-cache-producer
  name: ${producerName}
  parameters: {blockSizeTokens: 16}
${PROFILE}`);
  assert.throws(
    load('{hashBlockSize: 32, autoTune: true}'),
    /plugins\[0\]\.parameters\.hashBlockSize: prefix-cache-scorer "prefix-cache-scorer" reads the prefix index of approx-prefix-cache-producer "approx-prefix-cache-producer".*hashBlockSize, autoTune/,
  );
  assert.throws(
    load('{prefixMatchInfoProducerName: mine, blockSizeTokens: 8}', 'mine'),
    /plugins\[0\]\.parameters\.blockSizeTokens:.*"mine"/,
  );
  // A producer under another name is not the default: the scorer keeps its own index and its own parameters.
  const own = load('{hashBlockSize: 32}', 'elsewhere')();
  assert.equal((own.plugins.get('prefix-cache-scorer') as PrefixCacheScorer).matchInfoProducer, undefined);
});

test('approx-prefix-cache-producer parameters: mistakes are reported under its own path', () => {
  assert.throws(
    () =>
      loadEndpointPickerConfig(`${HEADER}plugins:
- type: prefix-cache-scorer
- type: approx-prefix-cache-producer
  parameters:
    blockSizeTokens: 0
    blockSize: 64
    maxPrefixTokensToMatch: -1
    lruCapacityPerServer: 0
    prefixHashSource: metadata
    hashBlockSize: 64
${PROFILE}`),
    (error: Error) => {
      const paths = [...error.message.matchAll(/plugins\[1\]\.parameters\.(\w+)/g)].map((m) => m[1]);
      assert.deepEqual(paths, [
        'blockSizeTokens',
        'blockSizeTokens',
        'maxPrefixTokensToMatch',
        'prefixHashSource',
        'lruCapacityPerServer',
        'hashBlockSize',
      ]);
      assert.match(error.message, /only "body" is supported/);
      assert.match(error.message, /give the block size once/);
      return true;
    },
  );
});

test('audit repros load: approx producer parameters, prefix length weight, disagg-headers-handler', () => {
  // llm-d-router deploy/config/sim-pd-epp-config.yaml's producer.
  const approx = loadEndpointPickerConfig(`${HEADER}plugins:
- type: approx-prefix-cache-producer
  parameters:
    blockSizeTokens: 16
    autoTune: false
    maxPrefixTokensToMatch: 4096
    lruCapacityPerServer: 31250
- type: prefix-cache-scorer
${PROFILE}`);
  assert.deepEqual(approx.warnings, []);
  assert.equal(
    (approx.plugins.get('approx-prefix-cache-producer') as ApproxPrefixCacheProducer).parameters
      .maxPrefixBlocksToMatch,
    256,
    '4096 tokens in 16-token blocks',
  );

  // The example of llm-d-router's prefix scorer README, under both the earlier and the current names.
  for (const [weight, scale] of [
    ['prefixLengthWeight', 'maxModelLen'],
    ['matchLengthWeight', 'matchLengthScaleTokens'],
  ]) {
    const weighted = loadEndpointPickerConfig(`${HEADER}plugins:
- type: prefix-cache-scorer
  parameters:
    ${weight}: 0.5
    ${scale}: 16384
${PROFILE}`);
    assert.ok(weighted.plugins.has('prefix-cache-scorer'));
  }
  assert.throws(
    () =>
      loadEndpointPickerConfig(`${HEADER}plugins:
- type: prefix-cache-scorer
  parameters: {prefixLengthWeight: 1.5, matchLengthWeight: 0.5, maxModelLen: 0}
${PROFILE}`),
    (error: Error) => {
      assert.match(
        error.message,
        /plugins\[0\]\.parameters\.prefixLengthWeight: is the earlier name of matchLengthWeight/,
      );
      assert.match(
        error.message,
        /plugins\[0\]\.parameters\.prefixLengthWeight: must be a number between 0 and 1/,
      );
      assert.match(error.message, /plugins\[0\]\.parameters\.maxModelLen: must be a number between 1/);
      return true;
    },
  );

  // llm-d-inference-scheduler's name for prefill-header-handler.
  const pd = loadEndpointPickerConfig(`${HEADER}plugins:
- type: disagg-headers-handler
- type: pd-profile-handler
- type: prefill-filter
- type: decode-filter
- type: queue-scorer
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}, {pluginRef: queue-scorer}]
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: queue-scorer}]
`);
  assert.equal(pd.plugins.get('disagg-headers-handler')?.type, 'prefill-header-handler');
});

test("pd-profile-handler counts a precise producer's cached blocks in tokens, its threshold in characters", () => {
  const handler = pdProfileHandler('pd', {
    threshold: 100,
    hashBlockSize: 64,
    decodeProfile: 'decode',
    prefillProfile: 'prefill',
  });
  const decode = endpoint('d');
  const pick = (blockUnit: 'characters' | 'tokens') => {
    const ctx = context('z'.repeat(250));
    // 3 blocks of 16: 48 characters (100+ uncached: prefill) or 48 tokens ≈ 192 characters (cached enough).
    ctx.state.write(PREFIX_MATCHES, {
      totalBlocks: 4,
      matched: new Map([['d', 3]]),
      blockSize: 16,
      blockUnit,
      blockTokens: blockUnit === 'tokens' ? 16 : 4,
    });
    const profiles = new Map([
      ['decode', {}],
      ['prefill', {}],
    ]) as never;
    return handler.pickProfiles(
      ctx,
      profiles,
      new Map([['decode', { profile: 'decode', targets: [decode] }]]),
    );
  };
  assert.deepEqual(pick('characters'), ['prefill']);
  assert.deepEqual(pick('tokens'), []);
});
