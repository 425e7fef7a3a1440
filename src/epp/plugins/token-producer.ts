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
 *
 * With the `vllm` backend, renders are kept off the request's path by a prefix store (token-prefix-store.ts, on by
 * default, `prefixStore.enabled: false` restores a render on every request): a prompt whose text prefix was rendered
 * before is routed at once on the tokens remembered for it, and a render of the whole prompt is sent in the
 * background (at most `prefixStore.maxRefreshes` at a time) so that the next prompt sharing it finds it. A prompt
 * with nothing remembered (or less than `minPrefixOverlapRatio` of its characters) gets no tokens (the producer's
 * estimate then matches nothing) unless its render comes back within `prefixStore.missWait` (50 ms): another EPP
 * replica may have routed the prompt's prefix, which the events know. Measured (bench:peers --cache-pressure, 2
 * replicas): without the wait 18.3 % prefix hits, with it 22.6 %, TTFT p90 unchanged.
 */
import { Agent, request } from 'undici';
import type { Endpoint, RequestDataInput, RequestDataPreparer } from '../types.js';
import { durationParameterMs } from '../go-duration.js';
import type { Parameters } from './parameters.js';
import { promptOf } from '../request.js';
import { TokenPrefixStore } from './token-prefix-store.js';
import { RENDER_ON_POOL, udsTokenizerSocket } from './legacy-tokenizers.js';
import { readAtMost } from '../../transport/index.js';

/** Cycle-state key of the request's tokens. */
export const TOKENIZED_PROMPT = 'token-producer/tokens';
/**
 * Cycle-state key of the background render of a request routed without tokens (a prompt the prefix store did not
 * know): a promise of its tokens, so the precise producer can still record where the prompt went once they come.
 */
export const PENDING_TOKENS = 'token-producer/pending';

export interface TokenizedPrompt {
  readonly tokens: ArrayLike<number>;
  readonly source: 'render' | 'estimate' | 'prefix-store';
  /** Tokens of the whole prompt when `tokens` cover only its beginning (a prefix-store hit), estimated. */
  readonly promptTokens?: number;
}

export interface PrefixStoreOptions {
  chunkChars: number;
  maxTokens: number;
  /** Least share of the prompt's characters the remembered tokens must cover to be used. */
  minPrefixOverlapRatio: number;
  /** Most background renders in flight; more are skipped. */
  maxRefreshes: number;
  /** How long a prompt the store does not know waits for its render before it is routed without tokens. */
  missWaitMs: number;
}

export interface TokenProducerOptions {
  backend: 'estimate' | 'vllm';
  /** Whether the config named the backend (`backend:`), as configs written for current llm-d-router do. */
  backendExplicit: boolean;
  modelName: string | undefined;
  /** One render URL (`vllm.url`); undefined with endpoint discovery. */
  url: string | undefined;
  endpointDiscovery: boolean;
  timeoutMs: number;
  chatTimeoutMs: number;
  /** Largest render answer read. */
  maxResponseBytes: number;
  /** Remembered renders (vllm backend); undefined = render on every request's path. */
  prefixStore: PrefixStoreOptions | undefined;
}

