/**
 * @module render/endpoint-picker-config
 * The EndpointPickerConfig a managed Endpoint Picker runs when the service gives none, in the format llm-d and
 * GIE use (plugins by type, scheduling profiles that weight them). The renderer embeds it in the EPP Deployment
 * (`--config-text`) and `llmisvc epp` falls back to it, so both read this one copy.
 */

/** Weights of a single-profile config's three scorers. */
export interface ScorerWeights {
  queue: number;
  kvCache: number;
  prefix: number;
}

/** A single-profile config: queue, KV-cache and prefix-cache scorers with these weights, then the max-score picker. */
export function weightedEndpointPickerConfig(weights: ScorerWeights): string {
  return `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
  - type: single-profile-handler
  - type: queue-scorer
  - type: kv-cache-utilization-scorer
  - type: prefix-cache-scorer
    parameters:
      hashBlockSize: 64
      maxPrefixBlocksToMatch: 256
      lruCapacityPerServer: 31250
  - type: max-score-picker
schedulingProfiles:
  - name: default
    plugins:
      - pluginRef: queue-scorer
        weight: ${weights.queue}
      - pluginRef: kv-cache-utilization-scorer
        weight: ${weights.kvCache}
      - pluginRef: prefix-cache-scorer
        weight: ${weights.prefix}
      - pluginRef: max-score-picker
`;
}

/** The config llmisvc uses when none is given: queue 2, KV-cache 2, prefix 3, max-score picker. */
export const defaultEndpointPickerConfig = weightedEndpointPickerConfig({ queue: 2, kvCache: 2, prefix: 3 });

/**
 * The prefill/decode config: decode runs first; when the uncached part of the prompt is at least `threshold`
 * characters a prefill endpoint is chosen too and named in `x-prefiller-host-port`.
 */
export const prefillDecodeEndpointPickerConfig = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
  - type: pd-profile-handler
    parameters:
      threshold: 256
      hashBlockSize: 64
  - type: prefill-header-handler
  - type: prefill-filter
  - type: decode-filter
  - type: queue-scorer
  - type: kv-cache-utilization-scorer
  - type: prefix-cache-scorer
    parameters:
      hashBlockSize: 64
      maxPrefixBlocksToMatch: 256
      lruCapacityPerServer: 31250
  - type: max-score-picker
schedulingProfiles:
  - name: prefill
    plugins:
      - pluginRef: prefill-filter
      - pluginRef: queue-scorer
        weight: 2
      - pluginRef: kv-cache-utilization-scorer
        weight: 2
      - pluginRef: prefix-cache-scorer
        weight: 3
      - pluginRef: max-score-picker
  - name: decode
    plugins:
      - pluginRef: decode-filter
      - pluginRef: queue-scorer
        weight: 2
      - pluginRef: kv-cache-utilization-scorer
        weight: 2
      - pluginRef: prefix-cache-scorer
        weight: 3
      - pluginRef: max-score-picker
`;
