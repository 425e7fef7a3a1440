/**
 * @module epp/plugins/in-flight-tokens
 * The prompt tokens this EPP has in flight on each endpoint: a routed request adds its estimate (4 characters a
 * token, as llm-d estimates) to its primary target, and its response's end releases exactly that, once. What
 * `concurrency-detector` (tokens mode) and `token-load-scorer` read.
 */
import type { Endpoint, SchedulingContext, SchedulingRequest, SchedulingResult } from '../types.js';

const CHARS_PER_TOKEN = 4;

/** A prompt's tokens as llm-d estimates them without a tokenizer: 4 characters a token, at least 1. */
export function estimatedTokens(prompt: string): number {
  return Math.max(1, Math.ceil(prompt.length / CHARS_PER_TOKEN));
}

export class InFlightTokens {
  private readonly tokens = new Map<string, number>();
  /** What each routed request added, so its end releases that and nothing else. */
  private readonly added = new WeakMap<SchedulingRequest, { address: string; tokens: number }>();

  of(address: string): number {
    return this.tokens.get(address) ?? 0;
  }

  /** Counts a routed request on its primary target. */
  add(context: SchedulingContext, result: SchedulingResult): void {
    const target = result.results.get(result.primaryProfile)?.targets[0];
    if (!target) return;
    const estimate = estimatedTokens(context.request.prompt);
    this.tokens.set(target.address, this.of(target.address) + estimate);
    this.added.set(context.request, { address: target.address, tokens: estimate });
  }

  /** Releases what the request added, when its response at `endpoint` has ended. */
  release(request: SchedulingRequest, endpoint: Endpoint): void {
    const entry = this.added.get(request);
    if (!entry || entry.address !== endpoint.address) return;
    this.added.delete(request);
    const left = this.of(entry.address) - entry.tokens;
    if (left > 0) this.tokens.set(entry.address, left);
    else this.tokens.delete(entry.address);
  }
}
