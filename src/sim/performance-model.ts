/**
 * @module sim/performance-model
 * The simulated inference engine: a deterministic state machine shaped like vLLM's scheduler, with time as an
 * input. Requests wait in a FCFS queue, are admitted into a bounded running batch when a batch slot, KV-cache blocks
 * and (for LoRA) an adapter slot are free, have their uncached prompt prefilled in chunks under a per-step token
 * budget, then decode one token per step. Each step's length comes from {@link stepDurationMs}, so time to first
 * token grows with uncached prompt tokens and with the queue, and inter-token latency grows with the batch.
 *
 * No clock, no randomness, no I/O: the same calls in the same order give the same results, which is what the
 * table-driven tests rely on. `engine-loop.ts` drives it in (scaled) real time.
 */
import { KvCache, type KvCacheStats } from './kv-cache.js';
import type { PerformanceOptions } from './options.js';

/** A request as the engine sees it. */
export interface EngineRequest {
  id: string;
  /** Prompt length in tokens. */
  promptTokens: number;
  /** Chained hashes of the prompt's full blocks (see `blockHashes`). */
  blockHashes: readonly string[];
  /** Tokens to generate; at least 1. */
  outputTokens: number;
  /** LoRA adapter name, if the request targets one. */
  lora?: string | undefined;
  /** The prompt's KV cache comes from a remote prefill endpoint instead of being computed here. */
  remotePrefill?: boolean | undefined;
}

/** What happened to one request in a step. All times are modelled milliseconds. */
export interface StepResult {
  start: number;
  end: number;
  /** Requests admitted into the running batch, with the prompt tokens found in the prefix cache. */
  admitted: { id: string; cachedTokens: number; queuedMs: number }[];
  /** Requests that produced one token at `end` (the first token when prefill finished in this step). */
  emitted: string[];
  /** Requests that produced their last token at `end` and left the batch. */
  finished: string[];
  /** Tokens prefilled, sequences decoded and adapters loaded in this step. */
  prefillTokens: number;
  decodeSeqs: number;
  loraLoads: number;
}

export interface EngineStats {
  running: number;
  waiting: number;
  kv: KvCacheStats;
  /** KV-cache use as a fraction of all blocks, as vLLM's `kv_cache_usage_perc` reports it. */
  kvUsage: number;
  runningLoras: string[];
  waitingLoras: string[];
  /** Prompt tokens looked up in the prefix cache, and those found there (counters since start). */
  prefixQueriedTokens: number;
  prefixHitTokens: number;
}

/** Why a request can never run on this engine. */
export class EngineRejection extends Error {}

/**
 * Length of one engine step, in milliseconds:
 * `overhead + prefillTokens / prefillRate + (decoding ? decodeBase + decodePerSeq × decodeSeqs : 0) + loads × loraLoad`.
 */
export function stepDurationMs(
  options: PerformanceOptions,
  work: { prefillTokens: number; decodeSeqs: number; loraLoads: number },
): number {
  if (work.prefillTokens === 0 && work.decodeSeqs === 0 && work.loraLoads === 0) return 0;
  const prefill = (work.prefillTokens * 1000) / options.prefillTokensPerSecond;
  const decode = work.decodeSeqs > 0 ? options.decodeBaseMs + options.decodePerSeqMs * work.decodeSeqs : 0;
  return options.stepOverheadMs + prefill + decode + work.loraLoads * options.loraLoadMs;
}

/** Time to receive a remote prefill's KV cache for `tokens` prompt tokens, in milliseconds. */
export function kvTransferMs(options: PerformanceOptions, tokens: number): number {
  return options.kvTransferBaseMs + options.kvTransferPerTokenMs * tokens;
}

type Phase = 'waiting' | 'transferring' | 'prefill' | 'decode';

interface Sequence {
  request: EngineRequest;
  arrival: number;
  phase: Phase;
  blocks: number[];
  /** Prompt tokens whose KV is present (cached, transferred or computed). */
  computed: number;
  generated: number;
  readyAt: number;
  /** Prefill tokens scheduled in the current step. */
  chunk: number;
  decoding: boolean;
}

