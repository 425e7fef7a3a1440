/**
 * @module sim/openai
 * The OpenAI wire format as vLLM speaks it: validating `/v1/completions` and `/v1/chat/completions` bodies into one
 * plain generation request, the error JSON vLLM answers with, and the response and stream-chunk shapes. Pure.
 */

/** An HTTP error with vLLM's OpenAI error body. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  /** Response headers to send with it (`retry-after`). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    message: string,
    param: string | null = null,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.status = status;
    this.type = errorType(status);
    this.param = param;
    this.headers = headers;
  }

  body(): { error: { message: string; type: string; param: string | null; code: number } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.status } };
  }
}

function errorType(status: number): string {
  switch (status) {
    case 400:
      return 'BadRequestError';
    case 403:
      return 'PermissionDeniedError';
    case 404:
      return 'NotFoundError';
    case 405:
      return 'MethodNotAllowedError';
    case 413:
      return 'RequestTooLargeError';
    case 421:
      return 'MisdirectedRequestError';
    case 429:
      return 'RateLimitError';
    case 503:
      return 'ServiceUnavailableError';
    default:
      return status >= 500 ? 'InternalServerError' : 'BadRequestError';
  }
}

export type Endpoint = 'completion' | 'chat';

/** A validated request, whichever endpoint it came from. */
export interface GenerationRequest {
  endpoint: Endpoint;
  /** The model named in the body, or undefined to use the base model (as vLLM allows). */
  model: string | undefined;
  /** The prompt text the engine sees (chat messages rendered through a simple template). */
  prompt: string;
  /** `max_tokens` or `max_completion_tokens`, if set. */
  maxTokens: number | undefined;
  stream: boolean;
  includeUsage: boolean;
  /**
   * vLLM's `kv_transfer_params` (NixlConnector, as llm-d's routing sidecar sends them): `doRemoteDecode` asks a
   * prefill server to keep the prompt's KV blocks for a decode server and name them in its answer; `doRemotePrefill`
   * tells a decode server the prompt was prefilled elsewhere, so its KV blocks are fetched rather than computed.
   */
  kvTransfer: { doRemoteDecode: boolean; doRemotePrefill: boolean } | undefined;
}

type Json = Record<string, unknown>;

/** Characters of a client's value an error message quotes: the value may be as large as the body. */
const quoteLimit = 80;

/**
 * Text as an error message quotes it, cut to a few dozen characters.
 * @example truncated('m'.repeat(1000)) // the first 80 characters, then '…'
 */
export function truncated(text: string): string {
  return text.length > quoteLimit ? `${text.slice(0, quoteLimit)}…` : text;
}

/** A client's value as an error message quotes it: JSON, cut short (a long string is cut before it is encoded). */
function quoted(value: unknown): string {
  const short =
    typeof value === 'string' && value.length > quoteLimit ? value.slice(0, quoteLimit + 1) : value;
  return truncated(JSON.stringify(short) ?? String(value));
}

/** vLLM's default `--max-logprobs`: the most log probabilities a request may ask for per token. */
const maxLogprobs = 20;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const chatRoles = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

/**
 * Checks a request body the way vLLM does and returns the generation request, or throws a 400 {@link ApiError}
 * naming the field. A list of token ids longer than `maxModelLen` is refused before it is turned into text.
 */
