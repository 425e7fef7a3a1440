/**
 * @module epp/flow-control/controller
 * The flow controller (llm-d-router / GIE semantics): a request that arrives while the pool is saturated waits here,
 * in its priority band and its flow, instead of being sent to a model server's own queue or refused. Dispatch is
 * strict by priority (the highest band with requests goes first, while saturation is below that band's ceiling),
 * fair between flows within a band, and ordered within a flow. A request leaves the queue in exactly one way:
 * dispatched, evicted at its TTL, cancelled (its client went away) or dropped at shutdown; each is reported once.
 *
 * When dispatch is tried: on arrival, when a routed request finishes (`poke`), and on a short poll while anything
 * waits (saturation read from scraped metrics changes only when a scrape lands). One dispatch at a time re-reads
 * saturation, so requests are let go one by one as capacity frees rather than all at once.
 */
import { createBand, type Band, type BandItem, type BandSettings } from './bands.js';
import type { UsageLimit } from './policies.js';

/** How a request's time in flow control ended (upstream `QueueOutcome` names: metric label values). */
export type QueueOutcome =
  | 'Dispatched'
  | 'RejectedCapacity'
  | 'RejectedNoEndpoints'
  | 'RejectedOther'
  | 'EvictedTTL'
  | 'EvictedNoEndpoints'
  | 'EvictedContextCancelled'
  | 'EvictedOther';

export interface FlowControlSettings {
  /** Global limit on waiting requests across bands; 0 = none (upstream default). */
  readonly maxRequests: number;
  /** Global limit on waiting bytes across bands; 0 = none. */
  readonly maxBytes: number;
  /** Queue-wait budget while the pool has endpoints; 0 = no TTL (only cancellation ends a wait). */
  readonly defaultRequestTtlMs: number;
  /** Queue-wait budget while the pool has no endpoints (scale-from-zero waiting room). */
  readonly noEndpointRequestTtlMs: number;
  /** Bands configured by priority. */
  readonly bands: ReadonlyMap<number, BandSettings>;
  /** Template for priorities not configured (and for negative ones when there is no negative template). */
  readonly defaultBand: BandSettings;
  readonly defaultNegativeBand: BandSettings | undefined;
  readonly usageLimit: UsageLimit;
}

/** What the controller reads of the pool at each dispatch. */
export interface PoolState {
  /** Saturation: 1.0 is the gate, above 1.0 is oversubscription; an empty pool reads 1.0. */
  saturation: number;
  /** No endpoint at all (the no-endpoint TTL applies and refusals are 503). */
  empty: boolean;
}

export interface AdmissionRequest {
  readonly priority: number;
  readonly fairnessId: string;
  /** Counted against `maxBytes` (body plus headers). */
  readonly bytes: number;
  /** `slo-deadline-ordering-policy`'s deadline (ms on the controller's clock); Infinity = none. */
  readonly sloDeadline: number;
  /** Metric labels of the request (already bounded by the caller). */
  readonly labels: FlowLabels;
}

/** The client-derived labels of a request's flow-control metrics, bounded by the caller. */
export interface FlowLabels {
  readonly model_name: string;
  readonly target_model_name: string;
  readonly fairness_id: string;
}

/** A waiting request. */
export interface Ticket {
  /** The client went away: leave the queue now (no outcome callback follows). */
  cancel(): void;
}

/** Hooks for metrics: every outcome once, with the time spent in the queue. */
export interface FlowControlObserver {
  outcome(request: AdmissionRequest, outcome: QueueOutcome, waitedSeconds: number): void;
  dispatchCycle(seconds: number): void;
}

interface Waiting extends BandItem {
  readonly request: AdmissionRequest;
  readonly priority: number;
  readonly enqueuedAt: number;
  readonly onOutcome: (outcome: QueueOutcome) => void;
  band: Band<Waiting>;
  timer: ReturnType<typeof setTimeout> | undefined;
  done: boolean;
}

export interface FlowControllerOptions {
  /** Poll interval while requests wait (default 10 ms). */
  pollIntervalMs?: number;
  /** Dispatches per cycle before yielding to the event loop (default 64). */
  maxDispatchPerCycle?: number;
  observer?: FlowControlObserver;
  now?: () => number;
}

