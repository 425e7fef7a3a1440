/**
 * @module epp/plugins/token-producer
 * `token-producer` (llm-d-router): the prompt's token ids for the precise prefix-cache producer, from one of two
 * backends, as llm-d-router offers them:
 *
 * - `estimate` (the default): no tokenizer; the prompt's UTF-8 bytes packed four to a "token". Its ids are not the
 *   model's, so blocks never match what the model servers report; it keeps the pipeline working without a
 *   tokenizer (as upstream warns, precise routing needs `vllm`).
 * - `vllm`: the model server's own tokenizer through its render endpoints (`/v1/completions/render`,
 *   `/v1/chat/completions/render`), given the request body unchanged, at `vllm.url` or at the pool's endpoints in turn
 *   (`vllm.endpointDiscovery`). llm-d-inference-sim serves the same endpoints.
 *
 * A render that fails or times out leaves the request without tokens (scored by the other scorers), as upstream.
 */
import { Agent, request } from 'undici';
import type { Endpoint, RequestDataInput, RequestDataPreparer } from '../types.js';
import type { Parameters } from './parameters.js';

/** Cycle-state key of the request's tokens. */
export const TOKENIZED_PROMPT = 'token-producer/tokens';

export interface TokenizedPrompt {
  readonly tokens: ArrayLike<number>;
  readonly source: 'render' | 'estimate';
}

export interface TokenProducerOptions {
  backend: 'estimate' | 'vllm';
  modelName: string | undefined;
  /** One render URL (`vllm.url`); undefined with endpoint discovery. */
  url: string | undefined;
  endpointDiscovery: boolean;
  timeoutMs: number;
  chatTimeoutMs: number;
  /** Largest render answer read. */
  maxResponseBytes: number;
}

export type TokenProducer = RequestDataPreparer & {
  readonly options: TokenProducerOptions;
  /** Renders that failed, by reason (for metrics and tests). */
  readonly failures: Map<string, number>;
};

/** llm-d's tokenizer-free estimate: UTF-8 bytes, four per token id. */
export function estimateTokens(prompt: string): Uint32Array {
  const bytes = Buffer.from(prompt, 'utf8');
  const out = new Uint32Array(Math.ceil(bytes.length / 4));
  for (let i = 0; i < bytes.length; i++) out[i >> 2]! |= bytes[i]! << ((i & 3) * 8);
  return out;
}

const RENDER_PATHS: Readonly<Record<string, string>> = {
  '/v1/completions': '/v1/completions/render',
  '/v1/chat/completions': '/v1/chat/completions/render',
};

/** The token ids in a render answer: `{token_ids}` (chat) or `[{token_ids}]` (completions, one per prompt). */
export function tokensOfRenderAnswer(answer: unknown): number[] | undefined {
  const first = Array.isArray(answer) ? answer[0] : answer;
  if (typeof first !== 'object' || first === null) return undefined;
  const ids = (first as Record<string, unknown>)['token_ids'];
  if (!Array.isArray(ids)) return undefined;
  for (const t of ids)
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0xffffffff) return undefined;
  return ids as number[];
}