export class PerformanceModel {
  private readonly options: PerformanceOptions;
  private readonly kv: KvCache;
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private readonly byId = new Map<string, Sequence>();
  /** Adapters loaded on the simulated GPU, least recently used first. */
  private readonly residentLoras: string[] = [];
  private clock = 0;
  private busy = false;
  private queried = 0;
  private hits = 0;

  constructor(options: PerformanceOptions) {
    this.options = options;
    this.kv = new KvCache(options.numGpuBlocks);
  }

  /** Modelled time at the end of the last step. */
  get now(): number {
    return this.clock;
  }

  /** KV blocks a request holds while it runs: its prompt and every output token. */
  blocksNeeded(request: Pick<EngineRequest, 'promptTokens' | 'outputTokens'>): number {
    return Math.ceil((request.promptTokens + request.outputTokens) / this.options.blockSize);
  }

  /** Queues a request that arrived at `arrival`. Throws {@link EngineRejection} if it can never fit. */
  submit(request: EngineRequest, arrival: number): void {
    if (this.byId.has(request.id)) throw new EngineRejection(`request id '${request.id}' is already queued`);
    if (request.outputTokens < 1) throw new EngineRejection('a request must generate at least one token');
    const needed = this.blocksNeeded(request);
    if (needed > this.options.numGpuBlocks)
      throw new EngineRejection(
        `the request needs ${needed} KV-cache blocks but the engine has ${this.options.numGpuBlocks}`,
      );
    const sequence: Sequence = {
      request,
      arrival,
      phase: 'waiting',
      blocks: [],
      computed: 0,
      generated: 0,
      readyAt: 0,
      chunk: 0,
      decoding: false,
    };
    this.waiting.push(sequence);
    this.byId.set(request.id, sequence);
  }

  /** Drops a request wherever it is (a client went away); frees its blocks. Returns whether it was known. */
  abort(id: string): boolean {
    const sequence = this.byId.get(id);
    if (!sequence) return false;
    this.byId.delete(id);
    const list = sequence.phase === 'waiting' ? this.waiting : this.running;
    list.splice(list.indexOf(sequence), 1);
    this.kv.release(sequence.blocks);
    return true;
  }

  hasWork(): boolean {
    return this.running.length > 0 || this.waiting.length > 0;
  }

  /**
   * Runs one engine step: schedules decodes, prefill chunks and admissions, and reports what happened at the step's
   * end. The step starts where the previous one ended if the engine stayed busy, otherwise when the first waiting
   * request arrived (at the latest `now`).
   */
  step(now: number): StepResult {
    // An idle engine starts when the first waiting request arrived, not when the caller got round to stepping, so
    // event-loop latency never shows up as modelled queueing.
    const head = this.waiting[0];
    const start = this.busy ? this.clock : Math.max(this.clock, head ? Math.min(head.arrival, now) : now);
    const result: StepResult = {
      start,
      end: start,
      admitted: [],
      emitted: [],
      finished: [],
      prefillTokens: 0,
      decodeSeqs: 0,
      loraLoads: 0,
    };
    let budget = this.options.maxNumBatchedTokens;
    // Running sequences first, as vLLM does: one token for each decode, then prefill chunks in admission order.
    for (const sequence of this.running) {
      sequence.chunk = 0;
      sequence.decoding = false;
      if (sequence.phase === 'decode' && budget > 0) {
        sequence.decoding = true;
        budget--;
        result.decodeSeqs++;
      }
    }
    for (const sequence of this.running) {
      if (sequence.phase === 'prefill' && budget > 0)
        budget -= this.schedulePrefill(sequence, budget, result);
    }
    this.admit(start, budget, result);

    let duration = stepDurationMs(this.options, result);
    if (duration === 0) {
      // Nothing to compute: only KV transfers in flight. Sleep until the first one lands.
      const ready = this.running.filter((s) => s.phase === 'transferring').map((s) => s.readyAt);
      duration = ready.length ? Math.max(0, Math.min(...ready) - start) : 0;
    }
    const end = start + duration;
    result.end = end;

    for (const sequence of [...this.running]) {
      if (sequence.decoding) {
        sequence.generated++;
        result.emitted.push(sequence.request.id);
      } else if (sequence.chunk > 0) {
        sequence.computed += sequence.chunk;
        if (sequence.computed >= sequence.request.promptTokens) this.firstToken(sequence, result);
      } else if (sequence.phase === 'transferring' && sequence.readyAt <= end) {
        this.firstToken(sequence, result);
      }
      if (sequence.generated >= sequence.request.outputTokens) {
        result.finished.push(sequence.request.id);
        this.abort(sequence.request.id);
      }
    }
    this.clock = end;
    this.busy = this.running.length > 0;
    return result;
  }

