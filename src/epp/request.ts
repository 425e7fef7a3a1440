/**
 * @module epp/request
 * Reading an OpenAI request body: the model and the prompt text the prefix scorer hashes. Pure; bad input becomes a
 * `RequestError` carrying the HTTP status and OpenAI error type the gateway should answer with.
 */

import { jsonShapeProblem } from '../transport/index.js';

/** A request the EPP refuses, answered as an OpenAI-style error. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = status === 429
      ? 'rate_limit_exceeded'
      : status >= 500
        ? 'server_error'
        : 'invalid_request_error',
    /** Response headers to add to the error answer (e.g. flow control's dropped reason). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

export interface ParsedBody {
  model: string;
  prompt: string;
  /** The decoded JSON, kept so a model rewrite can re-serialise it. */
  json: Record<string, unknown>;
}

/** The OpenAI-compatible paths the EPP understands; others are scheduled without a prompt. */
export const OPENAI_PATHS = [
  '/v1/completions',
  '/v1/chat/completions',
  '/v1/responses',
  '/v1/embeddings',
] as const;

/**
 * Parses the body of an OpenAI request.
 * @example parseRequestBody('/v1/completions', Buffer.from('{"model":"m","prompt":"hi"}')) // → { model: 'm', prompt: 'hi', ... }
 */
export function parseRequestBody(path: string, body: Buffer): ParsedBody {
  return parsedBody(path, decodeJsonBody(body));
}

/** A request body decoded: a JSON object within the shape bounds, or a RequestError (400) saying why not. */
export function decodeJsonBody(body: Buffer): Record<string, unknown> {
  const shape = jsonShapeProblem(body);
  if (shape !== undefined) throw new RequestError(400, shape);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new RequestError(400, `request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new RequestError(400, 'request body must be a JSON object');
  }
  return json as Record<string, unknown>;
}

/** The model and prompt of a decoded body (`decodeJsonBody`); a RequestError (400) without a model. */
export function parsedBody(path: string, object: Record<string, unknown>): ParsedBody {
  const model = object['model'];
  if (typeof model !== 'string' || model === '') {
    throw new RequestError(400, 'request body has no "model" (a non-empty string is required)');
  }
  return { model, prompt: promptOf(pathOnly(path), object), json: object };
}

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** The prompt text in request order; chat turns are joined with their roles so different roles never collide. */
export function promptOf(path: string, body: Record<string, unknown>): string {
  if (path.endsWith('/chat/completions')) return chatText(body['messages']);
  if (path.endsWith('/responses')) {
    const instructions = typeof body['instructions'] === 'string' ? body['instructions'] : '';
    return instructions + inputText(body['input']);
  }
  if (path.endsWith('/embeddings')) return inputText(body['input']);
  return inputText(body['prompt'] ?? body['input'] ?? body['messages']);
}

function chatText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  let text = '';
  for (const m of messages) {
    if (typeof m !== 'object' || m === null) continue;
    const role = (m as Record<string, unknown>)['role'];
    text += `<|${typeof role === 'string' ? role : ''}|>${contentText((m as Record<string, unknown>)['content'])}`;
  }
  return text;
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (typeof part === 'string') text += part;
    else if (typeof part === 'object' && part !== null) {
      const t = (part as Record<string, unknown>)['text'];
      if (typeof t === 'string') text += t;
    }
  }
  return text;
}

function inputText(input: unknown): string {
  if (typeof input === 'string') return input;
  if (!Array.isArray(input)) return '';
  // Token ids or a list of prompts; either way a deterministic string keyed on the content.
  if (input.every((x) => typeof x === 'number')) return input.join(' ');
  let text = '';
  for (const item of input) {
    if (typeof item === 'string') text += item;
    // A prompt of token ids; anything nested deeper is no prompt (and `join` would recurse into it).
    else if (Array.isArray(item)) text += item.filter((x) => typeof x === 'number').join(' ');
    else if (typeof item === 'object' && item !== null) {
      const role = (item as Record<string, unknown>)['role'];
      text += `<|${typeof role === 'string' ? role : ''}|>${contentText((item as Record<string, unknown>)['content'])}`;
    }
  }
  return text;
}

/** The JSON body of an OpenAI-style error response. */
export function openAiErrorBody(error: RequestError): string {
  return JSON.stringify({ error: { message: error.message, type: error.type, code: error.status } });
}
