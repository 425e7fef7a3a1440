/**
 * @module bench/random
 * Seeded randomness for load generation: the same seed gives the same arrival times and the same prompts, so two
 * routing configurations are compared on exactly the same traffic.
 */

// The simulator's seeded generator (mulberry32), so that a seed means the same sequence everywhere.
import { seededRandom, type Random } from '../sim/index.js';

export { seededRandom, type Random };

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
