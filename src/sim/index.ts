/**
 * @module sim
 * A vLLM-compatible model-server simulator: the OpenAI endpoints, vLLM's metrics, and a deterministic performance
 * model (bounded batch, waiting queue, prefix-cached KV blocks with LRU eviction, LoRA slots, prefill/decode roles)
 * so that routing decisions have the consequences they would have on real GPUs.
 */
export {
  startSimulator,
  podHeader,
  prefillerHeader,
  prefillPodHeader,
  type RunningSimulator,
} from './server.js';
export {
  defaultSimulatorOptions,
  flagName,
  parseLoraModules,
  resolveSimulatorOptions,
  type FailureKind,
  type LoraModule,
  type PerformanceOptions,
  type SimRole,
  type SimulatorOptions,
} from './options.js';
export {
  EngineRejection,
  PerformanceModel,
  advanceUntil,
  kvTransferMs,
  simulate,
  stepDurationMs,
  type EngineRequest,
  type TraceArrival,
  type TraceOutcome,
  type EngineStats,
  type StepResult,
} from './performance-model.js';
export { normalizeHostPort } from './prefill-allow-list.js';
export { KvCache, type KvCacheStats } from './kv-cache.js';
export { blockHashes, outputTokens, seededRandom, tokenize, type Random } from './tokens.js';
