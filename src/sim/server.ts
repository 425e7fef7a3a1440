/**
 * @module sim/server
 * The simulator's HTTP edge on `node:http`: routes, body reading, streaming, the prefill call of a decode endpoint,
 * failure injection and metrics recording. Everything it decides comes from the pure parts (`openai.ts`,
 * `performance-model.ts`, `tokens.ts`); this file only moves bytes and keeps time.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request as undiciRequest } from 'undici';
import { EngineLoop } from './engine-loop.js';
import { SimulatorMetrics } from './metrics.js';
import {
  ApiError,
  completionResponse,
  contextLengthError,
  parseGenerationRequest,
  streamChunk,
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
import { blockHashes, hash32, outputTokens, seededRandom, tokenize } from './tokens.js';

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

const maxBodyBytes = 32 * 1024 * 1024;

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
  const server = createServer();
  // Keep-alive connections from the gateway and the bench are the common case; keep them longer than Node's 5 s.
  server.keepAliveTimeout = 65_000;
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
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    port,
    // A wildcard bind is reached through loopback.
    url: `http://${['0.0.0.0', '[::]'].includes(host) ? '127.0.0.1' : host}:${port}`,
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
  private counter = 0;
  private closing = false;

  constructor(options: SimulatorOptions, podName: string) {
    this.options = options;
    this.podName = podName;
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
    const requestId = req.headers['x-request-id'];
    if (typeof requestId === 'string') res.setHeader('x-request-id', requestId);
    this.route(req, res).catch((error: unknown) => {
      if (error instanceof ApiError) return sendError(res, error);
      sendError(res, new ApiError(500, `internal error: ${(error as Error).message}`));
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
    if (!getter) throw new ApiError(404, `There is no route ${method} ${path}.`);
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
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch (error) {
      throw new ApiError(400, `The request body is not valid JSON: ${(error as Error).message}`);
    }
    const request = parseGenerationRequest(endpoint, body);
    const model = request.model ?? this.options.model;
    const lora = this.loras.has(model) ? model : undefined;
    if (!lora && !this.baseNames.has(model))
      throw new ApiError(404, `The model \`${model}\` does not exist.`, 'model');

    this.injectFailure();
    const { maxWaitingRequests } = this.options;
    if (maxWaitingRequests > 0 && this.engine.model.stats().waiting >= maxWaitingRequests)
      throw new ApiError(429, `The waiting queue is full (${maxWaitingRequests} requests); retry later.`);

    const prompt = tokenize(request.prompt);
    const count = this.outputLength(request, prompt.length);
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
    if (abort.signal.aborted) return;

    const meta: ResponseMeta = { id, created: Math.floor(Date.now() / 1000), model };
    const text = outputTokens(this.options.seed, request.prompt, count);
    const stalled =
      request.stream && this.options.stallRate > 0 && this.failureRandom() < this.options.stallRate;
    this.run(res, abort.signal, {
      request,
      meta,
      promptTokens: prompt.length,
      text,
      finishReason: request.maxTokens === undefined ? 'stop' : 'length',
      engineRequest: {
        id,
        promptTokens: prompt.length,
        blockHashes: blockHashes(prompt, this.options.blockSize, lora ?? this.options.model),
        outputTokens: count,
        lora,
        remotePrefill: Boolean(prefiller),
      },
      stallMs: stalled ? this.engine.wallMs(this.options.stallMs) : 0,
    });
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
      request: GenerationRequest;
      meta: ResponseMeta;
      promptTokens: number;
      text: string[];
      finishReason: string;
      engineRequest: Parameters<EngineLoop['submit']>[0];
      stallMs: number;
    },
  ): void {
    const { request, meta, text, engineRequest } = job;
    const endpoint = request.endpoint;
    let arrival = 0;
    let queuedMs = 0;
    let cachedTokens = 0;
    let lastTokenAt = 0;
    const pending: string[] = [];
    let stallUntil = 0;
    let finished = false;

    const write = (chunk: string): void => {
      if (stallUntil > 0) pending.push(chunk);
      else res.write(chunk);
    };
    const sse = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`;
    const finish = (at: number): void => {
      finished = true;
      this.open.delete(res);
      const totals = usage(job.promptTokens, text.length, cachedTokens);
      this.metrics.requestFinished({
        e2eSeconds: (at - arrival) / 1000,
        finishedReason: job.finishReason === 'stop' ? 'stop' : 'length',
      });
      if (!request.stream) {
        sendJson(res, 200, completionResponse(endpoint, meta, text.join(''), job.finishReason, totals));
        return;
      }
      if (request.includeUsage) write(sse(usageChunk(endpoint, meta, totals)));
      write('data: [DONE]\n\n');
      if (stallUntil > 0) pending.push('');
      else res.end();
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
          if (!request.stream) return;
          if (index === 0 && job.stallMs > 0) {
            // An injected stall: the first token is held back, and everything after it queues behind it.
            stallUntil = 1;
            setTimeout(() => {
              stallUntil = 0;
              for (const chunk of pending.splice(0)) {
                if (chunk === '') res.end();
                else res.write(chunk);
              }
            }, job.stallMs).unref();
          }
          const last = index === text.length - 1;
          write(
            sse(streamChunk(endpoint, meta, text[index] ?? '', last ? job.finishReason : null, index === 0)),
          );
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
    if (request.stream) {
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

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        reject(new ApiError(413, `The request body is larger than ${maxBodyBytes} bytes.`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    .end(text);
}

function sendError(res: ServerResponse, error: ApiError): void {
  if (res.headersSent) {
    // Mid-stream: vLLM reports the error as a final event.
    if (!res.writableEnded) res.end(`data: ${JSON.stringify(error.body())}\n\n`);
    return;
  }
  sendJson(res, error.status, error.body());
}
