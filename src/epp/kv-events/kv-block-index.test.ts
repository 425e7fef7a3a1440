import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import { decodeKvEventBatch, type BlockRemoved, type BlockStored } from './events.js';
import { KvBlockIndex } from './kv-block-index.js';

const POD_A = '10.0.0.1:8000';
const POD_B = '10.0.0.2:8000';
const MODEL = 'llama';

/** Tokens 0..n-1 shifted by `base`, so prompts differ from the start. */
const tokens = (n: number, base = 0): number[] => Array.from({ length: n }, (_, i) => base + i);

type Encoding = 'array' | 'map';

/** vLLM's BlockStored in either encoding (positional: trailing defaults omitted, as msgspec writes it). */
function storedEvent(
  encoding: Encoding,
  hashes: (number | bigint)[],
  parent: number | bigint | null,
  ids: number[],
  extra: { loraName?: string; medium?: string } = {},
): unknown {
  if (encoding === 'map')
    return {
      type: 'BlockStored',
      block_hashes: hashes,
      parent_block_hash: parent,
      token_ids: ids,
      block_size: 4,
      ...(extra.medium ? { medium: extra.medium } : {}),
      ...(extra.loraName ? { lora_name: extra.loraName, lora_id: 1 } : {}),
    };
  const positional: unknown[] = ['BlockStored', hashes, parent, ids, 4];
  if (extra.loraName || extra.medium) positional.push(extra.loraName ? 1 : null, extra.medium ?? null);
  if (extra.loraName) positional.push(extra.loraName);
  return positional;
}

function removedEvent(encoding: Encoding, hashes: (number | bigint)[]): unknown {
  return encoding === 'map' ? { type: 'BlockRemoved', block_hashes: hashes } : ['BlockRemoved', hashes];
}

/** A whole ZMQ payload: `[ts, events, dp_rank]`. */
const batch = (...events: unknown[]): Uint8Array => encode([1733330000.5, events, 0], { useBigInt64: true });

function apply(index: KvBlockIndex, pod: string, payload: Uint8Array): void {
  for (const event of decodeKvEventBatch(payload).events) {
    if (event.type === 'BlockStored') index.stored(pod, MODEL, event);
    else if (event.type === 'BlockRemoved') index.removed(pod, event);
    else index.clearPod(pod);
  }
}

const newIndex = (maxEntries = 1000, podCacheSize = 10) =>
  new KvBlockIndex({ blockSize: 4, hashSeed: '', maxEntries, podCacheSize });

for (const encoding of ['array', 'map'] as const) {
  describe(`KV block index from vLLM events (${encoding} encoding)`, () => {
    it('matches the longest stored prefix, chaining a later event from its parent hash', () => {
      const index = newIndex();
      const prompt = tokens(16);
      // 64-bit hashes as vLLM sends them (above 2^53: must survive decoding exactly).
      const h = [2n ** 63n + 1n, 2n ** 63n + 2n, 2n ** 63n + 3n];
      apply(index, POD_A, batch(storedEvent(encoding, [h[0]!, h[1]!], null, prompt.slice(0, 8))));
      apply(index, POD_A, batch(storedEvent(encoding, [h[2]!], h[1]!, prompt.slice(8, 12))));
      const keys = index.keysOf(MODEL, prompt);
      assert.equal(keys.length, 4);
      assert.deepEqual(index.match(keys), new Map([[POD_A, 3]]));
      // Another endpoint holds the first block only.
      apply(index, POD_B, batch(storedEvent(encoding, [7], null, prompt.slice(0, 4))));
      assert.deepEqual(
        index.match(keys),
        new Map([
          [POD_B, 1],
          [POD_A, 3],
        ]),
      );
    });

    it('follows BlockRemoved and AllBlocksCleared', () => {
      const index = newIndex();
      const prompt = tokens(12);
      apply(index, POD_A, batch(storedEvent(encoding, [1, 2, 3], null, prompt)));
      apply(index, POD_B, batch(storedEvent(encoding, [1, 2, 3], null, prompt)));
      const keys = index.keysOf(MODEL, prompt);
      // The middle block leaves A: A's prefix ends before it.
      apply(index, POD_A, batch(removedEvent(encoding, [2])));
      assert.deepEqual(index.match(keys).get(POD_A), 1);
      assert.deepEqual(index.match(keys).get(POD_B), 3);
      apply(index, POD_B, batch(encoding === 'map' ? { type: 'AllBlocksCleared' } : ['AllBlocksCleared']));
      assert.equal(index.match(keys).has(POD_B), false);
      assert.equal(index.sizeOf(POD_B), 0);
      // A removal names engine hashes of its own endpoint only.
      apply(index, POD_B, batch(removedEvent(encoding, [1])));
      assert.equal(index.match(keys).get(POD_A), 1);
    });

    it('keeps LoRA adapters apart from the base model and from each other', () => {
      const index = newIndex();
      const prompt = tokens(8);
      apply(index, POD_A, batch(storedEvent(encoding, [1, 2], null, prompt, { loraName: 'sql-adapter' })));
      assert.equal(index.match(index.keysOf(MODEL, prompt)).size, 0);
      assert.equal(index.match(index.keysOf('other-adapter', prompt)).size, 0);
      assert.deepEqual(index.match(index.keysOf('sql-adapter', prompt)), new Map([[POD_A, 2]]));
    });
  });
}

