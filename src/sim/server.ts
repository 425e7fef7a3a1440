/**
 * @module sim/server
 * The simulator's HTTP edge on `node:http`: routes, body reading, streaming, the prefill call of a decode endpoint,
 * failure injection and metrics recording. Everything it decides comes from the pure parts (`openai.ts`,
 * `performance-model.ts`, `tokens.ts`); this file only moves bytes and keeps time.
 *
 * Anyone who reaches the port is a client, so what a client can make it hold is bounded: connections
 * (`maxConnections`), the time to send a request (`headersTimeoutMs`, `requestTimeoutMs`), each body and the bodies
 * being received all together, the shape of a body's JSON, a prompt's length before it is tokenized, pipelined
 * requests (served one at a time, as vLLM's server does), and a stream's unsent events (written as its client reads).
 * Listening on loopback, it answers only requests addressed to a loopback name, so a web page whose name was rebound
 * to 127.0.0.1 cannot use it (DNS rebinding).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { request as undiciRequest } from 'undici';
import {
  closeAfterAnswer,
  hostPort,
  isLoopbackAddress,
  isLoopbackHostHeader,
  jsonShapeProblem,
  misdirectedHostMessage,
  readRequestBody,
  type BodyBudget,
} from '../transport/index.js';
import { EngineLoop } from './engine-loop.js';
import { SimulatorMetrics } from './metrics.js';
import {
  ApiError,
  completionResponse,
  contextLengthError,
  parseGenerationRequest,
  streamChunk,
  truncated,
  usage,
  usageChunk,
  type Endpoint,
  type GenerationRequest,
  type ResponseMeta,
} from './openai.js';
import {
  parseLoraModules,
  resolveSimulatorOptions,
  type FailureKind,
  type SimulatorOptions,
} from './options.js';
import { EngineRejection } from './performance-model.js';
import { normalizeHostPort, prefillRefusal } from './prefill-allow-list.js';
import { SseStream } from './sse-stream.js';
import { blockHashes, countTokens, hash32, outputTokenSource, seededRandom, tokenize } from './tokens.js';

/** A running simulator. */
export interface RunningSimulator {
  /** The port it listens on (the real one when started with port 0). */
  port: number;
  /** Base URL, for example `http://127.0.0.1:8000`. */
  url: string;
  /** The name it reports in `x-inference-pod`. */
  podName: string;
  options: SimulatorOptions;
  /** Stops accepting requests, ends open streams and closes the server. */
  close(): Promise<void>;
}

/** The request header a routing sidecar sets to send a decode request's prefill to another endpoint (llm-d). */
export const prefillerHeader = 'x-prefiller-host-port';
/** The response header naming the endpoint that served the request. */
export const podHeader = 'x-inference-pod';
/** The response header a decode endpoint adds to name the prefill endpoint it used. */
export const prefillPodHeader = 'x-prefiller-pod';

/** Largest request body: the EPP's and the builtin gateway's default limit, so whatever they pass on fits. */
const maxBodyBytes = 16 * 1024 * 1024;
/**
 * Request-body bytes buffered over every request still receiving its body: four of the largest at once, or thousands
 * of real ones (a few kilobytes each). Past it a request is answered 503 unread.
 */
const bodyBudgetBytes = 4 * maxBodyBytes;
/** Pipelined requests one connection may queue behind the one being served; more closes the connection. */
const maxQueuedPipelinedRequests = 16;

/**
 * Starts a simulator on loopback (or `options.host`) and resolves once it listens.
 *
 * @example
 * const sim = await startSimulator({ port: 0, model: 'llama', podName: 'pod-a', timeScale: 0.01 });
 * await fetch(`${sim.url}/v1/models`);
 * await sim.close();
 */
