/**
 * @module epp/plugins/token-prefix-store
 * The model server's tokens for a prompt's text prefix, remembered from earlier renders, so that routing does not
 * wait for a render round trip to a busy server (llm-d's "prefix store": tokens stored per fixed-size block of
 * characters, the blocks chained by hash, reused when a new prompt's text begins with text tokenized before).
 *
 * A render answer carries token ids but no character offsets, so which tokens a text prefix decides is learnt, not
 * read: a chunk first seen gets the share of the render's tokens proportional to its characters, and every later
 * render whose text shares that chunk cuts the chunk's tokens to their longest common prefix with its own (tokens
 * past a shared text prefix differ between prompts; those before it cannot). A wrong guess costs at most the last
 * block or two of a match, never a match on tokens the server did not see: the tokens are always a prefix of some
 * rendered prompt's real tokens, and the block index keys them exactly as the server's events.
 *
 * Memory is bounded: at most `maxTokens` token ids referenced (least recently used chunk first out), so at most as
 * many entries (an entry without tokens is not kept); chunks of one render share its buffer.
 */
import { hashRange, prefixBlockHashes } from './prefix-cache-scorer.js';

export interface TokenPrefixStoreOptions {
  /** Characters per chunk (llm-d's prefix store uses 256). */
  chunkChars: number;
  /** Most token ids referenced by all entries together. */
  maxTokens: number;
}

/** What the store knows of a prompt. */
export interface CachedTokens {
  /** The server's tokens of the first `coveredChars` characters of the prompt (of all of it when `exact`). */
  tokens: Uint32Array;
  coveredChars: number;
  /** The whole prompt was rendered before. */
  exact: boolean;
}

/** Longest prompt considered (characters); longer prompts are keyed on this prefix only. */
const MAX_CHUNKS = 4096;

export class TokenPrefixStore {
  /** chunk-chain key (or exact-prompt key) → tokens; Map order is recency, oldest first. */
  private readonly entries = new Map<number, Uint32Array>();
  private tokens = 0;

  constructor(readonly options: TokenPrefixStoreOptions) {}

  /** Entries and the token ids they reference (for metrics and tests). */
  get size(): { entries: number; tokens: number } {
    return { entries: this.entries.size, tokens: this.tokens };
  }

  /** What is cached for `text` under `scope` (the model and API: each tokenizes and templates differently). */
  lookup(scope: string, text: string): CachedTokens | undefined {
    const chunks = this.chunkKeys(scope, text);
    const exact = this.touch(exactKey(text, chunks, this.options.chunkChars));
    if (exact) return { tokens: exact, coveredChars: text.length, exact: true };
    for (let k = chunks.length - 1; k >= 0; k--) {
      const tokens = this.touch(chunks[k]!);
      if (tokens) return { tokens, coveredChars: (k + 1) * this.options.chunkChars, exact: false };
    }
    return undefined;
  }

  /** Learns a render of `text`: its full tokens, and what each of its chunks decides. */
  learn(scope: string, text: string, rendered: ArrayLike<number>): void {
    if (text.length === 0) return;
    const tokens = Uint32Array.from(rendered);
    const chunks = this.chunkKeys(scope, text);
    for (let k = 0; k < chunks.length; k++) {
      const key = chunks[k]!;
      const known = this.entries.get(key);
      if (known) {
        const common = commonPrefix(known, tokens);
        this.set(key, common === known.length ? known : known.subarray(0, common));
      } else {
        const share = Math.floor((tokens.length * (k + 1) * this.options.chunkChars) / text.length);
        this.set(key, tokens.subarray(0, share));
      }
    }
    this.set(exactKey(text, chunks, this.options.chunkChars), tokens);
  }

  private chunkKeys(scope: string, text: string): number[] {
    return prefixBlockHashes(scope, text, this.options.chunkChars, MAX_CHUNKS);
  }

  private touch(key: number): Uint32Array | undefined {
    const tokens = this.entries.get(key);
    if (tokens) {
      this.entries.delete(key);
      this.entries.set(key, tokens);
    }
    return tokens;
  }

  private set(key: number, tokens: Uint32Array): void {
    const old = this.entries.get(key);
    if (old) {
      this.tokens -= old.length;
      this.entries.delete(key);
    }
    // An entry without tokens says nothing; one above the budget would evict everything else.
    if (tokens.length === 0 || tokens.length > this.options.maxTokens) return;
    this.entries.set(key, tokens);
    this.tokens += tokens.length;
    for (const [oldest, evicted] of this.entries) {
      if (this.tokens <= this.options.maxTokens) break;
      this.entries.delete(oldest);
      this.tokens -= evicted.length;
    }
  }
}

/** The key of the whole text: its last full chunk's key chained with the partial tail (a seed no chunk uses). */
function exactKey(text: string, chunks: readonly number[], chunkChars: number): number {
  const start = chunks.length * chunkChars;
  const seed = chunks.length === 0 ? 0x51ed27 : chunks[chunks.length - 1]! + 1;
  return hashRange(text, start, text.length, seed);
}

function commonPrefix(a: Uint32Array, b: Uint32Array): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
