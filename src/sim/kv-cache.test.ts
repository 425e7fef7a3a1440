import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvCache } from './kv-cache.js';

describe('KvCache', () => {
  it('shares a registered prefix and counts each block once', () => {
    const cache = new KvCache(8);
    const hashes = ['h1', 'h2', 'h3'];
    const first = cache.allocate(hashes, 0, 4);
    cache.register(first, hashes);
    assert.equal(cache.cachedPrefixBlocks(hashes), 3);
    assert.equal(cache.cachedPrefixBlocks(['h1', 'other']), 1);
    const second = cache.allocate(hashes, 2, 2);
    assert.deepEqual(second.slice(0, 2), first.slice(0, 2));
    assert.deepEqual(cache.stats(), { totalBlocks: 8, usedBlocks: 6, cachedBlocks: 3 });
  });

  it('keeps released blocks cached until their space is needed', () => {
    const cache = new KvCache(4);
    const blocks = cache.allocate(['a', 'b'], 0, 2);
    cache.register(blocks, ['a', 'b']);
    cache.release(blocks);
    assert.equal(cache.stats().usedBlocks, 0);
    assert.equal(cache.cachedPrefixBlocks(['a', 'b']), 2);
    // Two untouched blocks are taken first; the cached ones go only when nothing else is left.
    cache.allocate([], 0, 2);
    assert.equal(cache.cachedPrefixBlocks(['a', 'b']), 2);
    cache.allocate([], 0, 1);
    assert.equal(cache.cachedPrefixBlocks(['a', 'b']), 1, 'the tail block of the prefix is evicted first');
  });

  it('does not count cached blocks it would reuse as free space', () => {
    const cache = new KvCache(3);
    const blocks = cache.allocate(['a', 'b'], 0, 2);
    cache.register(blocks, ['a', 'b']);
    cache.release(blocks);
    assert.equal(cache.canAllocate(['a', 'b'], 2, 1), true);
    assert.equal(cache.canAllocate(['a', 'b'], 2, 2), false);
    assert.equal(cache.canAllocate([], 0, 3), true);
  });

  it('keeps the first copy when the same prefix is computed twice at once', () => {
    const cache = new KvCache(4);
    const one = cache.allocate(['a'], 0, 1);
    const two = cache.allocate(['a'], 0, 1);
    cache.register(one, ['a']);
    cache.register(two, ['a']);
    cache.release(two);
    cache.release(one);
    assert.equal(cache.stats().cachedBlocks, 1);
    assert.deepEqual(cache.allocate(['a'], 1, 0), one);
  });
});
