/**
 * @module gateway/extproc-client
 * A small ext_proc client: what a gateway does for one request, in one call. The builtin Node gateway of
 * `llmisvc up` routes with it, and tests use it to talk to the EPP without Envoy. Speaks full-duplex mode, like
 * the Envoy configuration GIE generates.
 *
 * @example
 * const client = createExtProcClient('127.0.0.1:9002');
 * const pick = await pickEndpoint(client, { path: '/v1/completions', headers: { 'content-type': 'application/json' }, body });
 * if (pick.immediateResponse) reply(pick.immediateResponse.status, pick.immediateResponse.body);
 * else { const status = await forward(pick.endpoint, pick.headers, pick.body); pick.done(status); }
 */
import * as grpc from '@grpc/grpc-js';
import { BodySendMode, loadProtos } from './proto.js';
import { DESTINATION_HEADER } from '../epp/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- dynamic protobuf messages */
type Message = Record<string, any>;

/** One ext_proc stream as `pickEndpoint` uses it (what grpc-js's duplex call offers). */
export interface ExtProcStream {
  on(event: 'data', listener: (message: Message) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  write(message: Message): unknown;
  /** Half-closes: the gateway sends no more. */
  end(): unknown;
  /** Abandons the stream. */
  cancel(): void;
}

/** Where a gateway opens ext_proc streams: a grpc-js client to an EPP. */
export interface ExtProcChannel {
  Process(options?: { deadline?: number }): ExtProcStream;
  close(): void;
}

export type ExtProcClient = grpc.Client & {
  Process(options?: grpc.CallOptions): grpc.ClientDuplexStream<Message, Message>;
};

/** Connects to an EPP; `tls: true` accepts its self-signed certificate (as GIE gateways do). */
export function createExtProcClient(address: string, options: { tls?: boolean } = {}): ExtProcClient {
  const { ExtProcClient } = loadProtos();
  const credentials = options.tls
    ? grpc.credentials.createSsl(null, null, null, {
        checkServerIdentity: () => undefined,
        rejectUnauthorized: false,
      })
    : grpc.credentials.createInsecure();
  return new ExtProcClient(address, credentials, RECONNECT) as unknown as ExtProcClient;
}

/**
 * grpc-js waits 1 s before its first reconnection and backs off up to 120 s, answering every call meanwhile with
 * UNAVAILABLE: an EPP restarted after a crash would stay unused (every request a 503 under FailClose) for up to two
 * minutes after it serves again. The EPP is a local or in-cluster peer; retrying it every 100 ms to 1 s is cheap.
 * Measured by `npm run chaos -- --scenario epp`.
 */
const RECONNECT: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
};

export interface PickRequest {
  method?: string;
  path: string;
  /** Request headers (any case); `:method`, `:path` and `:authority` are added. */
  headers?: Record<string, string>;
  /** The request body; undefined for a request without one. */
  body?: Buffer;
  /**
   * The body already decoded (`decodeJsonBody`: the gateway read its model from it), for a picker in the same process
   * to use instead of decoding it again; the picker may change it. Over ext_proc the body goes as its bytes.
   */
  json?: Record<string, unknown>;
  /** Addresses the gateway allows (`envoy.lb.subset_hint`). */
  subsetHint?: string[];
}

export interface PickOptions {
  /** Longest wait for the decision (not for the response, which may stream for minutes). */
  timeoutMs?: number;
  /** Aborts when the client went away: the EPP drops the request at once (it may wait in flow control). */
  signal?: AbortSignal;
}

/** Where a gateway asks for its routing decisions: an EPP over ext_proc, or the EPP in its own process. */
export interface EndpointPicker {
  pick(request: PickRequest, options?: PickOptions): Promise<PickResult>;
  /** Its connection is known to be failing (connection refused, reset); only a remote picker has one. */
  failing(): boolean;
  close(): void;
}

/** An EPP reached over ext_proc (a grpc-js client). */
export function extProcPicker(channel: ExtProcChannel): EndpointPicker {
  const client = channel as Partial<ExtProcClient>;
  return {
    pick: (request, options) => pickEndpoint(channel, request, options),
    failing: () =>
      typeof client.getChannel === 'function' &&
      client.getChannel().getConnectivityState(false) === grpc.connectivityState.TRANSIENT_FAILURE,
    close: () => channel.close(),
  };
}

/**
 * The request headers the EPP hears for a pick, as Envoy sends them: lower-case names, the pseudo-headers, and the
 * body's length.
 */
export function pickHeaders(request: PickRequest): Record<string, string> {
  const hasBody = request.body !== undefined;
  const headers: Record<string, string> = {
    ':method': request.method ?? (hasBody ? 'POST' : 'GET'),
    ':path': request.path,
    ':authority': 'llmisvc',
  };
  for (const key in request.headers) headers[key.toLowerCase()] = request.headers[key]!;
  if (hasBody) headers['content-length'] = String(request.body!.length);
  return headers;
}

