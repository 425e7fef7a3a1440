/**
 * @module gateway/builtin-gateway
 * The lean Node gateway of `llmisvc up`: for each request it asks the Endpoint Picker over the same ext_proc
 * protocol Envoy speaks (full-duplex, one gRPC stream per request), then proxies to the `ip:port` the EPP chose
 * through a keep-alive pool per endpoint (`upstream-pool.ts`). Responses stream through untouched (SSE included); a client that
 * goes away aborts the upstream request; the EPP's immediate answers (400/404/413/429/503 with OpenAI error JSON)
 * go to the client as they are. Without an EPP (or for Service-backed routes) it balances round robin, which is what
 * a plain Kubernetes Service gives — the baseline of `bench --compare`.
 *
 * What clients can make it hold is bounded: request heads (size, count, time), each body (`bodyLimitBytes`), the
 * bodies being received all together (`bodyBudgetBytes`) and the connections open (`maxConnections`). Listening on
 * loopback, it answers only requests addressed to a loopback name, so a web page whose name was rebound to 127.0.0.1
 * cannot use it (DNS rebinding).
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { DEFAULT_BODY_LIMIT, isRoutingHeader, SERVED_BY_HEADER } from '../epp/index.js';
import { LlmisvcError } from '../errors/index.js';
import {
  closeAfterAnswer,
  isLoopbackAddress,
  isLoopbackHostHeader,
  hostPort,
  misdirectedHostMessage,
  oneRequestAtATime,
  readRequestBody,
  type BodyBudget,
} from '../transport/index.js';
import { bodyRouting } from './body-router.js';
import { openAiErrorJson } from './openai-error.js';
import { createExtProcClient, extProcPicker, type EndpointPicker } from './extproc-client.js';
import { EppReplicaSet } from './epp-replicas.js';
import { pathPrefixRest, replacePrefixMatch } from './path-prefix.js';
import { UpstreamPool, type UpstreamExchange } from './upstream-pool.js';

export interface GatewayRoute {
  /** Path prefix to match (`/default/quickstart/v1/completions`). */
  prefix: string;
  /** Replacement for the matched prefix (`/v1/completions`); undefined keeps the path. */
  rewrite?: string | undefined;
  /** `pool`: ask the EPP; `service`: round robin over `serviceEndpoints`. */
  backend: 'pool' | 'service';
  /** Exact header matches, all required (names any case); the model-name rules match `X-Gateway-Model-Name`. */
  headers?: { name: string; value: string }[] | undefined;
  /** The backend serving this route (a key of `targets`); absent: the gateway's own (`eppAddress`, `serviceEndpoints`). */
  target?: string | undefined;
  /** Targets to split between by weight (Gateway API backendRef weights); overrides `target`. */
  split?: { target: string; weight: number }[] | undefined;
}

/** One backend of the gateway: an InferencePool's EPP and members (a service of `llmisvc up`). */
export interface GatewayTarget {
  eppAddress?: string | undefined;
  /** Active-active EPP replicas (instead of `eppAddress`), see `epp-replicas.ts`. */
  eppAddresses?: readonly string[] | undefined;
  /** The EPP in this process (instead of an address): no gRPC hop, no ext_proc messages. */
  eppPicker?: EndpointPicker | undefined;
  serviceEndpoints: readonly string[];
  failureMode?: 'FailOpen' | 'FailClose' | undefined;
}

/** One routed request, for the dashboard's "recent decisions". */
export interface RoutingDecision {
  time: number;
  method: string;
  path: string;
  /** `ip:port` chosen; undefined when the EPP answered itself or nothing matched. */
  endpoint: string | undefined;
  /** The pod that answered (`x-inference-pod`). */
  pod: string | undefined;
  /** `x-prefiller-host-port` the EPP set (P/D). */
  prefill: string | undefined;
  status: number;
  /** Time to the upstream's response headers (ms). */
  headersMs: number;
  /** Time to the end of the response (ms). */
  totalMs: number;
  /** How the endpoint was chosen. */
  via: 'epp' | 'round-robin' | 'epp-immediate' | 'gateway' | 'fail-open';
}

