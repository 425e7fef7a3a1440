/**
 * @module test/harness/endpoints
 * Builders of endpoint state for the unit tests beside the code (not exported from the package index).
 */
import {
  CycleState,
  emptyMetrics,
  type Endpoint,
  type EndpointMetrics,
  type EndpointRole,
  type SchedulingContext,
  type SchedulingResult,
} from '../../src/epp/types.js';

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
    inFlightTokens: 0,
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

/**
 * A scheduling context for one request with `prompt` (model `m`), an empty cycle state and, unless given, a seeded
 * random source.
 */
export function schedulingContext(
  prompt: string,
  options: { random?: () => number; now?: number } = {},
): SchedulingContext {
  return {
    request: {
      requestId: prompt,
      model: 'm',
      targetModel: 'm',
      prompt,
      criticality: 'Standard',
      headers: {},
    },
    state: new CycleState(),
    now: options.now ?? 1_000_000,
    random: options.random ?? seededRandom(1),
  };
}

/** The result of a request routed to `target` by the one profile `profile`. */
export function routedTo(target: Endpoint, profile = 'default'): SchedulingResult {
  return {
    primaryProfile: profile,
    results: new Map([[profile, { profile, targets: [target] }]]),
    headers: {},
  };
}
