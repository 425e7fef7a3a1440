/**
 * @module epp/kv-events/kv-block-index
 * Which endpoint holds which KV blocks, learned from the model servers' own events (llm-d's in-memory index):
 *
 * - `BlockStored` carries the new blocks' tokens and the engine hash of the block before them; the index computes
 *   the request keys of those tokens (chained from the parent's request key, or from the model / LoRA adapter root),
 *   records endpoint → request key, and remembers engine hash → request keys so that later events can name them.
 * - `BlockRemoved` names engine hashes: their request keys lose that endpoint.
 * - `AllBlocksCleared`, and an endpoint leaving the pool, remove everything of that endpoint.
 *
 * Memory is bounded: at most `maxEntries` (block, endpoint) entries, least recently stored or matched block first
 * out, at most `podCacheSize` endpoints per block, and at most `maxEntries` engine-hash mappings (oldest first out).
 * Measured cost: about 410 bytes of heap per (block, endpoint) entry with its engine mapping and the per-endpoint
 * sets that make clearing an endpoint cost only its own entries (200,000 entries, one endpoint per block, heap after
 * a full GC, Node 20; 355 bytes without those sets; several endpoints per block cost less each), so the default
 * 500,000 entries stay under ~205 MB; size it to the fleet's blocks × the replicas that may share a block. Keys stay
 * small whatever the events say: the decoder refuses block hashes over 64 bytes.
 */
import { requestBlockKeys, rootBlockKey } from './block-keys.js';
import type { BlockRemoved, BlockStored } from './events.js';

export interface KvBlockIndexOptions {
  /** Tokens per block of the index (the model servers' block size). */
  blockSize: number;
  /** Seed of the first block key, as the model servers' `PYTHONHASHSEED` / llm-d's `hashSeed`. */
  hashSeed: string;
  /** Most (block, endpoint) entries kept. */
  maxEntries: number;
  /** Most endpoints remembered per block (llm-d's `podCacheSize`). */
  podCacheSize: number;
  /** Device tiers (lower-case `medium`) not indexed, e.g. a CPU tier weighted 0. */
  ignoredMedia?: ReadonlySet<string>;
}

/** What an event did, for counters and tests. */
export type StoreOutcome = 'stored' | 'orphan' | 'ignored';

/** Speculative entries (added at routing time, before the server's event confirms them). */
interface Speculation {
  expiresAt: number;
  pods: Set<string>;
}

const INDEXABLE_KINDS = new Set(['full_attention', 'mla_attention', 'sink_full']);

export class KvBlockIndex {
  /** request key → endpoints holding it; Map order is recency (oldest first). */
  private readonly blocks = new Map<number, Set<string>>();
  /** `endpoint \n engine hash` → request key(s) it covers; Map order is age. */
  private readonly engine = new Map<string, number | number[]>();
  /**
   * What each endpoint has in `blocks`, `engine` and `speculative`, so that clearing an endpoint costs its own
   * entries, not the whole index: a pod may send tens of thousands of `AllBlocksCleared` in one batch.
   */
  private readonly podKeys = new Map<string, Set<number>>();
  private readonly podEngine = new Map<string, Set<string>>();
  private readonly podSpeculative = new Map<string, Set<number>>();
  private readonly speculative = new Map<number, Speculation>();
  private entries = 0;
  private readonly roots = new Map<string, number>();

  constructor(readonly options: KvBlockIndexOptions) {}

  /** The first key of the chain for a model or adapter. */
  root(model: string): number {
    let root = this.roots.get(model);
    if (root === undefined) {
      root = rootBlockKey(this.options.hashSeed, model);
      // Adapters come and go; an unbounded name set would be a leak.
      if (this.roots.size >= 4096) this.roots.clear();
      this.roots.set(model, root);
    }
    return root;
  }

  /** Request keys of a prompt's tokens for `model` (the adapter name for LoRA requests). */
  keysOf(model: string, tokens: ArrayLike<number>, maxBlocks?: number): number[] {
    return requestBlockKeys(this.root(model), tokens, this.options.blockSize, maxBlocks);
  }