export function tokenProducer(name: string, options: TokenProducerOptions): TokenProducer {
  const failures = new Map<string, number>();
  const fail = (reason: string) => failures.set(reason, (failures.get(reason) ?? 0) + 1);
  // Keep-alive connections to the renderer; a render is on every request's path.
  const agent =
    options.backend === 'vllm' ? new Agent({ keepAliveTimeout: 30_000, connections: 64 }) : undefined;
  let next = 0;

  function renderBase(endpoints: readonly Endpoint[]): string | undefined {
    if (options.url !== undefined) return options.url.replace(/\/+$/, '');
    if (endpoints.length === 0) return undefined;
    const endpoint = endpoints[next++ % endpoints.length]!;
    return `http://${endpoint.address}`;
  }

  async function render(
    input: RequestDataInput,
    endpoints: readonly Endpoint[],
  ): Promise<number[] | undefined> {
    // The gateway may route on a prefix (`/ns/name/v1/completions`) that it strips on the way to the server.
    const full = input.path.split('?')[0]!.replace(/\/+$/, '');
    const path = Object.keys(RENDER_PATHS).find((p) => full === p || full.endsWith(p));
    if (path === undefined) return undefined;
    const renderPath = RENDER_PATHS[path]!;
    const base = renderBase(endpoints);
    if (base === undefined) return (fail('no renderer'), undefined);
    const timeout = path === '/v1/chat/completions' ? options.chatTimeoutMs : options.timeoutMs;
    try {
      const answer = await request(`${base}${renderPath}`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: input.body,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of answer.body) {
        bytes += (chunk as Buffer).length;
        if (bytes > options.maxResponseBytes) {
          answer.body.destroy();
          return (fail('answer too large'), undefined);
        }
        chunks.push(chunk as Buffer);
      }
      if (answer.statusCode !== 200) return (fail(`status ${answer.statusCode}`), undefined);
      const tokens = tokensOfRenderAnswer(JSON.parse(Buffer.concat(chunks, bytes).toString('utf8')));
      if (!tokens) fail('no token_ids in the answer');
      return tokens;
    } catch (error) {
      fail((error as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable');
      return undefined;
    }
  }

  return {
    type: 'token-producer',
    name,
    options,
    failures,
    async prepareRequestData(input, endpoints, data) {
      if (options.backend !== 'vllm') return;
      const tokens = await render(input, endpoints);
      if (tokens) data.set(TOKENIZED_PROMPT, { tokens, source: 'render' } satisfies TokenizedPrompt);
    },
  };
}

/** Reads llm-d-router's token-producer parameters (the multimodal `estimate.*` tuning is accepted, not read). */
export function tokenProducerOptions(p: Parameters): TokenProducerOptions {
  const modelName = p.has('modelName') ? p.string('modelName', '') : undefined;
  const vllm = p.raw('vllm');
  p.raw('estimate');
  let backend = p.string('backend', vllm !== undefined || modelName !== undefined ? 'vllm' : 'estimate');
  if (backend !== 'vllm' && backend !== 'estimate') {
    p.problem('backend', `must be "vllm" or "estimate", got ${JSON.stringify(backend)}`);
    backend = 'estimate';
  }
  const options: TokenProducerOptions = {
    backend: backend as 'vllm' | 'estimate',
    modelName,
    url: undefined,
    endpointDiscovery: false,
    timeoutMs: 5000,
    chatTimeoutMs: 30_000,
    maxResponseBytes: 64 << 20,
  };
  if (vllm !== undefined && vllm !== null) {
    if (typeof vllm !== 'object' || Array.isArray(vllm)) {
      p.problem('vllm', 'must be a mapping ({url} or {endpointDiscovery})');
      return options;
    }
    const v = vllm as Record<string, unknown>;
    const known = [
      'url',
      'endpointDiscovery',
      'timeout',
      'mmTimeout',
      'messagesRenderMode',
      'prefillOnly',
      'caCertPath',
      'clientCertPath',
      'clientKeyPath',
      'insecureSkipVerify',
    ];
    for (const key of Object.keys(v))
      if (!known.includes(key)) p.problem(`vllm.${key}`, `unknown field (known: ${known.join(', ')})`);
    for (const key of ['caCertPath', 'clientCertPath', 'clientKeyPath'])
      if (v[key] !== undefined)
        p.problem(`vllm.${key}`, 'TLS to the renderer is not supported yet: use an http:// url');
    if (v['url'] !== undefined) {
      if (typeof v['url'] !== 'string' || !/^http:\/\/[^\s/]+/.test(v['url']))
        p.problem('vllm.url', 'must be an http:// URL of a vLLM render endpoint, e.g. http://localhost:8000');
      else options.url = v['url'];
    }
    if (v['endpointDiscovery'] !== undefined && v['endpointDiscovery'] !== null) {
      options.endpointDiscovery = true;
      const d = v['endpointDiscovery'];
      if (typeof d !== 'object' || Array.isArray(d)) p.problem('vllm.endpointDiscovery', 'must be a mapping');
      else
        for (const key of Object.keys(d))
          if (key !== 'attemptTimeout' && key !== 'loadBalancer')
            p.problem(
              `vllm.endpointDiscovery.${key}`,
              'not supported: renders go to the pool endpoints in turn, on their serving port',
            );
      if (options.url !== undefined)
        p.problem('vllm.endpointDiscovery', 'give either vllm.url or vllm.endpointDiscovery, not both');
    }
    for (const [key, field] of [
      ['timeout', 'timeoutMs'],
      ['mmTimeout', 'chatTimeoutMs'],
    ] as const) {
      const raw = v[key];
      if (raw === undefined) continue;
      const m = typeof raw === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(raw) : null;
      if (!m) p.problem(`vllm.${key}`, `must be a duration like "5s", got ${JSON.stringify(raw)}`);
      else options[field] = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
    }
    // Chat waits for the larger of the two, as upstream.
    options.chatTimeoutMs = Math.max(options.chatTimeoutMs, options.timeoutMs);
  }
  if (options.backend === 'vllm' && options.url === undefined && !options.endpointDiscovery)
    options.url = 'http://localhost:8000';
  return options;
}
