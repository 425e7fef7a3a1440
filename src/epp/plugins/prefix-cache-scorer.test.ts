import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, routedTo, schedulingContext } from '../../../test/harness/endpoints.js';
import type { Endpoint } from '../types.js';
import { PrefixIndex, defaultPrefixCacheParameters, prefixCacheScorer } from './prefix-cache-scorer.js';

const context = (prompt: string) => schedulingContext(prompt);

test('prefix index: each endpoint has its own capacity', () => {
  const index = new PrefixIndex(4);
  index.setCapacity('small', 2);
  index.add('small', [1, 2, 3]);
  index.add('large', [1, 2, 3]);
  assert.equal(index.size('small'), 2);
  assert.equal(index.size('large'), 3);
  assert.equal(index.capacity('small'), 2);
  assert.equal(index.capacity('large'), 4, 'the default until told otherwise');
  assert.equal(index.capacity('unknown'), 4);
  assert.deepEqual([...index.match([1, 2, 3])], [['large', 3]], 'small evicted its oldest block, 1');
});

test('prefix index: a capacity drop evicts the oldest blocks at once, a rise keeps everything', () => {
  const index = new PrefixIndex(10);
  index.add('e', [1, 2, 3, 4, 5, 6]);
  index.add('f', [1, 2]);
  index.setCapacity('e', 3);
  assert.equal(index.size('e'), 3);
  assert.deepEqual([...index.match([4, 5, 6])], [['e', 3]]);
  assert.deepEqual([...index.match([1, 2])], [['f', 2]], 'another endpoint keeps the shared blocks');
  index.setCapacity('e', 100);
  index.add('e', [7, 8, 9, 10, 11, 12, 13]);
  assert.equal(index.size('e'), 10);
  index.setCapacity('e', 0.4);
  assert.equal(index.capacity('e'), 1, 'at least one block');
  assert.deepEqual([...index.match([13])], [['e', 1]], 'the most recent block stays');
  index.remove('e');
  assert.equal(index.capacity('e'), 10, 'a removed endpoint forgets its capacity too');
});

test('autoTune: LRU sized from cache_config_info and the measured chars/token; fixed without the metric', () => {
  const scorer = prefixCacheScorer('p', {
    ...defaultPrefixCacheParameters,
    hashBlockSize: 8,
    autoTune: true,
  });
  assert.ok(scorer.postResponse, 'autoTune counts completed prompts');
  const a = endpoint('a', { blockSize: 16, numGpuBlocks: 100, promptTokensTotal: 0 });
  const b = endpoint('b', { blockSize: 0, numGpuBlocks: 0 });
  const prompt = 'x'.repeat(6000);
  const send = (target: Endpoint): void => {
    const ctx = context(prompt);
    scorer.score(ctx, [a, b]);
    scorer.preRequest(ctx, routedTo(target));
  };
  send(a);
  // 1600 tokens of cache × 4 chars/token (nothing measured yet) / 8 chars per block.
  assert.equal(scorer.index.capacity('a'), 800);
  assert.equal(scorer.charsPerToken('a'), 4);
  send(b);
  assert.equal(scorer.index.capacity('b'), defaultPrefixCacheParameters.lruCapacityPerServer);
  // 31 prompts of 6000 chars routed, 11 still waiting at the server, which counted the other 20 as 20,000 tokens.
  for (let i = 0; i < 30; i++) send(a);
  a.metrics = { ...a.metrics, promptTokensTotal: 20_000, waitingQueueSize: 11 };
  send(a);
  assert.equal(scorer.charsPerToken('a'), 6);
  assert.equal(scorer.index.capacity('a'), 1200);
  assert.equal(scorer.charsPerToken('b'), 6, 'an endpoint without a measurement of its own takes the pool’s');
});

test('autoTune: a restarted server (its token counter went backwards) is forgotten', () => {
  const scorer = prefixCacheScorer('p', {
    ...defaultPrefixCacheParameters,
    hashBlockSize: 8,
    autoTune: true,
  });
  const a = endpoint('a', { blockSize: 16, numGpuBlocks: 100, promptTokensTotal: 50_000 });
  const ctx = context('y'.repeat(80));
  scorer.score(ctx, [a]);
  scorer.preRequest(ctx, routedTo(a));
  assert.equal(scorer.index.size('a'), 10);
  a.metrics = { ...a.metrics, promptTokensTotal: 10 };
  const next = context('z'.repeat(16));
  scorer.score(next, [a]);
  scorer.preRequest(next, routedTo(a));
  assert.equal(scorer.index.size('a'), 2, 'only the blocks sent since the restart');
});