  /** Applies a `BlockStored` event of `pod`, whose topic named `model`. */
  stored(pod: string, model: string, event: BlockStored): StoreOutcome {
    if (event.medium !== undefined && this.options.ignoredMedia?.has(event.medium.toLowerCase()))
      return 'ignored';
    if (event.groupIdx !== undefined && !INDEXABLE_KINDS.has(event.kvCacheSpecKind ?? 'full_attention'))
      return 'ignored';
    let parent: number;
    if (event.parentHash !== undefined) {
      const known = this.engine.get(`${pod}\n${event.parentHash}`);
      // The parent fell out of the index (or was never seen): its tokens are unknown, so these keys cannot be made.
      if (known === undefined) return 'orphan';
      parent = typeof known === 'number' ? known : known[known.length - 1]!;
    } else parent = this.root(event.loraName || model);
    const keys = requestBlockKeys(parent, event.tokenIds, this.options.blockSize);
    for (const key of keys) {
      this.addEntry(key, pod);
      // Confirmed: from now on the server's own events say when the block goes.
      this.unspeculate(key, pod);
    }
    const engineKeys = event.blockHashes;
    if (keys.length > 0 && engineKeys.length > 0) {
      // llm-d's proportional mapping: 1:1, many engine blocks per key, or one engine block over many keys.
      const n = Math.max(engineKeys.length, keys.length);
      let previous: string | undefined;
      let covered: number[] = [];
      for (let i = 0; i < n; i++) {
        const ek = engineKeys[Math.floor((i * engineKeys.length) / n)]!;
        const rk = keys[Math.floor((i * keys.length) / n)]!;
        if (ek !== previous) {
          if (previous !== undefined) this.mapEngine(pod, previous, covered);
          previous = ek;
          covered = [];
        }
        if (covered[covered.length - 1] !== rk) covered.push(rk);
      }
      if (previous !== undefined) this.mapEngine(pod, previous, covered);
    }
    return 'stored';
  }

  /** Applies a `BlockRemoved` event of `pod`. */
  removed(pod: string, event: BlockRemoved): number {
    let removed = 0;
    for (const ek of event.blockHashes) {
      const name = `${pod}\n${ek}`;
      const keys = this.engine.get(name);
      if (keys === undefined) continue;
      this.engine.delete(name);
      remove(this.podEngine, pod, name);
      if (typeof keys === 'number') removed += this.removeEntry(keys, pod);
      else for (const key of keys) removed += this.removeEntry(key, pod);
    }
    return removed;
  }

  /** Forgets everything `pod` held (`AllBlocksCleared`, a publisher restart, or the endpoint leaving the pool). */
  clearPod(pod: string): void {
    const keys = this.podKeys.get(pod);
    if (keys) {
      this.podKeys.delete(pod);
      for (const key of keys) {
        const pods = this.blocks.get(key);
        if (pods?.delete(pod)) {
          this.entries--;
          if (pods.size === 0) this.blocks.delete(key);
        }
      }
    }
    const names = this.podEngine.get(pod);
    if (names) {
      this.podEngine.delete(pod);
      for (const name of names) this.engine.delete(name);
    }
    const guesses = this.podSpeculative.get(pod);
    if (guesses) {
      this.podSpeculative.delete(pod);
      for (const key of guesses) {
        const s = this.speculative.get(key);
        if (s?.pods.delete(pod) && s.pods.size === 0) this.speculative.delete(key);
      }
    }
  }

  /**
   * Records that `pod` is about to compute `keys` (llm-d's speculative indexing): they count for `ttlMs`, until the
   * server's own `BlockStored` confirms them or its `BlockRemoved` contradicts them, so a burst of requests sharing a
   * prefix follows the first one.
   */
  speculate(pod: string, keys: readonly number[], now: number, ttlMs: number): void {
    const expiresAt = now + ttlMs;
    // Expired entries leave from the front (Map order is insertion order, every entry has the same TTL).
    for (const [key, s] of this.speculative) {
      if (s.expiresAt > now && this.speculative.size < this.options.maxEntries) break;
      this.speculative.delete(key);
      for (const p of s.pods) remove(this.podSpeculative, p, key);
    }
    for (const key of keys) {
      const existing = this.speculative.get(key);
      if (existing) {
        this.speculative.delete(key);
        existing.pods.add(pod);
        existing.expiresAt = expiresAt;
        this.speculative.set(key, existing);
      } else this.speculative.set(key, { expiresAt, pods: new Set([pod]) });
      add(this.podSpeculative, pod, key);
    }
  }

