/**
 * @module test/harness/endpoints
 * Builders of endpoint state for the unit tests beside the code (not exported from the package index).
 */
import { emptyMetrics, type Endpoint, type EndpointMetrics, type EndpointRole } from '../../src/epp/types.js';

export function endpoint(
  address: string,
  metrics: Partial<EndpointMetrics> = {},
  role: EndpointRole = 'both',
  now = 1_000_000,
): Endpoint {
  return {
    address,
    name: address,
    role,
    labels: { 'llm-d.ai/role': role },
    metrics: { ...emptyMetrics(), updatedAt: now, ...metrics },
    inFlight: 0,
    stale: false,
  };
}

/** A deterministic random source (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
