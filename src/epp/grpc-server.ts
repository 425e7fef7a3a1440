/**
 * @module epp/grpc-server
 * A small gRPC server on `node:http2` for the EPP's two services: the ext_proc `Process` stream, which every request
 * through the gateway opens, and `grpc.health.v1.Health`.
 *
 * Why not `@grpc/grpc-js`'s server: it does not let us set the HTTP/2 options a gateway's traffic needs (see
 * `SERVER_OPTIONS`: without them Node drops the gateway's connection every ~1,000 requests), and it costs more CPU
 * per stream (closed loop, 4 concurrent streams: 209 µs of EPP CPU per request with grpc-js, 143 µs with this).
 * The wire format is small: a POST to `/package.Service/Method` with `content-type: application/grpc`, messages
 * framed as 1 flag byte + 4 length bytes + protobuf, and the status in trailers (`grpc-status`, `grpc-message`).
 * This speaks that for any method shape: each stream gets handlers for its messages, its half-close and its abort.
 * Compression is not offered (`grpc-accept-encoding: identity`), so conforming clients never compress.
 */
import {
  constants,
  createSecureServer,
  createServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { KeyPair } from './tls.js';

/** gRPC status codes used here. */
export const GrpcStatus = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

/** The server side of one call, as a method handler sees it. */
export interface GrpcCall<Out> {
  /** Sends one message (ignored once the call is over). */
  send(message: Out): void;
  /** Ends the call with OK. */
  end(): void;
  /** False once the call ended, either side. */
  isOpen(): boolean;
}

/** What a method does with one call's events. */
export interface GrpcCallHandlers<In> {
  message(message: In): void;
  /** The client half-closed: it sends no more messages. */
  end(): void;
  /** The call ended without a clean half-close (reset, connection lost, protocol error, server shutdown). */
  abort(): void;
}

export interface GrpcMethod<In, Out> {
  decode(bytes: Uint8Array): In;
  encode(message: Out): Uint8Array;
  open(call: GrpcCall<Out>): GrpcCallHandlers<In>;
}

export interface GrpcServerOptions {
  /** Handlers by path, e.g. `/grpc.health.v1.Health/Check`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each method has its own message types
  methods: Record<string, GrpcMethod<any, any>>;
  /** Largest message accepted; a larger one ends the call with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Serve TLS (ALPN h2) with this key pair. */
  tls?: KeyPair | undefined;
  /** Called with errors the server swallows (bad frames, undecodable messages, handler exceptions). */
  onError?: (error: unknown) => void;
}

export interface GrpcServer {
  listen(host: string, port: number): Promise<number>;
  /** Stops listening and drops every open call (their handlers see `abort`). */
  close(): Promise<void>;
}

/**
 * HTTP/2 settings for a gateway's connection, which carries one stream per in-flight request.
 *
 * - Envoy's ext_proc client ends every stream with RST_STREAM, even after a clean close. nghttp2 (inside Node)
 *   treats more than 1000 resets in a burst, refilled at 33 per second, as a "rapid reset" attack and sends GOAWAY:
 *   above ~33 requests per second a connection was dropped every few seconds, and the streams Envoy had opened
 *   meanwhile were refused (HTTP 500 to clients, the gateway fails closed). Node ≥ 22.10 lets the limit be raised
 *   (`streamResetBurst` / `streamResetRate`); older Node ignores these options, so gateways must recycle connections
 *   before 1000 streams (our Envoy bootstrap sets `max_requests_per_connection`; see `resetRateLimitConfigurable`).
 * - No per-session memory cap or stream cap below what the process can hold, and windows that take a large prompt
 *   without a round trip per 64 KiB.
 */
const SERVER_OPTIONS = {
  settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: 2 ** 31 - 1 },
  maxSessionMemory: Number.MAX_SAFE_INTEGER,
  streamResetBurst: 2 ** 31 - 1,
  streamResetRate: 2 ** 31 - 1,
};

/** Whether this Node can raise nghttp2's stream-reset limit (added in Node 22.10 and 23.0; absent from Node 20). */
export function resetRateLimitConfigurable(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 10);
}

const GRPC_CONTENT_TYPE = 'application/grpc';
const FRAME_HEADER_BYTES = 5;

export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const server: Http2Server = options.tls
    ? createSecureServer({
        ...SERVER_OPTIONS,
        key: options.tls.key,
        cert: options.tls.cert,
        allowHTTP1: false,
      })
    : createServer(SERVER_OPTIONS);
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', (error) => options.onError?.(error));
    // A connection window to match: concurrent large prompts do not queue behind the default 64 KiB.
    session.setLocalWindowSize(16 << 20);
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
    serveStream(stream, headers, options),
  );
  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      });
    },
  };
}

