/**
 * @module controller/events
 * Kubernetes Events the way client-go's recorder writes them, so that a controller stuck in a loop (drift it keeps
 * correcting, an error it keeps retrying) cannot flood the API server or bury other events:
 *
 * - **Spam filter**: a token bucket per involved object and source (burst 25, one more every 5 minutes); events over
 *   the budget are dropped, as client-go's `EventSourceObjectSpamFilter` does.
 * - **Aggregation**: after 10 events with the same object, type and reason but different messages within 10 minutes,
 *   further ones become a single event "(combined from similar events): <latest message>" (`EventAggregator`).
 * - **De-duplication**: an event identical to one already recorded (same object, type, reason, message) bumps that
 *   Event's `count` and `lastTimestamp` with a patch instead of creating another object (`eventLogger`).
 *
 * The decisions are in `EventCorrelator`, a pure class with the clock passed in; `EventRecorder` does the API calls.
 */
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from '../kube/index.js';
import { CORE_RESOURCES, isNotFound } from '../kube/index.js';

export type EventType = 'Normal' | 'Warning';

/** The object an event is about (its `involvedObject`). */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string };
}

export interface EventInput {
  subject: EventSubject;
  type: EventType;
  reason: string;
  message: string;
}

export interface CorrelatorOptions {
  /** Events an object may get at once (client-go: 25). */
  burst?: number;
  /** One token comes back this often (client-go: 5 minutes). */
  refillMs?: number;
  /** Distinct messages of one reason before they are combined (client-go: 10). */
  maxSimilar?: number;
  /** Window in which similar events count together (client-go: 10 minutes). */
  similarWindowMs?: number;
  /** Entries kept per cache (client-go: 4096). */
  cacheSize?: number;
}

/** What to do with one event: drop it, create a new Event, or bump the count of an existing one. */
export type Correlation =
  | { action: 'drop' }
  | { action: 'create'; key: string; message: string; count: 1 }
  | { action: 'patch'; key: string; name: string; message: string; count: number; firstTimestamp: string };

interface Recorded {
  name: string;
  count: number;
  firstTimestamp: string;
}

const COMBINED = '(combined from similar events): ';

/** A Map that forgets its oldest entry beyond `size`, as client-go's LRU caches do. */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }
  override set(key: K, value: V): this {
    this.delete(key);
    super.set(key, value);
    if (this.size > this.limit) this.delete(this.keys().next().value as K);
    return this;
  }
}

function objectId(subject: EventSubject): string {
  const m = subject.metadata;
  return [subject.apiVersion, subject.kind, m.namespace ?? '', m.name, m.uid ?? ''].join('\u0000');
}

/**
 * Decides, for each event, whether to drop, create or bump it. Call `correlate` before writing and `recorded`
 * after a successful create; `forget` when the Event object turned out to be gone.
 *
 * @example
 * const c = new EventCorrelator();
 * c.correlate(event, Date.now()); // { action: 'create', … } the first time
 * c.recorded(key, 'svc.17a3…', now); // after the API server created it
 * c.correlate(event, Date.now()); // { action: 'patch', count: 2, … } for the same event again
 */
export class EventCorrelator {
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly maxSimilar: number;
  private readonly similarWindowMs: number;
  private readonly buckets: BoundedMap<string, { tokens: number; at: number }>;
  private readonly similar: BoundedMap<string, { messages: Set<string>; at: number }>;
  private readonly events: BoundedMap<string, Recorded>;

  constructor(options: CorrelatorOptions = {}) {
    this.burst = options.burst ?? 25;
    this.refillMs = options.refillMs ?? 5 * 60_000;
    this.maxSimilar = options.maxSimilar ?? 10;
    this.similarWindowMs = options.similarWindowMs ?? 10 * 60_000;
    const size = options.cacheSize ?? 4096;
    this.buckets = new BoundedMap(size);
    this.similar = new BoundedMap(size);
    this.events = new BoundedMap(size);
  }