export async function startSimulator(input: Partial<SimulatorOptions> = {}): Promise<RunningSimulator> {
  const options = resolveSimulatorOptions(input);
  const server = createServer({
    // Keep-alive connections from the gateway and the bench are the common case; keep them longer than Node's 5 s.
    keepAliveTimeout: 65_000,
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    // Node checks the two timeouts above on this interval (30 s by default, which would let a short one run for 30).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, options.headersTimeoutMs / 4)),
    maxHeaderSize: 16 * 1024,
  });
  // Past it Node closes each new connection as soon as it is accepted.
  server.maxConnections = options.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const podName = options.podName || `sim-${port}`;
  const simulator = new Simulator(options, podName);
  server.on('request', (req, res) => simulator.handle(req, res));
  return {
    port,
    // A wildcard bind is reached through loopback.
    url: `http://${['0.0.0.0', '::'].includes(options.host) ? `127.0.0.1:${port}` : hostPort(options.host, port)}`,
    podName,
    options,
    close: () => simulator.close(server),
  };
}

class Simulator {
  private readonly options: SimulatorOptions;
  private readonly podName: string;
  private readonly engine: EngineLoop;
  private readonly metrics: SimulatorMetrics;
  private readonly loras: Set<string>;
  private readonly baseNames: Set<string>;
  private readonly failureRandom: () => number;
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly open = new Set<ServerResponse>();
  private readonly prefillAllowList: ReadonlySet<string>;
  private readonly bodyBudget: BodyBudget = { used: 0, limit: bodyBudgetBytes };
  /** On loopback only this machine connects, but a browser on it can be led there under any name. */
  private readonly loopbackOnly: boolean;
  /** Pipelined requests waiting for their turn, per connection. */
  private readonly queuedOn = new WeakMap<Socket, number>();
  private counter = 0;
  private closing = false;

  constructor(options: SimulatorOptions, podName: string) {
    this.options = options;
    this.podName = podName;
    this.loopbackOnly = isLoopbackAddress(options.host);
    this.engine = new EngineLoop(options, options.timeScale);
    this.loras = new Set(parseLoraModules(options.loraModules).map((l) => l.name));
    this.baseNames = new Set([options.model, ...options.servedModelNames]);
    this.prefillAllowList = new Set(
      options.prefillAllowList.map((entry) => normalizeHostPort(entry)).filter((e) => e !== undefined),
    );
    this.failureRandom = seededRandom(options.seed ^ 0x5eed);
    this.metrics = new SimulatorMetrics(this.engine.model, {
      model: options.model,
      maxLoras: options.maxLoras,
      blockSize: options.blockSize,
      numGpuBlocks: options.numGpuBlocks,
      enablePrefixCaching: options.enablePrefixCaching,
      wallSeconds: () => Date.now() / 1000,
    });
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader(podHeader, this.podName);
    // Checked before anything is read or run, as the builtin gateway does.
    if (this.loopbackOnly && !isLoopbackHostHeader(req.headers.host)) {
      const message = misdirectedHostMessage(req.headers.host, 'this simulator', this.options.host);
      return sendError(req, res, new ApiError(421, message));
    }
    // Node parses pipelined requests at once and answers them in order, but would run them all at the same time,
    // each buffering its answer behind the first: they are served one after another instead, as uvicorn serves vLLM.
    if (res.socket === null) return this.serveInTurn(req, res);
    this.serve(req, res);
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const requestId = req.headers['x-request-id'];
    if (typeof requestId === 'string') res.setHeader('x-request-id', requestId);
    this.route(req, res).catch((error: unknown) => {
      if (error instanceof ApiError) return sendError(req, res, error);
      sendError(req, res, new ApiError(500, `internal error: ${(error as Error).message}`));
    });
  }

  /** Serves a pipelined request once the answers before it are out; a connection queueing too many is closed. */
  private serveInTurn(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const queued = (this.queuedOn.get(socket) ?? 0) + 1;
    if (queued > maxQueuedPipelinedRequests) {
      socket.destroy();
      return;
    }
    this.queuedOn.set(socket, queued);
    res.once('socket', () => {
      this.queuedOn.set(socket, (this.queuedOn.get(socket) ?? 1) - 1);
      this.serve(req, res);
    });
  }