export function parseGenerationRequest(
  endpoint: Endpoint,
  body: unknown,
  maxModelLen = Number.POSITIVE_INFINITY,
): GenerationRequest {
  if (!isObject(body)) throw new ApiError(400, 'The request body must be a JSON object.');
  const model = body['model'];
  if (model !== undefined && model !== null && typeof model !== 'string')
    throw new ApiError(400, '`model` must be a string.', 'model');
  const stream = body['stream'] ?? false;
  if (typeof stream !== 'boolean') throw new ApiError(400, '`stream` must be a boolean.', 'stream');
  const streamOptions = body['stream_options'];
  if (streamOptions !== undefined && streamOptions !== null) {
    if (!stream)
      throw new ApiError(400, 'Stream options can only be defined when `stream=True`.', 'stream_options');
    if (!isObject(streamOptions))
      throw new ApiError(400, '`stream_options` must be an object.', 'stream_options');
  }
  const includeUsage = isObject(streamOptions) && streamOptions['include_usage'] === true;
  const n = body['n'];
  if (n !== undefined && n !== null && n !== 1)
    throw new ApiError(400, '`n` must be 1: the simulator generates one choice per request.', 'n');
  for (const [field, min, max] of [
    ['temperature', 0, 2],
    ['top_p', 0, 1],
    ['presence_penalty', -2, 2],
    ['frequency_penalty', -2, 2],
  ] as const) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !(value >= min && value <= max))
      throw new ApiError(
        400,
        `\`${field}\` must be a number from ${min} to ${max}, got ${quoted(value)}.`,
        field,
      );
  }
  checkStop(body['stop']);
  checkLogprobs(body, endpoint);
  const maxTokens = readMaxTokens(body, endpoint);
  const kvTransfer = readKvTransfer(body['kv_transfer_params']);
  const prompt =
    endpoint === 'chat'
      ? chatPrompt(body['messages'])
      : completionPrompt(body['prompt'], maxModelLen, maxTokens ?? 1);
  return {
    endpoint,
    model: typeof model === 'string' ? model : undefined,
    prompt,
    maxTokens,
    stream,
    includeUsage,
    kvTransfer,
  };
}

/** `kv_transfer_params`: an object (or null) whose `do_remote_decode` and `do_remote_prefill` are booleans (or null). */
function readKvTransfer(value: unknown): GenerationRequest['kvTransfer'] {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value))
    throw new ApiError(400, '`kv_transfer_params` must be an object.', 'kv_transfer_params');
  const flag = (name: string): boolean => {
    const v = value[name];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean')
      throw new ApiError(
        400,
        `\`kv_transfer_params.${name}\` must be a boolean, got ${quoted(v)}.`,
        `kv_transfer_params.${name}`,
      );
    return v;
  };
  return { doRemoteDecode: flag('do_remote_decode'), doRemotePrefill: flag('do_remote_prefill') };
}

function readMaxTokens(body: Json, endpoint: Endpoint): number | undefined {
  const fields = endpoint === 'chat' ? ['max_completion_tokens', 'max_tokens'] : ['max_tokens'];
  for (const field of fields) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
      throw new ApiError(400, `\`${field}\` must be an integer >= 1, got ${quoted(value)}.`, field);
    return value;
  }
  return undefined;
}

/** The simulator does not stop on anything but its length, but a `stop` vLLM would refuse is refused. */
function checkStop(stop: unknown): void {
  if (stop === undefined || stop === null || typeof stop === 'string') return;
  if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) return;
  throw new ApiError(400, `\`stop\` must be a string or a list of strings, got ${quoted(stop)}.`, 'stop');
}

/** Log probabilities are not produced (`logprobs: null`), but a request for more than vLLM allows is refused. */
function checkLogprobs(body: Json, endpoint: Endpoint): void {
  const inRange = (value: unknown): boolean =>
    typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= maxLogprobs;
  const counted = endpoint === 'chat' ? 'top_logprobs' : 'logprobs';
  const count = body[counted];
  // vLLM's request models are pydantic's, which read `true`/`false` for an integer as 1/0.
  if (count !== undefined && count !== null && typeof count !== 'boolean' && !inRange(count))
    throw new ApiError(
      400,
      `\`${counted}\` must be an integer from 0 to ${maxLogprobs}, got ${quoted(count)}.`,
      counted,
    );
  const flag = body['logprobs'];
  if (endpoint === 'chat' && flag !== undefined && flag !== null && typeof flag !== 'boolean')
    throw new ApiError(400, `\`logprobs\` must be a boolean, got ${quoted(flag)}.`, 'logprobs');
}

