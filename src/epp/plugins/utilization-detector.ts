/**
 * @module epp/plugins/utilization-detector
 * `utilization-detector` (llm-d): the saturation detector named by `flowControl.saturationDetector.pluginRef`, with
 * the thresholds the EPP sheds sheddable requests by (`queueDepthThreshold`, `kvCacheUtilThreshold`,
 * `metricsStalenessThreshold`). Referenced in a scheduling profile it is also a filter, as upstream: it drops
 * endpoints whose metrics are stale or above threshold × (1 + `headroom`), and keeps them all when that would
 * leave none (fail open, so the scorers pick the least bad).
 */
import { isStale, type SaturationThresholds } from '../saturation.js';
import type { Endpoint, Filter, Plugin, SchedulingContext } from '../types.js';

export interface SaturationDetectorPlugin extends Plugin {
  readonly thresholds: SaturationThresholds;
}

export function isSaturationDetector(p: Plugin): p is SaturationDetectorPlugin {
  return typeof (p as Partial<SaturationDetectorPlugin>).thresholds === 'object';
}

export function utilizationDetector(
  name: string,
  thresholds: SaturationThresholds,
  headroom: number,
): SaturationDetectorPlugin & Filter {
  const maxQueue = thresholds.queueDepthThreshold * (1 + headroom);
  const maxKv = Math.min(1, thresholds.kvCacheUtilThreshold * (1 + headroom));
  return {
    type: 'utilization-detector',
    name,
    thresholds,
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
