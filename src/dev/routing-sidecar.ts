/**
 * @module dev/routing-sidecar
 * llm-d's routing sidecar (`ghcr.io/llm-d/llm-d-routing-sidecar`, its NIXL v2 protocol) for `dev cluster
 * --run-pods`: in a P/D decode pod it listens on the pod's port in front of the pod's vLLM. A completion naming a
 * prefill endpoint in `x-prefiller-host-port` (the EPP sets it) is sent there first — `max_tokens` 1, not streamed,
 * `kv_transfer_params.do_remote_decode` — and the `kv_transfer_params` of that answer then go with the client's own
 * request to the local vLLM, whose answer streams back. Everything else passes through to vLLM unchanged.
 *
 * The header names a destination, and whoever sets it chooses where the prompt goes. The real sidecar trusts it
 * unless started with `--enable-ssrf-protection` (then: pods of its InferencePool). Here the loopback holds the API
 * server and every pod of every namespace, so the header is never trusted: only a model server this dev cluster runs
 * in the decode pod's own namespace may be named (`allowPrefill`), and anything else is a 403 before any connection.
 * What a client can make it hold is bounded: request heads, bodies (one and all, counted with their copies until
 * the answer ends), the prefill's answer, connections, and requests per connection (pipelined ones run one at a
 * time).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import { DEFAULT_BODY_LIMIT, isRecord } from '../epp/index.js';
import { HOP_BY_HOP, openAiErrorJson } from '../gateway/index.js';
import { normalizeHostPort, prefillerHeader as PREFILLER_HEADER } from '../sim/index.js';
import {
  closeAfterAnswer,
  hostPort,
  jsonShapeProblem,
  oneRequestAtATime,
  readAtMost,
  readRequestBody,
  type BodyBudget,
} from '../transport/index.js';

export interface RoutingSidecarOptions {
  /** The pod's IP. */
  host: string;
  /** `--port` (8000). */
  port: number;
  /** The local vLLM, `ip:port` (`--vllm-port` on the pod's IP). */
  decoder: string;
  /** Whether a prefill endpoint (`host:port`, normalised) may be sent this pod's prompts. */
  allowPrefill(endpoint: string): boolean;
}

export interface RunningRoutingSidecar {
  url: string;
  close(): Promise<void>;
}

/** The two paths the sidecar runs its protocol on (POST); every other request passes through. */
const PROTOCOL_PATHS = new Set(['/v1/completions', '/v1/chat/completions']);
/** Request bodies buffered at once over every request of one sidecar. */
const BODY_BUDGET_BYTES = 64 * 1024 * 1024;
/** The prefill's answer is one token: anything near this is not one. */
const PREFILL_ANSWER_LIMIT = 4 * 1024 * 1024;
const MAX_CONNECTIONS = 1024;

/**
 * End-to-end headers of a message, for the next hop: hop-by-hop ones and the prefill header left out (a request's
 * length too, as its body may be rewritten; a response's is kept).
 */
function forwardable(headers: IncomingHttpHeaders, keepLength = false): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === PREFILLER_HEADER) continue;
    if (HOP_BY_HOP.has(name) && !(keepLength && name === 'content-length')) continue;
    out[name] = value;
  }
  return out;
}

class SidecarError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function errorType(status: number): string {
  if (status === 403) return 'PermissionDeniedError';
  if (status === 413 || status === 400) return 'BadRequestError';
  if (status === 503) return 'ServiceUnavailableError';
  return 'BadGatewayError';
}

