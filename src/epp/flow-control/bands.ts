/**
 * @module epp/flow-control/bands
 * A priority band: the requests of one priority, in one queue per flow (fairness id). The fairness policy decides
 * which flow is served next: `global-strict` ignores flows and serves the band in one order, `round-robin` serves
 * the head of each waiting flow in turn. A flow exists only while it holds requests, so a client inventing a new
 * fairness id per request costs one small map entry per queued request and nothing once they leave.
 */
import { IndexedHeap } from './heap.js';
import { orderingComparator, type FairnessPolicy, type Ordered, type OrderingPolicy } from './policies.js';

export interface BandSettings {
  /** Most requests waiting in the band (upstream default 5000). */
  readonly maxRequests: number;
  /** Most request bytes waiting in the band (upstream default 1 GB). */
  readonly maxBytes: number;
  readonly ordering: OrderingPolicy;
  readonly fairness: FairnessPolicy;
}

export interface BandItem extends Ordered {
  readonly fairnessId: string;
  readonly bytes: number;
}

export abstract class Band<T extends BandItem> {
  size = 0;
  bytes = 0;

  constructor(
    readonly priority: number,
    readonly settings: BandSettings,
  ) {}

  /** Whether one more request of `bytes` fits within the band's own limits. */
  fits(bytes: number): boolean {
    return this.size + 1 <= this.settings.maxRequests && this.bytes + bytes <= this.settings.maxBytes;
  }

  push(item: T): void {
    this.size++;
    this.bytes += item.bytes;
    this.insert(item);
  }

  remove(item: T): boolean {
    if (!this.delete(item)) return false;
    this.size--;
    this.bytes -= item.bytes;
    return true;
  }

  pop(): T | undefined {
    const item = this.take();
    if (item) {
      this.size--;
      this.bytes -= item.bytes;
    }
    return item;
  }

  /** Every waiting request (for metrics and shutdown), in no particular order. */
  abstract items(): Iterable<T>;
  protected abstract insert(item: T): void;
  protected abstract delete(item: T): boolean;
  protected abstract take(): T | undefined;
}

/** `global-strict-fairness-policy`: one order for the whole band, flows ignored. */
class StrictBand<T extends BandItem> extends Band<T> {
  private readonly heap: IndexedHeap<T>;

  constructor(priority: number, settings: BandSettings) {
    super(priority, settings);
    this.heap = new IndexedHeap<T>(orderingComparator(settings.ordering));
  }

  items(): Iterable<T> {
    return this.heap.values();
  }
  protected insert(item: T): void {
    this.heap.push(item);
  }
  protected delete(item: T): boolean {
    return this.heap.remove(item);
  }
  protected take(): T | undefined {
    return this.heap.pop();
  }
}

/** `round-robin-fairness-policy`: the flows that wait take turns, each ordered by the band's ordering policy. */
class RoundRobinBand<T extends BandItem> extends Band<T> {
  /** Waiting flows in turn order: the first is served next, then moves to the back. */
  private readonly flows = new Map<string, IndexedHeap<T>>();
  private readonly before: (a: T, b: T) => boolean;

  constructor(priority: number, settings: BandSettings) {
    super(priority, settings);
    this.before = orderingComparator(settings.ordering);
  }

  /** How many flows wait (bounded by the requests that wait). */
  get flowCount(): number {
    return this.flows.size;
  }

  *items(): Iterable<T> {
    for (const heap of this.flows.values()) yield* heap.values();
  }
  protected insert(item: T): void {
    let heap = this.flows.get(item.fairnessId);
    if (!heap) {
      heap = new IndexedHeap<T>(this.before);
      this.flows.set(item.fairnessId, heap);
    }
    heap.push(item);
  }
  protected delete(item: T): boolean {
    const heap = this.flows.get(item.fairnessId);
    if (!heap || !heap.remove(item)) return false;
    if (heap.size === 0) this.flows.delete(item.fairnessId);
    return true;
  }
  protected take(): T | undefined {
    const first = this.flows.entries().next();
    if (first.done) return undefined;
    const [id, heap] = first.value;
    const item = heap.pop();
    this.flows.delete(id);
    if (heap.size > 0) this.flows.set(id, heap);
    return item;
  }
}

export function createBand<T extends BandItem>(priority: number, settings: BandSettings): Band<T> {
  return settings.fairness === 'round-robin-fairness-policy'
    ? new RoundRobinBand<T>(priority, settings)
    : new StrictBand<T>(priority, settings);
}
