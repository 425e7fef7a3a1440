/**
 * @module epp/plugins/legacy-tokenizers
 * The tokenizers llm-d configs name that run inside upstream's EPP: token-producer's `udsTokenizerConfig` (a gRPC
 * tokenizer sidecar on a Unix socket, deprecated upstream) and the deprecated precise-prefix-cache-scorer's
 * `indexerConfig.tokenizersPoolConfig` (`modelName` with an `hf`, `local` or `uds` tokenizer). Both give the served
 * model's own token ids. This EPP has neither an in-process tokenizer nor a UDS client; what it has with the same
 * result is token-producer's `vllm` backend rendering the request at the pool's model servers (the served model's
 * tokenizer and chat template). So these configs map onto that, with a warning saying so.
 */
import { isRecord } from '../is-record.js';
import type { Parameters } from './parameters.js';

/** Where the substitute tokens come from, for the warnings. */
export const RENDER_ON_POOL =
  "the prompt is rendered by the pool's model servers instead (/v1/completions/render, /v1/chat/completions/render), as token-producer's `vllm: {endpointDiscovery: {}}` does: the served model's own tokens";

/**
 * token-producer's `udsTokenizerConfig`: the socket file when the UDS backend is on (upstream turns it on by a
 * non-empty `socketFile`), else undefined. Other fields are not read: there is no UDS client here.
 */
export function udsTokenizerSocket(p: Parameters): string | undefined {
  const raw = p.raw('udsTokenizerConfig');
  if (raw === undefined || raw === null) return undefined;
  if (!isRecord(raw)) {
    p.problem(
      'udsTokenizerConfig',
      'must be a mapping, e.g. {socketFile: /tmp/tokenizer/tokenizer-uds.socket}',
    );
    return undefined;
  }
  const socket = raw['socketFile'];
  if (socket === undefined || socket === null || socket === '') return undefined;
  if (typeof socket !== 'string') {
    p.problem('udsTokenizerConfig.socketFile', 'must be a path');
    return undefined;
  }
  return socket;
}

/** What a tokenizersPoolConfig asks for; only the model's name matters here (the renderer knows its model). */
export interface TokenizersPool {
  readonly modelName: string;
}

/**
 * precise-prefix-cache-scorer's `indexerConfig.tokenizersPoolConfig`: a mapping whose `modelName` is required, as
 * upstream's PluginFactory requires it ("modelName is required when indexerConfig.tokenizersPoolConfig is set").
 * Its tokenizer settings (`hf`, `local`, `uds`, `workersCount`, …) are not read.
 */
export function tokenizersPool(p: Parameters, path: string, raw: unknown): TokenizersPool | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isRecord(raw)) {
    p.problem(path, 'must be a mapping with modelName (and hf, local or uds)');
    return undefined;
  }
  const modelName = raw['modelName'];
  if (typeof modelName !== 'string' || modelName === '') {
    p.problem(
      `${path}.modelName`,
      'is required when tokenizersPoolConfig is set (as upstream), a model name',
    );
    return undefined;
  }
  return { modelName };
}