  correlate(event: EventInput, now: number): Correlation {
    const object = objectId(event.subject);
    if (!this.take(object, now)) return { action: 'drop' };
    const similarKey = [object, event.type, event.reason].join('\u0000');
    let group = this.similar.get(similarKey);
    if (!group || now - group.at > this.similarWindowMs) group = { messages: new Set(), at: now };
    group.messages.add(event.message);
    group.at = now;
    this.similar.set(similarKey, group);
    const combined = group.messages.size > this.maxSimilar;
    const key = combined ? similarKey : [similarKey, event.message].join('\u0000');
    const message = combined ? COMBINED + event.message : event.message;
    const seen = this.events.get(key);
    if (!seen) return { action: 'create', key, message, count: 1 };
    return {
      action: 'patch',
      key,
      name: seen.name,
      message,
      count: seen.count + 1,
      firstTimestamp: seen.firstTimestamp,
    };
  }

  /** Remembers the Event object written for `key` (after a create or a patch). */
  recorded(key: string, name: string, count: number, firstTimestamp: string): void {
    this.events.set(key, { name, count, firstTimestamp });
  }

  /** Forgets the Event object of `key` (it expired or was deleted): the next one is created afresh. */
  forget(key: string): void {
    this.events.delete(key);
  }

  private take(object: string, now: number): boolean {
    const bucket = this.buckets.get(object) ?? { tokens: this.burst, at: now };
    const refilled = Math.floor((now - bucket.at) / this.refillMs);
    bucket.tokens = Math.min(this.burst, bucket.tokens + refilled);
    // A full bucket accrues nothing; otherwise keep the fraction of a period already waited.
    bucket.at = bucket.tokens >= this.burst ? now : bucket.at + refilled * this.refillMs;
    this.buckets.set(object, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens--;
    return true;
  }
}

export interface EventRecorderOptions {
  client: KubeClient;
  logger: Logger;
  /** `source.component` and `reportingComponent`. */
  component: string;
  /** `reportingInstance`. */
  instance: string;
  correlator?: EventCorrelator;
  /** The clock (tests pass their own). */
  now?: () => number;
}

const timestamp = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Writes Events through an `EventCorrelator`; failures are logged, never thrown (events are best effort). */
export class EventRecorder {
  private readonly correlator: EventCorrelator;
  private readonly now: () => number;

  constructor(private readonly options: EventRecorderOptions) {
    this.correlator = options.correlator ?? new EventCorrelator();
    this.now = options.now ?? Date.now;
  }

  async record(event: EventInput): Promise<void> {
    const { client, logger } = this.options;
    const now = this.now();
    const decision = this.correlator.correlate(event, now);
    const subject = event.subject.metadata;
    logger.info(
      { object: `${subject.namespace ?? ''}/${subject.name}`, reason: event.reason, type: event.type },
      event.message,
    );
    if (decision.action === 'drop') {
      logger.debug({ reason: event.reason }, 'event dropped by the spam filter');
      return;
    }
    try {
      if (decision.action === 'patch') {
        try {
          await client.mergePatch(CORE_RESOURCES.event, subject.namespace, decision.name, {
            count: decision.count,
            lastTimestamp: timestamp(now),
            message: decision.message.slice(0, 1024),
          });
          this.correlator.recorded(decision.key, decision.name, decision.count, decision.firstTimestamp);
          return;
        } catch (error) {
          if (!isNotFound(error)) throw error;
          this.correlator.forget(decision.key); // The Event expired (1 h TTL by default): start a new one.
        }
      }
      const created = await client.create<KubeObject>(
        CORE_RESOURCES.event,
        this.eventObject(event, decision.message, now),
      );
      this.correlator.recorded(decision.key, created.metadata.name, 1, timestamp(now));
    } catch (error) {
      logger.debug({ err: (error as Error).message }, 'cannot record event');
    }
  }

  private eventObject(event: EventInput, message: string, now: number): KubeObject {
    const s = event.subject;
    const at = timestamp(now);
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${s.metadata.name}.${now.toString(16)}${Math.random().toString(16).slice(2, 8)}`,
        namespace: s.metadata.namespace,
      },
      involvedObject: {
        apiVersion: s.apiVersion,
        kind: s.kind,
        name: s.metadata.name,
        namespace: s.metadata.namespace,
        uid: s.metadata.uid,
      },
      reason: event.reason,
      message: message.slice(0, 1024),
      type: event.type,
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
      source: { component: this.options.component },
      reportingComponent: this.options.component,
      reportingInstance: this.options.instance,
    };
  }
}
