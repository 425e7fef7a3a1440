/**
 * @module epp/plugins/random-picker
 * `random-picker`: uniformly random endpoints, ignoring scores (`maxNumOfEndpoints`, default 1). Useful as a
 * baseline in benchmarks.
 */
import type { Endpoint, Picker, ScoredEndpoint } from '../types.js';

export function randomPicker(name: string, maxNumOfEndpoints = 1): Picker {
  return {
    type: 'random-picker',
    name,
    pick(context, scored: readonly ScoredEndpoint[]): Endpoint[] {
      const pool = scored.map((s) => s.endpoint);
      const picked: Endpoint[] = [];
      while (picked.length < maxNumOfEndpoints && pool.length > 0) {
        const i = Math.floor(context.random() * pool.length);
        picked.push(pool[i]!);
        pool[i] = pool[pool.length - 1]!;
        pool.pop();
      }
      return picked;
    },
  };
}
