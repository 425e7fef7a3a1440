/**
 * @module epp/plugins/prefill-header-handler
 * `prefill-header-handler`: when the prefill profile chose an endpoint, adds `x-prefiller-host-port: ip:port` to the
 * request so the decode side (vLLM's P/D connector sidecar) fetches the KV-cache from there.
 */
import type { PreRequest, SchedulingResult } from '../types.js';

export const PREFILL_HEADER = 'x-prefiller-host-port';

export function prefillHeaderHandler(name: string, prefillProfile = 'prefill'): PreRequest {
  return {
    type: 'prefill-header-handler',
    name,
    preRequest(_context, result: SchedulingResult): void {
      const prefill = result.results.get(prefillProfile)?.targets[0];
      if (prefill) result.headers[PREFILL_HEADER] = prefill.address;
    },
  };
}