  async close(server: Server): Promise<void> {
    this.closing = true;
    this.engine.close();
    for (const res of this.open) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    const endpoint: Endpoint | undefined =
      path === '/v1/completions' ? 'completion' : path === '/v1/chat/completions' ? 'chat' : undefined;
    if (endpoint) {
      if (method !== 'POST') throw new ApiError(405, `${path} accepts POST only.`);
      return this.generate(endpoint, path as string, req, res);
    }
    const getters: Record<string, () => Promise<void> | void> = {
      '/health': () => {
        res.writeHead(200).end();
      },
      '/v1/models': () => sendJson(res, 200, this.models()),
      '/metrics': async () => {
        const text = await this.metrics.text();
        res.writeHead(200, { 'content-type': this.metrics.contentType }).end(text);
      },
    };
    const getter = getters[path as string];
    if (!getter) throw new ApiError(404, `There is no route ${method} ${truncated(path as string)}.`);
    if (method !== 'GET' && method !== 'HEAD') throw new ApiError(405, `${path} accepts GET only.`);
    await getter();
  }

  private models(): unknown {
    const card = (id: string, parent: string | null): unknown => ({
      id,
      object: 'model',
      created: this.created,
      owned_by: 'vllm',
      root: parent ? (parseLoraModules(this.options.loraModules).find((l) => l.name === id)?.path ?? id) : id,
      parent,
      max_model_len: this.options.maxModelLen,
    });
    return {
      object: 'list',
      data: [
        ...[...this.baseNames].map((name) => card(name, null)),
        ...[...this.loras].map((name) => card(name, this.options.model)),
      ],
    };
  }

  private async generate(
    endpoint: Endpoint,
    path: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    if (this.closing) throw new ApiError(503, 'The simulator is shutting down.');
    // Checked before anything else is done: a forged prefill endpoint gets no connection and no work.
    const prefiller = this.options.role === 'decode' ? headerValue(req, prefillerHeader) : undefined;
    if (prefiller !== undefined) {
      const refusal = prefillRefusal(prefillerHeader, prefiller, this.prefillAllowList);
      if (refusal) {
        req.resume();
        throw refusal;
      }
    }
    const body = parseBody(await this.readBody(req));
    const request = parseGenerationRequest(endpoint, body, this.options.maxModelLen);
    const model = request.model ?? this.options.model;
    const lora = this.loras.has(model) ? model : undefined;
    if (!lora && !this.baseNames.has(model))
      throw new ApiError(404, `The model \`${truncated(model)}\` does not exist.`, 'model');

    this.injectFailure();
    const { maxWaitingRequests } = this.options;
    if (maxWaitingRequests > 0 && this.engine.model.stats().waiting >= maxWaitingRequests)
      throw new ApiError(429, `The waiting queue is full (${maxWaitingRequests} requests); retry later.`);

    // Counted before it is tokenized: a prompt of millions of words is refused without building millions of tokens.
    const count = this.outputLength(request, countTokens(request.prompt));
    const prompt = tokenize(request.prompt);
    const id = `${endpoint === 'chat' ? 'chatcmpl' : 'cmpl'}-${this.podName}-${++this.counter}`;
    const abort = new AbortController();
    res.once('close', () => abort.abort());

    if (prefiller) {
      const pod = await this.remotePrefill(
        prefiller,
        path,
        body as Record<string, unknown>,
        id,
        abort.signal,
      );
      if (pod) res.setHeader(prefillPodHeader, pod);
    }
    // The client may have gone while its body was read or its prefill ran, before the 'close' listener was there.
    if (abort.signal.aborted || res.destroyed) return;

    const meta: ResponseMeta = { id, created: Math.floor(Date.now() / 1000), model };
    const blocks = blockHashes(prompt, this.options.blockSize, lora ?? this.options.model);
    // As vLLM's NixlConnector: a prefill asked to leave the decode to another server names the KV blocks it holds
    // for it (non-streamed answers, which is how llm-d's routing sidecar asks); a decode server told the prompt was
    // prefilled elsewhere fetches those blocks instead of computing them.
    const kvTransfer = request.kvTransfer;
    const handsOver =
      kvTransfer?.doRemoteDecode === true && !request.stream && this.options.role !== 'decode';
    const prefilledElsewhere =
      Boolean(prefiller) || (kvTransfer?.doRemotePrefill === true && this.options.role !== 'prefill');
    const stalled =
      request.stream && this.options.stallRate > 0 && this.failureRandom() < this.options.stallRate;
    this.run(res, abort.signal, {
      endpoint,
      stream: request.stream,
      includeUsage: request.includeUsage,
      meta,
      promptTokens: prompt.length,
      outputTokens: count,
      nextToken: outputTokenSource(this.options.seed, request.prompt),
      finishReason: request.maxTokens === undefined ? 'stop' : 'length',
      engineRequest: {
        id,
        promptTokens: prompt.length,
        blockHashes: blocks,
        outputTokens: count,
        lora,
        remotePrefill: prefilledElsewhere,
      },
      kvTransferParams: handsOver
        ? {
            do_remote_decode: false,
            do_remote_prefill: true,
            remote_engine_id: this.podName,
            remote_block_ids: blocks.map((_, i) => i),
          }
        : undefined,
      stallMs: stalled ? this.engine.wallMs(this.options.stallMs) : 0,
    });
  }

