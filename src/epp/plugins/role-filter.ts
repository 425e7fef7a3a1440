/**
 * @module epp/plugins/role-filter
 * `prefill-filter` and `decode-filter`: keep endpoints by their `llm-d.ai/role` pod label. Prefill keeps
 * `prefill` only; decode keeps `decode` and `both` (an unlabelled server does both, as in llm-d).
 */
import type { Endpoint, Filter } from '../types.js';

export function prefillFilter(name: string): Filter {
  return {
    type: 'prefill-filter',
    name,
    filter: (_context, endpoints: readonly Endpoint[]) => endpoints.filter((e) => e.role === 'prefill'),
  };
}

export function decodeFilter(name: string): Filter {
  return {
    type: 'decode-filter',
    name,
    filter: (_context, endpoints: readonly Endpoint[]) => endpoints.filter((e) => e.role !== 'prefill'),
  };
}