test('without autoTune the capacity stays fixed and no response hook is installed', () => {
  const scorer = prefixCacheScorer('p', { ...defaultPrefixCacheParameters, lruCapacityPerServer: 5 });
  assert.equal(scorer.postResponse, undefined);
  const a = endpoint('a', { blockSize: 16, numGpuBlocks: 100, promptTokensTotal: 0 });
  const ctx = context('q'.repeat(64 * 8));
  scorer.score(ctx, [a]);
  scorer.preRequest(ctx, routedTo(a));
  assert.equal(scorer.index.capacity('a'), 5);
  assert.equal(scorer.index.size('a'), 5);
  assert.equal(scorer.charsPerToken('a'), undefined);
});

test('prefix index: blocks shared by several endpoints stay matched for each until each evicts them', () => {
  const index = new PrefixIndex(3);
  for (const e of ['a', 'b', 'c']) index.add(e, [1, 2]);
  index.remove('b');
  assert.deepEqual([...index.match([1, 2])].sort(), [
    ['a', 2],
    ['c', 2],
  ]);
  index.add('a', [5, 6]); // a evicts 1 and 2; c still holds them
  assert.deepEqual([...index.match([1, 2])], [['c', 2]]);
  index.add('a', [1]);
  assert.deepEqual([...index.match([1, 2])].sort(), [
    ['a', 1],
    ['c', 2],
  ]);
  index.remove('c');
  index.remove('a');
  assert.deepEqual([...index.match([1])], []);
});

test('prefix index: under steady churn every endpoint stays within capacity and keeps its newest blocks', () => {
  const capacity = 50;
  const index = new PrefixIndex(capacity);
  const endpoints = ['a', 'b', 'c'];
  const recent = new Map<string, number[]>(endpoints.map((e) => [e, []]));
  let x = 7;
  for (let i = 0; i < 20_000; i++) {
    x = (x * 48271) % 2147483647;
    const e = endpoints[i % 3]!;
    // Hashes overlap between endpoints (the same prefixes go to several) and repeat (refreshes).
    const h = x % 400;
    index.add(e, [h]);
    const list = recent.get(e)!;
    list.push(h);
    if (list.length > capacity / 2) list.shift();
    if (i % 997 === 0) index.setCapacity(e, i % 2 === 0 ? capacity : capacity * 2);
  }
  for (const e of endpoints) {
    assert.ok(index.size(e) <= index.capacity(e), `${e}: ${index.size(e)} > ${index.capacity(e)}`);
    for (const h of recent.get(e)!) assert.ok(index.match([h]).has(e), `${e} lost its recent block ${h}`);
  }
});

test('matchLengthWeight: 0 scores the matched fraction; w > 0 blends in (matched tokens / scale)², in tokens', () => {
  const [a, b] = [endpoint('a'), endpoint('b')];
  // 64-character blocks at 4 characters per token = 16 tokens a block; a holds 5 of the 10 blocks, b none.
  const scored = (matchLengthWeight: number): number[] => {
    const scorer = prefixCacheScorer('p', {
      ...defaultPrefixCacheParameters,
      matchLengthWeight,
      matchLengthScaleTokens: 160,
    });
    const first = context('s'.repeat(64 * 5));
    scorer.score(first, [a, b]);
    scorer.preRequest(first, routedTo(a));
    return [...scorer.score(context('s'.repeat(64 * 5) + 't'.repeat(64 * 5)), [a, b])];
  };
  assert.deepEqual(scored(0), [0.5, 0], 'the fraction of the prompt, as before');
  // 5 blocks × 16 tokens = 80 of 160 → 0.5² = 0.25; 0.5 × 0.25 + 0.5 × 0.5.
  assert.deepEqual(scored(0.5), [0.375, 0]);
  assert.deepEqual(scored(1), [0.25, 0]);
});

test("matchLengthWeight on a precise producer's matches counts its blocks as tokens", () => {
  const scorer = prefixCacheScorer('p', {
    ...defaultPrefixCacheParameters,
    matchInfoProducer: 'precise',
    matchLengthWeight: 1,
    matchLengthScaleTokens: 64,
  });
  const ctx = context('x');
  ctx.state.write('prefix-match-info/precise', {
    totalBlocks: 8,
    matched: new Map([
      ['a', 2],
      ['b', 8],
    ]),
    blockSize: 16,
    blockUnit: 'tokens',
    blockTokens: 16,
  });
  // a: 32 of 64 tokens → 0.25; b: 128 tokens, capped at 1.
  assert.deepEqual([...scorer.score(ctx, [endpoint('a'), endpoint('b'), endpoint('c')])], [0.25, 1, 0]);
});