  stats(): EngineStats {
    const kv = this.kv.stats();
    const loras = (list: Sequence[]): string[] =>
      [...new Set(list.map((s) => s.request.lora).filter((l): l is string => Boolean(l)))].sort();
    return {
      running: this.running.length,
      waiting: this.waiting.length,
      kv,
      kvUsage: kv.usedBlocks / kv.totalBlocks,
      runningLoras: loras(this.running),
      waitingLoras: loras(this.waiting),
      prefixQueriedTokens: this.queried,
      prefixHitTokens: this.hits,
    };
  }

  private schedulePrefill(sequence: Sequence, budget: number, result: StepResult): number {
    const chunk = Math.min(sequence.request.promptTokens - sequence.computed, budget);
    sequence.chunk = chunk;
    result.prefillTokens += chunk;
    return chunk;
  }

  private firstToken(sequence: Sequence, result: StepResult): void {
    sequence.phase = 'decode';
    sequence.generated = 1;
    result.emitted.push(sequence.request.id);
    if (this.options.enablePrefixCaching) this.kv.register(sequence.blocks, sequence.request.blockHashes);
  }

  /** Admits waiting requests first come, first served; returns the token budget left. */
  private admit(start: number, budget: number, result: StepResult): number {
    const { blockSize, maxNumSeqs, maxLoras, enablePrefixCaching } = this.options;
    const skipped: Sequence[] = [];
    while (this.waiting.length > 0 && this.running.length < maxNumSeqs && budget > 0) {
      const sequence = this.waiting[0] as Sequence;
      if (sequence.arrival > start) break;
      const { request } = sequence;
      const active = new Set(this.running.map((s) => s.request.lora).filter(Boolean));
      if (request.lora && !active.has(request.lora) && active.size >= maxLoras) {
        // vLLM skips a request whose adapter cannot join this batch and keeps looking behind it.
        skipped.push(this.waiting.shift() as Sequence);
        continue;
      }
      // At least one prompt token is always computed, so a fully cached prompt still leaves its last block.
      const maxHits = Math.floor((request.promptTokens - 1) / blockSize);
      const hits = enablePrefixCaching
        ? Math.min(this.kv.cachedPrefixBlocks(request.blockHashes), maxHits)
        : 0;
      const fresh = this.blocksNeeded(request) - hits;
      // Head-of-line blocking: when the first request does not fit, later ones wait too (FCFS).
      if (!this.kv.canAllocate(request.blockHashes, hits, fresh)) break;
      this.waiting.shift();
      sequence.blocks = this.kv.allocate(request.blockHashes, hits, fresh);
      const cachedTokens = hits * blockSize;
      this.queried += request.promptTokens;
      this.hits += cachedTokens;
      sequence.computed = cachedTokens;
      this.running.push(sequence);
      result.admitted.push({ id: request.id, cachedTokens, queuedMs: start - sequence.arrival });
      if (request.lora) result.loraLoads += this.loadLora(request.lora, active);
      if (request.remotePrefill) {
        sequence.phase = 'transferring';
        sequence.readyAt = start + kvTransferMs(this.options, request.promptTokens - cachedTokens);
        sequence.computed = request.promptTokens;
      } else {
        sequence.phase = 'prefill';
        budget -= this.schedulePrefill(sequence, budget, result);
      }
    }
    this.waiting.unshift(...skipped);
    return budget;
  }

