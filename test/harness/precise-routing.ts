/**
 * What the precise prefix-cache routing tests share: llm-d-router's precise pipeline as an EndpointPickerConfig
 * (token-producer rendering on the simulator → precise-prefix-cache-producer on its KV events → prefix-cache-scorer),
 * and prompts the simulator's dummy tokenizer reads as one token per word.
 */

/**
 * The EndpointPickerConfig for `model`: the events socket on an ephemeral port, blocks of 16 tokens, the prefix scorer
 * weighted well above the queue. `prefixStore: false` renders on every request's path (no token-producer prefix store).
 */
export function preciseEppConfig(model: string, { prefixStore = true } = {}): string {
  return `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: token-producer
  parameters:
    modelName: ${model}
    vllm: { endpointDiscovery: {} }${prefixStore ? '' : '\n    prefixStore: { enabled: false }'}
- type: precise-prefix-cache-producer
  parameters:
    tokenProcessorConfig: { blockSize: 16 }
    kvEventsConfig: { zmqEndpoint: "tcp://127.0.0.1:0" }
- type: prefix-cache-scorer
  parameters: { prefixMatchInfoProducerName: precise-prefix-cache-producer }
- type: queue-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - { pluginRef: prefix-cache-scorer, weight: 10 }
  - { pluginRef: queue-scorer, weight: 1 }
  - { pluginRef: max-score-picker }
`;
}

/** A prompt of `n` distinct words: one token each for the simulator's dummy tokenizer (all word characters). */
export const prompt = (tag: string, n = 300): string =>
  Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');
