/**
 * @module epp/plugins/lora-affinity-scorer
 * `lora-affinity-scorer`: prefers endpoints that already run the requested LoRA adapter (1), then those where it
 * is queued for loading (0.8), then those with a free adapter slot (0.6); full endpoints score 0. When no endpoint
 * reports LoRA state (a base-model pool) every endpoint scores 1, so the scorer is neutral.
 */
import type { Endpoint, Scorer } from '../types.js';

export function loraAffinityScorer(name: string): Scorer {
  return {
    type: 'lora-affinity-scorer',
    name,
    score(context, endpoints: readonly Endpoint[]): Float64Array {
      const scores = new Float64Array(endpoints.length).fill(1);
      const adapter = context.request.targetModel;
      for (let i = 0; i < endpoints.length; i++) {
        const m = endpoints[i]!.metrics;
        if (m.maxActiveAdapters === 0 && m.activeAdapters.size === 0) continue;
        if (m.activeAdapters.has(adapter)) scores[i] = 1;
        else if (m.waitingAdapters.has(adapter)) scores[i] = 0.8;
        else if (m.activeAdapters.size + m.waitingAdapters.size < m.maxActiveAdapters) scores[i] = 0.6;
        else scores[i] = 0;
      }
      return scores;
    },
  };
}