  /** Makes an adapter resident, evicting the least recently used idle one; returns 1 if it had to be loaded. */
  private loadLora(name: string, active: ReadonlySet<string | undefined>): number {
    const index = this.residentLoras.indexOf(name);
    if (index >= 0) {
      this.residentLoras.splice(index, 1);
      this.residentLoras.push(name);
      return 0;
    }
    if (this.residentLoras.length >= this.options.maxLoras) {
      const victim = this.residentLoras.findIndex((l) => !active.has(l));
      this.residentLoras.splice(victim < 0 ? 0 : victim, 1);
    }
    this.residentLoras.push(name);
    return 1;
  }
}

/**
 * Steps `model` until its clock reaches `until` or it has nothing left to do, handing every step to `onStep`. With
 * it a caller can interleave its own decisions with several engines in modelled time: advance every engine to the
 * next arrival, look at their {@link PerformanceModel.stats}, decide, `submit`, repeat. A step that starts before
 * `until` may end after it; requests submitted meanwhile join the next step, as they do in the running simulator.
 *
 * @example for (const e of engines) advanceUntil(e, arrival.at, record); // then route the arrival
 */
export function advanceUntil(
  model: PerformanceModel,
  until: number,
  onStep: (step: StepResult) => void,
): void {
  while (model.hasWork() && model.now < until) {
    const step = model.step(until);
    onStep(step);
    if (step.end === step.start && step.admitted.length === 0 && step.emitted.length === 0)
      throw new Error(`the engine made no progress at ${step.start} ms`);
  }
}

/** One request of a trace for {@link simulate}. */
export interface TraceArrival extends EngineRequest {
  /** Arrival time in modelled milliseconds. */
  at: number;
}

/** What {@link simulate} reports for each request of a trace. All times are modelled milliseconds. */
export interface TraceOutcome {
  id: string;
  arrival: number;
  admittedAt: number;
  cachedTokens: number;
  firstTokenAt: number;
  finishedAt: number;
  /** Time to first token. */
  ttft: number;
  /** Gaps between consecutive tokens. */
  interTokenMs: number[];
}

/**
 * Runs a whole trace through a fresh engine without any clock: the pure form of the performance model, used by
 * the table-driven tests and handy for exploring the model's knobs. Arrivals that come during a step join the
 * queue for the next one, as they do in the running simulator.
 *
 * @example simulate(options, [{ id: 'a', at: 0, promptTokens: 100, blockHashes: [], outputTokens: 10 }])
 */
export function simulate(options: PerformanceOptions, trace: readonly TraceArrival[]): TraceOutcome[] {
  const model = new PerformanceModel(options);
  const arrivals = [...trace].sort((a, b) => a.at - b.at);
  const outcomes = new Map<string, TraceOutcome & { tokens: number[] }>();
  let next = 0;
  const admit = (until: number): void => {
    while (next < arrivals.length && (arrivals[next] as TraceArrival).at <= until) {
      const { at, ...request } = arrivals[next++] as TraceArrival;
      model.submit(request, at);
      outcomes.set(request.id, {
        id: request.id,
        arrival: at,
        admittedAt: NaN,
        cachedTokens: 0,
        firstTokenAt: NaN,
        finishedAt: NaN,
        ttft: NaN,
        interTokenMs: [],
        tokens: [],
      });
    }
  };
  while (next < arrivals.length || model.hasWork()) {
    if (!model.hasWork()) admit((arrivals[next] as TraceArrival).at);
    admit(model.now);
    const step = model.step(Math.max(model.now, (arrivals[next - 1] as TraceArrival).at));
    if (step.end === step.start && step.admitted.length === 0 && step.emitted.length === 0)
      throw new Error(`the engine made no progress at ${step.start} ms`);
    for (const a of step.admitted) {
      const outcome = outcomes.get(a.id) as TraceOutcome;
      outcome.admittedAt = step.start;
      outcome.cachedTokens = a.cachedTokens;
    }
    for (const id of step.emitted) outcomes.get(id)?.tokens.push(step.end);
    for (const id of step.finished) (outcomes.get(id) as TraceOutcome).finishedAt = step.end;
  }
  return [...outcomes.values()].map(({ tokens, ...outcome }) => ({
    ...outcome,
    firstTokenAt: tokens[0] ?? NaN,
    ttft: (tokens[0] ?? NaN) - outcome.arrival,
    interTokenMs: tokens.slice(1).map((t, i) => t - (tokens[i] as number)),
  }));
}
