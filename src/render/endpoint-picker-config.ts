/**
 * @module render/endpoint-picker-config
 * The EndpointPickerConfig a managed Endpoint Picker runs when the service gives none, in the format llm-d and
 * GIE use (plugins by type, scheduling profiles that weight them). Single pool: queue 2, KV cache 2, prefix
 * cache 3, max-score picker. Prefill/decode: a profile handler that sends a request to a prefill endpoint only
 * when its uncached prompt is long enough, and one profile per role.
 */

const SCORERS = [
  { pluginRef: 'queue-scorer', weight: 2 },
  { pluginRef: 'kv-cache-utilization-scorer', weight: 2 },
  { pluginRef: 'prefix-cache-scorer', weight: 3 },
];

const SCORER_PLUGINS = [
  { type: 'queue-scorer' },
  { type: 'kv-cache-utilization-scorer' },
  { type: 'prefix-cache-scorer' },
];

export function defaultEndpointPickerConfig(): Record<string, unknown> {
  return {
    apiVersion: 'inference.networking.x-k8s.io/v1alpha1',
    kind: 'EndpointPickerConfig',
    plugins: [...SCORER_PLUGINS, { type: 'max-score-picker' }],
    schedulingProfiles: [{ name: 'default', plugins: [...SCORERS, { pluginRef: 'max-score-picker' }] }],
  };
}

export function prefillDecodeEndpointPickerConfig(): Record<string, unknown> {
  return {
    apiVersion: 'inference.networking.x-k8s.io/v1alpha1',
    kind: 'EndpointPickerConfig',
    plugins: [
      { type: 'prefill-header-handler' },
      { type: 'prefill-filter' },
      { type: 'decode-filter' },
      ...SCORER_PLUGINS,
      { type: 'max-score-picker' },
      { type: 'pd-profile-handler', parameters: { threshold: 256 } },
    ],
    schedulingProfiles: [
      {
        name: 'prefill',
        plugins: [{ pluginRef: 'prefill-filter' }, ...SCORERS, { pluginRef: 'max-score-picker' }],
      },
      {
        name: 'decode',
        plugins: [{ pluginRef: 'decode-filter' }, ...SCORERS, { pluginRef: 'max-score-picker' }],
      },
    ],
  };
}