export interface PickResult {
  /** `ip:port` to send the request to; undefined when the EPP answered immediately. */
  endpoint: string | undefined;
  /** Headers the EPP asked to set (including `x-gateway-destination-endpoint`). */
  headers: Record<string, string>;
  /** Headers the EPP asked to remove (lower case), applied before `headers`. */
  removeHeaders: readonly string[];
  /** The body to forward (rewritten when the EPP mapped the model). */
  body: Buffer | undefined;
  /** Set when the EPP answered the client itself (400, 404, 413, 429, 503 …). */
  immediateResponse?: { status: number; headers: Record<string, string>; body: Buffer } | undefined;
  /**
   * Tells the EPP the request finished (ends the stream); call once the upstream response is done. With
   * `upstreamStatus` (0: the server never answered) the EPP first hears it as the response's `:status`, as Envoy
   * sends it: no answer or a 5xx makes the EPP check that server at once.
   */
  done(upstreamStatus?: number): void;
}

/**
 * Request headers as Envoy sends them: each value's bytes in `raw_value`. Node gives a header value as Latin-1 (one
 * character per byte), so its bytes are the value in Latin-1 — encoded as UTF-8, a byte above 0x7f would have reached
 * the EPP as two, and the EPP would see another value than behind Envoy.
 */
function headerMap(headers: Record<string, string>): Message {
  return {
    headers: Object.entries(headers).map(([key, value]) => ({
      key,
      raw_value: Buffer.from(value, 'latin1'),
    })),
  };
}

function mutationHeaders(
  mutation: Message | undefined,
  into: Record<string, string>,
  removed?: Set<string>,
): void {
  for (const name of mutation?.['remove_headers'] ?? []) {
    if (typeof name !== 'string') continue;
    removed?.add(name.toLowerCase());
    delete into[name.toLowerCase()];
  }
  for (const option of mutation?.['set_headers'] ?? []) {
    const h = option?.header;
    if (!h?.key) continue;
    into[h.key] =
      h.raw_value && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('latin1') : (h.value ?? '');
  }
}

/** Runs the request phase of one ext_proc stream and returns the EPP's decision. */
export function pickEndpoint(
  client: ExtProcChannel,
  request: PickRequest,
  options: PickOptions = {},
): Promise<PickResult> {
  // The timeout bounds the decision, not the stream: a gRPC deadline would cancel the stream of a response still
  // streaming when it passes, and the EPP would stop counting that request in flight long before it ends.
  const stream = client.Process();
  const hasBody = request.body !== undefined;
  const first: Message = {
    request_headers: { headers: headerMap(pickHeaders(request)), end_of_stream: !hasBody },
    protocol_config: {
      request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED,
      response_body_mode: BodySendMode.NONE,
    },
  };
  if (request.subsetHint) {
    first['metadata_context'] = {
      filter_metadata: {
        'envoy.lb.subset_hint': {
          fields: {
            'x-gateway-destination-endpoint-subset': {
              listValue: { values: request.subsetHint.map((s) => ({ stringValue: s })) },
            },
          },
        },
      },
    };
  }
  let ended = false;
  const done = (upstreamStatus?: number) => {
    if (ended) return;
    ended = true;
    if (upstreamStatus !== undefined) {
      stream.write({
        response_headers: { headers: headerMap({ ':status': String(upstreamStatus) }) },
      });
    }
    stream.end();
  };
  return new Promise<PickResult>((resolve, reject) => {
    const set: Record<string, string> = {};
    const removed = new Set<string>();
    let body: Buffer | undefined;
    let settled = false;
    const timer = options.timeoutMs
      ? setTimeout(
          () => settle(new Error(`no decision from the endpoint picker within ${options.timeoutMs} ms`)),
          options.timeoutMs,
        )
      : undefined;
    const settle = (result: PickResult | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (result instanceof Error) {
        stream.cancel();
        reject(result);
      } else resolve(result);
    };
    stream.on('data', (message: Message) => {
      if (message['immediate_response']) {
        const ir = message['immediate_response'];
        const h: Record<string, string> = {};
        mutationHeaders(ir['headers'], h);
        done();
        settle({
          endpoint: undefined,
          headers: {},
          removeHeaders: [],
          body: undefined,
          immediateResponse: {
            status: Number(ir['status']?.['code'] ?? 500),
            headers: h,
            body: Buffer.from(ir['body'] ?? []),
          },
          done,
        });
        return;
      }
      if (message['request_headers'])
        mutationHeaders(message['request_headers']['response']?.['header_mutation'], set, removed);
      if (message['request_body']) {
        const r = message['request_body']['response'] ?? {};
        mutationHeaders(r['header_mutation'], set, removed);
        const m = r['body_mutation'];
        body = m?.['streamed_response']
          ? Buffer.from(m['streamed_response']['body'] ?? [])
          : m?.['body']
            ? Buffer.from(m['body'])
            : request.body;
      }
      const complete = hasBody
        ? message['request_body'] !== undefined
        : message['request_headers'] !== undefined;
      if (complete)
        settle({
          endpoint: set[DESTINATION_HEADER],
          headers: set,
          // A name removed in one answer and set in a later one stays set.
          removeHeaders: [...removed].filter((name) => !(name in set)),
          body: hasBody ? body : undefined,
          done,
        });
    });
    stream.on('error', (error: Error) => settle(error));
    stream.on('end', () => settle(new Error('the endpoint picker closed the stream without a decision')));
    // The client went away while the EPP decides (e.g. its request waits in flow control): cancel the stream, so the
    // EPP drops the request at once.
    options.signal?.addEventListener('abort', () => settle(new Error('the client went away')), {
      once: true,
    });
    if (options.signal?.aborted) return settle(new Error('the client went away'));
    stream.write(first);
    if (hasBody) stream.write({ request_body: { body: request.body, end_of_stream: true } });
  });
}