export type TokenProducer = RequestDataPreparer & {
  readonly options: TokenProducerOptions;
  /** Renders that failed, by reason (for metrics and tests). */
  readonly failures: Map<string, number>;
  /** Prefix-store lookups by outcome (`exact`, `prefix`, `miss`) and skipped background renders (`skipped`). */
  readonly prefixStoreStats: Map<string, number>;
  readonly store: TokenPrefixStore | undefined;
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

/**
 * The OpenAI API path of a request the server can render (a key of RENDER_PATHS), or undefined. The gateway may route
 * on a prefix (`/ns/name/v1/completions`) that it strips on the way to the server.
 */
function renderablePath(requestPath: string): string | undefined {
  const full = requestPath.split('?')[0]!.replace(/\/+$/, '');
  return Object.keys(RENDER_PATHS).find((p) => full === p || full.endsWith(p));
}

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
    const path = renderablePath(input.path);
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
      const text = await readAtMost(answer.body, options.maxResponseBytes);
      if (text === undefined) return (fail('answer too large'), undefined);
      if (answer.statusCode !== 200) return (fail(`status ${answer.statusCode}`), undefined);
      const tokens = tokensOfRenderAnswer(JSON.parse(text.toString('utf8')));
      if (!tokens) fail('no token_ids in the answer');
      return tokens;
    } catch (error) {
      fail((error as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable');
      return undefined;
    }
  }

  const store = options.prefixStore && new TokenPrefixStore(options.prefixStore);
  const prefixStoreStats = new Map<string, number>();
  const count = (what: string) => prefixStoreStats.set(what, (prefixStoreStats.get(what) ?? 0) + 1);
  let refreshing = 0;

  /** Renders in the background and remembers the answer; bounded, so a burst cannot pile renders on the servers. */
  function refresh(
    input: RequestDataInput,
    endpoints: readonly Endpoint[],
    scope: string,
    text: string,
  ): Promise<number[] | undefined> | undefined {
    if (refreshing >= options.prefixStore!.maxRefreshes) return (count('skipped'), undefined);
    refreshing++;
    return render(input, endpoints).then((tokens) => {
      refreshing--;
      if (tokens) store!.learn(scope, text, tokens);
      return tokens;
    });
  }

  return {
    type: 'token-producer',
    name,
    options,
    failures,
    prefixStoreStats,
    store,
    async prepareRequestData(input, endpoints, data) {
      if (options.backend !== 'vllm') return;
      const prompt = store && promptText(input);
      if (store === undefined || prompt === undefined) {
        const tokens = await render(input, endpoints);
        if (tokens) data.set(TOKENIZED_PROMPT, { tokens, source: 'render' } satisfies TokenizedPrompt);
        return;
      }
      const { scope, text } = prompt;
      const cached = store.lookup(scope, text);
      if (cached && cached.coveredChars >= text.length * options.prefixStore!.minPrefixOverlapRatio) {
        count(cached.exact ? 'exact' : 'prefix');
        const prepared: TokenizedPrompt = cached.exact
          ? { tokens: cached.tokens, source: 'prefix-store' }
          : {
              tokens: cached.tokens,
              source: 'prefix-store',
              promptTokens: Math.round((cached.tokens.length * text.length) / cached.coveredChars),
            };
        data.set(TOKENIZED_PROMPT, prepared);
        if (cached.exact) return;
        void refresh(input, endpoints, scope, text);
        return;
      }
      count('miss');
      const pending = refresh(input, endpoints, scope, text);
      if (!pending) return;
      // Wait a little for it: another EPP replica may have routed this prompt's prefix, which the events know.
      const waitMs = options.prefixStore!.missWaitMs;
      const tokens =
        waitMs > 0
          ? await Promise.race([
              pending,
              new Promise<undefined>((r) => setTimeout(() => r(undefined), waitMs).unref()),
            ])
          : undefined;
      if (tokens) data.set(TOKENIZED_PROMPT, { tokens, source: 'render' } satisfies TokenizedPrompt);
      else data.set(PENDING_TOKENS, pending);
    },
  };
}

const TOKEN_AFFECTING_FIELDS = [
  'model',
  'add_special_tokens',
  'add_generation_prompt',
  'continue_final_message',
  'chat_template',
  'chat_template_kwargs',
  'tools',
  'documents',
] as const;

