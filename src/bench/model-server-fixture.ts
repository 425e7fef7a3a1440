/**
 * @module bench/model-server-fixture
 * A small stand-in for a vLLM server, for the EPP benchmark and the integration tests (lighter than sim/, and
 * its numbers are set, not modelled): `/metrics` in vLLM's names with numbers the caller sets, `/v1/completions` and `/v1/chat/completions` answering an OpenAI-shaped JSON that says which server
 * answered, and a log of the requests it received (headers and body). It does no inference and pretends none.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface FixtureState {
  waiting: number;
  running: number;
  kvCacheUsage: number;
  /** When true `/metrics` answers 500 (a failing endpoint). */
  failMetrics: boolean;
  /** Delay before answering a completion (ms). */
  responseDelayMs: number;
  /** The HTTP status of a completion's answer (200; e.g. 500 for a failing model server). */
  completionStatus: number;
  /**
   * Send the response headers and hold the body until `releaseBodies()`, like a completion that streams for a while
   * (a gate, not a delay: a test decides when the body ends).
   */
  holdBodies: boolean;
}

export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface ModelServerFixture {
  name: string;
  address: string;
  state: FixtureState;
  received: ReceivedRequest[];
  /** Ends every response body held by `state.holdBodies`. */
  releaseBodies(): void;
  close(): Promise<void>;
}

function exposition(state: FixtureState, model: string): string {
  return [
    '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
    '# TYPE vllm:num_requests_waiting gauge',
    `vllm:num_requests_waiting{model_name="${model}"} ${state.waiting}`,
    '# TYPE vllm:num_requests_running gauge',
    `vllm:num_requests_running{model_name="${model}"} ${state.running}`,
    '# TYPE vllm:kv_cache_usage_perc gauge',
    `vllm:kv_cache_usage_perc{model_name="${model}"} ${state.kvCacheUsage}`,
    '# TYPE vllm:cache_config_info gauge',
    `vllm:cache_config_info{block_size="16",num_gpu_blocks="4096"} 1.0`,
    '',
  ].join('\n');
}

/**
 * Starts a fixture on `host` (default 127.0.0.1; any 127.x.y.z works on Linux) and `port` (default ephemeral).
 * `keepRequests: false` leaves `received` empty: a long-running user (a benchmark) would otherwise grow the heap by
 * every request it sends, and the garbage collections of a growing heap add to the latency it measures.
 */
export async function startModelServerFixture(
  name: string,
  model = 'test-model',
  listen: { host?: string; port?: number } = {},
  { keepRequests = true }: { keepRequests?: boolean } = {},
): Promise<ModelServerFixture> {
  const host = listen.host ?? '127.0.0.1';
  const state: FixtureState = {
    waiting: 0,
    running: 0,
    kvCacheUsage: 0,
    failMetrics: false,
    responseDelayMs: 0,
    completionStatus: 200,
    holdBodies: false,
  };
  const held: (() => void)[] = [];
  const received: ReceivedRequest[] = [];
  let completions = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.url === '/metrics') {
        if (state.failMetrics) {
          res.writeHead(500).end('metrics unavailable\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(exposition(state, model));
        return;
      }
      completions++;
      if (keepRequests) received.push({ path: req.url ?? '', headers: req.headers, body });
      const reply = () => {
        let requested = model;
        try {
          requested = String(JSON.parse(body).model ?? model);
        } catch {
          // The fixture answers whatever it is sent; the EPP decides what is valid.
        }
        res.writeHead(state.completionStatus, { 'content-type': 'application/json', 'x-served-by': name });
        const answer = JSON.stringify({
          id: `cmpl-${completions}`,
          object: req.url?.includes('chat') ? 'chat.completion' : 'text_completion',
          model: requested,
          served_by: name,
          choices: [{ index: 0, text: 'ok', finish_reason: 'length' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        });
        if (state.holdBodies) {
          res.flushHeaders();
          held.push(() => res.end(answer));
        } else res.end(answer);
      };
      if (state.responseDelayMs > 0) setTimeout(reply, state.responseDelayMs);
      else reply();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, host, resolve);
  });
  const port = (server.address() as { port: number }).port;
  return {
    name,
    address: `${host}:${port}`,
    state,
    received,
    releaseBodies: () => {
      for (const end of held.splice(0)) end();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