function answerError(req: IncomingMessage, res: ServerResponse, error: SidecarError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // A body that was refused is not read to its end.
  if (!req.complete) closeAfterAnswer(req, res);
  const body = openAiErrorJson(error.status, error.message, errorType(error.status));
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Starts the sidecar on `host:port`; resolves once it listens. */
export async function startRoutingSidecar(options: RoutingSidecarOptions): Promise<RunningRoutingSidecar> {
  const budget: BodyBudget = { used: 0, limit: BODY_BUDGET_BYTES };
  const decoderUrl = `http://${options.decoder}`;

  /** Sends a request to the local vLLM and streams its answer to the client. */
  async function toDecoder(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer | IncomingMessage | undefined,
    signal: AbortSignal,
    extraHeaders: Record<string, string> = {},
  ): Promise<void> {
    const headers = { ...forwardable(req.headers), ...extraHeaders };
    if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
    let answer;
    try {
      answer = await request(`${decoderUrl}${req.url!}`, {
        method: req.method as 'GET',
        headers,
        body: body ?? null,
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      throw new SidecarError(
        502,
        `vLLM on ${options.decoder} could not be reached: ${(error as Error).message}`,
      );
    }
    res.writeHead(answer.statusCode, forwardable(answer.headers, true));
    await pipeline(answer.body, res);
  }

  /** llm-d's NIXL v2 protocol: prefill there, then decode here with what the prefill handed over. */
  async function disaggregated(
    req: IncomingMessage,
    res: ServerResponse,
    prefiller: string,
    signal: AbortSignal,
  ): Promise<void> {
    const endpoint = normalizeHostPort(prefiller);
    const shown = JSON.stringify(prefiller.slice(0, 100));
    if (endpoint === undefined)
      throw new SidecarError(400, `The ${PREFILLER_HEADER} header must be one host:port, got ${shown}.`);
    if (!options.allowPrefill(endpoint)) {
      throw new SidecarError(
        403,
        `The ${PREFILLER_HEADER} header names ${shown}, which is not a model server of this pod's namespace; ` +
          'the routing sidecar sends prompts only there.',
      );
    }
    const raw = await readRequestBody(req, DEFAULT_BODY_LIMIT, budget);
    if (raw === 'too-large')
      throw new SidecarError(413, `The request body is larger than ${DEFAULT_BODY_LIMIT} bytes.`);
    if (raw === 'busy')
      throw new SidecarError(
        503,
        'The routing sidecar is busy receiving other request bodies; retry in a moment.',
      );
    // The body and its copies (parsed, the prefill's, the decode's) live until the answer ends: counted till then.
    const held = 4 * raw.length;
    if (budget.used + held > budget.limit)
      throw new SidecarError(503, 'The routing sidecar holds too many request bodies; retry in a moment.');
    budget.used += held;
    try {
      await prefillThenDecode(req, res, endpoint, raw, signal);
    } finally {
      budget.used -= held;
    }
  }

  async function prefillThenDecode(
    req: IncomingMessage,
    res: ServerResponse,
    endpoint: string,
    raw: Buffer,
    signal: AbortSignal,
  ): Promise<void> {
    const shape = jsonShapeProblem(raw);
    if (shape !== undefined) throw new SidecarError(400, `The ${shape}.`);
    let completion: unknown;
    try {
      completion = JSON.parse(raw.toString('utf8'));
    } catch (error) {
      throw new SidecarError(400, `The request body is not JSON: ${(error as Error).message}`);
    }
    if (!isRecord(completion)) throw new SidecarError(400, 'The request body must be a JSON object.');

    const requestId = randomUUID();
    const prefill: Record<string, unknown> = {
      ...completion,
      kv_transfer_params: {
        do_remote_decode: true,
        do_remote_prefill: false,
        remote_engine_id: null,
        remote_block_ids: null,
        remote_host: null,
        remote_port: null,
      },
      stream: false,
      max_tokens: 1,
    };
    delete prefill['stream_options'];
    if ('max_completion_tokens' in prefill) prefill['max_completion_tokens'] = 1;
    const prefillBody = Buffer.from(JSON.stringify(prefill));
    let answer;
    try {
      answer = await request(`http://${endpoint}${req.url!}`, {
        method: 'POST',
        headers: {
          ...forwardable(req.headers),
          'content-type': 'application/json',
          'content-length': String(prefillBody.length),
          'x-request-id': requestId,
        },
        body: prefillBody,
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      throw new SidecarError(
        502,
        `The prefill endpoint ${endpoint} could not be reached: ${(error as Error).message}`,
      );
    }
    const text = await readAtMost(answer.body, PREFILL_ANSWER_LIMIT);
    if (text === undefined)
      throw new SidecarError(
        502,
        `The prefill endpoint ${endpoint} answered more than ${PREFILL_ANSWER_LIMIT} bytes.`,
      );
    if (answer.statusCode < 200 || answer.statusCode >= 300) {
      throw new SidecarError(
        answer.statusCode >= 400 && answer.statusCode < 600 ? answer.statusCode : 502,
        `The prefill endpoint ${endpoint} answered ${answer.statusCode}: ${text.toString('utf8').slice(0, 200)}`,
      );
    }
    let prefilled: unknown;
    try {
      prefilled = JSON.parse(text.toString('utf8'));
    } catch {
      throw new SidecarError(502, `The prefill endpoint ${endpoint} answered something other than JSON.`);
    }
    const decode = { ...completion };
    const handedOver = isRecord(prefilled) ? prefilled['kv_transfer_params'] : undefined;
    if (handedOver === undefined) delete decode['kv_transfer_params'];
    else decode['kv_transfer_params'] = handedOver;
    await toDecoder(req, res, Buffer.from(JSON.stringify(decode)), signal, { 'x-request-id': requestId });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    // Only a path: the target is appended to the decoder's address, and an absolute or `@host` form would name
    // another host.
    if (!req.url?.startsWith('/')) {
      answerError(
        req,
        res,
        new SidecarError(
          400,
          `The request target must be a path, got ${JSON.stringify(req.url?.slice(0, 100))}.`,
        ),
      );
      return;
    }
    const rawHeader = req.headers[PREFILLER_HEADER];
    const prefiller = Array.isArray(rawHeader) ? rawHeader.join(', ') : rawHeader;
    const path = req.url.split('?')[0]!;
    try {
      if (req.method === 'POST' && PROTOCOL_PATHS.has(path) && prefiller !== undefined && prefiller !== '') {
        await disaggregated(req, res, prefiller, abort.signal);
      } else {
        const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
        await toDecoder(req, res, hasBody ? req : undefined, abort.signal);
      }
    } catch (error) {
      if (abort.signal.aborted) return;
      answerError(
        req,
        res,
        error instanceof SidecarError
          ? error
          : new SidecarError(502, `routing sidecar: ${(error as Error).message}`),
      );
    }
  }

  const server = createServer(
    {
      headersTimeout: 30_000,
      requestTimeout: 300_000,
      maxHeaderSize: 16 * 1024,
    },
    // A connection's pipelined requests one at a time (transport/pipelining).
    oneRequestAtATime((req, res) => void handle(req, res)),
  );
  server.maxHeadersCount = 100;
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${hostPort(options.host, port)}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