function serveStream(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  options: GrpcServerOptions,
): void {
  // A reset from the client surfaces as an 'error' on the stream; the 'close' below is what matters.
  stream.on('error', () => undefined);
  if (headers[constants.HTTP2_HEADER_METHOD] !== 'POST') {
    stream.respond({ ':status': 405 }, { endStream: true });
    return;
  }
  const contentType = headers[constants.HTTP2_HEADER_CONTENT_TYPE];
  if (typeof contentType !== 'string' || !contentType.startsWith(GRPC_CONTENT_TYPE)) {
    stream.respond({ ':status': 415 }, { endStream: true });
    return;
  }
  const path = String(headers[constants.HTTP2_HEADER_PATH] ?? '');
  const method = Object.hasOwn(options.methods, path) ? options.methods[path] : undefined;
  if (!method) {
    trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`);
    return;
  }

  let ended = false;
  let trailers: Record<string, string> = { 'grpc-status': '0' };

  const finish = (code: number, message?: string): void => {
    if (ended) return;
    ended = true;
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent) {
      trailersOnly(stream, code, message);
      return;
    }
    trailers = statusTrailers(code, message);
    stream.end();
  };
  // Methods only, no accessor. With `get open()` here every call, and the stream and request state it reaches,
  // survived young-generation collections and was freed only by a full one (V8 apparently keeps a literal's getter,
  // a new closure per call, in a hidden class in the old generation, which a scavenge treats as alive). At 500 req/s
  // that was ~7 KB promoted per request and a full collection every ~1.5 s; without it, almost nothing is promoted.
  const call: GrpcCall<unknown> = {
    send(message) {
      if (!call.isOpen()) return;
      if (!stream.headersSent) {
        stream.respond(
          { ':status': 200, 'content-type': GRPC_CONTENT_TYPE, 'grpc-accept-encoding': 'identity' },
          { waitForTrailers: true },
        );
      }
      stream.write(frame(method.encode(message)));
    },
    end: () => finish(GrpcStatus.OK),
    isOpen: () => !ended && !stream.destroyed && !stream.closed,
  };
  stream.on('wantTrailers', () => {
    stream.sendTrailers(trailers);
    // The call is over but the client may not have half-closed: tell it to stop with RST_STREAM(NO_ERROR) after the
    // trailers, as gRPC servers do (RFC 9113 §8.1). Otherwise the stream stays open until the client resets it, and
    // Envoy's ext_proc client resets with an error code, for which Node builds an error with a formatted stack (13%
    // of the EPP's JavaScript time). The reset waits for an immediate: Node writes the trailers in this turn's native
    // immediate, which runs before ours, and a reset submitted now would go out first and drop them.
    setImmediate(() => {
      if (!stream.closed && !stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR);
    });
  });

  const handlers = method.open(call);
  const fail = (code: number, message: string): void => {
    finish(code, message);
    handlers.abort();
  };
  const deliver = (bytes: Buffer): boolean => {
    let message: unknown;
    try {
      message = method.decode(bytes);
    } catch (error) {
      options.onError?.(error);
      fail(GrpcStatus.INTERNAL, `cannot decode the request message: ${(error as Error).message}`);
      return false;
    }
    try {
      handlers.message(message);
    } catch (error) {
      options.onError?.(error);
      fail(GrpcStatus.INTERNAL, 'internal error handling the message');
      return false;
    }
    return true;
  };

  // Bytes of a message not complete yet, kept as chunks so a large message costs one copy, not one per chunk.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let needed = 0;
  stream.on('data', (chunk: Buffer) => {
    if (ended) return;
    let data = chunk;
    if (pendingBytes > 0) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes < needed) return;
      data = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
    while (data.length >= FRAME_HEADER_BYTES) {
      if (data[0] !== 0) {
        fail(
          GrpcStatus.UNIMPLEMENTED,
          'compressed messages are not supported (grpc-accept-encoding: identity)',
        );
        return;
      }
      const length = data.readUInt32BE(1);
      if (length > options.maxMessageBytes) {
        fail(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `message of ${length} bytes exceeds the limit of ${options.maxMessageBytes} bytes`,
        );
        return;
      }
      const end = FRAME_HEADER_BYTES + length;
      if (data.length < end) break;
      if (!deliver(data.subarray(FRAME_HEADER_BYTES, end)) || ended) return;
      data = data.subarray(end);
    }
    if (data.length > 0) {
      pending = [data];
      pendingBytes = data.length;
      needed =
        data.length >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + data.readUInt32BE(1) : FRAME_HEADER_BYTES;
    }
  });
  stream.on('end', () => {
    // Node also ends the readable side when the stream is reset or its connection is lost ('aborted' comes first):
    // that is no half-close, and the handlers hear `abort` from 'close' below instead of `end`.
    if (ended || stream.aborted) return;
    if (pendingBytes > 0) {
      fail(GrpcStatus.INTERNAL, 'the stream ended inside a message');
      return;
    }
    try {
      handlers.end();
    } catch (error) {
      options.onError?.(error);
      finish(GrpcStatus.INTERNAL, 'internal error ending the call');
    }
  });
  stream.on('close', () => {
    if (ended) return;
    ended = true;
    handlers.abort();
  });
}

/** A whole call answered in one HEADERS frame (gRPC's "Trailers-Only" response). */
function trailersOnly(stream: ServerHttp2Stream, code: number, message?: string): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond(
    { ':status': 200, 'content-type': GRPC_CONTENT_TYPE, ...statusTrailers(code, message) },
    { endStream: true },
  );
}

function statusTrailers(code: number, message?: string): Record<string, string> {
  return message === undefined
    ? { 'grpc-status': String(code) }
    : { 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) };
}

/** One length-prefixed, uncompressed gRPC message. */
function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, FRAME_HEADER_BYTES);
  return out;
}
