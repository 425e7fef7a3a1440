/**
 * @module sim/kv-cache
 * The simulated GPU's KV cache, managed the way vLLM's block pool does it: a fixed number of blocks, each holding
 * `blockSize` tokens; a block whose prompt prefix is complete is registered under its chained hash so later requests
 * with the same prefix reuse it; blocks nobody uses any more stay cached in a free queue and are evicted least
 * recently used first when new blocks are needed. Deterministic and free of I/O.
 */

export interface KvCacheStats {
  totalBlocks: number;
  /** Blocks referenced by at least one running request. */
  usedBlocks: number;
  /** Blocks registered under a prefix hash (used or free-but-cached). */
  cachedBlocks: number;
}

export class KvCache {
  readonly totalBlocks: number;
  private readonly refCount: Int32Array;
  private readonly hashOf: (string | undefined)[];
  private readonly byHash = new Map<string, number>();
  /** Free blocks in eviction order, oldest first (a Map keeps insertion order and deletes in O(1)). */
  private readonly free = new Map<number, true>();
  private used = 0;

  constructor(totalBlocks: number) {
    this.totalBlocks = totalBlocks;
    this.refCount = new Int32Array(totalBlocks);
    this.hashOf = new Array<string | undefined>(totalBlocks).fill(undefined);
    for (let block = 0; block < totalBlocks; block++) this.free.set(block, true);
  }

  /** How many leading blocks of a prefix (given as chained hashes) are cached. */
  cachedPrefixBlocks(hashes: readonly string[]): number {
    let hits = 0;
    while (hits < hashes.length && this.byHash.has(hashes[hits] as string)) hits++;
    return hits;
  }

  /** Whether `hits` cached prefix blocks plus `fresh` new blocks can be held now. */
  canAllocate(hashes: readonly string[], hits: number, fresh: number): boolean {
    let reclaimed = 0;
    for (let i = 0; i < hits; i++) {
      const block = this.byHash.get(hashes[i] as string) as number;
      if (this.refCount[block] === 0) reclaimed++;
    }
    return this.free.size - reclaimed >= fresh;
  }

  /**
   * Takes the first `hits` cached blocks of `hashes` and `fresh` new ones (evicting the least recently used cached
   * blocks), returning the block ids in sequence order. Call `canAllocate` first.
   */
  allocate(hashes: readonly string[], hits: number, fresh: number): number[] {
    const blocks: number[] = [];
    for (let i = 0; i < hits; i++) {
      const block = this.byHash.get(hashes[i] as string) as number;
      this.take(block);
      blocks.push(block);
    }
    for (let i = 0; i < fresh; i++) {
      const next = this.free.keys().next();
      if (next.done) throw new Error('KV cache exhausted: allocate called without canAllocate');
      const block = next.value;
      const evicted = this.hashOf[block];
      if (evicted !== undefined) {
        this.byHash.delete(evicted);
        this.hashOf[block] = undefined;
      }
      this.take(block);
      blocks.push(block);
    }
    return blocks;
  }

  /** Registers computed full blocks under their prefix hashes so later requests can reuse them. */
  register(blocks: readonly number[], hashes: readonly string[]): void {
    const count = Math.min(blocks.length, hashes.length);
    for (let i = 0; i < count; i++) {
      const block = blocks[i] as number;
      const hash = hashes[i] as string;
      // The same prefix computed twice at once: keep the first copy cached; this one is freed plainly later.
      if (this.hashOf[block] === undefined && !this.byHash.has(hash)) {
        this.hashOf[block] = hash;
        this.byHash.set(hash, block);
      }
    }
  }

  /**
   * Drops one reference from each block. Blocks are queued tail first, as vLLM does, so the end of a sequence is
   * evicted before its shared beginning.
   */
  release(blocks: readonly number[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const block = blocks[i] as number;
      const count = (this.refCount[block] as number) - 1;
      this.refCount[block] = count;
      if (count === 0) {
        this.used--;
        this.free.set(block, true);
      }
    }
  }

  stats(): KvCacheStats {
    return { totalBlocks: this.totalBlocks, usedBlocks: this.used, cachedBlocks: this.byHash.size };
  }

  private take(block: number): void {
    if (this.refCount[block] === 0) {
      this.free.delete(block);
      this.used++;
    }
    this.refCount[block] = (this.refCount[block] as number) + 1;
  }
}