function completionPrompt(prompt: unknown, maxModelLen: number, maxTokens: number): string {
  if (typeof prompt === 'string') {
    if (!prompt) throw new ApiError(400, '`prompt` must not be empty.', 'prompt');
    return prompt;
  }
  // Millions of token ids would become millions of strings before the context length refused them.
  if (Array.isArray(prompt) && prompt.length > maxModelLen && Number.isInteger(prompt[0]))
    throw contextLengthError(maxModelLen, prompt.length, maxTokens);
  if (Array.isArray(prompt) && prompt.length > 0) {
    // A list of token ids is one prompt; the simulator treats each id as one token.
    if (prompt.every((t) => Number.isInteger(t) && (t as number) >= 0))
      return prompt.map((t) => ` ${Number(t)}`).join('');
    if (prompt.length === 1 && typeof prompt[0] === 'string' && prompt[0]) return prompt[0];
    if (prompt.every((p) => typeof p === 'string'))
      throw new ApiError(
        400,
        '`prompt` lists several prompts: the simulator serves one prompt per request.',
        'prompt',
      );
  }
  throw new ApiError(
    400,
    '`prompt` must be a non-empty string, a list of one string, or a list of token ids.',
    'prompt',
  );
}

function chatPrompt(messages: unknown): string {
  if (!Array.isArray(messages) || messages.length === 0)
    throw new ApiError(400, '`messages` must be a non-empty list of messages.', 'messages');
  let text = '';
  messages.forEach((message, i) => {
    const where = `messages[${i}]`;
    if (!isObject(message)) throw new ApiError(400, `\`${where}\` must be an object.`, where);
    const role = message['role'];
    if (typeof role !== 'string' || !chatRoles.has(role))
      throw new ApiError(
        400,
        `\`${where}.role\` must be one of ${[...chatRoles].join(', ')}.`,
        `${where}.role`,
      );
    text += `<|${role}|>\n${messageContent(message['content'], role, where)}\n`;
  });
  // The generation prompt, as a chat template adds it.
  return `${text}<|assistant|>\n`;
}

function messageContent(content: unknown, role: string, where: string): string {
  if (typeof content === 'string') return content;
  if ((content === null || content === undefined) && role === 'assistant') return '';
  if (Array.isArray(content)) {
    return content
      .map((part, j) => {
        if (isObject(part) && part['type'] === 'text' && typeof part['text'] === 'string')
          return part['text'];
        throw new ApiError(
          400,
          `\`${where}.content[${j}]\` must be a text part {"type": "text", "text": ...}.`,
          `${where}.content`,
        );
      })
      .join('\n');
  }
  throw new ApiError(
    400,
    `\`${where}.content\` must be a string or a list of text parts.`,
    `${where}.content`,
  );
}

/** The 400 vLLM returns when prompt plus output exceed the context window. */
export function contextLengthError(maxModelLen: number, promptTokens: number, maxTokens: number): ApiError {
  return new ApiError(
    400,
    `This model's maximum context length is ${maxModelLen} tokens. However, you requested ` +
      `${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). ` +
      'Please reduce the length of the messages or completion.',
  );
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function usage(promptTokens: number, completionTokens: number, cachedTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
}

/** The non-streaming response body. */
export function completionResponse(
  endpoint: Endpoint,
  meta: ResponseMeta,
  text: string,
  finishReason: string,
  totals: Usage,
): Json {
  if (endpoint === 'chat') {
    return {
      id: meta.id,
      object: 'chat.completion',
      created: meta.created,
      model: meta.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text, tool_calls: [] },
          logprobs: null,
          finish_reason: finishReason,
          stop_reason: null,
        },
      ],
      usage: totals,
    };
  }
  return {
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason, stop_reason: null }],
    usage: totals,
  };
}

/** One streamed chunk carrying `text` (and the finish reason on the last token). */
export function streamChunk(
  endpoint: Endpoint,
  meta: ResponseMeta,
  text: string,
  finishReason: string | null,
  first: boolean,
): Json {
  if (endpoint === 'chat') {
    const delta: Json = first ? { role: 'assistant', content: text } : { content: text };
    return {
      id: meta.id,
      object: 'chat.completion.chunk',
      created: meta.created,
      model: meta.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    };
  }
  return {
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason, stop_reason: null }],
  };
}

/** The usage chunk sent before `[DONE]` when `stream_options.include_usage` is set. */
export function usageChunk(endpoint: Endpoint, meta: ResponseMeta, totals: Usage): Json {
  return {
    id: meta.id,
    object: endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: [],
    usage: totals,
  };
}