  /**
   * Leading blocks of `keys` each endpoint holds (endpoints holding none are absent). Every holder of the first
   * block is followed until it lacks one; matched blocks count as recently used.
   */
  match(keys: readonly number[], now = 0): Map<string, number> {
    const matched = new Map<string, number>();
    if (keys.length === 0) return matched;
    let alive = this.holders(keys[0]!, now);
    let b = 1;
    for (; b < keys.length && alive.length > 0; b++) {
      const key = keys[b]!;
      const pods = this.blocks.get(key);
      const spec = this.speculative.get(key);
      const next: string[] = [];
      for (const pod of alive) {
        if (pods?.has(pod) || (spec !== undefined && spec.expiresAt > now && spec.pods.has(pod)))
          next.push(pod);
        else matched.set(pod, b);
      }
      alive = next;
    }
    for (const pod of alive) matched.set(pod, b);
    // Touch what matched: a block that keeps being hit stays, as it does in the server's cache.
    const longest = Math.max(0, ...matched.values());
    for (let i = 0; i < longest; i++) this.touch(keys[i]!);
    return matched;
  }

  /** Entries held (for metrics and tests). */
  get size(): number {
    return this.entries;
  }

  /** Entries of one endpoint. */
  sizeOf(pod: string): number {
    return this.podKeys.get(pod)?.size ?? 0;
  }

  /** Speculative entries held, counting each (block, endpoint) guess once. */
  get speculativeSize(): number {
    let n = 0;
    for (const keys of this.podSpeculative.values()) n += keys.size;
    return n;
  }

  /** Engine-hash mappings held. */
  get engineMappings(): number {
    return this.engine.size;
  }

  private holders(key: number, now: number): string[] {
    const pods = this.blocks.get(key);
    const spec = this.speculative.get(key);
    const out = pods ? [...pods] : [];
    if (spec !== undefined && spec.expiresAt > now) for (const p of spec.pods) if (!pods?.has(p)) out.push(p);
    return out;
  }

  private touch(key: number): void {
    const pods = this.blocks.get(key);
    if (!pods) return;
    this.blocks.delete(key);
    this.blocks.set(key, pods);
  }

  private addEntry(key: number, pod: string): void {
    let pods = this.blocks.get(key);
    if (pods) {
      this.blocks.delete(key);
      this.blocks.set(key, pods);
      if (pods.has(pod)) return;
      if (pods.size >= this.options.podCacheSize) {
        const oldest = pods.values().next().value as string;
        pods.delete(oldest);
        remove(this.podKeys, oldest, key);
        this.entries--;
      }
    } else {
      pods = new Set();
      this.blocks.set(key, pods);
    }
    pods.add(pod);
    add(this.podKeys, pod, key);
    this.entries++;
    while (this.entries > this.options.maxEntries) this.evictOldest();
  }

  private removeEntry(key: number, pod: string): number {
    // The server evicted it: a guess that it holds the block is wrong now (under cache pressure a block may go long
    // before the guess's TTL).
    this.unspeculate(key, pod);
    const pods = this.blocks.get(key);
    if (!pods?.delete(pod)) return 0;
    this.entries--;
    remove(this.podKeys, pod, key);
    if (pods.size === 0) this.blocks.delete(key);
    return 1;
  }

  private unspeculate(key: number, pod: string): void {
    const s = this.speculative.get(key);
    if (!s?.pods.delete(pod)) return;
    remove(this.podSpeculative, pod, key);
    if (s.pods.size === 0) this.speculative.delete(key);
  }

  private evictOldest(): void {
    const first = this.blocks.entries().next();
    if (first.done) return;
    const [key, pods] = first.value;
    this.blocks.delete(key);
    this.entries -= pods.size;
    for (const pod of pods) remove(this.podKeys, pod, key);
  }

  private mapEngine(pod: string, engineKey: string, keys: number[]): void {
    const name = `${pod}\n${engineKey}`;
    this.engine.delete(name);
    this.engine.set(name, keys.length === 1 ? keys[0]! : keys);
    add(this.podEngine, pod, name);
    if (this.engine.size > this.options.maxEntries) {
      const oldest = this.engine.keys().next();
      if (!oldest.done) {
        this.engine.delete(oldest.value);
        // Engine hashes hold no newline (decimal or hex), so the last one ends the endpoint's part.
        remove(this.podEngine, oldest.value.slice(0, oldest.value.lastIndexOf('\n')), oldest.value);
      }
    }
  }
}

function add<T>(index: Map<string, Set<T>>, pod: string, item: T): void {
  const items = index.get(pod);
  if (items) items.add(item);
  else index.set(pod, new Set([item]));
}

/** Drops an endpoint's empty set, so endpoints that come and go leave nothing behind. */
function remove<T>(index: Map<string, Set<T>>, pod: string, item: T): void {
  const items = index.get(pod);
  if (items?.delete(item) && items.size === 0) index.delete(pod);
}