export class FlowController {
  private readonly bands = new Map<number, Band<Waiting>>();
  /** Band priorities, highest first. */
  private order: number[] = [];
  private total = 0;
  private totalBytes = 0;
  private seq = 0;
  private emptyRegime: boolean | undefined;
  private poll: ReturnType<typeof setInterval> | undefined;
  private dispatching = false;
  private again = false;
  private closed = false;
  private readonly pollIntervalMs: number;
  private readonly maxDispatchPerCycle: number;
  private readonly now: () => number;

  constructor(
    readonly settings: FlowControlSettings,
    private readonly pool: () => PoolState,
    private readonly options: FlowControllerOptions = {},
  ) {
    this.pollIntervalMs = options.pollIntervalMs ?? 10;
    this.maxDispatchPerCycle = options.maxDispatchPerCycle ?? 64;
    this.now = options.now ?? (() => performance.now());
    for (const [priority, band] of settings.bands) this.addBand(priority, band);
  }

  /** Requests waiting now. */
  get size(): number {
    return this.total;
  }

  /** Bytes waiting now. */
  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * Admits one request. Returns its outcome at once when there is no need to wait (`Dispatched`: go ahead) or no
   * room to (`Rejected…`); otherwise a ticket, and `onOutcome` is called later, exactly once, unless the ticket is
   * cancelled first.
   */
  admit(request: AdmissionRequest, onOutcome: (outcome: QueueOutcome) => void): QueueOutcome | Ticket {
    const now = this.now();
    if (this.closed) return this.report(request, 'RejectedOther', 0);
    const state = this.pool();
    this.noteRegime(state.empty);
    const band = this.bandFor(request.priority);
    if (!this.waitingAtOrAbove(request.priority) && state.saturation < this.ceiling(request.priority))
      return this.report(request, 'Dispatched', 0);
    const s = this.settings;
    const full =
      !band.fits(request.bytes) ||
      (s.maxRequests > 0 && this.total + 1 > s.maxRequests) ||
      (s.maxBytes > 0 && this.totalBytes + request.bytes > s.maxBytes);
    if (full) return this.report(request, state.empty ? 'RejectedNoEndpoints' : 'RejectedCapacity', 0);
    const ttl = this.ttl();
    const item: Waiting = {
      heapIndex: -1,
      seq: ++this.seq,
      edfDeadline: ttl > 0 ? now + ttl : Infinity,
      sloDeadline: request.sloDeadline,
      fairnessId: request.fairnessId,
      bytes: request.bytes,
      priority: request.priority,
      request,
      enqueuedAt: now,
      onOutcome,
      band,
      timer: undefined,
      done: false,
    };
    band.push(item);
    this.total++;
    this.totalBytes += item.bytes;
    this.arm(item, ttl);
    this.startPolling();
    return {
      cancel: () => {
        if (item.done) return;
        this.leave(item);
        this.finish(item, 'EvictedContextCancelled', false);
      },
    };
  }

  /** Capacity may have freed (a request finished): try to dispatch. */
  poke(): void {
    if (this.total > 0) this.dispatch();
  }

  /** Every band with its counts (metrics). */
  *bandStates(): Iterable<{ priority: number; size: number; bytes: number; settings: BandSettings }> {
    for (const priority of this.order) {
      const band = this.bands.get(priority)!;
      yield { priority, size: band.size, bytes: band.bytes, settings: band.settings };
    }
  }

  /** Every waiting request (metrics, at scrape time). */
  *waiting(): Iterable<AdmissionRequest> {
    for (const band of this.bands.values()) for (const item of band.items()) yield item.request;
  }

  /** Stops: every waiting request is answered (`EvictedOther`), later arrivals are refused. */
  close(): void {
    this.closed = true;
    this.stopPolling();
    for (const band of this.bands.values()) {
      for (const item of [...band.items()]) {
        this.leave(item);
        this.finish(item, 'EvictedOther', true);
      }
    }
  }

