/**
 * @module epp/plugins/block-lru
 * One endpoint's prefix blocks: an exact LRU set of 53-bit block hashes, kept in typed arrays.
 *
 * Why not a `Map`: at the default 31,250 blocks per endpoint and 100 endpoints, Maps keyed by hash (each key a heap
 * number) took ~84 bytes per block — 250 MB — and every full garbage collection had to mark all of it (a forced one
 * took 122 ms in `bench:epp`). Typed arrays hold the same set in ~24 bytes per block, and the collector does not look inside them.
 *
 * Layout: a slot per block holds its hash and its neighbours in recency order (a doubly linked list from oldest to
 * newest); an open-addressing table (linear probing, at most half full) maps a hash to its slot. The arrays grow
 * by doubling as blocks arrive, up to the capacity, so an endpoint that has seen few blocks costs little.
 */

const NONE = -1;
const MIN_SLOTS = 16;
const TWO_32 = 4294967296;

export class BlockLru {
  /** Blocks held now. */
  size = 0;
  private capacityBlocks: number;
  /** slot → block hash. */
  private hashes = new Float64Array(0);
  /** slot → the next older / newer slot, or NONE. A free slot links to the next free one through `older`. */
  private older = new Int32Array(0);
  private newer = new Int32Array(0);
  /** Open-addressing table: slot + 1, 0 = empty. Its length is a power of two, at least twice the slots. */
  private table = new Int32Array(0);
  private shift = 32;
  private oldest = NONE;
  private newest = NONE;
  /** Slots in use or freed so far (slots past it were never used), and the head of the freed ones. */
  private used = 0;
  private free = NONE;

  constructor(capacity: number) {
    this.capacityBlocks = Math.max(1, Math.floor(capacity));
  }

  get capacity(): number {
    return this.capacityBlocks;
  }

  has(hash: number): boolean {
    return this.find(hash) !== NONE;
  }

  /** Records a use of `hash`: it becomes the newest block; the oldest goes when the set is full. */
  touch(hash: number): void {
    const slot = this.find(hash);
    if (slot !== NONE) {
      if (slot !== this.newest) {
        this.unlink(slot);
        this.linkNewest(slot);
      }
      return;
    }
    if (this.size >= this.capacityBlocks) this.evictOldest();
    const fresh = this.takeSlot();
    this.hashes[fresh] = hash;
    this.insert(hash, fresh);
    this.linkNewest(fresh);
    this.size++;
  }

  /** A smaller capacity evicts the oldest blocks at once (the server has evicted them too). */
  setCapacity(capacity: number): void {
    this.capacityBlocks = Math.max(1, Math.floor(capacity));
    while (this.size > this.capacityBlocks) this.evictOldest();
  }

  private home(hash: number): number {
    const low = hash >>> 0;
    const high = (hash / TWO_32) >>> 0;
    return Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> this.shift;
  }

  /** The slot holding `hash`, or NONE. */
  private find(hash: number): number {
    const table = this.table;
    if (table.length === 0) return NONE;
    const mask = table.length - 1;
    for (let i = this.home(hash); ; i = (i + 1) & mask) {
      const entry = table[i]!;
      if (entry === 0) return NONE;
      if (this.hashes[entry - 1] === hash) return entry - 1;
    }
  }

  private insert(hash: number, slot: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let i = this.home(hash);
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  /** Removes `hash` from the table by shifting back the entries of its probe run (no tombstones). */
  private erase(hash: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let hole = this.home(hash);
    while (this.hashes[table[hole]! - 1] !== hash) hole = (hole + 1) & mask;
    for (let j = (hole + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const home = this.home(this.hashes[table[j]! - 1]!);
      // The entry at j may fill the hole only if its home is not inside the run between the hole and j.
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      table[hole] = table[j]!;
      hole = j;
    }
    table[hole] = 0;
  }

  private evictOldest(): void {
    const slot = this.oldest;
    this.erase(this.hashes[slot]!);
    this.unlink(slot);
    this.older[slot] = this.free;
    this.free = slot;
    this.size--;
  }

  private takeSlot(): number {
    if (this.free !== NONE) {
      const slot = this.free;
      this.free = this.older[slot]!;
      return slot;
    }
    if (this.used === this.hashes.length) this.grow();
    return this.used++;
  }

  /** Doubles the slots (up to the capacity) and rebuilds the table for them. */
  private grow(): void {
    const slots = Math.max(MIN_SLOTS, Math.min(this.hashes.length * 2, this.capacityBlocks));
    const hashes = new Float64Array(slots);
    hashes.set(this.hashes);
    const older = new Int32Array(slots);
    older.set(this.older);
    const newer = new Int32Array(slots);
    newer.set(this.newer);
    this.hashes = hashes;
    this.older = older;
    this.newer = newer;
    let length = MIN_SLOTS * 2;
    while (length < slots * 2) length *= 2;
    this.table = new Int32Array(length);
    this.shift = 32 - Math.log2(length);
    for (let slot = this.oldest; slot !== NONE; slot = this.newer[slot]!)
      this.insert(this.hashes[slot]!, slot);
  }

  private unlink(slot: number): void {
    const before = this.older[slot]!;
    const after = this.newer[slot]!;
    if (before === NONE) this.oldest = after;
    else this.newer[before] = after;
    if (after === NONE) this.newest = before;
    else this.older[after] = before;
  }

  private linkNewest(slot: number): void {
    this.older[slot] = this.newest;
    this.newer[slot] = NONE;
    if (this.newest === NONE) this.oldest = slot;
    else this.newer[this.newest] = slot;
    this.newest = slot;
  }
}
