/**
 * @module epp/saturation
 * Saturation detection, pure: the pool is saturated when no endpoint has fresh metrics with a waiting queue at or
 * below `queueDepthThreshold` and KV-cache usage at or below `kvCacheUtilThreshold`. While saturated, sheddable
 * requests are refused with 429 rather than queued behind critical ones.
 */
import type { Criticality, Endpoint } from './types.js';

export interface SaturationThresholds {
  queueDepthThreshold: number;
  kvCacheUtilThreshold: number;
  /** Metrics older than this (ms) count as stale. */
  metricsStalenessThresholdMs: number;
}

export const defaultSaturationThresholds: SaturationThresholds = {
  queueDepthThreshold: 5,
  kvCacheUtilThreshold: 0.8,
  metricsStalenessThresholdMs: 2000,
};

/** True when metrics are missing, failed or too old. */
export function isStale(endpoint: Endpoint, now: number, thresholds: SaturationThresholds): boolean {
  return (
    endpoint.stale ||
    endpoint.metrics.updatedAt === 0 ||
    now - endpoint.metrics.updatedAt > thresholds.metricsStalenessThresholdMs
  );
}

export function hasCapacity(endpoint: Endpoint, now: number, thresholds: SaturationThresholds): boolean {
  return (
    !isStale(endpoint, now, thresholds) &&
    endpoint.metrics.waitingQueueSize <= thresholds.queueDepthThreshold &&
    endpoint.metrics.kvCacheUsage <= thresholds.kvCacheUtilThreshold
  );
}

export function isSaturated(
  endpoints: readonly Endpoint[],
  now: number,
  thresholds: SaturationThresholds,
): boolean {
  for (const e of endpoints) if (hasCapacity(e, now, thresholds)) return false;
  return true;
}

/** Only Sheddable requests are shed; Critical and Standard always get scheduled when an endpoint is ready. */
export function shouldShed(criticality: Criticality, saturated: boolean): boolean {
  return saturated && criticality === 'Sheddable';
}
