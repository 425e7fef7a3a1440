import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockLru } from './block-lru.js';

/** The obvious exact LRU (a Map in recency order), to compare against. */
class ReferenceLru {
  readonly blocks = new Map<number, true>();
  constructor(public capacity: number) {}
  touch(h: number): void {
    this.blocks.delete(h);
    this.blocks.set(h, true);
    this.trim();
  }
  setCapacity(c: number): void {
    this.capacity = Math.max(1, Math.floor(c));
    this.trim();
  }
  private trim(): void {
    while (this.blocks.size > this.capacity) this.blocks.delete(this.blocks.keys().next().value!);
  }
}

test('block LRU: the newest blocks stay, the least recently used goes first', () => {
  const lru = new BlockLru(3);
  for (const h of [1, 2, 3]) lru.touch(h);
  lru.touch(1); // 2 is now the oldest
  lru.touch(4);
  assert.deepEqual(
    [1, 2, 3, 4].map((h) => lru.has(h)),
    [true, false, true, true],
  );
  assert.equal(lru.size, 3);
  lru.setCapacity(1);
  assert.deepEqual(
    [1, 3, 4].map((h) => lru.has(h)),
    [false, false, true],
  );
  assert.equal(lru.capacity, 1);
});

test('block LRU: full 53-bit hashes and hash 0 are kept apart', () => {
  const lru = new BlockLru(8);
  const big = 2 ** 53 - 1;
  for (const h of [0, big, big - 2 ** 32, 2 ** 32]) lru.touch(h);
  assert.ok([0, big, big - 2 ** 32, 2 ** 32].every((h) => lru.has(h)));
  assert.ok(![1, big - 1, 2 ** 33].some((h) => lru.has(h)));
});

test('block LRU: random churn, growth and capacity changes agree with a plain exact LRU', () => {
  let x = 12345;
  const random = (n: number) => {
    x = (x * 48271) % 2147483647;
    return x % n;
  };
  for (const capacity of [1, 5, 64, 1000]) {
    const lru = new BlockLru(capacity);
    const reference = new ReferenceLru(capacity);
    // Hashes from a small range collide in the table (long probe runs, erasures in their middle) and repeat.
    const range = capacity * 3 + 7;
    for (let i = 0; i < 60_000; i++) {
      if (i % 5003 === 0) {
        const c = 1 + random(capacity * 2);
        lru.setCapacity(c);
        reference.setCapacity(c);
      }
      const h = random(range) * 4294967311;
      lru.touch(h);
      reference.touch(h);
      if (i % 101 === 0) {
        assert.equal(lru.size, reference.blocks.size, `capacity ${capacity}, step ${i}`);
        for (let k = 0; k < range; k++) {
          const probe = k * 4294967311;
          assert.equal(
            lru.has(probe),
            reference.blocks.has(probe),
            `capacity ${capacity}, step ${i}, hash ${probe}`,
          );
        }
      }
    }
  }
});
