/**
 * @module epp/flow-control/policies
 * The pure policies of flow control, under llm-d-router's plugin type names: how requests are ordered within a flow
 * (`fcfs-ordering-policy`, `edf-ordering-policy`, `slo-deadline-ordering-policy`), how flows share a priority band
 * (`global-strict-fairness-policy`, `round-robin-fairness-policy`) and how high saturation may rise before a band is
 * held back (the static limit, or `priority-holdback-policy`).
 */
import type { HeapItem } from './heap.js';

export const ORDERING_POLICIES = [
  'fcfs-ordering-policy',
  'edf-ordering-policy',
  'slo-deadline-ordering-policy',
] as const;
export type OrderingPolicy = (typeof ORDERING_POLICIES)[number];

export const FAIRNESS_POLICIES = ['global-strict-fairness-policy', 'round-robin-fairness-policy'] as const;
export type FairnessPolicy = (typeof FAIRNESS_POLICIES)[number];

/** llm-d's per-request TTFT target header, read by `slo-deadline-ordering-policy`. */
export const SLO_TTFT_HEADER = 'x-llm-d-slo-ttft-ms';

/** What the ordering policies compare. */
export interface Ordered extends HeapItem {
  /** Arrival order (ties and FCFS). */
  readonly seq: number;
  /** Enqueue time + the TTL in force then (EDF); Infinity when the request has no TTL. */
  readonly edfDeadline: number;
  /** Receipt time + `x-llm-d-slo-ttft-ms`; Infinity without a valid header. */
  readonly sloDeadline: number;
}

/** `before(a, b)`: true when `a` is dispatched before `b`. FCFS breaks every tie, as upstream. */
export function orderingComparator(policy: OrderingPolicy): (a: Ordered, b: Ordered) => boolean {
  switch (policy) {
    case 'fcfs-ordering-policy':
      return (a, b) => a.seq < b.seq;
    case 'edf-ordering-policy':
      return (a, b) => a.edfDeadline < b.edfDeadline || (a.edfDeadline === b.edfDeadline && a.seq < b.seq);
    case 'slo-deadline-ordering-policy':
      return (a, b) => a.sloDeadline < b.sloDeadline || (a.sloDeadline === b.sloDeadline && a.seq < b.seq);
  }
}

/** The SLO deadline of a request received at `receivedAt` (ms) with headers `headers`. */
export function sloDeadline(receivedAt: number, headers: Readonly<Record<string, string>>): number {
  const raw = headers[SLO_TTFT_HEADER];
  if (raw === undefined || !/^\d{1,9}$/.test(raw.trim())) return Infinity;
  return receivedAt + Number(raw.trim());
}

/**
 * The admission ceiling of a priority: dispatch from its band only while pool saturation is below it. `active` is
 * the priorities that hold requests (or are asking), highest first.
 */
export type UsageLimit = (priority: number, active: readonly number[]) => number;

/** The default: one ceiling (1.0) for every priority. */
export const staticUsageLimit: UsageLimit = () => 1;

export type HoldbackDomain = 'rank' | 'value' | 'explicit';

export interface HoldbackParameters {
  domain: HoldbackDomain;
  minCeiling: number;
  maxCeiling: number;
  /** `explicit` domain: priority → ceiling; a priority not listed is fully held back (0). */
  ceilings: ReadonlyMap<number, number>;
}

/**
 * `priority-holdback-policy` (linear shape): ceilings from `maxCeiling` for the highest active priority down to
 * `minCeiling` for the lowest, by rank or by value, or taken from an explicit map.
 */
export function priorityHoldback(p: HoldbackParameters): UsageLimit {
  return (priority, active) => {
    if (p.domain === 'explicit') return p.ceilings.get(priority) ?? 0;
    if (active.length <= 1) return p.maxCeiling;
    if (p.domain === 'rank') {
      const i = active.indexOf(priority);
      const rank = i < 0 ? active.length - 1 : i;
      return p.maxCeiling - (rank * (p.maxCeiling - p.minCeiling)) / (active.length - 1);
    }
    const high = active[0]!;
    const low = active[active.length - 1]!;
    if (high === low) return p.maxCeiling;
    const r = Math.min(1, Math.max(0, (priority - low) / (high - low)));
    return p.minCeiling + r * (p.maxCeiling - p.minCeiling);
  };
}
