/**
 * @module epp/plugins/prefix-cache-tuning
 * `autoTune` for the prefix-cache-scorer: sizes each endpoint's block LRU after the KV cache the model server
 * reports (`vllm:cache_config_info`: `num_gpu_blocks` × `block_size` tokens) instead of a fixed count, so the EPP
 * forgets a prefix about when the server evicts it. The index counts characters and the server tokens, so the
 * characters per token are measured per endpoint: the prompt characters the EPP routed there against the growth
 * of the server's `vllm:prompt_tokens_total`. Pure: the scorer feeds it what it routed, what completed and what was scraped.
 */

/** Characters per token assumed until one is measured (GIE's `averageCharactersPerToken`). */
export const DEFAULT_CHARS_PER_TOKEN = 4;

/** Prompt tokens a server must have counted before its characters per token are trusted. */
export const CHARS_PER_TOKEN_MIN_TOKENS = 16_384;

/** A measured ratio outside this range is a measurement accident (other traffic, a reset), not a tokenizer. */
export const MIN_CHARS_PER_TOKEN = 0.5;
export const MAX_CHARS_PER_TOKEN = 32;

/**
 * Measures one endpoint's characters per token from what this EPP sent there and the prompt tokens the server
 * says it processed since the first scrape seen (`prompt_tokens_total`; vLLM counts a prompt at its first token).
 *
 * The difficulty is timing: the server counts a request somewhere between its routing and its completion, and when
 * a server falls behind, its queue holds many requests routed but not yet counted. Measured in
 * bench:prefix-autotune at 80 QPS (6.3 true chars/token): characters at routing gave 8.5, characters at
 * completion 5.5 (the running batch). So both are kept as bounds and the estimate in between subtracts what the
 * same scrape says is still waiting (`num_requests_waiting` × the mean prompt routed there; FCFS queues hold the
 * latest requests). The ratio is cumulative: a server's tokenizer does not change while it runs, and a restart
 * (the counter going backwards) starts the measurement over.
 *
 * @example
 * const m = new CharsPerTokenMeter();
 * m.observe(0, 0);            // first scrape: baseline
 * m.addRouted(98_304);        // routed requests with 98,304 prompt characters
 * m.observe(16_384, 0);       // server counted 16,384 prompt tokens, none waiting
 * m.charsPerToken;            // 6
 */
export class CharsPerTokenMeter {
  /** The measurement; undefined until enough tokens were counted. */
  charsPerToken: number | undefined;
  private routedChars = 0;
  private routedRequests = 0;
  private completedChars = 0;
  private baseTokens = Number.NaN;
  private lastTokens = Number.NaN;

  constructor(private readonly minTokens = CHARS_PER_TOKEN_MIN_TOKENS) {}

  /** A request with `chars` prompt characters was routed to the endpoint. */
  addRouted(chars: number): void {
    this.routedChars += chars;
    this.routedRequests++;
  }

  /** A request routed there has completed. */
  addCompleted(chars: number): void {
    this.completedChars += chars;
  }

  /**
   * A scrape: `prompt_tokens_total` (negative = the server does not report it) and `num_requests_waiting`.
   * Returns `'reset'` when the counter went backwards: the server restarted, so its cache is empty as well.
   */
  observe(tokensTotal: number, waiting: number): 'reset' | undefined {
    if (!(tokensTotal >= 0)) return undefined;
    if (Number.isNaN(this.baseTokens) || tokensTotal < this.lastTokens) {
      const restarted = !Number.isNaN(this.lastTokens);
      this.baseTokens = this.lastTokens = tokensTotal;
      this.routedChars = this.routedRequests = this.completedChars = 0;
      if (restarted) this.charsPerToken = undefined;
      return restarted ? 'reset' : undefined;
    }
    this.lastTokens = tokensTotal;
    const tokens = tokensTotal - this.baseTokens;
    // Nothing of ours reached the server while it counted tokens: all of it was someone else's traffic.
    if (tokens < this.minTokens || this.routedRequests === 0) return undefined;
    const queued = Math.max(0, waiting) * (this.routedChars / this.routedRequests);
    const counted = Math.min(this.routedChars, Math.max(this.completedChars, this.routedChars - queued));
    if (counted <= 0) return undefined;
    this.charsPerToken = Math.min(MAX_CHARS_PER_TOKEN, Math.max(MIN_CHARS_PER_TOKEN, counted / tokens));
    return undefined;
  }
}

/**
 * The most index blocks one endpoint is given, whatever its metrics say: about 10 million tokens of KV cache, beyond
 * any one server today. A model server reports its own cache size, and one claiming an endless cache would keep
 * every prompt routed to it in the index for ever.
 */
export const MAX_TUNED_CAPACITY_BLOCKS = 1_000_000;

/**
 * Index blocks (of `hashBlockChars` characters) an endpoint can hold, from its KV cache in tokens and the
 * characters per token; `fallback` when the server does not report its cache.
 *
 * @example tunedCapacityBlocks({ blockSize: 16, numGpuBlocks: 4096 }, 6, 64, 31250) // 65,536 tokens ≈ 6144 blocks
 */
export function tunedCapacityBlocks(
  cache: { blockSize: number; numGpuBlocks: number },
  charsPerToken: number,
  hashBlockChars: number,
  fallback: number,
): number {
  if (!(cache.blockSize > 0) || !(cache.numGpuBlocks > 0)) return fallback;
  const blocks = Math.floor((cache.numGpuBlocks * cache.blockSize * charsPerToken) / hashBlockChars);
  return Math.max(1, Math.min(MAX_TUNED_CAPACITY_BLOCKS, blocks));
}
