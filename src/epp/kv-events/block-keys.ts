/**
 * @module epp/kv-events/block-keys
 * Request block keys, as llm-d's token processor makes them: the tokens are cut into blocks of the model server's
 * block size (a partial tail block is not a block: the server cannot reuse it either), and each block's key hashes
 * its tokens chained with the previous block's key, so one key names the whole prefix up to it. The chain starts
 * from a key of the hash seed and the model name — the LoRA adapter's name for adapter requests — so two models or
 * adapters never share blocks.
 *
 * The keys are internal to the index (as in llm-d, they need not equal the engine's hashes: events are translated
 * through the tokens they carry), so the hash is chosen for speed: two 32-bit multiply-xorshift lanes give a 53-bit
 * key that is a plain JS number (a Map key without allocation). llm-d's own chain is FNV-64a over CBOR; the two are
 * not bit-compatible, which only matters for an index shared with llm-d (there is none here).
 */

/** The key the chain starts from for `model` (a base model or a LoRA adapter name). */
export function rootBlockKey(hashSeed: string, model: string): number {
  let h1 = 0x9e3779b9;
  let h2 = 0x85ebca6b;
  const text = `${hashSeed}\u0000${model}`;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  return finish(h1, h2);
}

/** The key of one block of `tokens[start, start + blockSize)` after the block keyed `parent`. */
export function chainBlockKey(
  parent: number,
  tokens: ArrayLike<number>,
  start: number,
  blockSize: number,
): number {
  let h1 = 0xdeadbeef ^ (parent >>> 0);
  let h2 = 0x41c6ce57 ^ Math.floor(parent / 4294967296);
  const end = start + blockSize;
  for (let i = start; i < end; i++) {
    const t = tokens[i]!;
    h1 = Math.imul(h1 ^ t, 2654435761);
    h2 = Math.imul(h2 ^ (t >>> 16) ^ (t << 5), 1597334677);
  }
  return finish(h1, h2);
}

function finish(a: number, b: number): number {
  let h1 = a;
  let h2 = b;
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * Keys of the full blocks of `tokens`, continuing the chain from `parent` (at most `maxBlocks`).
 * @example requestBlockKeys(rootBlockKey('', 'llama'), promptTokens, 16, 256)
 */
export function requestBlockKeys(
  parent: number,
  tokens: ArrayLike<number>,
  blockSize: number,
  maxBlocks = Number.MAX_SAFE_INTEGER,
): number[] {
  const blocks = Math.min(Math.floor(tokens.length / blockSize), maxBlocks);
  const keys = new Array<number>(blocks);
  let key = parent;
  for (let b = 0; b < blocks; b++) {
    key = chainBlockKey(key, tokens, b * blockSize, blockSize);
    keys[b] = key;
  }
  return keys;
}
