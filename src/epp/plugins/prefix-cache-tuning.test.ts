import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHARS_PER_TOKEN_MIN_TOKENS,
  CharsPerTokenMeter,
  MAX_CHARS_PER_TOKEN,
  tunedCapacityBlocks,
} from './prefix-cache-tuning.js';

test('tuned capacity: KV tokens × chars/token in hash blocks; the fallback without cache_config_info', () => {
  const cases: {
    name: string;
    cache: { blockSize: number; numGpuBlocks: number };
    charsPerToken: number;
    hashBlock: number;
    want: number;
  }[] = [
    {
      name: 'default sim at 6 chars/token',
      cache: { blockSize: 16, numGpuBlocks: 4096 },
      charsPerToken: 6,
      hashBlock: 64,
      want: 6144,
    },
    {
      name: "GIE's assumption: one index block per KV block",
      cache: { blockSize: 16, numGpuBlocks: 4096 },
      charsPerToken: 4,
      hashBlock: 64,
      want: 4096,
    },
    {
      name: 'large GPU',
      cache: { blockSize: 16, numGpuBlocks: 55_477 },
      charsPerToken: 3.5,
      hashBlock: 64,
      want: 48_542,
    },
    {
      name: 'rounds down',
      cache: { blockSize: 16, numGpuBlocks: 10 },
      charsPerToken: 4.5,
      hashBlock: 100,
      want: 7,
    },
    {
      name: 'never below one block',
      cache: { blockSize: 1, numGpuBlocks: 1 },
      charsPerToken: 1,
      hashBlock: 64,
      want: 1,
    },
    {
      name: 'no block size reported',
      cache: { blockSize: 0, numGpuBlocks: 4096 },
      charsPerToken: 4,
      hashBlock: 64,
      want: 31_250,
    },
    {
      name: 'a server claiming an endless cache gets the cap',
      cache: { blockSize: 2 ** 26, numGpuBlocks: 2 ** 26 },
      charsPerToken: 4,
      hashBlock: 64,
      want: 1_000_000,
    },
    {
      name: 'no block count reported',
      cache: { blockSize: 16, numGpuBlocks: 0 },
      charsPerToken: 4,
      hashBlock: 64,
      want: 31_250,
    },
  ];
  for (const c of cases) {
    assert.equal(tunedCapacityBlocks(c.cache, c.charsPerToken, c.hashBlock, 31_250), c.want, c.name);
  }
});

test('chars/token meter: nothing until enough tokens, then routed chars over counted tokens', () => {
  const m = new CharsPerTokenMeter(1000);
  m.observe(5000, 0); // baseline: tokens counted before this EPP saw the server are not ours
  for (let i = 0; i < 10; i++) m.addRouted(600);
  m.observe(5900, 0);
  assert.equal(m.charsPerToken, undefined, 'below the minimum sample');
  m.observe(6000, 0);
  assert.equal(m.charsPerToken, 6);
});

test('chars/token meter: requests still waiting at the server are not counted as tokenized', () => {
  // 20 requests of 600 chars (100 tokens each) routed; the server has prefilled 10 and 10 wait in its queue.
  const m = new CharsPerTokenMeter(1000);
  m.observe(0, 0);
  for (let i = 0; i < 20; i++) m.addRouted(600);
  m.observe(1000, 10);
  assert.equal(m.charsPerToken, 6, 'routed minus waiting × mean prompt');
  // The queue estimate can never go below what has already completed (a lower bound of what was counted).
  const n = new CharsPerTokenMeter(1000);
  n.observe(0, 0);
  for (let i = 0; i < 20; i++) n.addRouted(600);
  for (let i = 0; i < 15; i++) n.addCompleted(600);
  n.observe(1500, 50); // waiting includes someone else's requests: 50 × 600 would exceed all we routed
  assert.equal(n.charsPerToken, 6);
});

test('chars/token meter: restart resets, absurd ratios are clamped, missing counters are ignored', () => {
  const m = new CharsPerTokenMeter(100);
  assert.equal(m.observe(-1, 0), undefined, 'server does not report prompt_tokens_total');
  m.observe(0, 0);
  m.addRouted(400);
  m.observe(100, 0);
  assert.equal(m.charsPerToken, 4);
  assert.equal(m.observe(50, 0), 'reset', 'the counter went backwards: the server restarted');
  assert.equal(m.charsPerToken, undefined, 'measurement starts over');
  m.addRouted(1_000_000);
  m.observe(150, 0);
  assert.equal(m.charsPerToken, MAX_CHARS_PER_TOKEN);
  const idle = new CharsPerTokenMeter(100);
  idle.observe(0, 0);
  idle.observe(10_000, 0);
  assert.equal(idle.charsPerToken, undefined, "tokens from others' traffic only: no information");
  assert.ok(CHARS_PER_TOKEN_MIN_TOKENS >= 1000);
});