  /** The request body, within the per-request limit and the budget of all bodies being received. */
  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const read = await readRequestBody(req, maxBodyBytes, this.bodyBudget);
    if (read === 'too-large')
      throw new ApiError(413, `The request body is larger than ${maxBodyBytes} bytes.`);
    if (read === 'busy')
      throw new ApiError(
        503,
        `The simulator is busy: the request bodies it is receiving fill its buffer (${bodyBudgetBytes} bytes); ` +
          'retry in a moment.',
        null,
        { 'retry-after': '1' },
      );
    return read;
  }

  /** How many tokens to generate: `max_tokens` exactly, or a seeded length up to `--default-max-tokens`. */
  private outputLength(request: GenerationRequest, promptTokens: number): number {
    const { maxModelLen, defaultMaxTokens, seed } = this.options;
    if (request.maxTokens !== undefined) {
      if (promptTokens + request.maxTokens > maxModelLen)
        throw contextLengthError(maxModelLen, promptTokens, request.maxTokens);
      return request.maxTokens;
    }
    const room = maxModelLen - promptTokens;
    if (room < 1) throw contextLengthError(maxModelLen, promptTokens, 1);
    const drawn = 1 + Math.floor(seededRandom(hash32(`${seed}/len/${request.prompt}`))() * defaultMaxTokens);
    return Math.min(drawn, room);
  }

  private injectFailure(): void {
    const { failureRate, failureKinds } = this.options;
    if (failureRate <= 0 || this.failureRandom() >= failureRate) return;
    const kind = failureKinds[Math.floor(this.failureRandom() * failureKinds.length)] as FailureKind;
    const failures: Record<FailureKind, ApiError> = {
      server_error: new ApiError(500, 'Injected failure: the engine hit an internal error.'),
      rate_limit: new ApiError(429, 'Injected failure: too many requests.'),
      unavailable: new ApiError(503, 'Injected failure: the engine is not ready.'),
    };
    throw failures[kind];
  }

  /** Sends the prompt to a prefill endpoint (one output token, no stream) before decoding here. */
  private async remotePrefill(
    hostPort: string,
    path: string,
    body: Record<string, unknown>,
    id: string,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const prefillBody: Record<string, unknown> = {
      ...body,
      max_tokens: 1,
      stream: false,
      kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false },
    };
    delete prefillBody['stream_options'];
    delete prefillBody['max_completion_tokens'];
    let response;
    try {
      response = await undiciRequest(`http://${hostPort}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id },
        body: JSON.stringify(prefillBody),
        signal,
      });
    } catch (error) {
      throw new ApiError(
        502,
        `The prefill endpoint ${hostPort} could not be reached: ${(error as Error).message}`,
      );
    }
    const text = await response.body.text();
    if (response.statusCode !== 200)
      throw new ApiError(
        502,
        `The prefill endpoint ${hostPort} answered ${response.statusCode}: ${text.slice(0, 200)}`,
      );
    const pod = response.headers[podHeader];
    return typeof pod === 'string' ? pod : undefined;
  }

  private run(
    res: ServerResponse,
    signal: AbortSignal,
    job: {
      // The request's few fields, not the request: a queued request keeps no prompt text.
      endpoint: Endpoint;
      stream: boolean;
      includeUsage: boolean;
      meta: ResponseMeta;
      promptTokens: number;
      outputTokens: number;
      /** The output, one token per call: nothing is generated before it is sent. */
      nextToken: () => string;
      finishReason: string;
      engineRequest: Parameters<EngineLoop['submit']>[0];
      /** `kv_transfer_params` of a non-streamed answer (a prefill for a remote decode). */
      kvTransferParams: Record<string, unknown> | undefined;
      stallMs: number;
    },
  ): void {
    const { endpoint, meta, engineRequest } = job;
    let arrival = 0;
    let queuedMs = 0;
    let cachedTokens = 0;
    let lastTokenAt = 0;
    let finished = false;
    const sse = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`;
    const last = job.outputTokens - 1;
    const stream = job.stream
      ? new SseStream(res, (index) =>
          sse(
            streamChunk(
              endpoint,
              meta,
              job.nextToken(),
              index === last ? job.finishReason : null,
              index === 0,
            ),
          ),
        )
      : undefined;
    const finish = (at: number): void => {
      finished = true;
      this.open.delete(res);
      const totals = usage(job.promptTokens, job.outputTokens, cachedTokens);
      this.metrics.requestFinished({
        e2eSeconds: (at - arrival) / 1000,
        finishedReason: job.finishReason === 'stop' ? 'stop' : 'length',
      });
      if (!stream) {
        let text = '';
        for (let i = 0; i < job.outputTokens; i++) text += job.nextToken();
        const answer = completionResponse(endpoint, meta, text, job.finishReason, totals);
        if (job.kvTransferParams) answer['kv_transfer_params'] = job.kvTransferParams;
        sendJson(res, 200, answer);
        return;
      }
      stream.end(`${job.includeUsage ? sse(usageChunk(endpoint, meta, totals)) : ''}data: [DONE]\n\n`);
    };

    try {
      arrival = this.engine.submit(engineRequest, {
        onAdmitted: (cached, queued) => {
          cachedTokens = cached;
          queuedMs = queued;
        },
        onToken: (index, at) => {
          if (index === 0) {
            this.metrics.firstToken({
              promptTokens: job.promptTokens,
              queueSeconds: queuedMs / 1000,
              ttftSeconds: (at - arrival) / 1000,
            });
          } else {
            this.metrics.nextToken((at - lastTokenAt) / 1000);
          }
          lastTokenAt = at;
          if (!stream) return;
          // An injected stall: the first token is held back, and everything after it queues behind it.
          if (index === 0 && job.stallMs > 0) stream.stall(job.stallMs);
          stream.tokenProduced();
        },
        onFinished: finish,
      });
    } catch (error) {
      if (error instanceof EngineRejection) throw new ApiError(400, error.message);
      throw error;
    }
    // Headers go out once the engine has accepted the request (its callbacks run on a later tick), so a rejection
    // above is still a plain 400.
    this.open.add(res);
    if (stream) {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      res.flushHeaders();
    }
    signal.addEventListener('abort', () => {
      this.open.delete(res);
      if (!finished) this.engine.abort(engineRequest.id);
    });
  }
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first ? first.trim() : undefined;
}

/** A request body as JSON, its shape checked first: a linear scan costs less than what `JSON.parse` would build. */
function parseBody(raw: Buffer): unknown {
  const shape = jsonShapeProblem(raw);
  if (shape !== undefined) throw new ApiError(400, `The ${shape}; no OpenAI request is shaped like that.`);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new ApiError(400, `The request body is not valid JSON: ${(error as Error).message}`);
  }
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    })
    .end(text);
}

function sendError(req: IncomingMessage, res: ServerResponse, error: ApiError): void {
  if (res.headersSent) {
    // Mid-stream: vLLM reports the error as a final event.
    if (!res.writableEnded) res.end(`data: ${JSON.stringify(error.body())}\n\n`);
    return;
  }
  // A body not read to its end (refused for its size, its Host, the budget) is not read now either.
  if (!req.complete) closeAfterAnswer(req, res);
  sendJson(res, error.status, error.body(), error.headers);
}