describe('KV block index bounds and evictions', () => {
  it('holds at most maxEntries (block, endpoint) entries, evicting the least recently used blocks', () => {
    const index = newIndex(8);
    const first = tokens(16, 0);
    const second = tokens(16, 1000);
    apply(index, POD_A, batch(storedEvent('array', [1, 2, 3, 4], null, first)));
    apply(index, POD_B, batch(storedEvent('array', [5, 6, 7, 8], null, second)));
    assert.equal(index.size, 8);
    // Hit the first prompt: its blocks become the most recent.
    assert.equal(index.match(index.keysOf(MODEL, first)).get(POD_A), 4);
    apply(index, POD_B, batch(storedEvent('array', [9, 10], null, tokens(8, 5000))));
    assert.equal(index.size, 8);
    // The least recently used blocks (the second prompt's start) went first.
    assert.equal(index.match(index.keysOf(MODEL, second)).size, 0);
    assert.equal(index.match(index.keysOf(MODEL, first)).get(POD_A), 4);
    assert.ok(index.engineMappings <= 8);
  });

  it('remembers at most podCacheSize endpoints per block', () => {
    const index = newIndex(1000, 2);
    const prompt = tokens(4);
    for (const [i, pod] of ['a:1', 'b:1', 'c:1'].entries())
      apply(index, pod, batch(storedEvent('array', [i + 1], null, prompt)));
    assert.deepEqual([...index.match(index.keysOf(MODEL, prompt)).keys()].sort(), ['b:1', 'c:1']);
    assert.equal(index.size, 2);
  });

  it('maps engine blocks larger than its own (one engine hash over several keys)', () => {
    // The server's block is 8 tokens, the index's 4: one removal takes both keys.
    const index = newIndex();
    const prompt = tokens(16);
    const stored: BlockStored = {
      type: 'BlockStored',
      blockHashes: ['e1', 'e2'],
      parentHash: undefined,
      tokenIds: prompt,
      blockSize: 8,
      loraId: undefined,
      medium: undefined,
      loraName: undefined,
      groupIdx: undefined,
      kvCacheSpecKind: undefined,
    };
    index.stored(POD_A, MODEL, stored);
    const keys = index.keysOf(MODEL, prompt);
    assert.equal(index.match(keys).get(POD_A), 4);
    const removed: BlockRemoved = {
      type: 'BlockRemoved',
      blockHashes: ['e2'],
      medium: undefined,
      groupIdx: undefined,
    };
    assert.equal(index.removed(POD_A, removed), 2);
    assert.equal(index.match(keys).get(POD_A), 2);
  });

  it('skips a block whose parent it never saw, and media weighted 0', () => {
    const index = new KvBlockIndex({
      blockSize: 4,
      hashSeed: '',
      maxEntries: 100,
      podCacheSize: 10,
      ignoredMedia: new Set(['cpu']),
    });
    const [orphan] = decodeKvEventBatch(batch(storedEvent('array', [2], 99, tokens(4)))).events;
    assert.equal(index.stored(POD_A, MODEL, orphan as BlockStored), 'orphan');
    const [cpu] = decodeKvEventBatch(
      batch(storedEvent('map', [1], null, tokens(4), { medium: 'CPU' })),
    ).events;
    assert.equal(index.stored(POD_A, MODEL, cpu as BlockStored), 'ignored');
    assert.equal(index.size, 0);
  });

  it('counts speculative entries until they expire', () => {
    const index = newIndex();
    const keys = index.keysOf(MODEL, tokens(8));
    index.speculate(POD_A, keys, 1000, 500);
    assert.equal(index.match(keys, 1200).get(POD_A), 2);
    assert.equal(index.match(keys, 1600).has(POD_A), false);
  });

  it("drops a speculative entry once the server's own events confirm or contradict it", () => {
    const index = newIndex();
    const keys = index.keysOf(MODEL, tokens(8));
    index.speculate(POD_A, keys, 1000, 60_000);
    apply(index, POD_A, batch(storedEvent('array', [11, 12], null, tokens(8))));
    // Evicted well within the guess's TTL: the removal holds, the guess does not bring the blocks back.
    apply(index, POD_A, batch(removedEvent('array', [11, 12])));
    assert.equal(index.match(keys, 1100).has(POD_A), false);
    // A guess about blocks the server then evicts (they were cached from before) goes with the eviction too.
    apply(index, POD_B, batch(storedEvent('map', [21, 22], null, tokens(8))));
    index.speculate(POD_B, keys, 1200, 60_000);
    apply(index, POD_B, batch(removedEvent('map', [21, 22])));
    assert.equal(index.match(keys, 1300).has(POD_B), false);
  });
});

