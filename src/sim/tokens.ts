/**
 * @module sim/tokens
 * Text in and out of the simulator: a cheap deterministic tokenizer (one token per whitespace-led word, so a prompt of
 * N words costs N tokens), the chained block hashes that identify cacheable prompt prefixes, a seeded random
 * generator, and the deterministic output text. Pure functions only.
 */
import { createHash } from 'node:crypto';

/**
 * Splits text into tokens: each run of non-space characters with the spaces before it.
 * Real tokenizers are finer-grained; what matters here is that equal prefixes give equal token prefixes.
 *
 * @example tokenize('You are a bot') // ['You', ' are', ' a', ' bot']
 */
export function tokenize(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

/**
 * How many tokens {@link tokenize} would make of `text`, without making them: a prompt of millions of words is refused
 * on its count alone, where its token list would take a gigabyte. Whitespace is what `\s` matches.
 *
 * @example countTokens('You are a bot') // 4
 */
export function countTokens(text: string): number {
  let count = 0;
  let inToken = false;
  for (let i = 0; i < text.length; i++) {
    const space = isWhitespace(text.charCodeAt(i));
    if (!space && !inToken) count++;
    inToken = !space;
  }
  return count;
}

/** ECMAScript's WhiteSpace and LineTerminator code points: exactly what `\s` matches. */
function isWhitespace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  if (code < 0xa0) return false;
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

/**
 * Hashes of the full blocks of a token sequence, each chained to the one before it as vLLM does, so a block's hash
 * identifies the whole prefix up to and including it. The partial last block is not hashed (it cannot be shared).
 * `salt` keeps prefixes of different models or LoRA adapters apart.
 */
export function blockHashes(tokens: readonly string[], blockSize: number, salt = ''): string[] {
  const hashes: string[] = [];
  let parent = salt;
  for (let end = blockSize; end <= tokens.length; end += blockSize) {
    const hash = createHash('sha1');
    hash.update(parent);
    hash.update('\u0000');
    hash.update(tokens.slice(end - blockSize, end).join('\u0001'));
    parent = hash.digest('base64');
    hashes.push(parent);
  }
  return hashes;
}

/** A seeded pseudo-random generator (mulberry32): returns floats in [0, 1). */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit hash of a string, to derive per-request seeds. */
export function hash32(text: string): number {
  return createHash('sha1').update(text).digest().readUInt32BE(0);
}

const words = (
  'the a model server routes requests to replicas with cached prefixes and short queues so tokens stream ' +
  'quickly while the scheduler balances load across pods in the pool each decode step emits one token per ' +
  'sequence in the running batch and prefill fills the cache for later turns of the same conversation'
).split(' ');

/**
 * A request's output tokens one at a time, drawn by a generator seeded from the server seed and the prompt, so the
 * same request to the same-seeded simulator always gets the same text. Only the generator's state is kept: a request
 * waiting in the queue, or a stream its client reads slowly, holds no text.
 */
export function outputTokenSource(seed: number, prompt: string): () => string {
  const random = seededRandom(hash32(`${seed}\u0000${prompt}`));
  let first = true;
  return function nextToken(): string {
    const word = words[Math.floor(random() * words.length)] as string;
    if (!first) return ` ${word}`;
    first = false;
    return word.charAt(0).toUpperCase() + word.slice(1);
  };
}

/** The first `count` tokens of {@link outputTokenSource}. */
export function outputTokens(seed: number, prompt: string, count: number): string[] {
  const next = outputTokenSource(seed, prompt);
  return Array.from({ length: count }, () => next());
}