/** The prompt's text and the scope its tokens belong to (the API path and model), or undefined if not renderable. */
function promptText(input: RequestDataInput): { scope: string; text: string } | undefined {
  const path = renderablePath(input.path);
  if (path === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(input.body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const body = json as Record<string, unknown>;
  // Fields besides the text that change the server's tokens (chat templates add tools and documents).
  let scope = path;
  for (const field of TOKEN_AFFECTING_FIELDS)
    if (body[field] !== undefined) scope += `\u0000${field}=${JSON.stringify(body[field])}`;
  return { scope, text: promptOf(path, body) };
}

/** The options of a producer rendering at the pool's model servers, with upstream's timeouts and the prefix store. */
export function renderOnPoolOptions(modelName: string | undefined): TokenProducerOptions {
  return {
    ...baseOptions('vllm', false, modelName),
    endpointDiscovery: true,
    prefixStore: defaultPrefixStore(),
  };
}

function baseOptions(
  backend: 'vllm' | 'estimate',
  backendExplicit: boolean,
  modelName: string | undefined,
): TokenProducerOptions {
  return {
    backend,
    backendExplicit,
    modelName,
    url: undefined,
    endpointDiscovery: false,
    timeoutMs: 5000,
    chatTimeoutMs: 30_000,
    maxResponseBytes: 64 << 20,
    prefixStore: undefined,
  };
}

/**
 * Reads llm-d-router's token-producer parameters (the multimodal `estimate.*` tuning is accepted, not read). The
 * deprecated `udsTokenizerConfig` (a tokenizer sidecar on a Unix socket) renders at the pool's model servers
 * instead, with a warning: see legacy-tokenizers.ts.
 */
export function tokenProducerOptions(p: Parameters): TokenProducerOptions {
  const modelName = p.has('modelName') ? p.string('modelName', '') : undefined;
  const vllm = p.raw('vllm');
  const uds = udsTokenizerSocket(p);
  p.raw('estimate');
  let backend = p.string(
    'backend',
    vllm !== undefined || modelName !== undefined || uds !== undefined ? 'vllm' : 'estimate',
  );
  if (backend !== 'vllm' && backend !== 'estimate') {
    p.problem('backend', `must be "vllm" or "estimate", got ${JSON.stringify(backend)}`);
    backend = 'estimate';
  }
  const options = baseOptions(backend as 'vllm' | 'estimate', p.has('backend'), modelName);
  if (uds !== undefined) {
    if (vllm !== undefined && vllm !== null)
      p.problem('udsTokenizerConfig', 'give either udsTokenizerConfig or vllm, not both (as upstream)');
    else if (options.backend === 'estimate')
      p.problem(
        'udsTokenizerConfig',
        'is a tokenizer, which backend estimate does not use: drop one of them',
      );
    else {
      options.endpointDiscovery = true;
      p.warn(
        'udsTokenizerConfig',
        `the UDS tokenizer sidecar (${uds}) is not supported here: ${RENDER_ON_POOL}; give vllm.url instead to render elsewhere`,
      );
    }
  }
  const store = prefixStoreOptions(p);
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
        for (const [key, value] of Object.entries(d as Record<string, unknown>))
          if (key === 'attemptTimeout') {
            const ms = durationParameterMs(value, 'positive');
            if (typeof ms === 'string') p.problem('vllm.endpointDiscovery.attemptTimeout', ms);
          } else if (key !== 'loadBalancer')
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
      const ms = durationParameterMs(raw, 'positive');
      if (typeof ms === 'string') p.problem(`vllm.${key}`, ms);
      else options[field] = ms;
    }
    // Chat waits for the larger of the two, as upstream.
    options.chatTimeoutMs = Math.max(options.chatTimeoutMs, options.timeoutMs);
  }
  if (options.backend === 'vllm' && options.url === undefined && !options.endpointDiscovery)
    options.url = 'http://localhost:8000';
  if (options.backend === 'vllm') options.prefixStore = store;
  return options;
}

/**
 * `prefixStore` {enabled (true), chunkChars (256), maxTokens (4,000,000 ids, ~16 MB), minPrefixOverlapRatio (0),
 * maxRefreshes (8), missWait (50ms)}: an extension of llm-d-router's parameters (its configs leave it out and get the defaults).
 */
function defaultPrefixStore(): PrefixStoreOptions {
  return { chunkChars: 256, maxTokens: 4_000_000, minPrefixOverlapRatio: 0, maxRefreshes: 8, missWaitMs: 50 };
}

function prefixStoreOptions(p: Parameters): PrefixStoreOptions | undefined {
  const options = defaultPrefixStore();
  const raw = p.raw('prefixStore');
  if (raw === undefined || raw === null) return options;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    p.problem('prefixStore', 'must be a mapping, e.g. {enabled: false}');
    return options;
  }
  const m = raw as Record<string, unknown>;
  for (const key of Object.keys(m)) {
    const value = m[key];
    if (key === 'enabled') {
      if (typeof value !== 'boolean') p.problem('prefixStore.enabled', 'must be true or false');
      else if (!value) return undefined;
    } else if (key === 'missWait') {
      const ms = durationParameterMs(value, 'non-negative');
      if (typeof ms === 'string') p.problem('prefixStore.missWait', ms);
      else if (ms > 60_000)
        p.problem('prefixStore.missWait', `must be at most 60s, got ${JSON.stringify(value)}`);
      else options.missWaitMs = ms;
    } else if (key === 'minPrefixOverlapRatio') {
      if (typeof value !== 'number' || !(value >= 0 && value <= 1))
        p.problem(
          'prefixStore.minPrefixOverlapRatio',
          `must be a number from 0 to 1, got ${JSON.stringify(value)}`,
        );
      else options.minPrefixOverlapRatio = value;
    } else if (key === 'chunkChars' || key === 'maxTokens' || key === 'maxRefreshes') {
      const limit = key === 'chunkChars' ? 65_536 : key === 'maxRefreshes' ? 1024 : 1e9;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > limit)
        p.problem(
          `prefixStore.${key}`,
          `must be a whole number from 1 to ${limit}, got ${JSON.stringify(value)}`,
        );
      else options[key] = value;
    } else
      p.problem(
        `prefixStore.${key}`,
        'unknown field (known: enabled, chunkChars, maxTokens, minPrefixOverlapRatio, maxRefreshes, missWait)',
      );
  }
  return options;
}