/**
 * Items yielded by every Map and Set iteration while `fn` runs: the work of walking a collection, counted rather
 * than timed.
 */
function itemsVisitedDuring(fn: () => void): number {
  let visited = 0;
  const saved: [object, PropertyKey, PropertyDescriptor][] = [];
  for (const proto of [Map.prototype, Set.prototype])
    for (const name of ['keys', 'values', 'entries', Symbol.iterator] as PropertyKey[]) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, name)!;
      const original = descriptor.value as (this: unknown) => Iterator<unknown>;
      saved.push([proto, name, descriptor]);
      Object.defineProperty(proto, name, {
        ...descriptor,
        value: function* counted(this: unknown) {
          const it = original.call(this);
          for (let r = it.next(); !r.done; r = it.next()) {
            visited++;
            yield r.value;
          }
        },
      });
    }
  try {
    fn();
  } finally {
    for (const [proto, name, descriptor] of saved) Object.defineProperty(proto, name, descriptor);
  }
  return visited;
}

describe('KV block index: clearing an endpoint costs its own entries', () => {
  /** 5,000 blocks (and engine mappings, and guesses) of A; B holds 2 blocks and guesses 2 more. */
  function crowded(): { index: KvBlockIndex; aKeys: number[]; bKeys: number[] } {
    const index = newIndex(100_000);
    const prompt = tokens(5000 * 4);
    const hashes = Array.from({ length: 5000 }, (_, i) => i + 1);
    apply(index, POD_A, batch(storedEvent('array', hashes, null, prompt)));
    const aKeys = index.keysOf(MODEL, prompt);
    index.speculate(POD_A, index.keysOf(MODEL, tokens(5000 * 4, 1_000_000)), 0, 60_000);
    apply(index, POD_B, batch(storedEvent('array', [1, 2], null, tokens(8, 500))));
    const bKeys = index.keysOf(MODEL, tokens(16, 500));
    index.speculate(POD_B, bKeys, 0, 60_000);
    return { index, aKeys, bKeys };
  }

  it('clears an endpoint holding nothing without walking the index', () => {
    const { index } = crowded();
    const visited = itemsVisitedDuring(() => {
      for (let i = 0; i < 1000; i++) index.clearPod('10.0.0.9:8000');
    });
    // Was 1000 × (5,000 engine mappings + 5,004 guesses).
    assert.equal(visited, 0);
  });

  it("clears an endpoint by walking its own entries only, leaving the others' intact", () => {
    const { index, aKeys, bKeys } = crowded();
    const visited = itemsVisitedDuring(() => index.clearPod(POD_B));
    // B's 2 blocks, 2 engine mappings and 4 guesses (2 confirmed by its events already).
    assert.ok(visited <= 10, `visited ${visited}`);
    assert.equal(index.sizeOf(POD_B), 0);
    assert.equal(index.match(bKeys, 1).has(POD_B), false);
    assert.equal(index.size, 5000);
    assert.equal(index.engineMappings, 5000);
    assert.equal(index.speculativeSize, 5000);
    assert.equal(index.match(aKeys, 1).get(POD_A), 5000);
    // A's removal still finds its engine mappings.
    assert.equal(
      index.removed(POD_A, {
        type: 'BlockRemoved',
        blockHashes: ['1'],
        medium: undefined,
        groupIdx: undefined,
      }),
      1,
    );
  });

  it('forgets evicted and expired entries in the per-endpoint bookkeeping too, so it stays bounded', () => {
    const index = newIndex(8, 1);
    // B's blocks are pushed out by A's (LRU), by A taking over a block (podCacheSize 1), and its guesses expire.
    apply(index, POD_B, batch(storedEvent('array', [1, 2, 3, 4], null, tokens(16, 100))));
    apply(index, POD_B, batch(storedEvent('array', [5], null, tokens(4, 900))));
    index.speculate(POD_B, index.keysOf(MODEL, tokens(16, 300)), 0, 10);
    apply(index, POD_A, batch(storedEvent('array', [5], null, tokens(4, 900))));
    apply(index, POD_A, batch(storedEvent('array', [11, 12, 13, 14, 15, 16, 17], null, tokens(28, 200))));
    index.speculate(POD_A, index.keysOf(MODEL, tokens(4, 400)), 100, 10);
    assert.equal(index.sizeOf(POD_B), 0);
    assert.equal(index.size, 8);
    assert.equal(index.engineMappings, 8);
    assert.equal(index.speculativeSize, 1);
    // Nothing of B is left anywhere to walk.
    assert.equal(
      itemsVisitedDuring(() => index.clearPod(POD_B)),
      0,
    );
  });
});
