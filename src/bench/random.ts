/**
 * @module bench/random
 * Seeded randomness for load generation: the same seed gives the same arrival times and the same prompts, so two
 * routing configurations are compared on exactly the same traffic.
 */

/** A generator of floats in [0, 1) (mulberry32). */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.floor(random() * n);
}

/**
 * Arrival times (milliseconds from the start) of a Poisson process at `qps` over `durationMs`: exponential gaps
 * with mean 1/qps. This is what makes the load open-loop: arrivals do not wait for responses.
 */
export function poissonArrivals(seed: number, qps: number, durationMs: number): number[] {
  const random = seededRandom(seed);
  const arrivals: number[] = [];
  let t = 0;
  for (;;) {
    t += (-Math.log(1 - random()) / qps) * 1000;
    if (t >= durationMs) return arrivals;
    arrivals.push(t);
  }
}
