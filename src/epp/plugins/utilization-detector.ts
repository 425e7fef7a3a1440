/**
 * @module epp/plugins/utilization-detector
 * `utilization-detector` (llm-d): the saturation detector named by `flowControl.saturationDetector.pluginRef`, with
 * the thresholds `queueDepthThreshold`, `kvCacheUtilThreshold` and `metricsStalenessThreshold`.
 *
 * - Without flow control, sheddable requests are refused while no endpoint has fresh metrics within the thresholds
 *   (`saturated`, this EPP's shedding test from before flow control, unchanged).
 * - With flow control, dispatch is gated by `saturation`: the mean over endpoints of
 *   max(queue / queueDepthThreshold, kv / kvCacheUtilThreshold), stale endpoints counting 1.0 and an empty pool 1.0,
 *   as upstream. The queue term adds the requests this EPP sent that the last scrape cannot show yet (in flight
 *   beyond waiting + running), upstream's scrape-lag credit, so a burst is not all let go between two scrapes.
 * - Referenced in a scheduling profile it is also a filter, as upstream: it drops endpoints whose metrics are stale
 *   or above threshold × (1 + `headroom`), and keeps them all when that would leave none (fail open).
 */
import { isSaturated, isStale, type SaturationThresholds } from '../saturation.js';
import type { Endpoint, Filter, Plugin, SchedulingContext } from '../types.js';

/** A saturation detector: the legacy shedding test and flow control's saturation signal. */
export interface SaturationDetectorPlugin extends Plugin {
  /** The thresholds of the EPP's staleness test (and, for utilization, of shedding). */
  readonly thresholds: SaturationThresholds;
  /** Without flow control: are sheddable requests refused? */
  saturated(endpoints: readonly Endpoint[], now: number): boolean;
  /** With flow control: pool saturation, 1.0 = gate (may exceed 1); an empty pool reads 1.0. */
  saturation(endpoints: readonly Endpoint[], now: number): number;
  /** Endpoints whose metrics are missing or stale (`llm_d_epp_flow_control_stale_endpoints`). */
  staleCount(endpoints: readonly Endpoint[], now: number): number;
}

export function isSaturationDetector(p: Plugin): p is SaturationDetectorPlugin {
  return typeof (p as Partial<SaturationDetectorPlugin>).saturation === 'function';
}

export function utilizationDetector(
  name: string,
  thresholds: SaturationThresholds,
  headroom: number,
): SaturationDetectorPlugin & Filter {
  const maxQueue = thresholds.queueDepthThreshold * (1 + headroom);
  const maxKv = Math.min(1, thresholds.kvCacheUtilThreshold * (1 + headroom));
  const score = (e: Endpoint, now: number): number => {
    if (isStale(e, now, thresholds)) return 1;
    const m = e.metrics;
    const credit = Math.max(0, e.inFlight - (m.waitingQueueSize + m.runningQueueSize));
    const queue = (m.waitingQueueSize + credit) / Math.max(1, thresholds.queueDepthThreshold);
    return Math.max(queue, m.kvCacheUsage / thresholds.kvCacheUtilThreshold);
  };
  return {
    type: 'utilization-detector',
    name,
    thresholds,
    saturated: (endpoints, now) => isSaturated(endpoints, now, thresholds),
    saturation(endpoints, now) {
      if (endpoints.length === 0) return 1;
      let sum = 0;
      for (const e of endpoints) sum += score(e, now);
      return sum / endpoints.length;
    },
    staleCount(endpoints, now) {
      let n = 0;
      for (const e of endpoints) if (isStale(e, now, thresholds)) n++;
      return n;
    },
    filter(context: SchedulingContext, endpoints: readonly Endpoint[]): Endpoint[] {
      const kept = endpoints.filter(
        (e) =>
          !isStale(e, context.now, thresholds) &&
          e.metrics.waitingQueueSize <= maxQueue &&
          e.metrics.kvCacheUsage <= maxKv,
      );
      return kept.length > 0 ? kept : [...endpoints];
    },
  };
}