export interface BuiltinGatewayOptions {
  host?: string;
  /** Port to listen on (0 = any free port). */
  port: number;
  routes: readonly GatewayRoute[];
  /** ext_proc address of the EPP (`127.0.0.1:9002`); undefined = round robin for pool routes too. */
  eppAddress?: string | undefined;
  /**
   * A picker to use instead of connecting to `eppAddress`: `llmisvc up` passes its EPP in this process
   * (`inProcessPicker`), which saves the gRPC hop and the ext_proc messages on every request.
   */
  eppPicker?: EndpointPicker | undefined;
  /**
   * ext_proc addresses of active-active EPP replicas (instead of `eppAddress`): requests are spread over them, and
   * one whose replica fails before deciding is asked of the next (see `epp-replicas.ts`).
   */
  eppAddresses?: readonly string[] | undefined;
  /** `ip:port` of every model server, for round robin (Service routes, or no EPP). */
  serviceEndpoints: readonly string[];
  /** How long to wait for an upstream's response headers (default 10 min: requests may queue a long time). */
  headersTimeoutMs?: number;
  /** Longest silence between two body chunks of an upstream response (default 5 min). */
  bodyTimeoutMs?: number;
  /** How long to wait for the EPP's decision (default 10 s, as Envoy's `message_timeout`). */
  eppTimeoutMs?: number;
  /**
   * The InferencePool's `failureMode` when the EPP fails or is late: `FailClose` (default) answers 503,
   * `FailOpen` sends the request on by round robin over `serviceEndpoints`.
   */
  failureMode?: 'FailOpen' | 'FailClose';
  /** Largest request body (default 16 MiB): a larger one gets 413 and its connection is closed unread. */
  bodyLimitBytes?: number;
  /**
   * Most request-body bytes buffered at once, over every request still receiving its body (default 256 MiB, and at
   * least `bodyLimitBytes`). A body that would pass it gets 503 (busy, retry) and its connection is closed; a body
   * counts until it is complete, refused or its client goes away. Bodies arrive in milliseconds from a client that
   * sends them, so the default takes 16 bodies of the largest size at the same instant, or hundreds of long prompts
   * (a 128k-token prompt is about 0.5 MB of JSON); what it stops is many slow uploads holding memory for minutes.
   */
  bodyBudgetBytes?: number;
  /**
   * Most client connections open at once (default 4096): past it a new connection is closed at once, unanswered, as
   * Envoy does past its connection limit. Each is a file descriptor; the default stays well below the 10,240 a Node
   * process gets on macOS (Linux allows far more), leaving room for the upstream pools (up to 256 sockets per model
   * server) and the metrics scrapes. Envoy itself sets no limit unless configured (Envoy Gateway configures 50,000
   * for a multi-threaded proxy on a raised descriptor limit).
   */
  maxConnections?: number;
  /**
   * How long a client may take to send its request headers (default 30 s): a connection still sending them then
   * gets 408 and is closed, so slowloris connections do not pile up.
   */
  clientHeadersTimeoutMs?: number;
  /** How long a client may take to send its whole request, body included (default 5 min, as Node's). */
  clientRequestTimeoutMs?: number;
  /** Most request headers (default 100, as Envoy's `max_headers_count`); more get 431. */
  maxHeaderCount?: number;
  /** Largest request head in bytes (default 16 KiB, Node's); larger gets 431. */
  maxHeaderBytes?: number;
  /** Named backends for routes with `target` or `split` (several services behind one gateway). */
  targets?: Record<string, GatewayTarget> | undefined;
  /**
   * Body-based routing, as GIE's BBR does in front of a real gateway: the gateway sets this header from the JSON
   * body's `model` before matching routes, and a client's own value never survives (it would steer the request to
   * any model it names). Default `X-Gateway-Model-Name` when a route matches headers.
   */
  modelNameHeader?: string | undefined;
  /** Random numbers in [0, 1) for weighted splits (default Math.random; tests pass a seeded one). */
  random?: (() => number) | undefined;
  /** The pod behind an endpoint, for an `x-served-by` response header; absent: no header. */
  servedBy?: ((endpoint: string) => string | undefined) | undefined;
  /** Called after every request (keep it cheap: it runs on the hot path). */
  onDecision?: (decision: RoutingDecision) => void;
  /** Requests this returns true for were answered by the caller (the dashboard). */
  extraHandler?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** What the gateway holds open right now (for leak checks and the dashboard). */
export interface GatewayStats {
  /** Client connections open. */
  clientConnections: number;
  /** Request-body bytes buffered by requests still receiving their body (see `bodyBudgetBytes`). */
  bufferedBodyBytes: number;
  /** Over every upstream pool: sockets open, requests running on them, requests waiting for one. */
  upstream: { connected: number; running: number; pending: number };
}

export interface RunningGateway {
  port: number;
  url: string;
  stats(): Promise<GatewayStats>;
  /**
   * Replaces the round-robin list of `target` (a key of `targets`; default: the gateway's own): a restarted model
   * server whose port was taken meanwhile comes back on another.
   */
  setServiceEndpoints(endpoints: readonly string[], target?: string): void;
  close(): Promise<void>;
}

/**
 * One piece of a chunked body (`size CRLF data CRLF`) in a buffer of its own: the gateway writes it to the client's
 * socket itself, a single write instead of Node's three pieces under a cork released on the next tick.
 */
export function frameChunk(data: Buffer): Buffer {
  let digits = 1;
  for (let n = data.length >>> 4; n > 0; n >>>= 4) digits++;
  const framed = Buffer.allocUnsafe(digits + 4 + data.length);
  // The size in hex, written digit by digit: no string per piece.
  for (let i = digits - 1, n = data.length; i >= 0; i--, n >>>= 4) framed[i] = HEX_DIGITS[n & 15]!;
  framed[digits] = 13;
  framed[digits + 1] = 10;
  framed.set(data, digits + 2);
  framed[framed.length - 2] = 13;
  framed[framed.length - 1] = 10;
  return framed;
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/** Default of `bodyBudgetBytes`: 256 MiB. */
const DEFAULT_BODY_BUDGET = 256 * 1024 * 1024;
/** Default of `maxConnections`. */
const DEFAULT_MAX_CONNECTIONS = 4096;

/**
 * Request headers a proxy does not pass on: hop-by-hop ones (RFC 9110 §7.6.1), and those it sets itself (the host
 * and length of what it sends, `expect`).
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'content-length',
  'expect',
]);

function openAiError(
  res: ServerResponse,
  status: number,
  message: string,
  type: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = openAiErrorJson(status, message, type);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Answers with an error and closes the connection without reading the rest of the request's body. */
function refuseUnread(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  message: string,
  type: string,
  headers?: Record<string, string>,
): void {
  closeAfterAnswer(req, res);
  openAiError(res, status, message, type, headers);
}

/**
 * The route for a request URL (routes sorted longest prefix first) and the upstream path after the rewrite.
 * @example matchRoute([{ prefix: '/ns/m/v1/completions', rewrite: '/v1/completions', backend: 'pool' }], '/ns/m/v1/completions?x=1')
 *   // → { route, path: '/v1/completions?x=1' }
 */
export function matchRoute(
  routes: readonly GatewayRoute[],
  url: string,
  headers: Readonly<Record<string, string | string[] | undefined>> = {},
): { route: GatewayRoute; path: string } | undefined {
  for (const route of routes) {
    if (route.headers?.some((h) => headers[h.name.toLowerCase()] !== h.value)) continue;
    const rest = pathPrefixRest(route.prefix, url);
    if (rest === undefined) continue;
    return { route, path: route.rewrite === undefined ? url : replacePrefixMatch(route.rewrite, rest) };
  }
  return undefined;
}

/** Starts the gateway; resolves once it listens. */
export async function startBuiltinGateway(options: BuiltinGatewayOptions): Promise<RunningGateway> {
  const host = options.host ?? '127.0.0.1';
  const headersTimeout = options.headersTimeoutMs ?? 600_000;
  const bodyTimeout = options.bodyTimeoutMs ?? 300_000;
  const eppTimeoutMs = options.eppTimeoutMs ?? 10_000;
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const budget: BodyBudget = {
    used: 0,
    limit: options.bodyBudgetBytes ?? Math.max(DEFAULT_BODY_BUDGET, bodyLimit),
  };
  if (!(budget.limit >= bodyLimit)) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `bodyBudgetBytes ${budget.limit} is smaller than bodyLimitBytes ${bodyLimit}: no body of the largest size could ever be received`,
      {
        hint: `Set bodyBudgetBytes to at least ${bodyLimit} (default ${DEFAULT_BODY_BUDGET}), or lower bodyLimitBytes.`,
      },
    );
  }
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new LlmisvcError(
      'LLMISVC_ERR_CONFIG',
      `maxConnections ${maxConnections}: expected a whole number of at least 1`,
      {
        hint: `Leave it unset for the default (${DEFAULT_MAX_CONNECTIONS}).`,
      },
    );
  }
  // On loopback only this machine can connect, but a browser on it can be led there under any name (DNS rebinding):
  // only loopback names are answered. Elsewhere the names are DNS's business, in front of the gateway.
  const loopbackOnly = isLoopbackAddress(host);
  // Gateway API precedence: the longest path, then the most header matches.
  const routes = [...options.routes].sort(
    (a, b) => b.prefix.length - a.prefix.length || (b.headers?.length ?? 0) - (a.headers?.length ?? 0),
  );
  const modelHeader = (
    options.modelNameHeader ?? (routes.some((r) => r.headers?.length) ? 'X-Gateway-Model-Name' : '')
  ).toLowerCase();
  const random = options.random ?? Math.random;
  const pools = new Map<string, UpstreamPool>();
  const onDecision = options.onDecision;

  interface Backend {
    epps: EppReplicaSet | undefined;
    endpoints: string[];
    next: number;
    failOpen: boolean;
  }
  const backend = (target: GatewayTarget): Backend => {
    // One picker per EPP replica: the EPP in this process, or a gRPC client per address.
    const pickers: EndpointPicker[] = target.eppPicker
      ? [target.eppPicker]
      : (target.eppAddresses?.length
          ? target.eppAddresses
          : target.eppAddress
            ? [target.eppAddress]
            : []
        ).map((address) => extProcPicker(createExtProcClient(address)));
    return {
      epps: pickers.length ? new EppReplicaSet(pickers) : undefined,
      endpoints: [...target.serviceEndpoints],
      next: 0,
      failOpen: target.failureMode === 'FailOpen',
    };
  };
  const own = backend({
    eppAddress: options.eppAddress,
    eppAddresses: options.eppAddresses,
    eppPicker: options.eppPicker,
    serviceEndpoints: options.serviceEndpoints,
    failureMode: options.failureMode,
  });
  const targets = new Map(Object.entries(options.targets ?? {}).map(([name, t]) => [name, backend(t)]));

  /** The backend of a matched route: its target, or one of its split targets drawn by weight. */
  function backendOf(route: GatewayRoute): Backend | undefined {
    if (!route.split) return route.target === undefined ? own : targets.get(route.target);
    const total = route.split.reduce((sum, s) => sum + Math.max(0, s.weight), 0);
    // Every weight 0: Gateway API answers 500 for such a rule; here no backend is available (503).
    if (total <= 0) return undefined;
    let draw = random() * total;
    for (const s of route.split) {
      draw -= Math.max(0, s.weight);
      if (draw < 0) return targets.get(s.target);
    }
    return targets.get(route.split.at(-1)!.target);
  }

  function poolFor(address: string): UpstreamPool {
    let pool = pools.get(address);
    if (!pool) {
      pool = new UpstreamPool(address, {
        maxConnections: 256,
        keepAliveTimeoutMs: 30_000,
        headersTimeoutMs: headersTimeout,
        bodyTimeoutMs: bodyTimeout,
      });
      pools.set(address, pool);
    }
    return pool;
  }

  function roundRobin(b: Backend): string | undefined {
    if (b.endpoints.length === 0) return undefined;
    const address = b.endpoints[b.next % b.endpoints.length];
    b.next = (b.next + 1) % b.endpoints.length;
    return address;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    const record = (d: Omit<RoutingDecision, 'time' | 'method' | 'path' | 'totalMs'>) =>
      onDecision?.({ time: Date.now(), method, path: url, totalMs: performance.now() - started, ...d });
    // A request the gateway or the EPP answered itself: no upstream, no pod.
    const answeredHere = (status: number, via: RoutingDecision['via']) =>
      record({ endpoint: undefined, pod: undefined, prefill: undefined, status, headersMs: 0, via });
    const hasBody = method !== 'GET' && method !== 'HEAD';
    // Without model-name rules the route is known from the path alone: an unroutable request is not read.
    if (!modelHeader && !matchRoute(routes, url)) {
      openAiError(res, 404, `no route for ${url}`, 'NotFoundError');
      answeredHere(404, 'gateway');
      return;
    }
    const body = hasBody ? await readRequestBody(req, bodyLimit, budget) : undefined;
    if (body === 'too-large') {
      refuseUnread(req, res, 413, `request body larger than ${bodyLimit} bytes`, 'BadRequestError');
      answeredHere(413, 'gateway');
      return;
    }
    if (body === 'busy') {
      refuseUnread(
        req,
        res,
        503,
        `the gateway is busy: the request bodies it is receiving fill its buffer (${budget.limit} bytes); retry in a moment`,
        'ServiceUnavailableError',
        { 'retry-after': '1' },
      );
      answeredHere(503, 'gateway');
      return;
    }
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(req.headers)) {
      // Routing headers are the EPP's to set: a client's would steer a model server (or its sidecar) anywhere. The
      // model-name header is the gateway's own (from the body), so a client's is dropped with them.
      if (value === undefined || HOP_BY_HOP.has(key) || isRoutingHeader(key) || key === modelHeader) continue;
      headers[key] = Array.isArray(value) ? value.join(', ') : value;
    }
    // The body router's rules, as Envoy's ext_proc applies them (body-router.ts): a malformed JSON body is a 400.
    let json: Record<string, unknown> | undefined;
    if (modelHeader) {
      const routing = bodyRouting(req.headers['content-type'], body);
      if (routing.kind === 'reject') {
        openAiError(res, routing.status, routing.message, 'BadRequestError');
        answeredHere(routing.status, 'gateway');
        return;
      }
      if (routing.model !== undefined) headers[modelHeader] = routing.model;
      json = routing.json;
    }
    const matched = matchRoute(routes, url, headers);
    if (!matched) {
      openAiError(res, 404, `no route for ${url}`, 'NotFoundError');
      answeredHere(404, 'gateway');
      return;
    }
    const target = backendOf(matched.route);
    if (!target) {
      openAiError(res, 503, `no backend with a weight above 0 for ${url}`, 'ServiceUnavailableError');
      answeredHere(503, 'gateway');
      return;
    }
    const epps = target.epps;
    const failOpen = target.failOpen;

    let endpoint: string | undefined;
    let forwardBody: Buffer | undefined = body;
    let done: ((upstreamStatus?: number) => void) | undefined;
    let via: RoutingDecision['via'] = 'round-robin';
    if (matched.route.backend === 'pool' && epps) {
      via = 'epp';
      let pick;
      // Made when the client leaves or a picker asks for it: the EPP in this process decides most requests within
      // the pick call and never does (an AbortController cost about 30 µs of an idle request's path).
      let clientGone: AbortController | undefined;
      const goneSignal = () => (clientGone ??= new AbortController()).signal;
      const onGoneWhilePicking = () => (clientGone ??= new AbortController()).abort();
      res.once('close', onGoneWhilePicking);
      try {
        pick = await epps.pick(
          { method, path: url, headers, ...(body !== undefined ? { body, json } : {}) },
          {
            timeoutMs: eppTimeoutMs,
            get signal() {
              return goneSignal();
            },
          },
        );
      } catch (error) {
        if (clientGone?.signal.aborted) return;
        if (failOpen) {
          pick = undefined;
        } else {
          openAiError(
            res,
            503,
            `endpoint picker unavailable: ${(error as Error).message}`,
            'ServiceUnavailableError',
          );
          answeredHere(503, 'gateway');
          return;
        }
      }
      res.off('close', onGoneWhilePicking);
      if (pick === undefined) {
        // Fail open: the EPP could not decide, so the pool is balanced as a plain Service would be.
        via = 'fail-open';
        endpoint = roundRobin(target);
      } else if (pick.immediateResponse) {
        const ir = pick.immediateResponse;
        res.writeHead(ir.status, {
          'content-type': 'application/json',
          ...ir.headers,
          'content-length': ir.body.length,
        });
        res.end(ir.body);
        answeredHere(ir.status, 'epp-immediate');
        return;
      } else {
        endpoint = pick.endpoint;
        done = pick.done;
        for (const name of pick.removeHeaders) delete headers[name];
        Object.assign(headers, pick.headers);
        forwardBody = pick.body ?? body;
      }
    } else {
      endpoint = roundRobin(target);
    }
    if (!endpoint) {
      done?.();
      openAiError(res, 503, 'no model server available', 'ServiceUnavailableError');
      answeredHere(503, 'gateway');
      return;
    }
    if (forwardBody !== undefined) headers['content-length'] = String(forwardBody.length);

    let upstreamStatus = 0;
    try {
      await proxy(res, endpoint, {
        method,
        path: matched.path,
        headers,
        body: forwardBody ?? null,
        onResponse: (statusCode, upstreamHeaders, headersMs) => {
          upstreamStatus = statusCode;
          const pod = upstreamHeaders['x-inference-pod'];
          record({
            endpoint,
            pod: typeof pod === 'string' ? pod : undefined,
            prefill: headers['x-prefiller-host-port'],
            status: statusCode,
            headersMs,
            via,
          });
        },
        onFailure: () =>
          record({ endpoint, pod: undefined, prefill: undefined, status: 502, headersMs: 0, via }),
        started,
      });
    } finally {
      done?.(upstreamStatus);
    }
  }

  interface ProxyRequest {
    method: string;
    path: string;
    headers: Record<string, string>;
    body: Buffer | null;
    /** The response went through whole (status, upstream headers, ms to them). */
    onResponse(statusCode: number, headers: IncomingHttpHeaders, headersMs: number): void;
    /** The upstream failed before answering: the client got 502. */
    onFailure(): void;
    started: number;
  }

  /**
   * Sends one request to `endpoint` and streams its answer to `res`; resolves when it is over, whichever way. Each
   * upstream piece is written from the pool's read callback, without a Readable, an async iterator and a promise per
   * SSE chunk. When Node frames the response chunked and it owns the connection (the common case), the gateway frames
   * each piece itself and writes it straight to the client's socket; Node still writes the head and, at `res.end()`,
   * the last chunk, so its view of the response stays whole. Otherwise (an HTTP/1.0 client, a counted body, a
   * response queued behind a pipelined one) the piece goes through `res.write`. A slow client pauses the upstream
   * read (backpressure); a client that goes away aborts the upstream request.
   */
  function proxy(res: ServerResponse, endpoint: string, request: ProxyRequest): Promise<void> {
    return new Promise<void>((resolve) => {
      let clientGone = false;
      let over = false;
      const onClientGone = () => {
        if (res.writableFinished) return;
        clientGone = true;
        exchange.abort(new Error('the client went away'));
      };
      const finish = () => {
        if (over) return;
        over = true;
        res.off('close', onClientGone);
        resolve();
      };
      let waitingForDrain = false;
      const resumeUpstream = () => {
        waitingForDrain = false;
        exchange.resume();
      };
      let statusCode = 0;
      let upstreamHeaders: IncomingHttpHeaders = {};
      let headersMs = 0;
      let direct: Socket | undefined;
      // The callbacks above run only after dispatch returns (a 'close' or 'drain' event is never synchronous).
      const exchange: UpstreamExchange = poolFor(endpoint).dispatch(
        { method: request.method, path: request.path, headers: request.headers, body: request.body },
        {
          onHead(status, upstream) {
            headersMs = performance.now() - request.started;
            statusCode = status;
            upstreamHeaders = upstream;
            const out: Record<string, string | string[]> = {};
            for (const key in upstream) {
              const value = upstream[key];
              if (value === undefined || (HOP_BY_HOP.has(key) && key !== 'content-length')) continue;
              out[key] = value;
            }
            const servedBy = options.servedBy?.(endpoint);
            if (servedBy !== undefined) out[SERVED_BY_HEADER] = servedBy;
            res.writeHead(status, out);
            // Flush headers at once so an SSE client sees the stream open before the first token.
            res.flushHeaders();
            // This response owns the connection (it is not queued behind a pipelined one) and Node frames it chunked.
            if (res.socket && res.chunkedEncoding) direct = res.socket;
          },
          onData(chunk) {
            // The piece is a view of the upstream's read buffer: framed into a buffer of its own, or copied for
            // res.write, which may hold on to it.
            if (direct ? direct.write(frameChunk(chunk)) : res.write(Buffer.from(chunk))) return true;
            // Backpressure: a slow client slows the upstream read instead of buffering here.
            if (!waitingForDrain) {
              waitingForDrain = true;
              (direct ?? res).once('drain', resumeUpstream);
            }
            return false;
          },
          onEnd() {
            res.end();
            request.onResponse(statusCode, upstreamHeaders, headersMs);
            finish();
          },
          onError(error) {
            if (clientGone) res.destroy();
            else {
              // After the head went out this cuts the client's response short (openAiError destroys it).
              openAiError(res, 502, `upstream ${endpoint} failed: ${error.message}`, 'BadGatewayError');
              request.onFailure();
            }
            finish();
          },
        },
      );
      res.once('close', onClientGone);
      // The client may have gone during the pick, before the 'close' listener was there.
      if (res.destroyed && !over) {
        clientGone = true;
        exchange.abort(new Error('the client went away'));
      }
    });
  }

  const clientHeadersTimeout = options.clientHeadersTimeoutMs ?? 30_000;
  const maxHeaderCount = options.maxHeaderCount ?? 100;
  const server: Server = createServer(
    {
      keepAliveTimeout: 65_000,
      headersTimeout: clientHeadersTimeout,
      requestTimeout: Math.max(options.clientRequestTimeoutMs ?? 300_000, clientHeadersTimeout),
      // Node checks the two timeouts above on this interval (30 s by default, which would let a header timeout of
      // a second run for thirty).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, clientHeadersTimeout / 4)),
      maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024,
    },
    // A connection's pipelined requests one at a time, as Envoy serves them (transport/pipelining).
    oneRequestAtATime(onRequest),
  );
  // Node keeps at most this many headers and silently drops the rest; one more than the limit shows a flood.
  server.maxHeadersCount = maxHeaderCount + 1;
  // Past it Node closes each new connection as soon as it is accepted.
  server.maxConnections = maxConnections;

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.rawHeaders.length / 2 > maxHeaderCount) {
      res.shouldKeepAlive = false;
      res
        .writeHead(431, { 'content-type': 'text/plain' })
        .end(`more than ${maxHeaderCount} request headers\n`);
      return;
    }
    if (loopbackOnly && !isLoopbackHostHeader(req.headers.host)) {
      refuseUnread(
        req,
        res,
        421,
        misdirectedHostMessage(req.headers.host, 'this gateway', host),
        'MisdirectedRequestError',
      );
      return;
    }
    if (options.extraHandler?.(req, res)) return;
    handle(req, res).catch((error: unknown) =>
      openAiError(res, 500, `gateway error: ${(error as Error).message}`, 'InternalServerError'),
    );
  }
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new LlmisvcError(
          'LLMISVC_ERR_PROCESS',
          `cannot listen on ${host}:${options.port}: ${error.message}`,
          {
            hint:
              error.code === 'EADDRINUSE'
                ? 'Another process uses this port: choose one with --port.'
                : 'Check the address and port.',
          },
        ),
      ),
    );
    server.listen(options.port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : options.port);
    });
  });
  return {
    port,
    url: `http://${hostPort(host, port)}`,
    async stats() {
      const clientConnections = await new Promise<number>((resolve) =>
        server.getConnections((error, count) => resolve(error ? -1 : count)),
      );
      const upstream = { connected: 0, running: 0, pending: 0 };
      for (const pool of pools.values()) {
        const { connected, running, pending } = pool.stats;
        upstream.connected += connected;
        upstream.running += running;
        upstream.pending += pending;
      }
      return { clientConnections, bufferedBodyBytes: budget.used, upstream };
    },
    setServiceEndpoints(endpoints, target) {
      const b = target === undefined ? own : targets.get(target);
      if (b) b.endpoints = [...endpoints];
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const b of [own, ...targets.values()]) b.epps?.close();
      await Promise.all([...pools.values()].map((p) => p.destroy()));
    },
  };
}
