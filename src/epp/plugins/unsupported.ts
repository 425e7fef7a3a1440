/**
 * @module epp/plugins/unsupported
 * Plugin types that llm-d (llm-d-router, llm-d-inference-scheduler) or GIE register and this EPP does not implement,
 * each with what to use instead. A config naming one is refused with that message, so the error says "not
 * implemented here" rather than "unknown": the type is real upstream and the config may be right for upstream.
 */

/** Type → what to use instead (or why there is no equivalent). */
const LLM_D: Readonly<Record<string, string>> = {
  'session-affinity-scorer':
    'sessions are not pinned to an endpoint by header or cookie here; prefix-cache-scorer keeps a conversation on the endpoint holding its prefix',
  'session-affinity-filter':
    'sessions are not pinned to an endpoint by header or cookie here; prefix-cache-scorer keeps a conversation on the endpoint holding its prefix',
  'load-aware-scorer': 'use queue-scorer, active-request-scorer or token-load-scorer',
  'running-requests-size-scorer': 'use queue-scorer or active-request-scorer',
  'context-length-aware': 'route long prompts with label-selector-filter on a label of your choice',
  'data-parallel-profile-handler':
    'each data-parallel rank is an endpoint of its own here (one pool port per rank): use single-profile-handler',
  'dp-rank-header-handler':
    'no X-data-parallel-rank header is set: each data-parallel rank is an endpoint of its own here (one pool port per rank)',
  'encode-filter': 'endpoints have no encode role here (llm-d.ai/role is prefill, decode or both)',
  'encoder-header-handler': 'endpoints have no encode role here (llm-d.ai/role is prefill, decode or both)',
  'always-encode-decider': 'endpoints have no encode role here (llm-d.ai/role is prefill, decode or both)',
  'ed-profile-handler': 'endpoints have no encode role here: use disagg-profile-handler for prefill/decode',
  'pd-slo-pair-optimizer': 'SLO-driven prefill/decode pairing is not implemented: use disagg-profile-handler',
  'models-responder': 'the EPP does not answer /v1/models; the model servers do',
  'models-data-source': 'served models are not read from the model servers; the pool serves one model',
  'models-data-extractor': 'served models are not read from the model servers; the pool serves one model',
  'dcgm-data-source': 'GPU telemetry (DCGM) is not collected',
  'dcgm-extractor': 'GPU telemetry (DCGM) is not collected',
  'endpoint-attribute-filter': 'filter on pod labels with label-selector-filter or by-label',
  'endpoint-attribute-scorer': 'filter on pod labels with label-selector-filter or by-label',
  'agent-identity': 'agent-aware scheduling is not implemented',
  'thunder-agent': 'agent-aware scheduling is not implemented',
  'burst-prefix-cache-producer': 'use approx-prefix-cache-producer',
  'mm-embeddings-cache-producer': 'multimodal embedding caches are not tracked',
  'mm-embeddings-cache-scorer': 'multimodal embedding caches are not tracked',
  'predicted-latency-producer':
    'latency prediction is not implemented: score with prefix-cache-scorer, queue-scorer and kv-cache-utilization-scorer',
  'latency-scorer':
    'latency prediction is not implemented: score with prefix-cache-scorer, queue-scorer and kv-cache-utilization-scorer',
  'kvcache-aware-scorer':
    "llm-d-inference-scheduler's earlier precise scorer: use precise-prefix-cache-producer with prefix-cache-scorer",
  'file-discovery': 'give the endpoints with --endpoints (static) or --pool-name (Kubernetes)',
  'anthropic-parser': 'this EPP parses OpenAI requests (openai-parser)',
  'vllmhttp-parser': 'this EPP parses OpenAI requests (openai-parser)',
  'vllmgrpc-parser': 'this EPP parses OpenAI requests (openai-parser)',
  'passthrough-parser': 'this EPP parses OpenAI requests (openai-parser)',
};

/** GIE's own types (its v0.x filter chain, its latency predictor), refused the same way. */
const GIE: Readonly<Record<string, string>> = {
  'low-queue-filter': 'GIE v0.x filters are scorers now: use queue-scorer',
  'least-queue-filter': 'GIE v0.x filters are scorers now: use queue-scorer',
  'least-kv-cache-filter': 'GIE v0.x filters are scorers now: use kv-cache-utilization-scorer',
  'lora-affinity-filter': 'GIE v0.x filters are scorers now: use lora-affinity-scorer',
  'decision-tree-filter':
    'GIE v0.x filters are scorers now: weigh queue-scorer, kv-cache-utilization-scorer, …',
  'latency-predictor-producer':
    'latency prediction is not implemented: score with prefix-cache-scorer, queue-scorer and kv-cache-utilization-scorer',
};

/** Every refused type with what to do instead (for the README and tests). */
export const notSupported: Readonly<Record<string, string>> = { ...LLM_D, ...GIE };

/** The refusal for a type upstream registers and this EPP does not implement; undefined for any other type. */
export function notImplementedMessage(type: string): string | undefined {
  if (Object.hasOwn(LLM_D, type))
    return `plugin type "${type}" is an llm-d plugin this EPP does not implement: ${LLM_D[type]}`;
  if (Object.hasOwn(GIE, type))
    return `plugin type "${type}" is a GIE plugin this EPP does not implement: ${GIE[type]}`;
  return undefined;
}
