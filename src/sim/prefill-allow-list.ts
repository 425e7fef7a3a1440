/**
 * @module sim/prefill-allow-list
 * Which prefill endpoints a decode simulator may send a prompt to. The `x-prefiller-host-port` header names one, and
 * whoever can set that header chooses where the prompt goes: trusting it makes the decode server a proxy to any
 * address (server-side request forgery). Like llm-d's routing sidecar with `-enable-ssrf-protection`, the simulator
 * accepts only the prefill endpoints of its own pool: a static list here (`--prefill-allow-list`, filled by
 * `llmisvc up`), where the sidecar watches the InferencePool's pods. Stricter than the sidecar, which admits any port
 * of an allowed host: an entry is one exact `host:port`.
 */
import { ApiError } from './openai.js';

const HOST_PORT = /^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?):(\d{1,5})$/;

/** `host:port` in the one spelling entries and header values are compared in; undefined when it is not one. */
export function normalizeHostPort(value: string): string | undefined {
  const text = value.trim().toLowerCase();
  const match = HOST_PORT.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  return port >= 1 && port <= 65535 ? text : undefined;
}

/**
 * Why a prefill endpoint named by the request is refused, or undefined when it is in the allow-list (normalised
 * entries). The message names the header and the endpoint, not the allowed ones: the pool's addresses are none of
 * the client's business.
 * @example prefillRefusal('10.0.0.9:22', new Set(['10.0.0.5:8000'])) // → ApiError 403
 */
export function prefillRefusal(
  header: string,
  value: string,
  allowed: ReadonlySet<string>,
): ApiError | undefined {
  const endpoint = normalizeHostPort(value);
  const shown = JSON.stringify(value.slice(0, 100));
  if (endpoint === undefined)
    return new ApiError(400, `The ${header} header must be one host:port, got ${shown}.`, header);
  if (allowed.has(endpoint)) return undefined;
  return new ApiError(
    403,
    `The ${header} header names ${shown}, which is not a prefill endpoint of this pool; ` +
      'this decode server sends prompts only to the prefill endpoints in its --prefill-allow-list.',
    header,
  );
}