  private dispatch(): void {
    if (this.dispatching) {
      this.again = true;
      return;
    }
    this.dispatching = true;
    const started = this.now();
    let yielded = false;
    try {
      do {
        this.again = false;
        let state = this.pool();
        this.noteRegime(state.empty);
        for (let n = 0; this.total > 0; n++) {
          if (n >= this.maxDispatchPerCycle) {
            // Let the event loop breathe; the rest goes in the next turn.
            setImmediate(() => this.poke());
            yielded = true;
            break;
          }
          const band = this.topBand();
          if (!band || state.saturation >= this.ceiling(band.priority)) break;
          const item = band.pop()!;
          this.total--;
          this.totalBytes -= item.bytes;
          this.finish(item, 'Dispatched', true);
          state = this.pool();
        }
      } while (this.again && this.total > 0 && !yielded);
    } finally {
      this.dispatching = false;
      this.options.observer?.dispatchCycle((this.now() - started) / 1000);
      if (this.total === 0) this.stopPolling();
    }
  }

  private ttl(): number {
    return this.emptyRegime ? this.settings.noEndpointRequestTtlMs : this.settings.defaultRequestTtlMs;
  }

  /** Which budget is in force follows the pool; each change of regime gives every waiting request a fresh one. */
  private noteRegime(empty: boolean): void {
    if (this.emptyRegime === empty) return;
    const changed = this.emptyRegime !== undefined;
    this.emptyRegime = empty;
    if (!changed) return;
    const ttl = this.ttl();
    for (const band of this.bands.values()) for (const item of band.items()) this.arm(item, ttl);
  }

  private arm(item: Waiting, ttl: number): void {
    if (item.timer) clearTimeout(item.timer);
    item.timer = undefined;
    if (ttl <= 0) return;
    item.timer = setTimeout(() => {
      if (item.done) return;
      this.leave(item);
      this.finish(item, this.emptyRegime ? 'EvictedNoEndpoints' : 'EvictedTTL', true);
    }, ttl);
    item.timer.unref?.();
  }

  /** Takes a waiting request out of its band (not for dispatch, which pops). */
  private leave(item: Waiting): void {
    if (item.band.remove(item)) {
      this.total--;
      this.totalBytes -= item.bytes;
    }
    if (this.total === 0) this.stopPolling();
  }

  private finish(item: Waiting, outcome: QueueOutcome, notify: boolean): void {
    item.done = true;
    if (item.timer) clearTimeout(item.timer);
    item.timer = undefined;
    this.report(item.request, outcome, (this.now() - item.enqueuedAt) / 1000);
    if (notify) item.onOutcome(outcome);
  }

  private report(request: AdmissionRequest, outcome: QueueOutcome, waited: number): QueueOutcome {
    this.options.observer?.outcome(request, outcome, waited);
    return outcome;
  }

  private bandFor(priority: number): Band<Waiting> {
    const existing = this.bands.get(priority);
    if (existing) return existing;
    const s = this.settings;
    return this.addBand(
      priority,
      priority < 0 && s.defaultNegativeBand ? s.defaultNegativeBand : s.defaultBand,
    );
  }

  private addBand(priority: number, settings: BandSettings): Band<Waiting> {
    const band = createBand<Waiting>(priority, settings);
    this.bands.set(priority, band);
    this.order = [...this.bands.keys()].sort((a, b) => b - a);
    return band;
  }

  private topBand(): Band<Waiting> | undefined {
    for (const priority of this.order) {
      const band = this.bands.get(priority)!;
      if (band.size > 0) return band;
    }
    return undefined;
  }

  private waitingAtOrAbove(priority: number): boolean {
    for (const p of this.order) {
      if (p < priority) return false;
      if (this.bands.get(p)!.size > 0) return true;
    }
    return false;
  }

  /** The ceiling of `priority` among the priorities that hold requests (and itself). */
  private ceiling(priority: number): number {
    const active: number[] = [];
    let self = false;
    for (const p of this.order) {
      if (p === priority) self = true;
      if (p === priority || this.bands.get(p)!.size > 0) active.push(p);
    }
    if (!self) active.push(priority);
    return this.settings.usageLimit(priority, active);
  }

  private startPolling(): void {
    if (this.poll) return;
    this.poll = setInterval(() => this.poke(), this.pollIntervalMs);
    this.poll.unref?.();
  }

  private stopPolling(): void {
    if (!this.poll) return;
    clearInterval(this.poll);
    this.poll = undefined;
  }
}
